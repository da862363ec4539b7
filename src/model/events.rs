//! Discrete events on the grid (deploys, outages, cleanups, reboots, bursts of CPU), each a
//! pure function of the grid index.
//!
//! Random events are drawn per slot (a stretch of grid points) from counter-based
//! randomness, at most one per slot, so "did it happen at k?" and "when did it last
//! happen before k?" are both answered without replaying the past.

use super::noise::{Draws, Key};

/// Events that happen on average once every `mean` grid steps.
#[derive(Debug, Clone)]
pub struct Poisson {
    key: Key,
    slot: i64,
    chance: f64,
}

impl Poisson {
    /// `mean_steps` of zero or less (or not finite) means the event never happens.
    pub fn new(key: Key, mean_steps: f64) -> Poisson {
        if !(mean_steps.is_finite() && mean_steps > 0.0) {
            return Poisson {
                key,
                slot: 1,
                chance: 0.0,
            };
        }
        // About 24 slots per mean interval keeps "one per slot" close to a Poisson process.
        let slot = ((mean_steps / 24.0).floor() as i64).max(1);
        Poisson {
            key,
            slot,
            chance: (slot as f64 / mean_steps).min(1.0),
        }
    }

    /// The event in slot `j`, if any: its grid index and the draws left for its details.
    fn in_slot(&self, j: i64) -> Option<(i64, Draws)> {
        let mut draws = self.key.draws(j);
        if draws.uniform() >= self.chance {
            return None;
        }
        let offset = ((draws.uniform() * self.slot as f64) as i64).min(self.slot - 1);
        Some((j * self.slot + offset, draws))
    }

    pub fn at(&self, k: i64) -> bool {
        matches!(self.in_slot(k.div_euclid(self.slot)), Some((e, _)) if e == k)
    }

    /// The latest event at or before `k`, looking back at most `horizon` steps.
    pub fn last_at_or_before(&self, k: i64, horizon: i64) -> Option<i64> {
        if self.chance == 0.0 {
            // Never: a horizon of a year at a fine grid is hundreds of millions of slots.
            return None;
        }
        let first = (k - horizon).div_euclid(self.slot);
        (first..=k.div_euclid(self.slot))
            .rev()
            .filter_map(|j| self.in_slot(j).map(|(e, _)| e))
            .find(|&e| e <= k && e >= k - horizon)
    }

    /// The event at `k`, if any, with the draws left for its details.
    pub fn event_at(&self, k: i64) -> Option<Draws> {
        match self.in_slot(k.div_euclid(self.slot)) {
            Some((e, draws)) if e == k => Some(draws),
            _ => None,
        }
    }

    /// The latest event at or before `k` within `horizon` steps, with the draws left for
    /// its details.
    pub fn last_event_at_or_before(&self, k: i64, horizon: i64) -> Option<(i64, Draws)> {
        if self.chance == 0.0 {
            // Never: nothing to look back over (the horizon may be a year of grid points).
            return None;
        }
        let first = (k - horizon).div_euclid(self.slot);
        (first..=k.div_euclid(self.slot))
            .rev()
            .filter_map(|j| self.in_slot(j))
            .find(|&(e, _)| e <= k && e >= k - horizon)
    }

    /// The grid points in `[from, to]` at which `at` holds, oldest first. `at(k)` holds
    /// exactly at the event of each slot that has one (it lies in its slot), so these are
    /// the events of the slots the range meets, within the range.
    pub fn points_between(&self, from: i64, to: i64) -> Vec<i64> {
        if self.chance == 0.0 {
            return Vec::new();
        }
        self.between(from, to).map(|(e, _)| e).collect()
    }

    /// The slots `[from, to]` meets; none when the event never happens, however long the
    /// range (a server that never fails is asked for its outages over a year of grid
    /// points).
    fn slots(&self, from: i64, to: i64) -> std::ops::RangeInclusive<i64> {
        if self.chance == 0.0 {
            // Empty: its start is past its end.
            return std::ops::RangeInclusive::new(1, 0);
        }
        from.div_euclid(self.slot)..=to.div_euclid(self.slot)
    }

