//! `fleetsim report`, run on histories `generate` wrote, held against a direct scan of the
//! same CSV: availability, the thresholds crossed, the busiest servers, and the projected
//! full disk of a config file's disk fill; bad input is one located line.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use common::run;

const DAY: [&str; 4] = ["--start", "2026-11-24T00:00:00Z", "--duration", "1d"];

fn ms(text: &str) -> i64 {
    chrono::DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("`{text}`: {e}"))
        .timestamp_millis()
}

fn generate(out: &Path, extra: &[&str]) -> String {
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

fn report(file: &Path, extra: &[&str]) -> String {
    let mut args = vec!["report", file.to_str().unwrap()];
    args.extend_from_slice(extra);
    let result = run(&args);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    String::from_utf8(result.stdout).unwrap()
}

/// The rows of the Markdown table under `## {section}`, as cells (the header row and its
/// rule left out).
fn table(markdown: &str, section: &str) -> Vec<Vec<String>> {
    let heading = format!("## {section}");
    let at = markdown
        .lines()
        .position(|l| l.starts_with(&heading))
        .unwrap_or_else(|| panic!("no {heading} in\n{markdown}"));
    markdown
        .lines()
        .skip(at + 1)
        .take_while(|l| !l.starts_with("## "))
        .filter(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().to_string())
                .collect()
        })
        .collect()
}

struct Row {
    t: i64,
    server: String,
    up: bool,
    values: Vec<f64>,
}

fn rows_of(csv: &str) -> Vec<Row> {
    csv.lines()
        .skip(1)
        .map(|line| {
            let f: Vec<&str> = line.split(',').collect();
            Row {
                t: ms(f[0]),
                server: f[1].to_string(),
                up: f[4] == "1",
                values: f[5..]
                    .iter()
                    .map(|v| v.parse().unwrap_or(f64::NAN))
                    .collect(),
            }
        })
        .collect()
}

/// The alerts of alerts.yml on a row's values (cpu is values[0], memory [1], disk [2],
/// p99 [8], error rate [9]), with their `for`.
/// An alert's name, its `for` and its condition on a row.
type Rule = (&'static str, i64, fn(&Row) -> bool);

fn rules() -> Vec<Rule> {
    vec![
        ("HighCpuUsage", 300_000, |r| r.up && r.values[0] > 80.0),
        ("LowMemoryAvailable", 300_000, |r| {
            r.up && 100.0 - r.values[1] < 10.0
        }),
        ("DiskAlmostFull", 300_000, |r| r.up && r.values[2] > 90.0),
        ("ServerDown", 60_000, |r| !r.up),
        ("HighErrorRate", 300_000, |r| r.up && r.values[9] > 5.0),
        ("HighLatencyP99", 300_000, |r| r.up && r.values[8] > 2000.0),
    ]
}

/// Each server's stretches of rows over each threshold held at least the rule's `for`:
/// (server, alert, first row over, first row back under or the step after the last).
fn scan_crossings(rows: &[Row], step: i64) -> BTreeSet<(String, String, i64, i64)> {
    let mut by_server: BTreeMap<&str, Vec<&Row>> = BTreeMap::new();
    for r in rows {
        by_server.entry(&r.server).or_default().push(r);
    }
    let mut found = BTreeSet::new();
    for (server, rows) in by_server {
        for (alert, for_ms, over) in rules() {
            let mut i = 0;
            while i < rows.len() {
                if !over(rows[i]) {
                    i += 1;
                    continue;
                }
                let first = i;
                while i + 1 < rows.len() && over(rows[i + 1]) {
                    i += 1;
                }
                let end = rows.get(i + 1).map_or(rows[i].t + step, |r| r.t);
                if rows[i].t - rows[first].t >= for_ms {
                    found.insert((server.to_string(), alert.to_string(), rows[first].t, end));
                }
                i += 1;
            }
        }
    }
    found
}

#[test]
fn the_report_agrees_with_a_direct_scan_of_the_csv() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("day.csv");
    let csv = generate(&file, &DAY);
    let rows = rows_of(&csv);
    let markdown = report(&file, &["--top", "3"]);
    assert!(
        markdown.contains(
            "14400 rows of 10 servers, from 2026-11-24T00:00:00Z to 2026-11-24T23:59:00Z"
        ),
        "{markdown}"
    );

    let mut expected = Vec::new();
    let servers: BTreeSet<&str> = rows.iter().map(|r| r.server.as_str()).collect();
    let mut load = Vec::new();
    for server in &servers {
        let mine: Vec<&Row> = rows.iter().filter(|r| r.server == *server).collect();
        let up = mine.iter().filter(|r| r.up).count();
        expected.push((
            server.to_string(),
            mine.len().to_string(),
            format!("{:.2}%", 100.0 * up as f64 / mine.len() as f64),
            (mine.len() - up).to_string(),
        ));
        let cpu: Vec<f64> = mine.iter().filter(|r| r.up).map(|r| r.values[0]).collect();
        load.push((
            cpu.iter().sum::<f64>() / cpu.len() as f64,
            server.to_string(),
        ));
    }
    let availability: Vec<_> = table(&markdown, "Availability")
        .into_iter()
        .map(|c| (c[0].clone(), c[3].clone(), c[4].clone(), c[5].clone()))
        .collect();
    assert_eq!(availability, expected);
    assert!(
        expected.iter().any(|e| e.2 != "100.00%"),
        "a day with random outages has a server down: {expected:?}"
    );

    let crossings: BTreeSet<_> = table(&markdown, "Thresholds crossed")
        .into_iter()
        .map(|c| (c[0].clone(), c[1].clone(), ms(&c[4]), ms(&c[5])))
        .collect();
    let scanned = scan_crossings(&rows, 60_000);
    assert_eq!(crossings, scanned);
    let alerts: BTreeSet<&str> = scanned.iter().map(|c| c.1.as_str()).collect();
    assert!(
        alerts.len() >= 4,
        "a day of random incidents crosses most thresholds: {alerts:?}"
    );

    load.sort_by(|a, b| b.0.total_cmp(&a.0));
    let top: Vec<(String, String)> = table(&markdown, "Top 3 servers by load")
        .into_iter()
        .map(|c| (c[0].clone(), c[3].clone()))
        .collect();
    let expected_top: Vec<(String, String)> = load
        .iter()
        .take(3)
        .map(|(mean, s)| (s.clone(), format!("{mean:.2}%")))
        .collect();
    assert_eq!(top, expected_top);
}

