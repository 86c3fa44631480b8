//! Model profiles (SPEC 2.5): how one model performs on each instance type.
//!
//! Profiles are data, read with the experiment files' reader, so that their
//! errors name the file, the line and the key. An experiment's `profile` is
//! resolved into plain design values (a service-time distribution, workers, a
//! compute time, checkpoint times) when the experiment is loaded: the models
//! never see a profile. `docs/profiles.md` gives the rules.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use serde::Serialize;

use crate::base::dist::Dist;
use crate::base::time::SimTime;
use crate::catalog::{Instance, catalog};
use crate::input::error::{InputError, Origin, did_you_mean};
use crate::input::section::{Result, Section};
use crate::input::tree::{Entry, Value, parse_document};

/// The built-in profiles, by name: `models/profiles/<name>.toml`.
const BUILT_IN: &[(&str, &str)] = &[
    ("bert-base", include_str!("../../models/profiles/bert-base.toml")),
    ("bert-base-compiled", include_str!("../../models/profiles/bert-base-compiled.toml")),
    ("llama-2-7b", include_str!("../../models/profiles/llama-2-7b.toml")),
    ("bert-large-pretraining", include_str!("../../models/profiles/bert-large-pretraining.toml")),
    ("llama-3-8b", include_str!("../../models/profiles/llama-3-8b.toml")),
    ("llama-3-70b", include_str!("../../models/profiles/llama-3-70b.toml")),
    ("qwen2.5-1.5b", include_str!("../../models/profiles/qwen2.5-1.5b.toml")),
];

/// The standard normal's 0.99 quantile: a lognormal's p99 is p50 · exp(σ · Z99).
pub const Z99: f64 = 2.326_347_874_040_841;

/// Profiles give sizes in GB (10^9 bytes), the catalog in GiB (2^30 bytes).
pub const GIB_PER_GB: f64 = 1e9 / (1u64 << 30) as f64;

#[derive(Debug)]
pub struct Profile {
    pub name: String,
    /// Where it was read from: `models/profiles/<name>.toml (built-in)` or a path.
    pub file: String,
    pub source: String,
    pub inference: Vec<InferenceFigures>,
    pub training: Option<TrainingFigures>,
    /// `[model]`: the architecture, for the LLM engine (SPEC 2.8).
    pub model: Option<ModelArch>,
    /// `[llm."<type>"]`: measured step times per instance type.
    pub llm_steps: Vec<LlmSteps>,
}

/// One instance type's `[llm."<type>"]` table.
#[derive(Debug)]
pub struct LlmSteps {
    pub instance: String,
    /// GPUs per replica the times were measured at: a table applies only to
    /// designs whose replicas span that many GPUs.
    pub tensor_parallel: u32,
    pub fit: FitMs,
    pub source: Option<String>,
    /// Fitted by `spotsim calibrate`: the engine measured and the held-out error.
    pub calibrated: Option<Calibrated>,
}

/// A table's calibration record.
#[derive(Clone, Debug)]
pub struct Calibrated {
    pub engine: String,
    pub held_out_error: Option<String>,
}

/// One instance type's row of `[inference."<type>"]`.
#[derive(Debug)]
pub struct InferenceFigures {
    pub instance: String,
    pub workers: u32,
    pub p50: SimTime,
    pub p99: SimTime,
    pub memory_gb: f64,
    pub source: Option<String>,
}

/// `[training]`: the figures every type shares, and the types.
#[derive(Debug)]
pub struct TrainingFigures {
    pub reference: String,
    pub checkpoint_size_gb: Option<f64>,
    /// Per GPU (one data-parallel replica), or host memory on a CPU type.
    pub memory_gb: f64,
    pub types: Vec<TrainingType>,
}

#[derive(Debug)]
pub struct TrainingType {
    pub instance: String,
    /// Throughput of one node relative to the reference type.
    pub speed: f64,
    /// (nodes, efficiency), nodes ascending; empty when not measured.
    pub scaling: Vec<(u32, f64)>,
    pub source: Option<String>,
}