    /// Events whose start lies in `[from, to]`, with their draws, oldest first.
    pub(super) fn between(&self, from: i64, to: i64) -> impl Iterator<Item = (i64, Draws)> + '_ {
        self.slots(from, to)
            .filter_map(|j| self.in_slot(j))
            .filter(move |&(e, _)| e >= from && e <= to)
    }

    /// `between`, latest first.
    fn between_latest_first(&self, from: i64, to: i64) -> impl Iterator<Item = (i64, Draws)> + '_ {
        self.slots(from, to)
            .rev()
            .filter_map(|j| self.in_slot(j))
            .filter(move |&(e, _)| e >= from && e <= to)
    }
}

/// Events that restart a server from outside it (its role's deploys, and with the load-test
/// knobs its joining the fleet): whether one happens at a grid point, and the last one.
pub trait RestartEvents {
    fn at(&self, k: i64) -> bool;
    fn last_at_or_before(&self, k: i64, horizon: i64) -> Option<i64>;

    /// The grid points in `[from, to]` at which `at` holds, oldest first: what a replay
    /// over that range asks, found at once.
    fn points_between(&self, from: i64, to: i64) -> Vec<i64> {
        (from..=to).filter(|&k| self.at(k)).collect()
    }
}

impl RestartEvents for Poisson {
    fn at(&self, k: i64) -> bool {
        Poisson::at(self, k)
    }

    fn last_at_or_before(&self, k: i64, horizon: i64) -> Option<i64> {
        Poisson::last_at_or_before(self, k, horizon)
    }

    fn points_between(&self, from: i64, to: i64) -> Vec<i64> {
        Poisson::points_between(self, from, to)
    }
}

/// Whether grid points are among sorted `points`, asked for increasing grid points: a
/// replay's events found once for the whole range (see `RestartEvents::points_between`).
#[derive(Debug, Clone)]
pub struct PointCursor {
    points: Vec<i64>,
    next: usize,
}

impl PointCursor {
    /// `points` sorted, oldest first.
    pub fn new(points: Vec<i64>) -> PointCursor {
        debug_assert!(points.is_sorted());
        PointCursor { points, next: 0 }
    }

    /// Whether `k` is among the points; `k` at least the last one asked.
    pub fn at(&mut self, k: i64) -> bool {
        while self.points.get(self.next).is_some_and(|&p| p < k) {
            self.next += 1;
        }
        self.points.get(self.next) == Some(&k)
    }
}

/// What a role's deploys set until the next one: each deploy draws a level, uniform in
/// [0, 1), from its own draws (a new release costs more or less CPU per request than the
/// last). Before any deploy in the horizon, the level is the middle one.
#[derive(Debug, Clone, Copy)]
pub struct Regimes<'a> {
    pub deploys: &'a Poisson,
    /// How far back, in grid steps, the last deploy is looked for.
    pub horizon: i64,
}

/// The level of a regime no deploy has drawn.
pub const NEUTRAL_REGIME: f64 = 0.5;

impl Regimes<'_> {
    /// The level a deploy at `k` draws, if one happens at `k`.
    pub fn drawn_at(&self, k: i64) -> Option<f64> {
        self.deploys.event_at(k).map(|mut d| d.uniform())
    }

    /// The levels deploys in `[from, to]` draw, oldest first: `drawn_at` of each point of
    /// the range that has one (`event_at(k)` is the event of `k`'s slot when it lies at
    /// `k`, with the same draws as `between` yields for that slot).
    pub fn drawn_between(&self, from: i64, to: i64) -> Vec<(i64, f64)> {
        if self.deploys.chance == 0.0 {
            return Vec::new();
        }
        self.deploys
            .between(from, to)
            .map(|(e, mut d)| (e, d.uniform()))
            .collect()
    }

    /// The level in force at `k`: the last deploy's at or before it.
    pub fn at(&self, k: i64) -> f64 {
        self.deploys
            .last_event_at_or_before(k, self.horizon)
            .map_or(NEUTRAL_REGIME, |(_, mut d)| d.uniform())
    }
}

/// Short bursts of extra CPU (batch jobs, cron, garbage collection, retries), at most one
/// per slot and lying inside it, so the height at `k` needs the draws of one slot only.
///
/// A slot is twice the longest burst and a burst ends at least one longest burst before its
/// slot does: two bursts never overlap nor follow each other closely, so a burst outlasts
/// an alert's `for` only if it is itself longer.
#[derive(Debug, Clone, Copy)]
pub struct Bursts {
    key: Key,
    slot: i64,
    chance: f64,
    min_len: i64,
    max_len: i64,
    height: f64,
}

