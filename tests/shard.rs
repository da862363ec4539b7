//! `--shard I/N`: N processes share one fleet, each a disjoint slice with the same names
//! and series as the whole fleet; `--shard auto/N` takes I from where the process runs (a
//! StatefulSet's pod ordinal), so that one manifest serves every shard.

mod common;

use std::collections::BTreeSet;

use common::{Exporter, bin, parse_exposition, run};

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

fn servers_served(exporter: &Exporter) -> (BTreeSet<String>, f64) {
    let samples = parse_exposition(&exporter.get("/metrics").body);
    let servers = samples
        .iter()
        .filter(|s| s.name == "app_server_up")
        .map(|s| s.labels["server"].clone())
        .collect();
    let simulated = samples
        .iter()
        .find(|s| s.name == "fleetsim_servers")
        .unwrap()
        .value;
    (servers, simulated)
}

/// What a StatefulSet of three runs: the same arguments, pods fleetsim-0 to fleetsim-2.
#[test]
fn auto_shards_named_by_their_pods_together_serve_the_whole_fleet_once() {
    let args = ["--servers", "10", "--shard", "auto/3"];
    let pods: Vec<Exporter> = (0..3)
        .map(|ordinal| {
            let host = format!("fleetsim-{ordinal}");
            Exporter::start_with_env(&args, &[("HOSTNAME", &host)])
        })
        .collect();
    let whole = Exporter::start(&["--servers", "10"]);
    let (everyone, ten) = servers_served(&whole);
    assert_eq!(ten, 10.0);
    let mut union = BTreeSet::new();
    let mut simulated = 0.0;
    for (ordinal, pod) in pods.iter().enumerate() {
        let (servers, count) = servers_served(pod);
        assert!(
            servers.is_disjoint(&union),
            "fleetsim-{ordinal} repeats a server: {servers:?}"
        );
        assert_eq!(servers.len() as f64, count);
        union.extend(servers);
        simulated += count;
    }
    assert_eq!(union, everyone);
    assert_eq!(simulated, 10.0);
}

#[test]
fn the_ordinal_variable_wins_over_the_host_name_and_matches_the_named_shard() {
    let dir = tempfile::tempdir().unwrap();
    let named = rows(dir.path(), "named.csv", Some("2/3"));
    let out = dir.path().join("auto.csv");
    let r = bin()
        .args([
            "generate",
            "--servers",
            "10",
            "--start",
            "2026-11-24T00:00:00Z",
        ])
        .args(["--duration", "2h", "--shard", "auto/3"])
        .args(["--out", out.to_str().unwrap()])
        .env("FLEETSIM_SHARD_ORDINAL", "1")
        .env("HOSTNAME", "fleetsim-2")
        .output()
        .unwrap();
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let auto: Vec<String> = std::fs::read_to_string(out)
        .unwrap()
        .lines()
        .skip(1)
        .map(String::from)
        .collect();
    assert!(!auto.is_empty());
    assert_eq!(auto, named);
}

#[test]
fn an_auto_shard_without_an_ordinal_or_past_the_last_is_a_usage_error() {
    type Environment<'a> = &'a [(&'a str, &'a str)];
    let cases: [(&str, Environment, &str); 4] = [
        (
            "auto/3",
            &[("HOSTNAME", "laptop")],
            "does not end in -<ordinal>",
        ),
        (
            "auto/3",
            &[("HOSTNAME", "fleetsim-3")],
            "past the last of 3 shards",
        ),
        (
            "auto/3",
            &[("FLEETSIM_SHARD_ORDINAL", "one")],
            "is not an ordinal",
        ),
        ("auto/0", &[("HOSTNAME", "fleetsim-0")], "at least 1"),
    ];
    for (shard, env, needle) in cases {
        let out = bin()
            .args(["generate", "--duration", "1m", "--shard", shard])
            .env_remove("FLEETSIM_SHARD_ORDINAL")
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let err = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{shard} {env:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(needle), "{shard} {env:?}: {err}");
    }
}
