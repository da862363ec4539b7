//! Incidents from the config file's `[[incident]]` tables, through the real binary: bad
//! tables are one-line usage errors naming the file and the field; good ones shape the
//! history exactly in their window and nowhere else; and each kind makes its alert of the
//! shipped alerts.yml fire, as `promtool test rules` evaluates it on the generated series.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::{promtool, run};
use fleetsim::units::parse_instant;

/// On the model's 15s grid (and on whole minutes), so that incidents given as durations
/// after it begin and end exactly at grid points, and at rows of a 1m or 15s history.
const START: &str = "2026-11-24T06:00:00Z";

const MINUTE_MS: i64 = 60_000;

fn start_ms() -> i64 {
    parse_instant(START).unwrap()
}

/// Runs `generate` with `args` and asserts success.
fn generate(args: &[&str]) {
    let mut all = vec!["generate"];
    all.extend(args);
    let out = run(&all);
    assert!(
        out.status.success(),
        "fleetsim {all:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn incident_table(kind: &str, target: &str, start: &str, duration: &str, intensity: f64) -> String {
    format!(
        "[[incident]]\nkind = \"{kind}\"\ntarget = \"{target}\"\nstart = \"{start}\"\n\
         duration = \"{duration}\"\nintensity = {intensity:?}\n"
    )
}

// ------------------------------------------------------------------------- bad tables

#[test]
fn bad_incident_tables_are_usage_errors_naming_the_file_and_the_field() {
    let dir = tempfile::tempdir().unwrap();
    let ok = "[[incident]]\nkind = \"outage\"\ntarget = \"server=srv-02\"\nduration = \"5m\"\n";
    let cases: [(&str, String, &[&str]); 6] = [
        (
            "kind",
            "[[incident]]\nkind = \"meltdown\"\ntarget = \"server=srv-02\"\nduration = \"5m\"\n"
                .into(),
            &["incident 1: kind: ", "meltdown", "cpu_spike"],
        ),
        (
            // The second incident is the bad one: the message counts them.
            "target",
            format!(
                "{ok}\n[[incident]]\nkind = \"outage\"\ntarget = \"server=srv-99\"\nduration = \"5m\"\n"
            ),
            &["incident 2: target", "server=srv-99", "matches no server"],
        ),
        (
            "negative-duration",
            "[[incident]]\nkind = \"outage\"\ntarget = \"server=srv-02\"\nduration = \"-5m\"\n"
                .into(),
            &["incident 1: duration: ", "-5m", "negative"],
        ),
        (
            "zero-duration",
            "[[incident]]\nkind = \"outage\"\ntarget = \"server=srv-02\"\nduration = \"0m\"\n"
                .into(),
            &["incident 1: duration: ", "0m", "zero"],
        ),
        (
            "unknown-key",
            format!("{ok}lenght = \"5m\"\n"),
            &["`lenght`", "unknown field"],
        ),
        (
            "intensity",
            format!("{ok}intensity = 2\n"),
            &["incident 1: intensity: ", "0 to 1", "2"],
        ),
    ];
    for (name, text, needles) in cases {
        let config = dir.path().join(format!("bad-{name}.toml"));
        std::fs::write(&config, &text).unwrap();
        let config = config.to_str().unwrap();
        let out_file = dir.path().join(format!("{name}.csv"));
        let out = run(&[
            "generate",
            "--config",
            config,
            "--servers",
            "10",
            "--start",
            START,
            "--duration",
            "1h",
            "--out",
            out_file.to_str().unwrap(),
        ]);
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{name}: stderr {err:?}");
        assert_eq!(err.lines().count(), 1, "{name}: not one line: {err:?}");
        assert!(
            err.starts_with(&format!("fleetsim: {config}")),
            "{name}: does not start with `fleetsim: ` and the file: {err:?}"
        );
        assert!(!err.contains("panicked"), "{name}: {err:?}");
        for needle in needles {
            assert!(
                err.contains(needle),
                "{name}: {err:?} does not say {needle:?}"
            );
        }
        assert!(!out_file.exists(), "{name}: a file was written");
    }
}

// ------------------------------------------------------------------------- the history

/// A CSV's rows by server, each row as its line and its fields.
struct Csv {
    header: Vec<String>,
    rows: Vec<String>,
}

impl Csv {
    fn read(path: &Path) -> Csv {
        let text = std::fs::read_to_string(path).unwrap();
        let mut lines = text.lines();
        let header = lines.next().unwrap().split(',').map(String::from).collect();
        Csv {
            header,
            rows: lines.map(String::from).collect(),
        }
    }

    fn column(&self, name: &str) -> usize {
        self.header.iter().position(|h| h == name).unwrap()
    }

    /// The lines of `server`.
    fn of(&self, server: &str) -> Vec<&str> {
        self.rows
            .iter()
            .map(String::as_str)
            .filter(|l| l.split(',').nth(1) == Some(server))
            .collect()
    }

    fn servers(&self) -> BTreeSet<String> {
        self.rows
            .iter()
            .map(|l| l.split(',').nth(1).unwrap().to_string())
            .collect()
    }

    fn servers_of_role(&self, role: &str) -> BTreeSet<String> {
        let r = self.column("role");
        self.rows
            .iter()
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f[r] == role)
            .map(|f| f[1].to_string())
            .collect()
    }
}

