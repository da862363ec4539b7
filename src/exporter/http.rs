//! The HTTP side: `/metrics`, a landing page, health and readiness, 404 elsewhere.

use std::convert::Infallible;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;

use super::{Serving, Shared};
use crate::exposition::{self, FleetLabels, Format, TextFormat, negotiate};
use crate::gzip::{self as body, ChannelBody};
use crate::model::Frame;
use crate::web_config::{Authenticator, SharedWebConfig, WebConfig};

/// Connections open at once, all clients together; more wait in the kernel's backlog.
/// Prometheus keeps one connection per target, so this only bounds misbehaving clients: it
/// is high so that connections stalled in their headers (each a few KB until the header
/// timeout cuts it) cannot keep a scrape out, and the process raises its limit of open
/// files to hold it (`raise_open_files_limit`).
pub const MAX_CONNECTIONS: usize = 4096;

/// Connections open at once from one address: a quarter of the whole, so that one client
/// cannot take every connection from the others.
pub const MAX_PER_ADDRESS: usize = MAX_CONNECTIONS / 4;

/// Scrapes being encoded and sent at once. Each holds a few encoded pieces (a few MB at
/// 10,000 servers) while its client reads, so this is what bounds the memory that slow
/// readers can take; past it a scrape is answered 503 at once rather than queued.
pub const MAX_SCRAPES: usize = 128;

/// How long a client may take to send a request's headers, and to start the next one on a
/// kept-alive connection. Longer than Prometheus's default 15 s scrape interval, so that
/// its kept-alive connections stay open between scrapes.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(20);

/// How long a response may wait for its client to take more of it: a client that reads
/// slower than that (in practice, than about a third of its socket's send buffer every
/// 10 s) is cut off, and its scrape's memory freed.
pub const WRITE_STALL_TIMEOUT: Duration = Duration::from_secs(10);

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

/// Serves `api` on `listener` until `shutdown` completes, then drains for at most `DRAIN`:
/// health at once, and the fleet once `serving` has it.
pub async fn serve(
    listener: TcpListener,
    serving: Arc<Serving>,
    api: Api,
    web: Option<Arc<SharedWebConfig>>,
    shutdown: impl Future<Output = ()>,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(connection_limit()));
    let per_address = Arc::new(PerAddress::default());
    let scrapes = Arc::new(Semaphore::new(MAX_SCRAPES));
    let checks = Arc::new(Semaphore::new(crate::machine::cores()));
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => p.expect("the semaphore is never closed"),
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        // Over its address's share, a connection is closed at once: the others' stay.
        let Some(share) = per_address.admit(peer.ip()) else {
            tracing::debug!(
                "refused a connection from {}: {MAX_PER_ADDRESS} open",
                peer.ip()
            );
            continue;
        };
        let serving = serving.clone();
        let scrapes = scrapes.clone();
        let checks = checks.clone();
        // The web config in force when the connection came: a reload never changes the
        // rules in the middle of one.
        let web = web.as_ref().map(|w| w.current());
        let tls = web.as_ref().and_then(|w| w.tls_acceptor());
        let guard = web.clone();
        let service = service_fn(move |req| {
            let serving = serving.clone();
            let scrapes = scrapes.clone();
            let checks = checks.clone();
            let web = guard.clone();
            async move {
                if let Some(refused) = authenticate(api, web.as_ref(), &req, &checks).await {
                    return Ok::<_, Infallible>(with_headers(refused, web.as_deref()));
                }
                let response = match (api, serving.fleet()) {
                    (Api::Metrics, Some(shared)) => respond(shared, &req, &scrapes),
                    (Api::Admin, Some(shared)) => {
                        super::admin::respond(shared, req).await.map(BodyExt::boxed)
                    }
                    (Api::Metrics, None) => respond_warming_up(&serving, &req),
                    (Api::Admin, None) => {
                        super::admin::warming_up(serving.servers()).map(BodyExt::boxed)
                    }
                };
                Ok::<_, Infallible>(with_headers(response, web.as_deref()))
            }
        });
        let watcher = graceful.watcher();
        tokio::spawn(async move {
            let _held = (permit, share);
            // The handshake on the connection's own task: a slow or silent client holds
            // its connection, not the accept loop.
            let io: Box<dyn Connection> = match tls {
                Some(acceptor) => {
                    match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await
                    {
                        Ok(Ok(tls)) => Box::new(tls),
                        // Plain HTTP on the TLS port, an unknown or missing client
                        // certificate, a silent client: nothing to serve.
                        Ok(Err(e)) => {
                            tracing::debug!("TLS handshake with {peer} failed: {e}");
                            return;
                        }
                        Err(_) => return,
                    }
                }
                None => Box::new(stream),
            };
            let connection = http1::Builder::new()
                .timer(hyper_util::rt::TokioTimer::new())
                .header_read_timeout(HEADER_READ_TIMEOUT)
                .serve_connection(TokioIo::new(StallGuard::new(io)), service);
            let _ = watcher.watch(connection).await;
        });
    }
    drop(listener);
    tokio::select! {
        _ = graceful.shutdown() => {}
        _ = tokio::time::sleep(DRAIN) => {}
    }
    Ok(())
}

