//! Seeded pseudo-random numbers and the samplers Thompson sampling needs.
//!
//! The crate never reaches for global randomness: every sampler takes a [`RandomSource`] from
//! the caller, so a bandit allocation is a pure function of its inputs and the seed.
//! [`Xoshiro256StarStar`] (seeded through [`SplitMix64`], as its authors recommend) is the
//! generator to use; any other generator can be adapted by implementing [`RandomSource`].

use core::f64::consts::PI;

/// A source of uniformly distributed 64-bit words.
pub trait RandomSource {
    /// The next uniformly distributed `u64`.
    fn next_u64(&mut self) -> u64;

    /// A uniform `f64` in `[0, 1)`, from the top 53 bits of [`RandomSource::next_u64`].
    fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }
}

/// SplitMix64 (Steele, Lea and Flood 2014): a tiny generator, used here to expand a 64-bit seed
/// into the state of [`Xoshiro256StarStar`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A generator starting from `seed`.
    pub fn new(seed: u64) -> Self {
        Self { state: seed }
    }
}

impl RandomSource for SplitMix64 {
    fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

/// xoshiro256** 1.0 (Blackman and Vigna 2018): fast, 256 bits of state, period 2²⁵⁶ − 1.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Xoshiro256StarStar {
    state: [u64; 4],
}

impl Xoshiro256StarStar {
    /// A generator whose state is four outputs of [`SplitMix64`] seeded with `seed`.
    pub fn seed_from_u64(seed: u64) -> Self {
        let mut seeder = SplitMix64::new(seed);
        Self::from_state([
            seeder.next_u64(),
            seeder.next_u64(),
            seeder.next_u64(),
            seeder.next_u64(),
        ])
    }

    /// A generator with exactly this state. The all-zero state, which would only ever produce
    /// zeros, is replaced by the state for seed 0.
    pub fn from_state(state: [u64; 4]) -> Self {
        if state == [0; 4] {
            return Self::seed_from_u64(0);
        }
        Self { state }
    }
}

impl RandomSource for Xoshiro256StarStar {
    fn next_u64(&mut self) -> u64 {
        let s = &mut self.state;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }
}

/// A standard normal draw (Box–Muller, one of the pair: simple and stateless).
pub fn standard_normal<R: RandomSource + ?Sized>(rng: &mut R) -> f64 {
    // 1 − U lies in (0, 1], so the logarithm is finite.
    let radius = (-2.0 * (1.0 - rng.next_f64()).ln()).sqrt();
    let angle = 2.0 * PI * rng.next_f64();
    radius * angle.cos()
}

/// A Gamma(`shape`, 1) draw for `shape > 0` (Marsaglia and Tsang 2000; for `shape < 1`, the
/// boost `Gamma(shape + 1) · U^(1/shape)`). Returns `NaN` for a non-positive or non-finite
/// shape.
pub fn gamma<R: RandomSource + ?Sized>(rng: &mut R, shape: f64) -> f64 {
    if !(shape.is_finite() && shape > 0.0) {
        return f64::NAN;
    }
    if shape < 1.0 {
        let boost = (1.0 - rng.next_f64()).powf(1.0 / shape);
        return gamma(rng, shape + 1.0) * boost;
    }
    let d = shape - 1.0 / 3.0;
    let c = 1.0 / (9.0 * d).sqrt();
    loop {
        let x = standard_normal(rng);
        let v = 1.0 + c * x;
        if v <= 0.0 {
            continue;
        }
        let v = v * v * v;
        let u = 1.0 - rng.next_f64();
        let x2 = x * x;
        if u < 1.0 - 0.0331 * x2 * x2 || u.ln() < 0.5 * x2 + d * (1.0 - v + v.ln()) {
            return d * v;
        }
    }
}

/// A Beta(`a`, `b`) draw, as `X / (X + Y)` with `X ~ Gamma(a)` and `Y ~ Gamma(b)`.
pub fn beta<R: RandomSource + ?Sized>(rng: &mut R, a: f64, b: f64) -> f64 {
    let x = gamma(rng, a);
    let y = gamma(rng, b);
    x / (x + y)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splitmix64_reference_output() {
        // First outputs for seed 0 of the reference implementation (splitmix64.c).
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
    }

    #[test]
    fn xoshiro_reference_output() {
        // xoshiro256** from state {1, 2, 3, 4}, as computed by the reference xoshiro256starstar.c.
        let mut rng = Xoshiro256StarStar::from_state([1, 2, 3, 4]);
        let first: Vec<u64> = (0..4).map(|_| rng.next_u64()).collect();
        assert_eq!(
            first,
            vec![11_520, 0, 1_509_978_240, 1_215_971_899_390_074_240]
        );
    }

    #[test]
    fn uniform_is_in_unit_interval() {
        let mut rng = Xoshiro256StarStar::seed_from_u64(7);
        for _ in 0..10_000 {
            let u = rng.next_f64();
            assert!((0.0..1.0).contains(&u));
        }
    }

    #[test]
    fn sampler_moments_are_right() {
        // Means and variances of 200 000 draws, within about five standard errors.
        let mut rng = Xoshiro256StarStar::seed_from_u64(42);
        let draws = 200_000;
        let moments = |samples: &[f64]| {
            let mean = samples.iter().sum::<f64>() / samples.len() as f64;
            let variance = samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>()
                / (samples.len() - 1) as f64;
            (mean, variance)
        };
        let normal: Vec<f64> = (0..draws).map(|_| standard_normal(&mut rng)).collect();
        let (mean, variance) = moments(&normal);
        assert!(mean.abs() < 0.012 && (variance - 1.0).abs() < 0.016);
        for shape in [0.3, 1.0, 2.5, 40.0] {
            let samples: Vec<f64> = (0..draws).map(|_| gamma(&mut rng, shape)).collect();
            let (mean, variance) = moments(&samples);
            let tolerance = 5.0 * (shape / draws as f64).sqrt();
            assert!(
                (mean - shape).abs() < tolerance,
                "shape {shape}: mean {mean}"
            );
            assert!(
                (variance - shape).abs() < 12.0 * tolerance * shape.sqrt().max(1.0),
                "shape {shape}: variance {variance}"
            );
        }
        let samples: Vec<f64> = (0..draws).map(|_| beta(&mut rng, 3.0, 7.0)).collect();
        let (mean, _) = moments(&samples);
        assert!((mean - 0.3).abs() < 0.002);
        assert!(gamma(&mut rng, 0.0).is_nan());
    }
}
