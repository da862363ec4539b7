//! The admin API, on its own listener (`--admin-listen`) so that the scrape port never
//! exposes it: start, list and end incidents on the live fleet.
//!
//! - `POST /api/v1/incidents` with an incident as JSON (`kind`, `target`, `duration`;
//!   optional `start`, `intensity`, `ramp`): 201 and the incident with its id and the
//!   servers it hits. It shows at the next grid point.
//! - `GET /api/v1/incidents`: every incident not yet ended (the config file's, the API's
//!   and the random ones up to a day ahead), each with its `state`, `source` and `servers`.
//! - `DELETE /api/v1/incidents/{id}`: ends it at the next grid point (random ones too):
//!   204, or 404 for an id with nothing left to end.
//!
//! Bad input gets a 400 whose message names the field; nothing is half-applied. Safe by
//! default, as something that can take the whole fleet down must be:
//! - `--admin-listen :PORT` binds loopback only (an address binds where it says, with a
//!   warning when that is not loopback);
//! - a POST must say `Content-Type: application/json` (else 415): a web page can post a
//!   form or `text/plain` anywhere without asking, but JSON only to a server that answers
//!   the browser's preflight, which this one never does;
//! - a body past [`MAX_BODY`] is a 413, read no further;
//! - at most [`MAX_OPEN_INCIDENTS`](crate::model::incidents::MAX_OPEN_INCIDENTS) incidents that have not ended (else 429);
//! - every error is JSON, `{"error": "..."}`, on one line.

use std::net::SocketAddr;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::{Body, Incoming};
use hyper::header::{CONNECTION, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::{Shared, Source};
use crate::clock::unix_now_ms;
use crate::model::incidents::{Incident, IncidentKind, IncidentSpec, Refused, format_duration_ms};
use crate::units::format_instant;

/// The largest incident read: one is a few hundred bytes.
pub const MAX_BODY: usize = 64 * 1024;

const INCIDENTS: &str = "/api/v1/incidents";

pub async fn respond(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let method = req.method().clone();
    let incident_id = path
        .strip_prefix(INCIDENTS)
        .and_then(|p| p.strip_prefix('/'));
    match (method, path.as_str(), incident_id) {
        (Method::POST, INCIDENTS, _) => match read_json(req, MAX_BODY, "the incident").await {
            Ok(body) => create(shared, &body),
            Err(response) => response,
        },
        (Method::GET, INCIDENTS, _) => list(shared),
        (Method::DELETE, _, Some(id)) => end(shared, id),
        (_, INCIDENTS, _) => error(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST"),
        (_, _, Some(_)) => error(StatusCode::METHOD_NOT_ALLOWED, "use DELETE"),
        (Method::POST, "/api/v1/alerts", _) => super::webhook::receive(shared, req).await,
        (Method::GET, "/api/v1/score", _) => super::webhook::score(shared),
        _ => error(
            StatusCode::NOT_FOUND,
            "not found: the admin API is /api/v1/incidents",
        ),
    }
}

/// Every admin request while the fleet warms up: there is no fleet to change yet.
pub fn warming_up(servers: usize) -> Response<Full<Bytes>> {
    let mut response = error(
        StatusCode::SERVICE_UNAVAILABLE,
        &format!("fleetsim is warming up {servers} servers; try again once /-/ready answers 200"),
    );
    response
        .headers_mut()
        .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
    response
}

/// Logs a warning when the admin API listens where other machines may reach it: it has
/// no authentication, and it can take the whole fleet down.
pub fn warn_if_exposed(addr: SocketAddr) {
    if !addr.ip().to_canonical().is_loopback() {
        tracing::warn!(
            "the admin API listens on {addr}, not on loopback, without authentication: anyone \
             who reaches it can start and end incidents, a whole-fleet outage included; \
             give --admin-listen :{port} (127.0.0.1) unless a container or another machine \
             must reach it, and firewall it if so",
            port = addr.port()
        );
    }
}

/// A POST's JSON body, `what` as its messages name it: 415 unless it says it is JSON, 413
/// past `max_body` bytes (told by its `Content-Length` before a byte is read, or once that
/// many are), 400 when it cannot be read.
pub(super) async fn read_json(
    req: Request<Incoming>,
    max_body: usize,
    what: &str,
) -> Result<Bytes, Response<Full<Bytes>>> {
    if let Err(message) = check_content_type(req.headers().get(CONTENT_TYPE), what) {
        return Err(error(StatusCode::UNSUPPORTED_MEDIA_TYPE, &message));
    }
    let too_large = || {
        let mut response = error(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("the body is over {max_body} bytes, the most read for {what}"),
        );
        // The rest of the body is never read: the connection cannot carry another request.
        response
            .headers_mut()
            .insert(CONNECTION, HeaderValue::from_static("close"));
        response
    };
    let body = req.into_body();
    if body.size_hint().lower() > max_body as u64 {
        return Err(too_large());
    }
    match Limited::new(body, max_body).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) if e.is::<LengthLimitError>() => Err(too_large()),
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            &format!("cannot read the body: {e}"),
        )),
    }
}

