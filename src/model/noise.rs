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

use std::sync::OnceLock;

const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a bijection on u64 with good avalanche.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Every random stream the model draws from, in one place so that no two uses share
/// draws. A stream hangs under the fleet's key (`Key::from_seed`) or under one server's key
/// (`Stream::Servers` then the server's index); ids need only differ among streams under
/// the same key, and each id is fixed for good: changing one changes every draw below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    /// Under the fleet's key: one key per server, by index.
    Servers,
    /// Under the fleet's key: one deploy process per role, by role index.
    Deploys,
    /// Under the fleet's key: the slots of random incidents.
    RandomIncidents,
    /// Under the fleet's key: which servers an incident's `share=` target holds.
    IncidentShares,
    /// Under the fleet's key: which machines are replaced in each churn interval.
    Churn,
    /// Under a server's key: the walks' normal draws, one set per grid point.
    Walks,
    /// Under a server's key: outages.
    Outages,
    /// Under a server's key: disk cleanups.
    Cleanups,
    /// Under a server's key: the phases of periodic events (rotation, reboots).
    Phases,
    /// Under a server's key: bursts of CPU, one set of draws per slot.
    Bursts,
    /// Under a server's key: the walks' leaps, one set of normal draws per node.
    WalkNodes,
}

impl Stream {
    /// The id mixed into the key.
    pub const fn id(self) -> u64 {
        match self {
            Stream::Servers => 1,
            Stream::Deploys => 2,
            Stream::RandomIncidents => 3,
            Stream::IncidentShares => 4,
            Stream::Churn => 5,
            Stream::Walks => 1,
            Stream::Outages => 2,
            Stream::Cleanups => 3,
            Stream::Phases => 4,
            Stream::Bursts => 5,
            Stream::WalkNodes => 6,
        }
    }
}

/// A named random stream: derived from the seed and refined by stream ids and indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Key(u64);

impl Key {
    pub fn from_seed(seed: u64) -> Key {
        Key(mix(seed ^ GOLDEN))
    }

    /// A sub-stream by number: `key.stream(Stream::Servers).with(index)` is the key of
    /// one server.
    pub fn with(self, part: u64) -> Key {
        Key(mix(self.0 ^ mix(part.wrapping_add(GOLDEN))))
    }

    /// The sub-stream `stream` of this key.
    pub fn stream(self, stream: Stream) -> Key {
        self.with(stream.id())
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

    /// Standard normal, by the ziggurat method (Marsaglia and Tsang; Doornik's variant,
    /// which needs no integer tables): 99% of draws cost one random word, a multiplication
    /// and a comparison, where Box-Muller costs a logarithm, a square root and a sine. The
    /// model draws six a step per server, so this is most of a CSV row's randomness.
    pub fn normal(&mut self) -> f64 {
        self.normal_from(ziggurat())
    }

    /// `n` normal draws, one after the other: what `normal` gives `n` times over (the
    /// table looked up once).
    pub fn normals<const N: usize>(&mut self) -> [f64; N] {
        let zig = ziggurat();
        let mut draws = [0.0; N];
        for z in &mut draws {
            *z = self.normal_from(zig);
        }
        draws
    }

    /// `normal`, its common case inline, the rest (one draw in a hundred) out of line.
    #[inline]
    fn normal_from(&mut self, zig: &Ziggurat) -> f64 {
        let bits = self.next_u64();
        // The top 53 bits make the uniform, the low 7 (independent of them) the layer.
        let u = 2.0 * ((bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)) - 1.0;
        let i = (bits & (ZIG_LAYERS as u64 - 1)) as usize;
        // Inside the layer's rectangle, under the curve everywhere: accept.
        if u.abs() < zig.ratio[i] {
            return u * zig.x[i];
        }
        self.normal_outside(zig, u, i)
    }

    /// `normal` from a first word that fell outside its layer's rectangle (`u` and layer
    /// `i` drawn from it).
    #[cold]
    #[inline(never)]
    fn normal_outside(&mut self, zig: &Ziggurat, mut u: f64, mut i: usize) -> f64 {
        loop {
            // The base layer's overhang is the tail beyond R.
            if i == 0 {
                return self.normal_tail(u < 0.0);
            }
            // In the wedge between the rectangle and the curve: accept under the curve.
            let x = u * zig.x[i];
            let f0 = libm::exp(-0.5 * (zig.x[i] * zig.x[i] - x * x));
            let f1 = libm::exp(-0.5 * (zig.x[i + 1] * zig.x[i + 1] - x * x));
            if f1 + self.uniform() * (f0 - f1) < 1.0 {
                return x;
            }
            let bits = self.next_u64();
            u = 2.0 * ((bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)) - 1.0;
            i = (bits & (ZIG_LAYERS as u64 - 1)) as usize;
            if u.abs() < zig.ratio[i] {
                return u * zig.x[i];
            }
        }
    }

    /// A normal draw beyond `ZIG_R` (Marsaglia's tail method), negated if `negative`.
    fn normal_tail(&mut self, negative: bool) -> f64 {
        loop {
            let x = libm::log(1.0 - self.uniform()) / ZIG_R;
            let y = libm::log(1.0 - self.uniform());
            if -2.0 * y >= x * x {
                return if negative { x - ZIG_R } else { ZIG_R - x };
            }
        }
    }

    /// Exponential with the given mean.
    pub fn exponential(&mut self, mean: f64) -> f64 {
        -mean * libm::log(1.0 - self.uniform())
    }
}

/// The ziggurat's layers, its base layer's right edge and the layers' common area, for
/// 128 layers (Marsaglia and Tsang, 2000).
const ZIG_LAYERS: usize = 128;
const ZIG_R: f64 = 3.442619855899;
const ZIG_V: f64 = 9.91256303526217e-3;

/// The layers' right edges, from the base up (`x[0]` is the base's pseudo-width, V / f(R),
/// and `x[ZIG_LAYERS]` the top, 0), and each layer's share lying under the layer above.
struct Ziggurat {
    x: [f64; ZIG_LAYERS + 1],
    ratio: [f64; ZIG_LAYERS],
}

/// Built once, with `libm`, so the same on every platform.
fn ziggurat() -> &'static Ziggurat {
    static TABLE: OnceLock<Ziggurat> = OnceLock::new();
    TABLE.get_or_init(|| {
        let mut x = [0.0; ZIG_LAYERS + 1];
        let mut f = libm::exp(-0.5 * ZIG_R * ZIG_R);
        x[0] = ZIG_V / f;
        x[1] = ZIG_R;
        for i in 2..ZIG_LAYERS {
            x[i] = libm::sqrt(-2.0 * libm::log(ZIG_V / x[i - 1] + f));
            f = libm::exp(-0.5 * x[i] * x[i]);
        }
        let ratio = std::array::from_fn(|i| x[i + 1] / x[i]);
        Ziggurat { x, ratio }
    })
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

