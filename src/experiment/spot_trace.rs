//! Reads `interruptions = { model = "trace", ... }`: one availability trace
//! per zone, with optional per-row prices. Keys and formats are in
//! `docs/spot-traces.md`.

use std::path::Path;
use std::sync::Arc;

use serde_json::Value as Json;

use crate::base::time::SimTime;
use crate::input::error::{InputError, did_you_mean};
use crate::input::section::{Result, Section};
use crate::input::tree::{Node, Value};
use crate::spot::trace::{Convention, SpotTrace, TraceError, json_error};

/// A string the user wrote, with where to blame problems with it: its node
/// and its dotted key path (`spot.interruptions.files[1]`).
struct Named<'a> {
    text: String,
    node: &'a Node,
    path: String,
}

impl Named<'_> {
    fn error(&self, message: impl Into<String>) -> InputError {
        InputError::new(&self.node.origin, Some(&self.path), message)
    }
}

/// Reads the `spot.interruptions` table of a trace model (the caller has
/// read `model`): the traces in zone order, all of the same length, with
/// prices attached when `prices` is given. Files are read relative to the
/// experiment file.
pub(crate) fn read_trace_interruptions(s: &Section, tick: Option<SimTime>) -> Result<Vec<Arc<SpotTrace>>> {
    s.allow(&["model"]);
    // Every key is looked up before `finish`, so a misspelt key is reported
    // as such (with a suggestion) rather than as a missing one.
    let convention = s.choice("convention", &["available", "preempted"])?;
    let file = string_of(s, "file")?;
    let files = strings_of(s, "files")?;
    let prices = string_of(s, "prices")?;
    let price_keys = strings_of(s, "price_keys")?;
    s.finish()?;

    let convention = match convention {
        Some("available") => Convention::Available,
        Some(_) => Convention::Preempted,
        None => {
            return Err(s.missing(
                "convention",
                "\"available\" (1 = available, as in the AWS CSVs) or \"preempted\" (1 = preempted, as in the GCP JSON `data`)",
            ));
        }
    };
    let files = match (file, files) {
        (Some(_), Some(_)) => {
            return Err(s.error(
                s.entry("files").expect("read"),
                "give either `file` (one zone) or `files` (one per zone), not both",
            ));
        }
        (Some(one), None) => vec![one],
        (None, Some(list)) => list,
        (None, None) => {
            return Err(s.missing(
                "file",
                "a trace file such as \"traces/us-east-1a.csv\", or `files = [...]` with one file per zone",
            ));
        }
    };

    let mut traces = Vec::with_capacity(files.len());
    for f in &files {
        let trace = read_trace(s.base_dir(), f, convention)?;
        traces.push(match tick {
            Some(tick) => trace.with_tick(tick).map_err(|e| in_file(f, e))?,
            None => trace,
        });
    }
    for (f, t) in files.iter().zip(&traces).skip(1) {
        if t.length() != traces[0].length() {
            return Err(f
                .error(format!(
                    "{} covers {} but {} covers {}: the zones' traces must be equally long to stay aligned in time",
                    f.text,
                    t.length(),
                    files[0].text,
                    traces[0].length()
                ))
                .with_hint(Some("use traces sampled over the same window".into())));
        }
    }

    match (prices, price_keys) {
        (None, None) => {}
        (Some(_), None) => {
            return Err(
                s.missing("price_keys", "one key of the prices file per trace file, such as [\"us-east-1a_v100_1\"]")
            );
        }
        (None, Some(_)) => {
            return Err(
                s.error(s.entry("price_keys").expect("read"), "applies only with `prices`, the file of price lists")
            );
        }
        (Some(prices), Some(keys)) => {
            if keys.len() != files.len() {
                return Err(s.error(
                    s.entry("price_keys").expect("read"),
                    format!("expected one key per trace file ({}), found {}", files.len(), keys.len()),
                ));
            }
            let table = read_price_table(s.base_dir(), &prices)?;
            traces = traces
                .into_iter()
                .zip(files.iter().zip(&keys))
                .map(|(trace, (f, key))| attach_prices(trace, f, &prices, &table, key))
                .collect::<Result<_>>()?;
        }
    }
    Ok(traces.into_iter().map(Arc::new).collect())
}