/// Every response's body: whole, or streamed as it is encoded.
type AnyBody = BoxBody<Bytes, Infallible>;

/// How long a client may take over its TLS handshake.
pub const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// A connection, plain or TLS.
trait Connection: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Connection for T {}

/// What needs the web config's authentication: everything but the probes' endpoints on
/// the scrape port (a Kubernetes probe or a load balancer has no password).
fn needs_authentication(api: Api, path: &str) -> bool {
    api == Api::Admin || !matches!(path, "/-/healthy" | "/-/ready")
}

/// `Some(401)` when the web config asks for basic auth and the request does not pass it.
/// The bcrypt check runs off the async threads, at most one a core at once, so that a
/// flood of bad passwords costs the cores, not the scrapes' threads.
async fn authenticate(
    api: Api,
    web: Option<&Arc<WebConfig>>,
    req: &Request<Incoming>,
    checks: &Arc<Semaphore>,
) -> Option<Response<AnyBody>> {
    let web = web?;
    web.authenticator()?;
    if !needs_authentication(api, req.uri().path()) {
        return None;
    }
    let header = req.headers().get(hyper::header::AUTHORIZATION).cloned();
    let _slot = checks.acquire().await.ok()?;
    let config = web.clone();
    let checked = tokio::task::spawn_blocking(move || {
        config
            .authenticator()
            .map_or(Ok(()), |a| a.check(header.as_ref()))
    })
    .await;
    match checked {
        Ok(Ok(())) => None,
        Ok(Err(refusal)) => {
            tracing::debug!("refused a request for {}: {refusal}", req.uri().path());
            let mut refused = text(StatusCode::UNAUTHORIZED, "unauthorized\n");
            refused
                .headers_mut()
                .insert(hyper::header::WWW_AUTHENTICATE, Authenticator::challenge());
            Some(refused)
        }
        Err(_) => Some(text(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the check failed\n",
        )),
    }
}

/// The response with the web config's `http_server_config.headers`.
fn with_headers<B>(mut response: Response<B>, web: Option<&WebConfig>) -> Response<B> {
    if let Some(web) = web {
        for (name, value) in web.headers() {
            response.headers_mut().insert(name.clone(), value.clone());
        }
    }
    response
}

