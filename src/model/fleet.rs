//! The fleet: its servers' readings at each grid point, kept as flat arrays per signal
//! so that writers and the exposition read them without building objects.

use std::ops::Range;
use std::sync::Arc;

use super::effects::Effects;
use super::events::{Poisson, Regimes};
use super::identity::Member;
use super::incidents::{Incident, RandomIncidents, Schedule};
use super::noise::{Key, Stream};
use super::params::{FleetParams, Role};
use super::server::{Counters, Counting, DailyWave, Reading, RoleAt, ServerPlan, ServerState};
use super::shape::{Changes, Restarts, Roster, Shape};
use super::spec::FleetSpec;

/// From this many servers on, a step is shared among the cores (below it, starting the
/// threads costs more than it saves).
const PARALLEL_STEP_MIN: usize = 2_000;

/// How much further back than the servers' replay a warm start looks for random incidents
/// (an outage incident just before the replay moves it back).
pub(super) const RANDOM_MARGIN_MS: i64 = 86_400_000;

/// How far back a role's last deploy is looked for.
const DEPLOY_HORIZON_SECS: f64 = 365.0 * 86_400.0;

/// Every server's readings at one grid point, one array per signal.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    /// Grid index and its unix time in milliseconds.
    pub grid: i64,
    pub time_ms: i64,
    pub up: Vec<bool>,
    pub restarted: Vec<bool>,
    pub cpu: Vec<f64>,
    pub memory: Vec<f64>,
    pub disk: Vec<f64>,
    pub rps: Vec<f64>,
    pub latency_median: Vec<f64>,
    pub latency_spread: Vec<f64>,
    pub server_error: Vec<f64>,
    pub client_error: Vec<f64>,
    pub receive_bps: Vec<f64>,
    pub transmit_bps: Vec<f64>,
    /// Unix seconds of the role's last deploy.
    pub last_deploy: Vec<f64>,
    /// Unix seconds of the process's last start.
    pub start_time: Vec<f64>,
    pub counters: Vec<Counters>,
    /// The incidents active at this grid point (scheduled and random), by id.
    pub incidents: Vec<Incident>,
}

impl Snapshot {
    fn with_capacity(n: usize) -> Snapshot {
        Snapshot {
            grid: 0,
            time_ms: 0,
            up: Vec::with_capacity(n),
            restarted: Vec::with_capacity(n),
            cpu: Vec::with_capacity(n),
            memory: Vec::with_capacity(n),
            disk: Vec::with_capacity(n),
            rps: Vec::with_capacity(n),
            latency_median: Vec::with_capacity(n),
            latency_spread: Vec::with_capacity(n),
            server_error: Vec::with_capacity(n),
            client_error: Vec::with_capacity(n),
            receive_bps: Vec::with_capacity(n),
            transmit_bps: Vec::with_capacity(n),
            last_deploy: Vec::with_capacity(n),
            start_time: Vec::with_capacity(n),
            counters: Vec::with_capacity(n),
            incidents: Vec::new(),
        }
    }

    fn clear(&mut self) {
        self.up.clear();
        self.restarted.clear();
        self.cpu.clear();
        self.memory.clear();
        self.disk.clear();
        self.rps.clear();
        self.latency_median.clear();
        self.latency_spread.clear();
        self.server_error.clear();
        self.client_error.clear();
        self.receive_bps.clear();
        self.transmit_bps.clear();
        self.last_deploy.clear();
        self.start_time.clear();
        self.counters.clear();
        self.incidents.clear();
    }

    fn push(&mut self, r: &Reading, last_deploy: f64) {
        self.up.push(r.up);
        self.restarted.push(r.restarted);
        self.cpu.push(r.cpu);
        self.memory.push(r.memory);
        self.disk.push(r.disk);
        self.rps.push(r.rps);
        self.latency_median.push(r.latency_median);
        self.latency_spread.push(r.latency_spread);
        self.server_error.push(r.server_error);
        self.client_error.push(r.client_error);
        self.receive_bps.push(r.receive_bps);
        self.transmit_bps.push(r.transmit_bps);
        self.last_deploy.push(last_deploy);
        self.start_time.push(r.start_time);
        self.counters.push(r.counters);
    }

