//! One simulated server: where the CPU of srv-03 comes from.
//!
//! Each grid step, in this order: the walks move; events (deploy, outage, reboot, cleanup,
//! out-of-memory restart) are applied; traffic follows the daily wave times the load walk;
//! CPU follows traffic, at the cost per request of the role's last deploy, with the
//! server's bursts on top; latency and the 5xx share grow as the CPU saturates; memory and
//! disk grow with uptime and time since cleanup; the counters add what happened in the step.
//!
//! The walks are defined so that a warm start can leap: every `node_steps` (five minutes)
//! they take their exact Ornstein-Uhlenbeck transition at once, and the steps between two
//! nodes are the walk's bridge toward the next node, with the walk's own statistics. The
//! counters read the walks at the nodes only, and every discrete input (a burst, an
//! incident, a deploy's regime) at the step it changes: each counted step adds what the
//! model says happens at the last such sample point. So the counters since a restart two
//! days back are a sum over some 600 sample points, not over 11,000 steps, and a start at
//! 10,000 servers takes a fraction of a second; the gauges still move at every step.
//!
//! Incidents act on top (see `effects.rs`): an outage takes the server down with the
//! other outages; the other kinds override a signal once it has been computed (the CPU
//! before latency and errors are derived from it, so that they follow). They never touch
//! the walks, so a server is itself again once its incident is over.

use super::effects::Effects;
use super::events::{BurstList, Bursts, Outages, Periodic, Poisson, Regimes, RestartEvents};
use super::incidents::{Incident, IncidentKind};
use super::noise::{Key, Stream};
use super::params::{RoleParams, WalkParams};
use super::walk::{Span, Walk};
use std::sync::{Arc, Mutex};

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
    /// The draws of the bridge steps between nodes, one set per grid point.
    walks_key: Key,
    /// The draws of the leaps from node to node, one set per node.
    nodes_key: Key,
    step_secs: f64,
    step_ms: i64,
    /// The walks, in the order of `LOAD` to `DISK`.
    walks: [Walk; WALKS],
    /// Grid steps from one node to the next.
    node_steps: i64,
    /// The walks over `node_steps`, shared by the plans of a role.
    spans: Arc<[Span; WALKS]>,
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

/// The walks, by index into a plan's `walks` and a state's.
const LOAD: usize = 0;
const CPU: usize = 1;
const LATENCY: usize = 2;
const ERROR: usize = 3;
const MEMORY: usize = 4;
const DISK: usize = 5;
const WALKS: usize = 6;

/// How often the walks leap and the counters sample them, seconds. Five minutes: the
/// window of most `rate()`s, over which a rate then moves linearly from one sample to the
/// next; a node every 15 s grid step would cost a warm start as much as stepping.
pub const SAMPLE_SECS: f64 = 300.0;

/// What a server carries from one grid point to the next.
#[derive(Debug, Clone, Default)]
pub struct ServerState {
    /// The walks at this grid point.
    walks: [f64; WALKS],
    /// The walks at the next node, where the bridge is headed.
    toward: [f64; WALKS],
    /// The walks at the last node: what the counters read until the next.
    sampled: [f64; WALKS],
    /// The counters' discrete inputs at this grid point, to see when they change.
    inputs: Inputs,
    up: bool,
    restarted_at: i64,
    cleaned_at: i64,
    tally: Tally,
}

/// What the counters read besides the sampled walks; a change of any of them is a sample
/// point, so that a burst or an incident shows in the rates from its first step.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Inputs {
    burst: f64,
    regime: f64,
    cpu_floor: Option<f64>,
    p99_floor: Option<f64>,
    server_error_floor: Option<f64>,
}

impl Inputs {
    fn of(fx: &Effects, burst: f64, regime: f64) -> Inputs {
        Inputs {
            burst,
            regime,
            cpu_floor: fx.cpu_floor,
            p99_floor: fx.p99_floor,
            server_error_floor: fx.server_error_floor,
        }
    }
}

