//! GuideLLM's benchmark report JSON (`guidellm benchmark --output-path
//! report.json`, the 0.2 schema): `benchmarks`, one per strategy of the
//! profile, each with `args.strategy` (`type_` synchronous, concurrent
//! with `streams`, throughput, constant or poisson with `rate`) and its
//! `requests.successful`, each with `prompt_tokens`, `output_tokens` and
//! the times `start_time`, `first_token_time`, `last_token_time`,
//! `end_time` (seconds). One file gives one run per benchmark.

use serde_json::Value;

use super::{BenchRun, Fields, Format, Load, Request, kind, measured_from_requests};
use crate::input::InputError;

pub(super) fn read(doc: &Value, file: &str) -> Result<Vec<BenchRun>, InputError> {
    let f = Fields::top(doc, file)?;
    let Some(Value::Array(benchmarks)) = f.get("benchmarks") else {
        return Err(f.err("benchmarks", "missing: expected an array of benchmarks"));
    };
    if benchmarks.is_empty() {
        return Err(f.err("benchmarks", "empty: no benchmark to fit"));
    }
    benchmarks
        .iter()
        .enumerate()
        .map(|(i, b)| {
            let at = format!("benchmarks[{i}]");
            let bf = Fields { doc: b, file, at: at.clone() };
            if !b.is_object() {
                return Err(f.err(&at, format!("expected an object, found {}", kind(b))));
            }
            benchmark(&bf, file, i, benchmarks.len())
        })
        .collect()
}

fn benchmark(b: &Fields, file: &str, i: usize, of: usize) -> Result<BenchRun, InputError> {
    let args = b.child("args")?.ok_or_else(|| b.err("args", "missing: expected the benchmark's arguments"))?;
    let strategy =
        args.child("strategy")?.ok_or_else(|| args.err("strategy", "missing: expected its scheduling strategy"))?;
    let kind =
        strategy.string("type_")?.ok_or_else(|| strategy.err("type_", "missing: expected the strategy's type"))?;
    let load = match kind {
        "synchronous" => Load::Closed { users: 1 },
        "concurrent" => {
            Load::Closed { users: strategy.need("streams", 1.0, "the number of concurrent streams")? as u32 }
        }
        "throughput" => match strategy.number("max_concurrency")? {
            Some(c) if c >= 1.0 => Load::Closed { users: c as u32 },
            _ => Load::AllAtOnce,
        },
        // Open loops replay their send times, which carry the rate.
        "constant" | "poisson" => Load::Trace,
        other => {
            return Err(strategy.err(
                "type_",
                format!("expected synchronous, concurrent, throughput, constant or poisson, found \"{other}\""),
            ));
        }
    };
    let requests =
        b.child("requests")?.ok_or_else(|| b.err("requests", "missing: expected the per-request statistics"))?;
    let Some(Value::Array(done)) = requests.get("successful") else {
        return Err(requests.err("successful", "missing: expected an array of the successful requests"));
    };
    let mut reqs = Vec::with_capacity(done.len());
    let (mut ttft, mut tpot, mut e2e) = (Vec::new(), Vec::new(), Vec::new());
    let (mut first, mut last, mut tokens) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
    for (k, r) in done.iter().enumerate() {
        let rf = Fields { doc: r, file, at: format!("{}.successful[{k}]", requests.at) };
        let tokens_of = |key: &str| -> Result<u32, InputError> {
            let x = rf.need(key, 0.0, "a whole number of tokens")?;
            if x.fract() != 0.0 {
                return Err(rf.err(key, format!("expected a whole number of tokens, found {x}")));
            }
            Ok(x as u32)
        };
        let (input, output) = (tokens_of("prompt_tokens")?.max(1), tokens_of("output_tokens")?);
        let time = |key: &str| rf.need(key, 0.0, "a time in seconds");
        let (start, first_token, last_token, end) =
            (time("start_time")?, time("first_token_time")?, time("last_token_time")?, time("end_time")?);
        if first_token < start || last_token < first_token || end < start {
            return Err(rf.err("first_token_time", "expected start <= first token <= last token, and start <= end"));
        }
        if output == 0 {
            continue;
        }
        reqs.push(Request { input, output, send_s: Some(start) });
        ttft.push((first_token - start) * 1e3);
        e2e.push((end - start) * 1e3);
        if output >= 2 {
            tpot.push((last_token - first_token) * 1e3 / (output - 1) as f64);
        }
        first = first.min(start);
        last = last.max(end);
        tokens += output as f64;
    }
    if reqs.is_empty() {
        return Err(requests.err("successful", "no request completed: nothing to fit"));
    }
    let duration = last - first;
    let measured = measured_from_requests(&mut reqs, first, (&mut ttft, &mut tpot, &mut e2e), tokens, duration);
    let label = if of > 1 { format!("{file}#{i}") } else { file.to_string() };
    Ok(BenchRun {
        file: label,
        sha256: String::new(),
        format: Format::GuideLlm,
        engine: None,
        version: None,
        model: None,
        load,
        completed: reqs.len() as u32,
        requests: Some(reqs),
        input_stats: None,
        output_stats: None,
        duration_s: Some(duration),
        measured,
        notes: Vec::new(),
    })
}
