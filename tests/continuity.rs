//! The live exporter continues the history: its values at an instant are the values that
//! `generate` writes for that instant, counters included.

mod common;

use std::collections::BTreeMap;

use common::{Exporter, parse_exposition, run};

/// The `instance` and `job` labels `generate` gives the history by default.
const TARGET_LABELS: &str = r#",instance="host.docker.internal:8000",job="fleetsim""#;

fn history_at(dir: &std::path::Path, name: &str, instant: &str, extra: &[&str]) -> String {
    let out = dir.join(name);
    let mut args = vec![
        "generate",
        "--out",
        out.to_str().unwrap(),
        "--start",
        instant,
        "--duration",
        "1ms",
        "--step",
        "1ms",
    ];
    args.extend_from_slice(extra);
    let r = run(&args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    std::fs::read_to_string(out).unwrap()
}

#[test]
fn the_exporter_serves_what_generate_writes_for_the_same_instant() {
    let fleet = ["--servers", "6", "--seed", "11"];
    let exporter = Exporter::start(&[&fleet[..], &["--tick", "100ms"]].concat());
    let samples = parse_exposition(&exporter.get("/metrics").body);
    let model_time = samples
        .iter()
        .find(|s| s.name == "fleetsim_model_time_seconds")
        .expect("fleetsim_model_time_seconds")
        .value;
    let instant = fleetsim::units::format_instant((model_time * 1000.0).round() as i64);
    let dir = tempfile::tempdir().unwrap();

    // Gauges against the CSV, to its rounding: the last row of a week of history (stepped
    // through the whole week) and a history of that one instant (started afresh).
    let week_start =
        fleetsim::units::format_instant((model_time * 1000.0).round() as i64 - 7 * 86_400_000);
    let week = {
        let out = dir.path().join("week.csv");
        let mut args = vec![
            "generate",
            "--out",
            out.to_str().unwrap(),
            "--start",
            &week_start,
            "--duration",
            "168h1ms",
            "--step",
            "1h",
        ];
        args.extend_from_slice(&fleet);
        let r = run(&args);
        assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
        std::fs::read_to_string(out).unwrap()
    };
    let week_rows: Vec<&str> = week.lines().filter(|l| l.starts_with(&instant)).collect();
    let csv = history_at(dir.path(), "now.csv", &instant, &fleet);
    assert_eq!(
        week_rows,
        csv.lines().skip(1).collect::<Vec<_>>(),
        "a week of history and a fresh start disagree at {instant}"
    );
    let mut rows = csv.lines();
    let header: Vec<&str> = rows.next().unwrap().split(',').collect();
    let column = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let mut checked = 0;
    for row in rows {
        let f: Vec<&str> = row.split(',').collect();
        assert_eq!(f[0], instant);
        let server = f[1];
        let live = |metric: &str| {
            samples
                .iter()
                .find(|s| {
                    s.name == metric && s.labels.get("server").map(String::as_str) == Some(server)
                })
                .map(|s| s.value)
        };
        assert_eq!(
            live("app_server_up"),
            Some(f[column("up")].parse().unwrap()),
            "{server} up"
        );
        if f[column("up")] == "0" {
            continue;
        }
        for (metric, col, decimals) in [
            ("app_cpu_usage", "cpu_usage", 2),
            ("app_memory_usage", "memory_usage", 2),
            ("app_disk_usage", "disk_usage", 2),
            ("app_requests_per_second", "rps", 2),
        ] {
            let want: f64 = f[column(col)].parse().unwrap();
            let got = live(metric).unwrap_or_else(|| panic!("{metric} of {server} not served"));
            let half_unit = 0.5 / 10f64.powi(decimals) + 1e-9;
            assert!(
                (got - want).abs() <= half_unit,
                "{metric} {server}: exporter {got}, history {want}"
            );
            checked += 1;
        }
    }
    assert!(checked >= 4 * 5, "checked only {checked} values");

    // Counters against the OpenMetrics history, which keeps every digit.
    let om = history_at(dir.path(), "now.om", &instant, &fleet);
    assert_counters_match(&samples, &om);
}

/// The exporter's model time, as an instant `generate --start` takes.
fn model_instant(samples: &[common::Sample]) -> String {
    let model_time = samples
        .iter()
        .find(|s| s.name == "fleetsim_model_time_seconds")
        .expect("fleetsim_model_time_seconds")
        .value;
    fleetsim::units::format_instant((model_time * 1000.0).round() as i64)
}

#[test]
fn an_exporter_that_has_stepped_for_a_while_serves_what_a_fresh_start_computes() {
    // A one-second grid: the exporter steps some grid points, counting each step with what
    // its last sample point says, before it is scraped; `generate` computes the same
    // instant from scratch, summing the sample points since each server's restart.
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fast-grid.toml");
    let fleet = ["--servers", "8", "--seed", "5", "--config", config];
    let exporter = Exporter::start(&[&fleet[..], &["--tick", "100ms"]].concat());
    let first = parse_exposition(&exporter.get("/metrics").body);
    std::thread::sleep(std::time::Duration::from_millis(4_500));
    let samples = parse_exposition(&exporter.get("/metrics").body);
    let (from, instant) = (model_instant(&first), model_instant(&samples));
    assert_ne!(from, instant);
    let dir = tempfile::tempdir().unwrap();
    let om = history_at(dir.path(), "later.om", &instant, &fleet);
    assert_counters_match(&samples, &om);
}

/// Every request and network counter the exporter served equals the history's, to 1e-9.
fn assert_counters_match(samples: &[common::Sample], om: &str) {
    let history: BTreeMap<String, f64> = om
        .lines()
        .filter(|l| l.starts_with("app_requests_total") || l.starts_with("app_network_"))
        .map(|l| {
            let mut parts = l.rsplitn(3, ' ');
            let _timestamp = parts.next();
            let value: f64 = parts.next().unwrap().parse().unwrap();
            // The history carries the scrape's target as Prometheus labels it; the
            // exporter's own exposition does not.
            let series = parts.next().unwrap();
            assert!(series.contains(TARGET_LABELS), "{series}");
            (series.replace(TARGET_LABELS, ""), value)
        })
        .collect();
    assert!(!history.is_empty());
    for s in samples
        .iter()
        .filter(|s| s.name == "app_requests_total" || s.name.starts_with("app_network_"))
    {
        let key = format!(
            "{}{{server=\"{}\",dc=\"{}\",role=\"{}\"{}}}",
            s.name,
            s.labels["server"],
            s.labels["dc"],
            s.labels["role"],
            s.labels
                .get("status")
                .map(|st| format!(",status=\"{st}\""))
                .unwrap_or_default()
        );
        let want = history
            .get(&key)
            .unwrap_or_else(|| panic!("{key} not in the history"));
        assert!(
            (s.value - want).abs() <= 1e-9 * want.abs().max(1.0),
            "{key}: exporter {}, history {want}",
            s.value
        );
    }
}
