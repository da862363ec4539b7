//! The fleet: who the servers are, and their readings at each grid point, kept as flat
//! arrays per signal so that writers and the exposition read them without building objects.

use std::ops::Range;
use std::sync::Arc;

use super::events::Poisson;
use super::incidents::{Effects, Incident, RandomIncidents, Schedule};
use super::noise::Key;
use super::params::{FleetParams, Role};
use super::server::{Counters, Counting, Reading, ServerPlan, ServerState};
use super::shape::{Restarts, Roster, Shape, ShapeSpec};

/// From this many servers on, a step is shared among the cores (below it, starting the
/// threads costs more than it saves).
const PARALLEL_STEP_MIN: usize = 2_000;

/// Stream ids under the fleet's key (`incidents.rs` uses 3 and 4).
const SERVERS: u64 = 1;
const DEPLOYS: u64 = 2;

/// How much further back than the servers' replay a warm start looks for random incidents
/// (an outage incident just before the replay moves it back).
const RANDOM_MARGIN_MS: i64 = 86_400_000;

/// How far back a role's last deploy is looked for.
const DEPLOY_HORIZON_SECS: f64 = 365.0 * 86_400.0;

/// One server's identity. Its index alone decides its name, role and datacenter, so a larger
/// fleet only adds servers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub index: u32,
    pub name: String,
    pub role: Role,
    pub dc: String,
    /// The size of the whole fleet this server belongs to (a process may simulate only a
    /// slice of it): what fleet-wide draws, such as random incidents' targets, range over.
    pub fleet_size: u32,
}

/// The servers of a fleet of `size` servers, those with indices in `range`.
///
/// Roles follow a smooth weighted round robin over the roles' weights: any stretch of the
/// fleet holds the roles in proportion (weights 3, 3, 1, 1, 2 put all five roles in every
/// ten servers), and a server's role depends only on its index, never on the fleet size.
pub fn members(params: &FleetParams, size: u32, range: Range<u32>) -> Vec<Member> {
    let width = name_width(size);
    let weights: Vec<f64> = Role::ALL
        .iter()
        .map(|&r| params.roles.get(r).weight.max(0.0))
        .collect();
    let total: f64 = weights.iter().sum();
    let mut credit = vec![0.0; weights.len()];
    let mut role_of_next = move || {
        for (c, w) in credit.iter_mut().zip(&weights) {
            *c += w;
        }
        let (best, _) =
            credit.iter().enumerate().fold(
                (0, f64::MIN),
                |acc, (i, &c)| if c > acc.1 { (i, c) } else { acc },
            );
        credit[best] -= total;
        Role::ALL[best]
    };
    let dcs = &params.datacenters;
    (0..range.end)
        .map(|index| (index, role_of_next()))
        .filter(|(index, _)| range.contains(index))
        .map(|(index, role)| Member {
            index,
            name: server_name(index, width),
            role,
            dc: dcs[index as usize % dcs.len()].clone(),
            fleet_size: size,
        })
        .collect()
}

/// How many digits server numbers have in a fleet of `size`: enough for the largest, and at
/// least two, so that names sort.
pub fn name_width(size: u32) -> usize {
    size.max(1).to_string().len().max(2)
}

/// The name of the server with `index`, its number padded to `width` digits: `srv-03`.
pub fn server_name(index: u32, width: usize) -> String {
    format!("srv-{:0width$}", index as u64 + 1)
}

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
        self.counters.push(r.counters);
    }

    pub fn len(&self) -> usize {
        self.up.len()
    }

    pub fn is_empty(&self) -> bool {
        self.up.is_empty()
    }
}

/// A role's deploys, shared by all its servers.
#[derive(Debug, Clone)]
struct RoleDeploys {
    events: Poisson,
    last: i64,
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

impl Fleet {
    /// The fleet as it is at grid point `grid` (unix time `grid * resolution`), with the
    /// random incidents of `params` and no scheduled ones.
    pub fn at_grid(params: &FleetParams, seed: u64, members: Vec<Member>, grid: i64) -> Fleet {
        Fleet::at_grid_with(params, seed, members, grid, Schedule::default())
    }

    /// The fleet at grid point `grid` with the incidents of `schedule` (and the random
    /// ones of `params`), as if they had always been scheduled: those in the past are
    /// replayed (an outage restarts the server, as it would have).
    pub fn at_grid_with(
        params: &FleetParams,
        seed: u64,
        members: Vec<Member>,
        grid: i64,
        schedule: Schedule,
    ) -> Fleet {
        Fleet::at_grid_shaped(
            params,
            seed,
            members,
            grid,
            schedule,
            &ShapeSpec::default(),
            Counting::On,
        )
    }

