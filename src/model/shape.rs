//! The fleet's shape over time, as load tests vary it: how many of its servers exist at each
//! grid point (avalanche's series modes), and which machine each server's slot holds (churn,
//! as autoscaling replaces machines).
//!
//! Both are pure functions of the seed, the server's index and the grid point, on intervals
//! aligned to the unix epoch: the exporter and `generate` agree on them, a warm start finds
//! them without replaying the past, and a shard sees what the whole fleet sees. A server that
//! joins, or whose machine is replaced, restarts at that grid point like any restart, so its
//! counters begin again from zero.

use std::time::Duration;

use super::events::{Poisson, RestartEvents};
use super::noise::{Key, Stream};

/// How the number of servers changes, after avalanche's `--series-operation-mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SeriesMode {
    /// Every server, always.
    #[default]
    #[serde(rename = "disabled")]
    Off,
    /// Up from the fewest to every server by a step each interval, then back down.
    #[serde(alias = "gradual")]
    GradualChange,
    /// Every server and half of them, in turn.
    DoubleHalve,
    /// The base (every server divided by the multiplier) and every server, in turn.
    Spike,
}

/// What the flags ask of the shape.
#[derive(Debug, Clone, PartialEq)]
pub struct ShapeSpec {
    pub mode: SeriesMode,
    /// How long each count lasts.
    pub change_interval: Duration,
    /// `GradualChange`: the fewest servers, and how many join or leave per interval.
    pub min_servers: Option<u32>,
    pub change_rate: Option<u32>,
    /// `Spike`: every server over the base.
    pub spike_multiplier: f64,
    /// The share of servers whose machine is replaced every `churn_interval` (0: none).
    pub churn: f64,
    pub churn_interval: Duration,
}

pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(600);
pub const DEFAULT_SPIKE_MULTIPLIER: f64 = 1.5;

/// The smallest share churned (above zero): a server's identity is looked for that many
/// intervals back, so the share bounds the work of a warm start.
pub const MIN_CHURN: f64 = 0.0001;

/// The longest series change or churn interval.
pub const MAX_INTERVAL: Duration = Duration::from_secs(366 * 86_400);

impl Default for ShapeSpec {
    fn default() -> Self {
        ShapeSpec {
            mode: SeriesMode::Off,
            change_interval: DEFAULT_INTERVAL,
            min_servers: None,
            change_rate: None,
            spike_multiplier: DEFAULT_SPIKE_MULTIPLIER,
            churn: 0.0,
            churn_interval: DEFAULT_INTERVAL,
        }
    }
}

impl ShapeSpec {
    /// What is wrong with the spec for a fleet of `servers` on a grid of `resolution`, as
    /// one line naming the flag.
    pub fn check(&self, servers: u32, resolution: Duration) -> Result<(), String> {
        self.check_values(|key| format!("--{}", key.replace('_', "-")))?;
        if self.mode != SeriesMode::Off && self.change_interval < resolution {
            return Err(format!(
                "--series-change-interval ({}) must be at least the model's resolution ({})",
                humantime::format_duration(self.change_interval),
                humantime::format_duration(resolution)
            ));
        }
        if self.mode == SeriesMode::GradualChange {
            let min = self.min_servers.unwrap_or_else(|| default_step(servers));
            if min >= servers {
                return Err(format!(
                    "--min-servers ({min}) must be below --servers ({servers}) in gradual-change mode"
                ));
            }
        }
        if self.churn > 0.0 && self.churn_interval < resolution {
            return Err(format!(
                "--churn-interval ({}) must be at least the model's resolution ({})",
                humantime::format_duration(self.churn_interval),
                humantime::format_duration(resolution)
            ));
        }
        Ok(())
    }

    /// What is wrong with the values on their own (whatever the fleet), naming each knob
    /// by `name(key)`: `--churn` on the command line, `load_test.churn` in the file.
    pub fn check_values(&self, name: impl Fn(&str) -> String) -> Result<(), String> {
        if self.change_rate == Some(0) {
            return Err(format!("{} must be at least 1", name("series_change_rate")));
        }
        if !(self.spike_multiplier.is_finite() && self.spike_multiplier >= 1.0) {
            return Err(format!(
                "{} must be 1 or more, not {}",
                name("spike_multiplier"),
                self.spike_multiplier
            ));
        }
        // Intervals are counted from the epoch in ms: a year keeps every count and churn
        // draw of a run in view, and the counts far from overflow.
        for (key, interval) in [
            ("series_change_interval", self.change_interval),
            ("churn_interval", self.churn_interval),
        ] {
            if interval > MAX_INTERVAL {
                return Err(format!(
                    "{} must be at most 366d, not {}",
                    name(key),
                    humantime::format_duration(interval)
                ));
            }
        }
        if !(self.churn == 0.0 || (MIN_CHURN..=1.0).contains(&self.churn)) {
            return Err(format!(
                "{} must be 0, or {MIN_CHURN} to 1 (a share of the servers), not {}",
                name("churn"),
                self.churn
            ));
        }
        Ok(())
    }
}

