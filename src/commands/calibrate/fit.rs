//! The fit: the step-time table as a vector of named coefficients, each
//! with its start (the roofline's), its bounds and whether it is fitted;
//! Nelder-Mead (argmin) over bounded log-coefficients, minimising the
//! squared log errors of the fit runs' percentiles.
//!
//! A new coefficient of the table (issue 27's batch-dependent overhead)
//! is one more name in [`NAMES`] and one more slot in [`to_vec`] and
//! [`from_vec`].

use std::sync::atomic::{AtomicU64, Ordering};

use argmin::core::{CostFunction, Error, Executor, State};
use argmin::solver::neldermead::NelderMead;

use super::replay::{Replayer, Simulated};
use crate::input::bench::Measured;
use crate::scenarios::inference::llm::roofline::{DECODE_BANDWIDTH_EFFICIENCY, PREFILL_MFU};
use crate::scenarios::inference::llm::{FitMs, RooflineTerms};

/// The table's coefficients, in `to_vec` order (milliseconds).
pub const NAMES: [&str; 8] =
    ["prefill.a", "prefill.b", "prefill.c", "decode.a", "decode.b", "decode.c", "overhead.0", "overhead.1"];

pub fn to_vec(f: &FitMs) -> Vec<f64> {
    let mut v = Vec::with_capacity(NAMES.len());
    v.extend_from_slice(&f.prefill);
    v.extend_from_slice(&f.decode);
    v.extend_from_slice(&f.overhead);
    v
}

pub fn from_vec(v: &[f64]) -> FitMs {
    FitMs { prefill: [v[0], v[1], v[2]], decode: [v[3], v[4], v[5]], overhead: [v[6], v[7]] }
}

/// The roofline as the fitted form: prefill = the weight read (and the
/// all-reduce floor) + compute per token and token² + communication per
/// token; decode = the same intercept + the KV read per context token +
/// communication per sequence token; the per-iteration overhead. (The
/// roofline takes the larger of the weight read and the compute for a
/// prefill; the sum is within a factor two of it and only a start.)
pub fn roofline_table(r: &RooflineTerms) -> FitMs {
    let intercept = r.weight_read_ms + r.comm_ms_per_iteration;
    FitMs {
        prefill: [intercept, r.prefill_ms_per_token + r.comm_ms_per_token, r.prefill_ms_per_token_sq],
        decode: [intercept, r.kv_read_ms_per_token, r.comm_ms_per_token],
        overhead: [r.overhead_ms, 0.0],
    }
}

/// One coefficient: where the fit starts, where it may go, and whether it moves.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Coef {
    pub start: f64,
    pub lo: f64,
    pub hi: f64,
    pub free: bool,
}

/// Per-sequence decode cost where the roofline has none (one GPU):
/// sampling and bookkeeping per sequence, 0.01 ms, a start only.
const PER_SEQUENCE_START_MS: f64 = 0.01;

/// Physical bounds: no faster than the GPU's peak (the roofline at a
/// bandwidth share and an MFU of one: its start times its efficiency), at
/// most twenty times the roofline; the per-sequence decode cost between
/// 0.001 and 1 ms. Fitted: the intercepts and slopes the runs identify
/// (prefill a and b, decode a, b and c); the prefill's quadratic and the
/// overhead stay at the start (the overhead moves with the intercepts, the
/// quadratic matters only for prompts of many thousand tokens).
pub fn coefficients(start: &FitMs) -> Vec<Coef> {
    let free = [true, true, false, true, true, true, false, false];
    let floor = [BW, MFU, MFU, BW, BW, 0.0, 1.0, 1.0];
    to_vec(start)
        .into_iter()
        .zip(free.into_iter().zip(floor))
        .enumerate()
        .map(|(i, (s, (free, floor)))| {
            if i == 5 {
                return Coef { start: s.max(PER_SEQUENCE_START_MS), lo: 1e-3, hi: 1.0, free };
            }
            if s > 0.0 {
                Coef { start: s, lo: s * floor, hi: s * 20.0, free }
            } else {
                Coef { start: 0.0, lo: 0.0, hi: 0.0, free: false }
            }
        })
        .collect()
}

const BW: f64 = DECODE_BANDWIDTH_EFFICIENCY;
const MFU: f64 = PREFILL_MFU;

/// The metrics a run is fitted on: (name, measured, simulated); only those
/// the file gives.
pub fn pairs(m: &Measured, s: &Simulated) -> Vec<(&'static str, f64, f64)> {
    let mut out = Vec::new();
    let mut push = |name, meas: Option<f64>, sim: Option<f64>| {
        if let (Some(a), Some(b)) = (meas, sim)
            && a > 0.0
        {
            out.push((name, a, b));
        }
    };
    push("ttft_p50", m.ttft_p50_ms, Some(s.ttft_p50_ms));
    // The p90 where the file has it, else its p99.
    match m.ttft_p90_ms {
        Some(p90) => push("ttft_p90", Some(p90), Some(s.ttft_p90_ms)),
        None => push("ttft_p99", m.ttft_p99_ms, Some(s.ttft_p99_ms)),
    }
    push("tpot_p50", m.tpot_p50_ms, Some(s.tpot_p50_ms));
    push("output_tokens_per_s", m.output_tokens_per_s, s.output_tokens_per_s);
    out
}