    pub fn len(&self) -> usize {
        self.up.len()
    }

    pub fn is_empty(&self) -> bool {
        self.up.is_empty()
    }
}

#[cfg(test)]
/// The continuous signals of a snapshot, by name.
pub(super) fn gauges(s: &Snapshot) -> [(&'static str, &Vec<f64>); 12] {
    [
        ("cpu", &s.cpu),
        ("memory", &s.memory),
        ("disk", &s.disk),
        ("rps", &s.rps),
        ("latency_median", &s.latency_median),
        ("latency_spread", &s.latency_spread),
        ("server_error", &s.server_error),
        ("client_error", &s.client_error),
        ("receive_bps", &s.receive_bps),
        ("transmit_bps", &s.transmit_bps),
        ("last_deploy", &s.last_deploy),
        ("start_time", &s.start_time),
    ]
}

/// A role's deploys, shared by all its servers.
#[derive(Debug, Clone)]
struct RoleDeploys {
    events: Poisson,
    last: i64,
    /// The level the last deploy drew (see `Regimes`).
    regime: f64,
}

impl RoleDeploys {
    fn regimes(&self, step_secs: f64) -> Regimes<'_> {
        Regimes {
            deploys: &self.events,
            horizon: (DEPLOY_HORIZON_SECS / step_secs) as i64,
        }
    }
}

/// The simulated fleet at one grid point, able to step to the next.
#[derive(Debug, Clone)]
pub struct Fleet {
    step_ms: i64,
    seed: u64,
    members: Vec<Member>,
    plans: Vec<ServerPlan>,
    states: Vec<ServerState>,
    deploys: Vec<RoleDeploys>,
    grid: i64,
    current: Snapshot,
    schedule: Schedule,
    /// The positions in `members` each of the schedule's incidents hits.
    hits: Vec<Vec<usize>>,
    random: RandomIncidents,
    shape: Shape,
    /// Who is in the fleet at the current grid point; shared with the frames, and copied
    /// only when it changes.
    roster: Arc<Roster>,
}

/// Pairs (server position, incident) sorted by position.
type Hits<'a> = Vec<(usize, &'a Incident)>;

/// The incidents of `hits` (sorted) that hit the server at `position`.
fn hitting<'a>(hits: &[(usize, &'a Incident)], position: usize) -> Vec<&'a Incident> {
    let from = hits.partition_point(|&(p, _)| p < position);
    hits[from..]
        .iter()
        .take_while(|&&(p, _)| p == position)
        .map(|&(_, i)| i)
        .collect()
}

/// The pairs (position, incident) of `scheduled` (with the positions each hits) and of
/// `random`, sorted by position (stably: for one server, in that order).
fn sorted_hits<'a>(
    scheduled: impl Iterator<Item = (&'a Incident, &'a Vec<usize>)>,
    random: &'a [Incident],
    members: &[Member],
    seed: u64,
) -> Hits<'a> {
    let mut hits: Hits = scheduled
        .flat_map(|(i, positions)| positions.iter().map(move |&p| (p, i)))
        .collect();
    for incident in random {
        hits.extend(
            incident
                .targets(members, seed)
                .into_iter()
                .map(|p| (p, incident)),
        );
    }
    hits.sort_by_key(|&(p, _)| p);
    hits
}

/// The positions in `members` each of the schedule's incidents hits.
fn schedule_hits(schedule: &Schedule, members: &[Member], seed: u64) -> Vec<Vec<usize>> {
    schedule
        .incidents
        .iter()
        .map(|i| i.targets(members, seed))
        .collect()
}

/// Each role's deploys, and its last one at or before `grid`.
fn role_deploys(
    params: &FleetParams,
    fleet_key: Key,
    step_secs: f64,
    grid: i64,
) -> Vec<RoleDeploys> {
    Role::ALL
        .iter()
        .map(|&role| {
            let events = role_deploy_events(params, fleet_key, step_secs, role);
            let horizon = (DEPLOY_HORIZON_SECS / step_secs) as i64;
            let last = events
                .last_at_or_before(grid, horizon)
                .unwrap_or(grid - horizon);
            let mut deploys = RoleDeploys {
                events,
                last,
                regime: 0.0,
            };
            deploys.regime = deploys.regimes(step_secs).at(grid);
            deploys
        })
        .collect()
}

