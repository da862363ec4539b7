//! The course end to end: an outage posted to the admin API takes a server down, a real
//! Prometheus fires ServerDown, a real Alertmanager delivers it to fleetsim's own webhook,
//! and the score says the outage was caught, on its server, after how long.
//!
//! Prometheus and Alertmanager run the shipped prometheus.yml, alerts.yml and
//! alertmanager.yml unchanged but for their addresses (host.docker.internal and
//! alertmanager:9093 rewritten to this test's loopback ports): the `for`, the intervals and
//! the routes are the ones a student gets.

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::alertmanager::Alertmanager;
use common::prometheus::Prometheus;
use common::{Exporter, get, request};
use serde_json::Value;

/// Where the shipped files point, which the test points at its own ports.
const FLEETSIM_TARGET: &str = "host.docker.internal:8000";
const ALERTMANAGER: &str = "alertmanager:9093";
const FLEETSIM_WEBHOOK: &str = "http://host.docker.internal:8001/api/v1/alerts";

fn read(name: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

#[test]
fn the_shipped_files_hold_the_addresses_this_test_rewrites() {
    let prometheus = read("prometheus.yml");
    for address in [FLEETSIM_TARGET, ALERTMANAGER] {
        assert!(
            prometheus.contains(address),
            "prometheus.yml no longer names {address}: the end-to-end test cannot point it here"
        );
    }
    let alertmanager = read("alertmanager/alertmanager.yml");
    let receivers = alertmanager.matches("- name:").count();
    assert!(receivers >= 2, "{alertmanager}");
    assert_eq!(
        alertmanager.matches(FLEETSIM_WEBHOOK).count(),
        receivers,
        "alertmanager.yml: not every receiver posts to {FLEETSIM_WEBHOOK}"
    );
}

/// A copy of the shipped Prometheus config and rules, pointed at `fleetsim` and `am`.
fn start_prometheus(fleetsim: SocketAddr, am: SocketAddr) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    let config = read("prometheus.yml")
        .replace(FLEETSIM_TARGET, &fleetsim.to_string())
        .replace(ALERTMANAGER, &am.to_string());
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    std::fs::write(dir.path().join("alerts.yml"), read("alerts.yml")).unwrap();
    Prometheus::start(dir, &[])
}

/// A calm fleet: no random incidents, so that the score holds only the one posted.
fn calm_config(dir: &Path) -> String {
    let path = dir.join("calm.toml");
    std::fs::write(&path, "[incidents]\nrandom_per_day = 0\n").unwrap();
    path.to_str().unwrap().to_string()
}

fn score(admin: SocketAddr) -> Value {
    let r = get(admin, "/api/v1/score");
    assert_eq!(r.status, 200, "{}", r.body);
    serde_json::from_str(&r.body).unwrap_or_else(|_| panic!("not JSON: {}", r.body))
}

#[test]
fn an_outage_posted_is_caught_by_server_down_through_prometheus_and_alertmanager() {
    let dir = tempfile::tempdir().unwrap();
    let exporter = Exporter::start(&[
        "--servers",
        "10",
        "--config",
        &calm_config(dir.path()),
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    let admin = exporter.admin.expect("the admin API's address");
    let am_config = read("alertmanager/alertmanager.yml")
        .replace(FLEETSIM_WEBHOOK, &format!("http://{admin}/api/v1/alerts"));
    let alertmanager = Alertmanager::start(&am_config);
    let prometheus = start_prometheus(exporter.addr, alertmanager.addr);

    let r = request(
        admin,
        "POST",
        "/api/v1/incidents",
        r#"{"kind":"outage","target":"server=srv-03","duration":"5m"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = serde_json::from_str::<Value>(&r.body).unwrap()["id"]
        .as_u64()
        .unwrap();

    // ServerDown fires after its `for: 1m`, and critical alerts wait 10s in Alertmanager:
    // with 15s scrapes, evaluations and grid, about two minutes. Three are allowed.
    let caught_by = |s: &Value| {
        s["caught"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["incident"]["id"] == id)
            .cloned()
    };
    let deadline = Instant::now() + Duration::from_secs(180);
    let caught = loop {
        let s = score(admin);
        if let Some(caught) = caught_by(&s) {
            break caught;
        }
        assert!(
            Instant::now() < deadline,
            "the outage is not caught 180s after it was posted; Prometheus fires {}; \
             Alertmanager holds {:?}; the score: {s:#}",
            prometheus.query("ALERTS{alertstate=\"firing\"}")["result"],
            alertmanager.active_alerts()
        );
        std::thread::sleep(Duration::from_secs(2));
    };

    assert_eq!(caught["incident"]["kind"], "outage", "{caught:#}");
    assert_eq!(caught["incident"]["servers"][0], "srv-03");
    assert_eq!(caught["incident"]["expected_alert"], "ServerDown");
    assert_eq!(caught["alert"]["alertname"], "ServerDown");
    assert_eq!(caught["alert"]["server"], "srv-03");
    assert_eq!(caught["alert"]["receiver"], "webhook-critical");
    // The alert cannot start before the server has been down for its `for: 1m`, and it
    // reaches fleetsim after it starts.
    let alert_delay = caught["alert_delay_seconds"].as_f64().unwrap();
    let notified = caught["notification_delay_seconds"].as_f64().unwrap();
    assert!(alert_delay >= 60.0, "{caught:#}");
    assert!(notified >= alert_delay, "{caught:#}");

    // fleetsim said so in its log, one line per alert.
    let logged: Vec<String> = exporter.stderr.try_iter().collect();
    assert!(
        logged
            .iter()
            .any(|l| l.contains("alert firing: ServerDown on srv-03 (receiver webhook-critical)")),
        "{logged:#?}"
    );
}
