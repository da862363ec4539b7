//! One simulated server: where the CPU of srv-03 comes from.
//!
//! Each grid step, in this order: the walks move; events (deploy, outage, reboot, cleanup,
//! out-of-memory restart) are applied; traffic follows the daily wave times the load walk;
//! CPU follows traffic, at the cost per request of the role's last deploy, with the
//! server's bursts on top; latency and the 5xx share grow as the CPU saturates; memory and
//! disk grow with uptime and time since cleanup; the counters add what happened in the step.
//!
//! Incidents act on top (see `effects.rs`): an outage takes the server down with the
//! other outages; the other kinds override a signal once it has been computed (the CPU
//! before latency and errors are derived from it, so that they follow). They never touch
//! the walks, so a server is itself again once its incident is over.

use super::effects::Effects;
use super::events::{Bursts, Outages, Periodic, PointCursor, Poisson, Regimes, RestartEvents};
use super::incidents::{Incident, IncidentKind};
use super::noise::{Key, Stream};
use super::params::{RoleParams, WalkParams};
use super::walk::Walk;

/// Upper bounds (seconds) of the request-duration histogram.
pub const LATENCY_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// z-scores of the 95th and 99th percentiles of a normal distribution.
pub const Z95: f64 = 1.644_853_626_951_472_2;
pub const Z99: f64 = 2.326_347_874_040_841;

/// The per-server constants: parameters turned into per-step factors, and event processes.
#[derive(Debug, Clone)]
pub struct ServerPlan {
    walks_key: Key,
    step_secs: f64,
    step_ms: i64,
    load: Walk,
    cpu_noise: Walk,
    latency_noise: Walk,
    error_noise: Walk,
    memory_noise: Walk,
    disk_noise: Walk,
    rps: f64,
    daily_amplitude: f64,
    peak_hour: f64,
    cpu_idle: f64,
    saturation_rps: f64,
    bursts: Bursts,
    /// The load-driven CPU's factor at regime levels 0 and 1.
    cost_low: f64,
    cost_high: f64,
    latency_base_s: f64,
    latency_spread: f64,
    server_error: f64,
    saturation_error: f64,
    client_error: f64,
    memory_base: f64,
    leak_per_step: f64,
    /// Steps of uptime after which the leak forces a restart.
    oom_steps: Option<i64>,
    disk_base: f64,
    fill_per_step: f64,
    network_base: f64,
    request_bytes: f64,
    response_bytes: f64,
    outages: Outages,
    cleanups: Poisson,
    rotation: Periodic,
    reboots: Periodic,
    /// How many steps the walks need to forget where they started.
    warmup_steps: i64,
    counting: Counting,
    /// The wave of each grid point of a day, shared by the servers of a role, if the grid
    /// makes the wave repeat exactly each day.
    daily_wave: Option<std::sync::Arc<DailyWave>>,
}

/// `ServerPlan::wave` at every grid point of a day, for a grid on which it repeats to the
/// bit: a warm start reads the wave of some 11,000 grid points a server, and a `cos` and
/// an `fmod` of each cost as much as a tenth of the step.
///
/// `wave(k)` reads `k` only through `seconds_of_day = (k * step_secs).rem_euclid(86400)`.
/// When `step_secs` has at most 10 bits after the binary point and `k * step_secs * 1024`
/// stays below 2^53, the product `k * step_secs` is exact, and so is the remainder (an
/// `fmod` always is); for `k >= 0` and a day of exactly `period` steps, the remainder of
/// `k` is then the exact real `j * step_secs`, `j = k % period`, the same number that
/// `wave(j)` finds for itself: the same bits go into the same expression.
#[derive(Debug)]
pub struct DailyWave {
    /// What it was computed for (bits): the step and the role's amplitude and peak hour.
    made_for: [u64; 3],
    /// `wave(j)` for `j` in `0..period`.
    values: Vec<f64>,
    /// Grid points from `limit` on leave the range where `k * step_secs` is exact.
    limit: i64,
}

impl DailyWave {
    /// The most grid points a day a table is kept for (a one-second grid).
    const MAX_PERIOD: f64 = 86_400.0;
}

/// What a server carries from one grid point to the next.
#[derive(Debug, Clone, Default)]
pub struct ServerState {
    load: f64,
    cpu_noise: f64,
    latency_noise: f64,
    error_noise: f64,
    memory_noise: f64,
    disk_noise: f64,
    up: bool,
    restarted_at: i64,
    cleaned_at: i64,
    counters: Counters,
}

/// Cumulative counts since the process last started.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Counters {
    /// Requests answered 2xx, 4xx, 5xx.
    pub requests: [f64; 3],
    pub received_bytes: f64,
    pub transmitted_bytes: f64,
    /// Sum of request durations, seconds.
    pub duration_sum: f64,
    /// Requests at or below each of `LATENCY_BUCKETS`.
    pub duration_buckets: [f64; 11],
    /// All requests (the histogram's count).
    pub duration_count: f64,
    /// When the counters started from zero (the process's start), unix seconds: the
    /// OpenMetrics `_created` of every counter.
    pub created: f64,
}

impl Counters {
    /// Each counter at least as high as in `floor` (`created` kept).
    pub fn at_least(&self, floor: &Counters) -> Counters {
        let max = |a: &mut [f64], b: &[f64]| a.iter_mut().zip(b).for_each(|(x, y)| *x = x.max(*y));
        let mut c = *self;
        max(&mut c.requests, &floor.requests);
        max(&mut c.duration_buckets, &floor.duration_buckets);
        c.received_bytes = c.received_bytes.max(floor.received_bytes);
        c.transmitted_bytes = c.transmitted_bytes.max(floor.transmitted_bytes);
        c.duration_sum = c.duration_sum.max(floor.duration_sum);
        c.duration_count = c.duration_count.max(floor.duration_count);
        c
    }
}

