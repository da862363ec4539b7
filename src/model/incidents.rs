//! Incidents: what an instructor (or chance) does to the fleet so that an alert fires.
//!
//! An incident is an input of the model, like the seed: a kind, a target (servers), a
//! window in time and an intensity. While it is active it overrides the signals of the
//! servers it targets, pushing the signal of its alert past the threshold of the shipped
//! `alerts.yml` by an amount that grows with its intensity; it never changes the walks'
//! state, so once it is over the server behaves as if nothing had happened (except after an
//! outage, which restarts the process, as a real one does).
//!
//! | kind | override while active | alert |
//! |---|---|---|
//! | `cpu_spike` | CPU at least 85 + 15 x intensity (latency and 5xx follow) | CPU > 80 |
//! | `memory_leak` | memory climbs linearly to 92 + 8 x intensity over its `ramp` (2m unless set), then holds | memory > 90 |
//! | `disk_fill` | disk climbs linearly to 92 + 8 x intensity over its `ramp` (2m unless set), then holds | disk > 90 (and, while it climbs, `predict_linear`) |
//! | `latency_spike` | p99 latency at least 2.5 + 5 x intensity seconds | p99 > 2 s |
//! | `error_burst` | 5xx share at least 8 + 40 x intensity percent | 5xx > 5% |
//! | `outage` | the server is down; it restarts when the incident ends | down |
//!
//! Users write incidents as [`IncidentSpec`]s (`[[incident]]` tables in the config file, JSON
//! in an admin API), resolved to [`Incident`]s against the start of the run. A [`Schedule`]
//! holds the users' incidents (and the random ones they ended early); [`RandomIncidents`]
//! draws more at `incidents.random_per_day` (6 by default, 0 for a calm fleet), from
//! counter-based randomness (the same seed gives the same incidents whatever range of time
//! is asked), every kind in each round of six so that none is left to chance.
//!
//! What an active incident does to a server's signals is in `effects.rs`.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::identity::{Member, name_width, position_of, server_name};
use super::noise::{Key, Stream};
use super::params::{FleetParams, Role};
use crate::units::{
    INSTANT_RANGE, InstantOrDuration, LATEST_MS, check_instant, format_instant, parse_duration,
    parse_instant_or_duration,
};

/// Ids of random incidents start here, far above any id a user is given.
pub const RANDOM_ID_BASE: u64 = 1 << 40;

/// How long memory and disk take to climb to their incident level unless a `ramp` is given.
pub const DEFAULT_RAMP_MS: i64 = 2 * 60_000;

/// The longest incident a user may ask for: longer is a typo, not a course.
pub const MAX_DURATION_MS: i64 = 366 * 86_400_000;

/// How far ahead of now the admin API lets an incident start.
pub const MAX_START_AHEAD_MS: i64 = 366 * 86_400_000;

/// The most incidents that have not ended (scheduled or active) a live fleet holds: the
/// config file's and the admin API's together; random ones are not counted, as they come
/// at their own bounded rate. A course starts a handful; a thousand is far past any lesson
/// and still cheap: each tick checks every open incident against every server, so the
/// cost of a tick grows with this, and the admin API lists them all in one answer.
pub const MAX_OPEN_INCIDENTS: usize = 1_000;

/// How long a random incident holds its alert's signal past the threshold: at least twice
/// the longest `for:` of `alerts.yml` (5m), so that every one fires.
const RANDOM_HOLD_MIN_MS: i64 = 10 * 60_000;
const RANDOM_HOLD_MAX_MS: i64 = 30 * 60_000;

/// How long a random memory leak or disk fill climbs before it holds: slow enough that a
/// `predict_linear` over 30 minutes sees it coming well before the threshold.
const RANDOM_RAMP_MIN_MS: i64 = 60 * 60_000;
const RANDOM_RAMP_MAX_MS: i64 = 90 * 60_000;

/// The longest random incident, ramp and hold: how far back a range looks for one.
const RANDOM_MAX_MS: i64 = RANDOM_RAMP_MAX_MS + RANDOM_HOLD_MAX_MS;

/// What an incident does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IncidentKind {
    CpuSpike,
    MemoryLeak,
    DiskFill,
    LatencySpike,
    ErrorBurst,
    Outage,
}

impl IncidentKind {
    pub const ALL: [IncidentKind; 6] = [
        IncidentKind::CpuSpike,
        IncidentKind::MemoryLeak,
        IncidentKind::DiskFill,
        IncidentKind::LatencySpike,
        IncidentKind::ErrorBurst,
        IncidentKind::Outage,
    ];

    pub fn name(self) -> &'static str {
        match self {
            IncidentKind::CpuSpike => "cpu_spike",
            IncidentKind::MemoryLeak => "memory_leak",
            IncidentKind::DiskFill => "disk_fill",
            IncidentKind::LatencySpike => "latency_spike",
            IncidentKind::ErrorBurst => "error_burst",
            IncidentKind::Outage => "outage",
        }
    }

    /// The alert of the shipped `alerts.yml` this kind is made to fire: what the answer key
    /// and the scoreboard expect to see.
    pub fn alert(self) -> &'static str {
        match self {
            IncidentKind::CpuSpike => "HighCpuUsage",
            IncidentKind::MemoryLeak => "LowMemoryAvailable",
            IncidentKind::DiskFill => "DiskAlmostFull",
            IncidentKind::LatencySpike => "HighLatencyP99",
            IncidentKind::ErrorBurst => "HighErrorRate",
            IncidentKind::Outage => "ServerDown",
        }
    }
}

impl fmt::Display for IncidentKind {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(self.name())
    }
}

impl FromStr for IncidentKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        IncidentKind::ALL
            .into_iter()
            .find(|k| k.name() == s)
            .ok_or_else(|| {
                let names: Vec<&str> = IncidentKind::ALL.iter().map(|k| k.name()).collect();
                format!("unknown kind `{s}`; expected one of {}", names.join(", "))
            })
    }
}

/// Which servers an incident hits.
#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    /// One server, by name: `server=srv-03`.
    Server(String),
    /// Every server of a role: `role=db`.
    Role(Role),
    /// Every server of a datacenter: `dc=dc2`.
    Dc(String),
    /// A pseudo-random share of the fleet, 0 (excluded) to 1: `share=0.1`. Exactly
    /// `max(1, round(share x N))` servers of the whole fleet of N: those whose draws from
    /// (seed, incident id, index) are the smallest, so always the same servers for the same
    /// seed and incident, in every shard.
    Share(f64),
}

const TARGET_FORMS: &str = "server=srv-03, role=db, dc=dc2 or share=0.1";