impl Bursts {
    /// Bursts starting on average every `mean_steps` (never when it is zero or less, or
    /// `height` is), each `min_len` to `max_len` steps long and 0.5 to 1.5 times `height`
    /// high.
    pub fn new(key: Key, mean_steps: f64, min_len: i64, max_len: i64, height: f64) -> Bursts {
        let max_len = max_len.max(min_len).max(1);
        let min_len = min_len.clamp(1, max_len);
        let slot = 2 * max_len;
        let happens = mean_steps.is_finite() && mean_steps > 0.0 && height > 0.0;
        Bursts {
            key,
            slot,
            chance: if happens {
                (slot as f64 / mean_steps).min(1.0)
            } else {
                0.0
            },
            min_len,
            max_len,
            height,
        }
    }

    /// The height, percentage points, of the burst under way at `k` (0 when none is).
    pub fn at(&self, k: i64) -> f64 {
        if self.chance == 0.0 {
            return 0.0;
        }
        match self.in_slot(k.div_euclid(self.slot)) {
            Some(b) if b.start <= k && k < b.end => b.height,
            _ => 0.0,
        }
    }

    /// The burst of slot `j`, if it has one.
    fn in_slot(&self, j: i64) -> Option<Burst> {
        let mut draws = self.key.draws(j);
        if draws.uniform() >= self.chance {
            return None;
        }
        let spread = (self.max_len - self.min_len + 1) as f64;
        let len = self.min_len + ((draws.uniform() * spread) as i64).min(spread as i64 - 1);
        let room = self.max_len - len + 1;
        let start = j * self.slot + ((draws.uniform() * room as f64) as i64).min(room - 1);
        Some(Burst {
            start,
            end: start + len,
            height: self.height * (0.5 + draws.uniform()),
        })
    }

    /// The bursts under way somewhere in `[from, to]`, in order: for a replay that asks
    /// `at` of many points of the range, each slot drawn once.
    pub fn between(&self, from: i64, to: i64) -> BurstList {
        let bursts = if self.chance == 0.0 || to < from {
            Vec::new()
        } else {
            // A burst ends within its slot's first half, so none from a slot before
            // `from`'s reaches it.
            (from.div_euclid(self.slot)..=to.div_euclid(self.slot))
                .filter_map(|j| self.in_slot(j))
                .filter(|b| b.end > from && b.start <= to)
                .collect()
        };
        BurstList { bursts }
    }

    /// A cursor asking `at` of increasing grid points, drawing each slot once.
    pub fn cursor(&self) -> BurstCursor<'_> {
        BurstCursor {
            bursts: self,
            slot_end: i64::MIN,
            burst: None,
        }
    }
}

/// The bursts of a range (see `Bursts::between`).
#[derive(Debug, Clone)]
pub struct BurstList {
    bursts: Vec<Burst>,
}

impl BurstList {
    /// `Bursts::at`, for a point of the range.
    pub fn at(&self, k: i64) -> f64 {
        match self.bursts.partition_point(|b| b.start <= k) {
            0 => 0.0,
            n if k < self.bursts[n - 1].end => self.bursts[n - 1].height,
            _ => 0.0,
        }
    }

    /// The grid points at which a burst begins or ends (the first point after it), in
    /// order.
    pub fn edges(&self) -> impl Iterator<Item = i64> + '_ {
        self.bursts.iter().flat_map(|b| [b.start, b.end])
    }
}

/// One burst: `[start, end)` grid points, `height` percentage points.
#[derive(Debug, Clone, Copy)]
struct Burst {
    start: i64,
    end: i64,
    height: f64,
}

/// `Bursts::at` for increasing grid points: a slot's draws give the same burst whenever
/// they are made, so they are made once per slot rather than once per point.
#[derive(Debug, Clone)]
pub struct BurstCursor<'a> {
    bursts: &'a Bursts,
    /// The first grid point after the slot `burst` is of.
    slot_end: i64,
    burst: Option<Burst>,
}

impl BurstCursor<'_> {
    /// `Bursts::at(k)`; `k` at least the last one asked.
    pub fn at(&mut self, k: i64) -> f64 {
        let b = self.bursts;
        if b.chance == 0.0 {
            return 0.0;
        }
        if k >= self.slot_end {
            let j = k.div_euclid(b.slot);
            self.slot_end = (j + 1) * b.slot;
            self.burst = b.in_slot(j);
        }
        match self.burst {
            Some(burst) if burst.start <= k && k < burst.end => burst.height,
            _ => 0.0,
        }
    }
}

