//! The bounded, mean-reverting random walk that every noisy signal is made of.

use super::params::WalkParams;

/// A walk's parameters turned into per-step factors for one grid resolution.
///
/// The Ornstein-Uhlenbeck process is stepped exactly rather than by Euler's method, so the
/// walk has the same statistics whatever the resolution: after `dt`, a deviation from the
/// mean keeps `exp(-dt / reversion)` of itself, and the noise added keeps the long-run
/// standard deviation at `stddev`.
#[derive(Debug, Clone, Copy)]
pub struct Walk {
    mean: f64,
    stddev: f64,
    keep: f64,
    kick: f64,
    min: f64,
    max: f64,
}

impl Walk {
    pub fn new(params: &WalkParams, dt_secs: f64) -> Walk {
        let reversion = params.reversion.as_secs_f64().max(1e-9);
        let keep = libm::exp(-dt_secs / reversion);
        Walk {
            mean: params.mean,
            stddev: params.stddev,
            keep,
            kick: params.stddev * (1.0 - keep * keep).sqrt(),
            min: params.min,
            max: params.max,
        }
    }

    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// What the walk is made of, to the bit: two walks alike have the same spans.
    pub fn bits(&self) -> [u64; 6] {
        [
            self.mean,
            self.stddev,
            self.keep,
            self.kick,
            self.min,
            self.max,
        ]
        .map(f64::to_bits)
    }

    /// One step from `x`, given a standard normal draw `z`.
    pub fn step(&self, x: f64, z: f64) -> f64 {
        (self.mean + (x - self.mean) * self.keep + self.kick * z).clamp(self.min, self.max)
    }

    /// The walk's exact transition over `steps` steps at once, and its bridge toward a
    /// value that far ahead: what lets a warm start leap over hours in a few draws.
    pub fn span(&self, steps: i64) -> Span {
        let steps = steps.max(1);
        let keep_n = self.keep.powi(steps as i32);
        let bridge = (1..=steps)
            .map(|r| {
                let kept = self.keep.powi(r as i32);
                // 1 - keep^(2r): the share of the stationary variance that r steps add.
                let added = |r: i64| 1.0 - self.keep.powi(2 * r as i32);
                let (pull, spread) = if added(r) > 0.0 {
                    let pull =
                        self.keep.powi(r as i32 - 1) * (1.0 - self.keep * self.keep) / added(r);
                    (pull, self.kick * (added(r - 1) / added(r)).max(0.0).sqrt())
                } else {
                    // No reversion at all (keep = 1): the walk has no noise either.
                    (1.0 / r as f64, 0.0)
                };
                BridgeStep { kept, pull, spread }
            })
            .collect();
        Span {
            keep: keep_n,
            kick: self.stddev * (1.0 - keep_n * keep_n).max(0.0).sqrt(),
            bridge,
        }
    }

    /// `span.steps()` steps from `x` at once, given a standard normal draw `z`: the same
    /// distribution as that many steps (bar the bounds, which the walks almost never reach).
    pub fn leap(&self, x: f64, z: f64, span: &Span) -> f64 {
        (self.mean + (x - self.mean) * span.keep + span.kick * z).clamp(self.min, self.max)
    }

    /// One step from `x` toward `target`, `remaining` steps ahead (1 to `span.steps()`), given
    /// a standard normal draw `z`: the walk's step conditioned on where it will be, so that
    /// the steps between two leaps have the walk's own statistics and end on the target.
    pub fn bridge(&self, x: f64, target: f64, remaining: i64, z: f64, span: &Span) -> f64 {
        if remaining <= 1 {
            return target;
        }
        let b = &span.bridge[(remaining - 1) as usize];
        let (dev, target_dev) = (x - self.mean, target - self.mean);
        let mean = self.mean + self.keep * dev + b.pull * (target_dev - b.kept * dev);
        (mean + b.spread * z).clamp(self.min, self.max)
    }
}

/// A walk over a fixed number of steps: its transition at once, and the coefficients of its
/// bridge for each number of steps remaining.
#[derive(Debug, Clone)]
pub struct Span {
    keep: f64,
    kick: f64,
    /// For `r` steps remaining, at `r - 1`.
    bridge: Vec<BridgeStep>,
}

impl Span {
    /// How many steps the span leaps.
    pub fn steps(&self) -> i64 {
        self.bridge.len() as i64
    }
}

/// The conditional step with `r` steps remaining: mean `keep * dev + pull * (target_dev -
/// kept * dev)` (`kept` = keep^r), standard deviation `spread`.
#[derive(Debug, Clone, Copy)]
struct BridgeStep {
    kept: f64,
    pull: f64,
    spread: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::noise::Key;
    use std::time::Duration;

    fn params(mean: f64, stddev: f64, min: f64, max: f64) -> WalkParams {
        WalkParams {
            mean,
            stddev,
            reversion: Duration::from_secs(300),
            min,
            max,
        }
    }

    #[test]
    fn stays_within_bounds() {
        let walk = Walk::new(&params(50.0, 40.0, 0.0, 100.0), 15.0);
        let key = Key::from_seed(3);
        let mut x = 50.0;
        for k in 0..50_000 {
            x = walk.step(x, key.draws(k).normal() * 3.0);
            assert!((0.0..=100.0).contains(&x), "{x} out of bounds at {k}");
        }
    }

