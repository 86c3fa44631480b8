//! vLLM's `--save-result` JSON (`vllm bench serve`, `benchmark_serving.py`):
//! the run's settings and summary at the top, and with `--save-detailed`
//! one entry per request in `input_lens`, `output_lens`, `ttfts`, `itls`
//! and `errors` (seconds).

use serde_json::Value;

use super::{BenchRun, Fields, Format, LengthStats, Load, Measured, Request, kind, p50_p90_p99};
use crate::input::InputError;

const ARRAYS: [&str; 3] = ["input_lens", "output_lens", "ttfts"];

pub(super) fn read(doc: &Value, file: &str) -> Result<BenchRun, InputError> {
    let f = Fields::top(doc, file)?;
    let mut notes = Vec::new();
    let rate = match f.get("request_rate") {
        None => return Err(f.err("request_rate", "missing: expected the run's request rate, a number or \"inf\"")),
        Some(Value::String(s)) if s.eq_ignore_ascii_case("inf") => None,
        Some(Value::Number(n)) if n.as_f64().is_some_and(|x| x > 0.0 && x.is_finite()) => n.as_f64(),
        Some(v) => {
            return Err(f.err("request_rate", format!("expected a number > 0 or \"inf\", found {}", super::show(v))));
        }
    };
    let burstiness = f.number("burstiness")?.unwrap_or(1.0);
    if burstiness <= 0.0 {
        return Err(f.err("burstiness", format!("expected a number > 0 (1 is Poisson), found {burstiness}")));
    }
    let max_concurrency = f.number("max_concurrency")?;
    if let Some(c) = max_concurrency
        && (c < 1.0 || c.fract() != 0.0)
    {
        return Err(f.err("max_concurrency", format!("expected a whole number >= 1, found {c}")));
    }
    let load = match (rate, max_concurrency) {
        (None, Some(c)) => Load::Closed { users: c as u32 },
        (None, None) => Load::AllAtOnce,
        (Some(rps), cap) => {
            if let Some(c) = cap {
                notes.push(format!(
                    "max_concurrency = {c} also capped the requests in flight; the replay is open loop at {rps} req/s"
                ));
            }
            Load::Rate { rps, burstiness }
        }
    };
    let completed = f.need("completed", 0.0, "the number of completed requests")?;
    let duration_s = f.number("duration")?;
    let ms = |key: &str| f.number(key);
    let mut measured = Measured {
        ttft_p50_ms: ms("median_ttft_ms")?,
        ttft_p90_ms: ms("p90_ttft_ms")?,
        ttft_p99_ms: ms("p99_ttft_ms")?,
        tpot_p50_ms: ms("median_tpot_ms")?,
        e2e_p50_ms: ms("median_e2el_ms")?,
        output_tokens_per_s: f.number("output_throughput")?,
        requests_per_s: f.number("request_throughput")?,
    };
    let present: Vec<&str> = ARRAYS.iter().copied().filter(|k| f.get(k).is_some()).collect();
    let requests = if present.is_empty() {
        None
    } else {
        if present.len() < ARRAYS.len() {
            let missing = ARRAYS.iter().find(|k| !present.contains(k)).expect("one is missing");
            return Err(f.err(
                missing,
                format!(
                    "missing: --save-detailed writes `input_lens`, `output_lens` and `ttfts` together; found only {}",
                    present.join(", ")
                ),
            ));
        }
        Some(detailed(&f, &mut measured)?)
    };
    let completed = match &requests {
        Some(r) => r.len() as u32,
        None => completed as u32,
    };
    let (input_stats, output_stats) = match &requests {
        Some(_) => (None, None),
        None => {
            let per = |key: &str| -> Result<LengthStats, InputError> {
                let total = f.need(key, 1.0, "the total tokens of the completed requests")?;
                Ok(LengthStats { mean: total / completed.max(1) as f64, std: 0.0 })
            };
            notes.push(
                "summary only (no --save-detailed arrays): every request replays at the mean token counts, and the \
                 fit sees only the file's percentiles"
                    .into(),
            );
            (Some(per("total_input_tokens")?), Some(per("total_output_tokens")?))
        }
    };
    if measured.ttft_p50_ms.is_none() && measured.tpot_p50_ms.is_none() {
        return Err(f.err("median_ttft_ms", "missing: the file gives neither TTFT nor TPOT percentiles"));
    }
    let version = ["version", "vllm_version", "engine_version"].iter().find_map(|k| f.string(k).ok().flatten());
    Ok(BenchRun {
        file: file.to_string(),
        sha256: String::new(),
        format: Format::Vllm,
        engine: f.string("backend")?.map(str::to_string),
        version: version.map(str::to_string),
        model: f.string("model_id")?.map(str::to_string),
        load,
        requests,
        input_stats,
        output_stats,
        completed,
        duration_s,
        measured,
        notes,
    })
}