/// A role's deploys, shared by all its servers.
pub(super) fn role_deploy_events(
    params: &FleetParams,
    fleet_key: Key,
    step_secs: f64,
    role: Role,
) -> Poisson {
    let mean = params.roles.get(role).lifecycle.deploy_every.as_secs_f64() / step_secs;
    let key = fleet_key.stream(Stream::Deploys).with(role.index() as u64);
    Poisson::new(key, mean)
}

/// Each server's plan, from its role and its own key (by index, so a larger fleet only
/// adds plans).
/// The servers of a role share its table of the daily wave (made for the first of them),
/// which a warm start with counters reads at every replayed step.
pub(super) fn server_plans(spec: &FleetSpec, fleet_key: Key, step_secs: f64) -> Vec<ServerPlan> {
    let mut waves: [Option<Option<Arc<DailyWave>>>; Role::ALL.len()] = Default::default();
    spec.members
        .iter()
        .map(|m| {
            let key = fleet_key.stream(Stream::Servers).with(m.index as u64);
            let plan = ServerPlan::new(spec.params.roles.get(m.role), key, step_secs)
                .counting(spec.counting);
            if spec.counting == Counting::Off {
                return plan;
            }
            let wave = waves[m.role.index()]
                .get_or_insert_with(|| plan.daily_wave().map(Arc::new))
                .clone();
            plan.with_daily_wave(wave)
        })
        .collect()
}

/// What a warm start computes for one server: its state and reading at the start, and
/// when its machine was born.
type Warmed = (ServerState, Reading, i64);

/// Every server warmed to `grid`. Warming replays each server's recent past: servers are
/// independent, so the work is shared among the cores, and the result is the same
/// whatever their number.
fn warm_servers(
    grid: i64,
    members: &[Member],
    plans: &[ServerPlan],
    deploys: &[RoleDeploys],
    shape: &Shape,
    hits: &[(usize, &Incident)],
    replay: &(impl Replay + Sync),
) -> Vec<Warmed> {
    let warm = |range: Range<usize>| -> Vec<Warmed> {
        range
            .map(|i| {
                let role = &deploys[members[i].role.index()];
                let restarts = Restarts {
                    deploys: &role.events,
                    shape,
                    index: members[i].index,
                };
                let regimes = role.regimes(plans[i].step_ms() as f64 / 1000.0);
                let (state, reading) =
                    replay.warm(&plans[i], grid, &restarts, &regimes, &hitting(hits, i));
                // Finding the last new machine looks back over intervals: shared too.
                (state, reading, shape.born_ms(members[i].index, grid))
            })
            .collect()
    };
    // Servers differ in how far back they last restarted, so in the work a warm start
    // takes: the cores take small chunks in turn rather than one large share each.
    const CHUNK: usize = 128;
    let chunks = members.len().div_ceil(CHUNK);
    let next = std::sync::atomic::AtomicUsize::new(0);
    let threads = crate::cores().min(chunks).max(1);
    let mut done: Vec<(usize, Vec<Warmed>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        let c = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        if c >= chunks {
                            return mine;
                        }
                        let from = c * CHUNK;
                        mine.push((c, warm(from..(from + CHUNK).min(members.len()))));
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("warming a server does not panic"))
            .collect()
    });
    done.sort_unstable_by_key(|(c, _)| *c);
    done.into_iter().flat_map(|(_, warmed)| warmed).collect()
}

/// How a warm start computes one server's state: `ServerPlan::warm`, or in tests what it
/// is checked against.
trait Replay {
    fn warm(
        &self,
        plan: &ServerPlan,
        k: i64,
        deploys: &Restarts,
        regimes: &Regimes,
        incidents: &[&Incident],
    ) -> (ServerState, Reading);
}