    #[test]
    fn reverts_to_its_mean() {
        // Without noise a deviation decays by e after one reversion time.
        let walk = Walk::new(&params(10.0, 0.0, -100.0, 100.0), 30.0);
        let mut x = 20.0;
        for _ in 0..10 {
            x = walk.step(x, 0.0);
        }
        assert!(
            (x - (10.0 + 10.0 / std::f64::consts::E)).abs() < 1e-9,
            "{x}"
        );
    }

    /// A walk made of leaps every `every` steps and bridges between them, as servers
    /// walk: `n` values, one a step.
    fn leapt_and_bridged(walk: &Walk, every: i64, n: i64, seed: u64) -> Vec<f64> {
        let span = walk.span(every);
        let (steps, leaps) = (Key::from_seed(seed), Key::from_seed(seed + 1000));
        let mut x = walk.mean();
        let mut toward = walk.leap(x, leaps.draws(1).normal(), &span);
        let mut path = Vec::with_capacity(n as usize);
        for k in 1..=n {
            let remaining = every - (k - 1) % every;
            x = walk.bridge(x, toward, remaining, steps.draws(k).normal(), &span);
            if remaining == 1 {
                toward = walk.leap(x, leaps.draws(k / every + 1).normal(), &span);
            }
            path.push(x);
        }
        path
    }

    /// Mean, standard deviation and the autocorrelation at `lag` of `xs`.
    fn moments(xs: &[f64], lag: usize) -> (f64, f64, f64) {
        let n = xs.len() as f64;
        let mean = xs.iter().sum::<f64>() / n;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n;
        let cov = xs
            .windows(lag + 1)
            .map(|w| (w[0] - mean) * (w[lag] - mean))
            .sum::<f64>()
            / (n - lag as f64);
        (mean, var.sqrt(), cov / var)
    }

    #[test]
    fn leaps_and_bridges_have_the_statistics_of_steps() {
        // 300 s reversion on a 15 s grid, leaps every 20 steps (five minutes).
        let walk = Walk::new(&params(0.0, 2.0, -1e9, 1e9), 15.0);
        let keep: f64 = (-15.0f64 / 300.0).exp();
        let n = 400_000;
        let stepped: Vec<f64> = {
            let key = Key::from_seed(7);
            let mut x = 0.0;
            (0..n)
                .map(|k| {
                    x = walk.step(x, key.draws(k).normal());
                    x
                })
                .collect()
        };
        let leapt = leapt_and_bridged(&walk, 20, n, 7);
        for lag in [1usize, 7, 20, 33] {
            let (m1, sd1, r1) = moments(&stepped, lag);
            let (m2, sd2, r2) = moments(&leapt, lag);
            let expected = keep.powi(lag as i32);
            for (what, m, sd, r) in [("stepped", m1, sd1, r1), ("leapt", m2, sd2, r2)] {
                assert!(m.abs() < 0.1, "{what}: mean {m}");
                assert!((sd - 2.0).abs() < 0.08, "{what}: sd {sd}");
                assert!(
                    (r - expected).abs() < 0.02,
                    "{what}: lag {lag}: {r} vs {expected}"
                );
            }
        }
        // Within a span too: the steps just after a leap and just before the next move as
        // much as any (the bridge neither freezes nor jumps at the nodes).
        let step_sd = |offset: i64| {
            let d: Vec<f64> = (1..n / 20 - 1)
                .map(|j| (j * 20 + offset) as usize)
                .map(|i| leapt[i] - leapt[i - 1])
                .collect();
            moments(&d, 1).1
        };
        let expected = 2.0 * (2.0 * (1.0 - keep)).sqrt();
        for offset in [0, 1, 10, 19] {
            let sd = step_sd(offset);
            assert!(
                (sd - expected).abs() < 0.05 * expected,
                "offset {offset}: {sd} vs {expected}"
            );
        }
    }

    #[test]
    fn a_bridge_arrives_at_its_target_and_a_span_of_one_step_is_a_step() {
        let walk = Walk::new(&params(1.0, 0.5, -10.0, 10.0), 15.0);
        let span = walk.span(20);
        assert_eq!(span.steps(), 20);
        assert_eq!(walk.bridge(0.3, 1.7, 1, 2.5, &span), 1.7);
        let one = walk.span(1);
        for (x, z) in [(0.2, 0.0), (1.4, -1.3), (-3.0, 2.2)] {
            let (a, b) = (walk.step(x, z), walk.leap(x, z, &one));
            assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        }
        // A walk without noise bridges straight to its target.
        let still = Walk::new(&params(0.0, 0.0, -1.0, 1.0), 15.0);
        let span = still.span(4);
        assert_eq!(still.bridge(0.0, 0.0, 4, 1.0, &span), 0.0);
    }

    #[test]
    fn long_run_deviation_is_its_stddev_whatever_the_step() {
        for dt in [1.0, 15.0, 60.0] {
            let walk = Walk::new(&params(0.0, 2.0, -1e9, 1e9), dt);
            let key = Key::from_seed(4);
            let (mut x, mut sum, mut sum2) = (0.0, 0.0, 0.0);
            let n = 200_000;
            for k in 0..n {
                x = walk.step(x, key.draws(k).normal());
                sum += x;
                sum2 += x * x;
            }
            let mean = sum / n as f64;
            let sd = (sum2 / n as f64 - mean * mean).sqrt();
            assert!((sd - 2.0).abs() < 0.15, "dt {dt}: sd {sd}");
            assert!(mean.abs() < 0.3, "dt {dt}: mean {mean}");
        }
    }
}
