//! Distributions of durations, as experiment files describe them.

use std::fmt;
use std::sync::Arc;

use rand::{Rng, RngExt};
use rand_distr::{Distribution, Exp1, StandardNormal};
use serde::Serialize;

use crate::base::time::SimTime;

/// A distribution of durations. Parameters are in seconds.
#[derive(Clone, Debug, PartialEq)]
pub enum Dist {
    Constant(SimTime),
    Exponential {
        mean: f64,
    },
    Uniform {
        min: f64,
        max: f64,
    },
    LogNormal {
        median: f64,
        sigma: f64,
    },
    Weibull {
        shape: f64,
        scale: f64,
    },
    /// Samples drawn with equal weight from a file of observations.
    Empirical {
        file: String,
        samples: Arc<[f64]>,
    },
}

impl Dist {
    /// One draw, converted to ticks by `SimTime::from_secs_f64`.
    pub fn sample<R: Rng + ?Sized>(&self, rng: &mut R) -> SimTime {
        match self {
            Dist::Constant(t) => *t,
            _ => SimTime::from_secs_f64(self.sample_secs(rng)),
        }
    }

    pub fn sample_secs<R: Rng + ?Sized>(&self, rng: &mut R) -> f64 {
        match self {
            Dist::Constant(t) => t.as_secs_f64(),
            Dist::Exponential { mean } => {
                let e: f64 = Exp1.sample(rng);
                mean * e
            }
            Dist::Uniform { min, max } => min + (max - min) * rng.random::<f64>(),
            Dist::LogNormal { median, sigma } => {
                let z: f64 = StandardNormal.sample(rng);
                median * (sigma * z).exp()
            }
            Dist::Weibull { shape, scale } => {
                let e: f64 = Exp1.sample(rng);
                scale * e.powf(1.0 / shape)
            }
            Dist::Empirical { samples, .. } => samples[rng.random_range(0..samples.len())],
        }
    }

    /// The exact mean, in seconds.
    pub fn mean_secs(&self) -> f64 {
        match self {
            Dist::Constant(t) => t.as_secs_f64(),
            Dist::Exponential { mean } => *mean,
            Dist::Uniform { min, max } => 0.5 * (min + max),
            Dist::LogNormal { median, sigma } => median * (0.5 * sigma * sigma).exp(),
            Dist::Weibull { shape, scale } => scale * statrs::function::gamma::gamma(1.0 + 1.0 / shape),
            Dist::Empirical { samples, .. } => samples.iter().sum::<f64>() / samples.len() as f64,
        }
    }

    /// The quantile function, in seconds, for 0 < u < 1.
    pub fn quantile_secs(&self, u: f64) -> f64 {
        use statrs::distribution::{ContinuousCDF, Normal};
        match self {
            Dist::Constant(t) => t.as_secs_f64(),
            Dist::Exponential { mean } => -mean * (-u).ln_1p(),
            Dist::Uniform { min, max } => min + (max - min) * u,
            Dist::LogNormal { median, sigma } => {
                let z = Normal::new(0.0, 1.0).expect("standard normal").inverse_cdf(u);
                median * (sigma * z).exp()
            }
            Dist::Weibull { shape, scale } => scale * (-(-u).ln_1p()).powf(1.0 / shape),
            Dist::Empirical { samples, .. } => {
                let mut sorted = samples.to_vec();
                crate::base::stats::quantiles(&mut sorted, &[u])[0]
            }
        }
    }

    /// The squared coefficient of variation, Var/mean² (0 for a constant, 1
    /// for an exponential).
    pub fn scv(&self) -> f64 {
        let mean = self.mean_secs();
        if mean <= 0.0 {
            return 0.0;
        }
        let var = match self {
            Dist::Constant(_) => 0.0,
            Dist::Exponential { mean } => mean * mean,
            Dist::Uniform { min, max } => (max - min).powi(2) / 12.0,
            Dist::LogNormal { sigma, .. } => ((sigma * sigma).exp() - 1.0) * mean * mean,
            Dist::Weibull { shape, scale } => {
                let g = statrs::function::gamma::gamma;
                scale * scale * g(1.0 + 2.0 / shape) - mean * mean
            }
            Dist::Empirical { samples, .. } => {
                samples.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / samples.len() as f64
            }
        };
        var / (mean * mean)
    }

    pub fn as_constant(&self) -> Option<SimTime> {
        match self {
            Dist::Constant(t) => Some(*t),
            _ => None,
        }
    }
}

impl fmt::Display for Dist {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = |secs: f64| SimTime::from_secs_f64(secs);
        match self {
            Dist::Constant(t) => write!(f, "{t}"),
            Dist::Exponential { mean } => write!(f, "exponential(mean = {})", d(*mean)),
            Dist::Uniform { min, max } => write!(f, "uniform({} .. {})", d(*min), d(*max)),
            Dist::LogNormal { median, sigma } => {
                write!(f, "lognormal(median = {}, sigma = {sigma})", d(*median))
            }
            Dist::Weibull { shape, scale } => {
                write!(f, "weibull(shape = {shape}, scale = {})", d(*scale))
            }
            Dist::Empirical { file, samples } => {
                write!(f, "empirical({file}, {} samples)", samples.len())
            }
        }
    }
}

