//! Alertmanager's webhook on the admin listener, and the score it feeds.
//!
//! - `POST /api/v1/alerts` with Alertmanager's webhook JSON (`"version": "4"`): each alert
//!   is logged on one line and goes to the scoreboard (`score.rs`); 200 with how many.
//! - `GET /api/v1/score`: the scoreboard as JSON.
//!
//! The webhook is strict: `Content-Type: application/json`, at most [`MAX_BODY`] bytes, and
//! a 4xx whose message names what is wrong; a refused notification changes nothing.

use std::collections::BTreeMap;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use serde::Deserialize;
use serde_json::json;

use super::Shared;
use super::admin::{error, json_response, read_json};
use super::score::{Notice, Status};
use crate::clock::unix_now_ms;
use crate::units::parse_instant;

/// The largest notification read: Alertmanager sends a whole group in one, and a group of
/// a thousand alerts with their annotations is well under this.
pub const MAX_BODY: usize = 1024 * 1024;

/// The webhook payload's version this reads.
const VERSION: &str = "4";

/// `POST /api/v1/alerts`.
pub async fn receive(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let body = match read_json(req, MAX_BODY, "Alertmanager's webhook notification").await {
        Ok(body) => body,
        Err(refused) => return refused,
    };
    let notices = match parse(&body) {
        Ok(notices) => notices,
        Err(message) => return error(StatusCode::BAD_REQUEST, &message),
    };
    let now_ms = unix_now_ms();
    for n in &notices {
        tracing::info!(
            "alert {}: {} on {} (receiver {})",
            n.status.name(),
            n.alertname,
            n.server.as_deref().unwrap_or("no server"),
            n.receiver
        );
    }
    shared.score.remember(&shared.schedule(), now_ms);
    shared.score.record(&notices, now_ms);
    json_response(StatusCode::OK, &json!({ "received": notices.len() }))
}

/// `GET /api/v1/score`.
pub fn score(shared: &Shared) -> Response<Full<Bytes>> {
    let now_ms = unix_now_ms();
    shared.score.remember(&shared.schedule(), now_ms);
    let score = shared
        .score
        .score(&shared.members, shared.seed, shared.run_start_ms, now_ms);
    match serde_json::to_value(&score) {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(e) => error(
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("cannot encode the score: {e}"),
        ),
    }
}

/// The webhook payload, as far as the score reads it; other fields are ignored.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Notification {
    version: String,
    // Read so that a payload without it is refused as not Alertmanager's.
    #[allow(dead_code)]
    status: Status,
    receiver: String,
    #[allow(dead_code)]
    group_key: String,
    alerts: Vec<Alert>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Alert {
    status: Status,
    labels: BTreeMap<String, String>,
    starts_at: String,
    #[serde(default)]
    ends_at: Option<String>,
    fingerprint: String,
}

/// The alerts of a webhook notification, or what is wrong with it:
/// `alerts[2].startsAt: ...`.
pub fn parse(body: &[u8]) -> Result<Vec<Notice>, String> {
    let n: Notification = serde_json::from_slice(body)
        .map_err(|e| format!("not Alertmanager's webhook JSON: {e}"))?;
    if n.version != VERSION {
        return Err(format!(
            "version: `{}` is not the webhook payload version {VERSION} this reads",
            n.version
        ));
    }
    n.alerts
        .into_iter()
        .enumerate()
        .map(|(k, a)| notice(a, &n.receiver).map_err(|e| format!("alerts[{k}].{e}")))
        .collect()
}