fn row_time(line: &str) -> i64 {
    parse_instant(line.split(',').next().unwrap()).unwrap()
}

#[test]
fn incidents_shape_the_history_in_their_window_and_nowhere_else() {
    let dir = tempfile::tempdir().unwrap();
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/incidents-outage-and-cpu.toml"
    );
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_string();
    let range = ["--start", START, "--duration", "4h", "--step", "1m"];
    let with = |out: &str| {
        let mut args = vec!["--config", config, "--out", out];
        args.extend(range);
        generate(&args);
    };
    let (csv, again, base, om, om_again) = (
        path("incidents.csv"),
        path("again.csv"),
        path("base.csv"),
        path("incidents.om"),
        path("again.om"),
    );
    with(&csv);
    with(&again);
    with(&om);
    with(&om_again);
    let calm = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/calm.toml");
    let mut args = vec!["--config", calm, "--out", base.as_str()];
    args.extend(range);
    generate(&args);

    // Same seed and config, same bytes, incidents included.
    for (a, b) in [(&csv, &again), (&om, &om_again)] {
        assert!(
            std::fs::read(a).unwrap() == std::fs::read(b).unwrap(),
            "{a} and {b} differ"
        );
    }

    let s = start_ms();
    let outage = (s + 60 * MINUTE_MS, s + 90 * MINUTE_MS);
    let spike = (s + 120 * MINUTE_MS, s + 140 * MINUTE_MS);
    let inside = |t: i64, (a, b): (i64, i64)| a <= t && t < b;

    let with = Csv::read(Path::new(&csv));
    let without = Csv::read(Path::new(&base));
    assert_eq!(with.header, without.header);
    assert_eq!(with.servers().len(), 10);
    let up = with.column("up");
    let cpu = with.column("cpu_usage");
    assert_eq!(up + 1, cpu, "the metric fields follow `up`");

    // srv-02: down, its fields empty, exactly in the outage's window; up around it, and
    // untouched before it.
    let srv02 = with.of("srv-02");
    assert_eq!(srv02.len(), 240);
    let base02 = without.of("srv-02");
    let mut down = 0;
    for (line, base_line) in srv02.iter().zip(&base02) {
        let f: Vec<&str> = line.split(',').collect();
        let t = row_time(line);
        if inside(t, outage) {
            down += 1;
            assert_eq!(f[up], "0", "{line}");
            assert!(f[cpu..].iter().all(|v| v.is_empty()), "{line}");
        } else {
            assert_eq!(f[up], "1", "{line}");
            assert!(f[cpu..].iter().all(|v| !v.is_empty()), "{line}");
        }
        if t < outage.0 {
            assert_eq!(line, base_line, "before the outage");
        }
    }
    assert_eq!(down, 30, "one row a minute for 30 minutes");

    // The db servers: CPU pinned in the spike's window, ordinary before it; outside the
    // window their rows are those of the fleet without incidents (the spike never touches
    // the walks' state).
    let db = with.servers_of_role("db");
    assert!(!db.is_empty(), "no db server in the fleet");
    assert!(!db.contains("srv-02"));
    for server in &db {
        let rows = with.of(server);
        let base_rows = without.of(server);
        assert_eq!(rows.len(), 240);
        let mut spiked = 0;
        for (line, base_line) in rows.iter().zip(&base_rows) {
            let t = row_time(line);
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f[up], "1", "{line}");
            let value: f64 = f[cpu].parse().unwrap();
            if inside(t, spike) {
                spiked += 1;
                assert!(value >= 85.0, "{server} in the spike: {line}");
            } else {
                assert_eq!(line, base_line, "{server} outside the spike");
                if t < spike.0 {
                    assert!(value < 80.0, "{server} before the spike: {line}");
                }
            }
        }
        assert_eq!(spiked, 20);
    }

    // Every other server: the same rows, byte for byte, as without the config.
    let others: Vec<String> = with
        .servers()
        .into_iter()
        .filter(|s| s != "srv-02" && !db.contains(s))
        .collect();
    assert!(!others.is_empty());
    for server in &others {
        assert_eq!(with.of(server), without.of(server), "{server}");
    }

    // OpenMetrics: the incidents' own series, only inside their windows; srv-02 has only
    // `app_server_up 0` while it is down.
    let text = std::fs::read_to_string(&om).unwrap();
    assert!(text.ends_with("# EOF\n"));
    let mut active: BTreeMap<String, Vec<i64>> = BTreeMap::new();
    let mut srv02_down: BTreeSet<String> = BTreeSet::new();
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let sample = OmSample::parse(line);
        if sample.name == "fleetsim_incident_active" {
            assert_eq!(sample.value, "1", "{line}");
            active
                .entry(sample.series.to_string())
                .or_default()
                .push(sample.time_ms);
        } else if sample.label("server") == Some("srv-02") && inside(sample.time_ms, outage) {
            srv02_down.insert(format!("{} {}", sample.name, sample.value));
        }
    }
    assert_eq!(
        srv02_down.into_iter().collect::<Vec<_>>(),
        ["app_server_up 0"],
        "srv-02 while down"
    );
    let minutes = |(a, b): (i64, i64)| (a..b).step_by(MINUTE_MS as usize).collect::<Vec<_>>();
    let want: BTreeMap<String, Vec<i64>> = [
        (
            r#"fleetsim_incident_active{kind="outage",target="server=srv-02",instance="host.docker.internal:8000",job="fleetsim"}"#.to_string(),
            minutes(outage),
        ),
        (
            r#"fleetsim_incident_active{kind="cpu_spike",target="role=db",instance="host.docker.internal:8000",job="fleetsim"}"#.to_string(),
            minutes(spike),
        ),
    ]
    .into();
    assert_eq!(active, want, "fleetsim_incident_active samples");
    assert!(text.contains(&format!(
        "fleetsim_incident_active{{kind=\"outage\",target=\"server=srv-02\",instance=\"host.docker.internal:8000\",job=\"fleetsim\"}} 1 {}\n",
        outage.0 / 1000
    )));
}

