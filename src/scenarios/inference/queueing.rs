//! Closed forms of queueing theory: Erlang B and Erlang C.

/// Erlang B: the probability that an arrival finds all `n` servers busy in
/// an M/G/n/n loss system with offered load `a` = λ·E\[S\] (any service-time
/// distribution). Computed by the stable recursion
/// B(0) = 1, B(k) = a·B(k−1) / (k + a·B(k−1)).
pub fn erlang_b(n: u32, a: f64) -> f64 {
    (1..=n).fold(1.0, |b, k| a * b / (k as f64 + a * b))
}

/// Erlang C: the probability that an arrival waits in an M/M/n queue with
/// offered load `a` = λ/μ; 1 when the queue is unstable (a >= n).
pub fn erlang_c(n: u32, a: f64) -> f64 {
    if a >= n as f64 {
        return 1.0;
    }
    let b = erlang_b(n, a);
    n as f64 * b / (n as f64 - a * (1.0 - b))
}

/// Mean time in an M/M/n system: 1/μ + C(n, a)/(nμ − λ).
pub fn mm_n_mean_sojourn(n: u32, lambda: f64, mu: f64) -> f64 {
    let a = lambda / mu;
    1.0 / mu + erlang_c(n, a) / (n as f64 * mu - lambda)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn erlang_b_matches_the_direct_formula() {
        // B(n, a) = (a^n / n!) / Σ_k a^k / k!
        for (n, a) in [(1u32, 0.5), (5, 3.0), (10, 8.5), (40, 30.0)] {
            let mut terms = vec![1.0f64];
            for k in 1..=n {
                let last = *terms.last().unwrap();
                terms.push(last * a / k as f64);
            }
            let direct = terms[n as usize] / terms.iter().sum::<f64>();
            assert!((erlang_b(n, a) - direct).abs() < 1e-12, "n={n} a={a}");
        }
        assert_eq!(erlang_b(0, 2.0), 1.0);
    }

    #[test]
    fn erlang_c_known_values() {
        // M/M/1: C = ρ; M/M/2 with a = 1: C = 1/3.
        assert!((erlang_c(1, 0.7) - 0.7).abs() < 1e-12);
        assert!((erlang_c(2, 1.0) - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(erlang_c(3, 3.0), 1.0);
        // M/M/1 mean sojourn 1/(μ − λ).
        assert!((mm_n_mean_sojourn(1, 3.0, 5.0) - 0.5).abs() < 1e-12);
    }
}
