//! The admin API over loopback: incidents started, listed and ended on the live fleet, and
//! bad input refused with the field named and nothing applied.

mod common;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use common::{Exporter, parse_exposition, request};
use serde_json::Value;

const FAST_GRID: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fast-grid.toml");

/// The fast grid's step and the exporter's tick in these tests.
const STEP_MS: i64 = 1_000;
const TICK_MS: i64 = 100;

fn start() -> Exporter {
    start_with(FAST_GRID, "4")
}

fn start_with(config: &str, servers: &str) -> Exporter {
    let e = Exporter::start(&[
        "--servers",
        servers,
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
    let body = r#"{"kind": "outage", "target": "server=srv-01", "duration": "5m"}"#;
    for method in ["POST", "GET", "DELETE"] {
        let r = request(e.addr, method, "/api/v1/incidents", body);
        assert_eq!(r.status, 404, "{method}: {}", r.body);
        assert!(r.body.contains("--admin-listen"), "{method}: {}", r.body);
    }
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
    assert_eq!(created["servers"], serde_json::json!(["srv-02"]));
    assert_eq!(created["source"], "api");
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
    let incidents = listed["incidents"].as_array().unwrap();
    let ids: Vec<u64> = incidents
        .iter()
        .map(|i| i["id"].as_u64().unwrap())
        .collect();
    assert_eq!(ids, [id]);
    assert_eq!(incidents[0]["state"], "active");
    assert_eq!(incidents[0]["source"], "api");
    assert_eq!(incidents[0]["servers"], serde_json::json!(["srv-02"]));

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
        (
            r#"{"kind": "outage", "target": "server=srv-3", "duration": "5m"}"#,
            "zero-padded to 2 digits: `srv-03`",
        ),
        (
            r#"{"kind": "outage", "target": "server=srv-01", "duration": "10m", "start": "2020-01-01T00:00:00Z"}"#,
            "start: ",
        ),
        (
            r#"{"kind": "outage", "target": "server=srv-01", "duration": "10m", "start": "2099-01-01T00:00:00Z"}"#,
            "more than a year ahead",
        ),
        (
            r#"{"kind": "outage", "target": "server=srv-01", "duration": "100000000d"}"#,
            "duration: ",
        ),
        (
            r#"{"kind": "disk_fill", "target": "server=srv-01", "duration": "10m", "ramp": "1h"}"#,
            "ramp: ",
        ),
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

/// Unix milliseconds now.
fn wall_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// The instant a scrape's values are for, in unix milliseconds.
fn model_ms(samples: &[common::Sample]) -> i64 {
    let t = samples
        .iter()
        .find(|s| s.name == "fleetsim_model_time_seconds")
        .expect("a scrape tells its model time")
        .value;
    (t * 1000.0).round() as i64
}

fn post(admin: std::net::SocketAddr, body: &str) -> Value {
    let r = request(admin, "POST", "/api/v1/incidents", body);
    assert_eq!(r.status, 201, "{body}: {}", r.body);
    json(&r)
}

#[test]
fn an_outage_starts_at_the_next_grid_point_and_every_frame_from_there_shows_it() {
    let e = start();
    let admin = e.admin.unwrap();
    let created = post(
        admin,
        r#"{"kind": "outage", "target": "server=srv-03", "duration": "10m"}"#,
    );
    let answered = wall_ms();
    let start = fleetsim::units::parse_instant(created["start"].as_str().unwrap()).unwrap();
    // The grid point ahead of the frame served when it was asked: at most one step away.
    assert!(
        start <= answered + STEP_MS,
        "starts {} ms after the answer",
        start - answered
    );
    // In model time, so that a slow machine cannot make it pass or fail: the first frame
    // at or after the start (at most a tick later) has the server down, and so does every
    // one after it.
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut frames_after_start = 0;
    while frames_after_start < 5 {
        let samples = parse_exposition(&e.get("/metrics").body);
        if model_ms(&samples) >= start {
            assert_eq!(
                up_of(&samples, "srv-03"),
                Some(0.0),
                "srv-03 up at {} ms after its outage's start",
                model_ms(&samples) - start
            );
            frames_after_start += 1;
        }
        assert!(
            Instant::now() < deadline,
            "the model time did not reach the start"
        );
        std::thread::sleep(Duration::from_millis(TICK_MS as u64));
    }
}

/// Every counter series of a scrape (`_total`, and the histogram's `_bucket`, `_sum` and
/// `_count`), by name and labels.
fn counters(samples: &[common::Sample]) -> BTreeMap<String, (String, f64)> {
    samples
        .iter()
        .filter(|s| s.name.starts_with("app_"))
        .filter(|s| {
            ["_total", "_bucket", "_sum", "_count"]
                .iter()
                .any(|end| s.name.ends_with(end))
        })
        .map(|s| {
            let server = s.labels.get("server").cloned().unwrap_or_default();
            (format!("{}{:?}", s.name, s.labels), (server, s.value))
        })
        .collect()
}

#[test]
fn counters_never_go_back_while_incidents_come_and_go() {
    let e = start();
    let admin = e.admin.unwrap();
    let changes: Vec<&str> = vec![
        r#"{"kind": "error_burst", "target": "server=srv-01", "duration": "10m"}"#,
        r#"{"kind": "latency_spike", "target": "role=web", "duration": "10m"}"#,
        r#"{"kind": "cpu_spike", "target": "share=0.5", "duration": "10m"}"#,
        r#"{"kind": "outage", "target": "server=srv-04", "duration": "10m"}"#,
        r#"{"kind": "error_burst", "target": "share=1", "duration": "10m", "intensity": 1}"#,
    ];
    let mut previous = counters(&parse_exposition(&e.get("/metrics").body));
    let mut started: Vec<u64> = Vec::new();
    let (mut compared, mut went_down) = (0, std::collections::BTreeSet::new());
    // Each change lands at a different point between two grid points (the scrapes are
    // a third of a step apart), then is undone, while every scrape is compared with the
    // one before.
    for round in 0..(2 * changes.len() * 4) {
        if round % 4 == 0 {
            let n = round / 4;
            if n < changes.len() {
                started.push(post(admin, changes[n])["id"].as_u64().unwrap());
            } else {
                let id = started[n - changes.len()];
                let r = request(admin, "DELETE", &format!("/api/v1/incidents/{id}"), "");
                assert_eq!(r.status, 204, "{}", r.body);
            }
        }
        std::thread::sleep(Duration::from_millis(330));
        let samples = parse_exposition(&e.get("/metrics").body);
        for s in samples
            .iter()
            .filter(|s| s.name == "app_server_up" && s.value == 0.0)
        {
            went_down.insert(s.labels["server"].clone());
        }
        let now = counters(&samples);
        for (series, (server, value)) in &now {
            // A server that went down restarts: its counters begin again, as they should.
            if went_down.contains(server) {
                continue;
            }
            if let Some((_, before)) = previous.get(series) {
                compared += 1;
                assert!(
                    value >= before,
                    "{series} went back from {before} to {value}"
                );
            }
        }
        previous = now;
    }
    assert!(compared > 1_000, "only {compared} comparisons");
    assert!(went_down.contains("srv-04"), "the outage showed");
}

#[test]
fn random_incidents_are_listed_with_their_servers_and_can_be_ended() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("busy.toml");
    std::fs::write(
        &config,
        "resolution = \"1s\"\n[incidents]\nrandom_per_day = 200\n",
    )
    .unwrap();
    let e = start_with(config.to_str().unwrap(), "10");
    let admin = e.admin.unwrap();
    let listed = json(&common::get(admin, "/api/v1/incidents"));
    let incidents = listed["incidents"].as_array().unwrap().clone();
    // 200 a day: one every 7.2 minutes, listed a day ahead.
    assert!(incidents.len() >= 150, "{} listed", incidents.len());
    let names: Vec<String> = (1..=10).map(|i| format!("srv-{i:02}")).collect();
    for i in &incidents {
        assert_eq!(i["source"], "random", "{i}");
        assert!(i["state"] == "scheduled" || i["state"] == "active", "{i}");
        let servers = i["servers"].as_array().unwrap();
        assert_eq!(servers.len(), 1, "{i}");
        assert!(
            names.contains(&servers[0].as_str().unwrap().to_string()),
            "{i}"
        );
        assert_eq!(
            i["target"],
            format!("server={}", servers[0].as_str().unwrap())
        );
    }
    let later = &incidents[incidents.len() / 2];
    assert_eq!(later["state"], "scheduled");
    let id = later["id"].as_u64().unwrap();
    let r = request(admin, "DELETE", &format!("/api/v1/incidents/{id}"), "");
    assert_eq!(r.status, 204, "{}", r.body);
    let listed = json(&common::get(admin, "/api/v1/incidents"));
    let ids: Vec<u64> = listed["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["id"].as_u64().unwrap())
        .collect();
    assert!(!ids.contains(&id), "{id} still listed");
    assert_eq!(
        request(admin, "DELETE", &format!("/api/v1/incidents/{id}"), "").status,
        404
    );

    // A share of the fleet is exactly that share, named in the answer.
    let created = post(
        admin,
        r#"{"kind": "cpu_spike", "target": "share=0.2", "duration": "2h30m"}"#,
    );
    assert_eq!(created["duration"], "2h30m");
    let servers = created["servers"].as_array().unwrap();
    assert_eq!(servers.len(), 2, "{created}");
    let listed = json(&common::get(admin, "/api/v1/incidents"));
    let mine = listed["incidents"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == created["id"])
        .cloned()
        .expect("the new incident is listed");
    assert_eq!(mine["servers"], created["servers"]);
    assert_eq!(mine["source"], "api");
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
