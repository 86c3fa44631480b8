//! Bad input never panics: thousands of mutants of every bundled experiment
//! (lines deleted or doubled, numbers set to extremes, units changed, keys
//! misspelt, tables swapped, values of the wrong type) go through the reader,
//! and those it accepts through a short run, the summaries and the CSV
//! formatting. Each must load, or fail with a message naming the file and a
//! line; none may panic or hang. Deterministic: the mutator has a fixed seed.

use std::path::{Path, PathBuf};
use std::sync::{Arc, mpsc};
use std::time::Duration;

use spotsim::engine::{Runner, Streams};
use spotsim::experiment::{self, Design, InputError};
use spotsim::output;
use spotsim::scenarios::inference::design::{Endpoint, Fidelity};
use spotsim::scenarios::training::TrainingJob;
use spotsim::spot::Interruptions;

/// Mutants per experiment; the trace-replay experiments parse large traces
/// on every load, so they get fewer.
const MUTANTS: usize = 200;
const MUTANTS_WITH_TRACES: usize = 30;
/// A mutant that takes longer than this (load and run) counts as a hang.
const HANG: Duration = Duration::from_secs(20);

/// SplitMix64: tiny, portable, and enough to pick mutations.
struct Mutator(u64);

impl Mutator {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// The text with one to three mutations, as bytes: one kind of mutation
    /// writes a byte that is not UTF-8.
    fn mutate(&mut self, text: &str) -> Vec<u8> {
        let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
        let mut raw_byte = None;
        for _ in 0..1 + self.below(3) {
            if lines.is_empty() {
                break;
            }
            let i = self.below(lines.len());
            match self.below(9) {
                0 => {
                    lines.remove(i);
                }
                1 => lines.insert(i, lines[i].clone()),
                2 => self.set_number(&mut lines[i]),
                3 => self.change_unit(&mut lines[i]),
                4 => {
                    let keys: Vec<String> = lines.iter().filter_map(|l| key_of(l)).collect();
                    self.misspell_key(&mut lines[i], &keys);
                }
                5 => self.swap_tables(&mut lines),
                6 => {
                    let j = self.below(lines.len());
                    if let (Some((ki, vi)), Some((kj, vj))) = (split_value(&lines[i]), split_value(&lines[j])) {
                        (lines[i], lines[j]) = (format!("{ki}= {vj}"), format!("{kj}= {vi}"));
                    }
                }
                7 => {
                    let other =
                        *self.pick(&["true", "1", "-1", "[]", "{}", "\"\"", "\"x\"", "[1, \"2\"]", "{ a = 1 }"]);
                    if let Some((k, _)) = split_value(&lines[i]) {
                        lines[i] = format!("{k}= {other}");
                    }
                }
                _ => {
                    let garbage = *self.pick(&["{", "}", "[", "]", "\"", "=", ",", "#", "\\", "\t", "\u{0}", "é"]);
                    let at = floor_char_boundary(&lines[i], self.below(lines[i].len() + 1));
                    lines[i].insert_str(at, garbage);
                    if self.below(8) == 0 {
                        raw_byte = Some(i);
                    }
                }
            }
        }
        let mut bytes = Vec::new();
        for (i, line) in lines.iter().enumerate() {
            bytes.extend_from_slice(line.as_bytes());
            if raw_byte == Some(i) {
                bytes.push(0xFF);
            }
            bytes.push(b'\n');
        }
        bytes
    }

    fn set_number(&mut self, line: &mut String) {
        let runs = digit_runs(line);
        if runs.is_empty() {
            return;
        }
        let (a, b) = *self.pick(&runs);
        let new = *self.pick(&[
            "0",
            "-1",
            "1e308",
            "-1e308",
            "nan",
            "inf",
            "1e-300",
            "99999999999999999999",
            "4294967296",
            "100000000",
            "0.5",
            "1",
        ]);
        line.replace_range(a..b, new);
    }