fn string_of<'a>(s: &Section<'a>, key: &'static str) -> Result<Option<Named<'a>>> {
    let Some(text) = s.string(key)? else {
        return Ok(None);
    };
    let node = &s.entry(key).expect("just read").node;
    Ok(Some(Named { text, node, path: s.key_path(key) }))
}

/// A non-empty list of strings, each with its own line.
fn strings_of<'a>(s: &Section<'a>, key: &'static str) -> Result<Option<Vec<Named<'a>>>> {
    let Some(entry) = s.entry(key) else {
        return Ok(None);
    };
    let expected = "a non-empty list of strings, such as [\"a.csv\", \"b.csv\"]";
    let items = match &entry.node.value {
        Value::Array(items) if !items.is_empty() => items,
        _ => return Err(s.error(entry, format!("expected {expected}, found {}", entry.node.display()))),
    };
    let mut list = Vec::with_capacity(items.len());
    for (i, node) in items.iter().enumerate() {
        let path = format!("{}[{i}]", s.key_path(key));
        match &node.value {
            Value::Str(text) => list.push(Named { text: text.clone(), node, path }),
            other => {
                return Err(InputError::new(
                    &node.origin,
                    Some(&path),
                    format!("expected a string, found {} ({})", other.kind(), node.display()),
                ));
            }
        }
    }
    Ok(Some(list))
}

/// The text of a file named in the experiment.
fn read_text(base_dir: &Path, f: &Named) -> Result<String> {
    crate::input::section::read_text(&base_dir.join(&f.text)).map_err(|e| in_file(f, e))
}

fn in_file(f: &Named, e: TraceError) -> InputError {
    match e.line {
        Some(line) => f.error(format!("{} line {line}: {}", f.text, e.message)),
        None => f.error(format!("{}: {}", f.text, e.message)),
    }
}

/// One trace, its format chosen by the file's extension.
fn read_trace(base_dir: &Path, f: &Named, convention: Convention) -> Result<SpotTrace> {
    let extension = Path::new(&f.text).extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    let parse = match extension.as_deref() {
        Some("csv") => SpotTrace::parse_csv,
        Some("json") => SpotTrace::parse_json,
        _ => {
            return Err(f.error(format!("{}: expected a `.csv` or a `.json` trace file", f.text)).with_hint(Some(
                "`.csv`: AWS style, columns date,availability; `.json`: GCP style, `data` and `metadata.gap_seconds`"
                    .into(),
            )));
        }
    };
    let text = read_text(base_dir, f)?;
    parse(&f.text, &text, convention).map_err(|e| in_file(f, e))
}

/// The prices file: a JSON object whose values are lists of prices.
fn read_price_table(base_dir: &Path, prices: &Named) -> Result<serde_json::Map<String, Json>> {
    let text = read_text(base_dir, prices)?;
    match serde_json::from_str::<Json>(&text) {
        Ok(Json::Object(map)) => Ok(map),
        Ok(_) => Err(prices.error(format!(
            "{}: expected a JSON object of price lists, such as {{\"us-east-1a_v100_1\": [1.67, ...]}}",
            prices.text
        ))),
        Err(e) => Err(in_file(prices, json_error(e))),
    }
}

fn attach_prices(
    trace: SpotTrace,
    f: &Named,
    prices: &Named,
    table: &serde_json::Map<String, Json>,
    key: &Named,
) -> Result<SpotTrace> {
    let Some(list) = table.get(&key.text) else {
        let hint = did_you_mean(&key.text, table.keys().map(String::as_str)).or_else(|| {
            let keys: Vec<&str> = table.keys().map(String::as_str).take(12).collect();
            let more = if table.len() > keys.len() { ", ..." } else { "" };
            Some(format!("its keys: {}{more}", keys.join(", ")))
        });
        return Err(key.error(format!("{} has no key \"{}\"", prices.text, key.text)).with_hint(hint));
    };
    let bad = |found: &Json| {
        let found = found.to_string();
        let found = if found.chars().count() > 40 {
            format!("{}...", found.chars().take(40).collect::<String>())
        } else {
            found
        };
        key.error(format!("{}: `{}`: expected a list of prices in USD per hour, found {found}", prices.text, key.text))
    };
    let Json::Array(items) = list else {
        return Err(bad(list));
    };
    let values = items.iter().map(|v| v.as_f64().ok_or_else(|| bad(v))).collect::<Result<Vec<f64>>>()?;
    trace
        .with_prices(values)
        .map_err(|e| key.error(format!("{}: `{}` for {}: {}", prices.text, key.text, f.text, e.message)))
}