/// `ServerPlan::warm`.
struct Warm;

impl Replay for Warm {
    fn warm(
        &self,
        plan: &ServerPlan,
        k: i64,
        deploys: &Restarts,
        regimes: &Regimes,
        incidents: &[&Incident],
    ) -> (ServerState, Reading) {
        plan.warm(k, deploys, regimes, incidents)
    }
}

/// `ServerPlan::warm_by_stepping`.
#[cfg(test)]
struct WarmByStepping;

#[cfg(test)]
impl Replay for WarmByStepping {
    fn warm(
        &self,
        plan: &ServerPlan,
        k: i64,
        deploys: &Restarts,
        regimes: &Regimes,
        incidents: &[&Incident],
    ) -> (ServerState, Reading) {
        plan.warm_by_stepping(k, deploys, regimes, incidents)
    }
}

impl FleetSpec {
    /// The fleet as it is at grid point `grid` (unix time `grid * resolution`).
    pub fn fleet_at_grid(self, grid: i64) -> Fleet {
        Fleet::warm_start(self, grid, &Warm)
    }

    /// `fleet_at_grid`, each server stepped through its replay as `warm` was first
    /// written (`ServerPlan::warm_by_stepping`): what the warm start is checked against.
    #[cfg(test)]
    pub(super) fn fleet_at_grid_by_stepping(self, grid: i64) -> Fleet {
        Fleet::warm_start(self, grid, &WarmByStepping)
    }

    /// The fleet at the last grid point at or before `time_ms`.
    pub fn fleet_at_time(self, time_ms: i64) -> Fleet {
        let grid = time_ms.div_euclid(resolution_ms(&self.params));
        self.fleet_at_grid(grid)
    }
}

impl Fleet {
    /// The fleet at `grid` as if it had always been running: every server replays its
    /// recent past, under the incidents of that past.
    fn warm_start(spec: FleetSpec, grid: i64, how: &(impl Replay + Sync)) -> Fleet {
        let seed = spec.seed;
        let step_ms = resolution_ms(&spec.params);
        let size = spec.members.first().map_or(0, |m| m.fleet_size);
        let shape = Shape::new(&spec.shape, size, seed, step_ms);
        let step_secs = step_ms as f64 / 1000.0;
        let fleet_key = Key::from_seed(seed);
        let deploys = role_deploys(&spec.params, fleet_key, step_secs, grid);
        let plans = server_plans(&spec, fleet_key, step_secs);
        let FleetSpec {
            params,
            members,
            schedule,
            ..
        } = spec;
        let hits = schedule_hits(&schedule, &members, seed);
        let random = RandomIncidents::new(&params, seed, &members).following(&schedule);
        let replay = plans
            .iter()
            .map(ServerPlan::replay_steps)
            .max()
            .unwrap_or(0);
        let past_random = random.between(
            &members,
            (grid - replay) * step_ms - RANDOM_MARGIN_MS,
            (grid + 1) * step_ms,
        );
        let all_hits = sorted_hits(
            schedule.incidents.iter().zip(&hits),
            &past_random,
            &members,
            seed,
        );
        let warmed = warm_servers(grid, &members, &plans, &deploys, &shape, &all_hits, how);
        let mut fleet = Fleet {
            step_ms,
            seed,
            states: Vec::with_capacity(members.len()),
            current: Snapshot::with_capacity(members.len()),
            roster: Arc::new(Roster::full(members.len())),
            members,
            plans,
            deploys,
            grid,
            schedule,
            hits,
            random,
            shape,
        };
        fleet.start_from(warmed, &past_random);
        fleet
    }

    /// Takes the warmed servers as the current grid point's.
    fn start_from(&mut self, warmed: Vec<Warmed>, past_random: &[Incident]) {
        let step_secs = self.step_ms as f64 / 1000.0;
        let grid = self.grid;
        self.current.grid = grid;
        self.current.time_ms = grid * self.step_ms;
        let roster = Arc::make_mut(&mut self.roster);
        for (i, (m, (state, reading, born))) in self.members.iter().zip(warmed).enumerate() {
            self.current.push(
                &reading,
                self.deploys[m.role.index()].last as f64 * step_secs,
            );
            self.states.push(state);
            roster.present[i] = self.shape.present(m.index, grid);
            roster.born_ms[i] = born;
        }
        let now = grid * self.step_ms;
        self.current.incidents = active_incidents(&self.schedule, past_random, now);
    }

