//! The admin API, on its own listener (`--admin-listen`) so that the scrape port never
//! exposes it: start, list and end incidents on the live fleet.
//!
//! - `POST /api/v1/incidents` with an incident as JSON: 201 and the incident with its id.
//! - `GET /api/v1/incidents`: the incidents active now.
//! - `DELETE /api/v1/incidents/{id}`: 204, or 404 for an unknown id.
//!
//! Bad input gets a 400 whose message names the field; nothing is half-applied.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::Shared;
use crate::clock::unix_now_ms;
use crate::model::incidents::{Incident, IncidentSpec};
use crate::units::format_instant;

/// The largest request body read.
const MAX_BODY: usize = 64 * 1024;

pub async fn respond(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let method = req.method().clone();
    match (method, path.as_str()) {
        (Method::POST, "/api/v1/incidents") => {
            let body = match Limited::new(req.into_body(), MAX_BODY).collect().await {
                Ok(b) => b.to_bytes(),
                Err(e) => {
                    return error(
                        StatusCode::BAD_REQUEST,
                        &format!("cannot read the body: {e}"),
                    );
                }
            };
            create(shared, &body)
        }
        (Method::GET, "/api/v1/incidents") => {
            let now = unix_now_ms();
            let schedule = shared.schedule();
            let active: Vec<Value> = schedule.active_at(now).into_iter().map(to_json).collect();
            json_response(StatusCode::OK, &json!({ "incidents": active }))
        }
        (Method::DELETE, p) if p.starts_with("/api/v1/incidents/") => {
            let id = &p["/api/v1/incidents/".len()..];
            match id.parse::<u64>() {
                Ok(id) if shared.remove_incident(id).is_some() => {
                    let mut r = Response::new(Full::new(Bytes::new()));
                    *r.status_mut() = StatusCode::NO_CONTENT;
                    r
                }
                _ => error(
                    StatusCode::NOT_FOUND,
                    &format!("no incident with id `{id}`"),
                ),
            }
        }
        (_, "/api/v1/incidents") => error(StatusCode::METHOD_NOT_ALLOWED, "use GET or POST"),
        (Method::POST, "/api/v1/alerts") => super::webhook::receive(shared, req).await,
        (Method::GET, "/api/v1/score") => super::webhook::score(shared),
        _ => error(
            StatusCode::NOT_FOUND,
            "not found: the admin API is /api/v1/incidents",
        ),
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
    match shared.add_incident(&spec, unix_now_ms()) {
        Ok(incident) => json_response(StatusCode::CREATED, &to_json(&incident)),
        Err(e) => error(StatusCode::BAD_REQUEST, &e),
    }
}

/// An incident as the API shows it: the same fields as it is written, plus its id and end.
pub fn to_json(i: &Incident) -> Value {
    let duration = std::time::Duration::from_millis((i.end_ms - i.start_ms).max(0) as u64);
    json!({
        "id": i.id,
        "kind": i.kind.name(),
        "target": i.target.to_string(),
        "start": format_instant(i.start_ms),
        "end": format_instant(i.end_ms),
        "duration": humantime::format_duration(duration).to_string().replace(' ', ""),
        "intensity": i.intensity,
    })
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

pub(super) fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json_response(status, &json!({ "error": message }))
}