#[cfg(test)]
mod tests {
    use crate::input::test_files::with_files;
    use std::path::Path;

    use super::*;
    use crate::base::time::SimTime;
    use crate::input::error::Origin;
    use crate::input::tree::parse_document;

    fn read_in(dir: &Path, text: &str) -> std::result::Result<Vec<Arc<SpotTrace>>, InputError> {
        let doc = parse_document(text, "experiment.toml")?;
        let root = Section::root(&doc, Origin::file("experiment.toml", 1), dir);
        let spot = root.section("spot")?.expect("a [spot] table");
        let s = spot.section("interruptions")?.expect("an interruptions table");
        assert_eq!(s.string("model")?.as_deref(), Some("trace"));
        read_trace_interruptions(&s, None)
    }

    fn error(dir: &Path, text: &str) -> String {
        match read_in(dir, text) {
            Ok(traces) => panic!("{text}\n  read without error: {traces:?}"),
            Err(e) => e.to_string(),
        }
    }

    const A: &str = "date,availability\n2024-01-01 00:00:00,1\n2024-01-01 00:10:00,1\n2024-01-01 00:20:00,0\n2024-01-01 00:30:00,0\n2024-01-01 00:40:00,1\n2024-01-01 00:50:00,0\n";
    const B: &str = "date,availability\n2024-01-01 00:00:00,0\n2024-01-01 00:30:00,1\n";
    const C: &str = "date,availability\n2024-01-01 00:00:00,1\n2024-01-01 00:20:00,0\n";
    const G: &str = r#"{"metadata": {"gap_seconds": 600, "price_info": {"price": 12.0}}, "data": [1, 0, 0, 1, 0, 0]}"#;
    const PRICES: &str = r#"{"a_v100_1": [1, 1, 2, 2, 4, 4], "b_v100_1": [0.5, 1.5], "short": [1]}"#;

    fn files() -> tempfile::TempDir {
        with_files(&[("t/a.csv", A), ("t/b.csv", B), ("t/c.csv", C), ("t/g.json", G), ("t/prices.json", PRICES)])
    }

    #[test]
    fn one_file_relative_to_the_experiment() {
        let dir = files();
        let traces = read_in(
            dir.path(),
            "[spot]\ninterruptions = { model = \"trace\", file = \"t/a.csv\", convention = \"available\" }\n",
        )
        .unwrap();
        assert_eq!(traces.len(), 1);
        let t = &traces[0];
        assert_eq!((t.file.as_str(), t.length(), t.availability()), ("t/a.csv", SimTime::from_hours(1), 0.5));
        assert!(!t.has_prices());
        assert_eq!(t.next_unavailable(SimTime::ZERO, SimTime::ZERO), SimTime::from_mins(20));
    }

    #[test]
    fn zones_with_prices_and_json() {
        let dir = files();
        let traces = read_in(
            dir.path(),
            "[spot.interruptions]\nmodel = \"trace\"\nfiles = [\"t/a.csv\", \"t/b.csv\"]\nconvention = \"available\"\nprices = \"t/prices.json\"\nprice_keys = [\"a_v100_1\", \"b_v100_1\"]\n",
        )
        .unwrap();
        assert_eq!(traces.len(), 2);
        assert!((traces[0].mean_price().unwrap() - 14.0 / 6.0).abs() < 1e-12);
        assert_eq!(traces[1].mean_price(), Some(1.0));
        assert_eq!(traces[1].next_available(SimTime::ZERO, SimTime::ZERO), SimTime::from_mins(30));

        // GCP style, preempted convention, its constant price.
        let traces = read_in(
            dir.path(),
            "[spot]\ninterruptions = { model = \"trace\", file = \"t/g.json\", convention = \"preempted\" }\n",
        )
        .unwrap();
        assert_eq!(traces[0].mean_price(), Some(12.0));
        assert_eq!(traces[0].next_available(SimTime::ZERO, SimTime::ZERO), SimTime::from_mins(10));
        assert!((traces[0].availability() - 4.0 / 6.0).abs() < 1e-15);
    }