/// A tenth of the fleet, at least one: gradual-change's default floor and step, in
/// avalanche's proportions (100 to 1000 by 100).
fn default_step(servers: u32) -> u32 {
    (servers / 10).max(1)
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Mode {
    Off,
    Gradual {
        min: u32,
        rate: u32,
        steps: i64,
    },
    /// The count in odd intervals (even ones have every server).
    Alternate {
        odd: u32,
    },
    /// The count in even intervals (odd ones have every server).
    Spike {
        base: u32,
    },
}

#[derive(Debug, Clone, Copy, PartialEq)]
struct Churn {
    key: Key,
    share: f64,
    interval_ms: i64,
    /// How many intervals back a server's last replacement is looked for.
    lookback: i64,
}

/// `born_ms` of a server whose machine was never replaced.
pub const ORIGINAL: i64 = i64::MIN;

/// The shape of a fleet of `size` servers on a grid of `step_ms`.
#[derive(Debug, Clone, PartialEq)]
pub struct Shape {
    size: u32,
    step_ms: i64,
    mode: Mode,
    change_ms: i64,
    churn: Option<Churn>,
}

/// What happens to the fleet's membership at one grid point.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Changes {
    /// A new count starts here: these indices join (those above the new count leave).
    pub joining: std::ops::Range<u32>,
    pub count_changed: bool,
    /// A churn interval starts here: its number.
    pub churn_interval: Option<i64>,
}

impl Changes {
    pub fn is_none(&self) -> bool {
        !self.count_changed && self.churn_interval.is_none()
    }
}

fn ceil_div(a: i64, b: i64) -> i64 {
    -((-a).div_euclid(b))
}

impl Shape {
    /// Every server, always, never replaced: the fleet without load-test knobs.
    pub fn off(size: u32, step_ms: i64) -> Shape {
        Shape::new(&ShapeSpec::default(), size, 0, step_ms)
    }

    pub fn new(spec: &ShapeSpec, size: u32, seed: u64, step_ms: i64) -> Shape {
        let step_ms = step_ms.max(1);
        let mode = match spec.mode {
            SeriesMode::Off => Mode::Off,
            SeriesMode::GradualChange => {
                let min = spec
                    .min_servers
                    .unwrap_or_else(|| default_step(size))
                    .min(size);
                let rate = spec
                    .change_rate
                    .unwrap_or_else(|| default_step(size))
                    .max(1);
                let steps = ((size - min).div_ceil(rate) as i64).max(1);
                Mode::Gradual { min, rate, steps }
            }
            SeriesMode::DoubleHalve => Mode::Alternate {
                odd: (size / 2).max(1).min(size),
            },
            SeriesMode::Spike => Mode::Spike {
                // At least one server, but never more than the fleet (which may be empty).
                base: ((size as f64 / spec.spike_multiplier.max(1.0)).round() as u32)
                    .max(1)
                    .min(size),
            },
        };
        let interval_ms = |d: Duration| (d.as_millis() as i64).max(step_ms);
        let churn = (spec.churn > 0.0).then(|| Churn {
            key: Key::from_seed(seed).stream(Stream::Churn),
            share: spec.churn.min(1.0),
            interval_ms: interval_ms(spec.churn_interval),
            lookback: (64.0 / spec.churn.max(MIN_CHURN)).ceil() as i64,
        });
        Shape {
            size,
            step_ms,
            mode,
            change_ms: interval_ms(spec.change_interval),
            churn,
        }
    }

    pub fn is_off(&self) -> bool {
        self.mode == Mode::Off && self.churn.is_none()
    }

    /// The interval of `len_ms` that grid point `grid` lies in, counted from the epoch.
    fn interval(&self, grid: i64, len_ms: i64) -> i64 {
        (grid * self.step_ms).div_euclid(len_ms)
    }