/// The squared log errors of one run.
pub fn run_cost(m: &Measured, s: &Simulated) -> f64 {
    pairs(m, s).iter().map(|(_, a, b)| if b.is_finite() && *b > 0.0 { (b / a).ln().powi(2) } else { 100.0 }).sum()
}

/// The bounded table of an unconstrained point: each free coefficient's
/// logarithm runs between its bounds' logarithms along a logistic curve.
fn table_of(coefs: &[Coef], z: &[f64]) -> FitMs {
    let mut k = 0;
    let v: Vec<f64> = coefs
        .iter()
        .map(|c| {
            if !c.free {
                return c.start;
            }
            let (lo, hi) = (c.lo.ln(), c.hi.ln());
            let x = lo + (hi - lo) / (1.0 + (-z[k]).exp());
            k += 1;
            x.exp()
        })
        .collect();
    from_vec(&v)
}

/// The point whose table is the start.
fn z_start(coefs: &[Coef]) -> Vec<f64> {
    coefs
        .iter()
        .filter(|c| c.free)
        .map(|c| {
            let u = (c.start.ln() - c.lo.ln()) / (c.hi.ln() - c.lo.ln());
            (u / (1.0 - u)).ln()
        })
        .collect()
}

struct Problem<'a> {
    runs: &'a [&'a Replayer],
    coefs: &'a [Coef],
    evaluations: &'a AtomicU64,
}

impl CostFunction for Problem<'_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, z: &Self::Param) -> Result<f64, Error> {
        let table = table_of(self.coefs, z);
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        Ok(self.runs.iter().map(|r| run_cost(&r.run().measured, &r.simulate(&table))).sum())
    }
}

/// The fitted table and its cost.
pub struct Fitted {
    pub table: FitMs,
    pub cost: f64,
    pub evaluations: u64,
}

/// A start and one step along each axis.
fn simplex_around(z: &[f64], step: f64) -> Vec<Vec<f64>> {
    let mut simplex = vec![z.to_vec()];
    for i in 0..z.len() {
        let mut v = z.to_vec();
        v[i] += step;
        simplex.push(v);
    }
    simplex
}

/// Nelder-Mead from the start, at most `iterations` iterations.
pub fn fit(runs: &[&Replayer], coefs: &[Coef], iterations: u64) -> Result<Fitted, Error> {
    let evaluations = AtomicU64::new(0);
    // First the one factor on every free term that fits best (a GPU is
    // slower than its roofline throughout), so the simplex starts near.
    let scaled = |f: f64| -> Vec<Coef> {
        coefs
            .iter()
            .map(|c| if c.free { Coef { start: (c.start * f).clamp(c.lo * 1.001, c.hi / 1.001), ..*c } } else { *c })
            .collect()
    };
    let cost_of = |cs: &[Coef]| {
        Problem { runs, coefs: cs, evaluations: &evaluations }.cost(&z_start(cs)).unwrap_or(f64::INFINITY)
    };
    let factor = [1.0, 1.25, 1.6, 2.0, 2.5, 3.2]
        .into_iter()
        .map(|f| (f, cost_of(&scaled(f))))
        .min_by(|a, b| a.1.total_cmp(&b.1))
        .map_or(1.0, |(f, _)| f);
    let moved = scaled(factor);
    let z0 = z_start(&moved);
    let simplex = simplex_around(&z0, 0.6);
    let mut best = z0.clone();
    let mut cost = f64::INFINITY;
    // Restarted once from the best point with a fresh simplex: Nelder-Mead
    // can stall on a collapsed simplex (Lagarias et al. 1998).
    for round in 0..2 {
        let simplex = if round == 0 { simplex.clone() } else { simplex_around(&best, 0.3) };
        let problem = Problem { runs, coefs: &moved, evaluations: &evaluations };
        let solver = NelderMead::new(simplex).with_sd_tolerance(1e-6)?;
        let result = Executor::new(problem, solver).configure(|s| s.max_iters(iterations / 2)).run()?;
        let state = result.state();
        if state.get_best_cost() < cost {
            cost = state.get_best_cost();
            best = state.get_best_param().cloned().unwrap_or(best);
        }
    }
    Ok(Fitted { table: table_of(&moved, &best), cost, evaluations: evaluations.into_inner() })
}

/// The free coefficients the runs do not pin down: multiplying one by 1.5
/// moves no fitted metric of any run by 2%.
pub fn unidentified(runs: &[&Replayer], coefs: &[Coef], table: &FitMs) -> Vec<&'static str> {
    let base: Vec<Vec<f64>> = runs.iter().map(|r| metric_values(r, table)).collect();
    let v = to_vec(table);
    let mut out = Vec::new();
    for (i, c) in coefs.iter().enumerate() {
        if !c.free {
            continue;
        }
        let mut w = v.clone();
        w[i] *= 1.5;
        let moved = from_vec(&w);
        let most = runs
            .iter()
            .zip(&base)
            .flat_map(|(r, b)| metric_values(r, &moved).into_iter().zip(b.clone()).map(|(x, y)| (x / y).ln().abs()))
            .fold(0.0, f64::max);
        if most < 0.02 {
            out.push(NAMES[i]);
        }
    }
    out
}

fn metric_values(r: &Replayer, table: &FitMs) -> Vec<f64> {
    pairs(&r.run().measured, &r.simulate(table)).into_iter().map(|(_, _, s)| s).collect()
}
