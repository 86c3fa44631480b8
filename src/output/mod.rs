//! Result files. Each exporter returns bytes; [`OutputDir`] puts them in
//! place atomically, so a failed run never leaves a partial folder behind.
//! `shard` and `merge` split a run into slices and put them back together.

pub mod shard;

pub mod folder;
pub mod table;

pub use folder::{OUTPUT_FILES, OutputDir, Refused};
use serde::{Deserialize, Serialize};

use crate::base::stats::Summary;
use crate::scenarios::Timeline;
pub use table::{Column, Table};

/// The metrics of every replication of one point, row-major.
pub type PointRows = Vec<f64>;

/// What `manifest.json` records about the run besides the experiment.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct RunInfo {
    pub spotsim_version: String,
    pub command_line: Vec<String>,
    pub threads: usize,
    pub started: String,
    pub elapsed_s: f64,
}

impl RunInfo {
    /// This process's run: version, command line, threads, and when it
    /// started (`elapsed_s` from then).
    pub fn now(threads: usize, started: std::time::SystemTime, elapsed_s: f64) -> Self {
        let unix = started.duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        RunInfo {
            spotsim_version: env!("CARGO_PKG_VERSION").to_string(),
            command_line: std::env::args().collect(),
            threads,
            started: utc_timestamp(unix),
            elapsed_s,
        }
    }
}

/// A value for a CSV cell: integers without a decimal point, NaN as `NaN`.
pub fn cell(x: f64) -> String {
    let mut s = String::new();
    push_number(&mut s, x);
    s
}

/// Appends `x` in shortest round-trip form (`ryu`), whole numbers as integers.
fn push_number(out: &mut String, x: f64) {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        out.push_str(itoa::Buffer::new().format(x as i64));
    } else {
        out.push_str(ryu::Buffer::new().format(x));
    }
}

/// What the CSV files say about an experiment besides the numbers: the swept
/// keys, each point's swept values and the metric names. A shard carries it,
/// so a merge writes the same headers and row prefixes as a single run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Layout {
    pub swept: Vec<String>,
    pub points: Vec<Vec<String>>,
    pub metrics: Vec<String>,
    /// Each listed point's own index in the sweep (`run --point` lists some).
    pub numbers: Vec<usize>,
}

/// What the result files record of the experiment they come from, as plain
/// data, so that this layer never reads an experiment itself.
pub struct Subject<'a> {
    /// The experiment file, as given.
    pub file: String,
    pub seed: u64,
    /// Replications per point.
    pub replications: u64,
    pub layout: Layout,
    /// The resolved experiment, as `manifest.json` records it.
    pub resolved: &'a (dyn erased_serde::Serialize + Sync),
}

impl Subject<'_> {
    /// Identifies the resolved experiment (every default filled in, the
    /// replication count included) apart from its seed, which the manifest
    /// holds on its own so that a merge can say which of the two differs.
    /// Data files (traces, samples) enter by path, not content.
    pub fn fingerprint(&self) -> String {
        let mut json = serde_json::to_value(self.resolved).expect("the experiment serialises");
        if let Some(fields) = json.as_object_mut() {
            fields.remove("seed");
        }
        let mut hash = shard::Fnv::new();
        hash.write(json.to_string().as_bytes());
        hash.hex()
    }
}

/// One CSV line; cells with commas or quotes are quoted.
fn csv_row(cells: &[String]) -> String {
    let quoted: Vec<String> = cells
        .iter()
        .map(|c| if c.contains([',', '"', '\n']) { format!("\"{}\"", c.replace('"', "\"\"")) } else { c.clone() })
        .collect();
    quoted.join(",") + "\n"
}

/// The `point` and swept-key columns of rows that belong to `points` (positions
/// in the layout), one per row; `point` is each point's own index.
fn point_columns(layout: &Layout, points: Vec<u32>) -> Table {
    let mut t = Table::default();
    t.push("point", Column::Index(points.iter().map(|&p| layout.numbers[p as usize] as u64).collect()));
    for (k, key) in layout.swept.iter().enumerate() {
        let labels = layout.points.iter().map(|values| values[k].clone()).collect();
        t.push(key.clone(), Column::Text { labels, rows: points.clone() });
    }
    t
}