    /// The first grid point of interval `j` (intervals are at least a grid step long, so
    /// each has one).
    fn first_grid(&self, j: i64, len_ms: i64) -> i64 {
        ceil_div(j * len_ms, self.step_ms)
    }

    /// The interval of `len_ms` that starts at grid point `grid`, if one does.
    fn starting(&self, grid: i64, len_ms: i64) -> Option<i64> {
        let j = self.interval(grid, len_ms);
        (self.interval(grid - 1, len_ms) != j).then_some(j)
    }

    /// How many servers exist during the `j`-th change interval.
    pub fn count_in(&self, j: i64) -> u32 {
        match self.mode {
            Mode::Off => self.size,
            Mode::Gradual { min, rate, steps } => {
                let p = j.rem_euclid(2 * steps);
                let level = if p <= steps { p } else { 2 * steps - p };
                (min as i64 + level * rate as i64).min(self.size as i64) as u32
            }
            Mode::Alternate { odd } => {
                if j.rem_euclid(2) == 0 {
                    self.size
                } else {
                    odd
                }
            }
            Mode::Spike { base } => {
                if j.rem_euclid(2) == 0 {
                    base
                } else {
                    self.size
                }
            }
        }
    }

    /// How many servers exist at grid point `grid`: those with indices below it.
    pub fn count_at(&self, grid: i64) -> u32 {
        match self.mode {
            Mode::Off => self.size,
            _ => self.count_in(self.interval(grid, self.change_ms)),
        }
    }

    /// The fewest servers there ever are: those below it never leave.
    fn floor(&self) -> u32 {
        match self.mode {
            Mode::Off => self.size,
            Mode::Gradual { min, .. } => min,
            Mode::Alternate { odd } => odd,
            Mode::Spike { base } => base,
        }
    }

    pub fn present(&self, index: u32, grid: i64) -> bool {
        index < self.count_at(grid)
    }

    /// Whether the machine in slot `index` is replaced in churn interval `j`: a draw of its
    /// own per (seed, index, interval), so that it does not depend on the rest of the fleet.
    fn replaced_in(&self, churn: &Churn, index: u32, j: i64) -> bool {
        churn.key.with(index as u64).draws(j).uniform() < churn.share
    }

    /// What changes at grid point `grid`.
    pub fn changes_at(&self, grid: i64) -> Changes {
        let mut changes = Changes {
            joining: 0..0,
            count_changed: false,
            churn_interval: None,
        };
        if self.mode != Mode::Off
            && let Some(j) = self.starting(grid, self.change_ms)
        {
            let (before, now) = (self.count_in(j - 1), self.count_in(j));
            changes.count_changed = before != now;
            changes.joining = before.min(now)..now;
        }
        if let Some(churn) = &self.churn {
            changes.churn_interval = self.starting(grid, churn.interval_ms);
        }
        changes
    }

    /// Whether server `index` joins or has its machine replaced at the grid point of
    /// `changes`: either way a new process starts.
    pub fn joined(&self, changes: &Changes, index: u32) -> bool {
        changes.joining.contains(&index) || self.replaced(changes, index).is_some()
    }

    /// When server `index`'s new machine was born, if it is replaced at the grid point of
    /// `changes`: the start of the churn interval, unix ms.
    pub fn replaced(&self, changes: &Changes, index: u32) -> Option<i64> {
        let churn = self.churn.as_ref()?;
        let j = changes.churn_interval?;
        self.replaced_in(churn, index, j)
            .then_some(j * churn.interval_ms)
    }

    pub fn joined_at(&self, index: u32, grid: i64) -> bool {
        !self.is_off() && self.joined(&self.changes_at(grid), index)
    }

    /// The latest grid point at or before `grid`, within `horizon` steps, at which server
    /// `index` joined or had its machine replaced.
    pub fn last_join_at_or_before(&self, index: u32, grid: i64, horizon: i64) -> Option<i64> {
        let floor = grid - horizon;
        let mut found = None;
        if let Some(j) = self.last_count_join(index, self.interval(grid, self.change_ms)) {
            let at = self.first_grid(j, self.change_ms);
            if at >= floor {
                found = Some(at);
            }
        }
        if let Some(churn) = &self.churn {
            let mut j = self.interval(grid, churn.interval_ms);
            while self.first_grid(j, churn.interval_ms) >= floor {
                if self.replaced_in(churn, index, j) {
                    found = found.max(Some(self.first_grid(j, churn.interval_ms)));
                    break;
                }
                j -= 1;
            }
        }
        found
    }