    /// Replaces the scheduled incidents: the next steps follow the new schedule (what the
    /// old one did to the past stays done). Cheap when the schedule is unchanged.
    pub fn set_schedule(&mut self, schedule: Schedule) {
        if schedule == self.schedule {
            return;
        }
        self.hits = schedule_hits(&schedule, &self.members, self.seed);
        self.random = self.random.clone().following(&schedule);
        self.schedule = schedule;
    }

    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The incidents active at the current grid point, scheduled and random, by id.
    pub fn active_incidents(&self) -> &[Incident] {
        &self.current.incidents
    }

    /// Advances one grid point.
    pub fn step(&mut self) {
        self.grid += 1;
        let k = self.grid;
        let deployed = self.deploy_at(k);
        let now = k * self.step_ms;
        let random = self.random.active_at(&self.members, now);
        let effects = self.effects_at(now, &random);
        let changes = self.shape.changes_at(k);
        let inputs = StepInputs {
            k,
            members: &self.members,
            plans: &self.plans,
            shape: &self.shape,
            changes: &changes,
            deployed: &deployed,
            effects: &effects,
            roles: &self.roles_at(k),
        };
        let readings = inputs.step_all(&mut self.states);
        self.record(&readings, &random);
        if !changes.is_none() {
            self.apply_changes(&changes);
        }
    }

    /// Raises the counters of the current grid point to at least `floors` (by position),
    /// for the servers `keep` picks, in the snapshot and in the states stepped on from it.
    pub fn raise_counters(&mut self, floors: &[Counters], keep: impl Fn(usize) -> bool) {
        for (i, floor) in floors.iter().enumerate().filter(|&(i, _)| keep(i)) {
            self.states[i].raise_counters(floor);
            self.current.counters[i] = self.current.counters[i].at_least(floor);
        }
    }

    /// Whether each role deploys at `k` (noting it as the role's last deploy, and the
    /// level it draws).
    fn deploy_at(&mut self, k: i64) -> Vec<bool> {
        self.deploys
            .iter_mut()
            .map(|d| match d.events.event_at(k) {
                Some(mut draws) => {
                    d.last = k;
                    d.regime = draws.uniform();
                    true
                }
                None => false,
            })
            .collect()
    }

    /// The few servers under an incident at `now`, with what it does to them, by position.
    fn effects_at(&self, now: i64, random: &[Incident]) -> Vec<(usize, Effects)> {
        let scheduled = self
            .schedule
            .incidents
            .iter()
            .zip(&self.hits)
            .filter(|(incident, _)| incident.active_at(now));
        let hits = sorted_hits(scheduled, random, &self.members, self.seed);
        hits.chunk_by(|a, b| a.0 == b.0)
            .map(|chunk| {
                let incidents = chunk.iter().map(|&(_, incident)| incident);
                (chunk[0].0, Effects::of(incidents, now))
            })
            .collect()
    }

    /// Every server of a role has the role's wave and regime.
    fn roles_at(&self, k: i64) -> [RoleAt; Role::ALL.len()] {
        let mut roles = [RoleAt {
            wave: 1.0,
            regime: 0.0,
        }; Role::ALL.len()];
        for role in Role::ALL {
            if let Some(i) = self.members.iter().position(|m| m.role == role) {
                roles[role.index()] = self.plans[i].role_at(k, self.deploys[role.index()].regime);
            }
        }
        roles
    }

    /// Makes `readings` the current snapshot, at the new grid point.
    fn record(&mut self, readings: &[Reading], random: &[Incident]) {
        let step_secs = self.step_ms as f64 / 1000.0;
        let now = self.grid * self.step_ms;
        let snap = &mut self.current;
        snap.clear();
        snap.grid = self.grid;
        snap.time_ms = now;
        for (m, reading) in self.members.iter().zip(readings) {
            snap.push(
                reading,
                self.deploys[m.role.index()].last as f64 * step_secs,
            );
        }
        snap.incidents = active_incidents(&self.schedule, random, now);
    }