impl FromStr for Target {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let Some((selector, value)) = text.split_once('=') else {
            return Err(format!(
                "`{text}` is not a target; write it like {TARGET_FORMS}"
            ));
        };
        let value = value.trim();
        let selector = selector.trim();
        if value.is_empty() {
            return Err(format!(
                "`{text}` names no {selector}; write it like {TARGET_FORMS}"
            ));
        }
        match selector {
            "server" => Ok(Target::Server(value.to_string())),
            "dc" => Ok(Target::Dc(value.to_string())),
            "role" => Role::from_name(value).map(Target::Role).ok_or_else(|| {
                let names: Vec<&str> = Role::ALL.iter().map(|r| r.name()).collect();
                format!(
                    "unknown role `{value}`; expected one of {}",
                    names.join(", ")
                )
            }),
            "share" => match value.parse::<f64>() {
                Ok(share) if share.is_finite() && share > 0.0 && share <= 1.0 => {
                    Ok(Target::Share(share))
                }
                _ => Err(format!(
                    "share `{value}` must be a number above 0 and at most 1 (0.1 is a tenth of the fleet)"
                )),
            },
            _ => Err(format!(
                "unknown selector `{selector}` in `{text}`; expected server, role, dc or share, like {TARGET_FORMS}"
            )),
        }
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Target::Server(name) => write!(f, "server={name}"),
            Target::Role(role) => write!(f, "role={}", role.name()),
            Target::Dc(dc) => write!(f, "dc={dc}"),
            Target::Share(share) => write!(f, "share={share}"),
        }
    }
}

impl Serialize for Target {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Target {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// An incident, resolved: what, on whom, when (unix milliseconds, `[start_ms, end_ms)`),
/// how hard (0 to 1).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    pub id: u64,
    pub kind: IncidentKind,
    pub target: Target,
    pub start_ms: i64,
    pub end_ms: i64,
    pub intensity: f64,
    /// How long memory and disk take to climb to their level (other kinds act at once).
    #[serde(default = "default_ramp_ms")]
    pub ramp_ms: i64,
}

fn default_ramp_ms() -> i64 {
    DEFAULT_RAMP_MS
}

/// A draw from (seed, incident id, index): a share target takes the smallest.
fn share_draw(seed: u64, id: u64, index: u32) -> f64 {
    Key::from_seed(seed)
        .stream(Stream::IncidentShares)
        .with(id)
        .draws(index as i64)
        .uniform()
}

/// The largest (draw, index) a share target of `share` takes in a fleet of `size`: a
/// server is in it when its own pair is at most this one.
fn share_cut(seed: u64, id: u64, share: f64, size: u32) -> (f64, u32) {
    let wanted = ((share * size as f64).round() as usize).clamp(1, size.max(1) as usize);
    let mut ranked: Vec<(f64, u32)> = (0..size).map(|i| (share_draw(seed, id, i), i)).collect();
    if ranked.is_empty() {
        return (-1.0, 0);
    }
    let (_, cut, _) = ranked.select_nth_unstable_by(wanted - 1, |a, b| {
        a.partial_cmp(b).expect("draws are finite")
    });
    *cut
}

fn within_cut(seed: u64, id: u64, index: u32, cut: (f64, u32)) -> bool {
    (share_draw(seed, id, index), index) <= cut
}

impl Incident {
    /// Whether the incident is active at `time_ms`.
    pub fn active_at(&self, time_ms: i64) -> bool {
        self.start_ms <= time_ms && time_ms < self.end_ms
    }

    /// Whether the incident hits `member` (of a fleet with this `seed`).
    pub fn matches(&self, member: &Member, seed: u64) -> bool {
        match &self.target {
            Target::Server(name) => member.name == *name,
            Target::Role(role) => member.role == *role,
            Target::Dc(dc) => member.dc == *dc,
            // Ranks the whole fleet: to ask of many servers, use `targets`.
            Target::Share(share) => {
                let cut = share_cut(seed, self.id, *share, member.fleet_size);
                within_cut(seed, self.id, member.index, cut)
            }
        }
    }

    /// The positions in `members` of the servers the incident hits.
    pub fn targets(&self, members: &[Member], seed: u64) -> Vec<usize> {
        if let Target::Server(name) = &self.target {
            // Names are `srv-` and the index plus one: look there first.
            let guess = name
                .strip_prefix("srv-")
                .and_then(|n| n.parse::<u32>().ok())
                .and_then(|n| n.checked_sub(1))
                .and_then(|index| position_of(members, index))
                .filter(|&p| members[p].name == *name);
            if let Some(p) = guess {
                return vec![p];
            }
        }
        if let Target::Share(share) = self.target {
            let size = members.first().map_or(0, |m| m.fleet_size);
            let cut = share_cut(seed, self.id, share, size);
            return (0..members.len())
                .filter(|&p| within_cut(seed, self.id, members[p].index, cut))
                .collect();
        }
        (0..members.len())
            .filter(|&p| self.matches(&members[p], seed))
            .collect()
    }

    /// The names of the servers of `members` the incident hits.
    pub fn target_names(&self, members: &[Member], seed: u64) -> Vec<String> {
        self.targets(members, seed)
            .into_iter()
            .map(|p| members[p].name.clone())
            .collect()
    }

    /// Checks that the target hits at least one of `members`; a server named without its
    /// zero padding (`srv-3` for `srv-03`) is told so.
    pub fn check_target(&self, members: &[Member], seed: u64) -> Result<(), String> {
        if !self.targets(members, seed).is_empty() {
            return Ok(());
        }
        let hint = match (&self.target, members.first()) {
            (Target::Server(name), Some(first)) => padding_hint(name, first.fleet_size),
            _ => String::new(),
        };
        Err(format!("target `{}` matches no server{hint}", self.target))
    }

    pub fn duration_ms(&self) -> i64 {
        self.end_ms.saturating_sub(self.start_ms)
    }