impl ServerState {
    /// Raises the counters to at least `floor`: a grid point computed again under a new
    /// schedule must not take back what was already served.
    pub fn raise_counters(&mut self, floor: &Counters) {
        self.counters = self.counters.at_least(floor);
    }
}

/// What can be observed of a server at one grid point.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reading {
    pub up: bool,
    /// The process (re)started at this grid point: counters began again from zero.
    pub restarted: bool,
    pub cpu: f64,
    pub memory: f64,
    pub disk: f64,
    pub rps: f64,
    /// Median request duration, seconds.
    pub latency_median: f64,
    /// Log-normal sigma of request durations.
    pub latency_spread: f64,
    /// Shares of requests answered 5xx and 4xx, 0 to 1.
    pub server_error: f64,
    pub client_error: f64,
    pub receive_bps: f64,
    pub transmit_bps: f64,
    /// When the process last started, unix seconds (kept with or without counters).
    pub start_time: f64,
    pub counters: Counters,
}

/// What follows, at one step, from the walks, the role and the incidents: the reading's
/// signals that the counters read.
#[derive(Debug, Clone, Copy)]
struct Signals {
    rps: f64,
    cpu: f64,
    latency_median: f64,
    latency_spread: f64,
    server_error: f64,
    client_error: f64,
    receive_bps: f64,
    transmit_bps: f64,
}

/// The events of one step that `advance` reads, besides the incidents' effects.
#[derive(Debug, Clone, Copy)]
struct StepEvents {
    /// Restarted from outside (see `RestartEvents`).
    deployed: bool,
    /// Down by the server's own outage.
    outage: bool,
    reboot: bool,
    /// A cleanup or a log rotation.
    cleanup: bool,
}

/// A replay's event processes, each a cursor over the replayed range, asked in order.
struct ReplayEvents {
    deploys: PointCursor,
    outages: super::events::OutageCursor,
    reboots: super::events::PeriodicCursor,
    cleanups: PointCursor,
    rotation: super::events::PeriodicCursor,
}

impl ReplayEvents {
    fn at(&mut self, k: i64) -> StepEvents {
        StepEvents {
            deployed: self.deploys.at(k),
            outage: self.outages.down_at(k),
            reboot: self.reboots.at(k),
            cleanup: self.cleanups.at(k) | self.rotation.at(k),
        }
    }
}

/// What a step reads of the server's role, the same for every server of it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RoleAt {
    /// The daily wave of traffic: 1 on average.
    pub wave: f64,
    /// The level, 0 to 1, of the role's last deploy: where its CPU cost per request lies
    /// between the role's low and high factors.
    pub regime: f64,
}

fn steps_of(d: std::time::Duration, step_secs: f64) -> f64 {
    d.as_secs_f64() / step_secs
}

/// Whether a fleet keeps its counters (requests, bytes, the latency histogram).
///
/// They are what makes a start expensive: they count from each server's last restart,
/// often days back, so a warm start replays every step since then. Without them a warm
/// start replays only until the walks have forgotten where they began (20 of their time
/// constants), and each step skips the histogram. The CSV history shows no counter, so
/// `generate` to CSV runs without them; everything else keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Counting {
    #[default]
    On,
    /// The counters stay at zero; every other value is as with them.
    Off,
}

/// Natural logarithms of `LATENCY_BUCKETS`, computed once.
fn ln_buckets() -> &'static [f64; 11] {
    static LN: std::sync::OnceLock<[f64; 11]> = std::sync::OnceLock::new();
    LN.get_or_init(|| LATENCY_BUCKETS.map(libm::log))
}

/// The standard normal CDF, as the histogram's counters use it 11 times a step: from a
/// table, by cubic Hermite interpolation between its points (the density gives the slopes).
///
/// `erfc` costs about as much as the rest of a step together (two `exp`s inside), and the
/// step is what bounds a tick, a start-up and `generate`. At a point every 1/32 the error
/// is under 1e-8, far below what a bucket count shows; the interpolant is increasing as Φ
/// is, so buckets stay ordered; the table is built with the pure-Rust `libm`, so it is the
/// same on every machine. Beyond ±PHI_RANGE, Φ is 0 or 1 to within 1e-19.
#[cfg(test)]
fn phi(x: f64) -> f64 {
    phi_from(phi_table(), x)
}

/// `phi`, from the `table` (`phi_table()`, looked up once by a caller that asks often).
///
/// The operations are those of `if x > 0 { 1 - lower(-x) } else { lower(x) }`, `lower`
/// being 0 below the table (and for NaN) and the interpolant in it; the table's size is
/// known, so that its look-ups need no bounds check.
#[inline]
fn phi_from(table: &PhiTable, x: f64) -> f64 {
    // The table holds the lower half only, where Φ is small and exact to its last bits;
    // the upper half is 1 - Φ(-x), which stays increasing to the last bit as well.
    let upper = x > 0.0;
    let lower_x = if upper { -x } else { x };
    let t = (lower_x + PHI_RANGE) * PHI_POINTS_PER_UNIT;
    // False for NaN too.
    let inside = t > 0.0;
    let lower = if inside { lower_phi(table, t) } else { 0.0 };
    if upper { 1.0 - lower } else { lower }
}

