//! The token-level LLM engine (SPEC 2.8, `engine = "llm"`): model replicas
//! that batch every running sequence into one iteration at a time, with
//! prefill and decode, a KV cache in tokens, preemption by recompute, and
//! TTFT / TPOT. The fleet, startup, spot, zones and autoscaling are the
//! control plane's, driven as the request engine drives them.
//! `docs/llm-serving.md` gives the semantics.

pub mod engine;
pub mod replica;
pub mod roofline;
pub mod step;
pub mod tokens;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::time::SimTime;
pub use roofline::{ModelArch, RooflineTerms};
pub use step::{FitMs, StepTime};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheduler {
    /// Whole prompts; a prefill iteration when any waiting prompt fits,
    /// else one decode step of every running sequence.
    Vllm,
    /// Sarathi-style: every iteration decodes all running sequences and
    /// fills the rest of `chunk` tokens with prompt chunks.
    Chunked,
}

/// `slo = { ttft = "500ms", tpot = "50ms" }`: both must hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct TokenSlo {
    pub ttft: SimTime,
    pub tpot: SimTime,
}

/// Where the iteration times come from.
#[derive(Clone, Debug, PartialEq)]
pub enum StepSource {
    /// A fit, from the experiment file or the profile's measured table.
    Fit(FitMs),
    /// Derived from the model and the catalog's GPU figures.
    Roofline(RooflineTerms),
}

impl Serialize for StepSource {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            StepSource::Fit(fit) => fit.serialize(s),
            StepSource::Roofline(_) => s.serialize_str("roofline"),
        }
    }
}

/// `[inference.llm]`, resolved.
#[derive(Clone, Debug, Serialize)]
pub struct Llm {
    /// Model copies per instance, each tensor parallel over `gpus_per_replica`.
    pub replicas: u32,
    pub gpus_per_replica: u32,
    pub scheduler: Scheduler,
    pub chunk: u32,
    pub max_seqs: u32,
    pub max_batched_tokens: u32,
    /// KV-cache capacity per replica, tokens.
    pub kv_tokens: u64,
    pub memory_util: f64,
    pub step_time: StepSource,
    /// The roofline's derived terms, for `check` (milliseconds).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub roofline: Option<RooflineTerms>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub slo: Option<TokenSlo>,
    #[serde(skip)]
    pub step: StepTime,
    /// Debugging and tests: advance decode runs one iteration per event
    /// instead of in closed form. Results must not change.
    #[serde(skip)]
    pub single_steps: bool,
}

impl Llm {
    /// Whether a request of `input` + `output` tokens can ever run here
    /// (SPEC 2.8: otherwise it is rejected on arrival).
    pub fn can_run(&self, input: u32, output: u32) -> bool {
        let fits_kv = input as u64 + output as u64 <= self.kv_tokens;
        let fits_batch = self.scheduler == Scheduler::Chunked || input <= self.max_batched_tokens;
        fits_kv && fits_batch
    }
}

/// What the LLM engine adds to `Outcome` over a replication's counted requests.
pub struct LlmOutcome {
    /// Of served requests, microseconds.
    pub ttft_us: Histogram<u64>,
    /// Of served requests with at least two output tokens, nanoseconds
    /// (TPOTs are milliseconds: the histogram keeps them to 3 digits).
    pub tpot_ns: Histogram<u64>,
    /// Sums, for exact means in tests.
    pub ttft_sum_s: f64,
    pub tpot_sum_s: f64,
    /// Output tokens of served requests.
    pub output_tokens: f64,
    pub preemptions: f64,
    /// Time-average KV use over the capacity of the live replicas, [0, end].
    pub kv_utilization: f64,
}

impl LlmOutcome {
    pub fn new() -> Self {
        LlmOutcome {
            ttft_us: super::design::latency_histogram(),
            tpot_ns: Histogram::new_with_bounds(1, 3_600_000_000_000, 3).expect("valid histogram bounds"),
            ttft_sum_s: 0.0,
            tpot_sum_s: 0.0,
            output_tokens: 0.0,
            preemptions: 0.0,
            kv_utilization: f64::NAN,
        }
    }

    /// The metrics of SPEC 2.8 in the order of `design::LLM_METRICS`' tail;
    /// `window_s` is the measured window, `cost_usd` the fleet's cost.
    pub fn values(&self, window_s: f64, cost_usd: f64) -> [f64; 11] {
        let q = |h: &Histogram<u64>, q: f64, per_ms: f64| {
            if h.is_empty() { f64::NAN } else { h.value_at_quantile(q) as f64 / per_ms }
        };
        let per_s = if window_s > 0.0 { self.output_tokens / window_s } else { f64::NAN };
        let per_million = if self.output_tokens > 0.0 { cost_usd / self.output_tokens * 1e6 } else { f64::NAN };
        [
            q(&self.ttft_us, 0.50, 1e3),
            q(&self.ttft_us, 0.90, 1e3),
            q(&self.ttft_us, 0.99, 1e3),
            q(&self.tpot_ns, 0.50, 1e6),
            q(&self.tpot_ns, 0.90, 1e6),
            q(&self.tpot_ns, 0.99, 1e6),
            self.output_tokens,
            per_s,
            self.preemptions,
            self.kv_utilization,
            per_million,
        ]
    }
}

impl Default for LlmOutcome {
    fn default() -> Self {
        Self::new()
    }
}
