//! NVIDIA AIPerf's `profile_export_aiperf.json` and genai-perf's
//! `profile_export_genai_perf.json` (the format of SageMaker AI benchmark
//! jobs): one object per metric (`unit`, `avg`, `p50`, `p90`, `p99`, ...)
//! and the run's settings in `input_config`. Their `inter_token_latency`
//! is per request (end to end less TTFT over the output tokens but one):
//! vLLM's TPOT.

use serde_json::Value;

use super::{BenchRun, Fields, Format, LengthStats, Load, Measured};
use crate::input::InputError;

/// A metric's statistic in milliseconds, by its `unit`.
fn ms(f: &Fields, metric: &str, stat: &str) -> Result<Option<f64>, InputError> {
    let Some(m) = f.child(metric)? else { return Ok(None) };
    let Some(x) = m.number(stat)? else { return Ok(None) };
    let scale = match m.string("unit")?.unwrap_or("ms") {
        "ms" => 1.0,
        "s" | "sec" | "seconds" => 1e3,
        "us" => 1e-3,
        "ns" => 1e-6,
        other => return Err(m.err("unit", format!("expected ms, s, us or ns, found \"{other}\""))),
    };
    Ok(Some(x * scale))
}

fn stat(f: &Fields, metric: &str, stat: &str) -> Result<Option<f64>, InputError> {
    match f.child(metric)? {
        Some(m) => m.number(stat),
        None => Ok(None),
    }
}

pub(super) fn read(doc: &Value, file: &str) -> Result<BenchRun, InputError> {
    let f = Fields::top(doc, file)?;
    let measured = Measured {
        ttft_p50_ms: ms(&f, "time_to_first_token", "p50")?,
        ttft_p90_ms: ms(&f, "time_to_first_token", "p90")?,
        ttft_p99_ms: ms(&f, "time_to_first_token", "p99")?,
        tpot_p50_ms: ms(&f, "inter_token_latency", "p50")?,
        e2e_p50_ms: ms(&f, "request_latency", "p50")?,
        output_tokens_per_s: stat(&f, "output_token_throughput", "avg")?,
        requests_per_s: stat(&f, "request_throughput", "avg")?,
    };
    if measured.ttft_p50_ms.is_none() {
        return Err(f.err("time_to_first_token.p50", "missing: expected the median time to first token"));
    }
    let lengths = |metric: &str| -> Result<LengthStats, InputError> {
        let mean = stat(&f, metric, "avg")?
            .filter(|m| *m >= 1.0)
            .ok_or_else(|| f.err(&format!("{metric}.avg"), "missing: expected the mean token count (>= 1)"))?;
        Ok(LengthStats { mean, std: stat(&f, metric, "std")?.unwrap_or(0.0).max(0.0) })
    };
    let input_stats = lengths("input_sequence_length")?;
    let output_stats = lengths("output_sequence_length")?;
    let completed = match stat(&f, "request_count", "avg")? {
        Some(n) => n,
        None => stat(&f, "request_latency", "count")?
            .ok_or_else(|| f.err("request_count.avg", "missing: expected the number of completed requests"))?,
    };
    let config = f.child("input_config")?.ok_or_else(|| {
        f.err("input_config", "missing: expected the run's settings (its concurrency or request rate)")
    })?;
    let load = load_of(&config)?;
    let version = f.string("aiperf_version")?.map(|v| format!("aiperf {v}"));
    Ok(BenchRun {
        file: file.to_string(),
        sha256: String::new(),
        format: Format::Aiperf,
        // The client's name and version, not the server's: `--engine` says that.
        engine: None,
        version: None,
        model: model_of(&config),
        load,
        requests: None,
        input_stats: Some(input_stats),
        output_stats: Some(output_stats),
        completed: completed.max(0.0) as u32,
        duration_s: stat(&f, "benchmark_duration", "avg")?,
        measured,
        notes: vec![format!(
            "summary only ({}): token counts replay as lognormals through the file's mean and standard deviation",
            version.unwrap_or_else(|| "genai-perf".into())
        )],
    })
}

/// The profiling phase's load: AIPerf's `phases` (the one not excluded from
/// the results), its older `loadgen`, or genai-perf's top-level keys.
fn load_of(config: &Fields) -> Result<Load, InputError> {
    let from = |t: &Fields| -> Result<Option<Load>, InputError> {
        if let Some(c) = t.number("concurrency")?.filter(|c| *c >= 1.0) {
            return Ok(Some(Load::Closed { users: c as u32 }));
        }
        if let Some(r) = t.number("request_rate")?.filter(|r| *r > 0.0) {
            return Ok(Some(Load::Rate { rps: r, burstiness: 1.0 }));
        }
        Ok(None)
    };
    if let Some(Value::Array(phases)) = config.get("phases") {
        for (i, p) in phases.iter().enumerate() {
            let phase = Fields { doc: p, file: config.file, at: format!("{}.phases[{i}]", config.at) };
            let excluded = p.get("exclude_from_results").and_then(Value::as_bool).unwrap_or(false);
            if !excluded && let Some(load) = from(&phase)? {
                return Ok(load);
            }
        }
    }
    for key in ["loadgen", "perf_analyzer"] {
        if let Some(t) = config.child(key)? {
            if let Some(load) = from(&t)? {
                return Ok(load);
            }
            if let Some(s) = t.child("stimulus")?
                && let Some(load) = from(&s)?
            {
                return Ok(load);
            }
        }
    }
    from(config)?.ok_or_else(|| {
        config.err("phases", "no load found: expected a profiling phase's `concurrency` or `request_rate`")
    })
}

fn model_of(config: &Fields) -> Option<String> {
    let models = config.doc.get("models")?;
    let first = models.get("items").and_then(|i| i.get(0)).or_else(|| models.get(0))?;
    first.get("name").and_then(Value::as_str).or_else(|| first.as_str()).map(str::to_string)
}