    /// The grid points the incident covers, `[first, end)`, on a grid of `step_ms`: grid
    /// point `k` (time `k * step_ms`) is covered when the incident is active at that time.
    pub fn grid_span(&self, step_ms: i64) -> (i64, i64) {
        let ceil = |ms: i64| -ms.saturating_neg().div_euclid(step_ms);
        (ceil(self.start_ms), ceil(self.end_ms))
    }
}

/// What to tell of a server name that is in none of the fleet's forms: `srv-3` in a fleet
/// of ten is `srv-03`.
fn padding_hint(name: &str, fleet_size: u32) -> String {
    let width = name_width(fleet_size);
    let first = server_name(0, width);
    let last = server_name(fleet_size.saturating_sub(1), width);
    let number = name
        .strip_prefix("srv-")
        .and_then(|n| n.parse::<u32>().ok());
    match number {
        Some(n) if (1..=fleet_size).contains(&n) => format!(
            "; names are zero-padded to {width} digits: `{}` (the fleet is {first} to {last})",
            server_name(n - 1, width)
        ),
        _ => format!("; the fleet is {first} to {last}"),
    }
}

/// A duration as the API echoes it back: `2h30m`, `90s`, `1d2h`.
pub fn format_duration_ms(ms: i64) -> String {
    if ms <= 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    let mut rest = ms;
    for (unit, size) in [
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
        ("ms", 1),
    ] {
        if rest >= size {
            out.push_str(&format!("{}{unit}", rest / size));
            rest %= size;
        }
    }
    out
}

/// An incident as a user writes it (a `[[incident]]` table of the config file, or JSON).
///
/// ```toml
/// [[incident]]
/// kind = "cpu_spike"          # cpu_spike, memory_leak, disk_fill, latency_spike, error_burst, outage
/// target = "server=srv-03"    # or role=db, dc=dc2, share=0.1
/// start = "2h"                # after the start of the run, or 2026-11-24T12:00:00Z; default now
/// duration = "10m"
/// intensity = 0.5             # 0 to 1, default 1
/// ramp = "1h"                 # memory_leak, disk_fill: how long the climb takes, default 2m
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncidentSpec {
    pub kind: String,
    pub target: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<String>,
    pub duration: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub intensity: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ramp: Option<String>,
}

impl IncidentSpec {
    /// The incident this spec describes. `start` is an RFC 3339 time, or a duration after
    /// `run_start_ms`; without it the incident starts at `now_ms`. Errors name the field:
    /// `target: unknown role ...`.
    pub fn resolve(&self, run_start_ms: i64, now_ms: i64, id: u64) -> Result<Incident, String> {
        let kind: IncidentKind = self.kind.parse().map_err(|e| format!("kind: {e}"))?;
        let target: Target = self.target.parse().map_err(|e| format!("target: {e}"))?;
        let start_ms = match &self.start {
            None => now_ms,
            Some(text) => resolve_start(text, run_start_ms).map_err(|e| format!("start: {e}"))?,
        };
        let duration_ms = self.duration_ms()?;
        let end_ms = start_ms
            .checked_add(duration_ms)
            .filter(|&end| end <= LATEST_MS)
            .ok_or_else(|| {
                format!(
                    "duration: `{}` from {} ends after 9999-12-31T23:59:59Z; an incident ends within {INSTANT_RANGE}",
                    self.duration.trim(),
                    format_instant(start_ms)
                )
            })?;
        let intensity = self.intensity.unwrap_or(1.0);
        if !(intensity.is_finite() && (0.0..=1.0).contains(&intensity)) {
            return Err(format!("intensity: must be 0 to 1, not {intensity}"));
        }
        let ramp_ms = match &self.ramp {
            None => DEFAULT_RAMP_MS,
            Some(text) => {
                let ramp = parse_duration(text).map_err(|e| format!("ramp: {e}"))?;
                let ramp_ms = crate::units::duration_ms(ramp);
                if ramp_ms > duration_ms {
                    return Err(format!(
                        "ramp: `{}` is longer than the incident ({}); it would end before its level",
                        text.trim(),
                        format_duration_ms(duration_ms)
                    ));
                }
                ramp_ms
            }
        };
        Ok(Incident {
            id,
            kind,
            target,
            start_ms,
            end_ms,
            intensity,
            ramp_ms,
        })
    }

    fn duration_ms(&self) -> Result<i64, String> {
        let text = self.duration.trim();
        let duration = parse_duration(text).map_err(|e| format!("duration: {e}"))?;
        let duration_ms = crate::units::duration_ms(duration);
        if duration_ms == 0 {
            return Err(format!(
                "duration: `{text}` is zero; an incident lasts more than that"
            ));
        }
        if duration_ms > MAX_DURATION_MS {
            return Err(format!(
                "duration: `{text}` is longer than a year (366d, the longest an incident lasts); write it like 10m, 2h or 3d"
            ));
        }
        Ok(duration_ms)
    }

    /// [`resolve`](Self::resolve) for an incident asked of a running fleet: it must not be
    /// over already, nor start more than a year ahead.
    pub fn resolve_live(
        &self,
        run_start_ms: i64,
        now_ms: i64,
        id: u64,
    ) -> Result<Incident, String> {
        let incident = self.resolve(run_start_ms, now_ms, id)?;
        let start = self.start.as_deref().unwrap_or("now").trim();
        if incident.end_ms <= now_ms {
            return Err(format!(
                "start: `{start}` with a duration of {} ended at {}, before now ({}); start it later",
                format_duration_ms(incident.duration_ms()),
                format_instant(incident.end_ms),
                format_instant(now_ms)
            ));
        }
        if incident.start_ms > now_ms.saturating_add(MAX_START_AHEAD_MS) {
            return Err(format!(
                "start: `{start}` is more than a year ahead ({})",
                format_instant(incident.start_ms)
            ));
        }
        Ok(incident)
    }
}

/// An incident's `start`: an instant, or a duration after the start of the run; either
/// within [`INSTANT_RANGE`].
fn resolve_start(text: &str, run_start_ms: i64) -> Result<i64, String> {
    match parse_instant_or_duration(text)? {
        InstantOrDuration::Instant(ms) => Ok(ms),
        InstantOrDuration::After(ms) => run_start_ms
            .checked_add(ms)
            .ok_or_else(|| "after 9999-12-31T23:59:59Z".to_string())
            .and_then(check_instant)
            .map_err(|range| {
                format!(
                    "`{}` after the start of the run ({}) is {range}",
                    text.trim(),
                    format_instant(run_start_ms)
                )
            }),
    }
}

/// The users' incidents, and the random incidents they ended early. Cloning copies a short
/// list.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Schedule {
    pub incidents: Vec<Incident>,
    /// Random incidents ended before their time, by id: when (see [`RandomIncidents`]).
    pub ended_random: BTreeMap<u64, i64>,
}

impl Schedule {
    pub fn new(incidents: Vec<Incident>) -> Schedule {
        Schedule {
            incidents,
            ended_random: BTreeMap::new(),
        }
    }

    /// Resolves the specs of a config file, numbering them from 1. Errors say which:
    /// `incident 2: target: ...`.
    pub fn from_specs(
        specs: &[IncidentSpec],
        run_start_ms: i64,
        now_ms: i64,
    ) -> Result<Schedule, String> {
        if specs.len() > MAX_OPEN_INCIDENTS {
            return Err(format!(
                "{} incidents; a fleet holds at most {MAX_OPEN_INCIDENTS} that have not ended, the config file's and the admin API's together",
                specs.len()
            ));
        }
        let incidents = specs
            .iter()
            .enumerate()
            .map(|(i, spec)| {
                spec.resolve(run_start_ms, now_ms, i as u64 + 1)
                    .map_err(|e| format!("incident {}: {e}", i + 1))
            })
            .collect::<Result<_, _>>()?;
        Ok(Schedule::new(incidents))
    }