/// `Ok` for `application/json`, with parameters (`; charset=utf-8`) or not.
fn check_content_type(value: Option<&HeaderValue>, what: &str) -> Result<(), String> {
    let text = value.and_then(|v| v.to_str().ok()).unwrap_or("");
    let media = text.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("application/json") {
        Ok(())
    } else if text.is_empty() {
        Err(format!(
            "no Content-Type: send {what} as JSON, with Content-Type: application/json"
        ))
    } else {
        Err(format!(
            "Content-Type `{text}` is not application/json: send {what} as JSON, with \
             Content-Type: application/json"
        ))
    }
}

fn create(shared: &Shared, body: &[u8]) -> Response<Full<Bytes>> {
    let spec: IncidentSpec = match serde_json::from_slice(body) {
        Ok(spec) => spec,
        Err(e) => {
            return error(
                StatusCode::BAD_REQUEST,
                &format!("invalid incident JSON: {e}"),
            );
        }
    };
    let now = unix_now_ms();
    match shared.add_incident(&spec, now) {
        Ok(incident) => json_response(
            StatusCode::CREATED,
            &listed(shared, &incident, Source::Api, now),
        ),
        Err(Refused::Invalid(e)) => error(StatusCode::BAD_REQUEST, &e),
        Err(full @ Refused::Full { .. }) => error(StatusCode::TOO_MANY_REQUESTS, &full.to_string()),
    }
}

fn list(shared: &Shared) -> Response<Full<Bytes>> {
    let now = unix_now_ms();
    let incidents: Vec<Value> = shared
        .open_incidents(now)
        .iter()
        .map(|(incident, source)| listed(shared, incident, *source, now))
        .collect();
    json_response(StatusCode::OK, &json!({ "incidents": incidents }))
}

fn end(shared: &Shared, id: &str) -> Response<Full<Bytes>> {
    match id.parse::<u64>() {
        Ok(id) if shared.end_incident(id, unix_now_ms()).is_some() => {
            let mut r = Response::new(Full::new(Bytes::new()));
            *r.status_mut() = StatusCode::NO_CONTENT;
            r
        }
        _ => error(
            StatusCode::NOT_FOUND,
            &format!("no incident with id `{id}` that has not ended"),
        ),
    }
}

/// An incident as the API lists it: [`to_json`], whether it is active at `now_ms`, where
/// it comes from and the servers it hits.
fn listed(shared: &Shared, incident: &Incident, source: Source, now_ms: i64) -> Value {
    let mut value = to_json(incident);
    let state = if incident.active_at(now_ms) {
        "active"
    } else {
        "scheduled"
    };
    value["state"] = json!(state);
    value["source"] = json!(source.name());
    value["servers"] = json!(shared.servers_of(incident));
    value
}