/// One sample line of the OpenMetrics history: `name{labels} value unix_seconds`.
struct OmSample<'a> {
    /// `name{labels}` as written: already a PromQL selector.
    series: &'a str,
    name: &'a str,
    labels: Vec<(&'a str, &'a str)>,
    value: &'a str,
    time_ms: i64,
}

impl<'a> OmSample<'a> {
    fn parse(line: &'a str) -> OmSample<'a> {
        let mut parts = line.rsplitn(3, ' ');
        let time = parts.next().unwrap();
        let value = parts.next().unwrap_or_else(|| panic!("no value: {line}"));
        let series = parts
            .next()
            .unwrap_or_else(|| panic!("no timestamp: {line}"));
        let seconds: f64 = time.parse().unwrap_or_else(|_| panic!("bad time: {line}"));
        let (name, labels) = common::split_series(series);
        OmSample {
            series,
            name,
            labels,
            value,
            time_ms: (seconds * 1000.0).round() as i64,
        }
    }

    fn label(&self, name: &str) -> Option<&'a str> {
        self.labels
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| *v)
    }
}

// ------------------------------------------------------------------------- the alerts

/// Each kind and the alert of alerts.yml it is made to fire.
const KINDS: [(&str, &str); 6] = [
    ("cpu_spike", "HighCpuUsage"),
    ("memory_leak", "LowMemoryAvailable"),
    ("disk_fill", "DiskAlmostFull"),
    ("latency_spike", "HighLatencyP99"),
    ("error_burst", "HighErrorRate"),
    ("outage", "ServerDown"),
];

