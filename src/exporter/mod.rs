//! The live exporter: a tick thread moves the fleet to "now" and publishes a frame; the
//! HTTP server encodes the latest published frame on each scrape. A tick never waits for a
//! scrape and a scrape never waits for a tick: they share only an `Arc<Frame>` swapped under
//! a lock held for the length of a pointer copy, so every scrape shows one whole tick.

mod admin;
mod http;
mod score;
mod telemetry;
mod webhook;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::clock::unix_now_ms;
use crate::error::{Error, Result};
use crate::exposition::FleetLabels;
use crate::model::incidents::{
    Incident, IncidentSpec, RANDOM_ID_BASE, RandomIncidents, Refused, Schedule,
};
use crate::model::{self, FleetParams, FleetSpec, Frame, Member, Timeline};
use crate::settings::{ExporterSettings, FleetSettings, LogLevel, RemoteWriteSettings};
use crate::web_config::SharedWebConfig;

pub use http::{Api, serve};
pub use telemetry::Telemetry;

/// What the tick thread and the HTTP handlers share.
pub struct Shared {
    /// The latest frame and the labels of its servers, published together so that a scrape
    /// never pairs a frame with another tick's names.
    frame: RwLock<(Arc<Frame>, Arc<FleetLabels>)>,
    telemetry: Telemetry,
    incidents: Mutex<Incidents>,
    members: Vec<Member>,
    seed: u64,
    /// When this exporter started: `start = "2h"` in an incident means 2h after it.
    run_start_ms: i64,
    /// The alerts Alertmanager delivered, held against the incidents.
    score: score::Scoreboard,
    /// The fleet's random incidents (as drawn: those ended early are in the schedule).
    random: RandomIncidents,
    /// The config file's incidents are the schedule's first ids, 1 to this.
    config_incidents: u64,
}

/// Where an incident comes from, as the admin API lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Config,
    Api,
    Random,
}

impl Source {
    pub fn name(self) -> &'static str {
        match self {
            Source::Config => "config",
            Source::Api => "api",
            Source::Random => "random",
        }
    }
}

/// How far ahead the admin API lists random incidents.
const RANDOM_LISTED_AHEAD_MS: i64 = 86_400_000;

/// The users' incidents as the admin API changes them; the tick thread hands them to the
/// model when `version` moves.
struct Incidents {
    schedule: Schedule,
    version: u64,
    /// The first instant a change can still affect (the grid point ahead of the frame
    /// served, which the model computes again on a change): incidents asked to start "now"
    /// start there, and those ended end there.
    effective_ms: i64,
}

impl Shared {
    pub fn new(
        frame: Frame,
        mut labels: FleetLabels,
        telemetry: Telemetry,
        timeline: &Timeline,
        params: &FleetParams,
        random: RandomIncidents,
        run_start_ms: i64,
    ) -> Shared {
        let schedule = timeline.schedule().clone();
        if !labels.is_current(&frame) {
            labels.refresh(&frame);
        }
        Shared {
            frame: RwLock::new((Arc::new(frame), Arc::new(labels))),
            telemetry,
            config_incidents: schedule.next_id() - 1,
            incidents: Mutex::new(Incidents {
                schedule,
                version: 0,
                effective_ms: timeline.next_grid_ms(),
            }),
            members: timeline.members().to_vec(),
            seed: timeline.seed(),
            run_start_ms,
            score: score::Scoreboard::new(params),
            random,
        }
    }

    fn incidents(&self) -> std::sync::MutexGuard<'_, Incidents> {
        self.incidents.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn schedule(&self) -> Schedule {
        self.incidents().schedule.clone()
    }

    /// Adds an incident, or changes nothing and says which field is wrong, or that the
    /// schedule is full. One asked to start now starts at the next grid point.
    pub fn add_incident(
        &self,
        spec: &IncidentSpec,
        now_ms: i64,
    ) -> std::result::Result<Incident, Refused> {
        let mut state = self.incidents();
        let now_ms = now_ms.max(state.effective_ms);
        let incident = spec
            .resolve_live(self.run_start_ms, now_ms, state.schedule.next_id())
            .map_err(Refused::Invalid)?;
        incident
            .check_target(&self.members, self.seed)
            .map_err(|e| Refused::Invalid(format!("target: {e}")))?;
        state.schedule.add_open(incident.clone(), now_ms)?;
        state.version += 1;
        Ok(incident)
    }

    /// Ends an incident that has not ended (scheduled, active or random) at the next grid
    /// point; `None` when there is none with this id.
    pub fn end_incident(&self, id: u64, now_ms: i64) -> Option<Incident> {
        let mut state = self.incidents();
        let at_ms = now_ms.max(state.effective_ms);
        let incident = if id >= RANDOM_ID_BASE {
            // Only those listed: each one ended is remembered, so ids far ahead would
            // grow the schedule without bound.
            self.random
                .clone()
                .following(&state.schedule)
                .by_id(id, &self.members)
                .filter(|i| i.start_ms <= at_ms + RANDOM_LISTED_AHEAD_MS)?
        } else {
            state.schedule.get(id)?.clone()
        };
        let ended = state.schedule.end(&incident, at_ms)?;
        state.version += 1;
        Some(ended)
    }