/// `summary.csv`: one row per (point, metric), from the summaries of each
/// point's metrics in metric order.
pub fn summary_csv(layout: &Layout, summaries: &[Vec<Summary>]) -> Vec<u8> {
    summary_table(layout, summaries.iter().enumerate())
}

/// `summary.csv` of some points only: (point index, its summaries).
pub fn summary_table<'a>(layout: &Layout, summaries: impl IntoIterator<Item = (usize, &'a Vec<Summary>)>) -> Vec<u8> {
    summary_columns(layout, summaries).csv()
}

/// The table of [`summary_table`].
pub fn summary_columns<'a>(layout: &Layout, summaries: impl IntoIterator<Item = (usize, &'a Vec<Summary>)>) -> Table {
    let (mut points, mut metrics, mut values) = (Vec::new(), Vec::new(), Vec::new());
    for (p, point) in summaries {
        for (m, summary) in point.iter().enumerate().take(layout.metrics.len()) {
            points.push(p as u32);
            metrics.push(m as u32);
            values.push(summary.values());
        }
    }
    let mut t = point_columns(layout, points);
    t.push("metric", Column::Text { labels: layout.metrics.clone(), rows: metrics });
    for (j, name) in Summary::COLUMNS.iter().enumerate() {
        t.push(*name, Column::Number(values.iter().map(|v| v[j]).collect()));
    }
    t
}

/// A table of one row per listed point: `point`, the swept keys, then
/// `columns`; `rows` holds each row's point index and cells, in output order.
pub fn point_table_csv(layout: &Layout, columns: &[String], rows: &[(usize, Vec<String>)]) -> Vec<u8> {
    point_table(layout, columns, rows).csv()
}

/// The table of [`point_table_csv`].
pub fn point_table(layout: &Layout, columns: &[String], rows: &[(usize, Vec<String>)]) -> Table {
    let mut t = point_columns(layout, rows.iter().map(|(p, _)| *p as u32).collect());
    for (j, name) in columns.iter().enumerate() {
        t.push(name.clone(), Column::text(rows.iter().map(|(_, cells)| cells[j].clone()).collect()));
    }
    t
}

/// A CSV of plain columns (no point prefix), one row per record.
pub fn plain_csv(columns: &[&str], rows: &[Vec<String>]) -> Vec<u8> {
    plain_table(columns, rows).csv()
}

/// The table of [`plain_csv`].
pub fn plain_table(columns: &[&str], rows: &[Vec<String>]) -> Table {
    let mut t = Table::default();
    for (j, name) in columns.iter().enumerate() {
        t.push(*name, Column::text(rows.iter().map(|r| r[j].clone()).collect()));
    }
    t
}

/// `replications.csv`: one row per (point, replication).
pub fn replications_csv(layout: &Layout, results: &[PointRows]) -> Vec<u8> {
    let mut out = replications_header(layout);
    for (p, rows) in results.iter().enumerate() {
        push_replication_rows(&mut out, layout, p, rows, 0);
    }
    out.into_bytes()
}

/// The table of [`replications_csv`].
pub fn replications_columns(layout: &Layout, results: &[PointRows]) -> Table {
    let parts: Vec<_> = results.iter().enumerate().map(|(p, rows)| (p, rows.as_slice(), 0)).collect();
    replication_table(layout, &parts)
}

pub fn replications_header(layout: &Layout) -> String {
    replication_table(layout, &[]).header()
}

/// Appends the rows of point `p` (row-major), whose first row is replication `first`.
pub fn push_replication_rows(out: &mut String, layout: &Layout, p: usize, rows: &[f64], first: u64) {
    replication_table(layout, &[(p, rows, first)]).push_rows(out);
}

