//! Content negotiation of a scrape: OpenMetrics or text, gzip or not, from the request's
//! `Accept` and `Accept-Encoding` headers.

/// What a scrape will be answered with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Negotiated {
    pub openmetrics: bool,
    pub gzip: bool,
}

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

/// OpenMetrics when the scraper asks for it and prefers it to the text format (as
/// Prometheus does); gzip
/// when it accepts gzip.
pub fn negotiate(accept: Option<&str>, accept_encoding: Option<&str>) -> Negotiated {
    // Only a scraper that names OpenMetrics gets it: `*/*` (curl, browsers) means text.
    let openmetrics = accept.is_some_and(|a| {
        let named = a
            .to_ascii_lowercase()
            .contains("application/openmetrics-text");
        let om = quality(a, "application/openmetrics-text");
        named && om > 0.0 && om >= quality(a, "text/plain")
    });
    let gzip = accept_encoding.is_some_and(|e| quality(e, "gzip") > 0.0);
    Negotiated { openmetrics, gzip }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prometheus_gets_openmetrics_and_gzip() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        assert_eq!(
            negotiate(Some(prometheus), Some("gzip")),
            Negotiated {
                openmetrics: true,
                gzip: true
            }
        );
    }

    #[test]
    fn others_get_text_unless_they_ask() {
        let text = Negotiated {
            openmetrics: false,
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