    /// Every incident that has not ended by `now_ms`, oldest first: the schedule's, and
    /// the random ones up to a day ahead.
    pub fn open_incidents(&self, now_ms: i64) -> Vec<(Incident, Source)> {
        let schedule = self.schedule();
        let source = |id: u64| match id {
            id if id >= RANDOM_ID_BASE => Source::Random,
            id if id <= self.config_incidents => Source::Config,
            _ => Source::Api,
        };
        let random = self.random.clone().following(&schedule).between(
            &self.members,
            now_ms,
            now_ms + RANDOM_LISTED_AHEAD_MS,
        );
        let mut open: Vec<(Incident, Source)> = schedule
            .incidents
            .into_iter()
            .chain(random)
            .filter(|i| i.end_ms > now_ms)
            .map(|i| {
                let from = source(i.id);
                (i, from)
            })
            .collect();
        open.sort_by_key(|(i, _)| (i.start_ms, i.id));
        open
    }

    /// The names of the servers of this process that `incident` hits.
    pub fn servers_of(&self, incident: &Incident) -> Vec<String> {
        incident.target_names(&self.members, self.seed)
    }

    fn publish(&self, frame: Frame) {
        let frame = Arc::new(frame);
        let (_, mut labels) = self.latest_labeled();
        if !labels.is_current(&frame) {
            // Copied once per change (churn), not per tick.
            Arc::make_mut(&mut labels).refresh(&frame);
        }
        // A poisoned lock only means a panic elsewhere; the pointers inside are still whole.
        *self.frame.write().unwrap_or_else(|e| e.into_inner()) = (frame, labels);
    }

    fn latest(&self) -> Arc<Frame> {
        self.latest_labeled().0
    }

    /// The latest frame with its servers' labels.
    fn latest_labeled(&self) -> (Arc<Frame>, Arc<FleetLabels>) {
        self.frame.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The servers this process simulates.
    fn servers(&self) -> usize {
        self.members.len()
    }
}

/// What the listeners serve from: health alone while the fleet warms up, then the fleet.
/// They listen before the warm-up, so that `/-/healthy` answers as soon as the process
/// does and `/-/ready` can say that it is not ready yet.
pub struct Serving {
    fleet: OnceLock<Arc<Shared>>,
    servers: usize,
}

impl Serving {
    fn warming_up(servers: usize) -> Serving {
        Serving {
            fleet: OnceLock::new(),
            servers,
        }
    }

    /// The fleet, once its first frame is published.
    pub fn fleet(&self) -> Option<&Arc<Shared>> {
        self.fleet.get()
    }

    /// The servers this process simulates (known before the warm-up).
    pub fn servers(&self) -> usize {
        self.servers
    }
}

/// `fleetsim exporter`: runs until SIGINT or SIGTERM.
pub fn run(settings: ExporterSettings) -> Result<()> {
    init_logging(settings.log_level);
    crate::machine::limit_malloc_arenas();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::Runtime(format!("cannot start the runtime: {e}")))?;
    runtime.block_on(serve_fleet(settings))
}

