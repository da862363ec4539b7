//! The live exporter: a tick thread moves the fleet to "now" and publishes a frame; the
//! HTTP server encodes the latest published frame on each scrape. A tick never waits for a
//! scrape and a scrape never waits for a tick: they share only an `Arc<Frame>` swapped under
//! a lock held for the length of a pointer copy, so every scrape shows one whole tick.

mod http;
mod telemetry;

use std::net::{SocketAddr, ToSocketAddrs};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, RwLock};
use std::thread;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tokio::net::TcpListener;

use crate::cli::{ExporterArgs, LogLevel};
use crate::error::{Error, Result};
use crate::exposition::FleetLabels;
use crate::model::{self, Frame, Timeline};

pub use http::serve;
pub use telemetry::Telemetry;

/// What the tick thread and the HTTP handlers share.
pub struct Shared {
    frame: RwLock<Arc<Frame>>,
    labels: FleetLabels,
    telemetry: Telemetry,
}

impl Shared {
    pub fn new(frame: Frame, labels: FleetLabels, telemetry: Telemetry) -> Shared {
        Shared {
            frame: RwLock::new(Arc::new(frame)),
            labels,
            telemetry,
        }
    }

    fn publish(&self, frame: Frame) {
        let frame = Arc::new(frame);
        // A poisoned lock only means a panic elsewhere; the pointer inside is still whole.
        *self.frame.write().unwrap_or_else(|e| e.into_inner()) = frame;
    }

    fn latest(&self) -> Arc<Frame> {
        self.frame.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

pub fn unix_now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `fleetsim exporter`: runs until SIGINT or SIGTERM.
pub fn run(args: ExporterArgs) -> Result<()> {
    let settings = args.fleet.resolve()?;
    init_logging(args.log_level);
    let addr = listen_address(&args.listen)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(async move {
        // Bind before the warm-up, so that a port in use fails at once.
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Runtime(format!("cannot listen on {addr}: {e}")))?;
        let local = listener.local_addr().unwrap_or(addr);

        let started = Instant::now();
        let members = model::members(&settings.params, settings.servers, 0..settings.servers);
        let mut timeline = Timeline::new(&settings.params, settings.seed, members, unix_now_ms());
        let frame = timeline.at(unix_now_ms());
        let labels = FleetLabels::new(timeline.members());
        let telemetry = Telemetry::new(settings.servers);
        let shared = Arc::new(Shared::new(frame, labels, telemetry));
        tracing::info!(
            servers = settings.servers,
            seed = settings.seed,
            warmup_ms = started.elapsed().as_millis() as u64,
            "fleet ready; serving http://{local}/metrics"
        );

        let (stop, stopped) = mpsc::channel::<()>();
        let ticker = spawn_ticker(timeline, shared.clone(), args.tick, stopped);
        let served = serve(listener, shared, shutdown_signal()).await;
        drop(stop);
        let _ = ticker.join();
        tracing::info!("stopped");
        served.map_err(|e| Error::Runtime(format!("server failed: {e}")))
    })
}

/// Resolves `--listen`: `host:port`, or `:port` for every interface.
pub fn listen_address(text: &str) -> Result<SocketAddr> {
    let full = if text.starts_with(':') {
        format!("0.0.0.0{text}")
    } else {
        text.to_string()
    };
    let bad = |why: String| {
        Error::Usage(format!(
            "--listen `{text}`: {why}; write it like 0.0.0.0:8000 or :8000"
        ))
    };
    full.to_socket_addrs()
        .map_err(|e| bad(e.to_string()))?
        .next()
        .ok_or_else(|| bad("no address".into()))
}

fn spawn_ticker(
    mut timeline: Timeline,
    shared: Arc<Shared>,
    tick: Duration,
    stopped: mpsc::Receiver<()>,
) -> thread::JoinHandle<()> {
    thread::Builder::new()
        .name("fleetsim-tick".into())
        .spawn(move || {
            loop {
                let started = Instant::now();
                let frame = timeline.at(unix_now_ms());
                let up = (0..frame.len()).filter(|&i| frame.up(i)).count();
                shared.publish(frame);
                let took = started.elapsed();
                shared.telemetry.observe_tick(took, up);
                match stopped.recv_timeout(tick.saturating_sub(took)) {
                    Err(RecvTimeoutError::Timeout) => continue,
                    _ => break,
                }
            }
        })
        .expect("spawning a thread fails only when the system is out of resources")
}

async fn shutdown_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(_) => return std::future::pending().await,
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
    tracing::info!("shutting down");
}

fn init_logging(level: LogLevel) {
    let level = match level {
        LogLevel::Error => tracing::Level::ERROR,
        LogLevel::Warn => tracing::Level::WARN,
        LogLevel::Info => tracing::Level::INFO,
        LogLevel::Debug => tracing::Level::DEBUG,
        LogLevel::Trace => tracing::Level::TRACE,
    };
    let _ = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(false)
        .try_init();
}