    /// The last change interval at or before `j` in which server `index` joins because the
    /// count grows past it, in closed form (a cycle of gradual-change can be long).
    fn last_count_join(&self, index: u32, j: i64) -> Option<i64> {
        if index >= self.size || index < self.floor() {
            return None;
        }
        // Joins recur once per cycle, at a fixed place in it.
        let (period, place) = match self.mode {
            Mode::Off => return None,
            // The first step of the ramp up whose count is above the index.
            Mode::Gradual { min, rate, steps } => (2 * steps, ((index - min) / rate) as i64 + 1),
            Mode::Alternate { .. } => (2, 0),
            Mode::Spike { .. } => (2, 1),
        };
        Some(j - (j - place).rem_euclid(period))
    }

    /// When the machine in slot `index` at grid point `grid` was born (unix ms, the start of
    /// the churn interval that replaced the previous one), or `ORIGINAL`. A replacement is
    /// looked for `64 / share` intervals back: one further back is as unlikely as e^-64.
    pub fn born_ms(&self, index: u32, grid: i64) -> i64 {
        let Some(churn) = &self.churn else {
            return ORIGINAL;
        };
        let now = self.interval(grid, churn.interval_ms);
        (now - churn.lookback..=now)
            .rev()
            .find(|&j| self.replaced_in(churn, index, j))
            .map_or(ORIGINAL, |j| j * churn.interval_ms)
    }
}

/// The name of the machine in a server's slot: the slot's own name for the first machine,
/// then the slot's name and when the machine was born, to the minute (to the second when
/// it was not born on a minute): `srv-0042-20261201t1110`. A birth time rather than a
/// replacement count, because the count would need the whole history since the epoch,
/// while the time is known at once, is unique within the slot and says something.
pub fn identity(base: &str, born_ms: i64) -> String {
    if born_ms == ORIGINAL {
        return base.to_string();
    }
    let t = chrono::DateTime::<chrono::Utc>::from_timestamp_millis(born_ms).unwrap_or_default();
    let format = if born_ms.rem_euclid(60_000) == 0 {
        "%Y%m%dt%H%M"
    } else {
        "%Y%m%dt%H%M%S"
    };
    format!("{base}-{}", t.format(format))
}

/// Who is in the fleet at one grid point: per server, whether it exists and when its
/// machine was born.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Roster {
    pub present: Vec<bool>,
    pub born_ms: Vec<i64>,
}

impl Roster {
    /// Every server present, none replaced.
    pub fn full(n: usize) -> Roster {
        Roster {
            present: vec![true; n],
            born_ms: vec![ORIGINAL; n],
        }
    }
}

/// The slots whose machine `roster` shows is not the one born at `rendered[i]` (what an
/// encoder rendered labels for), with the new machine's name; `rendered` is brought up to
/// date. Encoders render labels once per machine and call this when the roster changes.
pub fn renamed(
    members: &[super::Member],
    rendered: &mut [i64],
    roster: &Roster,
) -> Vec<(usize, String)> {
    let mut changed = Vec::new();
    for (i, &born) in roster.born_ms.iter().enumerate() {
        if let Some(was) = rendered.get_mut(i).filter(|b| **b != born) {
            *was = born;
            changed.push((i, identity(&members[i].name, born)));
        }
    }
    changed
}

/// A server's restarts that do not come from itself: its role's deploys, and its joining
/// the fleet or getting a new machine.
#[derive(Debug, Clone, Copy)]
pub struct Restarts<'a> {
    pub deploys: &'a Poisson,
    pub shape: &'a Shape,
    pub index: u32,
}

impl RestartEvents for Restarts<'_> {
    fn at(&self, k: i64) -> bool {
        self.deploys.at(k) || self.shape.joined_at(self.index, k)
    }

    fn last_at_or_before(&self, k: i64, horizon: i64) -> Option<i64> {
        let deploy = self.deploys.last_at_or_before(k, horizon);
        if self.shape.is_off() {
            return deploy;
        }
        deploy.max(self.shape.last_join_at_or_before(self.index, k, horizon))
    }

    fn points_between(&self, from: i64, to: i64) -> Vec<i64> {
        let mut points = self.deploys.points_between(from, to);
        if !self.shape.is_off() {
            points.extend((from..=to).filter(|&k| self.shape.joined_at(self.index, k)));
            points.sort_unstable();
            points.dedup();
        }
        points
    }
}