/// Φ at `t` (> 0) table steps above `-PHI_RANGE`, by the interpolant.
#[inline]
fn lower_phi(table: &PhiTable, t: f64) -> f64 {
    let i = (t as usize).min(PHI_POINTS - 2);
    let u = t - i as f64;
    let (p0, d0) = table[i];
    let (p1, d1) = table[i + 1];
    // Hermite basis on [0, 1], the slopes scaled to the unit interval.
    let h = 1.0 / PHI_POINTS_PER_UNIT;
    let u2 = u * u;
    let u3 = u2 * u;
    (2.0 * u3 - 3.0 * u2 + 1.0) * p0
        + (u3 - 2.0 * u2 + u) * h * d0
        + (-2.0 * u3 + 3.0 * u2) * p1
        + (u3 - u2) * h * d1
}

const PHI_RANGE: f64 = 9.0;
const PHI_POINTS_PER_UNIT: f64 = 32.0;
const PHI_POINTS: usize = (PHI_RANGE * PHI_POINTS_PER_UNIT) as usize + 1;

type PhiTable = [(f64, f64); PHI_POINTS];

/// Φ and its density at each table point.
fn phi_table() -> &'static PhiTable {
    static TABLE: std::sync::OnceLock<PhiTable> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        std::array::from_fn(|i| {
            let x = i as f64 / PHI_POINTS_PER_UNIT - PHI_RANGE;
            (exact_phi(x), exact_phi_density(x))
        })
    })
}

