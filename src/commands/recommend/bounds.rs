//! The statistical pieces of `recommend`: the triangular boundaries of the
//! sequential tests, exact binomial tails, and confidence intervals.

use statrs::distribution::{ContinuousCDF, StudentsT};
use statrs::function::beta::beta_reg;

/// η of a triangular continuation region for one comparison with error at
/// most `beta` and a first stage of `n0` replications.
///
/// With variance S² from the first stage, the boundaries are ±(h²S²/(2δ) −
/// δr/2) for the sum of r differences, h² = 2η(n0 − 1) (Kim and Nelson 2001;
/// Batur and Kim 2010). A normal random walk whose drift is at least δ in
/// the right direction crosses the line −(h²S²/(2δ) − δr/2) with probability
/// at most exp(−h²S²/(2σ²)): Brownian motion with drift μ ever reaches a
/// line a below it with slope λ < μ with probability exp(−2a(μ − λ)/σ²), and
/// the normal partial sums are that motion seen at whole times. Averaged over
/// (n0 − 1)S²/σ² ~ χ²(n0 − 1) this is (1 + 2η)^(−(n0 − 1)/2), which we set to
/// `beta`. KN set half of that to their error, bounding the first exit from
/// the triangle (Fabian 1974); bounding any crossing costs a little more η
/// (KN's η at α/2) but holds whenever and however often the sums are looked
/// at, which the constrained procedure needs.
pub fn eta(beta: f64, n0: u64) -> f64 {
    debug_assert!(beta > 0.0 && beta < 1.0 && n0 >= 2);
    0.5 * (beta.powf(-2.0 / (n0 - 1) as f64) - 1.0)
}

/// h² = 2η(n0 − 1).
pub fn h_squared(beta: f64, n0: u64) -> f64 {
    2.0 * eta(beta, n0) * (n0 - 1) as f64
}

/// Half the width of the triangle for the sum of r differences: the
/// continuation region is |sum| < `half_width`, which reaches 0 at r =
/// h²S²/δ² (the apex) and stays 0 after.
pub fn half_width(h2: f64, variance: f64, delta: f64, r: u64) -> f64 {
    (h2 * variance / (2.0 * delta) - delta * r as f64 / 2.0).max(0.0)
}

/// P(X >= k) for X ~ Binomial(n, p).
pub fn binomial_at_least(k: u64, n: u64, p: f64) -> f64 {
    if k == 0 {
        1.0
    } else if k > n {
        0.0
    } else {
        beta_reg(k as f64, (n - k + 1) as f64, p)
    }
}

/// P(X <= k) for X ~ Binomial(n, p), without cancellation in the far tail.
pub fn binomial_at_most(k: u64, n: u64, p: f64) -> f64 {
    if k >= n { 1.0 } else { beta_reg((n - k) as f64, (k + 1) as f64, 1.0 - p) }
}

/// 1-based ranks (l, u) of the order statistics x(l) <= x(u) that bound the
/// q-quantile with probability at least 1 − `a` for any continuous
/// distribution: with B ~ Binomial(n, q), P(B <= l − 1) <= a/2 and
/// P(B >= u) <= a/2 (David and Nagaraja 2003, section 7.1). None where the
/// sample is too small for a finite bound.
pub fn quantile_ranks(n: u64, q: f64, a: f64) -> (Option<u64>, Option<u64>) {
    // The largest l with P(B <= l - 1) <= a/2; the CDF grows with l.
    let lower = if binomial_at_most(0, n, q) > a / 2.0 {
        None
    } else {
        let (mut ok, mut bad) = (1, n + 1);
        while bad - ok > 1 {
            let mid = ok + (bad - ok) / 2;
            if binomial_at_most(mid - 1, n, q) <= a / 2.0 { ok = mid } else { bad = mid }
        }
        Some(ok)
    };
    // The smallest u with P(B >= u) <= a/2; the tail shrinks as u grows.
    let upper = if binomial_at_least(n, n, q) > a / 2.0 {
        None
    } else {
        let (mut bad, mut ok) = (0, n);
        while ok - bad > 1 {
            let mid = bad + (ok - bad) / 2;
            if binomial_at_least(mid, n, q) <= a / 2.0 { ok = mid } else { bad = mid }
        }
        Some(ok)
    };
    (lower, upper)
}