#[cfg(test)]
mod tests {
    // The load-test knobs: the count of servers over time in each mode, churn, and the
    // names of new machines (warm starts while servers come and go are in `properties.rs`).

    use std::time::Duration;

    use super::*;
    use crate::model::shape;

    /// 2024-03-01T00:00:00Z on the default 15 s grid: a UTC midnight.
    const MIDNIGHT: i64 = 1_709_251_200 / 15;
    const STEP_MS: i64 = 15_000;
    const HOUR: i64 = 240;
    const DAY: i64 = 24 * HOUR;

    fn spec(mode: SeriesMode, interval: Duration) -> ShapeSpec {
        ShapeSpec {
            mode,
            change_interval: interval,
            ..ShapeSpec::default()
        }
    }

    fn minutes(n: u64) -> Duration {
        Duration::from_secs(60 * n)
    }

    /// The count at each grid point of a day, with the grid points where it changes.
    fn day_of_counts(shape: &Shape) -> (Vec<u32>, Vec<i64>) {
        let counts: Vec<u32> = (MIDNIGHT..MIDNIGHT + DAY)
            .map(|g| shape.count_at(g))
            .collect();
        let changes = (1..counts.len())
            .filter(|&i| counts[i] != counts[i - 1])
            .map(|i| MIDNIGHT + i as i64)
            .collect();
        (counts, changes)
    }

    #[test]
    fn double_halve_alternates_every_server_and_half_of_them() {
        let shape = Shape::new(&spec(SeriesMode::DoubleHalve, minutes(10)), 40, 1, STEP_MS);
        let (counts, changes) = day_of_counts(&shape);
        for (g, &k) in (MIDNIGHT..).zip(&counts) {
            let interval = g * STEP_MS / 600_000;
            assert_eq!(k, if interval % 2 == 0 { 40 } else { 20 }, "grid {g}");
        }
        // Every ten minutes, on the epoch's ten minutes.
        assert_eq!(changes.len(), 6 * 24 - 1);
        assert!(changes.iter().all(|g| (g * STEP_MS) % 600_000 == 0));
    }

    #[test]
    fn spike_reaches_every_server_for_its_window_and_the_base_between() {
        let mut s = spec(SeriesMode::Spike, minutes(30));
        s.spike_multiplier = 4.0;
        let shape = Shape::new(&s, 100, 1, STEP_MS);
        let (counts, changes) = day_of_counts(&shape);
        let spiked = counts.iter().filter(|&&k| k == 100).count();
        let base = counts.iter().filter(|&&k| k == 25).count();
        assert_eq!(spiked + base, counts.len(), "only the base and the peak");
        // Half the time at the peak, in windows of the interval.
        assert_eq!(spiked, counts.len() / 2);
        assert_eq!(changes.len(), 2 * 24 - 1);
        for pair in changes.windows(2) {
            assert_eq!(pair[1] - pair[0], 30 * 60_000 / STEP_MS);
        }
    }

    #[test]
    fn gradual_change_ramps_monotonically_between_its_bounds() {
        let mut s = spec(SeriesMode::GradualChange, minutes(5));
        s.min_servers = Some(10);
        s.change_rate = Some(25);
        let shape = Shape::new(&s, 100, 1, STEP_MS);
        let (counts, changes) = day_of_counts(&shape);
        assert_eq!(counts.iter().min(), Some(&10));
        assert_eq!(counts.iter().max(), Some(&100));
        // Per interval: up by the rate (the last step clipped at the top), then down again,
        // turning only at the bounds.
        let per_interval: Vec<i64> = changes.iter().map(|&g| shape.count_at(g) as i64).collect();
        let mut rising = per_interval[1] > per_interval[0];
        for pair in per_interval.windows(2) {
            let step = pair[1] - pair[0];
            assert!(step != 0 && step.abs() <= 25, "{pair:?}");
            if (step > 0) != rising {
                let turned_at = pair[0];
                assert!(turned_at == 100 || turned_at == 10, "turned at {turned_at}");
                rising = step > 0;
            }
        }
        // The defaults: a tenth of the fleet, in avalanche's proportions.
        let shape = Shape::new(&spec(SeriesMode::GradualChange, minutes(5)), 50, 1, STEP_MS);
        let (counts, _) = day_of_counts(&shape);
        assert_eq!(counts.iter().min(), Some(&5));
        assert_eq!(counts.iter().max(), Some(&50));
    }