    #[test]
    fn errors_name_the_line_the_key_and_the_trace_line() {
        let dir = files();
        let d = dir.path();
        std::fs::write(d.join("t/bad.csv"), A.replace("00:30:00,0", "00:30:00,yes")).unwrap();
        std::fs::write(d.join("t/bad.json"), "{\"metadata\": {\"gap_seconds\": 600},\n\"data\": [0, 1,]}").unwrap();
        std::fs::write(d.join("t/bin.csv"), b"date,availability\n\xff\n").unwrap();
        std::fs::write(d.join("t/list.json"), "[1, 2]").unwrap();
        std::fs::write(d.join("t/strs.json"), "{\"a\": [1, \"x\", 1, 1, 1, 1]}").unwrap();
        let head = "[spot.interruptions]\nmodel = \"trace\"\nconvention = \"available\"\n";
        assert_eq!(
            error(d, &format!("{head}file = \"t/bad.csv\"\n")),
            "experiment.toml:4: `spot.interruptions.file`: t/bad.csv line 5: expected an availability of 0 or 1, found \"yes\""
        );
        assert_eq!(
            error(d, &format!("{head}files = [\n  \"t/a.csv\",\n  \"t/bad.json\",\n]\n")),
            "experiment.toml:6: `spot.interruptions.files[1]`: t/bad.json line 2: not valid JSON (column 15): trailing comma"
        );
        let cases = [
            (
                "[spot.interruptions]\nmodel = \"trace\"\nfile = \"t/a.csv\"\n".to_string(),
                "experiment.toml:1: `spot.interruptions.convention`: this key is missing: expected \"available\"",
            ),
            (
                "[spot.interruptions]\nmodel = \"trace\"\nfile = \"t/a.csv\"\nconvention = \"availble\"\n".into(),
                "experiment.toml:4: `spot.interruptions.convention`: expected one of \"available\", \"preempted\", found \"availble\"\n  hint: did you mean `available`?",
            ),
            (
                "[spot.interruptions]\nmodel = \"trace\"\nfile = \"t/a.csv\"\nconvension = \"available\"\n".into(),
                "experiment.toml:4: `spot.interruptions.convension`: unknown key in `spot.interruptions`\n  hint: did you mean `convention`?",
            ),
            (head.to_string(), "`spot.interruptions.file`: this key is missing: expected a trace file"),
            (
                format!("{head}file = \"t/a.csv\"\nfiles = [\"t/b.csv\"]\n"),
                "experiment.toml:5: `spot.interruptions.files`: give either `file` (one zone) or `files` (one per zone), not both",
            ),
            (format!("{head}files = []\n"), "`spot.interruptions.files`: expected a non-empty list of strings"),
            (format!("{head}files = \"t/a.csv\"\n"), "`spot.interruptions.files`: expected a non-empty list"),
            (
                format!("{head}files = [\n  \"t/a.csv\",\n  3,\n]\n"),
                "experiment.toml:6: `spot.interruptions.files[1]`: expected a string, found an integer (3)",
            ),
            (format!("{head}file = 3\n"), "`spot.interruptions.file`: expected a string"),
            (format!("{head}file = \"t/a.txt\"\n"), "t/a.txt: expected a `.csv` or a `.json` trace file\n  hint:"),
            (
                format!("{head}file = \"t/none.csv\"\n"),
                "experiment.toml:4: `spot.interruptions.file`: t/none.csv: cannot read the file",
            ),
            (format!("{head}file = \"t/bin.csv\"\n"), "t/bin.csv line 2: not valid UTF-8 at column 1 (byte 0xFF)"),
            (
                format!("{head}files = [\"t/a.csv\", \"t/b.csv\", \"t/g.json\", \"t/c.csv\"]\n"),
                "`spot.interruptions.files[3]`: t/c.csv covers 40m but t/a.csv covers 1h: the zones' traces must be equally long",
            ),
            (
                format!("{head}file = \"t/a.csv\"\nprices = \"t/prices.json\"\n"),
                "`spot.interruptions.price_keys`: this key is missing: expected one key of the prices file per trace file",
            ),
            (
                format!("{head}file = \"t/a.csv\"\nprice_keys = [\"a_v100_1\"]\n"),
                "experiment.toml:5: `spot.interruptions.price_keys`: applies only with `prices`",
            ),
            (
                format!(
                    "{head}file = \"t/a.csv\"\nprices = \"t/prices.json\"\nprice_keys = [\"a_v100_1\", \"b_v100_1\"]\n"
                ),
                "experiment.toml:6: `spot.interruptions.price_keys`: expected one key per trace file (1), found 2",
            ),
            (
                format!("{head}file = \"t/a.csv\"\nprices = \"t/prices.json\"\nprice_keys = [\"a_v100_2\"]\n"),
                "experiment.toml:6: `spot.interruptions.price_keys[0]`: t/prices.json has no key \"a_v100_2\"\n  hint: did you mean `a_v100_1`?",
            ),
            (
                format!("{head}file = \"t/a.csv\"\nprices = \"t/prices.json\"\nprice_keys = [\"zzzzzzzzzzzz\"]\n"),
                "hint: its keys: a_v100_1, b_v100_1, short",
            ),
            (
                format!("{head}file = \"t/a.csv\"\nprices = \"t/prices.json\"\nprice_keys = [\"short\"]\n"),
                "`spot.interruptions.price_keys[0]`: t/prices.json: `short` for t/a.csv: expected one price per row of the trace (6), found 1",
            ),
            (
                format!("{head}file = \"t/a.csv\"\nprices = \"t/a.csv\"\nprice_keys = [\"a\"]\n"),
                "`spot.interruptions.prices`: t/a.csv line 1: not valid JSON",
            ),
            (
                format!("{head}file = \"t/a.csv\"\nprices = \"t/list.json\"\nprice_keys = [\"a\"]\n"),
                "`spot.interruptions.prices`: t/list.json: expected a JSON object of price lists",
            ),
            (
                format!("{head}file = \"t/a.csv\"\nprices = \"t/strs.json\"\nprice_keys = [\"a\"]\n"),
                "t/strs.json: `a`: expected a list of prices in USD per hour, found \"x\"",
            ),
            (
                format!("{head}file = \"t/a.csv\"\nprices = \"t/g.json\"\nprice_keys = [\"metadata\"]\n"),
                "t/g.json: `metadata`: expected a list of prices in USD per hour, found {\"gap_seconds\":600,\"price_info\":{\"price\"...",
            ),
        ];
        for (text, want) in cases {
            let e = error(d, &text);
            assert!(e.contains(want), "{text}\n  gave: {e}\n  want: {want}");
        }
    }

