//! Summaries of a metric across replications.
//!
//! Quantiles are type 7 of Hyndman and Fan (R's and NumPy's default): with the
//! sorted sample x(0..n), q(p) = x(h) + (h - floor h)(x(floor h + 1) - x(floor h)),
//! h = (n - 1) p. Confidence intervals are Student-t with n - 1 degrees of
//! freedom around the mean, with the unbiased (n - 1) variance.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// The probabilities reported as `p05` … `p99`.
pub const QUANTILES: [f64; 5] = [0.05, 0.25, 0.50, 0.75, 0.95];
pub const P99: f64 = 0.99;

#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    pub n: usize,
    pub mean: f64,
    pub std: f64,
    pub sem: f64,
    pub ci95_low: f64,
    pub ci95_high: f64,
    pub min: f64,
    pub p05: f64,
    pub p25: f64,
    pub p50: f64,
    pub p75: f64,
    pub p95: f64,
    pub p99: f64,
    pub max: f64,
}

impl Summary {
    pub const COLUMNS: [&'static str; 14] =
        ["n", "mean", "std", "sem", "ci95_low", "ci95_high", "min", "p05", "p25", "p50", "p75", "p95", "p99", "max"];

    /// Summarises `values` (reordered in place). With fewer than two values,
    /// the spread columns are NaN.
    pub fn of(values: &mut [f64]) -> Summary {
        let n = values.len();
        if n == 0 {
            let nan = f64::NAN;
            return Summary {
                n,
                mean: nan,
                std: nan,
                sem: nan,
                ci95_low: nan,
                ci95_high: nan,
                min: nan,
                p05: nan,
                p25: nan,
                p50: nan,
                p75: nan,
                p95: nan,
                p99: nan,
                max: nan,
            };
        }
        // Sums run in index order, so they do not depend on the thread count.
        let rough = values.iter().sum::<f64>() / n as f64;
        // One correction pass removes the rounding of the first sum, so a
        // constant column has exactly its value as mean and zero spread.
        // An infinite value (a percentile over arrivals that were not all
        // served) makes the mean infinite, not NaN.
        let mean =
            if rough.is_infinite() { rough } else { rough + values.iter().map(|x| x - rough).sum::<f64>() / n as f64 };
        let (std, sem, half) = if n > 1 {
            let var = values.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1) as f64;
            let std = var.sqrt();
            let sem = std / (n as f64).sqrt();
            (std, sem, t_quantile_975(n - 1) * sem)
        } else {
            (f64::NAN, f64::NAN, f64::NAN)
        };
        // Constant columns (flags, prices, zero counts) are common: every
        // quantile is the value, with no selection to run.
        let first = values[0];
        let q = if values.iter().all(|&x| x.to_bits() == first.to_bits()) {
            [first; 8].to_vec()
        } else {
            quantiles(values, &[0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0])
        };
        Summary {
            n,
            mean,
            std,
            sem,
            ci95_low: mean - half,
            ci95_high: mean + half,
            min: q[0],
            p05: q[1],
            p25: q[2],
            p50: q[3],
            p75: q[4],
            p95: q[5],
            p99: q[6],
            max: q[7],
        }
    }

    pub fn values(&self) -> [f64; 14] {
        [
            self.n as f64,
            self.mean,
            self.std,
            self.sem,
            self.ci95_low,
            self.ci95_high,
            self.min,
            self.p05,
            self.p25,
            self.p50,
            self.p75,
            self.p95,
            self.p99,
            self.max,
        ]
    }
}

/// The 0.975 quantile of Student's t with `df` degrees of freedom.
pub fn t_quantile_975(df: usize) -> f64 {
    StudentsT::new(0.0, 1.0, df as f64).map(|t| t.inverse_cdf(0.975)).unwrap_or(f64::NAN)
}

