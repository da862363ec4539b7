//! Discrete events on the grid (deploys, outages, cleanups, reboots), each a pure function
//! of the grid index.
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
        let first = (k - horizon).div_euclid(self.slot);
        (first..=k.div_euclid(self.slot))
            .rev()
            .filter_map(|j| self.in_slot(j).map(|(e, _)| e))
            .find(|&e| e <= k && e >= k - horizon)
    }

    /// Events whose start lies in `[from, to]`, with their draws, oldest first.
    fn between(&self, from: i64, to: i64) -> impl Iterator<Item = (i64, Draws)> + '_ {
        (from.div_euclid(self.slot)..=to.div_euclid(self.slot))
            .filter_map(|j| self.in_slot(j))
            .filter(move |&(e, _)| e >= from && e <= to)
    }
}

/// Events that restart a server from outside it (its role's deploys, and with the load-test
/// knobs its joining the fleet): whether one happens at a grid point, and the last one.
pub trait RestartEvents {
    fn at(&self, k: i64) -> bool;
    fn last_at_or_before(&self, k: i64, horizon: i64) -> Option<i64>;
}

impl RestartEvents for Poisson {
    fn at(&self, k: i64) -> bool {
        Poisson::at(self, k)
    }

    fn last_at_or_before(&self, k: i64, horizon: i64) -> Option<i64> {
        Poisson::last_at_or_before(self, k, horizon)
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
            .map(|(start, mut draws)| {
                let len = (draws.exponential(self.mean_len).ceil() as i64).clamp(1, self.max_len);
                (start, start + len)
            })
            .filter(move |&(_, end)| end > from)
    }

    pub fn down_at(&self, k: i64) -> bool {
        self.overlapping(k, k).next().is_some()
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
        self.overlapping(k - horizon, k)
            .map(|(_, end)| end)
            .filter(|&end| end <= k && !self.down_at(end))
            .max()
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
    fn periodic_events_fall_on_their_phase() {
        let p = Periodic::new(10, 3);
        assert!(p.at(3) && p.at(13) && p.at(-7) && !p.at(4));
        assert_eq!(p.last_at_or_before(12), 3);
        assert_eq!(p.last_at_or_before(13), 13);
    }
}