    /// The standard normal CDF, from `erfc`.
    fn phi(x: f64) -> f64 {
        0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
    }

    #[test]
    fn normal_follows_the_normal_distribution_into_its_tails() {
        let key = Key::from_seed(5);
        let n = 2_000_000;
        let mut draws: Vec<f64> = (0..n).map(|i| key.draws(i).normal()).collect();
        draws.sort_by(f64::total_cmp);
        // Kolmogorov-Smirnov: the largest gap between the empirical and the true CDF.
        let ks = draws
            .iter()
            .enumerate()
            .map(|(j, &x)| {
                let p = phi(x);
                (p - j as f64 / n as f64)
                    .abs()
                    .max((p - (j + 1) as f64 / n as f64).abs())
            })
            .fold(0.0, f64::max);
        // The 0.1% critical value is 1.95 / sqrt(n): about 0.0014 here.
        assert!(ks < 0.0014, "KS distance {ks}");
        // The layers' edges and the tail beyond R = 3.44 (drawn by its own method): each
        // side's share beyond z, against the truth (standard errors of a few percent).
        for z in [1.0, 2.0, 3.0, 3.44, 3.8, 4.2] {
            let expected = (1.0 - phi(z)) * n as f64;
            for (side, count) in [
                ("above", draws.iter().filter(|&&x| x > z).count()),
                ("below", draws.iter().filter(|&&x| x < -z).count()),
            ] {
                let sd = expected.sqrt();
                assert!(
                    (count as f64 - expected).abs() < 4.0 * sd + 1.0,
                    "{side} {z}: {count} draws, expected {expected:.0}"
                );
            }
        }
    }

    #[test]
    fn the_ziggurat_layers_have_equal_areas() {
        let zig = ziggurat();
        let f = |x: f64| libm::exp(-0.5 * x * x);
        // Each layer i >= 1 is the rectangle from 0 to x[i], between f(x[i]) and f(x[i+1]).
        for i in 1..ZIG_LAYERS {
            let area = zig.x[i] * (f(zig.x[i + 1]) - f(zig.x[i]));
            assert!((area / ZIG_V - 1.0).abs() < 1e-6, "layer {i}: {area}");
        }
        assert!(zig.x[ZIG_LAYERS - 1] > 0.0 && zig.x[ZIG_LAYERS] == 0.0);
        assert!(zig.x.windows(2).skip(1).all(|w| w[0] > w[1]));
    }

    #[test]
    fn exponential_has_its_mean() {
        let key = Key::from_seed(2);
        let n = 100_000;
        let mean: f64 = (0..n).map(|i| key.draws(i).exponential(3.0)).sum::<f64>() / n as f64;
        assert!((mean - 3.0).abs() < 0.06, "mean {mean}");
    }
}