/// Outages: starts at random, each lasting an exponentially distributed number of steps.
#[derive(Debug, Clone)]
pub struct Outages {
    starts: Poisson,
    mean_len: f64,
    max_len: i64,
}

impl Outages {
    pub fn new(key: Key, mtbf_steps: f64, mttr_steps: f64) -> Outages {
        let mean_len = mttr_steps.max(1.0);
        Outages {
            starts: Poisson::new(key, mtbf_steps),
            mean_len,
            max_len: (mean_len * 10.0).ceil() as i64,
        }
    }

    /// Outages overlapping `[from, to]`, as half-open `[start, end)` intervals.
    fn overlapping(&self, from: i64, to: i64) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.starts
            .between(from - self.max_len, to)
            .map(|(start, draws)| self.span(start, draws))
            .filter(move |&(_, end)| end > from)
    }

    /// `overlapping`, latest start first.
    fn overlapping_latest_first(
        &self,
        from: i64,
        to: i64,
    ) -> impl Iterator<Item = (i64, i64)> + '_ {
        self.starts
            .between_latest_first(from - self.max_len, to)
            .map(|(start, draws)| self.span(start, draws))
            .filter(move |&(_, end)| end > from)
    }

    /// The outage starting at `start`, from its draws.
    fn span(&self, start: i64, mut draws: Draws) -> (i64, i64) {
        let len = (draws.exponential(self.mean_len).ceil() as i64).clamp(1, self.max_len);
        (start, start + len)
    }

    pub fn down_at(&self, k: i64) -> bool {
        self.overlapping(k, k).next().is_some()
    }

    /// The outages overlapping `[from, to)`, as half-open `[start, end)` spans, oldest
    /// first: what a list of the server's failures shows.
    pub fn spans(&self, from: i64, to: i64) -> Vec<(i64, i64)> {
        if to <= from {
            return Vec::new();
        }
        self.overlapping(from, to - 1).collect()
    }

    /// `down_at` for the increasing grid points of `[from, to]`.
    pub fn cursor(&self, from: i64, to: i64) -> OutageCursor {
        OutageCursor {
            spans: self.overlapping(from, to).collect(),
            next: 0,
            latest_end: i64::MIN,
        }
    }

    /// The latest grid point at or before `k` at which the server is up.
    pub fn last_up_at_or_before(&self, k: i64) -> i64 {
        let mut at = k;
        while let Some(start) = self.overlapping(at, at).map(|(start, _)| start).min() {
            at = start - 1;
        }
        at
    }

    /// The latest grid point at or before `k`, within `horizon`, at which the server came
    /// back up.
    pub fn last_recovery_at_or_before(&self, k: i64, horizon: i64) -> Option<i64> {
        // Latest start first, so the search stops at the recent past: an outage lasts at
        // most `max_len`, so one starting that long before the best end found cannot end
        // later. (Taking the latest of every end over the horizon checked each of a
        // year's outages, thousands for a server failing hourly.)
        let mut latest: Option<i64> = None;
        for (start, end) in self.overlapping_latest_first(k - horizon, k) {
            if latest.is_some_and(|best| start + self.max_len <= best) {
                break;
            }
            if end <= k && latest < Some(end) && !self.down_at(end) {
                latest = Some(end);
            }
        }
        latest
    }
}

/// `Outages::down_at` for increasing grid points of a range, from the outages overlapping
/// it. `down_at(k)` asks whether an outage starting in `[k - max_len, k]` ends after `k`;
/// every outage that covers a `k` of the range starts in that window and overlaps the
/// range, so it is among `spans`, and those starting after `k` cover no point up to `k`.
#[derive(Debug, Clone)]
pub struct OutageCursor {
    /// Oldest start first (one start per slot, slots in order).
    spans: Vec<(i64, i64)>,
    next: usize,
    /// The latest end of the spans starting at or before the last point asked.
    latest_end: i64,
}

impl OutageCursor {
    /// `Outages::down_at(k)`; `k` in the range, at least the last one asked.
    pub fn down_at(&mut self, k: i64) -> bool {
        while let Some(&(_, end)) = self.spans.get(self.next).filter(|(s, _)| *s <= k) {
            self.latest_end = self.latest_end.max(end);
            self.next += 1;
        }
        self.latest_end > k
    }
}

