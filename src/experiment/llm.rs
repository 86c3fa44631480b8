//! Reads what the LLM engine needs (SPEC 2.8): `[inference.llm]`, an
//! `slo` table, and the token counts of `[traffic]`.

use std::sync::Arc;

use crate::base::trace_file::{CsvTable, TraceError};
use crate::catalog::catalog;
use crate::catalog::profile::{Profile, read_fit};
use crate::input::InputError;
use crate::input::section::{Result, Section, read_text};
use crate::input::tree::{Entry, Value};
use crate::scenarios::inference::llm::roofline::{Gpu, Refusal, kv_capacity};
use crate::scenarios::inference::llm::{
    Llm, RooflineTerms, Routing, Scheduler, StepOrigin, StepSource, StepTime, TokenSlo,
};
use crate::scenarios::inference::traffic::mooncake::{MOONCAKE_BLOCK_TOKENS, parse_hash_ids};
use crate::scenarios::inference::traffic::prefix::Prompt;
use crate::scenarios::inference::traffic::tokens::{CountDist, MAX_TOKENS, Tokens, parse_token_columns};
use crate::scenarios::inference::traffic::{Traffic, TrafficSource};

/// Defaults of `[inference.llm]` (docs/llm-serving.md). The scheduler is
/// vLLM V1's, which always runs chunked prefill, with the token budget and
/// sequence cap of `vllm serve` (`EngineArgs.get_batch_defaults`,
/// vllm/engine/arg_utils.py, vLLM 0.10 and later): 8192 tokens and 1024
/// sequences on a GPU of at least 70 GiB that is not an A100 (H100, H200),
/// else 2048 and 256. Without a catalog GPU, the smaller pair.
pub const DEFAULT_CHUNK: u32 = 2048;
pub const DEFAULT_MAX_SEQS: u32 = 256;
pub const DEFAULT_CHUNK_LARGE_GPU: u32 = 8192;
pub const DEFAULT_MAX_SEQS_LARGE_GPU: u32 = 1024;
/// vLLM's default without chunked prefill is the model's context length;
/// 8192 is Llama 3's.
pub const DEFAULT_MAX_BATCHED_TOKENS: u32 = 8192;
pub const DEFAULT_MEMORY_UTIL: f64 = 0.9;
/// vLLM's KV block size on CUDA (`CacheConfig.block_size`).
pub const DEFAULT_BLOCK_SIZE: u32 = 16;

const GIB: f64 = (1u64 << 30) as f64;

/// Keys of other tools that users write in `[inference.llm]` (and, for
/// the tensor-parallel size, `[inference]`), with what to write instead.
pub(super) const LLM_HINTS: [(&str, &str); 3] = [
    ("chunk_size", "did you mean `chunk`? (the chunked scheduler's tokens per iteration)"),
    ("tensor_parallel", TENSOR_PARALLEL_HINT),
    ("tensor_parallel_size", TENSOR_PARALLEL_HINT),
];
const TENSOR_PARALLEL_HINT: &str = "GPUs per replica come from the instance: its GPUs / `replicas` (in \
    [inference.llm]); for tensor parallel 4 on ml.g5.12xlarge (4 GPUs), give replicas = 1";

/// A share of requests turned away from which a design gets a warning: the
/// share `recommend` and `loadtest` allow by default (served_frac >= 0.99).
pub const WARN_SHARE: f64 = 1.0 - super::objective::DEFAULT_SERVED_FRAC;

/// Two engine names such as "vLLM 0.8.5" and "vllm  0.8.5": the same but
/// for case and spacing.
fn same_engine(a: &str, b: &str) -> bool {
    let norm = |x: &str| x.split_whitespace().map(str::to_lowercase).collect::<Vec<_>>();
    norm(a) == norm(b)
}

/// A share as a percentage: whole from 10% to 99.5%, else one decimal, so
/// that 0.4% does not read 0%.
fn percent(share: f64) -> String {
    let p = 100.0 * share;
    if (10.0..99.5).contains(&p) { format!("{p:.0}%") } else { format!("{p:.1}%") }
}

/// `slo` as a table `{ ttft, tpot }`, if it is one.
pub(super) fn read_token_slo(s: &Section) -> Result<Option<TokenSlo>> {
    let Some(entry) = s.entry("slo") else { return Ok(None) };
    if !matches!(entry.node.value, Value::Table(_)) {
        return Ok(None);
    }
    let t = s.section("slo")?.expect("present");
    let ttft = t.positive_duration("ttft")?.ok_or_else(|| t.missing("ttft", "the time-to-first-token objective"))?;
    let tpot = t.positive_duration("tpot")?.ok_or_else(|| t.missing("tpot", "the time-per-output-token objective"))?;
    t.finish()?;
    Ok(Some(TokenSlo { ttft, tpot }))
}

