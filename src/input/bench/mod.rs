//! The files LLM serving benchmarks write, read into one shape (SPEC 2.10):
//! how each run was loaded, what its requests were, and what the client
//! measured. `docs/calibrate.md` lists the formats and their fields.
//!
//! - `vllm bench serve` / `benchmark_serving.py --save-result` JSON, with or
//!   without `--save-detailed`'s per-request arrays;
//! - NVIDIA AIPerf / genai-perf `profile_export*.json` (the summary);
//! - GuideLLM's benchmark report JSON (one run per benchmark);
//! - a plain per-request CSV (send time, tokens, TTFT, end to end).
//!
//! Every refusal names the file and the field (as an [`InputError`] whose
//! key is the field's path) and says what was expected.

mod aiperf;
mod aiperf_csv;
mod guidellm;
mod requests_csv;
mod vllm;

use serde_json::Value;

use crate::base::stats::quantiles;
use crate::input::error::{InputError, Origin, did_you_mean};

/// A benchmark file's format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Vllm,
    Aiperf,
    /// AIPerf's or genai-perf's summary CSV.
    AiperfCsv,
    GuideLlm,
    RequestsCsv,
}

impl Format {
    pub const NAMES: [&'static str; 5] = ["vllm", "aiperf", "aiperf-csv", "guidellm", "csv"];

    pub fn name(self) -> &'static str {
        match self {
            Format::Vllm => "vllm",
            Format::Aiperf => "aiperf",
            Format::AiperfCsv => "aiperf-csv",
            Format::GuideLlm => "guidellm",
            Format::RequestsCsv => "csv",
        }
    }

    /// `--format NAME`, with the nearest name on a typo.
    pub fn parse(name: &str) -> Result<Format, String> {
        match name {
            "vllm" => Ok(Format::Vllm),
            "aiperf" | "genai-perf" => Ok(Format::Aiperf),
            "aiperf-csv" | "genai-perf-csv" => Ok(Format::AiperfCsv),
            "guidellm" => Ok(Format::GuideLlm),
            "csv" => Ok(Format::RequestsCsv),
            _ => {
                let hint = did_you_mean(name, Format::NAMES).map(|h| format!(" ({h})")).unwrap_or_default();
                Err(format!("unknown format \"{name}\"; expected one of vllm, aiperf, aiperf-csv, guidellm, csv{hint}"))
            }
        }
    }
}

/// How a run's requests were sent.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Load {
    /// Open loop at `rps`: gamma inter-arrival times of shape `burstiness`
    /// (1: Poisson), as vLLM draws them.
    Rate { rps: f64, burstiness: f64 },
    /// Every request at t = 0 (vLLM's `request_rate = inf`).
    AllAtOnce,
    /// A closed loop: `users` requests in flight, a new one when one ends.
    Closed { users: u32 },
    /// The send times the file gives, relative to the first.
    Trace,
}

impl Load {
    pub fn describe(&self) -> String {
        match *self {
            Load::Rate { rps, burstiness: 1.0 } => format!("Poisson {rps} req/s"),
            Load::Rate { rps, burstiness } => format!("gamma {rps} req/s, burstiness {burstiness}"),
            Load::AllAtOnce => "all at once".into(),
            Load::Closed { users } => format!("closed loop, {users} in flight"),
            Load::Trace => "send times as recorded".into(),
        }
    }
}

/// One request a client sent and saw finish.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Request {
    pub input: u32,
    pub output: u32,
    /// Seconds from the run's first send (a trace's), if the file gives it.
    pub send_s: Option<f64>,
}

/// Token counts when a file gives only their summary: a lognormal through
/// the mean and standard deviation (a constant when the deviation is 0).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LengthStats {
    pub mean: f64,
    pub std: f64,
}

/// What the client measured over a run's completed requests, milliseconds
/// and per second. `None`: the file does not give it.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Measured {
    pub ttft_p50_ms: Option<f64>,
    pub ttft_p90_ms: Option<f64>,
    pub ttft_p99_ms: Option<f64>,
    pub tpot_p50_ms: Option<f64>,
    pub e2e_p50_ms: Option<f64>,
    pub output_tokens_per_s: Option<f64>,
    pub requests_per_s: Option<f64>,
}

/// One benchmark run read from a file.
#[derive(Clone, Debug)]
pub struct BenchRun {
    /// The file as given on the command line.
    pub file: String,
    pub sha256: String,
    pub format: Format,
    /// The serving engine and its version, where the file names them.
    pub engine: Option<String>,
    pub version: Option<String>,
    pub model: Option<String>,
    pub load: Load,
    /// Requests that completed, with their token counts (per-request files).
    pub requests: Option<Vec<Request>>,
    /// Token counts of a summary-only file.
    pub input_stats: Option<LengthStats>,
    pub output_stats: Option<LengthStats>,
    pub completed: u32,
    /// Seconds from the first send to the last response.
    pub duration_s: Option<f64>,
    pub measured: Measured,
    /// What the reader noticed and the replay approximates.
    pub notes: Vec<String>,
}