/// Events on a fixed period at a fixed phase (scheduled reboots, log rotation).
#[derive(Debug, Clone, Copy)]
pub struct Periodic {
    period: i64,
    phase: i64,
}

impl Periodic {
    pub fn new(period_steps: i64, phase: i64) -> Periodic {
        let period = period_steps.max(1);
        Periodic {
            period,
            phase: phase.rem_euclid(period),
        }
    }

    pub fn at(&self, k: i64) -> bool {
        (k - self.phase).rem_euclid(self.period) == 0
    }

    pub fn last_at_or_before(&self, k: i64) -> i64 {
        k - (k - self.phase).rem_euclid(self.period)
    }

    pub fn period(&self) -> i64 {
        self.period
    }

    /// `at` for increasing grid points from `from` on.
    pub fn cursor(&self, from: i64) -> PeriodicCursor {
        PeriodicCursor {
            period: self.period,
            next: self.last_at_or_before(from - 1) + self.period,
        }
    }

    /// The events in `[from, to)`, oldest first.
    pub fn between(&self, from: i64, to: i64) -> impl Iterator<Item = i64> + '_ {
        let first = self.last_at_or_before(from - 1) + self.period;
        (0..)
            .map(move |n| first + n * self.period)
            .take_while(move |&k| k < to)
    }
}

/// `Periodic::at` for increasing grid points: the next event, moved on by periods.
#[derive(Debug, Clone, Copy)]
pub struct PeriodicCursor {
    period: i64,
    /// The first event at or after the last point asked.
    next: i64,
}