/// Binds, serves health while the fleet warms up, then the fleet until a signal, then stops
/// every task in turn.
async fn serve_fleet(settings: ExporterSettings) -> Result<()> {
    // Bind before the warm-up, so that a port in use fails at once; and check what can be
    // wrong with the fleet before any work, so that a bad incident is an error at once too.
    let web = match &settings.web_config {
        Some(file) => Some(Arc::new(SharedWebConfig::load(file)?)),
        None => None,
    };
    let scheme = match web.as_ref().map(|w| w.current().tls().is_some()) {
        Some(true) => "https",
        _ => "http",
    };
    let listeners = Listeners::bind(&settings, scheme).await?;
    warn_if_admin_is_open(&listeners, web.as_deref());
    let run_start_ms = unix_now_ms();
    let fleet = FleetToWarm::check(&settings.fleet, run_start_ms)?;
    let started = Instant::now();
    let serving = Arc::new(Serving::warming_up(settings.fleet.range.len()));
    tracing::info!(
        servers = settings.fleet.servers,
        "warming up; {scheme}://{}/-/ready answers 200 once the fleet is served",
        listeners.metrics_addr
    );
    let shutdown = on_shutdown_signal();
    if let Some(web) = &web {
        reload_on_hangup(web.clone());
    }
    let admin_served = listeners.admin.map(|listener| {
        tokio::spawn(serve(
            listener,
            serving.clone(),
            Api::Admin,
            web.clone(),
            until_stopped(shutdown.clone()),
        ))
    });
    let metrics_served = tokio::spawn(serve(
        listeners.metrics,
        serving.clone(),
        Api::Metrics,
        web.clone(),
        until_stopped(shutdown.clone()),
    ));

    // On its own thread, not the runtime's blocking pool: a signal during the warm-up stops
    // the process without waiting for it.
    let (warmed_tx, warmed) = tokio::sync::oneshot::channel();
    let fleet_settings = settings.fleet.clone();
    thread::Builder::new()
        .name("fleetsim-warm-up".into())
        .spawn(move || {
            let _ = warmed_tx.send(fleet.warm_up(&fleet_settings));
        })
        .expect("spawning a thread fails only when the system is out of resources");
    let (timeline, shared) = tokio::select! {
        warmed = warmed => warmed.expect("the warm-up does not panic"),
        _ = until_stopped(shutdown.clone()) => {
            let _ = metrics_served.await;
            if let Some(task) = admin_served {
                let _ = task.await;
            }
            tracing::info!("stopped during the warm-up");
            return Ok(());
        }
    };
    let _ = serving.fleet.set(shared.clone());
    tracing::info!(
        servers = settings.fleet.servers,
        seed = settings.fleet.seed,
        warmup_ms = started.elapsed().as_millis() as u64,
        "fleet ready; serving {scheme}://{}/metrics",
        listeners.metrics_addr
    );

    let (stop, stopped) = mpsc::channel::<()>();
    let ticker = spawn_ticker(timeline, shared.clone(), settings.tick, stopped);
    let pusher = settings.remote_write.clone().map(|remote_write| {
        spawn_pusher(
            remote_write,
            &shared,
            &settings.fleet,
            until_stopped(shutdown.clone()),
        )
    });
    let served = metrics_served
        .await
        .unwrap_or_else(|e| Err(std::io::Error::other(e)));
    shut_down(admin_served, pusher, stop, ticker).await;
    served.map_err(|e| Error::Runtime(format!("server failed: {e}")))
}

/// The exporter's sockets, bound before anything else is done.
struct Listeners {
    metrics: TcpListener,
    /// As bound: the port chosen when `--listen` asked for port 0.
    metrics_addr: SocketAddr,
    admin: Option<TcpListener>,
}

impl Listeners {
    async fn bind(settings: &ExporterSettings, scheme: &str) -> Result<Listeners> {
        let addr = settings.listen;
        let metrics = TcpListener::bind(addr)
            .await
            .map_err(|e| Error::Runtime(format!("cannot listen on {addr}: {e}")))?;
        let metrics_addr = metrics.local_addr().unwrap_or(addr);
        let admin = match settings.admin {
            Some(addr) => Some(TcpListener::bind(addr).await.map_err(|e| {
                Error::Runtime(format!("cannot listen on {addr} for the admin API: {e}"))
            })?),
            None => None,
        };
        if let Some(addr) = admin.as_ref().and_then(|l| l.local_addr().ok()) {
            tracing::info!("admin API on {scheme}://{addr}/api/v1/incidents");
        }
        Ok(Listeners {
            metrics,
            metrics_addr,
            admin,
        })
    }
}

/// The fleet as checked before the warm-up: who is in it and its incidents.
struct FleetToWarm {
    members: Vec<Member>,
    schedule: Schedule,
    run_start_ms: i64,
}

impl FleetToWarm {
    fn check(settings: &FleetSettings, run_start_ms: i64) -> Result<FleetToWarm> {
        let members = model::members(&settings.params, settings.servers, settings.range.clone());
        let schedule = settings.schedule(run_start_ms, &members)?;
        Ok(FleetToWarm {
            members,
            schedule,
            run_start_ms,
        })
    }

    /// The fleet moved to now, its first frame made: what a first scrape sees.
    fn warm_up(self, settings: &FleetSettings) -> (Timeline, Arc<Shared>) {
        let timeline = FleetSpec::new(&settings.params, settings.seed, self.members)
            .schedule(self.schedule)
            .shape(settings.shape.clone());
        let mut timeline = timeline.timeline(self.run_start_ms);
        let frame = timeline.at(unix_now_ms());
        let labels = FleetLabels::with_labels(timeline.members(), &settings.labels);
        let telemetry = Telemetry::new(settings.range.len() as u32);
        let random = RandomIncidents::new(&settings.params, settings.seed, timeline.members());
        let shared = Arc::new(Shared::new(
            frame,
            labels,
            telemetry,
            &timeline,
            &settings.params,
            random,
            self.run_start_ms,
        ));
        (timeline, shared)
    }
}

