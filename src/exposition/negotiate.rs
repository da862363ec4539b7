//! Content negotiation of a scrape: protobuf, OpenMetrics or text, gzip or not, from the
//! request's `Accept` and `Accept-Encoding` headers.

/// The exposition format a scrape is answered in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The text format 0.0.4: what anyone gets who does not name another.
    Text,
    OpenMetrics,
    /// Varint-delimited `io.prometheus.client.MetricFamily` messages: the only format in
    /// which Prometheus 2.x reads native histograms.
    Protobuf,
}

/// What a scrape will be answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub format: Format,
    pub gzip: bool,
}

/// The media type of the protobuf exposition, and the parameters that say which message
/// and framing it carries.
const PROTOBUF: &str = "application/vnd.google.protobuf";
const PROTOBUF_PROTO: &str = "io.prometheus.client.MetricFamily";
const PROTOBUF_ENCODING: &str = "delimited";

/// The quality the header gives `wanted` (a media type or coding), by its best match:
/// the exact name, then `prefix/*`, then `*/*` or `*`. Absent means 0.
fn quality(header: &str, wanted: &str) -> f64 {
    let family = wanted.split('/').next().unwrap_or(wanted);
    let mut best: Option<(u8, f64)> = None;
    for item in header.split(',') {
        let mut parts = item.split(';');
        let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let q = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f64>().ok())
            .unwrap_or(1.0);
        let specificity = if name == wanted {
            3
        } else if name == format!("{family}/*") {
            2
        } else if name == "*/*" || name == "*" {
            1
        } else {
            continue;
        };
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best.map_or(0.0, |(_, q)| q)
}

/// The best quality the header gives the protobuf exposition. Only an item that names the
/// media type with both `proto=io.prometheus.client.MetricFamily` and `encoding=delimited`
/// counts: the same media type carries other messages and framings (the text form of a
/// message, other schemas), which a scraper asking for those could not read.
fn protobuf_quality(header: &str) -> f64 {
    let mut best = 0.0f64;
    for item in header.split(',') {
        let mut parts = item.split(';').map(str::trim);
        if !parts.next().unwrap_or("").eq_ignore_ascii_case(PROTOBUF) {
            continue;
        }
        let (mut proto, mut delimited, mut q) = (false, false, 1.0);
        for param in parts {
            let Some((name, value)) = param.split_once('=') else {
                continue;
            };
            let value = value.trim().trim_matches('"');
            match name.trim().to_ascii_lowercase().as_str() {
                "proto" => proto = value == PROTOBUF_PROTO,
                "encoding" => delimited = value.eq_ignore_ascii_case(PROTOBUF_ENCODING),
                "q" => q = value.parse::<f64>().unwrap_or(0.0),
                _ => {}
            }
        }
        if proto && delimited && q.is_finite() {
            best = best.max(q);
        }
    }
    best
}

/// Protobuf when the scraper names it and prefers it by quality (Prometheus with native
/// histograms enabled names it first); else OpenMetrics when the scraper asks for it and
/// prefers it to the text format (as Prometheus does); gzip when it accepts gzip.
pub fn negotiate(accept: Option<&str>, accept_encoding: Option<&str>) -> Negotiated {
    let format = match accept {
        None => Format::Text,
        Some(a) => {
            // Only a scraper that names OpenMetrics or protobuf gets it: `*/*` (curl,
            // browsers) means text.
            let named = a
                .to_ascii_lowercase()
                .contains("application/openmetrics-text");
            let om = if named {
                quality(a, "application/openmetrics-text")
            } else {
                0.0
            };
            let text = quality(a, "text/plain");
            let pb = protobuf_quality(a);
            if pb > 0.0 && pb >= om && pb >= text {
                Format::Protobuf
            } else if om > 0.0 && om >= text {
                Format::OpenMetrics
            } else {
                Format::Text
            }
        }
    };
    let gzip = accept_encoding.is_some_and(|e| quality(e, "gzip") > 0.0);
    Negotiated { format, gzip }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Prometheus 2.42's `Accept` header by default, and with
    /// `--enable-feature=native-histograms`, as it sends them.
    const PROMETHEUS: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
    const PROMETHEUS_NATIVE_HISTOGRAMS: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

    fn format(accept: &str) -> Format {
        negotiate(Some(accept), None).format
    }

    #[test]
    fn prometheus_gets_openmetrics_and_gzip() {
        assert_eq!(
            negotiate(Some(PROMETHEUS), Some("gzip")),
            Negotiated {
                format: Format::OpenMetrics,
                gzip: true
            }
        );
    }

    #[test]
    fn prometheus_with_native_histograms_gets_protobuf_and_gzip() {
        assert_eq!(
            negotiate(Some(PROMETHEUS_NATIVE_HISTOGRAMS), Some("gzip")),
            Negotiated {
                format: Format::Protobuf,
                gzip: true
            }
        );
        // Later versions weigh every format, protobuf still first.
        let weighed = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,text/plain;version=0.0.4;q=0.3,*/*;q=0.2";
        assert_eq!(format(weighed), Format::Protobuf);
    }

    #[test]
    fn protobuf_only_when_named_in_full_and_preferred() {
        for accept in [
            // Another message, another framing, or neither said.
            "application/vnd.google.protobuf;proto=io.prometheus.client.Metric;encoding=delimited",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text",
            "application/vnd.google.protobuf",
            "application/vnd.google.protobuf;encoding=delimited",
            // Named but refused, or ranked below text.
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0,text/plain",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.2,text/plain;q=0.5",
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=nonsense",
        ] {
            assert_ne!(format(accept), Format::Protobuf, "{accept}");
        }
        let om_first = "application/openmetrics-text;version=1.0.0,application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.5";
        assert_eq!(format(om_first), Format::OpenMetrics);
        let spaced = "Application/Vnd.Google.Protobuf; proto=io.prometheus.client.MetricFamily; encoding=\"delimited\"";
        assert_eq!(format(spaced), Format::Protobuf);
    }

    #[test]
    fn curl_gets_text() {
        assert_eq!(format("*/*"), Format::Text);
    }

    #[test]
    fn others_get_text_unless_they_ask() {
        let text = Negotiated {
            format: Format::Text,
            gzip: false,
        };
        assert_eq!(negotiate(None, None), text);
        assert_eq!(negotiate(Some("*/*"), None), text);
        assert_eq!(
            negotiate(Some("text/plain;version=0.0.4"), Some("identity")),
            text
        );
        assert_eq!(
            negotiate(Some("text/plain, application/openmetrics-text;q=0.5"), None),
            text
        );
        assert!(!negotiate(None, Some("gzip;q=0, deflate")).gzip);
        assert!(negotiate(None, Some("deflate, gzip;q=0.5")).gzip);
        assert!(negotiate(None, Some("*")).gzip);
    }
}