    fn change_unit(&mut self, line: &mut String) {
        // A digit run followed by letters: a duration, a size or a band.
        let units: Vec<(usize, usize)> = digit_runs(line)
            .into_iter()
            .filter_map(|(_, b)| {
                let len = line[b..].find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(line.len() - b);
                (len > 0).then_some((b, b + len))
            })
            .collect();
        if units.is_empty() {
            return;
        }
        let (a, b) = *self.pick(&units);
        let new = *self.pick(&["ns", "us", "ms", "s", "m", "h", "d", "", "x", "min", "hours", "GB", "MB"]);
        line.replace_range(a..b, new);
    }

    fn misspell_key(&mut self, line: &mut String, keys: &[String]) {
        let Some(key) = key_of(line) else { return };
        let Some(at) = line.find(&key) else { return };
        let mut chars: Vec<char> = key.chars().collect();
        let k = self.below(chars.len());
        match self.below(5) {
            0 if chars.len() > 1 => {
                let j = (k + 1) % chars.len();
                chars.swap(k, j);
            }
            1 => {
                chars.remove(k);
            }
            2 => chars.insert(k, chars[k]),
            3 => chars[k] = *self.pick(&['x', '_', '-', '.', 'e']),
            _ => chars = self.pick(keys).chars().collect(),
        }
        line.replace_range(at..at + key.len(), &chars.into_iter().collect::<String>());
    }

    fn swap_tables(&mut self, lines: &mut [String]) {
        let headers: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].trim_start().starts_with('[')).collect();
        if headers.len() < 2 {
            return;
        }
        let (i, j) = (*self.pick(&headers), *self.pick(&headers));
        if self.below(2) == 0 {
            lines.swap(i, j);
        } else {
            lines[i] = lines[j].clone();
        }
    }
}

fn floor_char_boundary(s: &str, mut i: usize) -> usize {
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Byte ranges of the numbers in a line (digits, with a decimal point).
fn digit_runs(line: &str) -> Vec<(usize, usize)> {
    let bytes = line.as_bytes();
    let mut runs = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i].is_ascii_digit() {
            let start = i;
            while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'.') {
                i += 1;
            }
            runs.push((start, i));
        } else {
            i += 1;
        }
    }
    runs
}

/// The key of a `key = value` line.
fn key_of(line: &str) -> Option<String> {
    let (key, _) = split_value(line)?;
    let key = key.trim().trim_start_matches('{').trim();
    (!key.is_empty() && !key.starts_with('#')).then(|| key.to_string())
}

fn split_value(line: &str) -> Option<(&str, &str)> {
    let (key, value) = line.split_once('=')?;
    (!key.trim_start().starts_with(['#', '['])).then_some((key, value))
}

/// Whether one replication of every point is cheap enough to run here: the
/// reader accepts designs far beyond a test's budget (a day of traffic, a
/// nanosecond MTBF), and refusing those up front is not this test's subject.
fn affordable(design: &dyn Design) -> bool {
    if let Some(job) = design.downcast::<TrainingJob>() {
        let limit = |mtbf: spotsim::base::time::SimTime| mtbf.as_secs_f64() >= 1.0;
        let spot = job.spot.as_ref().is_none_or(|s| match &s.interruptions {
            Interruptions::Poisson { mtbf } => limit(*mtbf),
            Interruptions::Weibull { scale, .. } => limit(*scale),
            _ => true,
        });
        let zones = job.zones.as_ref().and_then(|z| z.outage.as_ref()).is_none_or(|o| limit(o.mtbf));
        return spot && zones;
    }
    design.downcast::<Endpoint>().is_some_and(endpoint_affordable)
}

fn endpoint_affordable(e: &Endpoint) -> bool {
    let horizon = e.traffic.duration.as_secs_f64();
    let events = |mtbf: spotsim::base::time::SimTime| horizon / mtbf.as_secs_f64().max(1e-9);
    let requests = e.traffic.profile(&Streams::new(1, 0)).expected_requests();
    let work = match e.fidelity {
        Fidelity::Request => requests,
        Fidelity::Fluid => horizon / e.step.as_secs_f64().max(1e-9),
    };
    let spot = e.spot.as_ref().map_or(0.0, |s| match &s.interruptions {
        Interruptions::Poisson { mtbf } => events(*mtbf),
        Interruptions::Weibull { scale, .. } => events(*scale),
        _ => 0.0,
    });
    let outages = e.zones.as_ref().and_then(|z| z.outage.as_ref()).map_or(0.0, |o| events(o.mtbf));
    let periods = e.autoscaling.as_ref().map_or(0.0, |a| events(a.period));
    work < 200_000.0 && periods < 100_000.0 && (spot + outages) * f64::from(e.initial_instances.max(1)) < 10_000.0
}

