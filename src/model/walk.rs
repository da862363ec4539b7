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
            keep,
            kick: params.stddev * (1.0 - keep * keep).sqrt(),
            min: params.min,
            max: params.max,
        }
    }

    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// One step from `x`, given a standard normal draw `z`.
    pub fn step(&self, x: f64, z: f64) -> f64 {
        (self.mean + (x - self.mean) * self.keep + self.kick * z).clamp(self.min, self.max)
    }
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
