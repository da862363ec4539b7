//! The OpenMetrics history, imported by promtool into TSDB blocks, and a real Prometheus
//! started on those blocks answering range queries that match the CSV of the same seed.

mod common;

use std::collections::BTreeMap;

use common::prometheus::Prometheus;
use common::{promtool, run};

/// The CSV column of each gauge the exporter serves, and its rounding.
const GAUGES: [(&str, &str, f64); 5] = [
    ("app_cpu_usage", "cpu_usage", 0.005),
    ("app_memory_usage", "memory_usage", 0.005),
    ("app_disk_usage", "disk_usage", 0.005),
    ("app_requests_per_second", "rps", 0.005),
    ("app_server_up", "up", 0.0),
];

#[test]
fn backfilled_history_matches_the_csv_in_a_real_prometheus() {
    let dir = tempfile::tempdir().unwrap();
    // A recent range, well inside Prometheus's retention, whole minutes.
    let now_s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let end_s = now_s / 60 * 60 - 3600;
    let end = fleetsim::units::format_instant(end_s * 1000);
    let range = [
        "--servers",
        "3",
        "--seed",
        "5",
        "--end",
        &end,
        "--duration",
        "6h",
    ];
    let om = dir.path().join("history.om");
    let csv = dir.path().join("history.csv");
    for out in [&om, &csv] {
        let mut args = vec!["generate", "--out", out.to_str().unwrap()];
        args.extend(range);
        let r = run(&args);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    }
    let text = std::fs::read_to_string(&om).unwrap();
    assert!(text.ends_with("# EOF\n"));
    assert!(
        text.contains("# TYPE app_requests counter\n"),
        "OpenMetrics names counter families without _total"
    );

    let blocks = dir.path().join("blocks");
    let out = promtool()
        .args(["tsdb", "create-blocks-from", "openmetrics"])
        .arg(&om)
        .arg(&blocks)
        .output()
        .expect("promtool is installed");
    assert!(
        out.status.success(),
        "promtool: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );

    let prom_dir = tempfile::tempdir().unwrap();
    std::fs::write(
        prom_dir.path().join("prometheus.yml"),
        "global:\n  scrape_interval: 15s\n",
    )
    .unwrap();
    let tsdb = format!("--storage.tsdb.path={}", blocks.display());
    let prometheus = Prometheus::start(prom_dir, &[&tsdb, "--storage.tsdb.retention.time=30d"]);

    // The CSV, by (column, server, unix seconds).
    let csv_text = std::fs::read_to_string(&csv).unwrap();
    let mut lines = csv_text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut expected: BTreeMap<(String, String, i64), f64> = BTreeMap::new();
    for line in lines {
        let f: Vec<&str> = line.split(',').collect();
        let t = fleetsim::units::parse_instant(f[0]).unwrap() / 1000;
        for (i, column) in header.iter().enumerate().skip(4) {
            if let Ok(v) = f[i].parse::<f64>() {
                expected.insert((column.to_string(), f[1].to_string(), t), v);
            }
        }
    }

    let start_s = end_s - 6 * 3600;
    let mut compared = 0;
    for (metric, column, tolerance) in GAUGES {
        let data = prometheus.query_range(metric, start_s as f64, (end_s - 60) as f64, 60.0);
        let series = data["result"].as_array().unwrap();
        assert_eq!(series.len(), 3, "{metric}: {data}");
        for s in series {
            let server = s["metric"]["server"].as_str().unwrap().to_string();
            for point in s["values"].as_array().unwrap() {
                let t = point[0].as_f64().unwrap() as i64;
                let got: f64 = point[1].as_str().unwrap().parse().unwrap();
                // While a server is down its gauges are absent from the history, and
                // Prometheus carries the last sample on for its lookback: skip those.
                if let Some(&want) = expected.get(&(column.to_string(), server.clone(), t)) {
                    assert!(
                        (got - want).abs() <= tolerance + 1e-9,
                        "{metric} {server} at {t}: Prometheus {got}, CSV {want}"
                    );
                    compared += 1;
                }
            }
        }
    }
    assert!(compared >= 5 * 3 * 300, "only {compared} points compared");

    // Counters came through too, and agree with the request rate.
    let rate = prometheus.query(&format!(
        "sum(rate(app_requests_total[5m] @ {}))",
        end_s - 120
    ));
    let rps = prometheus.query(&format!(
        "sum(avg_over_time(app_requests_per_second[5m] @ {}))",
        end_s - 120
    ));
    let rate: f64 = rate["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    let rps: f64 = rps["result"][0]["value"][1]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        (rate - rps).abs() < 0.1 * rps,
        "rate of the counters {rate} vs mean rps {rps}"
    );
}