/// Type-7 quantiles of `values` at ascending probabilities `probs`.
///
/// Uses selection rather than a full sort: each needed order statistic is
/// selected within the part of the slice not yet fixed, which is O(n) per
/// order statistic instead of O(n log n) for the sort.
pub fn quantiles(values: &mut [f64], probs: &[f64]) -> Vec<f64> {
    let n = values.len();
    assert!(n > 0, "quantiles of an empty sample");
    debug_assert!(probs.windows(2).all(|w| w[0] <= w[1]));
    let mut fixed_below = 0; // values[..fixed_below] are in final sorted position
    let mut order_stat = |k: usize, values: &mut [f64]| -> f64 {
        if k < fixed_below {
            return values[k];
        }
        let (_, kth, _) = values[fixed_below..].select_nth_unstable_by(k - fixed_below, f64::total_cmp);
        let x = *kth;
        fixed_below = k + 1;
        x
    };
    probs
        .iter()
        .map(|&p| {
            let h = (n - 1) as f64 * p;
            let lo = h.floor() as usize;
            let x_lo = order_stat(lo, values);
            if lo + 1 >= n || h == lo as f64 {
                x_lo
            } else {
                let x_hi = order_stat(lo + 1, values);
                x_lo + (h - lo as f64) * (x_hi - x_lo)
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type7_quantiles_match_numpy() {
        // numpy.quantile([1, 2, 3, 4, 10], [0, .05, .25, .5, .75, .95, .99, 1])
        let mut x = [10.0, 3.0, 1.0, 4.0, 2.0];
        let q = quantiles(&mut x, &[0.0, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0]);
        let expected = [1.0, 1.2, 2.0, 3.0, 4.0, 8.8, 9.76, 10.0];
        for (a, b) in q.iter().zip(expected) {
            assert!((a - b).abs() < 1e-12, "{q:?}");
        }
    }

    #[test]
    fn quantiles_agree_with_a_full_sort() {
        let mut x: Vec<f64> = (0..1001).map(|i| ((i * 7919) % 1009) as f64 * 0.5).collect();
        let mut sorted = x.clone();
        sorted.sort_by(f64::total_cmp);
        let probs = [0.0, 0.013, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0];
        let q = quantiles(&mut x, &probs);
        for (p, got) in probs.iter().zip(q) {
            let h = 1000.0 * p;
            let lo = h.floor() as usize;
            let hi = (lo + 1).min(1000);
            let want = sorted[lo] + (h - lo as f64) * (sorted[hi] - sorted[lo]);
            assert!((got - want).abs() < 1e-9, "p = {p}: {got} vs {want}");
        }
    }

    #[test]
    fn summary_uses_unbiased_variance_and_student_t() {
        let mut x = [2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0];
        let s = Summary::of(&mut x);
        assert_eq!(s.n, 8);
        assert_eq!(s.mean, 5.0);
        assert!((s.std - (32.0_f64 / 7.0).sqrt()).abs() < 1e-12);
        // t(0.975, 7) = 2.364624...
        let half = 2.364_624_251_592_785 * s.std / 8f64.sqrt();
        assert!((s.ci95_high - 5.0 - half).abs() < 1e-9);
        assert!((s.ci95_low - 5.0 + half).abs() < 1e-9);
        assert_eq!((s.min, s.max, s.p50), (2.0, 9.0, 4.5));
    }

    #[test]
    fn a_constant_column_has_its_value_everywhere() {
        let s = Summary::of(&mut [2.5; 1000]);
        assert_eq!((s.mean, s.std, s.min, s.p05, s.p50, s.p99, s.max), (2.5, 0.0, 2.5, 2.5, 2.5, 2.5, 2.5));
        assert_eq!((s.ci95_low, s.ci95_high), (2.5, 2.5));
    }

    #[test]
    fn single_value_has_no_spread() {
        let s = Summary::of(&mut [3.0]);
        assert_eq!((s.mean, s.min, s.p99, s.max), (3.0, 3.0, 3.0, 3.0));
        assert!(s.std.is_nan() && s.ci95_low.is_nan());
    }

    #[test]
    fn an_infinite_value_makes_the_mean_infinite_and_the_spread_undefined() {
        let s = Summary::of(&mut [1.0, f64::INFINITY, 2.0]);
        assert_eq!((s.mean, s.min, s.max), (f64::INFINITY, 1.0, f64::INFINITY));
        assert!(s.std.is_nan() && s.ci95_high.is_nan());
    }
}