impl PeriodicCursor {
    /// `Periodic::at(k)`; `k` at least the last one asked and the cursor's `from`.
    pub fn at(&mut self, k: i64) -> bool {
        while self.next < k {
            self.next += self.period;
        }
        self.next == k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn poisson_rate_matches_its_mean() {
        let p = Poisson::new(Key::from_seed(1), 500.0);
        let n = 2_000_000;
        let count = (0..n).filter(|&k| p.at(k)).count();
        let expected = n as f64 / 500.0;
        assert!(
            (count as f64 - expected).abs() < expected * 0.1,
            "{count} vs {expected}"
        );
    }

    #[test]
    fn last_event_agrees_with_scanning() {
        let p = Poisson::new(Key::from_seed(2), 100.0);
        for k in [0, 57, 1_000, 12_345, -400] {
            let scanned = (k - 1_000..=k).rev().find(|&i| p.at(i));
            assert_eq!(p.last_at_or_before(k, 1_000), scanned, "at {k}");
        }
    }

    #[test]
    fn disabled_events_never_happen() {
        let p = Poisson::new(Key::from_seed(3), 0.0);
        assert!((0..10_000).all(|k| !p.at(k)));
        assert_eq!(p.last_at_or_before(10_000, 10_000), None);
    }

    #[test]
    fn outages_have_their_mean_length_and_recoveries_end_them() {
        let o = Outages::new(Key::from_seed(4), 2_000.0, 20.0);
        let n = 1_000_000;
        let down = (0..n).filter(|&k| o.down_at(k)).count() as f64 / n as f64;
        // Share of time down is about mttr / (mtbf + mttr).
        assert!((down - 20.0 / 2_020.0).abs() < 0.004, "down share {down}");
        for k in (0..n).step_by(9_973) {
            if let Some(r) = o.last_recovery_at_or_before(k, 5_000) {
                assert!(!o.down_at(r) && o.down_at(r - 1), "recovery at {r}");
                assert!((r + 1..=k).all(|i| !o.down_at(i - 1) || o.down_at(i)));
            }
        }
    }

    #[test]
    fn bursts_have_their_rate_and_lengths_and_never_overlap() {
        let b = Bursts::new(Key::from_seed(6), 120.0, 4, 16, 20.0);
        let n = 2_000_000;
        let heights: Vec<f64> = (0..n).map(|k| b.at(k)).collect();
        let mut runs = Vec::new();
        let (mut run, mut quiet) = (0, 0);
        for &h in &heights {
            if h > 0.0 {
                assert!((10.0..30.0).contains(&h), "height {h}");
                assert!(
                    run > 0 || quiet >= 16 || runs.is_empty(),
                    "{quiet} quiet steps"
                );
                run += 1;
                quiet = 0;
            } else {
                if run > 0 {
                    runs.push(run);
                }
                run = 0;
                quiet += 1;
            }
        }
        assert!(runs.iter().all(|&r| (4..=16).contains(&r)), "{runs:?}");
        let expected = n as f64 / 120.0;
        let count = runs.len() as f64;
        assert!(
            (count - expected).abs() < 0.05 * expected,
            "{count} vs {expected}"
        );
        assert!((0..10_000).all(|k| Bursts::new(Key::from_seed(6), 0.0, 4, 16, 20.0).at(k) == 0.0));
    }

    #[test]
    fn a_regime_holds_from_its_deploy_to_the_next() {
        let deploys = Poisson::new(Key::from_seed(7), 300.0);
        let regimes = Regimes {
            deploys: &deploys,
            horizon: 10_000,
        };
        let mut level = regimes.at(0);
        let mut changes = 0;
        for k in 1..20_000 {
            if let Some(drawn) = regimes.drawn_at(k) {
                assert!(deploys.at(k));
                level = drawn;
                changes += 1;
            }
            assert_eq!(regimes.at(k), level, "at {k}");
        }
        assert!(changes > 40, "{changes} deploys");
        let never = Poisson::new(Key::from_seed(7), 0.0);
        let none = Regimes {
            deploys: &never,
            horizon: 1 << 40,
        };
        assert_eq!(none.at(12_345), NEUTRAL_REGIME);
    }

    #[test]
    fn periodic_events_fall_on_their_phase() {
        let p = Periodic::new(10, 3);
        assert!(p.at(3) && p.at(13) && p.at(-7) && !p.at(4));
        assert_eq!(p.last_at_or_before(12), 3);
        assert_eq!(p.last_at_or_before(13), 13);
        assert_eq!(p.between(3, 34).collect::<Vec<_>>(), [3, 13, 23, 33]);
        assert_eq!(p.between(4, 13).count(), 0);
    }

    #[test]
    fn the_last_recovery_is_the_latest_end_of_an_outage_not_inside_another() {
        // Every end over the horizon, as the search was first written: the one the early
        // stop must agree with, where outages overlap and where they are rare.
        let scanned = |o: &Outages, k: i64, horizon: i64| {
            o.overlapping(k - horizon, k)
                .map(|(_, end)| end)
                .filter(|&end| end <= k && !o.down_at(end))
                .max()
        };
        for (seed, mtbf, mttr) in [(8, 24.0, 96.0), (9, 500.0, 30.0), (10, 40.0, 1.0)] {
            let o = Outages::new(Key::from_seed(seed), mtbf, mttr);
            for k in (0..100).map(|i| i * 3_989 - 20_000) {
                for horizon in [0, 50, 5_000, 20_000] {
                    assert_eq!(
                        o.last_recovery_at_or_before(k, horizon),
                        scanned(&o, k, horizon),
                        "mtbf {mtbf}, mttr {mttr}, at {k} within {horizon}"
                    );
                }
            }
        }
    }

    #[test]
    fn events_that_never_happen_are_not_looked_for() {
        // A horizon of a trillion grid points, slot by slot, would not end.
        let never = Poisson::new(Key::from_seed(11), 0.0);
        assert_eq!(never.last_at_or_before(5, 1_000_000_000_000), None);
        assert_eq!(never.between(-1_000_000_000_000, 5).count(), 0);
        let no_outage = Outages::new(Key::from_seed(12), 0.0, 30.0);
        assert_eq!(
            no_outage.last_recovery_at_or_before(5, 1_000_000_000_000),
            None
        );
        assert_eq!(no_outage.last_up_at_or_before(5), 5);
    }

    #[test]
    fn outage_spans_are_exactly_the_points_down() {
        let o = Outages::new(Key::from_seed(5), 500.0, 30.0);
        let (from, to) = (10_000, 60_000);
        let spans = o.spans(from, to);
        assert!(spans.len() > 20, "{} outages", spans.len());
        for k in from..to {
            let inside = spans.iter().any(|&(a, b)| a <= k && k < b);
            assert_eq!(inside, o.down_at(k), "at {k}");
        }
        assert!(spans.windows(2).all(|w| w[0].0 <= w[1].0));
    }
}
