//! Every parameter of the model, with its built-in default, per role.
//!
//! The shipped `config/fleet.toml` repeats these defaults with their documentation; a
//! config file only needs the keys it changes. Each struct here has a "patch" twin whose
//! fields are all optional: the config file is parsed into patches (so unknown keys are
//! errors with a line number) and the patches are laid over these defaults.

use std::time::Duration;

use serde::Deserialize;

use crate::units::Humane;

/// A value that a config file can override, field by field for structs.
pub trait Patchable: Sized {
    type Patch;
    fn patched(&self, patch: &Self::Patch) -> Self;
}

macro_rules! leaf_patchable {
    ($($ty:ty => $patch:ty, |$p:ident| $conv:expr;)*) => {$(
        impl Patchable for $ty {
            type Patch = $patch;
            fn patched(&self, $p: &$patch) -> Self { $conv }
        }
    )*};
}

leaf_patchable! {
    f64 => f64, |p| *p;
    u64 => u64, |p| *p;
    Duration => Humane, |p| p.0;
    Vec<String> => Vec<String>, |p| p.clone();
}

/// Declares a parameter struct and its patch twin (`Option` of each field's patch,
/// unknown keys rejected).
macro_rules! patchable {
    (
        $(#[$meta:meta])*
        pub struct $name:ident / $patch:ident {
            $( $(#[$fmeta:meta])* pub $field:ident : $ty:ty, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq)]
        pub struct $name { $( $(#[$fmeta])* pub $field: $ty, )* }

        #[derive(Debug, Default, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $patch {
            $( #[serde(default)] pub $field: Option<<$ty as $crate::model::params::Patchable>::Patch>, )*
        }

        impl $crate::model::params::Patchable for $name {
            type Patch = $patch;
            fn patched(&self, patch: &$patch) -> Self {
                $name { $( $field: match &patch.$field {
                    Some(p) => $crate::model::params::Patchable::patched(&self.$field, p),
                    None => self.$field.clone(),
                }, )* }
            }
        }
    };
}

patchable! {
    /// A bounded, mean-reverting random walk (Ornstein-Uhlenbeck, stepped exactly).
    pub struct WalkParams / WalkPatch {
        /// The level the walk drifts back to.
        pub mean: f64,
        /// How far it wanders: its long-run standard deviation around the mean.
        pub stddev: f64,
        /// How fast it drifts back: the time for a deviation to shrink by a factor e.
        pub reversion: Duration,
        pub min: f64,
        pub max: f64,
    }
}

patchable! {
    /// Incoming traffic: a daily wave times a wandering load factor.
    pub struct TrafficParams / TrafficPatch {
        /// Mean requests per second over a day.
        pub rps: f64,
        /// Depth of the daily wave, 0 (flat) to 1 (zero traffic at the trough).
        pub daily_amplitude: f64,
        /// Hour of the day (UTC, 0 to 24) when the wave peaks.
        pub peak_hour: f64,
        /// Load factor multiplying the wave, wandering around 1.
        pub load: WalkParams,
    }
}

patchable! {
    /// CPU follows the request rate, plus noise of its own, short bursts (batch jobs, cron,
    /// garbage collection, retries) and a cost per request that each deploy changes.
    pub struct CpuParams / CpuPatch {
        /// Percent CPU with no traffic.
        pub idle: f64,
        /// Request rate at which the CPU reaches 100% (before the deploy's cost factor).
        pub saturation_rps: f64,
        /// Percentage points added to the load-driven CPU.
        pub noise: WalkParams,
        /// Mean time between the starts of a server's bursts (0: no bursts).
        pub burst_every: Duration,
        /// Mean percentage points a burst adds; each burst is 0.5 to 1.5 times this high.
        pub burst_height: f64,
        /// Shortest and longest burst. Bursts never overlap, so one shorter than an
        /// alert's `for` crosses the threshold without firing it.
        pub burst_min: Duration,
        pub burst_max: Duration,
        /// Each deploy of the role multiplies the load-driven CPU by a factor drawn
        /// uniformly between these two, held until the next deploy (a release costs more
        /// or less CPU per request than the last).
        pub deploy_cost_low: f64,
        pub deploy_cost_high: f64,
    }
}

patchable! {
    /// Latency is log-normal; it grows as the CPU saturates (queueing: base / (1 - cpu)).
    pub struct LatencyParams / LatencyPatch {
        /// Median latency of an idle server, in milliseconds.
        pub base_ms: f64,
        /// Log-normal sigma of an idle server; it widens by half again at full CPU.
        pub spread: f64,
        /// Log factor applied to the median.
        pub noise: WalkParams,
    }
}

patchable! {
    /// Share of requests answered with errors.
    pub struct ErrorParams / ErrorPatch {
        /// Percent of requests answered 5xx by a healthy server.
        pub server_error_pct: f64,
        /// Extra 5xx percent at full CPU (it starts growing past 80% CPU).
        pub saturation_error_pct: f64,
        /// Percent of requests answered 4xx (clients' mistakes: load does not change it).
        pub client_error_pct: f64,
        /// Log factor applied to both shares.
        pub noise: WalkParams,
    }
}

patchable! {
    /// Memory leaks slowly and drops back when the process restarts.
    pub struct MemoryParams / MemoryPatch {
        /// Percent used just after a restart.
        pub base: f64,
        /// Percentage points leaked per hour of uptime.
        pub leak_per_hour: f64,
        /// Percent at which the process is restarted (out of memory, or a watchdog).
        pub restart_at: f64,
        /// Percentage points added.
        pub noise: WalkParams,
    }
}

patchable! {
    /// Disk fills slowly and drops on cleanup.
    pub struct DiskParams / DiskPatch {
        /// Percent used just after a cleanup.
        pub base: f64,
        /// Percentage points written per day.
        pub fill_per_day: f64,
        /// Mean time between ad-hoc cleanups (random).
        pub cleanup_every: Duration,
        /// Period of the scheduled cleanup (log rotation), which always happens.
        pub rotate_every: Duration,
        /// Percentage points added.
        pub noise: WalkParams,
    }
}

patchable! {
    /// Network traffic follows the requests.
    pub struct NetworkParams / NetworkPatch {
        /// Bytes per second in each direction with no requests (replication, health checks).
        pub base_bps: f64,
        /// Bytes received per request.
        pub request_bytes: f64,
        /// Bytes sent per request.
        pub response_bytes: f64,
    }
}

patchable! {
    /// Deploys, restarts and outages.
    pub struct LifecycleParams / LifecyclePatch {
        /// Mean time between deploys of the role (every server of the role restarts).
        pub deploy_every: Duration,
        /// Period of each server's scheduled reboot (patching).
        pub reboot_every: Duration,
        /// Mean time between failures of one server.
        pub mtbf: Duration,
        /// Mean time to repair: how long an outage lasts on average.
        pub mttr: Duration,
    }
}

patchable! {
    /// Everything that makes a role behave like itself.
    pub struct RoleParams / RolePatch {
        /// Relative share of the fleet with this role (0 leaves the role out).
        pub weight: f64,
        pub traffic: TrafficParams,
        pub cpu: CpuParams,
        pub latency: LatencyParams,
        pub errors: ErrorParams,
        pub memory: MemoryParams,
        pub disk: DiskParams,
        pub network: NetworkParams,
        pub lifecycle: LifecycleParams,
    }
}

patchable! {
    /// The five roles of the fleet.
    pub struct RolesParams / RolesPatch {
        pub web: RoleParams,
        pub api: RoleParams,
        pub db: RoleParams,
        pub cache: RoleParams,
        pub worker: RoleParams,
    }
}

patchable! {
    /// Incidents that happen by themselves (those a user schedules are not parameters: see
    /// `model::incidents`).
    pub struct IncidentParams / IncidentsPatch {
        /// Random incidents per day across the whole fleet (0: a calm fleet), on one random
        /// server each; every six in a row are the six kinds, in a random order (see
        /// `model::incidents::RandomIncidents`).
        pub random_per_day: f64,
    }
}

patchable! {
    /// What the model needs besides the seed and the fleet size.
    pub struct FleetParams / FleetPatch {
        /// The model's time grid: every writer and the exporter sample the same grid points,
        /// and values between grid points are interpolated.
        pub resolution: Duration,
        /// Datacenter names; servers are spread over them in turn.
        pub datacenters: Vec<String>,
        pub roles: RolesParams,
        pub incidents: IncidentParams,
    }
}

/// A server's role.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    Web,
    Api,
    Db,
    Cache,
    Worker,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Web, Role::Api, Role::Db, Role::Cache, Role::Worker];

    pub fn name(self) -> &'static str {
        match self {
            Role::Web => "web",
            Role::Api => "api",
            Role::Db => "db",
            Role::Cache => "cache",
            Role::Worker => "worker",
        }
    }

    pub fn index(self) -> usize {
        self as usize
    }

    /// The role named `name` (`web`, `api`, `db`, `cache`, `worker`).
    pub fn from_name(name: &str) -> Option<Role> {
        Role::ALL.into_iter().find(|r| r.name() == name)
    }
}

impl RolesParams {
    pub fn get(&self, role: Role) -> &RoleParams {
        match role {
            Role::Web => &self.web,
            Role::Api => &self.api,
            Role::Db => &self.db,
            Role::Cache => &self.cache,
            Role::Worker => &self.worker,
        }
    }
}

const fn minutes(m: u64) -> Duration {
    Duration::from_secs(m * 60)
}
const fn hours(h: u64) -> Duration {
    Duration::from_secs(h * 3600)
}
const fn days(d: u64) -> Duration {
    Duration::from_secs(d * 86400)
}

fn walk(mean: f64, stddev: f64, reversion: Duration, min: f64, max: f64) -> WalkParams {
    WalkParams {
        mean,
        stddev,
        reversion,
        min,
        max,
    }
}

/// The numbers every role shares; each role below changes what makes it different.
/// They are chosen so that a fleet without incidents stays below every alert of the stack
/// (CPU < 80%, memory < 90%, disk < 90%, 5xx < 5%, p99 < 2s, each for 5 minutes, the
/// last two over 5-minute windows): a burst crosses 80% CPU without lasting, and is kept
/// low enough where latency is close to its limit (api, worker) for the p99 of a window
/// around it to stay below 2s.
fn common_role() -> RoleParams {
    RoleParams {
        weight: 1.0,
        traffic: TrafficParams {
            rps: 100.0,
            daily_amplitude: 0.5,
            peak_hour: 14.0,
            load: walk(1.0, 0.12, minutes(30), 0.3, 2.0),
        },
        cpu: CpuParams {
            idle: 5.0,
            saturation_rps: 400.0,
            noise: walk(0.0, 3.0, minutes(5), -15.0, 15.0),
            burst_every: minutes(40),
            burst_height: 12.0,
            burst_min: minutes(1),
            burst_max: minutes(4),
            deploy_cost_low: 0.85,
            deploy_cost_high: 1.15,
        },
        latency: LatencyParams {
            base_ms: 25.0,
            spread: 0.5,
            noise: walk(0.0, 0.1, minutes(10), -1.0, 1.0),
        },
        errors: ErrorParams {
            server_error_pct: 0.2,
            saturation_error_pct: 15.0,
            client_error_pct: 1.5,
            noise: walk(0.0, 0.3, minutes(15), -2.0, 2.0),
        },
        memory: MemoryParams {
            base: 35.0,
            leak_per_hour: 0.5,
            restart_at: 80.0,
            noise: walk(0.0, 1.2, minutes(10), -5.0, 5.0),
        },
        disk: DiskParams {
            base: 25.0,
            fill_per_day: 1.5,
            cleanup_every: days(2),
            rotate_every: days(7),
            noise: walk(0.0, 0.2, minutes(30), -2.0, 2.0),
        },
        network: NetworkParams {
            base_bps: 20_000.0,
            request_bytes: 900.0,
            response_bytes: 18_000.0,
        },
        lifecycle: LifecycleParams {
            deploy_every: days(1),
            reboot_every: days(7),
            mtbf: days(30),
            mttr: minutes(8),
        },
    }
}

impl Default for RolesParams {
    fn default() -> Self {
        let base = common_role();
        let mut web = base.clone();
        web.weight = 3.0;
        web.traffic.rps = 120.0;
        web.cpu.saturation_rps = 450.0;
        web.cpu.idle = 4.0;

        let mut api = base.clone();
        api.weight = 3.0;
        api.traffic.rps = 80.0;
        api.traffic.peak_hour = 15.0;
        api.cpu.saturation_rps = 280.0;
        api.cpu.idle = 6.0;
        api.cpu.burst_height = 8.0;
        api.latency.base_ms = 45.0;
        api.latency.spread = 0.55;
        api.errors.server_error_pct = 0.3;
        api.errors.client_error_pct = 3.0;
        api.memory.base = 45.0;
        api.memory.leak_per_hour = 0.4;
        api.network.request_bytes = 1_500.0;
        api.network.response_bytes = 6_000.0;
        api.lifecycle.deploy_every = hours(12);

        let mut db = base.clone();
        db.weight = 1.0;
        db.traffic.rps = 400.0;
        db.traffic.daily_amplitude = 0.35;
        db.cpu.saturation_rps = 1_500.0;
        db.cpu.idle = 8.0;
        // Compactions, vacuums, backups: heavier and more often.
        db.cpu.burst_every = minutes(30);
        db.cpu.burst_height = 20.0;
        db.latency.base_ms = 4.0;
        db.latency.spread = 0.7;
        db.errors.server_error_pct = 0.05;
        db.errors.client_error_pct = 0.1;
        db.memory.base = 65.0;
        db.memory.leak_per_hour = 0.05;
        db.memory.restart_at = 85.0;
        db.memory.noise.stddev = 0.8;
        db.disk.base = 50.0;
        db.disk.fill_per_day = 2.0;
        db.disk.cleanup_every = days(3);
        db.network.base_bps = 200_000.0;
        db.network.request_bytes = 400.0;
        db.network.response_bytes = 3_000.0;
        db.lifecycle.deploy_every = days(7);

        let mut cache = base.clone();
        cache.weight = 1.0;
        cache.traffic.rps = 2_000.0;
        cache.cpu.saturation_rps = 9_000.0;
        cache.cpu.idle = 2.0;
        cache.latency.base_ms = 1.0;
        cache.latency.spread = 0.4;
        cache.errors.server_error_pct = 0.02;
        cache.errors.client_error_pct = 0.5;
        cache.memory.base = 55.0;
        cache.memory.leak_per_hour = 0.1;
        cache.memory.restart_at = 85.0;
        cache.disk.base = 10.0;
        cache.disk.fill_per_day = 0.2;
        cache.network.request_bytes = 150.0;
        cache.network.response_bytes = 1_200.0;
        cache.lifecycle.deploy_every = days(7);

        let mut worker = base;
        worker.weight = 2.0;
        worker.traffic.rps = 15.0;
        worker.traffic.daily_amplitude = 0.3;
        worker.traffic.peak_hour = 3.0;
        // Little steady load, frequent heavy batches.
        worker.cpu.saturation_rps = 60.0;
        worker.cpu.idle = 10.0;
        worker.cpu.burst_every = minutes(20);
        worker.cpu.burst_height = 18.0;
        worker.latency.base_ms = 80.0;
        worker.latency.spread = 0.4;
        worker.errors.server_error_pct = 0.5;
        worker.errors.client_error_pct = 0.0;
        worker.memory.base = 40.0;
        worker.memory.leak_per_hour = 1.0;
        worker.disk.base = 20.0;
        worker.disk.fill_per_day = 3.0;
        worker.disk.cleanup_every = days(1);
        worker.network.request_bytes = 2_000.0;
        worker.network.response_bytes = 500.0;
        worker.lifecycle.deploy_every = days(2);

        RolesParams {
            web,
            api,
            db,
            cache,
            worker,
        }
    }
}

impl Default for FleetParams {
    fn default() -> Self {
        FleetParams {
            resolution: Duration::from_secs(15),
            datacenters: vec!["dc1".into(), "dc2".into(), "dc3".into()],
            roles: RolesParams::default(),
            // Something to find by default: every kind of incident once a day, each firing
            // its alert (the fleet without them stays below every alert).
            incidents: IncidentParams {
                random_per_day: 6.0,
            },
        }
    }
}
