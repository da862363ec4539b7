//! The answer key `generate` writes beside a history, held against the history itself: an
//! outage's server is down during it and only then, an incident's server shows its effect,
//! a config file's incidents are listed as written, and a week has every kind.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::run;

const EVENTS_HEADER: &str = "kind,server,dc,role,start,end,intensity,alert";

/// A week of the default fleet.
const WEEK: [&str; 4] = ["--start", "2026-11-24T00:00:00Z", "--duration", "7d"];

fn ms(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("`{text}`: {e}"))
        .timestamp_millis()
}

#[derive(Debug, Clone)]
struct Event {
    kind: String,
    server: String,
    role: String,
    start: i64,
    end: i64,
    intensity: String,
    alert: String,
}

/// A history row of a server: time, up, and the values the incidents push.
#[derive(Debug, Clone, Copy)]
struct Row {
    t: i64,
    up: bool,
    cpu: f64,
    memory: f64,
    disk: f64,
    p99_ms: f64,
    error_rate: f64,
}

fn generate(dir: &Path, extra: &[&str]) -> (String, String) {
    let out = dir.join("data/metriques.csv");
    let mut args = vec!["generate", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let result = run(&args);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let events = std::fs::read_to_string(dir.join("data/metriques.events.csv"))
        .expect("the events beside the history");
    (std::fs::read_to_string(out).unwrap(), events)
}

fn events_of(text: &str) -> Vec<Event> {
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(EVENTS_HEADER));
    lines
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 8, "{line}");
            Event {
                kind: f[0].into(),
                server: f[1].into(),
                role: f[3].into(),
                start: ms(f[4]),
                end: ms(f[5]),
                intensity: f[6].into(),
                alert: f[7].into(),
            }
        })
        .collect()
}

/// Each server's rows, in time order.
fn rows_of(csv: &str) -> BTreeMap<String, Vec<Row>> {
    let mut servers: BTreeMap<String, Vec<Row>> = BTreeMap::new();
    for line in csv.lines().skip(1) {
        let f: Vec<&str> = line.split(',').collect();
        let num = |i: usize| f[i].parse::<f64>().unwrap_or(f64::NAN);
        servers.entry(f[1].to_string()).or_default().push(Row {
            t: ms(f[0]),
            up: f[4] == "1",
            cpu: num(5),
            memory: num(6),
            disk: num(7),
            p99_ms: num(13),
            error_rate: num(14),
        });
    }
    servers
}

/// The alert each incident kind is made to fire (alerts.yml).
fn alert_of_kind(kind: &str) -> Option<&'static str> {
    Some(match kind {
        "cpu_spike" => "HighCpuUsage",
        "memory_leak" => "LowMemoryAvailable",
        "disk_fill" => "DiskAlmostFull",
        "latency_spike" => "HighLatencyP99",
        "error_burst" => "HighErrorRate",
        _ => return None,
    })
}

fn is_outage(e: &Event) -> bool {
    e.kind == "outage"
}

#[test]
fn a_week_of_the_default_fleet_lists_every_kind_sorted_with_its_alert() {
    let dir = tempfile::tempdir().unwrap();
    let (_, text) = generate(dir.path(), &WEEK);
    let events = events_of(&text);
    let kinds: BTreeSet<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    for kind in [
        "deploy",
        "restart",
        "outage",
        "cpu_spike",
        "memory_leak",
        "disk_fill",
        "latency_spike",
        "error_burst",
    ] {
        assert!(kinds.contains(kind), "no {kind} in a week: {kinds:?}");
    }
    // The random incidents include outages: an outage with an intensity is one.
    assert!(
        events
            .iter()
            .any(|e| e.kind == "outage" && !e.intensity.is_empty()),
        "no outage incident in a week"
    );
    for w in events.windows(2) {
        assert!(
            (w[0].start, &w[0].server) <= (w[1].start, &w[1].server),
            "not sorted: {w:?}"
        );
    }
    let (week_start, week_end) = (ms("2026-11-24T00:00:00Z"), ms("2026-12-01T00:00:00Z"));
    for e in &events {
        assert!(
            e.start < week_end && e.end > week_start && e.start < e.end,
            "{e:?}"
        );
        match (e.kind.as_str(), alert_of_kind(&e.kind)) {
            (_, Some(alert)) => {
                assert_eq!(e.alert, alert, "{e:?}");
                let i: f64 = e.intensity.parse().unwrap();
                assert!(
                    (0.5..=1.0).contains(&i),
                    "a random incident's intensity: {e:?}"
                );
            }
            ("outage", None) if !e.intensity.is_empty() => assert_eq!(e.alert, "ServerDown"),
            ("outage", None) => {
                // ServerDown's `for` is 1m: a shorter failure does not fire it.
                let fires = e.end - e.start > 60_000;
                assert_eq!(e.alert == "ServerDown", fires, "{e:?}");
                assert!(fires || e.alert.is_empty(), "{e:?}");
            }
            ("deploy" | "restart", None) => {
                assert!(e.alert.is_empty() && e.intensity.is_empty(), "{e:?}");
                assert_eq!(
                    e.end - e.start,
                    15_000,
                    "a restart takes a grid step: {e:?}"
                );
            }
            (other, None) => panic!("unknown kind {other}"),
        }
    }
    // A deploy restarts the role's servers at once.
    let deploys: Vec<&Event> = events.iter().filter(|e| e.kind == "deploy").collect();
    for d in &deploys {
        assert!(
            deploys
                .iter()
                .all(|o| o.start != d.start || o.role == d.role),
            "two roles deploy at once: {d:?}"
        );
    }
}