/// `[inference.llm]` of an `engine = "llm"` design on `instance`, with the
/// profile's model and measured step times if there is a profile.
pub(super) fn read_llm(
    s: &Section,
    instance: Option<&str>,
    profile: Option<&Profile>,
    slo: Option<TokenSlo>,
    traffic: &Traffic,
    traffic_section: &Section,
    copy_gpus: Option<u32>,
) -> Result<Llm> {
    // Without the table, every key takes its default.
    static EMPTY: crate::input::tree::Table = crate::input::tree::Table { entries: Vec::new() };
    let l = match s.section("llm")? {
        Some(l) => l,
        None => Section::root(&EMPTY, s.origin().clone(), s.base_dir()),
    };
    let l = &l;
    // Without the table its keys' messages name `inference.llm`.
    let missing = |key: &str, expected: &str| {
        if s.has("llm") { l.missing(key, expected) } else { s.missing("llm", &format!("`{key}`: {expected}")) }
    };
    let kind = instance.and_then(|name| catalog().find(name));
    // An inference component's copy is one replica on the GPUs it reserves.
    if copy_gpus.is_some()
        && let Some(entry) = l.entry("replicas")
    {
        return Err(l
            .error(entry, "a component's copy is one replica")
            .with_hint(Some("set the GPUs of each copy with `gpus` in its [[inference.components]] entry".into())));
    }
    let gpus = copy_gpus.unwrap_or_else(|| kind.map_or(1, |k| k.gpus.max(1)));
    let replicas = l.integer("replicas", 1, 1024)?.unwrap_or(1) as u32;
    if !gpus.is_multiple_of(replicas) {
        let divisors: Vec<String> = (1..=gpus).filter(|d| gpus.is_multiple_of(*d)).map(|d| d.to_string()).collect();
        return Err(l
            .error(
                l.entry("replicas").expect("read"),
                format!(
                    "{replicas} replicas do not divide the {gpus} GPU(s) of {}: each replica takes gpus / replicas GPUs",
                    instance.unwrap_or("this instance")
                ),
            )
            .with_hint(Some(format!("use one of {}", divisors.join(", ")))));
    }
    let gpus_per_replica = gpus / replicas;
    let scheduler = match l.choice("scheduler", &["vllm", "chunked"])? {
        Some("vllm") => Scheduler::Vllm,
        _ => Scheduler::Chunked,
    };
    let large_gpu =
        kind.is_some_and(|k| k.gpus > 0 && Gpu::of(k).memory_bytes >= 70.0 * GIB && !k.gpu.contains("A100"));
    let (default_chunk, default_seqs) = if large_gpu {
        (DEFAULT_CHUNK_LARGE_GPU, DEFAULT_MAX_SEQS_LARGE_GPU)
    } else {
        (DEFAULT_CHUNK, DEFAULT_MAX_SEQS)
    };
    let chunk = l.integer("chunk", 1, MAX_TOKENS as i64)?.map_or(default_chunk, |c| c as u32);
    let max_seqs = l.integer("max_seqs", 1, 1_000_000)?.map_or(default_seqs, |c| c as u32);
    let max_batched_tokens =
        l.integer("max_batched_tokens", 1, MAX_TOKENS as i64)?.map_or(DEFAULT_MAX_BATCHED_TOKENS, |c| c as u32);
    let memory_util = l.number("memory_util", 0.01, 1.0)?.unwrap_or(DEFAULT_MEMORY_UTIL);
    // The engine and version the design runs, to compare with a calibrated
    // table's (SPEC 2.10); said nowhere else.
    let serving_engine = l.string("serving_engine")?;
    // vLLM V1 caches prefixes by default (`enable_prefix_caching`); traffic
    // without content ids has nothing to hit, so its numbers do not move.
    let prefix_caching = l.boolean("prefix_caching")?.unwrap_or(true);
    let block_size = l.integer("block_size", 1, 1 << 16)?.map_or(DEFAULT_BLOCK_SIZE, |b| b as u32);
    let routing = match l.choice("routing", &["least-outstanding", "session-affinity", "prefix-aware"])? {
        Some("session-affinity") => Routing::SessionAffinity,
        Some("prefix-aware") => Routing::PrefixAware,
        _ => Routing::LeastOutstanding,
    };
    let model = profile.and_then(|p| p.model);
    let gpu = kind.filter(|k| k.gpus > 0).map(Gpu::of);
    let blamed = if copy_gpus.is_some() { "gpus" } else { "instance" };
    let at_instance = |message: String| match s.entry(blamed) {
        Some(e) => s.error(e, message),
        None => s.missing(blamed, &message),
    };
    // The weights must fit a replica, whatever the KV capacity.
    // vLLM profiles its activation peak at the iteration's token budget.
    let budget = if scheduler == Scheduler::Chunked { chunk } else { max_batched_tokens };
    let model_kv = match (&model, &gpu) {
        (Some(m), Some(g)) => match kv_capacity(m, g, gpus_per_replica, memory_util, budget) {
            Ok(cap) => Some(cap),
            Err(Refusal::TooBig { need_gib, have_gib }) => {
                return Err(at_instance(format!(
                    "the model does not fit: profile \"{}\" needs {need_gib:.2} GiB for its weights per replica, \
                     a replica of {gpus_per_replica} GPU(s) of {} has {have_gib:.2} GiB (memory_util {memory_util})",
                    profile.map_or("", |p| p.name.as_str()),
                    instance.unwrap_or("")
                ))
                .with_hint(Some(
                    "use fewer replicas per instance (more GPUs each), or a type with more GPU memory".into(),
                )));
            }
            Err(Refusal::Missing(_)) => None,
        },
        _ => None,
    };
    let kv_tokens = match l.integer("kv_tokens", 1, i64::MAX)? {
        Some(k) => k as u64,
        None => model_kv.ok_or_else(|| {
            missing(
                "kv_tokens",
                "the KV-cache capacity per replica in tokens, or a `profile` with a [model] table on a GPU instance \
                 from the catalog (the capacity then follows from the memory)",
            )
        })?,
    };
    let fit_for_type = profile.and_then(|p| {
        p.llm_steps.iter().find(|t| Some(t.instance.as_str()) == instance && t.tensor_parallel == gpus_per_replica)
    });
    let mut step_origin = StepOrigin::Roofline;
    let step_source = match l.entry("step_time") {
        Some(e) => match &e.node.value {
            Value::Str(text) if text == "roofline" => None,
            Value::Str(text) => {
                return Err(l
                    .error(
                        e,
                        format!("expected \"roofline\" or a table {{ prefill, decode, overhead }}, found \"{text}\""),
                    )
                    .with_hint(crate::input::error::did_you_mean(text, ["roofline"])));
            }
            _ => {
                step_origin = StepOrigin::Given;
                Some(read_fit(l, e)?)
            }
        },
        None => fit_for_type.map(|t| {
            step_origin = match &t.calibrated {
                Some(c) => {
                    StepOrigin::Calibrated { engine: c.engine.clone(), held_out_error: c.held_out_error.clone() }
                }
                None => StepOrigin::Profile,
            };
            t.fit.clone()
        }),
    };
    let (step_time, step, roofline) = match step_source {
        Some(fit) => {
            let step = StepTime::from_fit(&fit);
            (StepSource::Fit(fit), step, None)
        }
        None => {
            let blame = |message: String| match l.entry("step_time") {
                Some(e) => l.error(e, message),
                None => missing("step_time", &message),
            };
            let Some(m) = &model else {
                return Err(blame(
                    "step_time = \"roofline\" needs the model's architecture: a `profile` with a [model] table \
                     (or give a fitted step_time = { prefill = [...], decode = [...], overhead = [...] })"
                        .into(),
                ));
            };
            let Some(g) = &gpu else {
                return Err(blame("step_time = \"roofline\" needs a GPU `instance` from the catalog".into()));
            };
            let terms = RooflineTerms::derive(m, g, gpus_per_replica).map_err(|r| match r {
                Refusal::Missing(field) => blame(format!(
                    "the roofline needs the catalog's `{field}` for {}, which it does not give yet",
                    instance.unwrap_or("")
                )),
                Refusal::TooBig { .. } => unreachable!("checked above"),
            })?;
            (StepSource::Roofline(terms), terms.step_time(), Some(terms))
        }
    };
    l.finish_with(&LLM_HINTS)?;
    let Some(tokens) = &traffic.tokens else {
        return Err(traffic_section.missing(
            "tokens",
            "token counts for engine = \"llm\": `tokens = { input = ..., output = ... }`, or a request trace's \
             `input_tokens_column` and `output_tokens_column`",
        ));
    };
    // A request that can never run is rejected on arrival and counted; a
    // design in which none can run is a mistake, not a result.
    let (prompt, whole) = tokens.smallest();
    let blame = |key: &'static str, message: String| match l.entry(key) {
        Some(e) => l.error(e, message),
        None => at_instance(message),
    };
    if whole > kv_tokens {
        return Err(blame(
            "kv_tokens",
            format!(
                "no request can run: the smallest holds {whole} tokens of KV cache (prompt + output), \
                 more than the replica's {kv_tokens}"
            ),
        )
        .with_hint(Some(
            "raise kv_tokens (or memory_util), or give each replica more GPUs; a request larger than the cache \
             is rejected on arrival and counted in `rejected` (docs/llm-serving.md)"
                .into(),
        )));
    }
    if scheduler == Scheduler::Vllm && prompt > max_batched_tokens as u64 {
        return Err(blame(
            "max_batched_tokens",
            format!(
                "no request can run: the smallest prompt has {prompt} tokens, more than max_batched_tokens = \
                 {max_batched_tokens} (the scheduler \"vllm\" prefills whole prompts)"
            ),
        )
        .with_hint(Some("raise max_batched_tokens, or use scheduler = \"chunked\"".into())));
    }
    // Valid, but almost surely a mistake: said, and the run goes on.
    let warn = |key: &'static str, message: String| match (l.entry(key), s.entry("instance")) {
        (Some(e), _) => l.warn(e, message),
        (None, Some(e)) => s.warn(e, message),
        (None, None) => s.warn(s.entry("engine").expect("engine = \"llm\" is read"), message),
    };
    let shares = tokens.shares_above(max_batched_tokens as u64, kv_tokens);
    let of_them = |share: f64, rows: usize, what: &str| match shares.of {
        Some([.., n]) => format!("{} of the trace's {what} ({rows} of {n} rows)", percent(share)),
        None => format!("about {} of {what}", percent(share)),
    };
    if shares.whole >= WARN_SHARE {
        let value = match l.entry("kv_tokens") {
            Some(_) => format!("{} = {kv_tokens}", l.key_path("kv_tokens")),
            None => format!("the KV cache of {kv_tokens} tokens per replica (from the GPU memory)"),
        };
        let rows = shares.of.map_or(0, |o| o[1]);
        warn(
            "kv_tokens",
            format!(
                "{value} is below the prompt + output of {}, which are rejected on arrival; raise it (or \
                 memory_util), or give each replica more GPUs",
                of_them(shares.whole, rows, "requests")
            ),
        );
    }
    if scheduler == Scheduler::Vllm && shares.prompt >= WARN_SHARE {
        let rows = shares.of.map_or(0, |o| o[0]);
        warn(
            "max_batched_tokens",
            format!(
                "{} = {max_batched_tokens} is below {} (scheduler \"vllm\" rejects them); raise it or use \
                 scheduler = \"chunked\"",
                l.key_path("max_batched_tokens"),
                of_them(shares.prompt, rows, "prompts")
            ),
        );
    }
    if scheduler == Scheduler::Vllm
        && let Some(e) = l.entry("chunk")
    {
        l.warn(
            e,
            format!(
                "{} = {chunk} applies to scheduler = \"chunked\" only; scheduler \"vllm\" prefills whole prompts \
                 and ignores it: set scheduler = \"chunked\", or remove `chunk`",
                l.key_path("chunk")
            ),
        );
    }
    // A table calibrated on another engine or version still applies, but the
    // step times it holds may not (SPEC 2.10).
    if let (Some(design), Some(c), Some(e)) =
        (serving_engine.as_deref(), fit_for_type.and_then(|t| t.calibrated.as_ref()), l.entry("serving_engine"))
        && l.entry("step_time").is_none()
        && !same_engine(design, &c.engine)
    {
        l.warn(
            e,
            format!(
                "{} = \"{design}\", but profile \"{}\"'s step times for {} were calibrated on \"{}\": they may not \
                 hold for this engine; calibrate again on its benchmark files (docs/calibrate.md)",
                l.key_path("serving_engine"),
                profile.map_or("", |p| p.name.as_str()),
                instance.unwrap_or(""),
                c.engine
            ),
        );
    }
    // A measured table at another tensor-parallel size does not apply.
    let measured: Vec<u32> = profile
        .into_iter()
        .flat_map(|p| &p.llm_steps)
        .filter(|t| Some(t.instance.as_str()) == instance)
        .map(|t| t.tensor_parallel)
        .collect();
    if fit_for_type.is_none() && l.entry("step_time").is_none() && !measured.is_empty() {
        let sizes: Vec<String> = measured.iter().map(|t| t.to_string()).collect();
        let fitting: Vec<String> = measured.iter().map(|t| (gpus / t).to_string()).collect();
        warn(
            "replicas",
            format!(
                "profile \"{}\" measured {} at tensor_parallel = {} only, and a replica here gets {gpus_per_replica} \
                 GPU(s) ({gpus} / replicas = {replicas}), so its step times come from the roofline, not the \
                 measurement: set replicas = {} to use the measured table, or step_time = \"roofline\" to say so",
                profile.map_or("", |p| p.name.as_str()),
                instance.unwrap_or(""),
                sizes.join(" or "),
                fitting.join(" or ")
            ),
        );
    }
    Ok(Llm {
        replicas,
        gpus_per_replica,
        scheduler,
        chunk,
        max_seqs,
        max_batched_tokens,
        kv_tokens,
        memory_util,
        step_time,
        roofline,
        slo,
        step,
        step_origin,
        serving_engine,
        prefix_caching,
        block_size,
        routing,
        single_steps: false,
    })
}

