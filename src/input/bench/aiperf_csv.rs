//! AIPerf's `profile_export_aiperf.csv` and genai-perf's
//! `profile_export_genai_perf.csv`: a table `Metric,avg,min,max,p99,...`
//! of per-request statistics, then `Metric,Value` of throughputs and the
//! request count. Numbers may carry thousands separators ("1,146.31").
//!
//! The CSV does not record the load. It is read as a closed loop, the
//! tools' default mode (`--concurrency`), of N = request throughput × mean
//! request latency users: Little's law, an identity for a closed loop
//! without think time. A run made with `--request-rate` should be given as
//! its JSON export instead, which records the rate.

use std::collections::HashMap;

use super::{BenchRun, Format, LengthStats, Load, Measured, field_error};
use crate::base::trace_file::csv_records;
use crate::input::error::{InputError, Origin};

/// A metric's row: its statistics by column name (`avg`, `p50`, `value`),
/// names in lower case.
type Rows = HashMap<String, HashMap<String, f64>>;

fn rows(text: &str, file: &str) -> Result<Rows, InputError> {
    let mut out = Rows::new();
    let mut columns: Vec<String> = Vec::new();
    for record in csv_records(text) {
        let (line, r) = record.map_err(|e| field_error(file, "row", e.to_string()))?;
        let cells: Vec<&str> = r.iter().map(str::trim).collect();
        if cells.first() == Some(&"Metric") {
            columns = cells[1..].iter().map(|c| c.to_lowercase()).collect();
            continue;
        }
        let Some((name, values)) = cells.split_first() else { continue };
        if columns.is_empty() {
            return Err(InputError::new(
                &Origin { file: file.to_string(), line: Some(line) },
                Some("Metric"),
                "expected a header `Metric,avg,min,max,...` before the rows",
            ));
        }
        let mut stats = HashMap::new();
        for (column, raw) in columns.iter().zip(values) {
            let x: f64 = raw.replace(',', "").parse().map_err(|_| {
                InputError::new(
                    &Origin { file: file.to_string(), line: Some(line) },
                    Some(&format!("{name}.{column}")),
                    format!("expected a number, found \"{raw}\""),
                )
            })?;
            stats.insert(column.clone(), x);
        }
        out.insert(name.to_lowercase(), stats);
    }
    Ok(out)
}

pub(super) fn read(text: &str, file: &str) -> Result<BenchRun, InputError> {
    let rows = rows(text, file)?;
    // A metric by the start of its name ("Time To First Token (ms)").
    let row = |name: &str| rows.iter().find(|(k, _)| k.starts_with(name)).map(|(_, v)| v);
    let stat = |name: &str, column: &str| row(name).and_then(|r| r.get(column).copied());
    let need = |name: &str, column: &str, what: &str| {
        stat(name, column).ok_or_else(|| field_error(file, &format!("{name}.{column}"), format!("missing: {what}")))
    };
    let measured = Measured {
        ttft_p50_ms: Some(need("time to first token", "p50", "the median time to first token (ms)")?),
        ttft_p90_ms: stat("time to first token", "p90"),
        ttft_p99_ms: stat("time to first token", "p99"),
        tpot_p50_ms: stat("inter token latency", "p50"),
        e2e_p50_ms: stat("request latency", "p50"),
        output_tokens_per_s: stat("output token throughput", "value"),
        requests_per_s: stat("request throughput", "value"),
    };
    // The spread from the quartiles, as for a normal: IQR / 1.349.
    let lengths = |name: &str| -> Result<LengthStats, InputError> {
        let mean = need(name, "avg", "the mean token count")?;
        if mean < 1.0 {
            return Err(field_error(file, &format!("{name}.avg"), format!("expected at least 1 token, found {mean}")));
        }
        let iqr = stat(name, "p75").zip(stat(name, "p25")).map_or(0.0, |(a, b)| a - b);
        Ok(LengthStats { mean, std: (iqr / 1.349).max(0.0) })
    };
    let input_stats = lengths("input sequence length")?;
    let output_stats = lengths("output sequence length")?;
    let completed = need("request count", "value", "the number of completed requests")?;
    let throughput = need("request throughput", "value", "the requests completed per second")?;
    let latency_ms = need("request latency", "avg", "the mean request latency (ms)")?;
    let users = (throughput * latency_ms / 1e3).round().max(1.0);
    Ok(BenchRun {
        file: file.to_string(),
        sha256: String::new(),
        format: Format::AiperfCsv,
        engine: None,
        version: None,
        model: None,
        load: Load::Closed { users: users as u32 },
        requests: None,
        input_stats: Some(input_stats),
        output_stats: Some(output_stats),
        completed: completed.max(0.0) as u32,
        duration_s: (throughput > 0.0).then(|| completed / throughput),
        measured,
        notes: vec![format!(
            "summary CSV: the load is not recorded, read as a closed loop of {users} users (request throughput × \
             mean latency); token counts replay as lognormals through the mean and the quartiles' spread"
        )],
    })
}
