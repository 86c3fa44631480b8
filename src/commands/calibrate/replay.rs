//! A benchmark run replayed as it was run, on one instance of the design:
//! its arrivals (gamma at its rate, all at t = 0, a closed loop, or its
//! send times), its request lengths, and the client's percentiles of the
//! simulated requests.

use std::sync::Arc;

use rand_distr::{Distribution, Gamma};
use rayon::prelude::*;

use crate::base::time::SimTime;
use crate::engine::{Purpose, Streams};
use crate::input::bench::{BenchRun, LengthStats, Load};
use crate::scenarios::inference::design::{Endpoint, latency_histogram};
use crate::scenarios::inference::llm::{FitMs, StepSource, StepTime};
use crate::scenarios::inference::llm_engine::LlmOutcome;
use crate::scenarios::inference::traffic::tokens::{CountDist, MAX_TOKENS, Tokens};
use crate::scenarios::inference::traffic::{Replay, Traffic, TrafficSource};

use super::super::loadtest;

/// What is compared: the client-visible percentiles and throughput, in
/// milliseconds and output tokens per second.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Simulated {
    pub ttft_p50_ms: f64,
    pub ttft_p90_ms: f64,
    pub ttft_p99_ms: f64,
    pub tpot_p50_ms: f64,
    pub e2e_p50_ms: f64,
    /// Only where the load does not fix it: closed loops and all-at-once runs.
    pub output_tokens_per_s: Option<f64>,
}

/// One run, ready to replay any number of times under any step times.
pub struct Replayer {
    base: Endpoint,
    run: BenchRun,
    /// Replications pooled per replay: enough for about 2,000 requests.
    pub reps: u64,
    seed: u64,
}

/// Requests pooled per replay, over its replications, by default.
pub const POOLED_REQUESTS: u64 = 2000;

impl Replayer {
    /// `design` is the calibrated design (instance, replicas, KV capacity);
    /// its fleet and traffic are replaced by the run's.
    pub fn new(design: &Endpoint, run: &BenchRun, seed: u64, pooled: u64) -> Self {
        let settings = loadtest::Settings::default();
        let mut base = loadtest::single_instance(design, 1.0, &settings);
        base.warmup = SimTime::ZERO;
        let reps = pooled.div_ceil(run.completed.max(1) as u64).clamp(1, 20);
        Replayer { base, run: run.clone(), reps, seed }
    }

    pub fn run(&self) -> &BenchRun {
        &self.run
    }

    /// The run's requests, as the engine's token counts.
    fn tokens(&self) -> Tokens {
        let clamp = |n: u32| n.clamp(1, MAX_TOKENS);
        match (&self.run.requests, self.run.load) {
            (Some(reqs), Load::Closed { .. }) => Tokens::Drawn {
                input: empirical(reqs.iter().map(|r| clamp(r.input)).collect()),
                output: empirical(reqs.iter().map(|r| clamp(r.output)).collect()),
            },
            (Some(reqs), _) => Tokens::Columns {
                input_column: "input".into(),
                output_column: "output".into(),
                counts: reqs.iter().map(|r| [clamp(r.input), clamp(r.output)]).collect::<Vec<_>>().into(),
            },
            (None, _) => Tokens::Drawn {
                input: lognormal(self.run.input_stats.expect("a summary gives its lengths")),
                output: lognormal(self.run.output_stats.expect("a summary gives its lengths")),
            },
        }
    }

