//! `generate`, run as a user runs it, and its CSV read back.

mod common;

use std::collections::BTreeSet;

use common::run;

const HEADER: &str = "timestamp,server,dc,role,up,cpu_usage,memory_usage,disk_usage,network_rx_bytes_per_second,network_tx_bytes_per_second,rps,latency_p50_ms,latency_p95_ms,latency_p99_ms,error_rate";

fn generate(dir: &std::path::Path, name: &str, extra: &[&str]) -> String {
    let out = dir.join(name);
    let mut args = vec!["generate", "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let result = run(&args);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    std::fs::read_to_string(out).unwrap()
}

#[test]
fn default_history_is_seven_days_of_ten_servers_at_one_minute() {
    let dir = tempfile::tempdir().unwrap();
    let text = generate(dir.path(), "data/metriques.csv", &[]);
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some(HEADER));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert_eq!(rows.len(), 100_800);
    assert!(rows.iter().all(|r| r.len() == 15));
    // Ordered by timestamp then server; ten servers per minute.
    let first = &rows[0][0];
    assert_eq!(rows[9][0], *first);
    assert_ne!(rows[10][0], *first);
    assert!(first.ends_with(":00Z") && first.len() == 20, "{first}");
    for window in rows.windows(2) {
        assert!(
            (window[0][0], window[0][1]) < (window[1][0], window[1][1]),
            "{window:?}"
        );
    }
    let servers: BTreeSet<&str> = rows.iter().map(|r| r[1]).collect();
    assert_eq!(servers.len(), 10);
    let roles: BTreeSet<&str> = rows.iter().map(|r| r[3]).collect();
    assert_eq!(
        roles,
        BTreeSet::from(["api", "cache", "db", "web", "worker"])
    );
    for r in &rows {
        match r[4] {
            "1" => {
                for (i, field) in r.iter().enumerate().skip(5) {
                    let v: f64 = field
                        .parse()
                        .unwrap_or_else(|_| panic!("field {i} of {r:?}"));
                    assert!(v >= 0.0, "{r:?}");
                    if (5..=7).contains(&i) {
                        assert!(v <= 100.0, "{r:?}");
                    }
                }
                let (p50, p95, p99): (f64, f64, f64) = (
                    r[11].parse().unwrap(),
                    r[12].parse().unwrap(),
                    r[13].parse().unwrap(),
                );
                assert!(p50 <= p95 && p95 <= p99, "{r:?}");
            }
            "0" => assert!(
                r[5..].iter().all(|f| f.is_empty()),
                "down row with values: {r:?}"
            ),
            other => panic!("up is {other}"),
        }
    }
}

#[test]
fn same_seed_same_file_other_seed_other_file() {
    let dir = tempfile::tempdir().unwrap();
    let range = [
        "--start",
        "2026-11-20T00:00:00Z",
        "--end",
        "2026-11-21T00:00:00Z",
        "--servers",
        "5",
    ];
    let with_seed = |seed: &str, name: &str| {
        let mut args = range.to_vec();
        args.extend(["--seed", seed]);
        generate(dir.path(), name, &args)
    };
    let a = with_seed("7", "a.csv");
    let b = with_seed("7", "b.csv");
    let c = with_seed("8", "c.csv");
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_eq!(a.lines().count(), 1 + 1440 * 5);
}

#[test]
fn more_servers_leave_the_first_ones_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    // Random incidents land on a server drawn from the fleet's size: without them.
    let calm = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/calm.toml");
    let range = [
        "--start",
        "2026-11-20T00:00:00Z",
        "--duration",
        "6h",
        "--config",
        calm,
    ];
    let small = generate(
        dir.path(),
        "small.csv",
        &[&range[..], &["--servers", "3"]].concat(),
    );
    let large = generate(
        dir.path(),
        "large.csv",
        &[&range[..], &["--servers", "9"]].concat(),
    );
    let pick = |text: &str| -> Vec<String> {
        text.lines()
            .skip(1)
            .filter(|l| ["srv-01", "srv-02", "srv-03"].contains(&l.split(',').nth(1).unwrap()))
            .map(String::from)
            .collect()
    };
    // Names are padded to the fleet size's width in both (both below 10): compare whole rows.
    assert_eq!(pick(&small), pick(&large));
}

#[test]
fn step_range_and_config_are_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fleet.toml");
    std::fs::write(
        &config,
        "servers = 4\ndatacenters = [\"paris\", \"tokyo\"]\n",
    )
    .unwrap();
    let text = generate(
        dir.path(),
        "x.csv",
        &[
            "--config",
            config.to_str().unwrap(),
            "--start",
            "2026-11-24T12:00:00Z",
            "--duration",
            "1h",
            "--step",
            "15s",
        ],
    );
    let rows: Vec<&str> = text.lines().skip(1).collect();
    assert_eq!(rows.len(), 240 * 4);
    assert!(rows[0].starts_with("2026-11-24T12:00:00Z,srv-01,paris,"));
    assert!(rows[1].starts_with("2026-11-24T12:00:00Z,srv-02,tokyo,"));
    assert!(
        rows.last()
            .unwrap()
            .starts_with("2026-11-24T12:59:45Z,srv-04,")
    );
    // --servers on the command line wins over the file.
    let text = generate(
        dir.path(),
        "y.csv",
        &[
            "--config",
            config.to_str().unwrap(),
            "--servers",
            "2",
            "--start",
            "2026-11-24T12:00:00Z",
            "--duration",
            "1m",
        ],
    );
    assert_eq!(text.lines().count(), 1 + 2);
}

#[test]
fn the_shipped_config_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let shipped = concat!(env!("CARGO_MANIFEST_DIR"), "/config/fleet.toml");
    let range = ["--start", "2026-11-20T00:00:00Z", "--duration", "3h"];
    let with = generate(
        dir.path(),
        "with.csv",
        &[&range[..], &["--config", shipped]].concat(),
    );
    let without = generate(dir.path(), "without.csv", &range);
    assert_eq!(with, without);
}

#[test]
fn servers_are_padded_to_the_fleet_width() {
    let dir = tempfile::tempdir().unwrap();
    let text = generate(
        dir.path(),
        "w.csv",
        &["--servers", "100", "--duration", "1m"],
    );
    let names: Vec<&str> = text
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap())
        .collect();
    assert_eq!(names.first(), Some(&"srv-001"));
    assert_eq!(names.last(), Some(&"srv-100"));
}

/// The process's umask, from /proc (reading it with umask(2) would change it).
#[cfg(target_os = "linux")]
fn umask() -> u32 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("Umask:")).unwrap();
    u32::from_str_radix(line.split_whitespace().nth(1).unwrap(), 8).unwrap()
}

#[test]
#[cfg(target_os = "linux")]
fn the_history_has_an_ordinary_file_s_permissions() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // Large enough for several direct writes and a padded tail.
    let csv = generate(
        dir.path(),
        "h.csv",
        &["--servers", "200", "--duration", "1d", "--step", "15s"],
    );
    assert_eq!(csv.lines().count(), 1 + 200 * 5760);
    assert!(csv.len() > 3 * (4 << 20), "{} bytes", csv.len());
    assert!(csv.ends_with('\n') && !csv.contains('\0'));
    let mode = std::fs::metadata(dir.path().join("h.csv"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o666 & !umask(), "mode {mode:o}");
}