/// The per-request arrays: the completed requests, and the percentiles
/// recomputed from them (type 7, where vLLM uses NumPy's default, the same).
fn detailed(f: &Fields, measured: &mut Measured) -> Result<Vec<Request>, InputError> {
    let inputs = f.numbers("input_lens")?.expect("present");
    let outputs = f.numbers("output_lens")?.expect("present");
    let ttfts = f.numbers("ttfts")?.expect("present");
    let n = inputs.len();
    for (key, len) in [("output_lens", outputs.len()), ("ttfts", ttfts.len())] {
        if len != n {
            return Err(f.err(key, format!("has {len} entries, `input_lens` has {n}: one entry per request in each")));
        }
    }
    let itls: Option<Vec<f64>> = match f.get("itls") {
        None => None,
        Some(Value::Array(rows)) => {
            if rows.len() != n {
                return Err(f.err("itls", format!("has {} entries, `input_lens` has {n}", rows.len())));
            }
            let mut sums = Vec::with_capacity(n);
            for (i, row) in rows.iter().enumerate() {
                let Value::Array(gaps) = row else {
                    return Err(
                        f.err(&format!("itls[{i}]"), format!("expected an array of seconds, found {}", kind(row)))
                    );
                };
                let mut s = 0.0;
                for (j, g) in gaps.iter().enumerate() {
                    match g.as_f64() {
                        Some(x) if x.is_finite() && x >= 0.0 => s += x,
                        _ => {
                            return Err(f.err(&format!("itls[{i}][{j}]"), format!("expected seconds >= 0, found {g}")));
                        }
                    }
                }
                sums.push(s);
            }
            Some(sums)
        }
        Some(v) => return Err(f.err("itls", format!("expected an array of arrays, found {}", kind(v)))),
    };
    let errors: Option<Vec<bool>> = match f.get("errors") {
        None => None,
        Some(Value::Array(items)) => {
            if items.len() != n {
                return Err(f.err("errors", format!("has {} entries, `input_lens` has {n}", items.len())));
            }
            Some(items.iter().map(|e| matches!(e, Value::String(s) if !s.is_empty())).collect())
        }
        Some(v) => return Err(f.err("errors", format!("expected an array of strings, found {}", kind(v)))),
    };
    let mut requests = Vec::with_capacity(n);
    let (mut ttft_ms, mut tpot_ms, mut e2e_ms) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        // vLLM leaves a failed request's TTFT at 0 and its output at 0.
        let failed = errors.as_ref().is_some_and(|e| e[i]) || ttfts[i] <= 0.0 || outputs[i] < 1.0;
        if failed {
            continue;
        }
        let whole = |x: f64, key: &str| -> Result<u32, InputError> {
            if x.fract() != 0.0 || x > u32::MAX as f64 {
                return Err(f.err(&format!("{key}[{i}]"), format!("expected a whole number of tokens, found {x}")));
            }
            Ok(x as u32)
        };
        let (input, output) = (whole(inputs[i], "input_lens")?.max(1), whole(outputs[i], "output_lens")?);
        requests.push(Request { input, output, send_s: None });
        ttft_ms.push(ttfts[i] * 1e3);
        if let Some(sums) = &itls {
            e2e_ms.push((ttfts[i] + sums[i]) * 1e3);
            if output >= 2 {
                tpot_ms.push(sums[i] * 1e3 / (output - 1) as f64);
            }
        }
    }
    if !ttft_ms.is_empty() {
        let [p50, p90, p99] = p50_p90_p99(&mut ttft_ms);
        (measured.ttft_p50_ms, measured.ttft_p90_ms, measured.ttft_p99_ms) = (Some(p50), Some(p90), Some(p99));
    }
    if !tpot_ms.is_empty() {
        measured.tpot_p50_ms = Some(p50_p90_p99(&mut tpot_ms)[0]);
    }
    if !e2e_ms.is_empty() {
        measured.e2e_p50_ms = Some(p50_p90_p99(&mut e2e_ms)[0]);
    }
    Ok(requests)
}