    /// The fleet at grid point `grid` with `schedule`, shaped by `spec` (servers joining and
    /// leaving, machines replaced) as if it had always been, with or without the counters
    /// (without them the warm start is far shorter, and every step cheaper).
    pub fn at_grid_shaped(
        params: &FleetParams,
        seed: u64,
        members: Vec<Member>,
        grid: i64,
        schedule: Schedule,
        spec: &ShapeSpec,
        counting: Counting,
    ) -> Fleet {
        let step_ms = resolution_ms(params);
        let size = members.first().map_or(0, |m| m.fleet_size);
        let shape = Shape::new(spec, size, seed, step_ms);
        let step_secs = step_ms as f64 / 1000.0;
        let fleet_key = Key::from_seed(seed);
        let deploys: Vec<RoleDeploys> = Role::ALL
            .iter()
            .map(|&role| {
                let mean = params.roles.get(role).lifecycle.deploy_every.as_secs_f64() / step_secs;
                let events = Poisson::new(fleet_key.with(DEPLOYS).with(role.index() as u64), mean);
                let horizon = (DEPLOY_HORIZON_SECS / step_secs) as i64;
                let last = events
                    .last_at_or_before(grid, horizon)
                    .unwrap_or(grid - horizon);
                RoleDeploys { events, last }
            })
            .collect();
        let plans: Vec<ServerPlan> = members
            .iter()
            .map(|m| {
                let key = fleet_key.with(SERVERS).with(m.index as u64);
                ServerPlan::new(params.roles.get(m.role), key, step_secs).counting(counting)
            })
            .collect();
        let hits: Vec<Vec<usize>> = schedule
            .incidents
            .iter()
            .map(|i| i.targets(&members, seed))
            .collect();
        let random = RandomIncidents::new(params, seed, &members);
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
        let mut all_hits: Hits = schedule
            .incidents
            .iter()
            .zip(&hits)
            .flat_map(|(i, hits)| hits.iter().map(move |&p| (p, i)))
            .collect();
        for incident in &past_random {
            all_hits.extend(
                incident
                    .targets(&members, seed)
                    .into_iter()
                    .map(|p| (p, incident)),
            );
        }
        all_hits.sort_by_key(|&(p, _)| p);
        // Warming replays each server's recent past: servers are independent, so the work
        // is shared among the cores, and the result is the same whatever their number.
        let all_hits = &all_hits;
        let shape_ref = &shape;
        let warm = |range: Range<usize>| -> Vec<(ServerState, Reading, i64)> {
            range
                .map(|i| {
                    let restarts = Restarts {
                        deploys: &deploys[members[i].role.index()].events,
                        shape: shape_ref,
                        index: members[i].index,
                    };
                    let (state, reading) = plans[i].warm(grid, &restarts, &hitting(all_hits, i));
                    // Finding the last new machine looks back over intervals: shared too.
                    (state, reading, shape_ref.born_ms(members[i].index, grid))
                })
                .collect()
        };
        let threads = crate::cores();
        let chunk = members.len().div_ceil(threads).max(64);
        let warmed: Vec<(ServerState, Reading, i64)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..members.len())
                .step_by(chunk)
                .map(|from| {
                    let to = (from + chunk).min(members.len());
                    scope.spawn(move || warm(from..to))
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("warming a server does not panic"))
                .collect()
        });
        let mut states = Vec::with_capacity(members.len());
        let mut current = Snapshot::with_capacity(members.len());
        current.grid = grid;
        current.time_ms = grid * step_ms;
        let mut roster = Roster::full(members.len());
        for (i, (m, (state, reading, born))) in members.iter().zip(warmed).enumerate() {
            current.push(&reading, deploys[m.role.index()].last as f64 * step_secs);
            states.push(state);
            roster.present[i] = shape.present(m.index, grid);
            roster.born_ms[i] = born;
        }
        let now = grid * step_ms;
        current.incidents = active_incidents(&schedule, &past_random, now);
        Fleet {
            step_ms,
            seed,
            members,
            plans,
            states,
            deploys,
            grid,
            current,
            schedule,
            hits,
            random,
            shape,
            roster: Arc::new(roster),
        }
    }

    /// The fleet at the last grid point at or before `time_ms`.
    pub fn at_time(params: &FleetParams, seed: u64, members: Vec<Member>, time_ms: i64) -> Fleet {
        Fleet::at_time_with(params, seed, members, time_ms, Schedule::default())
    }

    /// The fleet at the last grid point at or before `time_ms`, with `schedule`.
    pub fn at_time_with(
        params: &FleetParams,
        seed: u64,
        members: Vec<Member>,
        time_ms: i64,
        schedule: Schedule,
    ) -> Fleet {
        Fleet::at_time_shaped(
            params,
            seed,
            members,
            time_ms,
            schedule,
            &ShapeSpec::default(),
            Counting::On,
        )
    }

    /// The fleet at the last grid point at or before `time_ms`, with `schedule`, shaped by
    /// `spec`.
    pub fn at_time_shaped(
        params: &FleetParams,
        seed: u64,
        members: Vec<Member>,
        time_ms: i64,
        schedule: Schedule,
        spec: &ShapeSpec,
        counting: Counting,
    ) -> Fleet {
        let grid = time_ms.div_euclid(resolution_ms(params));
        Fleet::at_grid_shaped(params, seed, members, grid, schedule, spec, counting)
    }

    /// Replaces the scheduled incidents: the next steps follow the new schedule (what the
    /// old one did to the past stays done). Cheap when the schedule is unchanged.
    pub fn set_schedule(&mut self, schedule: Schedule) {
        if schedule == self.schedule {
            return;
        }
        self.hits = schedule
            .incidents
            .iter()
            .map(|i| i.targets(&self.members, self.seed))
            .collect();
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
        let step_secs = self.step_ms as f64 / 1000.0;
        let deployed: Vec<bool> = self
            .deploys
            .iter_mut()
            .map(|d| {
                let now = d.events.at(k);
                if now {
                    d.last = k;
                }
                now
            })
            .collect();
        let now = k * self.step_ms;
        let random = self.random.active_at(&self.members, now);
        let mut hits: Hits = Vec::new();
        for (incident, positions) in self.schedule.incidents.iter().zip(&self.hits) {
            if incident.active_at(now) {
                hits.extend(positions.iter().map(|&p| (p, incident)));
            }
        }
        for incident in &random {
            hits.extend(
                incident
                    .targets(&self.members, self.seed)
                    .into_iter()
                    .map(|p| (p, incident)),
            );
        }
        hits.sort_by_key(|&(p, _)| p);
        // The few servers under an incident, with what it does to them.
        let mut effects: Vec<(usize, Effects)> = Vec::new();
        for chunk in hits.chunk_by(|a, b| a.0 == b.0) {
            effects.push((
                chunk[0].0,
                Effects::of(chunk.iter().map(|&(_, incident)| incident), now),
            ));
        }
        let none = Effects::default();
        // Every server of a role has the role's wave.
        let mut waves = [1.0; Role::ALL.len()];
        for role in Role::ALL {
            if let Some(i) = self.members.iter().position(|m| m.role == role) {
                waves[role.index()] = self.plans[i].wave(k);
            }
        }
        let waves = &waves;
        let members = &self.members;
        let plans = &self.plans;
        let changes = self.shape.changes_at(k);
        let shape = &self.shape;
        let step_range = |from: usize, states: &mut [ServerState]| -> Vec<Reading> {
            states
                .iter_mut()
                .enumerate()
                .map(|(offset, state)| {
                    let i = from + offset;
                    let fx = effects
                        .binary_search_by_key(&i, |(p, _)| *p)
                        .map_or(&none, |at| &effects[at].1);
                    // Joining the fleet, or a new machine, restarts the process as a deploy does.
                    let restart = deployed[members[i].role.index()]
                        || (!changes.is_none() && shape.joined(&changes, members[i].index));
                    plans[i].step_in_wave(state, k, restart, fx, waves[members[i].role.index()])
                })
                .collect()
        };
        // Servers are independent: a large fleet is stepped on every core, in fixed
        // slices, and the result is the same whatever their number.
        let threads = crate::cores();
        let readings: Vec<Reading> = if self.states.len() >= PARALLEL_STEP_MIN && threads > 1 {
            let chunk = self.states.len().div_ceil(threads);
            std::thread::scope(|scope| {
                let handles: Vec<_> = self
                    .states
                    .chunks_mut(chunk)
                    .enumerate()
                    .map(|(c, states)| scope.spawn(move || step_range(c * chunk, states)))
                    .collect();
                handles
                    .into_iter()
                    .flat_map(|h| h.join().expect("stepping a server does not panic"))
                    .collect()
            })
        } else {
            step_range(0, &mut self.states)
        };

        let snap = &mut self.current;
        snap.clear();
        snap.grid = k;
        snap.time_ms = now;
        for (m, reading) in self.members.iter().zip(&readings) {
            snap.push(
                reading,
                self.deploys[m.role.index()].last as f64 * step_secs,
            );
        }
        snap.incidents = active_incidents(&self.schedule, &random, now);
        if !changes.is_none() {
            let count = self.shape.count_at(k);
            let roster = Arc::make_mut(&mut self.roster);
            for (i, m) in self.members.iter().enumerate() {
                roster.present[i] = m.index < count;
                if let Some(born) = self.shape.replaced(&changes, m.index) {
                    roster.born_ms[i] = born;
                }
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