    /// The random incidents of `params` overlapping `[from_ms, to_ms)` (see
    /// [`RandomIncidents`]), as a schedule: to list them, or to merge them into another.
    pub fn random(
        params: &FleetParams,
        seed: u64,
        members: &[Member],
        from_ms: i64,
        to_ms: i64,
    ) -> Schedule {
        Schedule::new(RandomIncidents::new(params, seed, members).between(members, from_ms, to_ms))
    }

    pub fn is_empty(&self) -> bool {
        self.incidents.is_empty()
    }

    pub fn len(&self) -> usize {
        self.incidents.len()
    }

    /// The incidents active at `time_ms`.
    pub fn active_at(&self, time_ms: i64) -> Vec<&Incident> {
        self.incidents
            .iter()
            .filter(|i| i.active_at(time_ms))
            .collect()
    }

    pub fn get(&self, id: u64) -> Option<&Incident> {
        self.incidents.iter().find(|i| i.id == id)
    }

    /// An id no user incident has, below the random incidents' ids.
    pub fn next_id(&self) -> u64 {
        self.incidents
            .iter()
            .map(|i| i.id)
            .filter(|&id| id < RANDOM_ID_BASE)
            .max()
            .map_or(1, |id| id + 1)
    }

    /// Adds an incident; its id must be new.
    pub fn add(&mut self, incident: Incident) -> Result<(), String> {
        if self.get(incident.id).is_some() {
            return Err(format!(
                "an incident with id {} already exists",
                incident.id
            ));
        }
        self.incidents.push(incident);
        Ok(())
    }

    /// How many incidents have not ended by `time_ms` (scheduled or active).
    pub fn open_at(&self, time_ms: i64) -> usize {
        self.incidents.iter().filter(|i| i.end_ms > time_ms).count()
    }

    /// Adds an incident asked of a running fleet at `now_ms`, unless
    /// [`MAX_OPEN_INCIDENTS`] have not ended then.
    pub fn add_open(&mut self, incident: Incident, now_ms: i64) -> Result<(), Refused> {
        let open = self.open_at(now_ms);
        if open >= MAX_OPEN_INCIDENTS {
            return Err(Refused::Full { open });
        }
        self.add(incident).map_err(Refused::Invalid)
    }

    /// Resolves `spec` with the next id and adds it; returns the incident added.
    pub fn add_spec(
        &mut self,
        spec: &IncidentSpec,
        run_start_ms: i64,
        now_ms: i64,
    ) -> Result<&Incident, String> {
        let incident = spec.resolve(run_start_ms, now_ms, self.next_id())?;
        self.incidents.push(incident);
        Ok(self.incidents.last().expect("just pushed"))
    }

    /// Removes the incident with this id, if there is one.
    pub fn remove(&mut self, id: u64) -> Option<Incident> {
        let at = self.incidents.iter().position(|i| i.id == id)?;
        Some(self.incidents.remove(at))
    }

    /// Ends `incident` (one of this schedule's, or a random one) at `at_ms`: what it did
    /// before stays done, so that a fleet started afresh later replays the same past. One
    /// that has not started by then is as if it had never been. Returns it as ended, or
    /// `None` when it is over by `at_ms` already (or unknown).
    pub fn end(&mut self, incident: &Incident, at_ms: i64) -> Option<Incident> {
        if incident.end_ms <= at_ms {
            return None;
        }
        let ended = Incident {
            end_ms: at_ms.max(incident.start_ms),
            ..incident.clone()
        };
        if incident.id >= RANDOM_ID_BASE {
            self.ended_random.insert(incident.id, ended.end_ms);
        } else {
            let at = self.incidents.iter().position(|i| i.id == incident.id)?;
            if ended.end_ms <= ended.start_ms {
                self.incidents.remove(at);
            } else {
                self.incidents[at].end_ms = ended.end_ms;
            }
        }
        Some(ended)
    }

    /// Checks that every target hits at least one of `members`:
    /// `incident 2: target `server=srv-99` matches no server`.
    pub fn check_targets(&self, members: &[Member], seed: u64) -> Result<(), String> {
        for (n, incident) in self.incidents.iter().enumerate() {
            incident
                .check_target(members, seed)
                .map_err(|e| format!("incident {}: {e}", n + 1))?;
        }
        Ok(())
    }
}

/// Why an incident asked of a running fleet was not added.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// Something in it is wrong; the message names the field.
    Invalid(String),
    /// [`MAX_OPEN_INCIDENTS`] have not ended: `open` of them.
    Full { open: usize },
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        match self {
            Refused::Invalid(why) => f.write_str(why),
            Refused::Full { open } => write!(
                f,
                "{open} incidents have not ended, the most a fleet holds at once \
                 ({MAX_OPEN_INCIDENTS}, the config file's and the admin API's together): end one \
                 with DELETE /api/v1/incidents/{{id}} (GET /api/v1/incidents lists them), or wait \
                 for one to end"
            ),
        }
    }
}

/// Random incidents across a fleet, `random_per_day` a day, in rounds of six: each round
/// has one incident of every kind, in an order drawn from (seed, round), so that any stretch
/// of six in a row shows the whole table. Each hits one random server at an intensity of 0.5
/// to 1 and holds its alert's signal past the threshold for 10 to 30 minutes; memory leaks
/// and disk fills first climb for 60 to 90 minutes (a trend `predict_linear` sees).
///
/// Time is cut into slots of `1 / random_per_day` of a day (whole seconds), one incident
/// each, drawn from (seed, slot): the incidents are the same whatever range of time is
/// asked. The server is drawn among indices 0 to the largest index of the whole fleet, so
/// it depends on the fleet size (every shard draws the same); kinds and times do not. Ids
/// are [`RANDOM_ID_BASE`] plus the slot. Those a user ended early (`Schedule::end`) end
/// then.
#[derive(Debug, Clone)]
pub struct RandomIncidents {
    key: Key,
    slot_ms: i64,
    size: u32,
    /// Random incidents ended early, by id: when.
    ended: BTreeMap<u64, i64>,
}

impl RandomIncidents {
    pub fn new(params: &FleetParams, seed: u64, members: &[Member]) -> RandomIncidents {
        let per_day = params.incidents.random_per_day;
        // The whole fleet's size, not the slice's: a shard draws the same targets.
        let size = members.first().map_or(0, |m| m.fleet_size);
        let slot_ms = if per_day.is_finite() && per_day > 0.0 && size > 0 {
            let mean_ms = 86_400_000.0 / per_day;
            ((mean_ms / 1000.0).round() as i64).max(1) * 1000
        } else {
            0
        };
        RandomIncidents {
            key: Key::from_seed(seed).stream(Stream::RandomIncidents),
            slot_ms,
            size,
            ended: BTreeMap::new(),
        }
    }