    #[test]
    fn bundled_traces_load() {
        let experiments = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments");
        let zones = ["us-east-1a", "us-east-1c", "us-east-1d", "us-east-2a", "us-east-2b", "us-west-2a"];
        let files: Vec<String> = zones.iter().map(|z| format!("\"../models/traces/aws-v100/{z}.csv\"")).collect();
        let keys: Vec<String> = zones.iter().map(|z| format!("\"{z}_v100_1\"")).collect();
        let traces = read_in(
            &experiments,
            &format!(
                "[spot.interruptions]\nmodel = \"trace\"\nconvention = \"available\"\nfiles = [{}]\nprices = \"../models/traces/aws-v100/spot-prices.json\"\nprice_keys = [{}]\n",
                files.join(", "),
                keys.join(", ")
            ),
        )
        .unwrap();
        assert_eq!(traces.len(), 6);
        assert!(traces.iter().all(|t| t.has_prices() && t.length() == traces[0].length()));
        assert!((traces[0].availability() - 0.167).abs() < 0.01);
        assert!((traces[5].availability() - 0.883).abs() < 0.01);

        let traces = read_in(
            &experiments,
            "[spot.interruptions]\nmodel = \"trace\"\nconvention = \"preempted\"\nfiles = [\n  \"../models/traces/gcp-h100/us-central1-a.json\",\n  \"../models/traces/gcp-h100/us-east4-a.json\",\n  \"../models/traces/gcp-h100/us-west1-b.json\",\n]\n",
        )
        .unwrap();
        assert_eq!(traces.len(), 3);
        assert!(traces.iter().all(|t| t.length() == SimTime::from_secs(2114 * 600) && t.has_prices()));
        // us-west1-b is preempted about three quarters of the time.
        assert!((traces[2].availability() - 0.24).abs() < 0.02, "{}", traces[2].availability());
    }
}