/// The token counts of `[traffic]`: `tokens = { input, output }`, or a
/// request trace's `input_tokens_column` and `output_tokens_column`, from
/// `table`, the trace as read for its times.
pub(super) fn read_tokens(t: &Section, traffic: &mut Traffic, table: Option<&CsvTable>) -> Result<()> {
    let columns = (t.string("input_tokens_column")?, t.string("output_tokens_column")?);
    let drawn = t.section("tokens")?;
    let tokens = match (columns, drawn) {
        ((None, None), None) => return Ok(()),
        ((None, None), Some(d)) => {
            let input = read_count(&d, "input")?;
            let output = read_count(&d, "output")?;
            d.finish()?;
            Tokens::Drawn { input, output }
        }
        ((Some(_), Some(_)), Some(_)) => {
            return Err(t.error(
                t.entry("tokens").expect("read"),
                "give either `tokens` or the trace's token columns, not both",
            ));
        }
        ((Some(input_column), Some(output_column)), None) => {
            let (TrafficSource::Requests { file, times, .. }, Some(table)) = (&traffic.source, table) else {
                return Err(t
                    .error(t.entry("input_tokens_column").expect("read"), "applies to request traces only")
                    .with_hint(Some("add `format = \"requests\"` for a trace with one row per request".into())));
            };
            // Blamed on the key of the column at fault.
            let counts = parse_token_columns(table, &input_column, &output_column)
                .map_err(|(key, e)| t.error(t.entry(key).expect("read"), format!("{file} {e}")))?;
            debug_assert_eq!(counts.len(), times.len());
            match t.string("hash_ids_column")? {
                None => Tokens::Columns { input_column, output_column, counts: counts.into() },
                Some(column) => {
                    let block = t.integer("hash_block_tokens", 1, 1 << 20)?.map_or(MOONCAKE_BLOCK_TOKENS, |b| b as u32);
                    let prompts = read_hash_ids(table, &column, block, &counts)
                        .map_err(|e| t.error(t.entry("hash_ids_column").expect("read"), format!("{file} {e}")))?;
                    Tokens::Prompts {
                        source: format!("column `{column}`, {block} tokens per hash id"),
                        counts: counts.into(),
                        prompts: prompts.into(),
                    }
                }
            }
        }
        ((input, _), _) => {
            let (key, other) = if input.is_some() {
                ("input_tokens_column", "output_tokens_column")
            } else {
                ("output_tokens_column", "input_tokens_column")
            };
            return Err(t.error(t.entry(key).expect("read"), format!("needs `{other}` too")));
        }
    };
    traffic.tokens = Some(tokens);
    Ok(())
}