    /// The same incidents, those that `schedule` ended early ended then.
    pub fn following(self, schedule: &Schedule) -> RandomIncidents {
        RandomIncidents {
            ended: schedule.ended_random.clone(),
            ..self
        }
    }

    pub fn is_none(&self) -> bool {
        self.slot_ms == 0
    }

    /// The kind of slot `j`: its place in its round's order of the six kinds.
    fn kind_of_slot(&self, j: i64) -> IncidentKind {
        let round = j.div_euclid(6);
        let mut order = IncidentKind::ALL;
        let mut d = self.key.with(1).draws(round);
        for i in (1..order.len()).rev() {
            let pick = ((d.uniform() * (i + 1) as f64) as usize).min(i);
            order.swap(i, pick);
        }
        order[j.rem_euclid(6) as usize]
    }

    /// The incident of slot `j`, as drawn (before any early end), named after the server in
    /// `members` (or, when the server drawn is not among them, as it would be named in the
    /// whole fleet).
    fn in_slot(&self, j: i64, members: &[Member]) -> Incident {
        let mut d = self.key.draws(j);
        let seconds = |min_ms: i64, max_ms: i64, u: f64| {
            min_ms + ((u * ((max_ms - min_ms) / 1000) as f64) as i64) * 1000
        };
        let kind = self.kind_of_slot(j);
        let hold_ms = seconds(RANDOM_HOLD_MIN_MS, RANDOM_HOLD_MAX_MS, d.uniform());
        let ramp_ms = match kind {
            IncidentKind::MemoryLeak | IncidentKind::DiskFill => {
                seconds(RANDOM_RAMP_MIN_MS, RANDOM_RAMP_MAX_MS, d.uniform())
            }
            _ => 0,
        };
        let duration_ms = ramp_ms + hold_ms;
        // Within the slot when it is long enough: one incident at a time.
        let room_s = ((self.slot_ms - duration_ms) / 1000).max(1);
        let offset_s = ((d.uniform() * room_s as f64) as i64).min(room_s - 1);
        let start_ms = j * self.slot_ms + offset_s * 1000;
        let index = ((d.uniform() * self.size as f64) as u32).min(self.size - 1);
        let intensity = 0.5 + 0.5 * d.uniform();
        let name = match position_of(members, index) {
            Some(p) => members[p].name.clone(),
            None => server_name(index, name_width(self.size)),
        };
        Incident {
            id: RANDOM_ID_BASE.wrapping_add(j as u64),
            kind,
            target: Target::Server(name),
            start_ms,
            end_ms: start_ms + duration_ms,
            intensity,
            ramp_ms: ramp_ms.max(DEFAULT_RAMP_MS.min(duration_ms)),
        }
    }

    /// The incidents overlapping `[from_ms, to_ms)`, oldest first.
    pub fn between(&self, members: &[Member], from_ms: i64, to_ms: i64) -> Vec<Incident> {
        if self.is_none() || to_ms <= from_ms {
            return Vec::new();
        }
        let first = (from_ms - RANDOM_MAX_MS).div_euclid(self.slot_ms);
        let last = (to_ms - 1).div_euclid(self.slot_ms);
        (first..=last)
            .map(|j| self.in_slot(j, members))
            .filter_map(|mut i| {
                if let Some(&end) = self.ended.get(&i.id) {
                    i.end_ms = i.end_ms.min(end);
                }
                (i.start_ms < to_ms && i.end_ms > from_ms && i.end_ms > i.start_ms).then_some(i)
            })
            .collect()
    }

    /// The incidents active at `time_ms`.
    pub fn active_at(&self, members: &[Member], time_ms: i64) -> Vec<Incident> {
        self.between(members, time_ms, time_ms + 1)
    }