/// The counters of the running process: `base + counted * per_step`, `per_step` being what
/// the model says happens in a step at the last sample point. Kept in that form, rather
/// than summed step by step, so that a warm start that counts the steps between sample
/// points arrives at the same bits as stepping through them.
#[derive(Debug, Clone, Default)]
struct Tally {
    /// The counters at the last sample point (or the process's start).
    base: Counters,
    /// What each counted step adds until the next sample point.
    per_step: Counters,
    /// Steps counted since `base`.
    counted: u32,
    /// Values already served under another schedule, never to be gone below.
    floor: Option<Box<Counters>>,
}

impl Tally {
    fn value(&self) -> Counters {
        let value = self.base.plus_times(&self.per_step, self.counted);
        match &self.floor {
            Some(floor) => value.at_least(floor),
            None => value,
        }
    }

    /// A sample point: from here each counted step adds `per_step`.
    fn sample(&mut self, per_step: Counters) {
        self.base = self.base.plus_times(&self.per_step, self.counted);
        self.counted = 0;
        self.per_step = per_step;
    }

    /// The process started at `created` (unix seconds): every counter from zero.
    fn restart(&mut self, created: f64) {
        self.base = Counters {
            created,
            ..Counters::default()
        };
        self.counted = 0;
        self.floor = None;
    }

    /// Counts `steps` more steps.
    fn count(&mut self, steps: u32) {
        self.counted += steps;
    }
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
    /// These counters plus `times` times the increments `per_step` (`created` kept).
    fn plus_times(&self, per_step: &Counters, times: u32) -> Counters {
        let n = times as f64;
        let add = |a: &mut [f64], b: &[f64]| a.iter_mut().zip(b).for_each(|(x, y)| *x += n * y);
        let mut c = *self;
        add(&mut c.requests, &per_step.requests);
        add(&mut c.duration_buckets, &per_step.duration_buckets);
        c.received_bytes += n * per_step.received_bytes;
        c.transmitted_bytes += n * per_step.transmitted_bytes;
        c.duration_sum += n * per_step.duration_sum;
        c.duration_count += n * per_step.duration_count;
        c
    }

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
        let floor = match &self.tally.floor {
            Some(old) => floor.at_least(old),
            None => *floor,
        };
        self.tally.floor = Some(Box::new(floor));
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

/// The standard normal CDF, as the histogram's counters use it at every sample point: from
/// a table, by linear interpolation between its points.
///
/// `erfc` costs about as much as the rest of a sample together (two `exp`s inside), and the
/// samples are what bounds a warm start. At a point every 1/256 the error is under 5e-7
/// (h^2/8 times the largest slope of the density), a thousandth of a request in a step of a
/// thousand; the interpolant is increasing as Φ is, so buckets stay ordered; the table is
/// built with the pure-Rust `libm`, so it is the same on every machine. Beyond ±PHI_RANGE,
/// Φ is 0 or 1 to within 1e-19.
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
    let (p0, p1) = (table[i], table[i + 1]);
    p0 + u * (p1 - p0)
}

const PHI_RANGE: f64 = 9.0;
const PHI_POINTS_PER_UNIT: f64 = 256.0;
const PHI_POINTS: usize = (PHI_RANGE * PHI_POINTS_PER_UNIT) as usize + 1;

type PhiTable = [f64; PHI_POINTS];

/// Φ at each table point.
fn phi_table() -> &'static PhiTable {
    static TABLE: std::sync::OnceLock<PhiTable> = std::sync::OnceLock::new();
    TABLE.get_or_init(|| {
        std::array::from_fn(|i| exact_phi(i as f64 / PHI_POINTS_PER_UNIT - PHI_RANGE))
    })
}

