//! Counter-based randomness.
//!
//! Every random number the model uses is a pure function of (seed, stream, index) rather
//! than the next draw of a sequential generator. That is what makes any grid point of any
//! server computable on its own: the exporter can start "now" without replaying history,
//! `generate` can start anywhere, and adding servers never shifts another server's draws.
//!
//! The mixer is SplitMix64's finaliser; transcendental functions come from `libm` (a pure
//! Rust libm) rather than the platform's, so the same seed gives the same bits on glibc,
//! musl and macOS alike.

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a bijection on u64 with good avalanche.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A named random stream: derived from the seed and refined by stream ids and indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key(u64);

impl Key {
    pub fn from_seed(seed: u64) -> Key {
        Key(mix(seed ^ GOLDEN))
    }

    /// A sub-stream: `key.with(SERVER).with(index)` is the stream of one server.
    pub fn with(self, part: u64) -> Key {
        Key(mix(self.0 ^ mix(part.wrapping_add(GOLDEN))))
    }

    /// The draws of this stream at one index (a grid point, an event slot).
    pub fn draws(self, index: i64) -> Draws {
        Draws {
            state: mix(self.0 ^ (index as u64).wrapping_mul(GOLDEN)),
        }
    }
}

/// A short sequence of draws for one (stream, index): take them in a fixed order.
#[derive(Debug, Clone)]
pub struct Draws {
    state: u64,
}

impl Draws {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN);
        mix(self.state)
    }

    /// Uniform in [0, 1), with 53 random bits.
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Standard normal, by Box-Muller (one of the pair).
    pub fn normal(&mut self) -> f64 {
        let u1 = 1.0 - self.uniform(); // (0, 1]: ln never sees 0
        let u2 = self.uniform();
        libm::sqrt(-2.0 * libm::log(u1)) * libm::cos(std::f64::consts::TAU * u2)
    }

    /// Two independent standard normals, by Box-Muller (both of the pair): half the
    /// logarithms and square roots of two `normal()`s, which matters in the model's step.
    pub fn normal_pair(&mut self) -> (f64, f64) {
        let u1 = 1.0 - self.uniform();
        let u2 = self.uniform();
        let r = libm::sqrt(-2.0 * libm::log(u1));
        let (sin, cos) = libm::sincos(std::f64::consts::TAU * u2);
        (r * cos, r * sin)
    }

    /// Exponential with the given mean.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * libm::log(1.0 - self.uniform())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_key_and_index_give_same_draws() {
        let k = Key::from_seed(7).with(3);
        let mut d1 = k.draws(100);
        let mut d2 = k.draws(100);
        for _ in 0..10 {
            assert_eq!(d1.uniform().to_bits(), d2.uniform().to_bits());
        }
        assert_ne!(k.draws(100).uniform(), k.draws(101).uniform());
        assert_ne!(
            Key::from_seed(7).with(3).draws(5).uniform(),
            Key::from_seed(7).with(4).draws(5).uniform()
        );
        assert_ne!(
            Key::from_seed(7).draws(5).uniform(),
            Key::from_seed(8).draws(5).uniform()
        );
    }

    #[test]
    fn uniform_and_normal_have_the_right_moments() {
        let key = Key::from_seed(1);
        let n = 200_000;
        let (mut su, mut sn, mut sn2) = (0.0, 0.0, 0.0);
        for i in 0..n {
            let mut d = key.draws(i);
            let u = d.uniform();
            assert!((0.0..1.0).contains(&u));
            su += u;
            let z = d.normal();
            sn += z;
            sn2 += z * z;
        }
        let n = n as f64;
        assert!((su / n - 0.5).abs() < 0.005, "uniform mean {}", su / n);
        assert!((sn / n).abs() < 0.01, "normal mean {}", sn / n);
        assert!((sn2 / n - 1.0).abs() < 0.02, "normal variance {}", sn2 / n);
    }

    #[test]
    fn exponential_has_its_mean() {
        let key = Key::from_seed(2);
        let n = 100_000;
        let mean: f64 = (0..n).map(|i| key.draws(i).exponential(3.0)).sum::<f64>() / n as f64;
        assert!((mean - 3.0).abs() < 0.06, "mean {mean}");
    }
}
