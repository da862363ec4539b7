//! Reading the fleet at any instant: the two grid points around it, blended.
//!
//! The exporter asks for "now" every tick and `generate` for each output step; both get
//! the same values for the same instant, because both read the same grid and blend it the
//! same way. Continuous signals are interpolated linearly; discrete changes (a server going
//! down or coming back, a restart that zeroes counters) take effect at the grid point.

use std::sync::Arc;

use super::fleet::{Fleet, Snapshot};
use super::identity::Member;
use super::incidents::{Incident, Schedule};
use super::server::Counters;
use super::shape::Roster;
use super::spec::FleetSpec;

/// The fleet's values at one instant, as the grid points around it.
#[derive(Debug, Clone)]
pub struct Frame {
    pub time_ms: i64,
    pub before: Arc<Snapshot>,
    pub after: Arc<Snapshot>,
    /// Per server, how far to move from `before` toward `after`: 0 to 1.
    pub blend: Vec<f64>,
    /// Who is in the fleet at `before`'s grid point.
    pub roster: Arc<Roster>,
}

impl Frame {
    fn new(
        time_ms: i64,
        before: Arc<Snapshot>,
        after: Arc<Snapshot>,
        roster: Arc<Roster>,
    ) -> Frame {
        let span = (after.time_ms - before.time_ms).max(1) as f64;
        let fraction = ((time_ms - before.time_ms) as f64 / span).clamp(0.0, 1.0);
        let blend = (0..before.len())
            .map(|i| {
                let discrete_change = before.up[i] != after.up[i] || after.restarted[i];
                if discrete_change { 0.0 } else { fraction }
            })
            .collect();
        Frame {
            time_ms,
            before,
            after,
            blend,
            roster,
        }
    }

    pub fn len(&self) -> usize {
        self.before.len()
    }

    pub fn is_empty(&self) -> bool {
        self.before.is_empty()
    }

    /// Server `i` exists and is up: it has series other than `app_server_up`.
    pub fn up(&self, i: usize) -> bool {
        self.before.up[i] && self.roster.present[i]
    }

    /// Server `i` is in the fleet (the load-test modes leave some out): it has series.
    pub fn present(&self, i: usize) -> bool {
        self.roster.present[i]
    }

    /// When the machine in server `i`'s slot was born (`shape::ORIGINAL` for the first).
    pub fn born_ms(&self, i: usize) -> i64 {
        self.roster.born_ms[i]
    }

    /// A signal of server `i`, blended: `frame.value(i, |s| &s.cpu)`.
    #[inline]
    pub fn value(&self, i: usize, signal: impl Fn(&Snapshot) -> &Vec<f64>) -> f64 {
        let a = signal(&self.before)[i];
        let b = signal(&self.after)[i];
        a + (b - a) * self.blend[i]
    }

    /// A counter of server `i`, blended: for the sums that are not counts of events (the
    /// histogram's `_sum`, the `_created` time). Counts are [`Frame::count`].
    #[inline]
    pub fn counter(&self, i: usize, counter: impl Fn(&Counters) -> f64) -> f64 {
        let a = counter(&self.before.counters[i]);
        let b = counter(&self.after.counters[i]);
        a + (b - a) * self.blend[i]
    }

    /// A count of server `i` (requests, bytes, a histogram's bucket or count): the blended
    /// counter's whole part, as the events counted are whole.
    ///
    /// The model's counters add expected counts, fractions included; flooring their blend
    /// keeps what matters of a counter: it only goes up in time (the blend does, between
    /// grid points and across them), and a bucket holds no more than the next one or the
    /// count (each does not at either grid point, so neither does the blend, to within an
    /// ulp: the histogram's walk makes sure of it).
    #[inline]
    pub fn count(&self, i: usize, counter: impl Fn(&Counters) -> f64) -> f64 {
        whole(self.counter(i, counter))
    }

    /// The process's last start, unix seconds (held: it changes at a grid point).
    pub fn start_time(&self, i: usize) -> f64 {
        self.before.start_time[i]
    }

    pub fn last_deploy(&self, i: usize) -> f64 {
        self.before.last_deploy[i]
    }

    /// The incidents active at the frame's time (those that made the grid point the frame
    /// shows, scheduled and random), by id.
    pub fn active_incidents(&self) -> &[Incident] {
        &self.before.incidents
    }
}

/// The whole part of a count, which is never negative: a cast (one instruction) where
/// `floor` may be a libm call; the cast takes NaN and negatives to 0.
#[inline]
pub fn whole(count: f64) -> f64 {
    (count as u64) as f64
}

/// A fleet that moves forward in time on request.
#[derive(Debug)]
pub struct Timeline {
    /// What the fleet was made from, to make it afresh (its members and schedule are the
    /// fleet's own, left empty here).
    spec: FleetSpec,
    fleet: Fleet,
    before: Arc<Snapshot>,
    after: Arc<Snapshot>,
    /// The roster at `before`'s and `after`'s grid points.
    roster_before: Arc<Roster>,
    roster_after: Arc<Roster>,
    /// The last time asked: what a recomputed grid point must not take back.
    last_ms: i64,
}