/// Standard normal CDF, from `erfc`.
fn exact_phi(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

/// Standard normal density.
fn exact_phi_density(x: f64) -> f64 {
    libm::exp(-0.5 * x * x) / libm::sqrt(std::f64::consts::TAU)
}

impl ServerPlan {
    pub fn new(role: &RoleParams, server_key: Key, step_secs: f64) -> ServerPlan {
        let walk = |p: &WalkParams| Walk::new(p, step_secs);
        let walks = [
            &role.traffic.load,
            &role.cpu.noise,
            &role.latency.noise,
            &role.errors.noise,
            &role.memory.noise,
            &role.disk.noise,
        ];
        let slowest = walks
            .iter()
            .map(|w| w.reversion.as_secs_f64())
            .fold(0.0, f64::max);
        let mut phases = server_key.stream(Stream::Phases).draws(0);
        let reboot_steps = steps_of(role.lifecycle.reboot_every, step_secs).round() as i64;
        let rotate_steps = steps_of(role.disk.rotate_every, step_secs).round() as i64;
        let leak_per_step = role.memory.leak_per_hour * step_secs / 3600.0;
        let headroom = role.memory.restart_at - role.memory.base;
        ServerPlan {
            walks_key: server_key.stream(Stream::Walks),
            step_secs,
            step_ms: ((step_secs * 1000.0).round() as i64).max(1),
            load: walk(&role.traffic.load),
            cpu_noise: walk(&role.cpu.noise),
            latency_noise: walk(&role.latency.noise),
            error_noise: walk(&role.errors.noise),
            memory_noise: walk(&role.memory.noise),
            disk_noise: walk(&role.disk.noise),
            rps: role.traffic.rps,
            daily_amplitude: role.traffic.daily_amplitude,
            peak_hour: role.traffic.peak_hour,
            cpu_idle: role.cpu.idle,
            saturation_rps: role.cpu.saturation_rps,
            bursts: Bursts::new(
                server_key.stream(Stream::Bursts),
                steps_of(role.cpu.burst_every, step_secs),
                steps_of(role.cpu.burst_min, step_secs).round() as i64,
                steps_of(role.cpu.burst_max, step_secs).round() as i64,
                role.cpu.burst_height,
            ),
            cost_low: role.cpu.deploy_cost_low,
            cost_high: role.cpu.deploy_cost_high,
            latency_base_s: role.latency.base_ms / 1000.0,
            latency_spread: role.latency.spread,
            server_error: role.errors.server_error_pct / 100.0,
            saturation_error: role.errors.saturation_error_pct / 100.0,
            client_error: role.errors.client_error_pct / 100.0,
            memory_base: role.memory.base,
            leak_per_step,
            oom_steps: (leak_per_step > 0.0 && headroom > 0.0)
                .then(|| ((headroom / leak_per_step).ceil() as i64).max(1)),
            disk_base: role.disk.base,
            fill_per_step: role.disk.fill_per_day * step_secs / 86400.0,
            network_base: role.network.base_bps,
            request_bytes: role.network.request_bytes,
            response_bytes: role.network.response_bytes,
            outages: Outages::new(
                server_key.stream(Stream::Outages),
                steps_of(role.lifecycle.mtbf, step_secs),
                steps_of(role.lifecycle.mttr, step_secs),
            ),
            cleanups: Poisson::new(
                server_key.stream(Stream::Cleanups),
                steps_of(role.disk.cleanup_every, step_secs),
            ),
            rotation: Periodic::new(
                rotate_steps,
                (phases.uniform() * rotate_steps as f64) as i64,
            ),
            reboots: Periodic::new(
                reboot_steps,
                (phases.uniform() * reboot_steps as f64) as i64,
            ),
            warmup_steps: ((20.0 * slowest / step_secs).ceil() as i64).max(1),
            counting: Counting::On,
            daily_wave: None,
        }
    }

    /// The table of this plan's wave through a day, if its grid repeats it exactly (see
    /// `DailyWave`): to be shared, with `with_daily_wave`, by the plans of its role.
    pub fn daily_wave(&self) -> Option<DailyWave> {
        let s = self.step_secs;
        let scaled = s * 1024.0;
        // A power of two: `scaled` is exactly `s * 1024`.
        if !(s > 0.0 && scaled.fract() == 0.0 && scaled < (1u64 << 30) as f64) {
            return None;
        }
        let period = 86_400.0 / s;
        // `period * s` is exact (`period * scaled`, integers below 2^17 and 2^30, is an
        // integer below 2^47): a check of the real product.
        if !(period.fract() == 0.0 && period <= DailyWave::MAX_PERIOD && period * s == 86_400.0) {
            return None;
        }
        Some(DailyWave {
            made_for: self.wave_inputs(),
            values: (0..period as i64).map(|j| self.wave(j)).collect(),
            limit: ((1u64 << 53) as f64 / scaled).floor() as i64,
        })
    }

    /// The plan, with its role's table of the daily wave (one made for another step or
    /// wave is not taken).
    pub fn with_daily_wave(mut self, wave: Option<std::sync::Arc<DailyWave>>) -> ServerPlan {
        self.daily_wave = wave.filter(|w| w.made_for == self.wave_inputs());
        self
    }

    /// What `wave` depends on besides the grid point.
    fn wave_inputs(&self) -> [u64; 3] {
        [self.step_secs, self.daily_amplitude, self.peak_hour].map(f64::to_bits)
    }

    /// `wave(k)`, from the daily table where it holds.
    fn wave_from_table(&self, k: i64) -> f64 {
        match &self.daily_wave {
            Some(w) if 0 <= k && k < w.limit => w.values[(k % w.values.len() as i64) as usize],
            _ => self.wave(k),
        }
    }

    /// The plan, keeping its counters or not.
    pub fn counting(mut self, counting: Counting) -> ServerPlan {
        self.counting = counting;
        self
    }

    /// How far back, in grid steps, `warm` may replay (the incidents it is given should
    /// cover that much before `k`).
    pub fn replay_steps(&self) -> i64 {
        self.reboots.period() + self.warmup_steps
    }

    /// The state at grid point `k`, computed from scratch: the walks start at their means far
    /// enough back to have forgotten it, and the counters start at the last restart.
    /// `deploys` are the restarts from outside the server (its role's deploys, its joining
    /// the fleet), `regimes` its role's deploys' levels, and `incidents` those hitting this
    /// server (any that are active between `k - replay_steps()` and `k`; others are
    /// ignored); stepping on from here matches stepping from any earlier warm start (to
    /// within the walks' forgetting, far below any output precision).
    pub fn warm(
        &self,
        k: i64,
        deploys: &impl RestartEvents,
        regimes: &Regimes,
        incidents: &[&Incident],
    ) -> (ServerState, Reading) {
        let horizon = self.reboots.period();
        let down = Downtime::of(self, incidents);
        let effects = |i: i64| {
            if incidents.is_empty() {
                Effects::default()
            } else {
                Effects::of(incidents.iter().copied(), i * self.step_ms)
            }
        };
        if self.counting == Counting::Off {
            let role = self.role_at(k, regimes.at(k));
            return self.warm_without_counters(k, deploys, &down, &effects, horizon, role);
        }
        // The counters count from the last restart: replay from there, with the walks'
        // warm-up before it (restarts for lack of memory happen in the replay).
        let last_restart = self.last_event_restart(k, deploys, &down, horizon);
        let start = last_restart - self.warmup_steps;
        let mut state = self.state_at_means(start, &down, start);
        // Only the incidents active somewhere in the replay can have an effect in it; the
        // others are left out of `Effects::of`, which skips them anyway (in the same order).
        let (from_ms, to_ms) = ((start + 1) * self.step_ms, k * self.step_ms);
        let replayed: Vec<&Incident> = incidents
            .iter()
            .copied()
            .filter(|i| i.start_ms <= to_ms && from_ms < i.end_ms)
            .collect();
        let effects = |i: i64| {
            if replayed.is_empty() {
                Effects::default()
            } else {
                Effects::of(replayed.iter().copied(), i * self.step_ms)
            }
        };
        // Each step's events, found once for the whole replay: every cursor answers as its
        // event process's `at` does (see each), so the steps are the ones `step` takes.
        let mut events = ReplayEvents {
            deploys: PointCursor::new(deploys.points_between(start + 1, k)),
            outages: self.outages.cursor(start + 1, k),
            reboots: self.reboots.cursor(start + 1),
            cleanups: PointCursor::new(self.cleanups.points_between(start + 1, k)),
            rotation: self.rotation.cursor(start + 1),
        };
        // Before the last restart only what the future depends on is needed; from it on,
        // the counters too.
        let observe_from = last_restart.max(start + 1);
        for i in start + 1..observe_from {
            self.advance_by(&mut state, i, &effects(i), events.at(i));
        }
        let mut regime = regimes.at(observe_from - 1);
        let mut drawn = regimes
            .drawn_between(observe_from, k)
            .into_iter()
            .peekable();
        let mut bursts = self.bursts.cursor();
        let mut role_at = |i: i64| {
            if let Some((_, level)) = drawn.next_if(|&(at, _)| at == i) {
                regime = level;
            }
            RoleAt {
                wave: self.wave_from_table(i),
                regime,
            }
        };
        // Up to `k`, the steps only count: their gauges are never seen.
        for i in observe_from..k {
            let role = role_at(i);
            let fx = effects(i);
            let restarted = self.advance_by(&mut state, i, &fx, events.at(i));
            self.count_step(&mut state, restarted, &fx, role, bursts.at(i));
        }
        let role = role_at(k);
        let fx = effects(k);
        let restarted = self.advance_by(&mut state, k, &fx, events.at(k));
        let reading = self.observe(&mut state, k, restarted, &fx, role);
        (state, reading)
    }

    /// `warm` as it was first written, stepping through the replay and asking every event
    /// process of every step: what the replay's cursors and shortcuts are checked against.
    #[cfg(test)]
    pub(super) fn warm_by_stepping(
        &self,
        k: i64,
        deploys: &impl RestartEvents,
        regimes: &Regimes,
        incidents: &[&Incident],
    ) -> (ServerState, Reading) {
        assert_eq!(
            self.counting,
            Counting::On,
            "without counters nothing is replayed"
        );
        let horizon = self.reboots.period();
        let down = Downtime::of(self, incidents);
        let effects = |i: i64| {
            if incidents.is_empty() {
                Effects::default()
            } else {
                Effects::of(incidents.iter().copied(), i * self.step_ms)
            }
        };
        let last_restart = self.last_event_restart(k, deploys, &down, horizon);
        let start = last_restart - self.warmup_steps;
        let mut state = self.state_at_means(start, &down, start);
        let observe_from = last_restart.max(start + 1);
        for i in start + 1..observe_from {
            self.advance(&mut state, i, deploys.at(i), &effects(i));
        }
        let mut regime = regimes.at(observe_from - 1);
        let mut reading = Reading::default();
        for i in observe_from..=k {
            regime = regimes.drawn_at(i).unwrap_or(regime);
            let role = self.role_at(i, regime);
            reading = self.step(&mut state, i, deploys.at(i), &effects(i), role);
        }
        (state, reading)
    }

    /// What a step at `k` reads of the role, its last deploy's level being `regime`.
    pub fn role_at(&self, k: i64, regime: f64) -> RoleAt {
        RoleAt {
            wave: self.wave(k),
            regime,
        }
    }

    /// `warm` without counters: only the walks need a past, and they depend on nothing
    /// else, so they alone are replayed, from where they will have forgotten their start;
    /// up or down, the last restart and the last cleanup before `k` are found in closed
    /// form, and `k` is stepped as usual. The walks' draws are the ones a stepped server
    /// uses, so the values match a stepped fleet's to within the walks' forgetting.
    fn warm_without_counters(
        &self,
        k: i64,
        deploys: &impl RestartEvents,
        down: &Downtime,
        effects: &dyn Fn(i64) -> Effects,
        horizon: i64,
        role: RoleAt,
    ) -> (ServerState, Reading) {
        let before = k - 1;
        let up_at = down.last_up_at_or_before(before);
        let event = self.last_event_restart(before, deploys, down, horizon);
        let restarted_at = match self.oom_steps {
            // Up from that restart to `up_at` (a down spell would end in a recovery, a
            // later restart), so out of memory every `n` steps.
            Some(n) => event + (up_at - event) / n * n,
            None => event,
        };
        let mut state = self.state_at_means(before, down, restarted_at);
        for i in k - self.warmup_steps..=before {
            self.step_walks(&mut state, i);
        }
        let reading = self.step(&mut state, k, deploys.at(k), &effects(k), role);
        (state, reading)
    }

    /// The walks at their means, and the server as it is at grid point `at`, last
    /// restarted at `restarted_at`.
    fn state_at_means(&self, at: i64, down: &Downtime, restarted_at: i64) -> ServerState {
        ServerState {
            load: self.load.mean(),
            cpu_noise: self.cpu_noise.mean(),
            latency_noise: self.latency_noise.mean(),
            error_noise: self.error_noise.mean(),
            memory_noise: self.memory_noise.mean(),
            disk_noise: self.disk_noise.mean(),
            up: !down.at(at),
            restarted_at,
            cleaned_at: self.last_cleanup_at_or_before(at),
            counters: Counters::default(),
        }
    }

    /// The grid point at or before `k` of the process's last (re)start by an event: a
    /// reboot, a deploy or a recovery from an outage. Events during an outage restart
    /// nothing, so it is looked for from the last point the server was up.
    fn last_event_restart(
        &self,
        k: i64,
        deploys: &impl RestartEvents,
        down: &Downtime,
        horizon: i64,
    ) -> i64 {
        let up_at = down.last_up_at_or_before(k);
        [
            Some(self.reboots.last_at_or_before(up_at)),
            deploys.last_at_or_before(up_at, horizon),
            down.last_recovery_at_or_before(up_at, horizon),
        ]
        .into_iter()
        .flatten()
        .max()
        .unwrap_or(up_at)
    }

    fn last_cleanup_at_or_before(&self, k: i64) -> i64 {
        let rotated = self.rotation.last_at_or_before(k);
        self.cleanups
            .last_at_or_before(k, k - rotated)
            .map_or(rotated, |c| c.max(rotated))
    }

    /// The grid step in milliseconds.
    pub fn step_ms(&self) -> i64 {
        self.step_ms
    }

    /// Moves `state` from grid point `k - 1` to `k`, under the `effects` of the incidents
    /// active at `k` (`Effects::default()` for none), with what the role is at `k` (the same
    /// for every server of a role, so a fleet computes it once a step per role).
    pub fn step(
        &self,
        s: &mut ServerState,
        k: i64,
        deployed: bool,
        effects: &Effects,
        role: RoleAt,
    ) -> Reading {
        let restarted = self.advance(s, k, deployed, effects);
        self.observe(s, k, restarted, effects, role)
    }

    /// The daily wave of traffic at grid point `k`: 1 on average, highest at the role's
    /// peak hour.
    pub fn wave(&self, k: i64) -> f64 {
        let seconds_of_day = (k as f64 * self.step_secs).rem_euclid(86_400.0);
        let hour = seconds_of_day / 3600.0;
        1.0 + self.daily_amplitude
            * libm::cos(std::f64::consts::TAU * (hour - self.peak_hour) / 24.0)
    }

    /// The walks' part of a step: they depend on nothing else.
    fn step_walks(&self, s: &mut ServerState, k: i64) {
        // In this order: each walk has its own draw of the step's.
        let [load, cpu, latency, error, memory, disk] = self.walks_key.draws(k).normals();
        s.load = self.load.step(s.load, load);
        s.cpu_noise = self.cpu_noise.step(s.cpu_noise, cpu);
        s.latency_noise = self.latency_noise.step(s.latency_noise, latency);
        s.error_noise = self.error_noise.step(s.error_noise, error);
        s.memory_noise = self.memory_noise.step(s.memory_noise, memory);
        s.disk_noise = self.disk_noise.step(s.disk_noise, disk);
    }

    /// The part of a step that the future depends on: walks, up or down, restarts and
    /// cleanups. Returns whether the process restarted at `k`.
    fn advance(&self, s: &mut ServerState, k: i64, deployed: bool, fx: &Effects) -> bool {
        let events = StepEvents {
            deployed,
            outage: self.outages.down_at(k),
            reboot: self.reboots.at(k),
            cleanup: self.cleanups.at(k) || self.rotation.at(k),
        };
        self.advance_by(s, k, fx, events)
    }

    /// `advance`, the events at `k` given.
    fn advance_by(&self, s: &mut ServerState, k: i64, fx: &Effects, events: StepEvents) -> bool {
        self.step_walks(s, k);
        let was_up = s.up;
        s.up = !fx.down && !events.outage;
        let out_of_memory = self.oom_steps.is_some_and(|n| k - s.restarted_at >= n);
        let restarted = s.up && (!was_up || events.deployed || events.reboot || out_of_memory);
        if restarted {
            s.restarted_at = k;
            s.counters = Counters {
                created: k as f64 * self.step_secs,
                ..Counters::default()
            };
        }
        if events.cleanup {
            s.cleaned_at = k;
        }
        restarted
    }

    /// The rest of a step: what can be seen at `k`, and what the counters add.
    fn observe(
        &self,
        s: &mut ServerState,
        k: i64,
        restarted: bool,
        fx: &Effects,
        role: RoleAt,
    ) -> Reading {
        let signals = self.signals(s, fx, role, self.bursts.at(k));
        if s.up && !restarted && self.counting == Counting::On {
            self.count(&mut s.counters, &signals);
        }
        Reading {
            up: s.up,
            restarted,
            cpu: signals.cpu,
            memory: self.memory(k, s, fx),
            disk: self.disk(k, s, fx),
            rps: signals.rps,
            latency_median: signals.latency_median,
            latency_spread: signals.latency_spread,
            server_error: signals.server_error,
            client_error: signals.client_error,
            receive_bps: signals.receive_bps,
            transmit_bps: signals.transmit_bps,
            start_time: s.restarted_at as f64 * self.step_secs,
            counters: s.counters,
        }
    }

    /// What the counters add at a replayed step whose reading is not seen: `observe`
    /// without the gauges nothing counts (memory, disk), and without the signals at all
    /// when nothing is counted. `burst` is `self.bursts.at(k)`.
    fn count_step(
        &self,
        s: &mut ServerState,
        restarted: bool,
        fx: &Effects,
        role: RoleAt,
        burst: f64,
    ) {
        if s.up && !restarted {
            let signals = self.signals(s, fx, role, burst);
            self.count(&mut s.counters, &signals);
        }
    }

    /// Traffic, CPU (with `burst` on top), latency, errors and bytes: what follows from the
    /// walks, the role and the incidents.
    fn signals(&self, s: &ServerState, fx: &Effects, role: RoleAt, burst: f64) -> Signals {
        let rps = (self.rps * role.wave * s.load).max(0.0);
        let cpu = self.cpu(rps, role.regime, s, fx, burst);
        let busy = (cpu / 100.0).min(0.98);
        let (latency_median, latency_spread) = self.latency(busy, s, fx);
        let (server_error, client_error) = self.errors(busy, s, fx);
        Signals {
            rps,
            cpu,
            latency_median,
            latency_spread,
            server_error,
            client_error,
            receive_bps: self.network_base + rps * self.request_bytes,
            transmit_bps: self.network_base + rps * self.response_bytes,
        }
    }

    /// CPU follows traffic at the regime's cost, up to saturation, with the burst under way
    /// on top; a CPU incident holds it above its floor.
    fn cpu(&self, rps: f64, regime: f64, s: &ServerState, fx: &Effects, burst: f64) -> f64 {
        let cost = self.cost_low + (self.cost_high - self.cost_low) * regime;
        let load_driven = (100.0 - self.cpu_idle) * rps / self.saturation_rps * cost;
        let mut cpu = (self.cpu_idle + load_driven + s.cpu_noise + burst).clamp(0.0, 100.0);
        if let Some(floor) = fx.cpu_floor {
            cpu = cpu.max(floor).min(100.0);
        }
        cpu
    }

    /// The median and spread of request durations: they grow as the CPU saturates.
    fn latency(&self, busy: f64, s: &ServerState, fx: &Effects) -> (f64, f64) {
        let mut latency_median = self.latency_base_s * libm::exp(s.latency_noise) / (1.0 - busy);
        let latency_spread = self.latency_spread * (1.0 + 0.5 * busy);
        if let Some(p99) = fx.p99_floor {
            latency_median = latency_median.max(p99 / libm::exp(Z99 * latency_spread));
        }
        (latency_median, latency_spread)
    }

    /// The shares of requests answered 5xx and 4xx: 5xx grow past 80% busy.
    fn errors(&self, busy: f64, s: &ServerState, fx: &Effects) -> (f64, f64) {
        let overload = ((busy - 0.8) / 0.2).max(0.0);
        let error_factor = libm::exp(s.error_noise);
        let mut server_error = (self.server_error * error_factor
            + self.saturation_error * overload * overload)
            .min(1.0);
        if let Some(floor) = fx.server_error_floor {
            server_error = server_error.max(floor).min(1.0);
        }
        let client_error = (self.client_error * error_factor).min(1.0 - server_error);
        (server_error, client_error)
    }

    /// Memory grows with uptime (the leak).
    fn memory(&self, k: i64, s: &ServerState, fx: &Effects) -> f64 {
        let memory =
            (self.memory_base + self.leak_per_step * (k - s.restarted_at) as f64 + s.memory_noise)
                .clamp(0.0, 100.0);
        match fx.memory {
            // Held near its level, with a little of the walk's wiggle (a point at most).
            Some(push) => {
                let wiggle = (0.2 * s.memory_noise).clamp(-1.0, 1.0);
                push.apply_with(memory, wiggle).clamp(0.0, 100.0)
            }
            None => memory,
        }
    }

    /// Disk grows with the time since the last cleanup.
    fn disk(&self, k: i64, s: &ServerState, fx: &Effects) -> f64 {
        let disk = (self.disk_base + self.fill_per_step * (k - s.cleaned_at) as f64 + s.disk_noise)
            .clamp(0.0, 100.0);
        match fx.disk {
            Some(push) => {
                let wiggle = (0.5 * s.disk_noise).clamp(-1.0, 1.0);
                push.apply_with(disk, wiggle).clamp(0.0, 100.0)
            }
            None => disk,
        }
    }

    /// Adds to the counters what the step's signals `r` say happened during it.
    fn count(&self, c: &mut Counters, r: &Signals) {
        let requests = r.rps * self.step_secs;
        let failed = requests * r.server_error;
        let refused = requests * r.client_error;
        c.requests[0] += (requests - failed - refused).max(0.0);
        c.requests[1] += refused;
        c.requests[2] += failed;
        c.received_bytes += r.receive_bps * self.step_secs;
        c.transmitted_bytes += r.transmit_bps * self.step_secs;
        let ln_median = libm::log(r.latency_median);
        let table = phi_table();
        for (count, ln_le) in c.duration_buckets.iter_mut().zip(ln_buckets()) {
            *count += requests * phi_from(table, (ln_le - ln_median) / r.latency_spread);
        }
        c.duration_count += requests;
        // Mean of a log-normal: median * exp(sigma^2 / 2).
        c.duration_sum +=
            requests * r.latency_median * libm::exp(r.latency_spread * r.latency_spread / 2.0);
    }
}

/// Why a server's process started again at a grid point.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RestartCause {
    /// It came back up after an outage (its own or an incident's).
    Recovery,
    /// From outside it: its role's deploy, its joining the fleet, a new machine.
    External,
    /// Its scheduled reboot.
    Reboot,
    /// Its memory reached the role's `restart_at`.
    OutOfMemory,
}