/// The Student-t half width of a two-sided interval at level 1 − `a`.
pub fn t_half_width(std: f64, n: usize, a: f64) -> f64 {
    if n < 2 {
        return f64::NAN;
    }
    let t = StudentsT::new(0.0, 1.0, (n - 1) as f64).map(|t| t.inverse_cdf(1.0 - a / 2.0)).unwrap_or(f64::NAN);
    t * std / (n as f64).sqrt()
}

/// Mean and unbiased variance, summed in index order.
pub fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let mean = x.iter().sum::<f64>() / n;
    let var = if x.len() > 1 { x.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (n - 1.0) } else { f64::NAN };
    (mean, var)
}

/// Unbiased variance of the paired differences a[j] − b[j].
pub fn paired_var(a: &[f64], b: &[f64]) -> f64 {
    debug_assert_eq!(a.len(), b.len());
    let n = a.len() as f64;
    let mean = a.iter().zip(b).map(|(x, y)| x - y).sum::<f64>() / n;
    a.iter().zip(b).map(|(x, y)| (x - y - mean) * (x - y - mean)).sum::<f64>() / (n - 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eta_matches_kim_and_nelson_at_twice_the_error() {
        // KN: eta = ((2 alpha / (k - 1))^(-2 / (n0 - 1)) - 1) / 2; ours is theirs for alpha/2.
        let (alpha, k, n0): (f64, f64, u64) = (0.05, 10.0, 20);
        let kn = 0.5 * ((2.0 * alpha / (k - 1.0)).powf(-2.0 / 19.0) - 1.0);
        assert!((eta(2.0 * alpha / (k - 1.0), n0) - kn).abs() < 1e-12);
        assert!(eta(alpha / (k - 1.0), n0) > kn);
        // (1 + 2 eta)^(-(n0 - 1)/2) = beta.
        let e = eta(0.001, 10);
        assert!(((1.0 + 2.0 * e).powf(-4.5) - 0.001).abs() < 1e-12);
    }

    #[test]
    fn binomial_tails_are_exact() {
        // Binomial(10, 0.3): P(X <= 2) = 0.3827827864, P(X >= 5) = 0.1502683326.
        assert!((binomial_at_most(2, 10, 0.3) - 0.382_782_786_4).abs() < 1e-9);
        assert!((binomial_at_least(5, 10, 0.3) - 0.150_268_332_6).abs() < 1e-9);
        assert_eq!((binomial_at_least(0, 10, 0.3), binomial_at_most(10, 10, 0.3)), (1.0, 1.0));
        // Far tail: P(X <= 0) for Binomial(1000, 0.05) = 0.95^1000.
        let far = binomial_at_most(0, 1000, 0.05);
        assert!((far / 0.95f64.powi(1000) - 1.0).abs() < 1e-9, "{far}");
    }

    #[test]
    fn quantile_ranks_cover_and_are_the_tightest() {
        let (n, q, a) = (200, 0.95, 0.05);
        let (Some(l), Some(u)) = quantile_ranks(n, q, a) else { panic!() };
        assert!(binomial_at_most(l - 1, n, q) <= a / 2.0 && binomial_at_most(l, n, q) > a / 2.0);
        assert!(binomial_at_least(u, n, q) <= a / 2.0 && binomial_at_least(u - 1, n, q) > a / 2.0);
        assert!(l < 190 && u > 190 && u <= 200, "{l} {u}");
        // Ten values cannot bound the 0.95 quantile from above at 95%.
        assert_eq!(quantile_ranks(10, 0.95, 0.05).1, None);
    }

    #[test]
    fn triangle_closes_at_the_apex() {
        let (h2, s2, delta) = (10.0, 4.0, 0.5);
        let apex = (h2 * s2 / (delta * delta)) as u64; // 160
        assert!(half_width(h2, s2, delta, apex - 1) > 0.0);
        assert_eq!(half_width(h2, s2, delta, apex), 0.0);
        assert_eq!(half_width(h2, s2, delta, apex * 2), 0.0);
    }
}