/// Past this many steps ahead, starting afresh is cheaper than stepping.
const MAX_CATCH_UP_STEPS: i64 = 50_000;

impl FleetSpec {
    /// The fleet from `time_ms` on (the scheduled incidents before `time_ms` included, as
    /// if it had been running).
    pub fn timeline(self, time_ms: i64) -> Timeline {
        Timeline::start(self, time_ms)
    }
}

impl Timeline {
    fn start(mut spec: FleetSpec, time_ms: i64) -> Timeline {
        let fleet_spec = FleetSpec {
            members: std::mem::take(&mut spec.members),
            schedule: std::mem::take(&mut spec.schedule),
            ..spec.clone()
        };
        let mut fleet = fleet_spec.fleet_at_time(time_ms);
        let before = Arc::new(fleet.snapshot().clone());
        let roster_before = fleet.roster().clone();
        fleet.step();
        let after = Arc::new(fleet.snapshot().clone());
        let roster_after = fleet.roster().clone();
        Timeline {
            spec,
            fleet,
            before,
            after,
            roster_before,
            roster_after,
            last_ms: time_ms,
        }
    }

    pub fn members(&self) -> &[Member] {
        self.fleet.members()
    }

    pub fn schedule(&self) -> &Schedule {
        self.fleet.schedule()
    }

    pub fn seed(&self) -> u64 {
        self.spec.seed
    }

    /// Replaces the scheduled incidents. The grid points already computed (up to the one
    /// after the last time asked) keep the old schedule; the change takes effect from
    /// `schedule_effective_ms()` on. Cheap when the schedule is unchanged (so it can be set
    /// every tick).
    pub fn set_schedule(&mut self, schedule: Schedule) {
        self.fleet.set_schedule(schedule);
    }

    /// Replaces the scheduled incidents from the grid point ahead of the last time asked on
    /// (`next_grid_ms()`), computing that point again: a change shows at the next grid
    /// point, not the one after. It costs a warm start at the grid point shown (as a clock
    /// set back does). No counter served goes back: the point ahead keeps its counters at
    /// least as they were, and the one shown is held at the values served last.
    pub fn reschedule(&mut self, schedule: Schedule) {
        if &schedule == self.fleet.schedule() {
            return;
        }
        let spec = FleetSpec {
            members: self.fleet.members().to_vec(),
            schedule,
            ..self.spec.clone()
        };
        let mut fleet = spec.fleet_at_grid(self.before.grid);
        fleet.step();
        let (old, new) = (&self.after, fleet.snapshot());
        let same_process: Vec<bool> = (0..new.len())
            .map(|i| old.up[i] && new.up[i] && !old.restarted[i] && !new.restarted[i])
            .collect();
        fleet.raise_counters(&old.counters, |i| same_process[i]);
        let served = Frame::new(
            self.last_ms,
            self.before.clone(),
            self.after.clone(),
            self.roster_before.clone(),
        );
        let mut held = (*self.before).clone();
        for (i, counters) in held.counters.iter_mut().enumerate() {
            *counters = blend_counters(counters, &self.after.counters[i], served.blend[i]);
        }
        self.before = Arc::new(held);
        self.after = Arc::new(fleet.snapshot().clone());
        self.roster_after = fleet.roster().clone();
        self.fleet = fleet;
    }

    /// The time of the grid point ahead of the last time asked: the first a
    /// [`reschedule`](Self::reschedule) changes.
    pub fn next_grid_ms(&self) -> i64 {
        self.after.time_ms
    }

    /// The first instant a schedule change can affect: an incident meant to start "now"
    /// should start no earlier, so that the values served agree with a warm start (or
    /// `generate`) that has the incident from the start.
    pub fn schedule_effective_ms(&self) -> i64 {
        (self.after.grid + 1) * self.fleet.step_ms()
    }

    /// The fleet's values at `time_ms`. Times should not go backwards; when they do (a
    /// clock set back) the fleet is recomputed for the new time.
    pub fn at(&mut self, time_ms: i64) -> Frame {
        self.last_ms = time_ms;
        let step_ms = self.fleet.step_ms();
        let target = time_ms.div_euclid(step_ms);
        if target < self.before.grid || target - self.before.grid > MAX_CATCH_UP_STEPS {
            let spec = FleetSpec {
                members: self.fleet.members().to_vec(),
                schedule: self.fleet.schedule().clone(),
                ..self.spec.clone()
            };
            *self = spec.timeline(time_ms);
        }
        while self.after.grid <= target {
            self.fleet.step();
            // The snapshot falling out of the window is reused when no frame holds it.
            let old = std::mem::replace(&mut self.before, self.after.clone());
            let next = match Arc::try_unwrap(old) {
                Ok(mut reused) => {
                    self.fleet.swap_snapshot(&mut reused);
                    reused
                }
                Err(_) => self.fleet.snapshot().clone(),
            };
            self.after = Arc::new(next);
            let roster = self.fleet.roster().clone();
            self.roster_before = std::mem::replace(&mut self.roster_after, roster);
        }
        Frame::new(
            time_ms,
            self.before.clone(),
            self.after.clone(),
            self.roster_before.clone(),
        )
    }
}

