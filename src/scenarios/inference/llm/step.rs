//! Iteration times of one replica, in integer picoseconds.
//!
//! Every coefficient is rounded to the picosecond once, when the design is
//! built; from then on a run of decode iterations is exact integer
//! arithmetic, so advancing k iterations at once gives the very same clock
//! as advancing them one by one (the property the engine's bulk advance
//! rests on, and a test holds it to).

pub use crate::catalog::profile::FitMs;

/// Picoseconds per millisecond.
pub const PS_PER_MS: f64 = 1e9;

/// How a prefill's time follows from its tokens.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Prefill {
    /// `a + b·Σl + c·Σl²`.
    Fit { a: u64, b: u64, c: u64 },
    /// Compute-bound but never below reading the weights:
    /// `max(weights, lin·Σl + quad·Σl² + flop·B) + floor + comm·Σl`, the
    /// linear layers run once over the prompt tokens and the `B` decoding
    /// sequences of the iteration.
    Roofline { weights: u64, lin: u64, quad: u64, comm: u64 },
}

/// One replica's iteration times, picoseconds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepTime {
    prefill: Prefill,
    /// Decode: `max(da, flop·B) + floor + db·Σctx + dc·B`; a fit has
    /// `flop = floor = 0`, so `da + db·Σctx + dc·B`.
    da: u64,
    db: u64,
    dc: u64,
    /// The roofline's compute per decoding sequence (the linear layers turn
    /// compute-bound past `B = da / flop`), and its tensor-parallel
    /// communication floor, paid once per iteration.
    flop: u64,
    floor: u64,
    /// Every iteration: `o0 + o1·Σctx` (a prompt's ctx being its length).
    o0: u64,
    o1: u64,
}

/// The tokens of one iteration.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Batch {
    /// Prompt (or chunk) tokens, and the sum of their squares.
    pub prompt: u64,
    pub prompt_sq: u64,
    /// Decoding sequences and the sum of their contexts.
    pub seqs: u64,
    pub ctx: u64,
}

fn ps(ms: f64) -> u64 {
    (ms * PS_PER_MS).round().max(0.0) as u64
}

impl StepTime {
    pub fn from_fit(f: &FitMs) -> Self {
        StepTime {
            prefill: Prefill::Fit { a: ps(f.prefill[0]), b: ps(f.prefill[1]), c: ps(f.prefill[2]) },
            da: ps(f.decode[0]),
            db: ps(f.decode[1]),
            dc: ps(f.decode[2]),
            flop: 0,
            floor: 0,
            o0: ps(f.overhead[0]),
            o1: ps(f.overhead[1]),
        }
    }

    /// From roofline terms, all in milliseconds: the weight read, the
    /// prefill's compute per token and per token², the decode's compute per
    /// sequence, the KV read per context token, tensor-parallel
    /// communication (per iteration and per token), and the overhead per
    /// iteration and per decoding sequence.
    #[allow(clippy::too_many_arguments)]
    pub fn roofline(
        weights: f64,
        flop_per_token: f64,
        flop_per_token_sq: f64,
        flop_per_seq: f64,
        kv_per_token: f64,
        comm_per_iteration: f64,
        comm_per_token: f64,
        overhead: f64,
        overhead_per_seq: f64,
    ) -> Self {
        StepTime {
            prefill: Prefill::Roofline {
                weights: ps(weights),
                lin: ps(flop_per_token),
                quad: ps(flop_per_token_sq),
                comm: ps(comm_per_token),
            },
            da: ps(weights),
            db: ps(kv_per_token),
            dc: ps(comm_per_token) + ps(overhead_per_seq),
            flop: ps(flop_per_seq),
            // The communication floor is part of every iteration, paid once
            // in a mixed one.
            floor: ps(comm_per_iteration),
            o0: ps(overhead),
            o1: 0,
        }
    }

    /// The prefill's intercept and the rest of its time (a fit).
    fn prefill_fit(a: u64, b: u64, c: u64, batch: &Batch) -> (u128, u128) {
        let (l, l2) = (batch.prompt as u128, batch.prompt_sq as u128);
        (a as u128, b as u128 * l + c as u128 * l2)
    }

    /// The linear layers' part of a decode of `seqs` sequences: the weight
    /// read, or their compute once it is longer.
    fn decode_intercept(&self, seqs: u64) -> u128 {
        (self.da as u128).max(self.flop as u128 * seqs as u128) + self.floor as u128
    }

    /// One iteration of any kind: prefill terms of its prompts, decode terms
    /// of its sequences, the larger intercept once (a fit) or the linear
    /// layers once over all its tokens (the roofline), and the overhead.
    pub fn iteration(&self, b: &Batch) -> u128 {
        let dv = if b.seqs > 0 { self.db as u128 * b.ctx as u128 + self.dc as u128 * b.seqs as u128 } else { 0 };
        let overhead = self.o0 as u128 + self.o1 as u128 * (b.ctx + b.prompt) as u128;
        let work = match self.prefill {
            Prefill::Fit { a, b: pb, c } => {
                let (pa, pv) = if b.prompt > 0 { Self::prefill_fit(a, pb, c, b) } else { (0, 0) };
                let da = if b.seqs > 0 { self.da as u128 } else { 0 };
                pa.max(da) + pv
            }
            Prefill::Roofline { weights, lin, quad, comm } => {
                let compute = lin as u128 * b.prompt as u128
                    + quad as u128 * b.prompt_sq as u128
                    + self.flop as u128 * b.seqs as u128;
                (weights as u128).max(compute) + self.floor as u128 + comm as u128 * b.prompt as u128
            }
        };
        work + dv + overhead
    }

