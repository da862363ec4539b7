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
//! Bad input gets a 400 whose message names the field; nothing is half-applied.

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{Value, json};

use super::{Shared, Source};
use crate::clock::unix_now_ms;
use crate::model::incidents::{Incident, IncidentKind, IncidentSpec, format_duration_ms};
use crate::units::format_instant;

/// The largest request body read.
const MAX_BODY: usize = 64 * 1024;

const INCIDENTS: &str = "/api/v1/incidents";

pub async fn respond(shared: &Shared, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let path = req.uri().path().trim_end_matches('/').to_string();
    let method = req.method().clone();
    let incident_id = path
        .strip_prefix(INCIDENTS)
        .and_then(|p| p.strip_prefix('/'));
    match (method, path.as_str(), incident_id) {
        (Method::POST, INCIDENTS, _) => match read_body(req).await {
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

async fn read_body(req: Request<Incoming>) -> Result<Bytes, Response<Full<Bytes>>> {
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(b) => Ok(b.to_bytes()),
        Err(e) => Err(error(
            StatusCode::BAD_REQUEST,
            &format!("cannot read the body: {e}"),
        )),
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
        Err(e) => error(StatusCode::BAD_REQUEST, &e),
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

pub(super) fn error(status: StatusCode, message: &str) -> Response<Full<Bytes>> {
    json_response(status, &json!({ "error": message }))
}