impl BenchRun {
    /// Whether the run's requests are known one by one (the stronger fit).
    pub fn per_request(&self) -> bool {
        self.requests.is_some()
    }

    /// The load level runs are ordered by: the achieved request throughput.
    pub fn load_level(&self) -> f64 {
        self.measured.requests_per_s.unwrap_or(0.0)
    }
}

/// An error at `field` of `file`.
pub(crate) fn field_error(file: &str, field: &str, message: impl Into<String>) -> InputError {
    InputError::new(&Origin { file: file.to_string(), line: None }, Some(field), message)
}

/// The SHA-256 of `bytes`, in hex.
pub fn sha256_hex(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    let digest = Sha256::digest(bytes);
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// Reads the file at `path` (shown as `file`), detecting its format unless
/// `format` is given: its runs (one, or a GuideLLM report's benchmarks).
pub fn read(path: &std::path::Path, file: &str, format: Option<Format>) -> Result<Vec<BenchRun>, InputError> {
    let bytes = std::fs::read(path).map_err(|e| {
        InputError::new(&Origin { file: file.to_string(), line: None }, None, format!("cannot read: {e}"))
    })?;
    parse_all(&bytes, file, format)
}

/// Parses a benchmark file of one run (the first of a report's).
pub fn parse(bytes: &[u8], file: &str, format: Option<Format>) -> Result<BenchRun, InputError> {
    parse_all(bytes, file, format).map(|mut runs| runs.remove(0))
}

/// Parses a benchmark file's bytes into its runs (at least one).
pub fn parse_all(bytes: &[u8], file: &str, format: Option<Format>) -> Result<Vec<BenchRun>, InputError> {
    let sha256 = sha256_hex(bytes);
    let origin = Origin { file: file.to_string(), line: None };
    let text = std::str::from_utf8(bytes).map_err(|_| InputError::new(&origin, None, "not UTF-8 text"))?;
    let trimmed = text.trim_start();
    let json = || -> Result<Value, InputError> {
        serde_json::from_str(text).map_err(|e| {
            InputError::new(&Origin { file: file.to_string(), line: Some(e.line()) }, None, format!("not JSON: {e}"))
        })
    };
    let format = match format {
        Some(f) => f,
        None if trimmed.starts_with('{') => detect(&json()?, file)?,
        None if trimmed.trim_start_matches('\u{feff}').starts_with("Metric,") => Format::AiperfCsv,
        None => Format::RequestsCsv,
    };
    let mut runs = match format {
        Format::Vllm => vec![vllm::read(&json()?, file)?],
        Format::Aiperf => vec![aiperf::read(&json()?, file)?],
        Format::AiperfCsv => vec![aiperf_csv::read(text, file)?],
        Format::GuideLlm => guidellm::read(&json()?, file)?,
        Format::RequestsCsv => vec![requests_csv::read(text, file)?],
    };
    for run in &mut runs {
        run.sha256 = sha256.clone();
        if run.completed == 0 {
            return Err(field_error(file, "completed", "no request completed: nothing to fit"));
        }
    }
    Ok(runs)
}

/// Which JSON format a document is, by the fields only it has.
fn detect(doc: &Value, file: &str) -> Result<Format, InputError> {
    let has = |k: &str| doc.get(k).is_some();
    if has("median_ttft_ms") || has("ttfts") || (has("request_rate") && has("completed")) {
        Ok(Format::Vllm)
    } else if has("time_to_first_token") && (has("request_throughput") || has("input_config")) {
        Ok(Format::Aiperf)
    } else if has("benchmarks") {
        Ok(Format::GuideLlm)
    } else {
        Err(InputError::new(
            &Origin { file: file.to_string(), line: None },
            None,
            "not a benchmark file spotsim knows: expected vLLM's --save-result JSON (`median_ttft_ms`, `request_rate`, \
             `completed`), an AIPerf / genai-perf profile_export JSON (`time_to_first_token`, `request_throughput`), \
             a GuideLLM report (`benchmarks`), or a per-request CSV",
        )
        .with_hint(Some(
            "give `--format vllm|aiperf|csv` to read it as one of them and see which field is wrong".into(),
        )))
    }
}

/// Typed getters over a JSON object that name the field when it is wrong.
pub(crate) struct Fields<'a> {
    pub doc: &'a Value,
    pub file: &'a str,
    /// The dotted path of `doc` in the file ("" at the top).
    pub at: String,
}