    /// The random incident with this id (ended when a user ended it), if there is one.
    pub fn by_id(&self, id: u64, members: &[Member]) -> Option<Incident> {
        let slot = i64::try_from(id.checked_sub(RANDOM_ID_BASE)?).ok()?;
        if self.is_none() {
            return None;
        }
        let drawn = self.in_slot(slot, members);
        self.between(
            members,
            drawn.start_ms,
            drawn.end_ms.max(drawn.start_ms + 1),
        )
        .into_iter()
        .find(|i| i.id == id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::units::parse_instant;

    fn spec(kind: &str, target: &str, start: Option<&str>, duration: &str) -> IncidentSpec {
        IncidentSpec {
            kind: kind.into(),
            target: target.into(),
            start: start.map(Into::into),
            duration: duration.into(),
            intensity: None,
            ramp: None,
        }
    }

    #[test]
    fn kinds_parse_and_print_by_name() {
        for kind in IncidentKind::ALL {
            assert_eq!(kind.to_string().parse::<IncidentKind>(), Ok(kind));
            let json = format!("\"{kind}\"");
            let back: IncidentKind = toml::Value::String(kind.to_string()).try_into().unwrap();
            assert_eq!(back, kind, "{json}");
        }
        let e = "cpu".parse::<IncidentKind>().unwrap_err();
        assert!(e.contains("unknown kind `cpu`"), "{e}");
        for kind in IncidentKind::ALL {
            assert!(e.contains(kind.name()), "{e} does not list {kind}");
        }
    }

    #[test]
    fn targets_parse_and_print_back() {
        for text in ["server=srv-03", "role=db", "dc=dc2", "share=0.1", "share=1"] {
            let target: Target = text.parse().unwrap();
            assert_eq!(target.to_string(), text);
        }
        assert_eq!(" role = cache ".parse(), Ok(Target::Role(Role::Cache)));
        assert_eq!("share=0.25".parse(), Ok(Target::Share(0.25)));
        for (bad, says) in [
            ("srv-03", "not a target"),
            ("server=", "names no server"),
            ("role=dbx", "unknown role `dbx`"),
            ("host=a", "unknown selector `host`"),
            ("share=0", "above 0"),
            ("share=1.5", "at most 1"),
            ("share=-0.1", "above 0"),
            ("share=NaN", "above 0"),
            ("share=lots", "above 0"),
        ] {
            let e = bad.parse::<Target>().unwrap_err();
            assert!(e.contains(says), "{bad}: {e}");
        }
    }

    #[test]
    fn specs_resolve_against_the_run_and_errors_name_the_field() {
        let run = 1_700_000_000_000;
        let now = run + 5_000;
        let i = spec("outage", "server=srv-03", Some("2h"), "10m")
            .resolve(run, now, 7)
            .unwrap();
        assert_eq!(i.id, 7);
        assert_eq!(i.kind, IncidentKind::Outage);
        assert_eq!(i.target, Target::Server("srv-03".into()));
        assert_eq!(i.start_ms, run + 7_200_000);
        assert_eq!(i.end_ms, run + 7_800_000);
        assert_eq!(i.intensity, 1.0);

        let i = spec("disk_fill", "dc=dc1", None, "1h")
            .resolve(run, now, 1)
            .unwrap();
        assert_eq!(i.start_ms, now, "no start means now");
        let at = spec("cpu_spike", "role=web", Some("2026-11-24T12:00:00Z"), "90s")
            .resolve(run, now, 1)
            .unwrap();
        assert_eq!(at.start_ms, parse_instant("2026-11-24T12:00:00Z").unwrap());
        assert_eq!(at.end_ms - at.start_ms, 90_000);

        let mut half = spec("error_burst", "share=0.5", None, "5m");
        half.intensity = Some(0.5);
        assert_eq!(half.resolve(run, now, 1).unwrap().intensity, 0.5);

        let mut too_hot = half.clone();
        too_hot.intensity = Some(1.5);
        for (bad, field, says) in [
            (
                spec("meltdown", "role=db", None, "1m"),
                "kind: ",
                "unknown kind",
            ),
            (
                spec("outage", "role=dbx", None, "1m"),
                "target: ",
                "unknown role",
            ),
            (
                spec("outage", "srv-01", None, "1m"),
                "target: ",
                "not a target",
            ),
            (
                spec("outage", "role=db", Some("soon"), "1m"),
                "start: ",
                "neither",
            ),
            (
                spec("outage", "role=db", Some("-2h"), "1m"),
                "start: ",
                "negative",
            ),
            (
                spec("outage", "role=db", None, "-1m"),
                "duration: ",
                "negative",
            ),
            (spec("outage", "role=db", None, "0s"), "duration: ", "zero"),
            (
                spec("outage", "role=db", None, "ages"),
                "duration: ",
                "not a duration",
            ),
            (too_hot, "intensity: ", "0 to 1"),
        ] {
            let e = bad.resolve(run, now, 1).unwrap_err();
            assert!(e.starts_with(field) && e.contains(says), "{bad:?}: {e}");
        }
    }

    #[test]
    fn starts_and_ends_stay_within_1970_to_9999() {
        let run = 1_700_000_000_000;
        // Each was taken before, with a start or an end shown as 1970.
        for (start, duration, field, says) in [
            (Some("584942418y"), "5m", "start: ", "longer than"),
            (Some("8000y"), "5m", "start: ", "after 9999-12-31T23:59:59Z"),
            (Some("1969-12-31T23:00:00Z"), "5m", "start: ", "before 1970"),
            (
                Some("9999-12-31T23:00:00Z"),
                "2h",
                "duration: ",
                "ends after 9999-12-31T23:59:59Z",
            ),
            (None, "100000000d", "duration: ", "longer than"),
        ] {
            let e = spec("outage", "role=db", start, duration)
                .resolve(run, run, 1)
                .unwrap_err();
            assert!(
                e.starts_with(field) && e.contains(says),
                "{start:?} {duration}: {e}"
            );
            assert!(e.contains("9999"), "the range is named: {e}");
            assert_eq!(e.lines().count(), 1, "{e}");
        }
        let last = spec("outage", "role=db", Some("9999-12-31T22:00:00Z"), "1h")
            .resolve(run, run, 1)
            .unwrap();
        assert_eq!(format_instant(last.end_ms), "9999-12-31T23:00:00Z");
        let first = spec("outage", "role=db", Some("1970-01-01T00:00:00Z"), "1h")
            .resolve(run, run, 1)
            .unwrap();
        assert_eq!(first.start_ms, 0);
    }

    #[test]
    fn a_live_schedule_holds_at_most_the_cap_of_open_incidents() {
        let mut s = Schedule::default();
        let now = 1_000 * 15_000;
        // Ended ones do not count.
        s.add(incident(1, IncidentKind::Outage, "role=db", 0, 1))
            .unwrap();
        for id in 2..=MAX_OPEN_INCIDENTS as u64 + 1 {
            let i = incident(id, IncidentKind::CpuSpike, "role=db", 1_000 + id as i64, 5);
            assert_eq!(s.add_open(i, now), Ok(()), "{id}");
        }
        assert_eq!(s.open_at(now), MAX_OPEN_INCIDENTS);
        let one_more = incident(5_000, IncidentKind::CpuSpike, "role=db", 2_000, 5);
        let refused = s.add_open(one_more.clone(), now).unwrap_err();
        assert_eq!(
            refused,
            Refused::Full {
                open: MAX_OPEN_INCIDENTS
            }
        );
        let said = refused.to_string();
        assert!(said.contains("1000") && said.contains("DELETE"), "{said}");
        let first_open = s.incidents[1].clone();
        s.end(&first_open, now).unwrap();
        assert_eq!(s.add_open(one_more, now), Ok(()));
        let duplicate = s.incidents[2].clone();
        s.end(&s.incidents[3].clone(), now).unwrap();
        assert!(matches!(
            s.add_open(duplicate, now),
            Err(Refused::Invalid(_))
        ));

        let specs = vec![spec("outage", "role=db", None, "5m"); MAX_OPEN_INCIDENTS + 1];
        let e = Schedule::from_specs(&specs, 0, 0).unwrap_err();
        assert!(
            e.contains("1001 incidents") && e.contains("at most 1000"),
            "{e}"
        );
        assert!(Schedule::from_specs(&specs[1..], 0, 0).is_ok());
    }

    #[test]
    fn specs_deserialize_strictly() {
        let s: IncidentSpec =
            toml::from_str("kind = \"outage\"\ntarget = \"role=db\"\nduration = \"5m\"\n").unwrap();
        assert_eq!(s, spec("outage", "role=db", None, "5m"));
        let e = toml::from_str::<IncidentSpec>(
            "kind = \"outage\"\ntarget = \"role=db\"\nduration = \"5m\"\nlenght = 3\n",
        )
        .unwrap_err();
        assert!(e.to_string().contains("lenght"), "{e}");
        let e = toml::from_str::<IncidentSpec>("kind = \"outage\"\ntarget = \"role=db\"\n")
            .unwrap_err();
        assert!(e.to_string().contains("duration"), "{e}");
    }

    #[test]
    fn schedule_adds_removes_and_numbers() {
        let mut s = Schedule::from_specs(
            &[
                spec("outage", "role=db", None, "5m"),
                spec("cpu_spike", "dc=dc1", Some("1h"), "5m"),
            ],
            0,
            1_000,
        )
        .unwrap();
        assert_eq!(s.incidents.iter().map(|i| i.id).collect::<Vec<_>>(), [1, 2]);
        assert_eq!(s.next_id(), 3);
        let added = s
            .add_spec(&spec("disk_fill", "share=0.5", None, "1m"), 0, 2_000)
            .unwrap();
        assert_eq!(added.id, 3);
        assert_eq!(s.active_at(2_000).len(), 2);
        assert_eq!(s.active_at(3_600_000).len(), 1);
        assert!(s.add(s.incidents[0].clone()).is_err(), "duplicate id");
        assert_eq!(s.remove(1).map(|i| i.kind), Some(IncidentKind::Outage));
        assert_eq!(s.remove(1), None);
        assert_eq!(s.len(), 2);

        let e = Schedule::from_specs(
            &[
                spec("outage", "role=db", None, "5m"),
                spec("outage", "role=dbx", None, "5m"),
            ],
            0,
            0,
        )
        .unwrap_err();
        assert!(e.starts_with("incident 2: target: unknown role"), "{e}");
    }

    #[test]
    fn grid_spans_cover_the_grid_points_the_incident_is_active_at() {
        let i = Incident {
            id: 1,
            kind: IncidentKind::Outage,
            target: Target::Dc("dc1".into()),
            start_ms: 30_001,
            end_ms: 60_000,
            intensity: 1.0,
            ramp_ms: DEFAULT_RAMP_MS,
        };
        assert_eq!(i.grid_span(15_000), (3, 4));
        let neg = Incident {
            start_ms: -30_000,
            end_ms: -14_999,
            ..i.clone()
        };
        assert_eq!(neg.grid_span(15_000), (-2, 0));
        for step in [1_000, 7_000, 15_000] {
            let (a, b) = i.grid_span(step);
            for k in -5..20 {
                assert_eq!(i.active_at(k * step), (a..b).contains(&k), "{k} on {step}");
            }
        }
    }

    use crate::model::identity::members;

    /// An incident of `minutes` from grid point `start` (default resolution).
    fn incident(id: u64, kind: IncidentKind, target: &str, start: i64, minutes: i64) -> Incident {
        Incident {
            id,
            kind,
            target: target.parse().unwrap(),
            start_ms: start * 15_000,
            end_ms: (start + minutes * 4) * 15_000,
            intensity: 1.0,
            ramp_ms: DEFAULT_RAMP_MS,
        }
    }

    #[test]
    fn share_targets_pick_about_that_share_the_same_for_the_same_seed() {
        let params = FleetParams::default();
        let m = members(&params, 2_000, 0..2_000);
        let share = incident(5, IncidentKind::ErrorBurst, "share=0.1", 0, 10);
        let picked = share.targets(&m, 1);
        assert_eq!(picked.len(), 200, "share=0.1 of 2000 servers");
        assert_eq!(share.targets(&m, 1), picked, "same seed, same servers");
        assert_ne!(share.targets(&m, 2), picked, "another seed, other servers");
        let other_id = Incident {
            id: 6,
            ..share.clone()
        };
        assert_ne!(
            other_id.targets(&m, 1),
            picked,
            "another incident, other servers"
        );
        for (p, member) in m.iter().enumerate() {
            assert_eq!(share.matches(member, 1), picked.contains(&p));
        }
        // A server's draw does not depend on the fleet: a smaller fleet picks the same ones.
        let small: Vec<usize> = picked.iter().copied().filter(|&p| p < 500).collect();
        assert_eq!(share.targets(&m[..500], 1), small);
        let all = Incident {
            target: Target::Share(1.0),
            ..share
        };
        assert_eq!(all.targets(&m, 1).len(), 2_000);
    }

    #[test]
    fn targets_must_match_a_server() {
        let params = FleetParams::default();
        let m = members(&params, 10, 0..10);
        let on = |target: &str| incident(1, IncidentKind::Outage, target, 0, 5);
        for good in [
            "server=srv-03",
            "server=srv-10",
            "role=cache",
            "dc=dc3",
            "share=0.5",
        ] {
            assert_eq!(on(good).check_target(&m, 1), Ok(()), "{good}");
        }
        assert_eq!(on("server=srv-03").targets(&m, 1), [2]);
        assert_eq!(
            on("server=srv-99").check_target(&m, 1),
            Err(
                "target `server=srv-99` matches no server; the fleet is srv-01 to srv-10"
                    .to_string()
            )
        );
        for bad in ["server=srv-003", "server=web-1", "dc=dc4"] {
            let e = on(bad).check_target(&m, 1).unwrap_err();
            assert!(e.contains(bad) && e.contains("matches no server"), "{e}");
        }
        let e = on("server=srv-3").check_target(&m, 1).unwrap_err();
        assert!(e.contains("zero-padded") && e.contains("`srv-03`"), "{e}");
        let e = on("server=srv-11").check_target(&m, 1).unwrap_err();
        assert!(e.contains("srv-01 to srv-10"), "{e}");
        // A share always hits at least one server, and exactly its share rounded.
        for (share, wanted) in [(0.0001, 1), (0.2, 2), (0.25, 3), (0.5, 5), (1.0, 10)] {
            let hit = on(&format!("share={share}")).targets(&m, 1);
            assert_eq!(hit.len(), wanted, "share={share}");
        }
        let mut no_db = params.clone();
        no_db.roles.db.weight = 0.0;
        let e = on("role=db")
            .check_target(&members(&no_db, 10, 0..10), 1)
            .unwrap_err();
        assert!(e.contains("role=db"), "{e}");
        let schedule = Schedule::new(vec![on("role=db"), on("server=srv-11")]);
        assert_eq!(
            schedule.check_targets(&m, 1),
            Err(
                "incident 2: target `server=srv-11` matches no server; the fleet is srv-01 to srv-10"
                    .to_string()
            )
        );
    }

    /// How long `incident` holds its alert's signal past the threshold at the least: after
    /// the climb for memory and disk (it crosses 90 before the end of it), from the start
    /// for the others.
    fn past_threshold_ms(incident: &Incident) -> i64 {
        match incident.kind {
            IncidentKind::MemoryLeak | IncidentKind::DiskFill => {
                incident.duration_ms() - incident.ramp_ms
            }
            _ => incident.duration_ms(),
        }
    }

    /// The `for:` of each kind's alert in `alerts.yml`.
    fn alert_for_ms(kind: IncidentKind) -> i64 {
        match kind {
            IncidentKind::Outage => 60_000,
            _ => 5 * 60_000,
        }
    }

    #[test]
    fn a_default_week_has_every_kind_long_enough_for_its_alert_for_any_seed() {
        let params = FleetParams::default();
        let m = members(&params, 10, 0..10);
        // A week from a UTC midnight, and one from an odd instant.
        for from in [
            1_764_547_200_000,
            1_764_547_200_000 + 13 * 3_600_000 + 7_777,
        ] {
            let to = from + 7 * 86_400_000;
            for seed in 1..=20 {
                let week = RandomIncidents::new(&params, seed, &m).between(&m, from, to);
                for kind in IncidentKind::ALL {
                    let whole: Vec<&Incident> = week
                        .iter()
                        .filter(|i| i.kind == kind && i.start_ms >= from && i.end_ms <= to)
                        .collect();
                    assert!(!whole.is_empty(), "seed {seed}: no {kind} in the week");
                }
                for i in &week {
                    let held = past_threshold_ms(i);
                    assert!(
                        held >= 2 * alert_for_ms(i.kind),
                        "seed {seed}: {i:?} holds {held} ms"
                    );
                    assert_eq!(i.targets(&m, seed).len(), 1, "{i:?}");
                    if matches!(i.kind, IncidentKind::MemoryLeak | IncidentKind::DiskFill) {
                        assert!(i.ramp_ms >= 3_600_000, "a slow climb: {i:?}");
                    }
                }
            }
        }
    }

    #[test]
    fn every_six_random_incidents_in_a_row_are_the_six_kinds() {
        let mut params = FleetParams::default();
        for per_day in [6.0, 2.5, 48.0] {
            params.incidents.random_per_day = per_day;
            let m = members(&params, 40, 0..40);
            let all = RandomIncidents::new(&params, 3, &m).between(&m, 86_400_000, 40 * 86_400_000);
            let rounds: Vec<&[Incident]> = all
                .chunk_by(|a, b| {
                    let round = |i: &Incident| (i.id - RANDOM_ID_BASE) / 6;
                    round(a) == round(b)
                })
                .filter(|r| r.len() == 6)
                .collect();
            assert!(rounds.len() > 10, "{per_day} a day");
            for round in rounds {
                let mut kinds: Vec<IncidentKind> = round.iter().map(|i| i.kind).collect();
                kinds.sort();
                assert_eq!(kinds, IncidentKind::ALL, "{per_day} a day");
            }
        }
        params.incidents.random_per_day = 0.0;
        let m = members(&params, 10, 0..10);
        assert!(
            RandomIncidents::new(&params, 3, &m).is_none(),
            "0 is a calm fleet"
        );
    }

    #[test]
    fn random_incidents_are_the_same_in_every_shard_and_whatever_the_range() {
        let params = FleetParams::default();
        let whole = members(&params, 10, 0..10);
        let shard = members(&params, 10, 5..10);
        let (from, to) = (1_764_547_200_000, 1_764_547_200_000 + 3 * 86_400_000);
        let all = RandomIncidents::new(&params, 7, &whole).between(&whole, from, to);
        let shard_view = RandomIncidents::new(&params, 7, &shard).between(&shard, from, to);
        assert_eq!(
            all, shard_view,
            "the same incidents, named as in the whole fleet"
        );
        let later = RandomIncidents::new(&params, 7, &whole).between(&whole, from + 86_400_000, to);
        assert!(!later.is_empty());
        for i in &later {
            assert!(all.contains(i), "{i:?}");
        }
    }

    #[test]
    fn ending_an_incident_keeps_its_past_and_drops_its_future() {
        let params = FleetParams::default();
        let m = members(&params, 10, 0..10);
        let random = RandomIncidents::new(&params, 1, &m);
        let day = random.between(&m, 1_764_547_200_000, 1_764_633_600_000);
        let (running, later) = (&day[1], &day[2]);
        let mut schedule = Schedule::default();
        let mid = running.start_ms + 60_000;
        let ended = schedule.end(running, mid).unwrap();
        assert_eq!((ended.start_ms, ended.end_ms), (running.start_ms, mid));
        assert_eq!(
            schedule.end(later, later.start_ms - 1),
            Some(Incident {
                end_ms: later.start_ms,
                ..later.clone()
            })
        );
        let followed = random.clone().following(&schedule);
        let after = followed.between(&m, 1_764_547_200_000, 1_764_633_600_000);
        assert_eq!(after.len(), day.len() - 1, "the one not started is gone");
        assert!(after.contains(&ended));
        assert_eq!(followed.by_id(running.id, &m), Some(ended.clone()));
        assert_eq!(followed.by_id(later.id, &m), None);
        assert_eq!(schedule.end(&ended, mid), None, "over already");

        let mut users = Schedule::new(vec![incident(1, IncidentKind::Outage, "role=db", 100, 10)]);
        let mid = 100 * 15_000 + 60_000;
        assert_eq!(
            users.end(&users.incidents[0].clone(), mid).unwrap().end_ms,
            mid
        );
        assert_eq!(users.incidents[0].end_ms, mid);
        let not_yet = incident(2, IncidentKind::CpuSpike, "role=db", 1_000, 10);
        users.add(not_yet.clone()).unwrap();
        assert!(users.end(&not_yet, 0).is_some());
        assert!(users.get(2).is_none(), "never started: removed");
    }

    #[test]
    fn ramps_durations_and_live_starts_are_checked_and_echoed_readably() {
        let run = 1_700_000_000_000;
        let mut leak = spec("disk_fill", "role=db", None, "4h");
        leak.ramp = Some("3h".into());
        let i = leak.resolve(run, run, 1).unwrap();
        assert_eq!(i.ramp_ms, 3 * 3_600_000);
        assert_eq!(
            spec("disk_fill", "role=db", None, "4h")
                .resolve(run, run, 1)
                .unwrap()
                .ramp_ms,
            DEFAULT_RAMP_MS
        );
        leak.ramp = Some("5h".into());
        let e = leak.resolve(run, run, 1).unwrap_err();
        assert!(
            e.starts_with("ramp: ") && e.contains("longer than the incident"),
            "{e}"
        );
        leak.ramp = Some("slowly".into());
        assert!(leak.resolve(run, run, 1).unwrap_err().starts_with("ramp: "));

        let e = spec("outage", "role=db", None, "400d")
            .resolve(run, run, 1)
            .unwrap_err();
        assert!(
            e.starts_with("duration: ") && e.contains("longer than a year (366d"),
            "{e}"
        );
        let e = spec("outage", "role=db", Some("2020-01-01T00:00:00Z"), "10m")
            .resolve_live(run, run, 1)
            .unwrap_err();
        assert!(e.starts_with("start: ") && e.contains("before now"), "{e}");
        let e = spec("outage", "role=db", Some("2099-01-01T00:00:00Z"), "10m")
            .resolve_live(run, run, 1)
            .unwrap_err();
        assert!(
            e.starts_with("start: ") && e.contains("more than a year ahead"),
            "{e}"
        );
        assert!(
            spec("outage", "role=db", Some("2h"), "10m")
                .resolve_live(run, run, 1)
                .is_ok()
        );

        for (ms, text) in [
            (9_000_000, "2h30m"),
            (90_000, "1m30s"),
            (600_000, "10m"),
            (93_600_000, "1d2h"),
            (1_500, "1s500ms"),
        ] {
            assert_eq!(format_duration_ms(ms), text);
        }
    }
}