/// A server's discrete events over a range of grid points.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Lifecycle {
    /// Its own failures (outage incidents are not among them), as `[first, end)` grid
    /// spans, oldest first; they may begin before the range.
    pub outages: Vec<(i64, i64)>,
    /// Every grid point of the range at which the process started again, and why.
    pub restarts: Vec<(i64, RestartCause)>,
}

impl ServerPlan {
    /// The server's outages and restarts over grid points `[from, to)`, found from its
    /// events rather than by stepping: what `step` would mark `restarted`, and where it
    /// would be down. `deploys` and `incidents` are as for [`warm`](Self::warm) (the
    /// incidents should reach `replay_steps()` before `from`).
    pub fn lifecycle_between(
        &self,
        from: i64,
        to: i64,
        deploys: &impl RestartEvents,
        incidents: &[&Incident],
    ) -> Lifecycle {
        let down = Downtime::of(self, incidents);
        let outages = self.outages.spans(from, to);
        // Between these points nothing but running out of memory can restart the server.
        let mut points: Vec<i64> = outages
            .iter()
            .chain(&down.incidents)
            .flat_map(|&(a, b)| [a, b])
            .chain(self.reboots.between(from, to))
            .collect();
        let mut k = to - 1;
        while k >= from {
            match deploys.last_at_or_before(k, k - from) {
                Some(e) => {
                    points.push(e);
                    k = e - 1;
                }
                None => break,
            }
        }
        points.retain(|&k| from <= k && k < to);
        points.sort_unstable();
        points.dedup();

        // The state at `from - 1`, in closed form as a warm start finds it.
        let before = from - 1;
        let horizon = self.reboots.period();
        let up_at = down.last_up_at_or_before(before);
        let event = self.last_event_restart(before, deploys, &down, horizon);
        let mut restarted_at = match self.oom_steps {
            Some(n) => event + (up_at - event) / n * n,
            None => event,
        };
        let mut was_up = !down.at(before);
        let mut restarts = Vec::new();
        let mut next = points.into_iter().peekable();
        let mut cursor = before;
        loop {
            // Overdue while down, memory restarts nothing: the recovery will.
            let oom = self
                .oom_steps
                .map(|n| restarted_at + n)
                .filter(|&k| k > cursor);
            let k = match (next.peek().copied(), oom) {
                (Some(a), Some(b)) => a.min(b),
                (Some(a), None) => a,
                (None, Some(b)) => b,
                (None, None) => break,
            };
            if k >= to {
                break;
            }
            if next.peek() == Some(&k) {
                next.next();
            }
            cursor = k;
            let up = !down.at(k);
            let cause = if !up {
                None
            } else if !was_up {
                Some(RestartCause::Recovery)
            } else if deploys.at(k) {
                Some(RestartCause::External)
            } else if self.reboots.at(k) {
                Some(RestartCause::Reboot)
            } else if self.oom_steps.is_some_and(|n| k - restarted_at >= n) {
                Some(RestartCause::OutOfMemory)
            } else {
                None
            };
            if let Some(cause) = cause {
                restarted_at = k;
                restarts.push((k, cause));
            }
            was_up = up;
        }
        Lifecycle { outages, restarts }
    }
}