/// The lognormal through `p50` and `p99`: median p50, σ = ln(p99/p50) / Z99.
pub fn lognormal_through(p50: SimTime, p99: SimTime) -> Dist {
    let (p50, p99) = (p50.as_secs_f64(), p99.as_secs_f64());
    Dist::LogNormal { median: p50, sigma: (p99 / p50).ln() / Z99 }
}

impl InferenceFigures {
    pub fn service_time(&self) -> Dist {
        lognormal_through(self.p50, self.p99)
    }
}

impl TrainingType {
    /// Parallel efficiency at `n` nodes: 1 at one node, linear between the
    /// listed counts, the last listed value beyond them; 1 when not measured.
    pub fn efficiency(&self, n: u32) -> f64 {
        let mut below = (1, 1.0);
        for &(m, e) in &self.scaling {
            if n <= m {
                let t = f64::from(n.saturating_sub(below.0)) / f64::from(m - below.0);
                return below.1 + t * (e - below.1);
            }
            below = (m, e);
        }
        below.1
    }

    /// What `check` says about the scaling at `n` nodes.
    pub fn scaling_note(&self, n: u32) -> String {
        if self.scaling.is_empty() {
            return format!("perfect: the profile gives no scaling for {} (assumed, not measured)", self.instance);
        }
        let listed: Vec<String> = self.scaling.iter().map(|(m, e)| format!("{m} = {e}")).collect();
        format!("{:.4} at {n} node(s), from {{ {} }}", self.efficiency(n), listed.join(", "))
    }
}

/// The highest S3 throughput one instance was measured to reach, Gbit/s:
/// 8,003 MB/s on a c5n.18xlarge (dvassallo/s3-benchmark, 2019, 155 types).
pub const S3_MAX_GBPS: f64 = 64.0;

/// Seconds to write (or read) a checkpoint of `gigabytes` with `"auto"`: the
/// size over the instance's baseline network bandwidth, at most
/// `S3_MAX_GBPS`, rounded to the millisecond (docs/profiles.md).
pub fn checkpoint_transfer_secs(instance: &Instance, gigabytes: f64) -> f64 {
    let secs = gigabytes * 8.0 / instance.network_gbps.min(S3_MAX_GBPS);
    (secs * 1e3).round() / 1e3
}

/// The compute time of `reference_work` on `nodes` nodes of `kind`:
/// work / (speed × n × scaling(n)), to the millisecond.
pub fn compute_time(kind: &TrainingType, nodes: u32, reference_work: SimTime) -> SimTime {
    let rate = kind.speed * f64::from(nodes) * kind.efficiency(nodes);
    SimTime::from_millis(((reference_work.as_secs_f64() / rate) * 1e3).round().max(1.0) as u64)
}

/// How an experiment used its profile: what `check` and the manifest show as
/// the design's `from_profile` table, and whether the model fits.
#[derive(Clone, Debug, Serialize)]
pub struct ProfileUse {
    pub profile: String,
    pub file: String,
    pub instance: String,
    /// Keys of the scenario table whose values the profile gave.
    pub gives: Vec<&'static str>,
    /// Keys set by hand, which win over the profile.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub overridden: Vec<&'static str>,
    /// Training: `work` as written, in hours on the reference type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference_work: Option<SimTime>,
    /// Training: the derived compute time (the design's `work`), in hours.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub compute_time_h: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub speed: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scaling: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checkpoint_size_gb: Option<f64>,
    /// Which memory is compared, e.g. "accelerator memory per GPU".
    pub memory: &'static str,
    pub memory_needed_gib: f64,
    pub memory_available_gib: f64,
    pub fits: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Where the instance type was chosen, for a does-not-fit error.
    #[serde(skip)]
    pub origin: Origin,
    #[serde(skip)]
    pub key: String,
}

impl ProfileUse {
    /// The input error of a point whose model does not fit its instance.
    pub fn does_not_fit(&self, point: &str) -> InputError {
        InputError::new(
            &self.origin,
            Some(&self.key),
            format!(
                "{point}: the model does not fit: profile \"{}\" needs {:.2} GiB of {}, {} has {:.2} GiB",
                self.profile, self.memory_needed_gib, self.memory, self.instance, self.memory_available_gib
            ),
        )
        .with_hint(Some("choose a type with more memory; `spotsim profiles` shows what each needs".into()))
    }
}

