//! Alertmanager's webhook on the admin listener, over loopback: a notification taken in,
//! scored against a posted incident, and bad ones refused with what is wrong named and
//! nothing recorded.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use common::{Exporter, get, request};
use serde_json::{Value, json};

fn start() -> Exporter {
    let config = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/fast-grid.toml");
    Exporter::start(&[
        "--servers",
        "4",
        "--config",
        config,
        "--admin-listen",
        "127.0.0.1:0",
    ])
}

fn json_of(r: &common::Response) -> Value {
    serde_json::from_str(&r.body).unwrap_or_else(|_| panic!("not JSON: {}", r.body))
}

/// A notification as Alertmanager sends it, of one alert.
fn notification(status: &str, alertname: &str, server: &str, starts_at: &str) -> String {
    json!({
        "version": "4",
        "groupKey": format!("{{}}:{{alertname=\"{alertname}\", server=\"{server}\"}}"),
        "truncatedAlerts": 0,
        "status": status,
        "receiver": "webhook-critical",
        "groupLabels": {"alertname": alertname, "server": server},
        "commonLabels": {"alertname": alertname, "server": server},
        "commonAnnotations": {},
        "externalURL": "http://alertmanager:9093",
        "alerts": [{
            "status": status,
            "labels": {"alertname": alertname, "server": server, "severity": "critical"},
            "annotations": {"summary": format!("{server} is down")},
            "startsAt": starts_at,
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "http://prometheus:9090/graph",
            "fingerprint": format!("{alertname}-{server}"),
        }],
    })
    .to_string()
}

/// A POST with the given Content-Type header line (or none), bounded in time.
fn post_typed(addr: SocketAddr, content_type: Option<&str>, body: &str) -> (u16, String) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let header = content_type.map_or(String::new(), |t| format!("Content-Type: {t}\r\n"));
    write!(
        stream,
        "POST /api/v1/alerts HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n{header}\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut raw = String::new();
    stream.read_to_string(&mut raw).unwrap();
    let status = raw.split(' ').nth(1).unwrap().parse().unwrap();
    let body = raw.split_once("\r\n\r\n").unwrap().1.to_string();
    (status, body)
}

#[test]
fn a_delivered_alert_catches_the_incident_posted_and_the_log_says_so() {
    let e = start();
    let admin = e.admin.unwrap();
    let r = request(
        admin,
        "POST",
        "/api/v1/incidents",
        r#"{"kind":"outage","target":"server=srv-02","duration":"10m"}"#,
    );
    assert_eq!(r.status, 201, "{}", r.body);
    let incident = json_of(&r);
    // An alert a minute after the incident's start, as Prometheus would date it.
    let start_ms = fleetsim::units::parse_instant(incident["start"].as_str().unwrap()).unwrap();
    let starts_at = fleetsim::units::format_instant(start_ms + 60_000);
    // An incident starts at the model's next grid point but one: it is scored once it has.
    while fleetsim::clock::unix_now_ms() <= start_ms {
        std::thread::sleep(Duration::from_millis(100));
    }
    let r = request(
        admin,
        "POST",
        "/api/v1/alerts",
        &notification("firing", "ServerDown", "srv-02", &starts_at),
    );
    assert_eq!((r.status, json_of(&r)["received"].clone()), (200, json!(1)));
    // And one with nothing behind it.
    let r = request(
        admin,
        "POST",
        "/api/v1/alerts",
        &notification("firing", "HighCpuUsage", "srv-04", &starts_at),
    );
    assert_eq!(r.status, 200, "{}", r.body);

    let score = json_of(&get(admin, "/api/v1/score"));
    assert_eq!(score["counts"]["incidents"], 1, "{score:#}");
    assert_eq!(score["counts"]["caught"], 1, "{score:#}");
    let caught = &score["caught"][0];
    assert_eq!(caught["incident"]["id"], incident["id"]);
    assert_eq!(caught["alert"]["server"], "srv-02");
    assert_eq!(caught["alert_delay_seconds"], 60.0);
    assert_eq!(score["false_alarms"][0]["alertname"], "HighCpuUsage");
    assert_eq!(score["false_alarms"][0]["server"], "srv-04");

    let logged: Vec<String> = e.stderr.try_iter().collect();
    for line in [
        "alert firing: ServerDown on srv-02 (receiver webhook-critical)",
        "alert firing: HighCpuUsage on srv-04 (receiver webhook-critical)",
    ] {
        assert!(
            logged.iter().any(|l| l.contains(line)),
            "{line}: {logged:#?}"
        );
    }
}

#[test]
fn bad_notifications_are_refused_naming_what_is_wrong_and_change_nothing() {
    let e = start();
    let admin = e.admin.unwrap();
    let good = notification("firing", "ServerDown", "srv-01", "2026-12-02T18:00:00Z");
    for (content_type, status, says) in [
        (None, 415, "no Content-Type"),
        (
            Some("text/plain"),
            415,
            "`text/plain` is not application/json",
        ),
        (
            Some("application/x-www-form-urlencoded"),
            415,
            "not application/json",
        ),
    ] {
        let (got, body) = post_typed(admin, content_type, &good);
        assert_eq!(got, status, "{content_type:?}: {body}");
        assert!(body.contains(says), "{content_type:?}: {body}");
    }
    for (body, says) in [
        ("{", "not Alertmanager's webhook JSON"),
        ("[]", "not Alertmanager's webhook JSON"),
        (
            &good.replace("\"version\":\"4\"", "\"version\":\"5\""),
            "version: `5`",
        ),
        (
            &good.replace("2026-12-02T18:00:00Z", "at six"),
            "alerts[0].startsAt: `at six`",
        ),
    ] {
        let (got, answer) = post_typed(admin, Some("application/json"), body);
        assert_eq!(got, 400, "{body}: {answer}");
        let error = serde_json::from_str::<Value>(&answer).unwrap()["error"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(error.contains(says), "{body}: {error}");
        assert_eq!(error.lines().count(), 1, "{error}");
    }
    let score = json_of(&get(admin, "/api/v1/score"));
    assert_eq!(score["counts"]["alerts"], 0, "{score:#}");
    // The right one, with a charset, is taken.
    let (got, body) = post_typed(admin, Some("application/json; charset=utf-8"), &good);
    assert_eq!(got, 200, "{body}");
    let score = json_of(&get(admin, "/api/v1/score"));
    assert_eq!(score["counts"]["alerts"], 1, "{score:#}");
    assert_eq!(score["counts"]["false_alarms"], 1, "{score:#}");
}