/// The counters `fraction` of the way from `a` to `b`, as a frame reads them.
fn blend_counters(a: &Counters, b: &Counters, fraction: f64) -> Counters {
    let lerp = |x: f64, y: f64| x + (y - x) * fraction;
    let mut c = *a;
    for (x, y) in c.requests.iter_mut().zip(&b.requests) {
        *x = lerp(*x, *y);
    }
    for (x, y) in c.duration_buckets.iter_mut().zip(&b.duration_buckets) {
        *x = lerp(*x, *y);
    }
    c.received_bytes = lerp(a.received_bytes, b.received_bytes);
    c.transmitted_bytes = lerp(a.transmitted_bytes, b.transmitted_bytes);
    c.duration_sum = lerp(a.duration_sum, b.duration_sum);
    c.duration_count = lerp(a.duration_count, b.duration_count);
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::fleet::gauges;
    use crate::model::{FleetParams, members};

    /// 2024-03-01T00:00:00Z on the default 15 s grid: a UTC midnight.
    const MIDNIGHT: i64 = 1_709_251_200 / 15;

    // 10. Timeline.

    #[test]
    fn timeline_blends_between_grid_points() {
        let params = FleetParams::default();
        let m = members(&params, 12, 0..12);
        let step_ms = 15_000;
        let g0 = MIDNIGHT + 1_000;
        let mut timeline = FleetSpec::new(&params, 4, m.clone()).timeline(g0 * step_ms);
        let mut reference = FleetSpec::new(&params, 4, m.clone()).fleet_at_grid(g0);
        let mut checked_changes = 0;
        for k in 0..200i64 {
            let before = reference.snapshot().clone();
            reference.step();
            let after = reference.snapshot().clone();
            let t = (g0 + k) * step_ms;

            // On the grid point: exactly that snapshot.
            let frame = timeline.at(t);
            assert_eq!(frame.len(), m.len());
            for i in 0..m.len() {
                assert_eq!(frame.up(i), before.up[i]);
                for (name, values) in gauges(&before) {
                    if name == "last_deploy" || name == "start_time" {
                        continue;
                    }
                    let got = match name {
                        "cpu" => frame.value(i, |s| &s.cpu),
                        "memory" => frame.value(i, |s| &s.memory),
                        "disk" => frame.value(i, |s| &s.disk),
                        "rps" => frame.value(i, |s| &s.rps),
                        "latency_median" => frame.value(i, |s| &s.latency_median),
                        "latency_spread" => frame.value(i, |s| &s.latency_spread),
                        "server_error" => frame.value(i, |s| &s.server_error),
                        "client_error" => frame.value(i, |s| &s.client_error),
                        "receive_bps" => frame.value(i, |s| &s.receive_bps),
                        _ => frame.value(i, |s| &s.transmit_bps),
                    };
                    assert_eq!(
                        got.to_bits(),
                        values[i].to_bits(),
                        "{name} of {i} at grid {}",
                        g0 + k
                    );
                }
                let count = frame.counter(i, |c| c.duration_count);
                assert_eq!(count, before.counters[i].duration_count);
                assert_eq!(frame.last_deploy(i), before.last_deploy[i]);
                assert_eq!(frame.start_time(i), before.start_time[i]);
            }

            // Half way: between the two grid values.
            let frame = timeline.at(t + step_ms / 2);
            for i in 0..m.len() {
                let (a, b) = (before.cpu[i], after.cpu[i]);
                let got = frame.value(i, |s| &s.cpu);
                assert!(
                    got >= a.min(b) && got <= a.max(b),
                    "cpu {got} not within [{a}, {b}]"
                );
                if before.up[i] == after.up[i] && !after.restarted[i] {
                    assert!((got - (a + b) / 2.0).abs() <= 1e-9 * a.abs().max(1.0));
                    let c = frame.counter(i, |c| c.duration_count);
                    let (ca, cb) = (
                        before.counters[i].duration_count,
                        after.counters[i].duration_count,
                    );
                    assert!(c >= ca && c <= cb, "count {c} not within [{ca}, {cb}]");
                } else {
                    // A discrete change waits for the grid point.
                    assert_eq!(got, a);
                }
            }

            // One second later: an up server's values have moved.
            let (f1, f2) = (timeline.at(t + 4_000), timeline.at(t + 5_000));
            for i in 0..m.len() {
                if before.up[i] && after.up[i] && !after.restarted[i] {
                    checked_changes += 1;
                    assert_ne!(
                        f1.value(i, |s| &s.cpu),
                        f2.value(i, |s| &s.cpu),
                        "cpu of {i}"
                    );
                    assert_ne!(
                        f1.counter(i, |c| c.requests[0]),
                        f2.counter(i, |c| c.requests[0])
                    );
                }
            }
        }
        assert!(checked_changes > 1_000);

        // Going back in time starts afresh and gives the same values.
        let frame = timeline.at((g0 + 10) * step_ms);
        let fresh = FleetSpec::new(&params, 4, m.clone()).fleet_at_grid(g0 + 10);
        assert_eq!(*frame.before, *fresh.snapshot());
    }
}