    /// The endpoint of replication `rep`: its own draw of the arrival times.
    fn endpoint(&self, rep: u64, step: &FitMs) -> Endpoint {
        let mut ep = self.base.clone();
        let llm = ep.llm.as_mut().expect("an LLM design");
        llm.step = StepTime::from_fit(step);
        llm.step_time = StepSource::Fit(step.clone());
        llm.roofline = None;
        let n = self.run.completed.max(1) as usize;
        let tokens = self.tokens();
        let times: Option<Vec<f64>> = match self.run.load {
            Load::Closed { users } => {
                let duration = self.run.duration_s.or_else(|| self.run.measured.requests_per_s.map(|r| n as f64 / r));
                ep.users = Some(users);
                let d = SimTime::from_secs_f64(duration.unwrap_or(60.0).max(1e-3));
                ep.traffic = Traffic { tokens: Some(tokens.clone()), ..Traffic::constant(1.0, d) };
                None
            }
            // One nanosecond apart: the order is kept, the times are zero.
            Load::AllAtOnce => Some((0..n).map(|i| i as f64 * 1e-9).collect()),
            Load::Rate { rps, burstiness } => {
                let gamma = Gamma::new(burstiness, 1.0 / (rps * burstiness)).expect("positive, checked on reading");
                let mut rng = Streams::new(self.seed, rep).rng(Purpose::Arrivals);
                let mut t = 0.0;
                Some(
                    (0..n)
                        .map(|_| {
                            t += gamma.sample(&mut rng);
                            t
                        })
                        .collect(),
                )
            }
            Load::Trace => Some(
                self.run
                    .requests
                    .as_ref()
                    .expect("a trace has its requests")
                    .iter()
                    .map(|r| r.send_s.unwrap_or(0.0))
                    .collect(),
            ),
        };
        if let Some(times) = times {
            // Strictly increasing, from zero: the trace reader's contract.
            let mut last = -1.0;
            let times: Vec<f64> = times
                .into_iter()
                .map(|t| {
                    let t = if t > last { t } else { last + 1e-9 };
                    last = t;
                    t
                })
                .collect();
            let end = last + 1e-6;
            ep.traffic = Traffic {
                source: TrafficSource::Requests {
                    file: self.run.file.clone(),
                    times: Arc::from(times),
                    size_column: None,
                    sizes: None,
                    // Longer than the run: it never repeats.
                    length: end * 2.0 + 1.0,
                    replay: Replay::AsIs,
                },
                scale: 1.0,
                duration: SimTime::from_secs_f64(end),
                tokens: Some(tokens),
            };
        }
        ep
    }

    /// The run under `step`, its replications pooled (common random
    /// numbers: the same arrivals whatever the step times).
    pub fn simulate(&self, step: &FitMs) -> Simulated {
        let outcomes: Vec<_> = (0..self.reps)
            .into_par_iter()
            .map(|rep| {
                let ep = self.endpoint(rep, step);
                let (o, lo) = ep.outcomes(&Streams::new(self.seed, rep));
                let last = o.latency_us.max();
                (o, lo.expect("an LLM design"), ep.traffic.duration, last)
            })
            .collect();
        let mut latency = latency_histogram();
        let mut all = LlmOutcome::new();
        let mut window_s = 0.0;
        for (o, lo, duration, last_us) in &outcomes {
            latency.add(&o.latency_us).expect("same bounds");
            all.ttft_us.add(&lo.ttft_us).expect("same bounds");
            all.tpot_ns.add(&lo.tpot_ns).expect("same bounds");
            all.output_tokens += lo.output_tokens;
            window_s += match self.run.load {
                Load::Closed { .. } => duration.as_secs_f64(),
                // Every request came at 0: the run lasts as long as the slowest.
                _ => *last_us as f64 / 1e6,
            };
        }
        let q = |h: &hdrhistogram::Histogram<u64>, q: f64, per_ms: f64| {
            if h.is_empty() { f64::INFINITY } else { h.value_at_quantile(q) as f64 / per_ms }
        };
        let throughput = matches!(self.run.load, Load::Closed { .. } | Load::AllAtOnce);
        Simulated {
            ttft_p50_ms: q(&all.ttft_us, 0.5, 1e3),
            ttft_p90_ms: q(&all.ttft_us, 0.9, 1e3),
            ttft_p99_ms: q(&all.ttft_us, 0.99, 1e3),
            tpot_p50_ms: q(&all.tpot_ns, 0.5, 1e6),
            e2e_p50_ms: q(&latency, 0.5, 1e3),
            output_tokens_per_s: (throughput && window_s > 0.0).then(|| all.output_tokens / window_s),
        }
    }
}

fn empirical(samples: Vec<u32>) -> CountDist {
    CountDist::Empirical { file: "benchmark requests".into(), samples: samples.into() }
}

/// The lognormal with the given mean and standard deviation: σ² = ln(1 +
/// s²/m²), median m / √(1 + s²/m²); a constant when s = 0.
fn lognormal(s: LengthStats) -> CountDist {
    if s.std <= 0.0 {
        return CountDist::Constant((s.mean.round() as u32).clamp(1, MAX_TOKENS));
    }
    let v = 1.0 + (s.std / s.mean).powi(2);
    CountDist::LogNormal { median: (s.mean / v.sqrt()).max(1.0), sigma: v.ln().sqrt() }
}