#[test]
fn a_disk_fill_from_a_config_file_is_projected_full_where_its_ramp_ends() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("fill.toml");
    std::fs::write(
        &config,
        "[incidents]\nrandom_per_day = 0\n\n[[incident]]\nkind = \"disk_fill\"\n\
         target = \"server=srv-03\"\nstart = \"1h\"\nduration = \"5h\"\nramp = \"4h\"\n",
    )
    .unwrap();
    let file = dir.path().join("fill.csv");
    // The history ends three hours into the four-hour ramp.
    let start = "2026-11-24T00:00:00Z";
    let csv = generate(
        &file,
        &[
            "--config",
            config.to_str().unwrap(),
            "--start",
            start,
            "--duration",
            "4h",
        ],
    );
    let markdown = report(&file, &["--trend-window", "2h"]);
    let trends = table(&markdown, "Trends");
    let disk = trends
        .iter()
        .find(|c| c[0] == "srv-03" && c[1] == "disk")
        .unwrap_or_else(|| panic!("no disk trend for srv-03:\n{markdown}"));
    // Intensity 1 climbs linearly to 100% at the ramp's end: 5h after the start.
    let full_at = ms(&disk[4]);
    let ramp_end = ms(start) + 5 * 3_600_000;
    assert!(
        (full_at - ramp_end).abs() <= 10 * 60_000,
        "projected full at {} for a ramp ending at 05:00: {disk:?}",
        disk[4]
    );
    let at_ramp_start = rows_of(&csv)
        .into_iter()
        .find(|r| r.server == "srv-03" && r.t == ms(start) + 3_600_000)
        .unwrap()
        .values[2];
    let slope: f64 = disk[3].trim_end_matches(" points/h").parse().unwrap();
    let expected = (100.0 - at_ramp_start) / 4.0;
    assert!(
        (slope - expected).abs() < 0.1 * expected,
        "slope {slope} for {expected} points an hour"
    );
    // The fill is the soonest full of every disk.
    let first_disk = trends.iter().find(|c| c[1] == "disk").unwrap();
    assert_eq!(first_disk, disk);
}

#[test]
fn bad_input_is_one_line_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.csv");
    let csv = generate(
        &good,
        &["--start", "2026-11-24T00:00:00Z", "--duration", "3m"],
    );
    let mut lines: Vec<String> = csv.lines().map(String::from).collect();
    let check = |name: &str, text: &str, expected: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let result = run(&["report", path.to_str().unwrap()]);
        assert_eq!(result.status.code(), Some(1), "{name}");
        assert!(result.stdout.is_empty(), "{name}: no report on bad input");
        let stderr = String::from_utf8_lossy(&result.stderr);
        assert_eq!(
            stderr.trim_end(),
            format!("fleetsim: {}:{expected}", path.display()),
            "{name}"
        );
        assert_eq!(stderr.lines().count(), 1, "{name}: {stderr}");
    };
    check(
        "other.csv",
        "name,value\na,1\n",
        "1: not a fleetsim history: the header should start with `timestamp,server,dc,role,up,cpu_usage,memory_usage,disk_usage,network_rx_bytes_per_second,network_tx_bytes_per_second,rps,latency_p50_ms,latency_p95_ms,latency_p99_ms,error_rate`",
    );
    check("empty.csv", "", "1: empty file, not a fleetsim history");
    // Line 4: the third row, with a CPU that is not a number.
    let mut fields: Vec<String> = lines[3].split(',').map(String::from).collect();
    fields[4] = "1".into();
    fields[5] = "abc".into();
    lines[3] = fields.join(",");
    check(
        "bad-cpu.csv",
        &(lines.join("\n") + "\n"),
        "4: cpu_usage `abc` is not a number",
    );
    lines[3] = "2026-11-24T00:00:00Z,srv-01".into();
    check(
        "short.csv",
        &(lines.join("\n") + "\n"),
        "4: 2 fields where the header has 15",
    );
    let missing = dir.path().join("missing.csv");
    let result = run(&["report", missing.to_str().unwrap()]);
    assert_eq!(result.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&result.stderr);
    assert!(
        stderr.starts_with(&format!("fleetsim: cannot read {}", missing.display())),
        "{stderr}"
    );
    let _ = report(&good, &[]);
}