#[test]
fn outages_and_incidents_show_in_the_history_they_describe() {
    let dir = tempfile::tempdir().unwrap();
    let (csv, text) = generate(dir.path(), &WEEK);
    let events = events_of(&text);
    let servers = rows_of(&csv);
    let mut checked = BTreeMap::<&str, usize>::new();
    for (name, rows) in &servers {
        let mine: Vec<&Event> = events.iter().filter(|e| &e.server == name).collect();
        for row in rows {
            let during = |e: &&&Event| e.start <= row.t && row.t < e.end;
            let down = mine.iter().filter(during).any(|e| is_outage(e));
            assert_eq!(!row.up, down, "{name} at {}: up {}", row.t, row.up);
            if !row.up {
                continue;
            }
            for e in mine.iter().filter(during) {
                // Memory and disk climb first: past the threshold by the hold, the last
                // ten minutes of a random incident.
                let held = row.t >= e.end - 10 * 60_000;
                let shows = match e.kind.as_str() {
                    "cpu_spike" => row.cpu > 80.0,
                    "latency_spike" => row.p99_ms > 2000.0,
                    "error_burst" => row.error_rate > 5.0,
                    "memory_leak" => !held || row.memory > 90.0,
                    "disk_fill" => !held || row.disk > 90.0,
                    _ => true,
                };
                assert!(shows, "{name} at {} under {e:?}: {row:?}", row.t);
                *checked.entry(e.kind.as_str()).or_default() += 1;
            }
        }
    }
    for kind in [
        "cpu_spike",
        "latency_spike",
        "error_burst",
        "memory_leak",
        "disk_fill",
    ] {
        assert!(
            checked.get(kind).is_some_and(|&n| n >= 10),
            "{kind}: {checked:?}"
        );
    }
}

#[test]
fn a_config_file_s_incidents_are_listed_as_written() {
    let dir = tempfile::tempdir().unwrap();
    let config = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/incidents-outage-and-cpu.toml"
    );
    let start = "2026-11-24T00:00:00Z";
    let (csv, text) = generate(
        dir.path(),
        &["--config", config, "--start", start, "--duration", "3h"],
    );
    let events = events_of(&text);
    let t0 = ms(start);
    let incidents: Vec<&Event> = events.iter().filter(|e| !e.intensity.is_empty()).collect();
    let servers = rows_of(&csv);
    let db: BTreeSet<&str> = csv
        .lines()
        .skip(1)
        .filter_map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[3] == "db").then_some(f[1])
        })
        .collect();
    assert!(!db.is_empty());
    assert_eq!(incidents.len(), 1 + db.len(), "{incidents:?}");
    let outage = incidents.iter().find(|e| e.kind == "outage").unwrap();
    assert_eq!(
        (
            outage.server.as_str(),
            outage.start,
            outage.end,
            outage.alert.as_str()
        ),
        ("srv-02", t0 + 3_600_000, t0 + 5_400_000, "ServerDown")
    );
    assert_eq!(outage.intensity, "1.000");
    for e in incidents.iter().filter(|e| e.kind == "cpu_spike") {
        assert!(db.contains(e.server.as_str()), "{e:?}");
        assert_eq!((e.start, e.end), (t0 + 7_200_000, t0 + 8_400_000));
        assert_eq!((e.role.as_str(), e.alert.as_str()), ("db", "HighCpuUsage"));
        let during: Vec<&Row> = servers[&e.server]
            .iter()
            .filter(|r| e.start <= r.t && r.t < e.end)
            .collect();
        assert_eq!(during.len(), 20);
        assert!(during.iter().all(|r| !r.up || r.cpu > 80.0), "{during:?}");
    }
    let down: Vec<i64> = servers["srv-02"]
        .iter()
        .filter(|r| outage.start <= r.t && r.t < outage.end)
        .map(|r| i64::from(r.up))
        .collect();
    assert_eq!(down, vec![0; 30], "srv-02 during its outage");
}

#[test]
fn the_events_follow_an_openmetrics_history_or_go_where_asked_and_nothing_else_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.om");
    let args = ["--start", "2026-11-24T00:00:00Z", "--duration", "1h"];
    let result = run(&[&["generate", "--out", out.to_str().unwrap()][..], &args].concat());
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let beside = std::fs::read_to_string(dir.path().join("x.events.csv")).unwrap();
    assert!(beside.starts_with(EVENTS_HEADER));

    let elsewhere = dir.path().join("key/answers.csv");
    let csv = dir.path().join("h.csv");
    let result = run(&[
        &[
            "generate",
            "--out",
            csv.to_str().unwrap(),
            "--events",
            elsewhere.to_str().unwrap(),
        ][..],
        &args,
    ]
    .concat());
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    assert_eq!(std::fs::read_to_string(&elsewhere).unwrap(), beside);
    let mut left: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    left.sort();
    // No temporary file, and no events file beside h.csv since --events named another.
    assert_eq!(left, ["h.csv", "key", "x.events.csv", "x.om"]);

    let same = run(&[
        &[
            "generate",
            "--out",
            csv.to_str().unwrap(),
            "--events",
            csv.to_str().unwrap(),
        ][..],
        &args,
    ]
    .concat());
    assert_eq!(same.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&same.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--events"), "{stderr}");
}