/// Each row's prompt from its cell of `column` (hash ids separated by
/// spaces or `;`, `block` tokens each), for the row's input count.
fn read_hash_ids(
    csv: &CsvTable,
    column: &str,
    block: u32,
    counts: &[[u32; 2]],
) -> std::result::Result<Vec<Option<Prompt>>, TraceError> {
    let i = csv.column(&[column]).ok_or_else(|| {
        let message = format!("no column `{column}` for `hash_ids_column`; the columns are {}", csv.header.join(", "));
        TraceError::at(csv.header_line, message)
    })?;
    let mut prompts = Vec::with_capacity(counts.len());
    for ((line, row), &[input, _]) in csv.rows.iter().zip(counts) {
        let text = csv.cell(row, i, *line)?;
        let at = |e: String| TraceError::at(*line, format!("column `{column}`: {e}"));
        let ids = parse_hash_ids(text).map_err(at)?;
        let prompt =
            Prompt::from_hash_ids(&ids, block, input).map_err(|e| at(format!("{e}; see `hash_block_tokens`")))?;
        prompts.push((!ids.is_empty()).then_some(prompt));
    }
    Ok(prompts)
}

/// A token count: a whole number, or a distribution table.
fn read_count(s: &Section, key: &'static str) -> Result<CountDist> {
    let entry = s.entry(key).ok_or_else(|| s.missing(key, "a token count, or { dist = \"lognormal\", ... }"))?;
    let whole = |n: &Entry, value: &Value| -> Result<u32> {
        match value {
            Value::Int(i) if (1..=MAX_TOKENS as i64).contains(i) => Ok(*i as u32),
            _ => Err(s.error(n, format!("expected a whole number of tokens from 1 to {MAX_TOKENS}"))),
        }
    };
    if !matches!(entry.node.value, Value::Table(_)) {
        return Ok(CountDist::Constant(whole(entry, &entry.node.value)?));
    }
    let d = s.child(entry)?;
    let kinds = ["constant", "lognormal", "uniform", "empirical"];
    let kind = d.choice("dist", &kinds)?.ok_or_else(|| d.missing("dist", &format!("one of {}", kinds.join(", "))))?;
    let count = |k: &'static str| -> Result<u32> {
        let e = d.entry(k).ok_or_else(|| d.missing(k, "a whole number of tokens"))?;
        match e.node.value {
            Value::Int(i) if (1..=MAX_TOKENS as i64).contains(&i) => Ok(i as u32),
            _ => Err(d.error(e, format!("expected a whole number of tokens from 1 to {MAX_TOKENS}"))),
        }
    };
    let dist = match kind {
        "constant" => CountDist::Constant(count("value")?),
        "lognormal" => CountDist::LogNormal {
            median: d.number("median", 1.0, MAX_TOKENS as f64)?.ok_or_else(|| d.missing("median", "a token count"))?,
            sigma: d.number("sigma", 0.0, 10.0)?.ok_or_else(|| d.missing("sigma", "a number"))?,
        },
        "uniform" => {
            let (min, max) = (count("min")?, count("max")?);
            if min > max {
                return Err(d.error(d.entry("max").expect("read"), format!("expected `max` >= `min` ({min})")));
            }
            CountDist::Uniform { min, max }
        }
        "empirical" => {
            let file = d.string("file")?.ok_or_else(|| d.missing("file", "a CSV file of token counts, one per row"))?;
            let e = d.entry("file").expect("read");
            let samples = read_counts(&d, &file).map_err(|m| d.error(e, format!("{file}: {m}")))?;
            CountDist::Empirical { file, samples }
        }
        _ => unreachable!("choice returns one of the options"),
    };
    d.finish()?;
    Ok(dist)
}

/// One token count per row, in the first column (a header is allowed).
fn read_counts(d: &Section, file: &str) -> std::result::Result<Arc<[u32]>, String> {
    let text = read_text(&d.base_dir().join(file)).map_err(|e| e.to_string())?;
    let mut samples = Vec::new();
    for (k, record) in crate::base::trace_file::csv_records(&text).enumerate() {
        let (line, record) = record.map_err(|e| e.to_string())?;
        let cell = record.get(0).unwrap_or("");
        match cell.parse::<u64>() {
            Ok(n) if (1..=MAX_TOKENS as u64).contains(&n) => samples.push(n as u32),
            Err(_) if k == 0 => {} // a header
            _ => return Err(format!("line {line}: expected a token count from 1 to {MAX_TOKENS}, found \"{cell}\"")),
        }
    }
    if samples.is_empty() {
        return Err("no counts: expected one token count per row".into());
    }
    Ok(samples.into())
}

/// An input error at `key` of `s` (present) for a request-engine key given
/// to an LLM design, or the reverse.
pub(super) fn not_for_engine(s: &Section, key: &'static str, why: &str) -> InputError {
    s.error(s.entry(key).expect("present"), why.to_string())
}
