//! gzip for a large fleet, where the body is compressed in runs on several threads by the
//! deflater made for exposition text: a standard decoder and a real Prometheus (which
//! always asks for gzip, and checks the stream's CRC) read it back as the plain body.

mod common;

use std::io::Read;
use std::time::{Duration, Instant};

use common::prometheus::Prometheus;
use common::{Exporter, parse_exposition};

/// Large enough for many runs of the compressor, small enough for a quick test.
const SERVERS: &str = "2000";

fn fleet_lines(text: &str) -> Vec<&str> {
    text.lines().filter(|l| l.starts_with("app_")).collect()
}

#[test]
fn a_large_gzip_body_is_the_plain_body_for_a_decoder_and_for_prometheus() {
    // An hour's tick: both scrapes show the frame of the start-up.
    let exporter = Exporter::start(&["--servers", SERVERS, "--tick", "1h"]);
    let (head, zipped) = common::get_raw(exporter.addr, "Accept-Encoding: gzip\r\n");
    assert!(head.contains("content-encoding: gzip"), "{head}");
    let mut text = String::new();
    // A single-member decoder, which also checks the CRC and length in the trailer.
    flate2::read::GzDecoder::new(&zipped[..])
        .read_to_string(&mut text)
        .expect("one valid gzip member");
    let (_, plain) = common::get_raw(exporter.addr, "");
    let plain = String::from_utf8(plain).unwrap();
    assert_eq!(fleet_lines(&text), fleet_lines(&plain));
    assert!(fleet_lines(&plain).len() > 40_000);
    assert!(
        zipped.len() * 4 < plain.len(),
        "gzip saved little: {} of {}",
        zipped.len(),
        plain.len()
    );

    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n\
         scrape_configs:\n  - job_name: fleetsim\n    static_configs:\n      - targets: [\"{}\"]\n",
        exporter.addr
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    let prometheus = Prometheus::start(dir, &[]);
    let expected: Vec<_> = parse_exposition(&plain)
        .into_iter()
        .filter(|s| s.name == "app_cpu_usage")
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    let cpu = loop {
        let up = prometheus.query("up");
        let cpu = prometheus.query("app_cpu_usage");
        let scraped = cpu["result"].as_array().map_or(0, Vec::len);
        if up["result"][0]["value"][1] == "1" && scraped == expected.len() {
            break cpu;
        }
        assert!(
            Instant::now() < deadline,
            "Prometheus did not ingest the gzip scrape within 30s: up {up}, {scraped} of {} cpu series\n{}",
            expected.len(),
            std::fs::read_to_string(prometheus.dir.path().join("prometheus.log"))
                .unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(300));
    };
    // Prometheus read the values the plain body has, to the last digit.
    for r in cpu["result"].as_array().unwrap() {
        let server = r["metric"]["server"].as_str().unwrap();
        let value: f64 = r["value"][1].as_str().unwrap().parse().unwrap();
        let want = expected
            .iter()
            .find(|s| s.labels["server"] == server)
            .unwrap_or_else(|| panic!("{server} is not in the plain body"));
        assert_eq!(value, want.value, "{server}");
    }
    let samples = prometheus.query("scrape_samples_scraped");
    let scraped: f64 = samples["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    // Prometheus asks for OpenMetrics (with its `_created` samples) before the text format.
    let (head, openmetrics) = common::get_raw(
        exporter.addr,
        "Accept: application/openmetrics-text;version=1.0.0\r\n",
    );
    assert!(head.contains("application/openmetrics-text"), "{head}");
    let lines = String::from_utf8(openmetrics)
        .unwrap()
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .count();
    // The exporter's own series move between scrapes; the fleet's do not.
    assert!(
        (scraped - lines as f64).abs() < 5.0,
        "{scraped} samples scraped, {lines} lines"
    );
}