/// The memory a model needs on `instance` against what it has: (what is
/// compared, needed GiB, available GiB). `per_gpu`: the figure is for one
/// GPU (a data-parallel replica) rather than the whole instance.
pub(crate) fn memory_check(instance: &Instance, memory_gb: f64, per_gpu: bool) -> (&'static str, f64, f64) {
    let need = memory_gb * GIB_PER_GB;
    if !instance.has_accelerator() {
        ("host memory", need, instance.memory_gib)
    } else if per_gpu {
        ("accelerator memory per GPU", need, instance.memory_per_accelerator_gib())
    } else {
        ("accelerator memory", need, instance.accelerator_memory_gib)
    }
}

pub(crate) fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

// ---------------------------------------------------------------- reading

/// Parses a profile file; `file` names it in messages.
pub fn parse(text: &str, file: &str) -> Result<Profile> {
    let doc = parse_document(text, file)?;
    let root = Section::root(&doc, Origin::file(file, 1), Path::new(""));
    let name = root.string("name")?.ok_or_else(|| root.missing("name", "the profile's name"))?;
    let source = root.string("source")?.ok_or_else(|| root.missing("source", "where the figures come from"))?;
    root.string("note")?;
    let mut inference = Vec::new();
    if let Some(s) = root.section("inference")? {
        for entry in s.named_entries(|_| true) {
            inference.push(read_inference_type(&s, entry)?);
        }
    }
    let training = match root.section("training")? {
        Some(t) => Some(read_training(&t)?),
        None => None,
    };
    let model = root.section("model")?.map(|m| read_model(&m)).transpose()?;
    let mut llm_steps = Vec::new();
    if let Some(s) = root.section("llm")? {
        for entry in s.named_entries(|_| true) {
            catalog_type(&s, entry)?;
            let t = s.child(entry)?;
            let e = t.entry("step_time").ok_or_else(|| t.missing("step_time", "{ prefill, decode, overhead }"))?;
            let fit = read_fit(&t, e)?;
            let tensor_parallel = t.integer("tensor_parallel", 1, 64)?.ok_or_else(|| {
                t.missing("tensor_parallel", "the GPUs per replica the step times were measured at, such as 1")
            })? as u32;
            let source = t.string("source")?;
            t.string("note")?;
            // What `spotsim calibrate` records beside a table it fitted (SPEC 2.10).
            let calibrated = t
                .string("engine")?
                .map(|engine| Calibrated { engine, held_out_error: t.string("held_out_error").ok().flatten() });
            t.string("date")?;
            t.string("held_out_error")?;
            t.finish()?;
            llm_steps.push(LlmSteps { instance: entry.key.clone(), tensor_parallel, fit, source, calibrated });
        }
    }
    root.finish()?;
    if inference.is_empty() && training.is_none() && model.is_none() {
        return Err(root.missing("inference", "an [inference.\"<type>\"], a [training] or a [model] table"));
    }
    Ok(Profile { name, file: file.to_string(), source, inference, training, model, llm_steps })
}

/// `[model]`: an LLM's architecture.
fn read_model(m: &Section) -> Result<ModelArch> {
    let need = |key: &'static str, what: &str| m.missing(key, what);
    let count = |key: &'static str| -> Result<u32> {
        Ok(m.integer(key, 1, 1_000_000)?.ok_or_else(|| need(key, "a whole number"))? as u32)
    };
    let model = ModelArch {
        parameters: m.number("parameters", 1.0, 1e15)?.ok_or_else(|| need("parameters", "a count, such as 8.03e9"))?,
        layers: count("layers")?,
        hidden: count("hidden")?,
        kv_heads: count("kv_heads")?,
        head_dim: count("head_dim")?,
        bytes_per_parameter: m.number("bytes_per_parameter", 0.125, 8.0)?.unwrap_or(2.0),
    };
    m.allow(&["source", "note", "name"]);
    m.finish()?;
    Ok(model)
}