impl<'a> Fields<'a> {
    pub fn top(doc: &'a Value, file: &'a str) -> Result<Self, InputError> {
        if !doc.is_object() {
            return Err(InputError::new(
                &Origin { file: file.to_string(), line: None },
                None,
                "expected a JSON object at the top",
            ));
        }
        Ok(Fields { doc, file, at: String::new() })
    }

    pub fn path(&self, key: &str) -> String {
        if self.at.is_empty() { key.to_string() } else { format!("{}.{key}", self.at) }
    }

    pub fn err(&self, key: &str, message: impl Into<String>) -> InputError {
        field_error(self.file, &self.path(key), message)
    }

    pub fn get(&self, key: &str) -> Option<&'a Value> {
        self.doc.get(key).filter(|v| !v.is_null())
    }

    pub fn child(&self, key: &str) -> Result<Option<Fields<'a>>, InputError> {
        match self.get(key) {
            None => Ok(None),
            Some(v) if v.is_object() => Ok(Some(Fields { doc: v, file: self.file, at: self.path(key) })),
            Some(v) => Err(self.err(key, format!("expected an object, found {}", kind(v)))),
        }
    }

    pub fn number(&self, key: &str) -> Result<Option<f64>, InputError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::Number(n)) => {
                Ok(Some(n.as_f64().filter(|x| x.is_finite()).ok_or_else(|| self.err(key, "expected a finite number"))?))
            }
            Some(v) => Err(self.err(key, format!("expected a number, found {}", kind(v)))),
        }
    }

    /// A number that must be there and be at least `min`.
    pub fn need(&self, key: &str, min: f64, what: &str) -> Result<f64, InputError> {
        let x = self.number(key)?.ok_or_else(|| self.err(key, format!("missing: expected {what}")))?;
        if x < min {
            return Err(self.err(key, format!("expected {what} (at least {min}), found {x}")));
        }
        Ok(x)
    }

    pub fn string(&self, key: &str) -> Result<Option<&'a str>, InputError> {
        match self.get(key) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(v) => Err(self.err(key, format!("expected a string, found {}", kind(v)))),
        }
    }

    /// An array of numbers, each at least 0.
    pub fn numbers(&self, key: &str) -> Result<Option<Vec<f64>>, InputError> {
        let Some(v) = self.get(key) else { return Ok(None) };
        let Value::Array(items) = v else {
            return Err(self.err(key, format!("expected an array of numbers, found {}", kind(v))));
        };
        items
            .iter()
            .enumerate()
            .map(|(i, x)| match x.as_f64() {
                Some(x) if x.is_finite() && x >= 0.0 => Ok(x),
                _ => Err(self.err(&format!("{key}[{i}]"), format!("expected a number >= 0, found {}", show(x)))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some)
    }
}

/// What a JSON value is, for messages.
pub(crate) fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

pub(crate) fn show(v: &Value) -> String {
    let s = v.to_string();
    if s.len() > 40 { format!("{}...", &s[..40]) } else { s }
}

/// The type-7 median, 90th and 99th percentiles of `values` (not empty).
/// A run's requests and its per-request samples (ms; output `tokens` in
/// all) over `duration` s: the requests start their clock at the first
/// send and go in send order, and the samples give what was measured.
pub(crate) fn measured_from_requests(
    requests: &mut [Request],
    first: f64,
    (ttft, tpot, e2e): (&mut [f64], &mut [f64], &mut [f64]),
    tokens: f64,
    duration: f64,
) -> Measured {
    for r in requests.iter_mut() {
        r.send_s = r.send_s.map(|s| s - first);
    }
    requests.sort_by(|a, b| a.send_s.partial_cmp(&b.send_s).expect("finite"));
    let [t50, t90, t99] = p50_p90_p99(ttft);
    Measured {
        ttft_p50_ms: Some(t50),
        ttft_p90_ms: Some(t90),
        ttft_p99_ms: Some(t99),
        tpot_p50_ms: (!tpot.is_empty()).then(|| p50_p90_p99(tpot)[0]),
        e2e_p50_ms: Some(p50_p90_p99(e2e)[0]),
        output_tokens_per_s: (duration > 0.0).then(|| tokens / duration),
        requests_per_s: (duration > 0.0).then(|| requests.len() as f64 / duration),
    }
}

pub(crate) fn p50_p90_p99(values: &mut [f64]) -> [f64; 3] {
    let q = quantiles(values, &[0.5, 0.9, 0.99]);
    [q[0], q[1], q[2]]
}

#[cfg(test)]
mod tests;
