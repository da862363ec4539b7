//! The HTTP side: `/metrics`, a landing page, health and readiness, 404 elsewhere.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::Shared;
use crate::exposition::{self, encode_fleet, encode_fleet_openmetrics, negotiate};

/// Connections served at once; more wait in the kernel's backlog. Prometheus keeps one
/// connection per target, so this only bounds misbehaving clients.
pub const MAX_CONNECTIONS: usize = 64;

/// How long shutdown waits for scrapes in flight.
const DRAIN: Duration = Duration::from_millis(500);

/// Which API a listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `/metrics`, the landing page, health and readiness.
    Metrics,
    /// The incidents API, on its own listener.
    Admin,
}

/// Serves `api` on `listener` until `shutdown` completes, then drains for at most `DRAIN`.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    api: Api,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let graceful = GracefulShutdown::new();
    let body_hint = Arc::new(AtomicUsize::new(64 * 1024));
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let shared = shared.clone();
        let body_hint = body_hint.clone();
        let service = service_fn(move |req| {
            let shared = shared.clone();
            let body_hint = body_hint.clone();
            async move {
                let response = match api {
                    Api::Metrics => respond(&shared, &body_hint, &req),
                    Api::Admin => super::admin::respond(&shared, req).await,
                };
                Ok::<_, Infallible>(response)
            }
        });
        let connection = http1::Builder::new()
            .timer(hyper_util::rt::TokioTimer::new())
            .header_read_timeout(Duration::from_secs(10))
            .serve_connection(TokioIo::new(stream), service);
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            let _permit = permit;
            let _ = connection.await;
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(DRAIN) => {}
    }
    Ok(())
}

fn respond(
    shared: &Shared,
    body_hint: &AtomicUsize,
    req: &Request<Incoming>,
) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET and HEAD are served\n",
        );
    }
    match req.uri().path() {
        "/metrics" => {
            let header = |name| req.headers().get(name).and_then(|v| v.to_str().ok());
            let wants = negotiate(
                header(hyper::header::ACCEPT),
                header(hyper::header::ACCEPT_ENCODING),
            );
            let (frame, labels) = shared.latest_labeled();
            let mut body = Vec::with_capacity(body_hint.load(Ordering::Relaxed));
            let content_type = if wants.openmetrics {
                encode_fleet_openmetrics(&mut body, &frame, &labels);
                encode_model_time(&mut body, frame.time_ms);
                shared.telemetry.encode_openmetrics_into(&mut body);
                body.extend_from_slice(b"# EOF\n");
                exposition::OPENMETRICS_CONTENT_TYPE
            } else {
                encode_fleet(&mut body, &frame, &labels);
                encode_model_time(&mut body, frame.time_ms);
                shared.telemetry.encode_into(&mut body);
                exposition::CONTENT_TYPE
            };
            body_hint.store(body.len() + body.len() / 8, Ordering::Relaxed);
            let mut response = if wants.gzip {
                let mut response = with_type(StatusCode::OK, content_type, gzip(&body));
                response.headers_mut().insert(
                    hyper::header::CONTENT_ENCODING,
                    HeaderValue::from_static("gzip"),
                );
                response
            } else {
                with_type(StatusCode::OK, content_type, body)
            };
            response.headers_mut().insert(
                hyper::header::VARY,
                HeaderValue::from_static("Accept, Accept-Encoding"),
            );
            response
        }
        "/" => with_type(
            StatusCode::OK,
            "text/html; charset=utf-8",
            landing_page(shared).into_bytes(),
        ),
        "/-/healthy" => text(StatusCode::OK, "fleetsim is healthy.\n"),
        "/-/ready" => text(StatusCode::OK, "fleetsim is ready.\n"),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: see / for what is served\n",
        ),
    }
}

/// gzip at its fastest level: a scrape is compressed once and read once, so speed matters
/// more than the last few percent of size.
fn gzip(body: &[u8]) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(
        Vec::with_capacity(body.len() / 6),
        flate2::Compression::fast(),
    );
    // Writing to a Vec cannot fail.
    let _ = encoder.write_all(body);
    encoder.finish().unwrap_or_default()
}

/// The instant the served values are for, from the frame itself, so that it always
/// matches them: the history that `generate` writes for this instant has the same values.
fn encode_model_time(out: &mut Vec<u8>, time_ms: i64) {
    use std::io::Write;
    let _ = write!(
        out,
        "# HELP fleetsim_model_time_seconds Instant the fleet's values are for, unix seconds.\n\
         # TYPE fleetsim_model_time_seconds gauge\n\
         fleetsim_model_time_seconds {}\n",
        time_ms as f64 / 1000.0
    );
}

fn text(status: StatusCode, body: &'static str) -> Response<Full<Bytes>> {
    with_type(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

fn with_type(
    status: StatusCode,
    content_type: &'static str,
    body: Vec<u8>,
) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(Bytes::from(body)));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
    response
}

fn landing_page(shared: &Shared) -> String {
    format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>fleetsim</title></head>
<body>
<h1>fleetsim</h1>
<p>A simulated fleet of {servers} servers, version {version}.</p>
<ul>
<li><a href="/metrics">/metrics</a>: the fleet's series, for Prometheus</li>
<li><a href="/-/healthy">/-/healthy</a> and <a href="/-/ready">/-/ready</a></li>
</ul>
</body>
</html>
"#,
        servers = shared.servers(),
        version = env!("CARGO_PKG_VERSION"),
    )
}
