//! The exporter's own series (`fleetsim_*`) and the standard `process_*` series, through
//! the `prometheus` client library: few series, so its objects cost nothing here.

use std::borrow::Cow;
use std::time::Duration;

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntGauge, IntGaugeVec, Opts, ProtobufEncoder,
    Registry, TextEncoder,
};

pub struct Telemetry {
    registry: Registry,
    tick_duration: Histogram,
    servers_up: IntGauge,
    scrapes: IntCounter,
}

impl Telemetry {
    pub fn new(servers: u32) -> Telemetry {
        let registry = Registry::new();
        let build = IntGaugeVec::new(
            Opts::new("fleetsim_build_info", "fleetsim's version; always 1."),
            &["version"],
        )
        .expect("valid metric");
        build.with_label_values(&[env!("CARGO_PKG_VERSION")]).set(1);
        let simulated = IntGauge::new("fleetsim_servers", "Servers simulated by this process.")
            .expect("valid metric");
        simulated.set(servers as i64);
        let servers_up = IntGauge::new(
            "fleetsim_servers_up",
            "Simulated servers up at the last tick.",
        )
        .expect("valid metric");
        let tick_duration = Histogram::with_opts(
            HistogramOpts::new(
                "fleetsim_tick_duration_seconds",
                "Time to move the fleet to the current instant, seconds.",
            )
            .buckets(vec![
                1e-5, 1e-4, 5e-4, 1e-3, 5e-3, 0.01, 0.05, 0.1, 0.5, 1.0,
            ]),
        )
        .expect("valid metric");
        let scrapes = IntCounter::new(
            "fleetsim_scrapes_total",
            "Scrapes of /metrics served (count).",
        )
        .expect("valid metric");
        for c in [
            Box::new(build) as Box<dyn prometheus::core::Collector>,
            Box::new(simulated),
            Box::new(servers_up.clone()),
            Box::new(tick_duration.clone()),
            Box::new(scrapes.clone()),
        ] {
            registry.register(c).expect("names are unique");
        }
        #[cfg(target_os = "linux")]
        {
            let _ = registry.register(Box::new(
                prometheus::process_collector::ProcessCollector::for_self(),
            ));
        }
        Telemetry {
            registry,
            tick_duration,
            servers_up,
            scrapes,
        }
    }

    pub fn observe_tick(&self, took: Duration, up: usize) {
        self.tick_duration.observe(took.as_secs_f64());
        self.servers_up.set(up as i64);
    }

    /// Serves `collector`'s series with the exporter's own (the remote write pusher's).
    pub fn register(&self, collector: Box<dyn prometheus::core::Collector>) {
        let _ = self.registry.register(collector);
    }

    /// Counts a scrape and appends the exporter's own series.
    pub fn encode_into(&self, out: &mut Vec<u8>) {
        self.scrapes.inc();
        let _ = TextEncoder::new().encode(&self.registry.gather(), out);
    }

    /// Counts a scrape and appends the exporter's own series as delimited `MetricFamily`
    /// messages, through the client library's own protobuf encoder.
    pub fn encode_protobuf_into(&self, out: &mut Vec<u8>) {
        self.scrapes.inc();
        let _ = ProtobufEncoder::new().encode(&self.registry.gather(), out);
    }

    /// Counts a scrape and appends the exporter's own series as OpenMetrics (the client
    /// library writes only the text format).
    pub fn encode_openmetrics_into(&self, out: &mut Vec<u8>) {
        use prometheus::proto::MetricType;
        use std::io::Write;
        self.scrapes.inc();
        for family in self.registry.gather() {
            let name = family.name();
            let (kind, om_name) = match family.type_() {
                MetricType::COUNTER => ("counter", name.strip_suffix("_total").unwrap_or(name)),
                MetricType::GAUGE => ("gauge", name),
                MetricType::HISTOGRAM => ("histogram", name),
                _ => ("unknown", name),
            };
            let _ = writeln!(
                out,
                "# TYPE {om_name} {kind}\n# HELP {om_name} {}",
                escape(family.help())
            );
            for metric in &family.metric {
                let labels: Vec<String> = metric
                    .label
                    .iter()
                    .map(|l| format!("{}=\"{}\"", l.name(), escape(l.value())))
                    .collect();
                let braces = |extra: &str| {
                    let mut all = labels.clone();
                    if !extra.is_empty() {
                        all.push(extra.to_string());
                    }
                    if all.is_empty() {
                        String::new()
                    } else {
                        format!("{{{}}}", all.join(","))
                    }
                };
                match family.type_() {
                    MetricType::COUNTER => {
                        let _ = writeln!(
                            out,
                            "{om_name}_total{} {}",
                            braces(""),
                            metric.counter.value()
                        );
                    }
                    MetricType::HISTOGRAM => {
                        let h = &metric.histogram;
                        for b in &h.bucket {
                            let le = format!("le=\"{}\"", b.upper_bound());
                            let _ = writeln!(
                                out,
                                "{om_name}_bucket{} {}",
                                braces(&le),
                                b.cumulative_count()
                            );
                        }
                        let _ = writeln!(
                            out,
                            "{om_name}_bucket{} {}",
                            braces("le=\"+Inf\""),
                            h.sample_count()
                        );
                        let _ = writeln!(out, "{om_name}_count{} {}", braces(""), h.sample_count());
                        let _ = writeln!(out, "{om_name}_sum{} {}", braces(""), h.sample_sum());
                    }
                    _ => {
                        let _ = writeln!(out, "{om_name}{} {}", braces(""), metric.gauge.value());
                    }
                }
            }
        }
    }
}

/// A label value or HELP text as OpenMetrics writes it: backslash, double quote and
/// newline escaped (a raw newline would end the line, and the rest would read as a sample).
fn escape(text: &str) -> Cow<'_, str> {
    if !text.contains(['\\', '"', '\n']) {
        return Cow::Borrowed(text);
    }
    let mut escaped = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\\' => escaped.push_str("\\\\"),
            '"' => escaped.push_str("\\\""),
            '\n' => escaped.push_str("\\n"),
            c => escaped.push(c),
        }
    }
    Cow::Owned(escaped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn openmetrics_escapes_backslashes_quotes_and_newlines() {
        let telemetry = Telemetry::new(1);
        let odd = IntGaugeVec::new(
            Opts::new("fleetsim_test_odd", "Help on two\nlines, a \\ and a \"."),
            &["value"],
        )
        .expect("valid metric");
        odd.with_label_values(&["a\"b\\c\nd"]).set(1);
        telemetry.register(Box::new(odd));
        let mut out = Vec::new();
        telemetry.encode_openmetrics_into(&mut out);
        let text = String::from_utf8(out).unwrap();
        assert!(
            text.contains("# HELP fleetsim_test_odd Help on two\\nlines, a \\\\ and a \\\".\n"),
            "{text}"
        );
        assert!(
            text.contains("\nfleetsim_test_odd{value=\"a\\\"b\\\\c\\nd\"} 1\n"),
            "{text}"
        );
        // Every line is a comment or a sample: no text spilled onto a line of its own.
        for line in text.lines() {
            assert!(
                line.starts_with("# ")
                    || line.starts_with("fleetsim_")
                    || line.starts_with("process_"),
                "{line:?} in {text}"
            );
        }
    }

    #[test]
    fn plain_text_is_not_copied() {
        assert!(matches!(escape("web"), Cow::Borrowed("web")));
        assert_eq!(escape("a\\b"), "a\\\\b");
    }
}
