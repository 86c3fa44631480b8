//! Reads a token count or its distribution (`tokens.input`, the sessions'
//! `turns`, `input` and `output`).

use std::sync::Arc;

use crate::input::section::{Result, Section, read_text};
use crate::input::tree::{Entry, Value};
use crate::scenarios::inference::traffic::tokens::{CountDist, MAX_TOKENS};

/// A token count: a whole number, or a distribution table.
pub(super) fn read_count(s: &Section, key: &'static str) -> Result<CountDist> {
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