fn respond(
    shared: &Arc<Shared>,
    req: &Request<Incoming>,
    scrapes: &Arc<Semaphore>,
) -> Response<AnyBody> {
    if req.uri().path().starts_with("/api/") {
        // The scrape port never serves the admin API, whatever the method: say where it is.
        return text(
            StatusCode::NOT_FOUND,
            "not found: the admin API (/api/v1/incidents) is served on the --admin-listen address, not on the scrape port\n",
        );
    }
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
            let (format, content_type) = match wants.format {
                Format::Protobuf => (Format::Protobuf, exposition::PROTOBUF_CONTENT_TYPE),
                Format::OpenMetrics => (Format::OpenMetrics, exposition::OPENMETRICS_CONTENT_TYPE),
                Format::Text => (Format::Text, exposition::CONTENT_TYPE),
            };
            let Ok(slot) = scrapes.clone().try_acquire_owned() else {
                let mut busy = text(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too many scrapes in flight; try again\n",
                );
                busy.headers_mut()
                    .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
                return busy;
            };
            let (frame, labels) = shared.latest_labeled();
            let body = scrape_body(shared.clone(), frame, labels, format, wants.gzip, slot);
            let mut response = Response::new(body.boxed());
            response
                .headers_mut()
                .insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
            if wants.gzip {
                response.headers_mut().insert(
                    hyper::header::CONTENT_ENCODING,
                    HeaderValue::from_static("gzip"),
                );
            }
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

/// While the fleet warms up (seconds to minutes at 10,000 to 100,000 servers): the process
/// is healthy, not ready, and has no frame to scrape yet. The 503s are what Prometheus's own
/// `/-/ready` answers before it is ready, and a scrape counts as failed (`up` 0) rather than
/// waiting past its timeout.
fn respond_warming_up(serving: &Serving, req: &Request<Incoming>) -> Response<AnyBody> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return text(
            StatusCode::METHOD_NOT_ALLOWED,
            "only GET and HEAD are served\n",
        );
    }
    let warming = || {
        let body = format!(
            "fleetsim is warming up {} servers; /-/ready answers 200 once the first frame is served.\n",
            serving.servers()
        );
        let mut response = with_type(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain; charset=utf-8",
            body.into_bytes(),
        );
        response
            .headers_mut()
            .insert(hyper::header::RETRY_AFTER, HeaderValue::from_static("1"));
        response
    };
    match req.uri().path() {
        "/-/healthy" => text(StatusCode::OK, "fleetsim is healthy.\n"),
        "/-/ready" | "/metrics" | "/" => warming(),
        _ => text(
            StatusCode::NOT_FOUND,
            "not found: see / for what is served\n",
        ),
    }
}

/// Series per piece of a scrape's body: a piece is encoded into one buffer, so this bounds
/// the memory a scrape holds while keeping pieces large enough to split across threads.
const SERIES_PER_PIECE: usize = 4096;

/// The scrape of `frame`, encoded (and compressed) on the blocking pool as the connection
/// takes it: one consistent frame, whatever ticks happen meanwhile.
fn scrape_body(
    shared: Arc<Shared>,
    frame: Arc<Frame>,
    labels: Arc<FleetLabels>,
    format: Format,
    gzip: bool,
    slot: tokio::sync::OwnedSemaphorePermit,
) -> ChannelBody {
    let (tx, body) = ChannelBody::channel(4);
    tokio::task::spawn_blocking(move || {
        // Held until the last piece is handed over (or the client has gone).
        let _slot = slot;
        // The protobuf exposition is one piece: its families are length-prefixed, so each
        // is built whole before it is written.
        let pieces = match format {
            Format::Protobuf => Vec::new(),
            Format::Text | Format::OpenMetrics => exposition::pieces(frame.len(), SERIES_PER_PIECE),
        };
        let text_format = match format {
            Format::OpenMetrics => TextFormat::OpenMetrics,
            _ => TextFormat::Text,
        };
        let encode = |k: usize, out: &mut Vec<u8>| match (format, pieces.get(k)) {
            (Format::Protobuf, _) => {
                exposition::encode_fleet_protobuf(out, &frame, &labels);
                shared.telemetry.encode_protobuf_into(out);
            }
            (_, Some(piece)) => exposition::encode_piece(out, piece, &frame, &labels, text_format),
            // The exporter's own series close the body.
            (Format::OpenMetrics, None) => {
                encode_model_time(out, frame.time_ms);
                shared.telemetry.encode_openmetrics_into(out);
                out.extend_from_slice(b"# EOF\n");
            }
            (Format::Text, None) => {
                encode_model_time(out, frame.time_ms);
                shared.telemetry.encode_into(out);
            }
        };
        // A send fails only when the client has gone: then the rest is not encoded.
        let mut send = |chunk: Bytes| tx.blocking_send(chunk).is_ok();
        let count = pieces.len() + 1;
        if gzip {
            let weights: Vec<usize> = pieces.iter().map(|p| p.series()).chain([64]).collect();
            let threads = crate::machine::cores();
            body::stream_gzip(&weights, threads, &encode, &mut send);
        } else {
            body::stream_plain(count, &encode, &mut send);
        }
        release_free_memory();
    });
    body
}

