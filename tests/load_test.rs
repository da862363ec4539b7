//! The load-test knobs, run as a user runs them: constant labels, series-count modes and
//! churn, through the exporter and `generate`.

mod common;

use std::io::Write;
use std::process::Stdio;

use common::{Exporter, parse_exposition, promtool, run};

/// The fleet's own families (not the exporter's telemetry).
fn is_fleet_series(name: &str) -> bool {
    name.starts_with("app_") || name.starts_with("fleetsim_incident")
}

fn promtool_check(body: &str) {
    let mut child = promtool()
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is installed (the test command installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(body.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success() && said.trim().is_empty(),
        "promtool: {said}"
    );
}

#[test]
fn constant_labels_are_on_every_fleet_series_and_promtool_agrees() {
    let exporter = Exporter::start(&[
        "--servers",
        "6",
        "--label",
        "env=test",
        "--const-label",
        "note=say \"hi\"\\now",
    ]);
    let body = exporter.get("/metrics").body;
    let samples = parse_exposition(&body);
    let fleet: Vec<_> = samples
        .iter()
        .filter(|s| is_fleet_series(&s.name))
        .collect();
    assert!(fleet.len() > 50, "{}", fleet.len());
    for s in &fleet {
        assert_eq!(
            s.labels.get("env").map(String::as_str),
            Some("test"),
            "{s:?}"
        );
        assert!(s.labels.contains_key("note"), "{s:?}");
    }
    assert!(
        body.contains(r#"note="say \"hi\"\\now""#),
        "the value is escaped"
    );
    promtool_check(&body);
}

#[test]
fn bad_labels_exit_2_with_one_line() {
    for (args, says) in [
        (vec!["--label", "1env=x"], "must match"),
        (vec!["--label", "env"], "like env=test"),
        (vec!["--label", "server=x"], "fleet's own"),
        (vec!["--label", "__name__=x"], "reserves"),
        (vec!["--label", "env=x", "--label", "env=y"], "twice"),
    ] {
        let mut all = vec!["generate", "--duration", "1m", "--out", "/dev/null"];
        all.extend(&args);
        let out = run(&all);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
        assert!(
            stderr.starts_with("fleetsim: ") && stderr.contains(says),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn csv_gets_a_column_per_constant_label() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("h.csv");
    let result = run(&[
        "generate",
        "--servers",
        "3",
        "--duration",
        "5m",
        "--label",
        "env=test",
        "--label",
        "az=a,b",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(result.status.success(), "{result:?}");
    let text = std::fs::read_to_string(out).unwrap();
    let mut reader = csv::Reader::from_reader(text.as_bytes());
    let header: Vec<String> = reader.headers().unwrap().iter().map(String::from).collect();
    assert_eq!(header.len(), 17);
    assert_eq!(header[15..], ["az", "env"]);
    let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
    assert_eq!(rows.len(), 15);
    for r in &rows {
        assert_eq!((&r[15], &r[16]), ("a,b", "test"), "{r:?}");
    }
}
