//! The load-test knobs, run as a user runs them: constant labels, series-count modes and
//! churn, through the exporter and `generate`.

mod common;

use common::{Exporter, parse_exposition, run};

/// The fleet's own families (not the exporter's telemetry).
fn is_fleet_series(name: &str) -> bool {
    name.starts_with("app_") || name.starts_with("fleetsim_incident")
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
    common::promtool_check(&body);
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
        let stderr = generate_is_refused(&args);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
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

/// The slot of a server name: `srv-03` for `srv-03` and `srv-03-20261201t1110`.
fn slot(name: &str) -> &str {
    &name[..6]
}

#[test]
fn generate_with_churn_renames_servers_at_the_interval() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("h.csv");
    let result = run(&[
        "generate",
        "--servers",
        "20",
        "--churn",
        "0.2",
        "--churn-interval",
        "10m",
        "--start",
        "2026-11-24T12:00:00Z",
        "--duration",
        "1h",
        "--step",
        "1m",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(result.status.success(), "{result:?}");
    let text = std::fs::read_to_string(out).unwrap();
    let mut by_time: Vec<(String, Vec<String>)> = Vec::new();
    for line in text.lines().skip(1) {
        let mut f = line.split(',');
        let (t, server) = (f.next().unwrap().to_string(), f.next().unwrap().to_string());
        match by_time.last_mut() {
            Some((last, names)) if *last == t => names.push(server),
            _ => by_time.push((t, vec![server])),
        }
    }
    assert_eq!(by_time.len(), 60);
    let mut renamed = 0;
    for pair in by_time.windows(2) {
        let ((_, a), (t, b)) = (&pair[0], &pair[1]);
        assert_eq!(a.len(), 20);
        let slots_a: Vec<&str> = a.iter().map(|n| slot(n)).collect();
        let slots_b: Vec<&str> = b.iter().map(|n| slot(n)).collect();
        assert_eq!(slots_a, slots_b, "one row per slot");
        let changed: Vec<(&String, &String)> = a.iter().zip(b).filter(|(x, y)| x != y).collect();
        // Names change only on the ten minutes, to a name born then.
        let minute = &t[14..16];
        if minute.ends_with('0') {
            let born = format!(
                "{}{}{}t{}{}",
                &t[0..4],
                &t[5..7],
                &t[8..10],
                &t[11..13],
                minute
            );
            for (_, new) in &changed {
                assert!(new.ends_with(&born), "{new} at {t}");
            }
            renamed += changed.len();
        } else {
            assert!(changed.is_empty(), "{changed:?} at {t}");
        }
    }
    // Five interval starts after the first row, about four replacements each.
    assert!((8..=35).contains(&renamed), "{renamed} renamed");
}

#[test]
fn a_new_machines_counters_start_from_zero_at_its_birth() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("h.om");
    let result = run(&[
        "generate",
        "--config",
        concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/calm.toml"),
        "--servers",
        "10",
        "--churn",
        "0.3",
        "--churn-interval",
        "5m",
        "--start",
        "2026-11-24T12:00:00Z",
        "--duration",
        "30m",
        "--step",
        "1m",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(result.status.success(), "{result:?}");
    let text = std::fs::read_to_string(out).unwrap();
    let start = 1_795_521_600.0; // 2026-11-24T12:00:00Z
    let mut first_seen: std::collections::BTreeMap<String, (f64, f64)> = Default::default();
    let mut created: std::collections::BTreeMap<String, f64> = Default::default();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (series, rest) = line.split_once("} ").unwrap();
        let (value, t) = rest.split_once(' ').unwrap();
        let (value, t): (f64, f64) = (value.parse().unwrap(), t.parse().unwrap());
        let server = series
            .split("server=\"")
            .nth(1)
            .unwrap()
            .split('"')
            .next()
            .unwrap();
        if series.starts_with("app_requests_total{") && series.contains("status=\"2xx\"") {
            first_seen.entry(server.to_string()).or_insert((t, value));
        }
        if series.starts_with("app_requests_created{") {
            created.insert(server.to_string(), value);
        }
    }
    let mut born_here = 0;
    for (server, (t, value)) in &first_seen {
        if *t > start {
            // A machine born during the history: it starts at its birth, from zero.
            born_here += 1;
            assert_eq!(*value, 0.0, "{server} at {t}");
            assert_eq!(created[server], *t, "{server}");
            assert_eq!((*t - start) % 300.0, 0.0, "{server} born at {t}");
        }
    }
    assert!(born_here >= 5, "{born_here} machines born");
}

fn names_at(body: &str) -> (f64, Vec<String>) {
    let samples = parse_exposition(body);
    let time = samples
        .iter()
        .find(|s| s.name == "fleetsim_model_time_seconds")
        .unwrap()
        .value;
    let mut names: Vec<String> = samples
        .iter()
        .filter(|s| s.name == "app_server_up")
        .map(|s| s.labels["server"].clone())
        .collect();
    names.sort();
    (time, names)
}

fn generated_names(extra: &[&str], at: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("h.csv");
    let mut args = vec![
        "generate",
        "--start",
        at,
        "--duration",
        "1s",
        "--step",
        "1s",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(extra);
    let result = run(&args);
    assert!(result.status.success(), "{result:?}");
    let text = std::fs::read_to_string(out).unwrap();
    let mut names: Vec<String> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().to_string())
        .collect();
    names.sort();
    names
}

#[test]
fn the_exporter_and_generate_agree_on_who_is_in_the_fleet() {
    let knobs = [
        "--servers",
        "10",
        "--series-mode",
        "gradual-change",
        "--series-change-interval",
        "1h",
        "--min-servers",
        "2",
        "--series-change-rate",
        "1",
        "--churn",
        "0.5",
        "--churn-interval",
        "1m",
    ];
    let exporter = Exporter::start(&knobs);
    let body = exporter.get("/metrics").body;
    drop(exporter);
    common::promtool_check(&body);
    let (time, names) = names_at(&body);
    // gradual-change from 2 to 10 by 1 an hour: 16 hours up and down.
    let p = (time / 3600.0).floor() as i64 % 16;
    let count = 2 + if p <= 8 { p } else { 16 - p } as usize;
    assert_eq!(names.len(), count, "{names:?}");
    let slots: Vec<&str> = names.iter().map(|n| slot(n)).collect();
    let expected: Vec<String> = (1..=count).map(|i| format!("srv-{i:02}")).collect();
    assert_eq!(slots, expected);
    assert!(
        names.iter().any(|n| n.len() > 6),
        "churn renamed no one: {names:?}"
    );

    let at = chrono::DateTime::from_timestamp_millis((time * 1000.0).round() as i64)
        .unwrap()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    assert_eq!(generated_names(&knobs, &at), names, "at {at}");
    // A shard names its servers as the whole fleet does.
    let mut sharded: Vec<&str> = knobs.to_vec();
    sharded.extend(["--shard", "1/2"]);
    let slice = generated_names(&sharded, &at);
    assert!(
        !slice.is_empty() && slice.iter().all(|n| names.contains(n)),
        "{slice:?}"
    );
}

#[test]
fn bad_shape_flags_exit_2_with_one_line() {
    for (args, says) in [
        (vec!["--series-mode", "sometimes"], "sometimes"),
        (vec!["--churn", "1.5"], "--churn"),
        (
            vec!["--churn", "0.1", "--churn-interval", "5s"],
            "resolution",
        ),
        (
            vec!["--series-mode", "spike", "--spike-multiplier", "0.5"],
            "--spike-multiplier",
        ),
        (
            vec!["--series-mode", "gradual", "--min-servers", "10"],
            "--min-servers",
        ),
    ] {
        let stderr = generate_is_refused(&args);
        assert!(stderr.contains(says), "{args:?}: {stderr}");
    }
}

#[test]
fn the_config_files_knobs_apply_and_flags_win() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fleet.toml");
    std::fs::write(
        &config,
        "servers = 10\n[labels]\nenv = \"file\"\nteam = \"core\"\n\
         [load_test]\nseries_mode = \"double-halve\"\nseries_change_interval = \"1m\"\n",
    )
    .unwrap();
    let out = dir.path().join("h.csv");
    let generate = |extra: &[&str]| {
        let mut args = vec![
            "generate",
            "--config",
            config.to_str().unwrap(),
            "--start",
            "2026-11-24T12:00:00Z",
            "--duration",
            "2m",
            "--step",
            "1m",
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend(extra);
        let result = run(&args);
        assert!(result.status.success(), "{result:?}");
        let text = std::fs::read_to_string(&out).unwrap();
        text.lines().skip(1).map(String::from).collect::<Vec<_>>()
    };
    // 12:00 starts an even minute (every server), 12:01 an odd one (half of them).
    let rows = generate(&["--label", "env=flag"]);
    assert_eq!(rows.len(), 15, "{rows:#?}");
    assert!(rows.iter().all(|r| r.ends_with(",flag,core")), "{rows:#?}");
    assert!(rows[10..].iter().all(|r| r.contains("T12:01:00Z")));
    let rows = generate(&["--series-mode", "disabled"]);
    assert_eq!(rows.len(), 20);
}

/// Runs `generate` with `args` and checks that it is refused as bad usage: exit 2, one
/// line on stderr, and no file written. Returns that line.
fn generate_is_refused(args: &[&str]) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("h.csv");
    let mut all = vec![
        "generate",
        "--duration",
        "1m",
        "--out",
        file.to_str().unwrap(),
    ];
    all.extend(args);
    let out = run(&all);
    assert!(!file.exists(), "{args:?}: nothing is written");
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "{args:?}: {stderr}");
    assert!(stderr.starts_with("fleetsim: "), "{args:?}: {stderr}");
    stderr
}