/// Gives the pages the scrape's buffers freed back to the system. A scrape allocates a few
/// MB on the threads that encode it, and the allocator would keep them in those threads'
/// arenas, resident, until the next scrape: the exporter's resident size would be its size
/// during a scrape rather than between scrapes.
fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the system; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
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

fn text(status: StatusCode, body: &'static str) -> Response<AnyBody> {
    with_type(
        status,
        "text/plain; charset=utf-8",
        body.as_bytes().to_vec(),
    )
}

fn with_type(status: StatusCode, content_type: &'static str, body: Vec<u8>) -> Response<AnyBody> {
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
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

/// The connections open from each address.
#[derive(Default)]
struct PerAddress {
    open: std::sync::Mutex<std::collections::HashMap<std::net::IpAddr, usize>>,
}

impl PerAddress {
    /// One more connection from `ip`, if its share allows it; it counts until the returned
    /// guard is dropped.
    fn admit(self: &Arc<Self>, ip: std::net::IpAddr) -> Option<AddressShare> {
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(ip).or_insert(0);
        if *n >= MAX_PER_ADDRESS {
            return None;
        }
        *n += 1;
        Some(AddressShare {
            of: self.clone(),
            ip,
        })
    }
}

/// A connection counted against its address's share.
struct AddressShare {
    of: Arc<PerAddress>,
    ip: std::net::IpAddr,
}

impl Drop for AddressShare {
    fn drop(&mut self) {
        let mut open = self.of.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                open.remove(&self.ip);
            }
        }
    }
}

/// `MAX_CONNECTIONS`, or fewer if the process may not open that many files (a few kept for
/// everything else it opens).
fn connection_limit() -> usize {
    let files = crate::machine::open_files_limit();
    MAX_CONNECTIONS.min(files.saturating_sub(64).max(16))
}

/// A connection whose writes fail once they have waited `WRITE_STALL_TIMEOUT` for the
/// client: hyper then closes it. Reads are left to hyper's own header timeout.
struct StallGuard<S> {
    inner: S,
    stalled_since: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<S> StallGuard<S> {
    fn new(inner: S) -> StallGuard<S> {
        StallGuard {
            inner,
            stalled_since: None,
        }
    }

    /// After a pending write: pending still, or an error once the stall has lasted.
    fn stalled<T>(&mut self, cx: &mut Context<'_>) -> Poll<std::io::Result<T>> {
        let deadline = self
            .stalled_since
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(WRITE_STALL_TIMEOUT)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client took no more of the response for too long",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    fn progressed<T>(
        &mut self,
        result: Poll<std::io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<std::io::Result<T>> {
        match result {
            Poll::Ready(r) => {
                self.stalled_since = None;
                Poll::Ready(r)
            }
            Poll::Pending => self.stalled(cx),
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for StallGuard<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for StallGuard<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write(cx, buf);
        self.progressed(result, cx)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        let result = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.progressed(result, cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        let result = Pin::new(&mut self.inner).poll_flush(cx);
        self.progressed(result, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
