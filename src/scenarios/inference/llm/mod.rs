//! The token-level LLM engine (SPEC 2.8, `engine = "llm"`): model replicas
//! that batch every running sequence into one iteration at a time, with
//! prefill and decode, a KV cache in tokens, preemption by recompute, and
//! TTFT / TPOT. The fleet, startup, spot, zones and autoscaling are the
//! control plane's, driven as the request engine drives them.
//! `docs/llm-serving.md` gives the semantics.

pub mod prefix_cache;
pub mod replica;
pub mod roofline;
pub mod step;

use serde::Serialize;

use crate::base::time::SimTime;
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

/// How an arrival picks its replica (SPEC 2.11, docs/prefix-caching.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Routing {
    /// The fewest outstanding requests (SageMaker's default).
    LeastOutstanding,
    /// A session's requests stay on the replica its first one went to.
    SessionAffinity,
    /// The longest cached prefix, unless the load is out of balance.
    PrefixAware,
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

/// Where a design's step times were measured, for `recommend` and
/// `loadtest` to say (SPEC 2.10).
#[derive(Clone, Debug, Default, PartialEq)]
pub enum StepOrigin {
    /// Derived from the model and the GPU's figures.
    #[default]
    Roofline,
    /// A table given in the experiment file.
    Given,
    /// The profile's table for the type: measured, with its source.
    Profile,
    /// A table `spotsim calibrate` fitted: the engine and the held-out error.
    Calibrated { engine: String, held_out_error: Option<String> },
}

impl StepOrigin {
    pub fn describe(&self) -> String {
        match self {
            StepOrigin::Roofline => "roofline (not measured)".into(),
            StepOrigin::Given => "the experiment's table".into(),
            StepOrigin::Profile => "the profile's measured table".into(),
            StepOrigin::Calibrated { engine, held_out_error } => format!(
                "calibrated on {engine}, held-out error {}",
                held_out_error.as_deref().unwrap_or("not recorded")
            ),
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
    /// The engine and version the design says it runs, compared with a
    /// calibrated table's (SPEC 2.10).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serving_engine: Option<String>,
    /// Block-level prefix caching per replica (SPEC 2.11), blocks of
    /// `block_size` tokens.
    pub prefix_caching: bool,
    pub block_size: u32,
    pub routing: Routing,
    #[serde(skip)]
    pub step: StepTime,
    #[serde(skip)]
    pub step_origin: StepOrigin,
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