/// A flag that turns true on SIGINT or SIGTERM. The handlers are registered before
/// anything is served: a signal that arrives once the exporter answers must stop it
/// cleanly, not kill it with the default action.
/// Re-reads the web config on each SIGHUP: new connections take the new file, open ones keep
/// theirs; a file that fails to load leaves the one in force, and the log says why.
fn reload_on_hangup(web: Arc<SharedWebConfig>) {
    use tokio::signal::unix::{SignalKind, signal};
    let Ok(mut hangups) = signal(SignalKind::hangup()) else {
        tracing::warn!("cannot listen for SIGHUP: the web config will not be re-read");
        return;
    };
    tokio::spawn(async move {
        while hangups.recv().await.is_some() {
            let web = web.clone();
            let reloaded = tokio::task::spawn_blocking(move || web.reload()).await;
            match reloaded {
                Ok(Ok(())) => tracing::info!("web config re-read"),
                Ok(Err(e)) => tracing::warn!("web config not re-read: {e}"),
                Err(e) => tracing::warn!("web config not re-read: {e}"),
            }
        }
    });
}

/// The admin API can take the whole fleet down: said aloud when it listens beyond this
/// machine without a password or client certificates to ask for.
fn warn_if_admin_is_open(listeners: &Listeners, web: Option<&SharedWebConfig>) {
    let Some(addr) = listeners.admin.as_ref().and_then(|l| l.local_addr().ok()) else {
        return;
    };
    let guarded = web.is_some_and(|w| {
        let config = w.current();
        config.authenticator().is_some() || config.requires_client_certificates()
    });
    if !guarded {
        admin::warn_if_exposed(addr);
    }
}

fn on_shutdown_signal() -> watch::Receiver<bool> {
    let (stopping, shutdown) = watch::channel(false);
    let signals = shutdown_signals();
    tokio::spawn(async move {
        signals.await;
        let _ = stopping.send(true);
    });
    shutdown
}

async fn until_stopped(mut shutdown: watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// Pushes the latest frame to the receiver every interval, its counters served with the
/// exporter's own.
fn spawn_pusher(
    settings: RemoteWriteSettings,
    shared: &Arc<Shared>,
    fleet: &FleetSettings,
    stopped: impl Future<Output = ()> + Send + 'static,
) -> tokio::task::JoinHandle<()> {
    let pusher = crate::remote_write::Pusher::new(
        settings.endpoint,
        settings.protocol,
        settings.interval,
        &shared.members,
        &fleet.labels,
    );
    for collector in pusher.collectors() {
        shared.telemetry.register(collector);
    }
    let source = shared.clone();
    tokio::spawn(pusher.run(move || source.latest(), stopped))
}

/// Once `/metrics` has stopped: waits for the admin API and the pusher, then the ticker.
async fn shut_down(
    admin_served: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
    pusher: Option<tokio::task::JoinHandle<()>>,
    stop: mpsc::Sender<()>,
    ticker: thread::JoinHandle<()>,
) {
    if let Some(task) = admin_served {
        let _ = task.await;
    }
    if let Some(task) = pusher {
        let _ = task.await;
    }
    drop(stop);
    let _ = ticker.join();
    tracing::info!("stopped");
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
            let mut applied = 0;
            // The frame of the warm-up is the first tick's: the next is one tick later (a
            // scrape just after start-up sees the same frame as one a moment later).
            let mut took = Duration::ZERO;
            while let Err(RecvTimeoutError::Timeout) =
                stopped.recv_timeout(tick.saturating_sub(took))
            {
                let started = Instant::now();
                let frame = {
                    // Held across the step, so that no change falls between the schedule
                    // applied and the grid point it is told to start at.
                    let mut incidents = shared.incidents();
                    if incidents.version != applied {
                        // The grid point ahead is computed again: the change shows there.
                        timeline.reschedule(incidents.schedule.clone());
                        applied = incidents.version;
                    }
                    let frame = timeline.at(unix_now_ms());
                    incidents.effective_ms = timeline.next_grid_ms();
                    frame
                };
                let up = (0..frame.len()).filter(|&i| frame.up(i)).count();
                shared.publish(frame);
                took = started.elapsed();
                shared.telemetry.observe_tick(took, up);
            }
        })
        .expect("spawning a thread fails only when the system is out of resources")
}

/// SIGINT or SIGTERM, whichever comes first. The handlers are installed on the call, not
/// when the future is first polled.
fn shutdown_signals() -> impl Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let interrupt = signal(SignalKind::interrupt());
    let terminate = signal(SignalKind::terminate());
    async move {
        match (interrupt, terminate) {
            (Ok(mut interrupt), Ok(mut terminate)) => {
                tokio::select! {
                    _ = interrupt.recv() => {}
                    _ = terminate.recv() => {}
                }
            }
            // Without handlers the default actions stop the process.
            _ => std::future::pending().await,
        }
        tracing::info!("shutting down");
    }
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
