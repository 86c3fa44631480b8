//! A plain per-request CSV: a header naming `send_time_s` (seconds, any
//! origin), `input_tokens`, `output_tokens`, `ttft_ms` and `e2e_ms`, then
//! one completed request per row. The run replays at its send times.

use super::{BenchRun, Format, Load, Request, field_error, measured_from_requests};
use crate::base::trace_file::csv_records;
use crate::input::error::{InputError, Origin, did_you_mean};

const COLUMNS: [&str; 5] = ["send_time_s", "input_tokens", "output_tokens", "ttft_ms", "e2e_ms"];

pub(super) fn read(text: &str, file: &str) -> Result<BenchRun, InputError> {
    let at = |line: usize, key: &str, message: String| {
        InputError::new(&Origin { file: file.to_string(), line: Some(line) }, Some(key), message)
    };
    let mut records = csv_records(text);
    let (line, header) = match records.next() {
        Some(Ok(h)) => h,
        Some(Err(e)) => return Err(field_error(file, "header", e.to_string())),
        None => {
            return Err(field_error(file, "header", format!("empty: expected a header with {}", COLUMNS.join(", "))));
        }
    };
    let names: Vec<&str> = header.iter().map(str::trim).collect();
    let mut index = [0usize; 5];
    for (k, col) in COLUMNS.iter().enumerate() {
        index[k] = names.iter().position(|n| n == col).ok_or_else(|| {
            at(line, col, format!("missing column: the header must name {}", COLUMNS.join(", ")))
                .with_hint(names.iter().find_map(|n| did_you_mean(n, [*col])))
        })?;
    }
    let mut requests = Vec::new();
    let (mut ttft, mut tpot, mut e2e) = (Vec::new(), Vec::new(), Vec::new());
    let (mut first, mut last_end, mut tokens) = (f64::INFINITY, f64::NEG_INFINITY, 0.0);
    for record in records {
        let (line, r) = record.map_err(|e| field_error(file, "row", e.to_string()))?;
        let cell = |k: usize| -> Result<f64, InputError> {
            let raw = r.get(index[k]).unwrap_or("").trim();
            match raw.parse::<f64>() {
                Ok(x) if x.is_finite() && x >= 0.0 => Ok(x),
                _ => Err(at(line, COLUMNS[k], format!("expected a number >= 0, found \"{raw}\""))),
            }
        };
        let whole = |k: usize| -> Result<u32, InputError> {
            let x = cell(k)?;
            if x.fract() != 0.0 || x < 1.0 || x > u32::MAX as f64 {
                return Err(at(line, COLUMNS[k], format!("expected a whole number of tokens >= 1, found {x}")));
            }
            Ok(x as u32)
        };
        let (send, input, output, t, e) = (cell(0)?, whole(1)?, whole(2)?, cell(3)?, cell(4)?);
        if e < t {
            return Err(at(line, "e2e_ms", format!("{e} ms end to end is less than its TTFT, {t} ms")));
        }
        requests.push(Request { input, output, send_s: Some(send) });
        ttft.push(t);
        e2e.push(e);
        if output >= 2 {
            tpot.push((e - t) / (output - 1) as f64);
        }
        first = first.min(send);
        last_end = last_end.max(send + e / 1e3);
        tokens += output as f64;
    }
    if requests.is_empty() {
        return Err(field_error(file, "completed", "no rows: no request completed, nothing to fit"));
    }
    let duration = last_end - first;
    let measured = measured_from_requests(&mut requests, first, (&mut ttft, &mut tpot, &mut e2e), tokens, duration);
    Ok(BenchRun {
        file: file.to_string(),
        sha256: String::new(),
        format: Format::RequestsCsv,
        engine: None,
        version: None,
        model: None,
        load: Load::Trace,
        completed: requests.len() as u32,
        requests: Some(requests),
        input_stats: None,
        output_stats: None,
        duration_s: Some(duration),
        measured,
        notes: Vec::new(),
    })
}