    /// Who is in the fleet after `changes` (servers joining or leaving, machines replaced).
    fn apply_changes(&mut self, changes: &Changes) {
        let count = self.shape.count_at(self.grid);
        let roster = Arc::make_mut(&mut self.roster);
        for (i, m) in self.members.iter().enumerate() {
            roster.present[i] = m.index < count;
            if let Some(born) = self.shape.replaced(changes, m.index) {
                roster.born_ms[i] = born;
            }
        }
    }

    /// Who is in the fleet at the current grid point.
    pub fn roster(&self) -> &Arc<Roster> {
        &self.roster
    }

    /// Hands over the current snapshot, taking `spare` in its place: the next step
    /// overwrites it, so a timeline that keeps the last two snapshots copies nothing. Until
    /// then the fleet's own snapshot is `spare`, not the current one.
    pub fn swap_snapshot(&mut self, spare: &mut Snapshot) {
        std::mem::swap(&mut self.current, spare);
    }

    pub fn snapshot(&self) -> &Snapshot {
        &self.current
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn grid(&self) -> i64 {
        self.grid
    }

    pub fn step_ms(&self) -> i64 {
        self.step_ms
    }
}

/// The scheduled incidents and those of `random` active at `time_ms`, by id.
fn active_incidents(schedule: &Schedule, random: &[Incident], time_ms: i64) -> Vec<Incident> {
    let mut active: Vec<Incident> = schedule
        .incidents
        .iter()
        .chain(random)
        .filter(|i| i.active_at(time_ms))
        .cloned()
        .collect();
    active.sort_by_key(|i| i.id);
    active
}

/// The grid resolution in milliseconds (at least 1).
pub fn resolution_ms(params: &FleetParams) -> i64 {
    (params.resolution.as_millis() as i64).max(1)
}

/// What every server's step to grid point `k` reads besides its own state.
struct StepInputs<'a> {
    k: i64,
    members: &'a [Member],
    plans: &'a [ServerPlan],
    shape: &'a Shape,
    changes: &'a Changes,
    /// Per role.
    deployed: &'a [bool],
    /// By position, sorted.
    effects: &'a [(usize, Effects)],
    /// Per role.
    roles: &'a [RoleAt; Role::ALL.len()],
}

impl StepInputs<'_> {
    /// Steps every server. Servers are independent: a large fleet is stepped on every core,
    /// in fixed slices, and the result is the same whatever their number.
    fn step_all(&self, states: &mut [ServerState]) -> Vec<Reading> {
        let threads = crate::cores();
        if states.len() < PARALLEL_STEP_MIN || threads <= 1 {
            return self.step_range(0, states);
        }
        let chunk = states.len().div_ceil(threads);
        std::thread::scope(|scope| {
            let handles: Vec<_> = states
                .chunks_mut(chunk)
                .enumerate()
                .map(|(c, states)| scope.spawn(move || self.step_range(c * chunk, states)))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("stepping a server does not panic"))
                .collect()
        })
    }

    /// Steps the servers from position `from` on whose states are `states`.
    fn step_range(&self, from: usize, states: &mut [ServerState]) -> Vec<Reading> {
        let none = Effects::default();
        states
            .iter_mut()
            .enumerate()
            .map(|(offset, state)| {
                let i = from + offset;
                let fx = self
                    .effects
                    .binary_search_by_key(&i, |(p, _)| *p)
                    .map_or(&none, |at| &self.effects[at].1);
                let role = self.members[i].role.index();
                // Joining the fleet, or a new machine, restarts the process as a deploy does.
                let restart = self.deployed[role]
                    || (!self.changes.is_none()
                        && self.shape.joined(self.changes, self.members[i].index));
                self.plans[i].step(state, self.k, restart, fx, self.roles[role])
            })
            .collect()
    }
}