/// `[model]` of an LLM profile.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ModelArch {
    pub parameters: f64,
    pub layers: u32,
    pub hidden: u32,
    pub kv_heads: u32,
    pub head_dim: u32,
    pub bytes_per_parameter: f64,
}

impl ModelArch {
    pub fn weight_bytes(&self) -> f64 {
        self.parameters * self.bytes_per_parameter
    }

    /// Keys and values of every layer for one token.
    pub fn kv_bytes_per_token(&self) -> f64 {
        2.0 * self.layers as f64 * self.kv_heads as f64 * self.head_dim as f64 * self.bytes_per_parameter
    }
}

/// The fitted form of SPEC 2.8 (DistServe's), in milliseconds: a prefill
/// iteration takes `a + b·Σl + c·Σl²`, a decode iteration `a + b·Σctx + c·B`,
/// and every iteration adds `o0 + o1·Σctx`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct FitMs {
    pub prefill: [f64; 3],
    pub decode: [f64; 3],
    pub overhead: [f64; 2],
}

impl FitMs {
    /// SPEC 2.8's example fit, the one its closed forms and tests use.
    pub const SPEC_EXAMPLE: FitMs =
        FitMs { prefill: [22.05, 0.1405, 8.08e-6], decode: [23.48, 5.93e-4, 0.0607], overhead: [2.0, 1e-4] };
}

/// `{ prefill = [a, b, c], decode = [a, b, c], overhead = [o0, o1] }`, ms.
pub fn read_fit<'a>(parent: &Section<'a>, entry: &'a Entry) -> Result<FitMs> {
    let t = parent.child(entry)?;
    let mut fit = FitMs { prefill: [0.0; 3], decode: [0.0; 3], overhead: [0.0; 2] };
    for (key, out) in
        [("prefill", &mut fit.prefill[..]), ("decode", &mut fit.decode[..]), ("overhead", &mut fit.overhead[..])]
    {
        let e = t.entry(key).ok_or_else(|| {
            t.missing(key, &format!("{} coefficients in milliseconds (SPEC 2.8's fitted form)", out.len()))
        })?;
        let items = match &e.node.value {
            Value::Array(items) if items.len() == out.len() => items,
            _ => return Err(t.error(e, format!("expected a list of {} numbers (milliseconds)", out.len()))),
        };
        for (slot, node) in out.iter_mut().zip(items) {
            *slot = match node.value {
                Value::Int(i) if i >= 0 => i as f64,
                Value::Float(f) if f >= 0.0 && f.is_finite() => f,
                _ => return Err(t.error(e, format!("expected numbers >= 0, found {}", node.display()))),
            };
        }
    }
    t.finish()?;
    Ok(fit)
}

/// The catalog entry of a profile's instance-type key.
fn catalog_type(s: &Section, entry: &Entry) -> Result<&'static Instance> {
    catalog().find(&entry.key).ok_or_else(|| {
        InputError::new(
            &entry.key_origin,
            Some(&s.key_path(&entry.key)),
            format!("\"{}\" is not in the catalog (see `spotsim catalog`)", entry.key),
        )
        .with_hint(did_you_mean(&entry.key, catalog().names()))
    })
}

fn read_inference_type<'a>(s: &Section<'a>, entry: &'a Entry) -> Result<InferenceFigures> {
    catalog_type(s, entry)?;
    let t = s.child(entry)?;
    let workers = t.integer("workers", 1, 100_000)?.ok_or_else(|| t.missing("workers", "requests served at once"))?;
    let latency = t.section("latency")?.ok_or_else(|| t.missing("latency", "{ p50 = \"4ms\", p99 = \"7ms\" }"))?;
    let p50 = latency.positive_duration("p50")?.ok_or_else(|| latency.missing("p50", "a duration"))?;
    let p99 = latency.positive_duration("p99")?.ok_or_else(|| latency.missing("p99", "a duration"))?;
    if p99 < p50 {
        let entry = latency.entry("p99").expect("read");
        return Err(latency.error(entry, format!("expected `p99` >= `p50` ({p50}), found {p99}")));
    }
    latency.allow(&["source", "note"]);
    latency.finish()?;
    let memory_gb = t.gigabytes("memory")?.ok_or_else(|| t.missing("memory", "a size such as \"1.5GB\""))?;
    let source = t.string("source")?;
    t.string("note")?;
    t.finish()?;
    Ok(InferenceFigures { instance: entry.key.clone(), workers: workers as u32, p50, p99, memory_gb, source })
}