/// When a server is down: its own outages and its outage incidents (as grid spans).
struct Downtime<'a> {
    plan: &'a ServerPlan,
    incidents: Vec<(i64, i64)>,
}

impl<'a> Downtime<'a> {
    /// The server's own outages and those of the outage incidents among `incidents`.
    fn of(plan: &'a ServerPlan, incidents: &[&Incident]) -> Downtime<'a> {
        Downtime {
            plan,
            incidents: incidents
                .iter()
                .filter(|i| i.kind == IncidentKind::Outage)
                .map(|i| i.grid_span(plan.step_ms))
                .filter(|(a, b)| a < b)
                .collect(),
        }
    }

    fn incident_at(&self, k: i64) -> Option<(i64, i64)> {
        self.incidents
            .iter()
            .copied()
            .filter(|&(a, b)| a <= k && k < b)
            .min()
    }

    fn at(&self, k: i64) -> bool {
        self.incident_at(k).is_some() || self.plan.outages.down_at(k)
    }

    /// The latest grid point at or before `k` at which the server is up.
    fn last_up_at_or_before(&self, k: i64) -> i64 {
        let mut at = k;
        loop {
            at = self.plan.outages.last_up_at_or_before(at);
            match self.incident_at(at) {
                Some((first, _)) => at = first - 1,
                None => return at,
            }
        }
    }

    /// The latest grid point at or before `k`, within `horizon`, at which the server came
    /// back up (from either kind of outage).
    fn last_recovery_at_or_before(&self, k: i64, horizon: i64) -> Option<i64> {
        let floor = k - horizon;
        // The outages' own recoveries, unless an incident keeps the server down.
        let mut own = None;
        let mut upto = k;
        while upto >= floor {
            match self
                .plan
                .outages
                .last_recovery_at_or_before(upto, upto - floor)
            {
                Some(r) if self.incident_at(r).is_some() => upto = r - 1,
                found => {
                    own = found;
                    break;
                }
            }
        }
        let incidents = self
            .incidents
            .iter()
            .map(|&(_, end)| end)
            .filter(|&end| floor <= end && end <= k && !self.at(end))
            .max();
        own.max(incidents)
    }
}

#[cfg(test)]
mod phi_tests {
    use super::*;