    /// A decode-only run with `seqs` sequences: iteration j (from 0) takes
    /// `alpha + beta·(ctx0 + j·seqs)`.
    pub fn run(&self, seqs: u64, ctx0: u64) -> Run {
        Run {
            alpha: self.decode_intercept(seqs) + self.dc as u128 * seqs as u128 + self.o0 as u128,
            beta: (self.db + self.o1) as u128,
            seqs: seqs as u128,
            ctx0: ctx0 as u128,
        }
    }
}

/// A run of decode-only iterations in closed form.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Run {
    pub alpha: u128,
    pub beta: u128,
    pub seqs: u128,
    pub ctx0: u128,
}

impl Run {
    /// Time of the first `k` iterations: `k·α + β·(k·ctx0 + B·k(k−1)/2)`.
    pub fn time(&self, k: u64) -> u128 {
        let k = k as u128;
        k * self.alpha + self.beta * (k * self.ctx0 + self.seqs * (k * k.saturating_sub(1) / 2))
    }

    /// ∫ KV in use dt over the first `k` iterations, token·ps: iteration j
    /// holds `ctx0 + j·B` tokens for `α + β·(ctx0 + j·B)`.
    pub fn kv_area(&self, k: u64) -> u128 {
        let k = k as u128;
        let (a, b, s, n) = (self.alpha, self.beta, self.ctx0, self.seqs);
        let sum_j = k * k.saturating_sub(1) / 2;
        let sum_j2 = k.saturating_sub(1) * k * (2 * k).saturating_sub(1) / 6;
        k * (a * s + b * s * s) + (a * n + 2 * b * s * n) * sum_j + b * n * n * sum_j2
    }

    /// The most iterations, up to `most`, that end within `span` picoseconds.
    pub fn fit(&self, span: u128, most: u64) -> u64 {
        if most == 0 || self.time(1) > span {
            return 0;
        }
        if self.time(most) <= span {
            return most;
        }
        // The quadratic's root as a first guess, then exact steps.
        let (a, b, c) = (self.beta as f64 * self.seqs as f64 / 2.0, 0.0, span as f64);
        let lin = self.alpha as f64 + self.beta as f64 * self.ctx0 as f64 - a;
        let guess = if a > 0.0 { (-lin + (lin * lin + 4.0 * a * c).sqrt()) / (2.0 * a) } else { c / lin.max(1.0) + b };
        let mut k = (guess.max(0.0) as u64).clamp(1, most - 1);
        while k > 0 && self.time(k) > span {
            k -= 1;
        }
        while k < most && self.time(k + 1) <= span {
            k += 1;
        }
        k
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec_fit() -> StepTime {
        StepTime::from_fit(&FitMs::SPEC_EXAMPLE)
    }

    #[test]
    fn a_run_in_closed_form_is_the_sum_of_its_iterations() {
        let st = spec_fit();
        for (seqs, ctx0) in [(1u64, 100u64), (7, 3000), (256, 400_000)] {
            let run = st.run(seqs, ctx0);
            let (mut t, mut area) = (0u128, 0u128);
            for j in 0..500u64 {
                assert_eq!(run.time(j), t, "time after {j}");
                assert_eq!(run.kv_area(j), area, "area after {j}");
                let b = Batch { seqs, ctx: ctx0 + j * seqs, ..Batch::default() };
                let d = st.iteration(&b);
                t += d;
                area += d * b.ctx as u128;
            }
        }
    }

    #[test]
    fn fit_finds_the_last_iteration_within_a_span() {
        let run = spec_fit().run(5, 2000);
        for span in [0u128, 1, run.time(1) - 1, run.time(1), run.time(37) + 5, run.time(400) - 1] {
            let k = run.fit(span, 1000);
            assert!(run.time(k) <= span || k == 0);
            assert!(run.time(k + 1) > span);
        }
        assert_eq!(run.fit(u128::MAX / 4, 1000), 1000);
    }

    #[test]
    fn an_iteration_follows_the_spec_formula() {
        let st = spec_fit();
        // A prefill of one 512-token prompt: 22.05 + 0.1405·512 + 8.08e-6·512² + 2 + 1e-4·512 ms.
        let p = st.iteration(&Batch { prompt: 512, prompt_sq: 512 * 512, ..Batch::default() });
        let want = 22.05 + 0.1405 * 512.0 + 8.08e-6 * 512.0 * 512.0 + 2.0 + 1e-4 * 512.0;
        assert!((p as f64 / PS_PER_MS - want).abs() < 1e-6, "{p}");
        // Mixed: the larger intercept (decode's 23.48) once.
        let m = st.iteration(&Batch { prompt: 100, prompt_sq: 10_000, seqs: 2, ctx: 600 });
        let want = 23.48 + 0.1405 * 100.0 + 8.08e-6 * 1e4 + 5.93e-4 * 600.0 + 0.0607 * 2.0 + 2.0 + 1e-4 * 700.0;
        assert!((m as f64 / PS_PER_MS - want).abs() < 1e-6, "{m}");
    }
}
