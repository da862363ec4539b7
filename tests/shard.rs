//! `--shard I/N`: N processes share one fleet, each a disjoint slice with the same names
//! and series as the whole fleet.

mod common;

use std::collections::BTreeSet;

use common::{Exporter, parse_exposition, run};

fn rows(dir: &std::path::Path, name: &str, shard: Option<&str>) -> Vec<String> {
    let out = dir.join(name);
    let mut args = vec![
        "generate",
        "--servers",
        "10",
        "--start",
        "2026-11-24T00:00:00Z",
        "--duration",
        "2h",
    ];
    args.extend(["--out", out.to_str().unwrap()]);
    if let Some(s) = shard {
        args.extend(["--shard", s]);
    }
    let r = run(&args);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .skip(1)
        .map(String::from)
        .collect()
}

#[test]
fn the_shards_of_a_history_together_are_the_whole_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let mut whole = rows(dir.path(), "whole.csv", None);
    let mut union = Vec::new();
    let mut servers_seen = BTreeSet::new();
    for shard in ["1/3", "2/3", "3/3"] {
        let part = rows(dir.path(), &format!("part{}.csv", &shard[..1]), Some(shard));
        let servers: BTreeSet<String> = part
            .iter()
            .map(|r| r.split(',').nth(1).unwrap().to_string())
            .collect();
        assert!(
            servers.is_disjoint(&servers_seen),
            "shard {shard} repeats a server"
        );
        servers_seen.extend(servers);
        union.extend(part);
    }
    whole.sort();
    union.sort();
    assert_eq!(whole.len(), 120 * 10);
    assert_eq!(union, whole);
}

#[test]
fn a_sharded_exporter_serves_only_its_slice_under_the_fleet_names() {
    let exporter = Exporter::start(&["--servers", "100", "--shard", "2/4"]);
    let samples = parse_exposition(&exporter.get("/metrics").body);
    let servers: BTreeSet<String> = samples
        .iter()
        .filter(|s| s.name == "app_server_up")
        .map(|s| s.labels["server"].clone())
        .collect();
    let expected: BTreeSet<String> = (26..=50).map(|i| format!("srv-{i:03}")).collect();
    assert_eq!(servers, expected);
    let simulated = samples
        .iter()
        .find(|s| s.name == "fleetsim_servers")
        .unwrap();
    assert_eq!(simulated.value, 25.0);
}

#[test]
fn bad_shards_are_usage_errors() {
    for (shard, needle) in [("0/4", "--shard"), ("5/4", "--shard"), ("two", "like 2/4")] {
        let out = run(&["generate", "--duration", "1m", "--shard", shard]);
        assert_eq!(out.status.code(), Some(2));
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{err}");
    }
    let out = run(&[
        "generate",
        "--servers",
        "2",
        "--duration",
        "1m",
        "--shard",
        "1/3",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8(out.stderr).unwrap().contains("empty"));
}
