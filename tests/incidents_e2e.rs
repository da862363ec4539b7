//! Incidents through the whole stack: each kind makes its alert fire in a real Prometheus,
//! and an outage started through the admin API travels from Prometheus to a real
//! Alertmanager running the shipped config, which delivers it to a webhook listener here,
//! and resolves once the incident is deleted.
//!
//! Prometheus runs a copy of the shipped prometheus.yml with only the addresses changed,
//! and a copy of the shipped rules with `for` shortened; Alertmanager a copy of the shipped
//! config with only the webhook addresses changed.

mod common;

use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use common::alertmanager::{Alertmanager, Webhook};
use common::prometheus::Prometheus;
use common::{Exporter, request};
use serde_json::Value;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn read(name: &str) -> String {
    std::fs::read_to_string(root().join(name)).unwrap()
}

/// The shipped rules with every `for:` set to `for_`.
fn rules_with_for(for_: &str) -> String {
    read("alerts.yml")
        .lines()
        .map(|l| match l.split_once("for:") {
            Some((indent, _)) if l.trim_start().starts_with("for:") => {
                format!("{indent}for: {for_}")
            }
            _ => l.to_string(),
        })
        .collect::<Vec<_>>()
        .join("\n")
}

fn start_prometheus(fleet: SocketAddr, alertmanager: Option<SocketAddr>, for_: &str) -> Prometheus {
    let dir = tempfile::tempdir().unwrap();
    let mut config = read("prometheus.yml");
    assert!(config.contains("host.docker.internal:8000") && config.contains("alertmanager:9093"));
    config = config.replace("host.docker.internal:8000", &fleet.to_string());
    if let Some(am) = alertmanager {
        config = config.replace("alertmanager:9093", &am.to_string());
    }
    std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
    std::fs::write(dir.path().join("alerts.yml"), rules_with_for(for_)).unwrap();
    Prometheus::start(dir, &[])
}

fn firing(prometheus: &Prometheus) -> BTreeSet<(String, String)> {
    let data = prometheus.query("ALERTS{alertstate=\"firing\"}");
    data["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| {
            let m = &s["metric"];
            (
                m["alertname"].as_str().unwrap().to_string(),
                m["server"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect()
}

#[test]
fn each_incident_kind_fires_its_alert_in_a_real_prometheus() {
    // Each kind on its own server, started ten minutes before the exporter (so memory and
    // disk have reached their plateau), for an hour.
    let kinds = [
        ("cpu_spike", "srv-01", "HighCpuUsage"),
        ("memory_leak", "srv-02", "LowMemoryAvailable"),
        ("disk_fill", "srv-03", "DiskAlmostFull"),
        ("latency_spike", "srv-04", "HighLatencyP99"),
        ("error_burst", "srv-05", "HighErrorRate"),
        ("outage", "srv-06", "ServerDown"),
    ];
    let now_ms = fleetsim::clock::unix_now_ms();
    let start = fleetsim::units::format_instant(now_ms / 1000 * 1000 - 600_000);
    // The calm fleet, so that the only incidents are these six.
    let mut config = String::from("[incidents]\nrandom_per_day = 0\n\n");
    for (kind, server, _) in kinds {
        config.push_str(&format!(
            "[[incident]]\nkind = \"{kind}\"\ntarget = \"server={server}\"\nstart = \"{start}\"\nduration = \"1h\"\n\n"
        ));
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("incidents.toml");
    std::fs::write(&path, config).unwrap();
    let exporter = Exporter::start(&["--servers", "10", "--config", path.to_str().unwrap()]);
    let prometheus = start_prometheus(exporter.addr, None, "0s");

    let expected: BTreeSet<(String, String)> = kinds
        .iter()
        .map(|(_, s, a)| (a.to_string(), s.to_string()))
        .collect();
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut seen = firing(&prometheus);
    while !expected.is_subset(&seen) {
        assert!(
            Instant::now() < deadline,
            "after 120s, firing {seen:?}; expected at least {expected:?}"
        );
        std::thread::sleep(Duration::from_secs(2));
        seen = firing(&prometheus);
    }
    // The servers without incidents stay quiet (but for a real outage, which is no false alarm).
    for (alert, server) in &seen {
        let quiet = ["srv-07", "srv-08", "srv-09", "srv-10"].contains(&server.as_str());
        assert!(
            !quiet || alert == "ServerDown",
            "{alert} fires on {server}, which has no incident"
        );
    }
    let active = prometheus.query("fleetsim_incident_active");
    assert_eq!(active["result"].as_array().unwrap().len(), 6, "{active}");
}

fn alert_of(payload: &Value, name: &str, server: &str) -> bool {
    payload["alerts"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|a| a["labels"]["alertname"] == name && a["labels"]["server"] == server)
}

#[test]
fn an_outage_from_the_admin_api_reaches_alertmanager_and_the_webhook_then_resolves() {
    let webhook = Webhook::start();
    let am_config = read("alertmanager/alertmanager.yml");
    assert!(am_config.contains("http://host.docker.internal:8001/"));
    let am_config = am_config.replace(
        "http://host.docker.internal:8001/",
        &format!("http://{}/", webhook.addr),
    );
    let alertmanager = Alertmanager::start(&am_config);

    let grid = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fast-grid.toml");
    let exporter = Exporter::start(&[
        "--servers",
        "5",
        "--config",
        grid,
        "--admin-listen",
        "127.0.0.1:0",
    ]);
    let prometheus = start_prometheus(exporter.addr, Some(alertmanager.addr), "10s");

    let r = request(
        exporter.admin.unwrap(),
        "POST",
        "/api/v1/incidents",
        r#"{"kind": "outage", "target": "server=srv-03", "duration": "30m"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let id = serde_json::from_str::<Value>(&r.body).unwrap()["id"]
        .as_u64()
        .unwrap();

    let delivered = webhook
        .wait_for(Duration::from_secs(150), |p| {
            p["status"] == "firing" && alert_of(p, "ServerDown", "srv-03")
        })
        .unwrap_or_else(|| {
            panic!(
                "no ServerDown for srv-03 delivered within 150s; Prometheus fires {:?}",
                firing(&prometheus)
            )
        });
    // Routed by severity: ServerDown is critical.
    assert_eq!(delivered["receiver"], "webhook-critical", "{delivered}");
    let alert = delivered["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["server"] == "srv-03")
        .unwrap();
    assert_eq!(alert["labels"]["severity"], "critical");
    assert!(
        alert["annotations"]["summary"]
            .as_str()
            .unwrap()
            .contains("srv-03"),
        "{alert}"
    );

    let held = |am: &Alertmanager| {
        am.active_alerts()
            .iter()
            .any(|a| a["labels"]["alertname"] == "ServerDown" && a["labels"]["server"] == "srv-03")
    };
    assert!(
        held(&alertmanager),
        "Alertmanager delivered ServerDown but does not hold it as active"
    );

    let r = request(
        exporter.admin.unwrap(),
        "DELETE",
        &format!("/api/v1/incidents/{id}"),
        "",
    );
    assert_eq!(r.status, 204);
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if !held(&alertmanager) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "ServerDown for srv-03 still active in Alertmanager 120s after the incident ended"
        );
        std::thread::sleep(Duration::from_secs(2));
    }
    assert!(!firing(&prometheus).contains(&("ServerDown".to_string(), "srv-03".to_string())));
}
