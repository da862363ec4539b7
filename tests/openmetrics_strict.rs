//! What the exporter and `generate` write as OpenMetrics, held against a strict parser
//! (Python's `prometheus_client`): counts of events are whole numbers, as OpenMetrics
//! requires of histogram buckets and counts.

mod common;

use common::{Exporter, strict_openmetrics_parse};

const ACCEPT: &str = "Accept: application/openmetrics-text; version=1.0.0\r\n";

#[test]
fn the_openmetrics_scrape_passes_the_strict_parser_with_a_server_down() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fleet.toml");
    std::fs::write(
        &config,
        "[[incident]]\nkind = \"outage\"\ntarget = \"server=srv-02\"\nduration = \"1h\"\n",
    )
    .unwrap();
    let exporter = Exporter::start(&["--servers", "12", "--config", config.to_str().unwrap()]);
    let (head, body) = common::get_raw(exporter.addr, ACCEPT);
    assert!(head.contains("application/openmetrics-text"), "{head}");
    let text = String::from_utf8_lossy(&body);
    assert!(text.contains("app_request_duration_seconds_bucket{"));
    assert!(text.contains("app_start_time_seconds{"));
    let samples = strict_openmetrics_parse(&body).unwrap_or_else(|e| panic!("refused: {e}"));
    assert!(samples > 11 * 20, "{samples} samples");
}
