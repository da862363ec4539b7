//! Native histograms end to end: a real Prometheus with `--enable-feature=native-histograms`
//! negotiates the protobuf exposition from the real exporter and ingests the request
//! duration histogram in its native form, which PromQL's native-histogram functions then
//! read; the fleet's gauges and the exporter's own series come through the same scrape.
//!
//! There is no promtool check for the protobuf format (`promtool check metrics` reads
//! text only): the format's bytes are checked by the decoder in the encoder's unit tests,
//! and here by Prometheus itself.

mod common;

use std::io::Read;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::Exporter;
use common::prometheus::Prometheus;
use serde_json::Value;

/// What Prometheus 2.42 sends with native histograms enabled.
const ACCEPT: &str = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited,application/openmetrics-text;version=1.0.0;q=0.8,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(n, _)| n.trim().eq_ignore_ascii_case(name))
        .map(|(_, v)| v.trim())
}

#[test]
fn the_exporter_answers_protobuf_to_prometheus_and_gzips_it_when_asked() {
    let exporter = Exporter::start(&["--servers", "3"]);
    let (head, body) = common::get_raw(
        exporter.addr,
        &format!("Accept: {ACCEPT}\r\nAccept-Encoding: gzip\r\n"),
    );
    // The helper gives the head in lower case.
    assert!(head.starts_with("http/1.1 200"), "{head}");
    assert_eq!(
        header(&head, "content-type"),
        Some(
            "application/vnd.google.protobuf; proto=io.prometheus.client.metricfamily; encoding=delimited"
        )
    );
    assert_eq!(header(&head, "content-encoding"), Some("gzip"));
    let mut proto = Vec::new();
    flate2::read::GzDecoder::new(&body[..])
        .read_to_end(&mut proto)
        .expect("a gzip body");
    // The first family is app_server_up: a delimited message whose field 1 is its name.
    let start = proto.iter().position(|&b| b < 0x80).expect("a length") + 1;
    assert_eq!(proto[start], 0x0a, "{:?}", &proto[..8]);
    let name = &proto[start + 2..start + 2 + proto[start + 1] as usize];
    assert_eq!(name, b"app_server_up");

    // Without protobuf in Accept, still text.
    let (head, body) = common::get_raw(exporter.addr, "Accept: */*\r\n");
    assert!(
        header(&head, "content-type")
            .unwrap()
            .starts_with("text/plain")
    );
    assert!(String::from_utf8(body).unwrap().contains("app_server_up{"));
}

fn start_prometheus(target: SocketAddr) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n  - job_name: fleetsim\n    static_configs:\n      - targets: [\"{target}\"]\n"
    );
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    Prometheus::start(dir, &["--enable-feature=native-histograms"])
}

/// The query's instant vector as (server label, value) pairs.
fn by_server(data: &Value) -> Vec<(String, f64)> {
    data["result"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let server = r["metric"]["server"].as_str().unwrap_or("").to_string();
            let value = r["value"][1]
                .as_str()
                .and_then(|v| v.parse::<f64>().ok())
                .unwrap_or(f64::NAN);
            (server, value)
        })
        .collect()
}

#[test]
fn prometheus_ingests_the_native_histogram_and_the_gauges_from_the_protobuf_scrape() {
    let grid = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fast-grid.toml");
    let exporter = Exporter::start(&["--servers", "6", "--config", grid]);
    let prometheus = start_prometheus(exporter.addr);

    let quantile =
        "histogram_quantile(0.9, sum by (server) (rate(app_request_duration_seconds[30s])))";
    let count = "histogram_count(sum by (server) (rate(app_request_duration_seconds[30s])))";
    let up = "app_server_up == 1";
    // rate() needs two scrapes of each histogram; a server may go down or come back in
    // the meantime, so wait until the up servers and the quantiles agree. A server that
    // has just restarted has counted no request yet (its quantile is NaN): wait past it.
    let deadline = Instant::now() + Duration::from_secs(30);
    let (servers_up, quantiles) = loop {
        let servers_up = by_server(&prometheus.query(up));
        let quantiles = by_server(&prometheus.query(quantile));
        let mut up_names: Vec<_> = servers_up.iter().map(|s| s.0.clone()).collect();
        let mut q_names: Vec<_> = quantiles.iter().map(|s| s.0.clone()).collect();
        up_names.sort();
        q_names.sort();
        let counted = quantiles.iter().all(|(_, q)| !q.is_nan());
        if !up_names.is_empty() && up_names == q_names && counted {
            break (servers_up, quantiles);
        }
        assert!(
            Instant::now() < deadline,
            "no native quantile per up server within 30s: up {servers_up:?}, quantiles {quantiles:?}\n{}",
            std::fs::read_to_string(prometheus.dir.path().join("prometheus.log"))
                .unwrap_or_default()
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    for (server, q) in &quantiles {
        // The model's durations: a few ms to a few s, within the histogram's range.
        assert!(q.is_finite() && *q > 0.0 && *q < 20.0, "{server}: p90 {q}");
    }

    let counts = by_server(&prometheus.query(count));
    assert_eq!(counts.len(), servers_up.len(), "{counts:?}");
    for (server, c) in &counts {
        assert!(c.is_finite() && *c >= 0.0, "{server}: {c} requests/s");
    }

    // Prometheus 2.42 keeps only the native form of a histogram that has both.
    let classic = prometheus.query("app_request_duration_seconds_bucket");
    assert_eq!(classic["result"], Value::Array(vec![]), "{classic}");

    // The gauges, the model's time and the exporter's own series come the same way.
    let cpu = by_server(&prometheus.query("app_cpu_usage"));
    assert_eq!(cpu.len(), servers_up.len(), "{cpu:?}");
    assert!(
        cpu.iter().all(|(_, v)| (0.0..=100.0).contains(v)),
        "{cpu:?}"
    );
    for own in ["fleetsim_model_time_seconds", "fleetsim_scrapes_total"] {
        let data = prometheus.query(own);
        assert_eq!(by_server(&data).len(), 1, "{own}: {data}");
    }
}