/// Standard normal CDF, from `erfc`.
fn exact_phi(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

impl ServerPlan {
    pub fn new(role: &RoleParams, server_key: Key, step_secs: f64) -> ServerPlan {
        let params: [&WalkParams; WALKS] = [
            &role.traffic.load,
            &role.cpu.noise,
            &role.latency.noise,
            &role.errors.noise,
            &role.memory.noise,
            &role.disk.noise,
        ];
        let walks = params.map(|p| Walk::new(p, step_secs));
        let slowest = params
            .iter()
            .map(|w| w.reversion.as_secs_f64())
            .fold(0.0, f64::max);
        let node_steps = ((SAMPLE_SECS / step_secs).round() as i64).max(1);
        let mut phases = server_key.stream(Stream::Phases).draws(0);
        let reboot_steps = steps_of(role.lifecycle.reboot_every, step_secs).round() as i64;
        let rotate_steps = steps_of(role.disk.rotate_every, step_secs).round() as i64;
        let leak_per_step = role.memory.leak_per_hour * step_secs / 3600.0;
        let headroom = role.memory.restart_at - role.memory.base;
        ServerPlan {
            walks_key: server_key.stream(Stream::Walks),
            nodes_key: server_key.stream(Stream::WalkNodes),
            step_secs,
            step_ms: ((step_secs * 1000.0).round() as i64).max(1),
            spans: shared_spans(&walks, node_steps),
            walks,
            node_steps,
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
        self.reboots.period() + self.warmup_steps + 2 * self.node_steps
    }

    /// The state at grid point `k`, computed from scratch rather than by stepping.
    ///
    /// The walks leap from their means, at a node far enough back to have forgotten them,
    /// from node to node; the last restart, up or down, and the last cleanup are found in
    /// closed form; the counters are summed over the sample points since the restart, each
    /// times the steps it holds for. `deploys` are the restarts from outside the server
    /// (its role's deploys, its joining the fleet), `regimes` its role's deploys' levels,
    /// and `incidents` those hitting this server (any active between `k -
    /// replay_steps()` and `k`; others are ignored). Stepping on from here matches
    /// stepping from any earlier warm start to within the walks' forgetting (e^-20),
    /// far below any output precision.
    pub fn warm(
        &self,
        k: i64,
        deploys: &impl RestartEvents,
        regimes: &Regimes,
        incidents: &[&Incident],
    ) -> (ServerState, Reading) {
        let past = self.past_of(k - 1, deploys, incidents);
        let effects = |i: i64| effects_at(incidents, i * self.step_ms);
        let role_track = RegimeTrack::new(regimes, past.first_node, k);
        let mut state = self.state_at(&past);
        let mut chain = self.chain_from(past.chain_from);
        if self.counting == Counting::On {
            let edges = counted_incident_edges(incidents, self.step_ms);
            let inputs = Sampling {
                effects: &effects,
                regimes: &role_track,
                bursts: self.bursts.between(past.first_node - 1, past.before),
                edges: &edges,
            };
            self.sum_counters(&mut state, &past, &mut chain, &inputs);
        }
        self.walks_to(&mut state, &mut chain, past.before);
        state.inputs = Inputs::of(
            &effects(past.before),
            self.bursts.at(past.before),
            role_track.at(past.before),
        );
        let role = self.role_at(k, role_track.at(k));
        let reading = self.step(&mut state, k, deploys.at(k), &effects(k), role);
        (state, reading)
    }

    /// Where the process stands at grid point `before`, in closed form.
    fn past_of(&self, before: i64, deploys: &impl RestartEvents, incidents: &[&Incident]) -> Past {
        let horizon = self.reboots.period();
        let down = Downtime::of(self, incidents);
        let up_at = down.last_up_at_or_before(before);
        let event = self.last_event_restart(before, deploys, &down, horizon);
        let restarted_at = match self.oom_steps {
            // Up from that restart to `up_at` (a down spell would end in a recovery, a
            // later restart), so out of memory every `n` steps.
            Some(n) => event + (up_at - event) / n * n,
            None => event,
        };
        // The counters read the walks from the node at or before the restart on; without
        // counters only the walks at `before` matter.
        let first_node = match self.counting {
            Counting::On => self.node_of(restarted_at),
            Counting::Off => self.node_of(before),
        };
        Past {
            before,
            up: !down.at(before),
            up_at,
            restarted_at,
            cleaned_at: self.last_cleanup_at_or_before(before),
            first_node,
            // From before the restart by an event too, so that a replay stepped from there
            // (the tests' check) finds the restarts for lack of memory that followed it.
            chain_from: self.node_of(first_node.min(event) - self.warmup_steps),
        }
    }

    /// The state at `past.before` but for the walks, the inputs and the counters' sum.
    fn state_at(&self, past: &Past) -> ServerState {
        let mut tally = Tally::default();
        tally.restart(past.restarted_at as f64 * self.step_secs);
        ServerState {
            up: past.up,
            restarted_at: past.restarted_at,
            cleaned_at: past.cleaned_at,
            tally,
            ..ServerState::default()
        }
    }

    /// The walks at their means at node `node`, to leap on from.
    fn chain_from(&self, node: i64) -> Chain {
        Chain {
            node,
            walks: self.walks.map(|w| w.mean()),
        }
    }

    /// `chain` leapt on to node `node` (at or after its own).
    fn leap_to(&self, chain: &mut Chain, node: i64) {
        while chain.node < node {
            chain.node += self.node_steps;
            chain.walks = self.leap_walks(&chain.walks, chain.node);
        }
    }

    /// The walks at node `node`, leapt to from the walks `from` at the node before.
    fn leap_walks(&self, from: &[f64; WALKS], node: i64) -> [f64; WALKS] {
        let z: [f64; WALKS] = self
            .nodes_key
            .draws(node.div_euclid(self.node_steps))
            .normals();
        std::array::from_fn(|w| self.walks[w].leap(from[w], z[w], &self.spans[w]))
    }

    /// The walks of `state` at `before`: the chain at the node at or before it, bridged on.
    fn walks_to(&self, state: &mut ServerState, chain: &mut Chain, before: i64) {
        let node = self.node_of(before);
        self.leap_to(chain, node);
        state.sampled = chain.walks;
        state.walks = chain.walks;
        state.toward = self.leap_walks(&chain.walks, node + self.node_steps);
        for i in node + 1..=before {
            self.step_walks(state, i);
        }
    }

    /// The latest node at or before `k`.
    fn node_of(&self, k: i64) -> i64 {
        k.div_euclid(self.node_steps) * self.node_steps
    }

    /// The counters of `state` at `past.before`: every sample point from the node at or
    /// before the restart on, each holding for the steps until the next, the steps counted
    /// being those after the restart while up. The operations are those of stepping (see
    /// `observe`), so the bits are too.
    fn sum_counters(
        &self,
        state: &mut ServerState,
        past: &Past,
        chain: &mut Chain,
        inputs: &Sampling,
    ) {
        let (first, before) = (past.first_node, past.before);
        // Counted: the steps after the restart, up to the last one up.
        let counted = |from: i64, to: i64| {
            let (lo, hi) = (from.max(past.restarted_at + 1), to.min(past.up_at));
            (hi - lo + 1).max(0) as u32
        };
        let changes = self.changes_between(first, before, inputs);
        let nodes = (first..=before).step_by(self.node_steps as usize);
        let mut points = merge_sorted(nodes, changes.into_iter());
        let Some(mut held_from) = points.next() else {
            return;
        };
        self.sample_at(state, chain, held_from, inputs);
        for point in points {
            state.tally.count(counted(held_from, point - 1));
            self.sample_at(state, chain, point, inputs);
            held_from = point;
        }
        state.tally.count(counted(held_from, before));
    }

    /// The sample point `k`: what a step adds from there on, from the walks at the node at or
    /// before it.
    fn sample_at(&self, state: &mut ServerState, chain: &mut Chain, k: i64, inputs: &Sampling) {
        self.leap_to(chain, self.node_of(k));
        let fx = (inputs.effects)(k);
        let role = RoleAt {
            wave: self.wave_from_table(k),
            regime: inputs.regimes.at(k),
        };
        let signals = self.signals(&chain.walks, &fx, role, inputs.bursts.at(k));
        state.tally.sample(self.increments(&signals));
    }

    /// The grid points in `(from, to]` at which the counters' inputs change, in order.
    fn changes_between(&self, from: i64, to: i64, inputs: &Sampling) -> Vec<i64> {
        let mut candidates: Vec<i64> = inputs.bursts.edges().collect();
        candidates.extend(inputs.regimes.changes_between(from, to));
        candidates.extend(inputs.edges.iter().copied());
        candidates.retain(|&c| from < c && c <= to);
        candidates.sort_unstable();
        candidates.dedup();
        let at = |k: i64| {
            Inputs::of(
                &(inputs.effects)(k),
                inputs.bursts.at(k),
                inputs.regimes.at(k),
            )
        };
        candidates.retain(|&c| at(c) != at(c - 1));
        candidates
    }

    /// `warm` by stepping every grid point from the same start as its leaps: what the
    /// leaps, the closed forms and the sum over sample points are checked against.
    #[cfg(test)]
    pub(super) fn warm_by_stepping(
        &self,
        k: i64,
        deploys: &impl RestartEvents,
        regimes: &Regimes,
        incidents: &[&Incident],
    ) -> (ServerState, Reading) {
        let past = self.past_of(k - 1, deploys, incidents);
        let start = past.chain_from;
        let effects = |i: i64| effects_at(incidents, i * self.step_ms);
        let track = RegimeTrack::new(regimes, start, k);
        let down = Downtime::of(self, incidents);
        let mut state = ServerState {
            walks: self.walks.map(|w| w.mean()),
            sampled: self.walks.map(|w| w.mean()),
            inputs: Inputs::of(&effects(start), self.bursts.at(start), track.at(start)),
            up: !down.at(start),
            restarted_at: start,
            cleaned_at: self.last_cleanup_at_or_before(start),
            ..ServerState::default()
        };
        state.toward = self.leap_walks(&state.walks, start + self.node_steps);
        let mut reading = Reading::default();
        for i in start + 1..=k {
            let role = self.role_at(i, track.at(i));
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

    /// The walks' part of a step: they depend on nothing else. At a node they arrive
    /// where they leapt to, and leap to the next; between nodes they bridge toward it.
    fn step_walks(&self, s: &mut ServerState, k: i64) {
        let remaining = self.node_of(k - 1) + self.node_steps - (k - 1);
        if remaining <= 1 {
            s.walks = s.toward;
            s.toward = self.leap_walks(&s.walks, k + self.node_steps);
            return;
        }
        let z: [f64; WALKS] = self.walks_key.draws(k).normals();
        for (w, walk) in self.walks.iter().enumerate() {
            s.walks[w] = walk.bridge(s.walks[w], s.toward[w], remaining, z[w], &self.spans[w]);
        }
    }

    /// The part of a step that the future depends on: walks, up or down, restarts and
    /// cleanups. Returns whether the process restarted at `k`.
    fn advance(&self, s: &mut ServerState, k: i64, deployed: bool, fx: &Effects) -> bool {
        self.step_walks(s, k);
        let was_up = s.up;
        s.up = !fx.down && !self.outages.down_at(k);
        let out_of_memory = self.oom_steps.is_some_and(|n| k - s.restarted_at >= n);
        let reboot = self.reboots.at(k);
        let restarted = s.up && (!was_up || deployed || reboot || out_of_memory);
        if restarted {
            s.restarted_at = k;
            s.tally.restart(k as f64 * self.step_secs);
        }
        if self.cleanups.at(k) || self.rotation.at(k) {
            s.cleaned_at = k;
        }
        restarted
    }

    /// The rest of a step: what can be seen at `k`, and what the counters add.
    ///
    /// At a sample point (a node, or a change of the counters' inputs) the counters take
    /// what the model says a step adds, from the walks at the last node and the inputs at
    /// `k`; every step up after the restart adds that much until the next.
    fn observe(
        &self,
        s: &mut ServerState,
        k: i64,
        restarted: bool,
        fx: &Effects,
        role: RoleAt,
    ) -> Reading {
        let burst = self.bursts.at(k);
        let signals = self.signals(&s.walks, fx, role, burst);
        if self.counting == Counting::On {
            let inputs = Inputs::of(fx, burst, role.regime);
            let node = k.rem_euclid(self.node_steps) == 0;
            if node {
                s.sampled = s.walks;
            }
            if node || inputs != s.inputs {
                let at_sample = if node {
                    signals
                } else {
                    self.signals(&s.sampled, fx, role, burst)
                };
                s.tally.sample(self.increments(&at_sample));
            }
            s.inputs = inputs;
            if s.up && !restarted {
                s.tally.count(1);
            }
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
            counters: s.tally.value(),
        }
    }

    /// Traffic, CPU (with `burst` on top), latency, errors and bytes: what follows from the
    /// walks, the role and the incidents.
    fn signals(&self, walks: &[f64; WALKS], fx: &Effects, role: RoleAt, burst: f64) -> Signals {
        let rps = (self.rps * role.wave * walks[LOAD]).max(0.0);
        let cpu = self.cpu(rps, role.regime, walks[CPU], fx, burst);
        let busy = (cpu / 100.0).min(0.98);
        let (latency_median, latency_spread) = self.latency(busy, walks[LATENCY], fx);
        let (server_error, client_error) = self.errors(busy, walks[ERROR], fx);
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
    fn cpu(&self, rps: f64, regime: f64, noise: f64, fx: &Effects, burst: f64) -> f64 {
        let cost = self.cost_low + (self.cost_high - self.cost_low) * regime;
        let load_driven = (100.0 - self.cpu_idle) * rps / self.saturation_rps * cost;
        let mut cpu = (self.cpu_idle + load_driven + noise + burst).clamp(0.0, 100.0);
        if let Some(floor) = fx.cpu_floor {
            cpu = cpu.max(floor).min(100.0);
        }
        cpu
    }

    /// The median and spread of request durations: they grow as the CPU saturates.
    fn latency(&self, busy: f64, noise: f64, fx: &Effects) -> (f64, f64) {
        let mut latency_median = self.latency_base_s * libm::exp(noise) / (1.0 - busy);
        let latency_spread = self.latency_spread * (1.0 + 0.5 * busy);
        if let Some(p99) = fx.p99_floor {
            latency_median = latency_median.max(p99 / libm::exp(Z99 * latency_spread));
        }
        (latency_median, latency_spread)
    }

    /// The shares of requests answered 5xx and 4xx: 5xx grow past 80% busy.
    fn errors(&self, busy: f64, noise: f64, fx: &Effects) -> (f64, f64) {
        let overload = ((busy - 0.8) / 0.2).max(0.0);
        let error_factor = libm::exp(noise);
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
        let noise = s.walks[MEMORY];
        let memory = (self.memory_base + self.leak_per_step * (k - s.restarted_at) as f64 + noise)
            .clamp(0.0, 100.0);
        match fx.memory {
            // Held near its level, with a little of the walk's wiggle (a point at most).
            Some(push) => {
                let wiggle = (0.2 * noise).clamp(-1.0, 1.0);
                push.apply_with(memory, wiggle).clamp(0.0, 100.0)
            }
            None => memory,
        }
    }

    /// Disk grows with the time since the last cleanup.
    fn disk(&self, k: i64, s: &ServerState, fx: &Effects) -> f64 {
        let noise = s.walks[DISK];
        let disk = (self.disk_base + self.fill_per_step * (k - s.cleaned_at) as f64 + noise)
            .clamp(0.0, 100.0);
        match fx.disk {
            Some(push) => {
                let wiggle = (0.5 * noise).clamp(-1.0, 1.0);
                push.apply_with(disk, wiggle).clamp(0.0, 100.0)
            }
            None => disk,
        }
    }

    /// What a step with the signals `r` adds to the counters.
    fn increments(&self, r: &Signals) -> Counters {
        let requests = r.rps * self.step_secs;
        let failed = requests * r.server_error;
        let refused = requests * r.client_error;
        let ln_median = libm::log(r.latency_median);
        let per_spread = 1.0 / r.latency_spread;
        let table = phi_table();
        let ln_le = ln_buckets();
        Counters {
            requests: [(requests - failed - refused).max(0.0), refused, failed],
            received_bytes: r.receive_bps * self.step_secs,
            transmitted_bytes: r.transmit_bps * self.step_secs,
            duration_buckets: std::array::from_fn(|b| {
                requests * phi_from(table, (ln_le[b] - ln_median) * per_spread)
            }),
            duration_count: requests,
            // Mean of a log-normal: median * exp(sigma^2 / 2).
            duration_sum: requests
                * r.latency_median
                * libm::exp(r.latency_spread * r.latency_spread / 2.0),
            created: 0.0,
        }
    }
}

/// Where a process stands at a grid point, in closed form: what a warm start starts from.
struct Past {
    before: i64,
    up: bool,
    /// The last grid point up, at or before `before`.
    up_at: i64,
    restarted_at: i64,
    cleaned_at: i64,
    /// The first node whose walks a warm start needs.
    first_node: i64,
    /// The node the leaps start from, at the walks' means.
    chain_from: i64,
}

/// The walks at one node, leaping on from node to node.
struct Chain {
    node: i64,
    walks: [f64; WALKS],
}

/// What a warm start's sample points read besides the walks.
struct Sampling<'a> {
    effects: &'a dyn Fn(i64) -> Effects,
    regimes: &'a RegimeTrack,
    bursts: BurstList,
    /// The grid points at which an incident that the counters see begins or ends.
    edges: &'a [i64],
}

/// The effects at `time_ms` of `incidents`.
fn effects_at(incidents: &[&Incident], time_ms: i64) -> Effects {
    if incidents.is_empty() {
        Effects::default()
    } else {
        Effects::of(incidents.iter().copied(), time_ms)
    }
}

/// Where the incidents that change what a step counts (CPU, latency, errors) begin and end.
fn counted_incident_edges(incidents: &[&Incident], step_ms: i64) -> Vec<i64> {
    incidents
        .iter()
        .filter(|i| {
            matches!(
                i.kind,
                IncidentKind::CpuSpike | IncidentKind::LatencySpike | IncidentKind::ErrorBurst
            )
        })
        .flat_map(|i| {
            let (a, b) = i.grid_span(step_ms);
            [a, b]
        })
        .collect()
}

/// A role's regime over a range of grid points, its deploys drawn once.
struct RegimeTrack {
    from: i64,
    initial: f64,
    /// The deploys in `(from, to]` and their levels, oldest first.
    drawn: Vec<(i64, f64)>,
}

impl RegimeTrack {
    fn new(regimes: &Regimes, from: i64, to: i64) -> RegimeTrack {
        RegimeTrack {
            from,
            initial: regimes.at(from),
            drawn: regimes.drawn_between(from + 1, to),
        }
    }

    /// The level at `k`, which is at or after `from`.
    fn at(&self, k: i64) -> f64 {
        debug_assert!(k >= self.from, "{k} before {}", self.from);
        match self.drawn.partition_point(|&(at, _)| at <= k) {
            0 => self.initial,
            n => self.drawn[n - 1].1,
        }
    }

    fn changes_between(&self, from: i64, to: i64) -> impl Iterator<Item = i64> + '_ {
        self.drawn
            .iter()
            .map(|&(at, _)| at)
            .filter(move |&at| from < at && at <= to)
    }
}

/// Two increasing sequences as one, each value once.
fn merge_sorted(
    a: impl Iterator<Item = i64>,
    b: impl Iterator<Item = i64>,
) -> impl Iterator<Item = i64> {
    let (mut a, mut b) = (a.peekable(), b.peekable());
    std::iter::from_fn(move || match (a.peek().copied(), b.peek().copied()) {
        (Some(x), Some(y)) => {
            if x <= y {
                a.next();
            }
            if y <= x {
                b.next();
            }
            Some(x.min(y))
        }
        (Some(_), None) => a.next(),
        (None, Some(_)) => b.next(),
        (None, None) => None,
    })
}

/// The walks' spans over `steps`, one per set of walk parameters and step: the bridge's
/// coefficients take a few KB a walk, shared by every server of a role rather than copied.
fn shared_spans(walks: &[Walk; WALKS], steps: i64) -> Arc<[Span; WALKS]> {
    type Cache = Vec<(Vec<u64>, Arc<[Span; WALKS]>)>;
    static CACHE: Mutex<Cache> = Mutex::new(Vec::new());
    let mut key: Vec<u64> = walks.iter().flat_map(Walk::bits).collect();
    key.push(steps as u64);
    let mut cache = CACHE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some((_, spans)) = cache.iter().find(|(k, _)| *k == key) {
        return spans.clone();
    }
    let spans = Arc::new(walks.map(|w| w.span(steps)));
    // A long-running process that is given new parameters again and again keeps few.
    if cache.len() >= 64 {
        cache.remove(0);
    }
    cache.push((key, spans.clone()));
    spans
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
    fn the_tabled_cdf_is_within_5e7_of_erfc_and_increasing() {
        let mut previous = 0.0;
        let mut worst: f64 = 0.0;
        for i in -1_000_000..=1_000_000 {
            let x = i as f64 * 1e-5;
            let p = phi(x);
            worst = worst.max((p - exact_phi(x)).abs());
            assert!(p >= previous, "decreases at {x}");
            previous = p;
        }
        assert!(worst < 5e-7, "{worst}");
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