    #[test]
    fn the_tabled_cdf_is_within_1e8_of_erfc_and_increasing() {
        let mut previous = 0.0;
        let mut worst: f64 = 0.0;
        for i in -1_000_000..=1_000_000 {
            let x = i as f64 * 1e-5;
            let p = phi(x);
            worst = worst.max((p - exact_phi(x)).abs());
            assert!(p >= previous, "decreases at {x}");
            previous = p;
        }
        assert!(worst < 1e-8, "{worst}");
        assert_eq!(phi(-40.0), 0.0);
        assert_eq!(phi(40.0), 1.0);
        assert_eq!(phi(f64::NAN), 0.0);
        assert_eq!(phi(f64::INFINITY), 1.0);
        assert_eq!(phi(f64::NEG_INFINITY), 0.0);
    }
}

#[cfg(test)]
mod daily_wave_tests {
    use super::*;
    use crate::model::FleetParams;
    use crate::model::noise::Key;

    #[test]
    fn the_daily_table_gives_the_waves_bits_where_it_is_kept() {
        let params = FleetParams::default();
        let roles = [&params.roles.web, &params.roles.db, &params.roles.worker];
        // 2026-11-24T12:00:00Z, and a day boundary, in seconds.
        let instants = [1_795_521_600_i64, 1_795_478_400];
        for step_secs in [15.0, 7.5, 1.0, 2.5, 45.0, 60.0, 86_400.0] {
            for role in roles {
                let plan = ServerPlan::new(role, Key::from_seed(1), step_secs);
                let table = plan.daily_wave().map(std::sync::Arc::new);
                assert!(table.is_some(), "no table for a {step_secs} s grid");
                let plan = plan.with_daily_wave(table);
                for &t in &instants {
                    let k0 = (t as f64 / step_secs) as i64;
                    for k in (k0 - 40_000..k0 + 40_000).chain(0..3_000) {
                        assert_eq!(
                            plan.wave_from_table(k).to_bits(),
                            plan.wave(k).to_bits(),
                            "{step_secs} s grid, k {k}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    fn no_table_where_the_wave_does_not_repeat_to_the_bit() {
        let role = &FleetParams::default().roles.web;
        // Not a whole number of 1/1024 s, a day not a whole number of steps, too fine.
        for step_secs in [1.7, 0.1, 7.0, 0.25] {
            let plan = ServerPlan::new(role, Key::from_seed(1), step_secs);
            assert!(
                plan.daily_wave().is_none(),
                "a table for a {step_secs} s grid"
            );
        }
        // A table made for another role's wave is not taken.
        let web = ServerPlan::new(role, Key::from_seed(1), 15.0);
        let db = ServerPlan::new(&FleetParams::default().roles.db, Key::from_seed(2), 15.0);
        let db = db.with_daily_wave(web.daily_wave().map(std::sync::Arc::new));
        assert!(db.daily_wave.is_none());
    }
}