fn notice(a: Alert, receiver: &str) -> Result<Notice, String> {
    let alertname = match a.labels.get("alertname") {
        Some(name) if !name.is_empty() => name.clone(),
        _ => return Err("labels: no alertname".into()),
    };
    let starts_at_ms = parse_instant(&a.starts_at).map_err(|e| format!("startsAt: {e}"))?;
    let ends_at_ms = match (a.status, &a.ends_at) {
        (Status::Resolved, Some(text)) => {
            Some(parse_instant(text).map_err(|e| format!("endsAt: {e}"))?)
        }
        (Status::Resolved, None) => return Err("endsAt: missing from a resolved alert".into()),
        // A firing alert's endsAt is Alertmanager's guess at when it would expire.
        (Status::Firing, _) => None,
    };
    if a.fingerprint.is_empty() {
        return Err("fingerprint: empty".into());
    }
    Ok(Notice {
        alertname,
        server: a.labels.get("server").cloned(),
        status: a.status,
        starts_at_ms,
        ends_at_ms,
        fingerprint: a.fingerprint,
        receiver: receiver.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A notification as Alertmanager 0.27 sends it, with every field it writes.
    const FIRING: &str = r#"{
      "receiver": "webhook-critical",
      "status": "firing",
      "alerts": [
        {
          "status": "firing",
          "labels": {"alertname": "ServerDown", "dc": "dc1", "job": "fleetsim",
                     "role": "db", "server": "srv-03", "severity": "critical"},
          "annotations": {"summary": "srv-03 is down"},
          "startsAt": "2026-12-02T18:40:15.123456789Z",
          "endsAt": "0001-01-01T00:00:00Z",
          "generatorURL": "http://prometheus:9090/graph?g0.expr=app_server_up+%3D%3D+0",
          "fingerprint": "1a30ba71cca2921f"
        }
      ],
      "groupLabels": {"alertname": "ServerDown", "server": "srv-03"},
      "commonLabels": {"alertname": "ServerDown"},
      "commonAnnotations": {},
      "externalURL": "http://alertmanager:9093",
      "version": "4",
      "groupKey": "{}/{severity=\"critical\"}:{alertname=\"ServerDown\", server=\"srv-03\"}",
      "truncatedAlerts": 0
    }"#;

    #[test]
    fn alertmanagers_payload_is_read() {
        let notices = parse(FIRING.as_bytes()).unwrap();
        assert_eq!(
            notices,
            [Notice {
                alertname: "ServerDown".into(),
                server: Some("srv-03".into()),
                status: Status::Firing,
                starts_at_ms: parse_instant("2026-12-02T18:40:15.123Z").unwrap(),
                ends_at_ms: None,
                fingerprint: "1a30ba71cca2921f".into(),
                receiver: "webhook-critical".into(),
            }]
        );
        let resolved = FIRING
            .replace("\"status\": \"firing\"", "\"status\": \"resolved\"")
            .replace("0001-01-01T00:00:00Z", "2026-12-02T19:40:15+01:00");
        let notices = parse(resolved.as_bytes()).unwrap();
        assert_eq!(notices[0].status, Status::Resolved);
        assert_eq!(
            notices[0].ends_at_ms,
            Some(parse_instant("2026-12-02T18:40:15Z").unwrap())
        );
    }

    #[test]
    fn what_is_wrong_is_named() {
        for (from, to, says) in [
            ("\"version\": \"4\"", "\"version\": \"3\"", "version: `3`"),
            ("\"groupKey\"", "\"groupkey\"", "missing field `groupKey`"),
            (
                "\"status\": \"firing\"",
                "\"status\": \"fired\"",
                "unknown variant `fired`",
            ),
            (
                "\"alertname\": \"ServerDown\",",
                "",
                "alerts[0].labels: no alertname",
            ),
            (
                "2026-12-02T18:40:15.123456789Z",
                "yesterday",
                "alerts[0].startsAt: `yesterday`",
            ),
            (
                "\"fingerprint\": \"1a30ba71cca2921f\"",
                "\"fingerprint\": \"\"",
                "fingerprint: empty",
            ),
            (
                "\"alerts\": [",
                "\"alerts\": 3, \"x\": [",
                "not Alertmanager's webhook JSON",
            ),
        ] {
            assert!(FIRING.contains(from), "{from}");
            let e = parse(FIRING.replacen(from, to, 1).as_bytes()).unwrap_err();
            assert!(e.contains(says), "{to}: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        let resolved_without_end = FIRING
            .replace("\"status\": \"firing\"", "\"status\": \"resolved\"")
            .replace("\"endsAt\": \"0001-01-01T00:00:00Z\",", "");
        let e = parse(resolved_without_end.as_bytes()).unwrap_err();
        assert!(e.starts_with("alerts[0].endsAt: missing"), "{e}");
    }
}