    #[test]
    fn no_mode_keeps_every_server() {
        let shape = Shape::new(&ShapeSpec::default(), 7, 1, STEP_MS);
        assert!(shape.is_off());
        let (counts, changes) = day_of_counts(&shape);
        assert!(counts.iter().all(|&k| k == 7) && changes.is_empty());
    }

    fn churned(share: f64, seed: u64) -> Shape {
        let s = ShapeSpec {
            churn: share,
            churn_interval: minutes(10),
            ..ShapeSpec::default()
        };
        Shape::new(&s, 200, seed, STEP_MS)
    }

    #[test]
    fn churn_replaces_about_its_share_each_interval_the_same_for_the_same_seed() {
        let shape = churned(0.1, 3);
        let per_interval = 600_000 / STEP_MS;
        let first = MIDNIGHT;
        let mut total = 0;
        let mut sets = Vec::new();
        for n in 0..144 {
            let g = first + n * per_interval;
            let changes = shape.changes_at(g);
            assert!(
                changes.churn_interval.is_some(),
                "an interval starts at {g}"
            );
            assert!(shape.changes_at(g + 1).is_none());
            let replaced: Vec<u32> = (0..200).filter(|&i| shape.joined(&changes, i)).collect();
            total += replaced.len();
            sets.push(replaced);
        }
        let mean = total as f64 / 144.0;
        assert!(
            (mean - 20.0).abs() < 2.0,
            "mean replaced per interval {mean}"
        );
        // Not the same servers every time.
        assert_ne!(sets[0], sets[1]);
        let again = churned(0.1, 3);
        let other = churned(0.1, 4);
        let at = |s: &Shape| {
            let c = s.changes_at(first);
            (0..200).filter(|&i| s.joined(&c, i)).collect::<Vec<u32>>()
        };
        assert_eq!(at(&again), sets[0]);
        assert_ne!(at(&other), sets[0]);
    }

    #[test]
    fn identities_name_the_slot_and_the_machines_birth() {
        assert_eq!(shape::identity("srv-0042", ORIGINAL), "srv-0042");
        let t = 1_764_587_400_000; // 2025-12-01T11:10:00Z
        assert_eq!(shape::identity("srv-0042", t), "srv-0042-20251201t1110");
        assert_eq!(
            shape::identity("srv-0042", t + 30_000),
            "srv-0042-20251201t111030"
        );
        let s = churned(0.5, 1);
        let born = s.born_ms(7, MIDNIGHT + 5);
        assert_ne!(born, ORIGINAL);
        assert_eq!(born % 600_000, 0, "born at the start of a churn interval");
        assert!(born <= (MIDNIGHT + 5) * STEP_MS);
    }

    #[test]
    fn the_last_join_agrees_with_scanning_the_grid() {
        let mut found = 0;
        for (mode, churn, min, rate) in [
            (SeriesMode::GradualChange, 0.02, None, None),
            (SeriesMode::GradualChange, 0.0, Some(4), Some(7)),
            (SeriesMode::DoubleHalve, 0.0, None, None),
            (SeriesMode::Spike, 0.01, None, None),
            (SeriesMode::Off, 0.05, None, None),
        ] {
            let spec = ShapeSpec {
                mode,
                change_interval: minutes(3),
                min_servers: min,
                change_rate: rate,
                spike_multiplier: 2.5,
                churn,
                churn_interval: minutes(7),
            };
            let shape = Shape::new(&spec, 30, 2, STEP_MS);
            for index in 0..30 {
                for g in [MIDNIGHT, MIDNIGHT + 1_234, MIDNIGHT + DAY + 77] {
                    let scanned = (g - 2 * HOUR..=g)
                        .rev()
                        .find(|&k| shape.joined_at(index, k));
                    assert_eq!(
                        shape.last_join_at_or_before(index, g, 2 * HOUR),
                        scanned,
                        "{mode:?}: server {index} at {g}"
                    );
                    found += scanned.is_some() as usize;
                }
            }
        }
        assert!(found >= 100, "{found}");
    }

    #[test]
    fn an_empty_fleet_has_a_shape_in_every_mode() {
        for mode in [
            SeriesMode::Off,
            SeriesMode::GradualChange,
            SeriesMode::DoubleHalve,
            SeriesMode::Spike,
        ] {
            let shape = Shape::new(&spec(mode, minutes(1)), 0, 1, STEP_MS);
            assert!(
                (MIDNIGHT..MIDNIGHT + HOUR).all(|g| !shape.present(0, g)),
                "{mode:?}"
            );
        }
    }
}
