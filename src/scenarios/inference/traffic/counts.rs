//! Distributions of token counts (`tokens = { input, output }`, the
//! sessions' per-turn counts): whole numbers from 1.

use std::sync::Arc;

use rand::{Rng, RngExt};
use rand_distr::{Distribution, StandardNormal};
use serde::Serialize;
use serde::ser::SerializeMap;

/// The largest token count a request may have (prompt or output).
pub const MAX_TOKENS: u32 = 10_000_000;

/// A distribution of token counts. Draws are whole numbers of at least 1.
#[derive(Clone, Debug, PartialEq)]
pub enum CountDist {
    Constant(u32),
    /// Rounded to the nearest whole count.
    LogNormal {
        median: f64,
        sigma: f64,
    },
    /// Every whole count from `min` to `max`, inclusive, equally likely.
    Uniform {
        min: u32,
        max: u32,
    },
    Empirical {
        file: String,
        samples: Arc<[u32]>,
    },
}

impl CountDist {
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> u32 {
        match self {
            CountDist::Constant(n) => *n,
            CountDist::LogNormal { median, sigma } => {
                let z: f64 = StandardNormal.sample(rng);
                (median * (sigma * z).exp()).round().clamp(1.0, MAX_TOKENS as f64) as u32
            }
            CountDist::Uniform { min, max } => rng.random_range(*min..=*max),
            CountDist::Empirical { samples, .. } => samples[rng.random_range(0..samples.len())],
        }
    }

    pub fn mean(&self) -> f64 {
        match self {
            CountDist::Constant(n) => *n as f64,
            CountDist::LogNormal { median, sigma } => median * (0.5 * sigma * sigma).exp(),
            CountDist::Uniform { min, max } => 0.5 * (*min as f64 + *max as f64),
            CountDist::Empirical { samples, .. } => {
                samples.iter().map(|&x| x as f64).sum::<f64>() / samples.len() as f64
            }
        }
    }

    /// The smallest count it can draw.
    pub fn min(&self) -> u32 {
        match self {
            CountDist::Constant(n) => *n,
            CountDist::LogNormal { .. } => 1,
            CountDist::Uniform { min, .. } => *min,
            CountDist::Empirical { samples, .. } => samples.iter().copied().min().unwrap_or(1),
        }
    }

    /// The share of draws above `x`, exactly.
    pub fn share_above(&self, x: u64) -> f64 {
        use statrs::distribution::{ContinuousCDF, Normal};
        match self {
            CountDist::Constant(n) => f64::from(u8::from(*n as u64 > x)),
            CountDist::LogNormal { median, sigma } => {
                // A draw is the rounded, clamped value: above x when the
                // unrounded one is at least x + 0.5.
                if x == 0 {
                    1.0
                } else if x >= MAX_TOKENS as u64 {
                    0.0
                } else if *sigma == 0.0 {
                    f64::from(u8::from(median.round() > x as f64))
                } else {
                    let z = ((x as f64 + 0.5) / median).ln() / sigma;
                    Normal::new(0.0, 1.0).expect("standard normal").sf(z)
                }
            }
            CountDist::Uniform { min, max } => {
                let above = (*max as u64).saturating_sub(x.max(*min as u64 - 1));
                above as f64 / (*max - *min + 1) as f64
            }
            CountDist::Empirical { samples, .. } => {
                samples.iter().filter(|&&n| n as u64 > x).count() as f64 / samples.len() as f64
            }
        }
    }

    /// The quantile function, for 0 < u < 1: the smallest count whose share
    /// of draws at or below it reaches u.
    pub fn quantile(&self, u: f64) -> u32 {
        use statrs::distribution::{ContinuousCDF, Normal};
        match self {
            CountDist::Constant(n) => *n,
            CountDist::LogNormal { median, sigma } => {
                let z = Normal::new(0.0, 1.0).expect("standard normal").inverse_cdf(u);
                (median * (sigma * z).exp()).round().clamp(1.0, MAX_TOKENS as f64) as u32
            }
            CountDist::Uniform { min, max } => {
                let span = (*max - *min + 1) as f64;
                (*min + ((u * span).ceil() as u32).saturating_sub(1)).min(*max)
            }
            CountDist::Empirical { samples, .. } => {
                let mut sorted = samples.to_vec();
                sorted.sort_unstable();
                sorted[((u * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len()) - 1]
            }
        }
    }

    /// The largest count it can draw (`None`: unbounded).
    pub fn max(&self) -> Option<u32> {
        match self {
            CountDist::Constant(n) => Some(*n),
            CountDist::LogNormal { .. } => None,
            CountDist::Uniform { max, .. } => Some(*max),
            CountDist::Empirical { samples, .. } => samples.iter().copied().max(),
        }
    }
}

impl Serialize for CountDist {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if let CountDist::Constant(n) = self {
            return s.serialize_u32(*n);
        }
        let mut map = s.serialize_map(None)?;
        match self {
            CountDist::Constant(_) => unreachable!("serialised above"),
            CountDist::LogNormal { median, sigma } => {
                map.serialize_entry("dist", "lognormal")?;
                map.serialize_entry("median", median)?;
                map.serialize_entry("sigma", sigma)?;
            }
            CountDist::Uniform { min, max } => {
                map.serialize_entry("dist", "uniform")?;
                map.serialize_entry("min", min)?;
                map.serialize_entry("max", max)?;
            }
            CountDist::Empirical { file, samples } => {
                map.serialize_entry("dist", "empirical")?;
                map.serialize_entry("file", file)?;
                map.serialize_entry("samples", &samples.len())?;
            }
        }
        map.end()
    }
}