/// Rows of `replications.csv` from parts of (point, its rows row-major,
/// the replication index of its first row).
fn replication_table(layout: &Layout, parts: &[(usize, &[f64], u64)]) -> Table {
    let width = layout.metrics.len();
    let count = |rows: &[f64]| rows.len().checked_div(width).unwrap_or(0);
    let (mut points, mut replications) = (Vec::new(), Vec::new());
    for &(p, rows, first) in parts {
        let n = count(rows);
        points.extend(std::iter::repeat_n(p as u32, n));
        replications.extend(first..first + n as u64);
    }
    let mut t = point_columns(layout, points);
    t.push("replication", Column::Index(replications));
    for (m, name) in layout.metrics.iter().enumerate() {
        let values = parts.iter().flat_map(|(_, rows, _)| rows.chunks_exact(width).map(move |r| r[m]));
        t.push(name.clone(), Column::Number(values.collect()));
    }
    t
}

/// `timeline.csv`: replication 0 of each point, one row per period, with the
/// scenario's own columns.
pub fn timeline_csv(layout: &Layout, timelines: &[Timeline]) -> Vec<u8> {
    timeline_table(layout, timelines).csv()
}

/// The table of [`timeline_csv`].
pub fn timeline_table(layout: &Layout, timelines: &[Timeline]) -> Table {
    let columns = timelines.first().map_or(&[][..], |t| t.columns);
    let width = columns.len().max(1);
    let points =
        timelines.iter().enumerate().flat_map(|(p, t)| std::iter::repeat_n(p as u32, t.rows.len() / width)).collect();
    let mut t = point_columns(layout, points);
    for (c, name) in columns.iter().enumerate() {
        let values = timelines.iter().flat_map(|tl| tl.rows.chunks_exact(width).map(move |r| r[c]));
        t.push(*name, Column::Number(values.collect()));
    }
    t
}

/// `manifest.json`: the resolved experiment and how it was run.
pub fn manifest_json(subject: &Subject, info: &RunInfo) -> Vec<u8> {
    manifest_json_with(subject, info, None)
}

/// `manifest.json` with a `procedure` entry: what `recommend` or `loadtest`
/// did (settings, error split, rounds).
pub fn manifest_json_with(
    subject: &Subject,
    info: &RunInfo,
    procedure: Option<&dyn erased_serde::Serialize>,
) -> Vec<u8> {
    manifest_of(&subject.file, subject.seed, info, None, subject.resolved, procedure)
}

/// A manifest from its parts: `extra`'s fields come after the seed (a
/// shard's slice, a merge's shards), and `experiment` may be the JSON a
/// shard recorded.
pub fn manifest_of(
    experiment_file: &str,
    seed: u64,
    run: &RunInfo,
    extra: Option<&dyn erased_serde::Serialize>,
    experiment: &dyn erased_serde::Serialize,
    procedure: Option<&dyn erased_serde::Serialize>,
) -> Vec<u8> {
    #[derive(Serialize)]
    struct Manifest<'a> {
        experiment_file: &'a str,
        #[serde(flatten)]
        run: &'a RunInfo,
        seed: u64,
        #[serde(flatten)]
        extra: Option<&'a dyn erased_serde::Serialize>,
        experiment: &'a dyn erased_serde::Serialize,
        #[serde(skip_serializing_if = "Option::is_none")]
        procedure: Option<&'a dyn erased_serde::Serialize>,
    }
    let manifest = Manifest { experiment_file, run, seed, extra, experiment, procedure };
    let mut bytes = serde_json::to_vec_pretty(&manifest).expect("the manifest serialises");
    bytes.push(b'\n');
    bytes
}

/// Seconds since the Unix epoch as an RFC 3339 UTC timestamp.
pub fn utc_timestamp(unix_secs: u64) -> String {
    let days = (unix_secs / 86_400) as i64;
    let secs = unix_secs % 86_400;
    // Howard Hinnant's days-to-civil algorithm.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z", secs / 3600, secs / 60 % 60, secs % 60)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_rfc3339() {
        assert_eq!(utc_timestamp(0), "1970-01-01T00:00:00Z");
        assert_eq!(utc_timestamp(1_795_000_000), "2026-11-18T11:06:40Z");
        assert_eq!(utc_timestamp(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn cells_print_integers_plainly() {
        assert_eq!(cell(3.0), "3");
        assert_eq!(cell(0.25), "0.25");
        assert_eq!(cell(f64::NAN), "NaN");
        assert_eq!(csv_row(&["a,b".into(), "c".into()]), "\"a,b\",c\n");
    }
}