fn read_training(t: &Section) -> Result<TrainingFigures> {
    let reference = t.string("reference")?.ok_or_else(|| t.missing("reference", "the type `work` is measured on"))?;
    let checkpoint_size_gb = t.gigabytes("checkpoint_size")?;
    let memory_gb = t.gigabytes("memory")?.ok_or_else(|| t.missing("memory", "a size per GPU such as \"16GB\""))?;
    t.allow(&["source", "note"]);
    let mut types = Vec::new();
    for entry in t.named_entries(|e| matches!(e.node.value, Value::Table(_))) {
        catalog_type(t, entry)?;
        let s = t.child(entry)?;
        let speed =
            s.number("speed", 1e-6, 1e6)?.ok_or_else(|| s.missing("speed", "throughput relative to the reference"))?;
        let scaling = match s.section("scaling")? {
            Some(sc) => read_scaling(&sc)?,
            None => Vec::new(),
        };
        let source = s.string("source")?;
        s.string("note")?;
        s.finish()?;
        types.push(TrainingType { instance: entry.key.clone(), speed, scaling, source });
    }
    t.finish()?;
    let names: Vec<&str> = types.iter().map(|k| k.instance.as_str()).collect();
    match types.iter().find(|k| k.instance == reference) {
        Some(r) if r.speed == 1.0 => {}
        found => {
            let entry = t.entry("reference").expect("read");
            let why = match found {
                Some(r) => format!("the reference's speed must be 1, found {}", r.speed),
                None => format!("expected one of the types listed here: {}", names.join(", ")),
            };
            return Err(t.error(entry, why).with_hint(did_you_mean(&reference, names.iter().copied())));
        }
    }
    Ok(TrainingFigures { reference, checkpoint_size_gb, memory_gb, types })
}

/// `scaling = { 4 = 0.97, 16 = 0.90 }`: node counts (2 or more) to efficiency.
fn read_scaling(s: &Section) -> Result<Vec<(u32, f64)>> {
    let mut points = Vec::new();
    for entry in s.named_entries(|_| true) {
        let n = entry.key.parse::<u32>().ok().filter(|&n| n >= 2).ok_or_else(|| {
            InputError::new(
                &entry.key_origin,
                Some(&s.key_path(&entry.key)),
                "expected a node count of 2 or more (scaling at 1 node is 1 by definition)",
            )
        })?;
        let e = match entry.node.value {
            Value::Int(i) => i as f64,
            Value::Float(f) => f,
            _ => return Err(s.error(entry, "expected a number, the efficiency (1 = perfect)")),
        };
        if !(e > 0.0 && e <= 2.0) {
            return Err(s.error(entry, format!("expected an efficiency above 0 and at most 2, found {e}")));
        }
        points.push((n, e));
    }
    points.sort_by_key(|p| p.0);
    Ok(points)
}

/// The built-in profiles' names, as `profile = "NAME"` takes them.
pub fn built_in_names() -> impl Iterator<Item = &'static str> + Clone {
    BUILT_IN.iter().map(|(n, _)| *n)
}

/// The built-in profiles, parsed once. They are part of the build and
/// checked by a test, so a parse failure here is a bug, not bad input.
pub fn built_in() -> &'static [Arc<Profile>] {
    static PROFILES: OnceLock<Vec<Arc<Profile>>> = OnceLock::new();
    PROFILES.get_or_init(|| {
        BUILT_IN
            .iter()
            .map(|(name, text)| {
                let file = format!("models/profiles/{name}.toml (built-in)");
                Arc::new(parse(text, &file).unwrap_or_else(|e| panic!("built-in profile: {e}")))
            })
            .collect()
    })
}