/// Serialises in the experiment file's syntax: a duration string for a
/// constant, else `{ dist = "...", ... }` with durations as strings.
impl Serialize for Dist {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let d = |secs: f64| SimTime::from_secs_f64(secs);
        let mut map = match self {
            Dist::Constant(t) => return t.serialize(s),
            _ => s.serialize_map(None)?,
        };
        match self {
            Dist::Constant(_) => unreachable!("returned above"),
            Dist::Exponential { mean } => {
                map.serialize_entry("dist", "exponential")?;
                map.serialize_entry("mean", &d(*mean))?;
            }
            Dist::Uniform { min, max } => {
                map.serialize_entry("dist", "uniform")?;
                map.serialize_entry("min", &d(*min))?;
                map.serialize_entry("max", &d(*max))?;
            }
            Dist::LogNormal { median, sigma } => {
                map.serialize_entry("dist", "lognormal")?;
                map.serialize_entry("median", &d(*median))?;
                map.serialize_entry("sigma", sigma)?;
            }
            Dist::Weibull { shape, scale } => {
                map.serialize_entry("dist", "weibull")?;
                map.serialize_entry("shape", shape)?;
                map.serialize_entry("scale", &d(*scale))?;
            }
            Dist::Empirical { file, samples } => {
                map.serialize_entry("dist", "empirical")?;
                map.serialize_entry("file", file)?;
                map.serialize_entry("samples", &samples.len())?;
            }
        }
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Purpose, Streams};

    fn sample_mean(d: &Dist, n: usize) -> (f64, f64) {
        let mut rng = Streams::new(11, 0).rng(Purpose::Startup);
        let xs: Vec<f64> = (0..n).map(|_| d.sample(&mut rng).as_secs_f64()).collect();
        let mean = xs.iter().sum::<f64>() / n as f64;
        let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
        (mean, (var / n as f64).sqrt())
    }

    #[test]
    fn sample_means_match_exact_means() {
        let samples: Arc<[f64]> = vec![1.0, 2.0, 6.0].into();
        for d in [
            Dist::Exponential { mean: 900.0 },
            Dist::Uniform { min: 240.0, max: 480.0 },
            Dist::LogNormal { median: 0.04, sigma: 0.3 },
            Dist::Weibull { shape: 0.8, scale: 36000.0 },
            Dist::Weibull { shape: 2.0, scale: 100.0 },
            Dist::Empirical { file: "x".into(), samples },
        ] {
            let (mean, sem) = sample_mean(&d, 200_000);
            let z = (mean - d.mean_secs()) / sem;
            assert!(z.abs() < 4.0, "{d}: sample mean {mean}, exact {}, z = {z}", d.mean_secs());
        }
    }

    #[test]
    fn scv_matches_sampled_variance() {
        let samples: Arc<[f64]> = vec![1.0, 2.0, 6.0].into();
        for d in [
            Dist::Exponential { mean: 2.0 },
            Dist::Uniform { min: 1.0, max: 3.0 },
            Dist::LogNormal { median: 0.04, sigma: 0.3 },
            Dist::Weibull { shape: 2.0, scale: 1.0 },
            Dist::Empirical { file: "x".into(), samples },
        ] {
            let mut rng = Streams::new(5, 0).rng(Purpose::ServiceTime);
            let xs: Vec<f64> = (0..400_000).map(|_| d.sample_secs(&mut rng)).collect();
            let mean = xs.iter().sum::<f64>() / xs.len() as f64;
            let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / xs.len() as f64;
            assert!((var / (mean * mean) / d.scv() - 1.0).abs() < 0.03, "{d}: {} vs {}", var / mean / mean, d.scv());
        }
        assert_eq!(Dist::Constant(SimTime::from_secs(1)).scv(), 0.0);
    }

    #[test]
    fn quantiles_invert_the_samplers() {
        for d in [
            Dist::Exponential { mean: 2.0 },
            Dist::Uniform { min: 1.0, max: 3.0 },
            Dist::LogNormal { median: 0.04, sigma: 0.3 },
            Dist::Weibull { shape: 0.7, scale: 1.0 },
        ] {
            let mut rng = Streams::new(6, 0).rng(Purpose::ServiceTime);
            for u in [0.1, 0.5, 0.9, 0.99] {
                let q = d.quantile_secs(u);
                let below = (0..100_000).filter(|_| d.sample_secs(&mut rng) <= q).count() as f64 / 100_000.0;
                assert!((below - u).abs() < 0.006, "{d} u={u}: {below}");
            }
        }
    }

    #[test]
    fn constant_is_exact() {
        let d = Dist::Constant(SimTime::from_mins(5));
        let mut rng = Streams::new(1, 0).rng(Purpose::Startup);
        assert_eq!(d.sample(&mut rng), SimTime::from_mins(5));
        assert_eq!(d.mean_secs(), 300.0);
    }
}