/// Loads a mutant and, when it loads and is affordable, runs one
/// replication of its first points and formats the outputs in memory.
/// Whether it ran.
fn exercise(path: &Path, inference: bool, runner: &Runner) -> Result<bool, InputError> {
    let e = experiment::load(path, &[])?;
    // A short horizon for the run: the day of traffic becomes minutes.
    let mut e = match inference {
        true => experiment::load(path, &["traffic.duration=\"5m\"".into()]).unwrap_or(e),
        false => e,
    };
    e.points.truncate(4);
    e.replications = 1;
    if !e.points.iter().all(|p| affordable(p.design.as_ref())) {
        return Ok(false);
    }
    let results = spotsim::commands::run::simulate(&e, runner, &|_| {});
    let width = e.metrics().len();
    let summaries: Vec<_> = results.iter().map(|rows| runner.summarise(rows, width)).collect();
    assert!(
        !output::summary_csv(&e.layout(), &summaries).is_empty()
            && !output::replications_csv(&e.layout(), &results).is_empty()
    );
    if let Some(timeline) = e.points[0].design.timeline(Streams::new(e.seed, 0)) {
        assert!(!output::timeline_csv(&e.layout(), &[timeline]).is_empty());
    }
    Ok(true)
}

#[test]
fn no_mutant_of_a_bundled_experiment_panics_or_hangs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // The mutants live beside a link to models/, so their relative paths work.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("experiments");
    std::fs::create_dir(&dir).unwrap();
    std::os::unix::fs::symlink(root.join("models"), tmp.path().join("models")).unwrap();
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("experiments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the bundled experiments");
    let runner = Arc::new(Runner::new(1).unwrap());
    let (mut loaded, mut ran, mut refused, mut total) = (0, 0, 0, 0);
    for (f, file) in files.iter().enumerate() {
        let text = std::fs::read_to_string(file).unwrap();
        let inference = text.contains("[inference]");
        let count = if text.contains("../models/traces/") { MUTANTS_WITH_TRACES } else { MUTANTS };
        let mut mutator = Mutator(0x5EED_0000 + f as u64);
        let path = dir.join(file.file_name().unwrap());
        for m in 0..count {
            let bytes = mutator.mutate(&text);
            std::fs::write(&path, &bytes).unwrap();
            let shown = || format!("mutant {m} of {}:\n{}", file.display(), String::from_utf8_lossy(&bytes));
            let (tx, rx) = mpsc::channel();
            let (p, r) = (path.clone(), runner.clone());
            std::thread::spawn(move || {
                let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| exercise(&p, inference, &r)));
                let _ = tx.send(outcome.map_err(|panic| {
                    panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default()
                }));
            });
            total += 1;
            match rx.recv_timeout(HANG) {
                Err(_) => panic!("no answer within {HANG:?} (a hang?) for {}", shown()),
                Ok(Err(panic)) => panic!("panicked: {panic}\nfor {}", shown()),
                Ok(Ok(Ok(run))) => {
                    loaded += 1;
                    ran += usize::from(run);
                }
                Ok(Ok(Err(e))) => {
                    refused += 1;
                    let message = e.to_string();
                    assert_eq!(e.origin.file, path.display().to_string(), "{message}\nfor {}", shown());
                    assert!(e.origin.line.is_some(), "no line in: {message}\nfor {}", shown());
                    assert!(message.starts_with(&format!("{}:", path.display())), "{message}");
                    // Only an unreadable line may leave the key unnamed.
                    let syntax = ["not valid TOML", "not valid UTF-8"].iter().any(|s| e.message.starts_with(s));
                    assert!(e.key.is_some() || syntax, "no key in: {message}\nfor {}", shown());
                }
            }
        }
    }
    // The mix stays meaningful: many are refused, some load, some run.
    assert!(refused > total / 3 && loaded > total / 10 && ran > total / 20, "{refused} {loaded} {ran} of {total}");
}