/// An incident as the API shows it: the same fields as it is written, plus its id and end.
pub fn to_json(i: &Incident) -> Value {
    let mut value = json!({
        "id": i.id,
        "kind": i.kind.name(),
        "target": i.target.to_string(),
        "start": format_instant(i.start_ms),
        "end": format_instant(i.end_ms),
        "duration": format_duration_ms(i.duration_ms()),
        "intensity": i.intensity,
    });
    if matches!(i.kind, IncidentKind::MemoryLeak | IncidentKind::DiskFill) {
        value["ramp"] = json!(format_duration_ms(i.ramp_ms));
    }
    value
}

pub(super) fn json_response(status: StatusCode, value: &Value) -> Response<Full<Bytes>> {
    let mut body = serde_json::to_vec_pretty(value).unwrap_or_default();
    body.push(b'\n');
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

/// How much of an error message is kept at each end when it quotes a long value.
const ERROR_END_CHARS: usize = 300;

/// `{"error": message}`, the message on one line whatever it quotes of the request, and
/// short: a long value quoted is cut in its middle, so that the field named at the start
/// and what was expected at the end both stay.
pub(super) fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    let chars: Vec<char> = message
        .chars()
        .flat_map(|c| {
            let escaped: Vec<char> = if c.is_control() {
                c.escape_default().collect()
            } else {
                vec![c]
            };
            escaped
        })
        .collect();
    let said: String = if chars.len() > 2 * ERROR_END_CHARS + 100 {
        let left_out = chars.len() - 2 * ERROR_END_CHARS;
        let head: String = chars[..ERROR_END_CHARS].iter().collect();
        let tail: String = chars[chars.len() - ERROR_END_CHARS..].iter().collect();
        format!("{head} [... {left_out} characters ...] {tail}")
    } else {
        chars.into_iter().collect()
    };
    json_response(status, &json!({ "error": said }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_json_is_taken() {
        let check = |v: &'static str| {
            check_content_type(Some(&HeaderValue::from_static(v)), "the incident")
        };
        assert_eq!(check("application/json"), Ok(()));
        assert_eq!(check("Application/JSON; charset=utf-8"), Ok(()));
        for refused in [
            "text/plain",
            "application/x-www-form-urlencoded",
            "application/jsonx",
        ] {
            let e = check(refused).unwrap_err();
            assert!(
                e.contains(&format!("`{refused}` is not application/json")),
                "{e}"
            );
        }
        assert!(
            check_content_type(None, "the incident")
                .unwrap_err()
                .starts_with("no Content-Type")
        );
    }

    #[test]
    fn errors_are_one_line_whatever_they_quote() {
        let r = error(StatusCode::BAD_REQUEST, "unknown field `a\nb\r\u{0}`");
        let body: Value = serde_json::from_slice(&ready_body(r)).unwrap();
        let said = body["error"].as_str().unwrap();
        assert_eq!(said, "unknown field `a\\nb\\r\\u{0}`");
        assert_eq!(said.lines().count(), 1);

        let long = format!(
            "kind: unknown kind `{}`; expected one of outage",
            "x".repeat(70_000)
        );
        let r = error(StatusCode::BAD_REQUEST, &long);
        let body: Value = serde_json::from_slice(&ready_body(r)).unwrap();
        let said = body["error"].as_str().unwrap();
        assert!(said.len() < 1_000, "{} bytes", said.len());
        assert!(said.starts_with("kind: unknown kind `xxx"), "{said}");
        assert!(said.ends_with("`; expected one of outage"), "{said}");
        let left_out = long.len() - 2 * ERROR_END_CHARS;
        assert!(
            said.contains(&format!("[... {left_out} characters ...]")),
            "{said}"
        );
    }

    /// The body of a response made whole: its one frame, ready without a runtime.
    fn ready_body(r: Response<Full<Bytes>>) -> Bytes {
        use std::task::{Context, Poll, Waker};
        let mut body = std::pin::pin!(r.into_body());
        match body
            .as_mut()
            .poll_frame(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(Some(Ok(frame))) => frame.into_data().unwrap_or_default(),
            _ => Bytes::new(),
        }
    }
}