// ---------------------------------------------------------------- listing

fn duration_text(t: SimTime) -> String {
    let s = t.as_secs_f64();
    if s < 1.0 { format!("{:.2} ms", s * 1e3) } else { format!("{s:.2} s") }
}

fn fit_text(instance: &Instance, memory_gb: f64, per_gpu: bool) -> String {
    let (_, need, have) = memory_check(instance, memory_gb, per_gpu);
    let verdict = if need <= have { "fits" } else { "does not fit" };
    format!("{need:.1}/{have:.0} GiB {verdict}")
}

/// The listing `spotsim profiles` prints.
pub fn render() -> String {
    let mut out = String::new();
    for p in built_in() {
        out += &format!("{}  [{}]\n  source: {}\n", p.name, p.file, p.source);
        if !p.inference.is_empty() {
            out += &format!(
                "  {:<18} {:>7} {:>10} {:>10} {:>8}  {:<26} {:>9}\n",
                "inference", "workers", "p50", "p99", "memory", "needs/has", "usd/hour"
            );
            for f in &p.inference {
                let i = catalog().find(&f.instance).expect("profile types are in the catalog");
                out += &format!(
                    "  {:<18} {:>7} {:>10} {:>10} {:>5} GB  {:<26} {:>9.4}\n",
                    f.instance,
                    f.workers,
                    duration_text(f.p50),
                    duration_text(f.p99),
                    f.memory_gb,
                    fit_text(i, f.memory_gb, false),
                    i.price_per_hour
                );
                if let Some(src) = &f.source {
                    out += &format!("      source: {src}\n");
                }
            }
        }
        if let Some(t) = &p.training {
            let size = t.checkpoint_size_gb.map_or("-".to_string(), |g| format!("{g} GB"));
            out += &format!(
                "  training: work in hours on {}; checkpoint {size}; memory {} GB per GPU\n",
                t.reference, t.memory_gb
            );
            out += &format!(
                "  {:<18} {:>7}  {:<30} {:<26} {:>9}\n",
                "instance", "speed", "scaling (nodes = efficiency)", "needs/has per GPU", "usd/hour"
            );
            for k in &t.types {
                let i = catalog().find(&k.instance).expect("profile types are in the catalog");
                let scaling = if k.scaling.is_empty() {
                    "perfect (assumed)".to_string()
                } else {
                    k.scaling.iter().map(|(n, e)| format!("{n} = {e}")).collect::<Vec<_>>().join(", ")
                };
                out += &format!(
                    "  {:<18} {:>7.2}  {:<30} {:<26} {:>9.4}\n",
                    k.instance,
                    k.speed,
                    scaling,
                    fit_text(i, t.memory_gb, true),
                    i.price_per_hour
                );
                if let Some(src) = &k.source {
                    out += &format!("      source: {src}\n");
                }
            }
        }
        if let Some(m) = &p.model {
            out += &format!(
                "  model: {:.3e} parameters, {} layers, hidden {}, {} KV heads x {}, {} bytes per parameter: \
                 weights {:.2} GB, KV cache {} KiB per token\n",
                m.parameters,
                m.layers,
                m.hidden,
                m.kv_heads,
                m.head_dim,
                m.bytes_per_parameter,
                m.weight_bytes() / 1e9,
                m.kv_bytes_per_token() / 1024.0
            );
            let measured: Vec<String> = p
                .llm_steps
                .iter()
                .map(|t| format!("{} at {} GPU(s) per replica", t.instance, t.tensor_parallel))
                .collect();
            out += &if measured.is_empty() {
                "  llm step times: the roofline on every GPU type that holds the weights (docs/llm-serving.md)\n"
                    .to_string()
            } else {
                format!("  llm step times: measured for {}; the roofline elsewhere\n", measured.join(", "))
            };
        }
        out += "\n";
    }
    out +=
        "Figures and their derivations: models/profiles/README.md; how they become model inputs: docs/profiles.md.\n";
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_profiles_parse_and_are_named_after_their_files() {
        let names: Vec<&str> = built_in().iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, BUILT_IN.iter().map(|(n, _)| *n).collect::<Vec<_>>());
        let bert = &built_in()[0];
        assert_eq!(bert.inference.len(), 3);
        assert_eq!(bert.inference[1].instance, "ml.g5.2xlarge");
        assert_eq!(bert.inference[1].p50, SimTime::from_nanos(8_230_000));
        let train = built_in()[3].training.as_ref().unwrap();
        assert_eq!(train.reference, "ml.p3.2xlarge");
        assert_eq!(train.checkpoint_size_gb, Some(4.1));
        let p4d = train.types.iter().find(|t| t.instance == "ml.p4d.24xlarge").unwrap();
        assert_eq!(p4d.scaling, vec![(4, 0.97), (16, 0.90), (32, 0.84)]);
        let text = render();
        for p in built_in() {
            assert!(text.contains(&p.name));
        }
        assert!(text.contains("perfect (assumed)") && text.contains("4 = 0.97"));
    }

    #[test]
    fn scaling_interpolates_and_holds_the_last_value() {
        let t = TrainingType {
            instance: "x".into(),
            speed: 1.0,
            scaling: vec![(4, 0.97), (16, 0.90), (32, 0.84)],
            source: None,
        };
        assert_eq!(t.efficiency(1), 1.0);
        assert!((t.efficiency(2) - 0.99).abs() < 1e-12);
        assert!((t.efficiency(4) - 0.97).abs() < 1e-12);
        assert!((t.efficiency(10) - 0.935).abs() < 1e-12);
        assert!((t.efficiency(24) - 0.87).abs() < 1e-12);
        assert_eq!(t.efficiency(64), 0.84);
        let perfect = TrainingType { scaling: Vec::new(), ..t };
        assert_eq!(perfect.efficiency(8), 1.0);
        assert!(perfect.scaling_note(8).starts_with("perfect"));
    }

    #[test]
    fn the_lognormal_passes_through_p50_and_p99() {
        let d = lognormal_through(SimTime::from_millis(4), SimTime::from_millis(7));
        assert!((d.quantile_secs(0.5) - 0.004).abs() < 1e-12);
        assert!((d.quantile_secs(0.99) - 0.007).abs() < 1e-9, "{}", d.quantile_secs(0.99));
        // The spec's rounded constant gives the same σ to 5 digits.
        let Dist::LogNormal { sigma, .. } = d else { panic!() };
        assert!((sigma - (7.0f64 / 4.0).ln() / 2.3263).abs() < 1e-5);
    }

    #[test]
    fn profile_errors_name_file_line_and_key() {
        let bad = "name = \"x\"\nsource = \"s\"\n[inference.\"ml.g4dn.xlarge\"]\nworkers = 1\n\
                   latency = { p50 = \"1ms\", p99 = \"2ms\" }\nmemory = \"1GB\"\nsorce = \"x\"\n";
        let e = parse(bad, "p.toml").unwrap_err();
        assert_eq!(e.origin, Origin::file("p.toml", 7));
        assert_eq!(e.key.as_deref(), Some("inference.\"ml.g4dn.xlarge\".sorce"));
        assert!(e.hint.unwrap().contains("source"));
        let unknown = "name = \"x\"\nsource = \"s\"\n[inference.\"ml.g4dn.xlarg\"]\n";
        let e = parse(unknown, "p.toml").unwrap_err();
        assert_eq!(e.origin.line, Some(3));
        assert!(e.hint.unwrap().contains("ml.g4dn.xlarge"));
        let scaling = "name = \"x\"\nsource = \"s\"\n[training]\nreference = \"ml.p3.2xlarge\"\nmemory = \"1GB\"\n\
                       [training.\"ml.p3.2xlarge\"]\nspeed = 1.0\nscaling = { 1 = 0.9 }\n";
        let e = parse(scaling, "p.toml").unwrap_err();
        assert_eq!((e.origin.line, e.key.as_deref()), (Some(8), Some("training.\"ml.p3.2xlarge\".scaling.1")));
    }
}