/// The history of the alert tests: 40 minutes at the rules' evaluation interval.
const RUN_MINUTES: i64 = 40;
const STEP_S: i64 = 15;
/// When the incident starts, after the start of the run, and for how long.
const INCIDENT_START: &str = "10m";
const INCIDENT_DURATION: &str = "20m";

/// alerts.yml without its `annotations:` blocks (the line, and the more indented lines
/// after it), so that promtool compares labels only.
fn without_annotations(yaml: &str) -> String {
    let mut out = String::new();
    let mut skipping_deeper_than: Option<usize> = None;
    for line in yaml.lines() {
        let indent = line.len() - line.trim_start().len();
        if let Some(level) = skipping_deeper_than {
            if line.trim().is_empty() || indent > level {
                continue;
            }
            skipping_deeper_than = None;
        }
        if line.trim() == "annotations:" {
            skipping_deeper_than = Some(indent);
            continue;
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Each alert of alerts.yml and its `severity` label, in the file's order.
fn severities(yaml: &str) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for line in yaml.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("- alert: ") {
            out.push((name.trim().to_string(), String::new()));
        } else if let Some(severity) = line.strip_prefix("severity: ") {
            out.last_mut().expect("severity before any alert").1 = severity.trim().to_string();
        }
    }
    out
}

/// srv-01's series of an OpenMetrics history starting at `start_ms`, as promtool
/// `input_series` at 15s (`_` where a series is absent), and srv-01's dc and role.
fn input_series(om: &str, start_ms: i64) -> (String, String, String) {
    let points = (RUN_MINUTES * 60 / STEP_S) as usize;
    let mut series: BTreeMap<&str, Vec<Option<&str>>> = BTreeMap::new();
    let mut dc_role = None;
    for line in om.lines().filter(|l| !l.starts_with('#')) {
        let sample = OmSample::parse(line);
        if sample.name.starts_with("fleetsim_") || sample.label("server") != Some("srv-01") {
            continue;
        }
        let offset = sample.time_ms - start_ms;
        assert!(
            offset >= 0 && offset % (STEP_S * 1000) == 0,
            "off the 15s grid: {line}"
        );
        let i = (offset / (STEP_S * 1000)) as usize;
        assert!(i < points, "after the run: {line}");
        let values = series
            .entry(sample.series)
            .or_insert_with(|| vec![None; points]);
        assert!(values[i].is_none(), "twice: {line}");
        values[i] = Some(sample.value);
        if sample.name == "app_server_up" {
            dc_role = Some((
                sample.label("dc").unwrap().to_string(),
                sample.label("role").unwrap().to_string(),
            ));
        }
    }
    assert!(
        series.len() > 20,
        "too few series of srv-01: {}",
        series.len()
    );
    let mut yaml = String::from("    input_series:\n");
    for (name, values) in series {
        let values: Vec<&str> = values.into_iter().map(|v| v.unwrap_or("_")).collect();
        yaml.push_str(&format!(
            "      - series: '{name}'\n        values: '{}'\n",
            values.join(" ")
        ));
    }
    let (dc, role) = dc_role.expect("srv-01 has app_server_up");
    (yaml, dc, role)
}

/// One history of the alert tests: an incident on srv-01 and the alert it must fire, or
/// none (the control).
struct Run {
    name: String,
    incident: Option<AlertingIncident>,
}

struct AlertingIncident {
    kind: &'static str,
    alert: &'static str,
    intensity: f64,
}

#[test]
fn each_incident_kind_fires_its_alert_in_promtool() {
    let dir = tempfile::tempdir().unwrap();
    let alerts = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/alerts.yml"))
        .expect("alerts.yml");
    let stripped = without_annotations(&alerts);
    assert!(!stripped.contains("annotations"), "{stripped}");
    assert!(!stripped.contains("summary:"), "{stripped}");
    let severity = severities(&alerts);
    assert_eq!(severities(&stripped), severity, "stripping lost a rule");
    std::fs::write(dir.path().join("alerts.yml"), &stripped).unwrap();
    // The history carries the scrape target's `instance` and `job`; an alert keeps them
    // unless its expression aggregates `by` the server's own labels.
    let target_labels_of = |alert: &str| -> &'static str {
        let rule = alerts
            .split("- alert: ")
            .find(|r| r.starts_with(alert) && r[alert.len()..].starts_with('\n'))
            .unwrap_or_else(|| panic!("{alert} is not in alerts.yml"));
        if rule.contains(" by (") {
            ""
        } else {
            "\x20             instance: host.docker.internal:8000\n\
             \x20             job: fleetsim\n"
        }
    };
    let severity_of = |alert: &str| -> String {
        severity
            .iter()
            .find(|(a, _)| a == alert)
            .unwrap_or_else(|| panic!("{alert} is not in alerts.yml"))
            .1
            .clone()
    };

    // One history per kind and intensity, and one without any incident.
    let mut runs: Vec<Run> = Vec::new();
    for (kind, alert) in KINDS {
        for intensity in [1.0, 0.0] {
            runs.push(Run {
                name: format!("{kind} at intensity {intensity:?}"),
                incident: Some(AlertingIncident {
                    kind,
                    alert,
                    intensity,
                }),
            });
        }
    }
    runs.push(Run {
        name: "no incident".into(),
        incident: None,
    });

    let mut tests =
        String::from("rule_files:\n  - alerts.yml\n\nevaluation_interval: 15s\n\ntests:\n");
    for (n, Run { name, incident }) in runs.iter().enumerate() {
        let om = dir.path().join(format!("run-{n}.om"));
        let config = dir.path().join(format!("run-{n}.toml"));
        let text = match incident {
            Some(i) => incident_table(
                i.kind,
                "server=srv-01",
                INCIDENT_START,
                INCIDENT_DURATION,
                i.intensity,
            ),
            None => String::new(),
        };
        std::fs::write(&config, text).unwrap();
        generate(&[
            "--config",
            config.to_str().unwrap(),
            "--servers",
            "3",
            "--seed",
            "4",
            "--start",
            START,
            "--duration",
            &format!("{RUN_MINUTES}m"),
            "--step",
            &format!("{STEP_S}s"),
            "--out",
            om.to_str().unwrap(),
        ]);
        let (series, dc, role) = input_series(&std::fs::read_to_string(&om).unwrap(), start_ms());
        tests.push_str(&format!(
            "  - name: '{name}'\n    interval: {STEP_S}s\n{series}    alert_rule_test:\n"
        ));
        match incident {
            Some(AlertingIncident { alert, .. }) => {
                tests.push_str(&format!(
                    "      - eval_time: 8m\n        alertname: {alert}\n        exp_alerts: []\n\
                     \x20     - eval_time: 28m\n        alertname: {alert}\n        exp_alerts:\n\
                     \x20         - exp_labels:\n\
                     \x20             severity: {}\n\
                     \x20             server: srv-01\n\
                     \x20             dc: {dc}\n\
                     \x20             role: {role}\n{}",
                    severity_of(alert),
                    target_labels_of(alert)
                ));
            }
            None => {
                for (alert, _) in &severity {
                    tests.push_str(&format!(
                        "      - eval_time: 28m\n        alertname: {alert}\n        exp_alerts: []\n"
                    ));
                }
            }
        }
    }
    let test_file = dir.path().join("incidents_test.yml");
    std::fs::write(&test_file, &tests).unwrap();

    let out = promtool()
        .args(["test", "rules"])
        .arg(&test_file)
        .output()
        .expect("promtool is installed");
    assert!(
        out.status.success(),
        "promtool test rules failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
