//! The admin API over loopback: incidents started, listed and ended on the live fleet, and
//! bad input refused with the field named and nothing applied.

mod common;

use std::time::{Duration, Instant};

use common::{Exporter, parse_exposition, request};
use serde_json::Value;

fn start() -> Exporter {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fast-grid.toml");
    let e = Exporter::start(&[
        "--servers",
        "4",
        "--config",
        config,
        "--tick",
        "100ms",
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    assert!(
        e.admin.is_some(),
        "the exporter did not say where the admin API listens"
    );
    e
}

fn json(r: &common::Response) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|_| panic!("not JSON: {}", r.body))
}

/// Waits until the scrape satisfies `pred`, at most 10 s.
fn wait_scrape(e: &Exporter, what: &str, pred: impl Fn(&[common::Sample]) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let samples = parse_exposition(&e.get("/metrics").body);
        if pred(&samples) {
            return;
        }
        assert!(Instant::now() < deadline, "not seen within 10s: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn up_of(samples: &[common::Sample], server: &str) -> Option<f64> {
    samples
        .iter()
        .find(|s| s.name == "app_server_up" && s.labels["server"] == server)
        .map(|s| s.value)
}

fn incident_series(samples: &[common::Sample]) -> Vec<(String, String)> {
    samples
        .iter()
        .filter(|s| s.name == "fleetsim_incident_active")
        .map(|s| (s.labels["kind"].clone(), s.labels["target"].clone()))
        .collect()
}

#[test]
fn the_admin_api_is_off_unless_asked_and_never_on_the_scrape_port() {
    let plain = Exporter::start(&["--servers", "2"]);
    assert!(plain.admin.is_none());
    assert_eq!(plain.get("/api/v1/incidents").status, 404);
    let e = start();
    assert_eq!(e.get("/api/v1/incidents").status, 404);
    assert_eq!(
        common::get(e.admin.unwrap(), "/api/v1/incidents").status,
        200
    );
    assert_eq!(common::get(e.admin.unwrap(), "/metrics").status, 404);
}

#[test]
fn an_incident_starts_shows_lists_and_ends() {
    let e = start();
    let admin = e.admin.unwrap();
    let r = request(
        admin,
        "POST",
        "/api/v1/incidents",
        r#"{"kind": "outage", "target": "server=srv-02", "duration": "10m"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    assert!(
        r.header("content-type")
            .unwrap()
            .starts_with("application/json")
    );
    let created = json(&r);
    let id = created["id"].as_u64().expect("an id");
    assert_eq!(created["kind"], "outage");
    assert_eq!(created["target"], "server=srv-02");
    assert_eq!(created["duration"], "10m");
    assert_eq!(created["intensity"], 1.0);
    let start = fleetsim::units::parse_instant(created["start"].as_str().unwrap()).unwrap();
    let end = fleetsim::units::parse_instant(created["end"].as_str().unwrap()).unwrap();
    assert_eq!(end - start, 600_000);

    wait_scrape(&e, "srv-02 down and its incident series", |s| {
        up_of(s, "srv-02") == Some(0.0)
            && incident_series(s) == [("outage".to_string(), "server=srv-02".to_string())]
    });
    let samples = parse_exposition(&e.get("/metrics").body);
    assert_eq!(
        up_of(&samples, "srv-01"),
        Some(1.0),
        "another server went down"
    );
    assert!(
        !samples
            .iter()
            .any(|s| s.name == "app_cpu_usage" && s.labels["server"] == "srv-02"),
        "a down server still has its CPU"
    );

    let listed = json(&common::get(admin, "/api/v1/incidents"));
    let ids: Vec<u64> = listed["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [id]);

    let r = request(admin, "DELETE", &format!("/api/v1/incidents/{id}"), "");
    assert_eq!(r.status, 204, "{}", r.body);
    wait_scrape(&e, "srv-02 back up, no incident series", |s| {
        up_of(s, "srv-02") == Some(1.0) && incident_series(s).is_empty()
    });
    assert_eq!(
        request(admin, "DELETE", &format!("/api/v1/incidents/{id}"), "").status,
        404
    );
    assert_eq!(
        request(admin, "DELETE", "/api/v1/incidents/nonsense", "").status,
        404
    );
    assert!(
        json(&common::get(admin, "/api/v1/incidents"))["incidents"]
            .as_array()
            .unwrap()
            .is_empty()
    );
}

#[test]
fn a_cpu_spike_on_a_role_raises_its_servers_cpu() {
    let e = start();
    let admin = e.admin.unwrap();
    let r = request(
        admin,
        "POST",
        "/api/v1/incidents",
        r#"{"kind": "cpu_spike", "target": "role=web", "duration": "5m", "intensity": 0.5}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    wait_scrape(&e, "web servers at 92.5% CPU or more", |s| {
        let web: Vec<f64> = s
            .iter()
            .filter(|x| x.name == "app_cpu_usage" && x.labels["role"] == "web")
            .map(|x| x.value)
            .collect();
        !web.is_empty() && web.iter().all(|&v| v >= 92.5)
    });
}

#[test]
fn bad_input_is_a_400_naming_the_field_and_nothing_is_applied() {
    let e = start();
    let admin = e.admin.unwrap();
    for (body, needle) in [
        (
            r#"{"kind": "meltdown", "target": "server=srv-01", "duration": "5m"}"#,
            "kind",
        ),
        (
            r#"{"kind": "outage", "target": "server=srv-99", "duration": "5m"}"#,
            "target",
        ),
        (
            r#"{"kind": "outage", "target": "planet=earth", "duration": "5m"}"#,
            "target",
        ),
        (
            r#"{"kind": "outage", "target": "server=srv-01", "duration": "-5m"}"#,
            "duration",
        ),
        (
            r#"{"kind": "outage", "target": "server=srv-01", "duration": "0s"}"#,
            "duration",
        ),
        (
            r#"{"kind": "outage", "target": "server=srv-01", "duration": "5m", "intensity": 3}"#,
            "intensity",
        ),
        (
            r#"{"kind": "outage", "target": "server=srv-01", "duration": "5m", "start": "someday"}"#,
            "start",
        ),
        (
            r#"{"kynd": "outage", "target": "server=srv-01", "duration": "5m"}"#,
            "kynd",
        ),
        (
            r#"{"kind": "outage", "target": "server=srv-01"}"#,
            "duration",
        ),
        (r#"{"kind": "outage", "#, "JSON"),
    ] {
        let r = request(admin, "POST", "/api/v1/incidents", body);
        assert_eq!(r.status, 400, "{body}: {}", r.body);
        let error = json(&r)["error"].as_str().unwrap().to_string();
        assert!(
            error.contains(needle),
            "{body}: error {error:?} does not name {needle}"
        );
    }
    assert!(
        json(&common::get(admin, "/api/v1/incidents"))["incidents"]
            .as_array()
            .unwrap()
            .is_empty()
    );
    let samples = parse_exposition(&e.get("/metrics").body);
    assert!(incident_series(&samples).is_empty());
}

#[test]
fn an_admin_port_in_use_is_one_line_and_exit_1() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = common::run(&[
        "exporter",
        "--listen",
        "127.0.0.1:0",
        "--admin-listen",
        &addr,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("admin API") && err.contains("in use"), "{err}");
}
