//! `spotsim calibrate` (SPEC 2.10): step times fitted to the user's own
//! benchmark files, judged on runs the fit did not see, and written as a
//! profile whose `[llm."TYPE"]` table any design on that type then uses.
//! `docs/calibrate.md` gives the workflow and the measured errors.

pub mod fit;
pub mod replay;

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use crate::catalog::catalog;
use crate::catalog::profile::ModelArch;
use crate::experiment::{self, Fit, InputError};
use crate::input::bench::{self, BenchRun, Format};
use crate::input::error::{Origin, did_you_mean};
use crate::output::{self, Refused};
use crate::scenarios::inference::design::Endpoint;
use crate::scenarios::inference::llm::FitMs;
use crate::scenarios::inference::traffic::tokens::MAX_TOKENS;

use fit::{Coef, NAMES};
use replay::{Replayer, Simulated};

/// Which runs the fit does not see.
#[derive(Clone, Debug, PartialEq)]
pub enum Holdout {
    /// The runs at the heaviest load (the highest request throughput).
    Heaviest,
    /// K folds by load order; each predicted by a fit on the others.
    KFold(usize),
    /// These files.
    Files(Vec<String>),
    /// None: everything is fitted, nothing is judged.
    Nothing,
}

impl Holdout {
    /// `--holdout` as given (repeatable for files).
    pub fn parse(values: &[String]) -> Result<Holdout, String> {
        match values {
            [] => Ok(Holdout::Heaviest),
            [one] if one == "heaviest" => Ok(Holdout::Heaviest),
            [one] if one == "none" => Ok(Holdout::Nothing),
            [one] if one.ends_with("-fold") => match one.trim_end_matches("-fold").parse::<usize>() {
                Ok(k) if k >= 2 => Ok(Holdout::KFold(k)),
                _ => Err(format!("expected K-fold with a whole K >= 2, such as 3-fold; found \"{one}\"")),
            },
            files => Ok(Holdout::Files(files.to_vec())),
        }
    }
}

/// What the user asked for.
#[derive(Clone, Debug)]
pub struct Options {
    pub profile: String,
    pub instance: String,
    pub replicas: u32,
    pub holdout: Holdout,
    pub format: Option<Format>,
    /// The engine and version the files were measured on, when they do not say.
    pub engine: Option<String>,
    pub seed: u64,
    /// Nelder-Mead iterations per fit.
    pub iterations: u64,
    /// Requests pooled per replay (replications up to 20): the noise of a replay.
    pub pooled_requests: u64,
}

/// One run's line of the backtest table.
#[derive(Clone, Debug)]
pub struct Row {
    pub file: String,
    pub load: String,
    pub held_out: bool,
    pub measured: bench::Measured,
    pub simulated: Simulated,
}

impl Row {
    /// Relative error of a metric, simulated over measured less one.
    pub fn error(&self, metric: &str) -> Option<f64> {
        let (m, s) = match metric {
            "ttft_p50" => (self.measured.ttft_p50_ms, Some(self.simulated.ttft_p50_ms)),
            "ttft_p90" => (self.measured.ttft_p90_ms, Some(self.simulated.ttft_p90_ms)),
            "tpot_p50" => (self.measured.tpot_p50_ms, Some(self.simulated.tpot_p50_ms)),
            "output_tokens_per_s" => (self.measured.output_tokens_per_s, self.simulated.output_tokens_per_s),
            _ => (None, None),
        };
        Some(s? / m.filter(|m| *m > 0.0)? - 1.0)
    }
}

/// The answer: the table, how well it predicts, and the profile to write.
pub struct Calibration {
    pub design: String,
    pub tensor_parallel: u32,
    pub start: FitMs,
    pub table: FitMs,
    pub rows: Vec<Row>,
    pub warnings: Vec<String>,
    pub evaluations: u64,
    /// Worst held-out |error| of TTFT p50 and TPOT p50.
    pub held_out_error: Option<(f64, f64)>,
    pub engine: Option<String>,
    pub runs: Vec<BenchRun>,
    model: Option<ModelArch>,
    profile: String,
    instance: String,
}

fn usage(flag: &str, message: String, hint: Option<String>) -> anyhow::Error {
    InputError::new(&Origin { file: flag.to_string(), line: None }, None, message).with_hint(hint).into()
}

/// The design every run replays on: one instance of `instance`, its
/// replicas, the profile's model and the roofline (the fit's start).
pub fn design(o: &Options) -> anyhow::Result<Endpoint> {
    if catalog().find(&o.instance).is_none() {
        let names = catalog().instances.iter().map(|i| i.name.as_str());
        let message = format!("no instance type \"{}\" in the catalog (`spotsim catalog`)", o.instance);
        return Err(usage("--instance", message, did_you_mean(&o.instance, names)));
    }
    let text = format!(
        "name = \"calibrate\"\n[inference]\nengine = \"llm\"\ninstance = {:?}\nprofile = {:?}\n\
         [inference.llm]\nreplicas = {}\nstep_time = \"roofline\"\n\
         [traffic]\nsynthetic = {{ mean_rps = 1.0 }}\nduration = \"1m\"\ntokens = {{ input = 1, output = 1 }}\n",
        o.instance, o.profile, o.replicas
    );
    // Errors in the design made here belong to the flag that gave the value.
    let e =
        experiment::load_text(&text, Path::new("<calibrate>"), Path::new("."), &[], Fit::Refuse).map_err(|mut e| {
            if e.origin.file == "<calibrate>" {
                let flag = match e.key.as_deref() {
                    Some("inference.instance") => "--instance",
                    Some(k) if k.contains("replicas") => "--replicas",
                    _ => "--profile",
                };
                e.origin = Origin { file: flag.into(), line: None };
                e.key = None;
            }
            e
        })?;
    let ep = e.points[0].design.downcast::<Endpoint>().expect("an inference design").clone();
    Ok(ep)
}

/// Reads every file (any refusal before anything is simulated), fits on
/// the runs not held out, predicts those, and returns the answer.
pub fn calibrate(files: &[PathBuf], o: &Options) -> anyhow::Result<Calibration> {
    let mut runs: Vec<BenchRun> = Vec::new();
    for p in files {
        runs.extend(bench::read(p, &p.display().to_string(), o.format)?);
    }
    let ep = design(o)?;
    calibrate_runs(runs, &ep, o)
}

/// [`calibrate`] on runs already read.
pub fn calibrate_runs(runs: Vec<BenchRun>, ep: &Endpoint, o: &Options) -> anyhow::Result<Calibration> {
    let llm = ep.llm.as_ref().expect("an LLM design");
    let terms = llm.roofline.ok_or_else(|| anyhow::anyhow!("the calibration design has no roofline"))?;
    let start = fit::roofline_table(&terms);
    let coefs = fit::coefficients(&start);
    // vLLM without chunked prefill batches up to the model's context length:
    // no request of a file may be refused for its prompt.
    let mut ep = ep.clone();
    let longest = runs
        .iter()
        .map(|r| match (&r.requests, r.input_stats) {
            (Some(reqs), _) => reqs.iter().map(|q| q.input).max().unwrap_or(1),
            (None, Some(s)) => (s.mean + 10.0 * s.std).min(MAX_TOKENS as f64) as u32,
            (None, None) => 1,
        })
        .max()
        .unwrap_or(1);
    if let Some(l) = ep.llm.as_mut() {
        l.max_batched_tokens = l.max_batched_tokens.max(longest);
    }
    let ep = &ep;
    let replayers: Vec<Replayer> = runs.iter().map(|r| Replayer::new(ep, r, o.seed, o.pooled_requests)).collect();
    let mut warnings: Vec<String> = Vec::new();
    for r in &runs {
        for n in &r.notes {
            warnings.push(format!("{}: {n}", r.file));
        }
    }
    // Folds: for each, the runs it predicts; the last entry is the final fit's held-out set.
    let n = runs.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| runs[a].load_level().total_cmp(&runs[b].load_level()));
    let held: Vec<bool> = match &o.holdout {
        Holdout::Nothing | Holdout::KFold(_) => vec![false; n],
        Holdout::Heaviest => {
            let top = runs.iter().map(BenchRun::load_level).fold(f64::NEG_INFINITY, f64::max);
            runs.iter().map(|r| r.load_level() == top).collect()
        }
        Holdout::Files(names) => {
            for name in names {
                if !runs.iter().any(|r| same_file(&r.file, name)) {
                    let given = runs.iter().map(|r| r.file.as_str());
                    let message = format!("\"{name}\" is not one of the benchmark files");
                    return Err(usage("--holdout", message, did_you_mean(name, given)));
                }
            }
            runs.iter().map(|r| names.iter().any(|f| same_file(&r.file, f))).collect()
        }
    };
    if held.iter().all(|h| *h) {
        return Err(usage(
            "--holdout",
            format!("every run is held out ({n} file(s)): give runs at two or more load levels, or --holdout none"),
            None,
        ));
    }
    if let Holdout::KFold(k) = o.holdout
        && k > n
    {
        return Err(usage("--holdout", format!("{k}-fold needs at least {k} runs, {n} given"), None));
    }
    let fit_set: Vec<&Replayer> = replayers.iter().zip(&held).filter(|(_, h)| !**h).map(|(r, _)| r).collect();
    let fitted = fit::fit(&fit_set, &coefs, o.iterations).map_err(|e| anyhow::anyhow!("the fit failed: {e}"))?;
    let mut evaluations = fitted.evaluations;
    let mut rows: Vec<Row> = replayers.iter().zip(&held).map(|(r, &h)| row(r, h, &r.simulate(&fitted.table))).collect();
    if let Holdout::KFold(k) = o.holdout {
        for fold in 0..k {
            let out: Vec<usize> = order.iter().copied().skip(fold).step_by(k).collect();
            let train: Vec<&Replayer> = (0..n).filter(|i| !out.contains(i)).map(|i| &replayers[i]).collect();
            let f = fit::fit(&train, &coefs, o.iterations).map_err(|e| anyhow::anyhow!("the fit failed: {e}"))?;
            evaluations += f.evaluations;
            for i in out {
                rows[i] = row(&replayers[i], true, &replayers[i].simulate(&f.table));
            }
        }
    }
    // What the runs cannot tell apart.
    let levels = {
        let mut l: Vec<f64> = fit_set.iter().map(|r| r.run().load_level()).collect();
        l.sort_by(f64::total_cmp);
        l.dedup_by(|a, b| (*a - *b).abs() <= 0.05 * b.abs());
        l.len()
    };
    if levels < 2 {
        warnings.push(
            "every fitted run is at one load level: the decode slope (decode.b per context token, decode.c per \
             sequence) is not identified apart from its intercept; benchmark two or three load levels"
                .into(),
        );
    }
    let free = fit::unidentified(&fit_set, &coefs, &fitted.table);
    if !free.is_empty() {
        warnings.push(format!(
            "the fitted runs do not identify {}: multiplying it by 1.5 moves no fitted percentile by 2%; it stays \
             near the roofline's value",
            free.join(", ")
        ));
    }
    let stuck: Vec<&str> = coefs
        .iter()
        .zip(fit::to_vec(&fitted.table))
        .zip(NAMES)
        .filter(|((c, v), _)| c.free && (*v <= c.lo * 1.01 || *v >= c.hi * 0.99))
        .map(|(_, name)| name)
        .collect();
    if !stuck.is_empty() {
        warnings.push(format!(
            "{} reached a bound (the GPU's peak, or twenty times the roofline): the runs ask for step times the \
             form does not give; check the instance, replicas and profile",
            stuck.join(", ")
        ));
    }
    let engines: Vec<String> = match &o.engine {
        Some(e) => vec![e.clone()],
        None => {
            let mut e: Vec<String> = runs
                .iter()
                .filter_map(|r| match (&r.engine, &r.version) {
                    (Some(e), Some(v)) => Some(format!("{e} {v}")),
                    (Some(e), None) => Some(e.clone()),
                    _ => None,
                })
                .collect();
            e.sort();
            e.dedup();
            e
        }
    };
    if engines.len() > 1 {
        warnings
            .push(format!("the files name more than one engine ({}): one table is fitted to all", engines.join(", ")));
    }
    let held_rows: Vec<&Row> = rows.iter().filter(|r| r.held_out).collect();
    let worst = |metric: &str| held_rows.iter().filter_map(|r| r.error(metric)).map(f64::abs).fold(0.0, f64::max);
    let held_out_error = (!held_rows.is_empty()).then(|| (worst("ttft_p50"), worst("tpot_p50")));
    Ok(Calibration {
        design: format!(
            "{} on {} ({} replica(s) of {} GPU(s))",
            o.profile, o.instance, llm.replicas, llm.gpus_per_replica
        ),
        tensor_parallel: llm.gpus_per_replica,
        start,
        table: fitted.table,
        rows,
        warnings,
        evaluations,
        held_out_error,
        engine: engines.first().cloned(),
        model: model_of(o),
        profile: o.profile.clone(),
        instance: o.instance.clone(),
        runs,
    })
}

fn model_of(o: &Options) -> Option<ModelArch> {
    let p = crate::catalog::profile::built_in().iter().find(|p| p.name == o.profile).cloned().or_else(|| {
        let text = std::fs::read_to_string(&o.profile).ok()?;
        crate::catalog::profile::parse(&text, &o.profile).ok().map(std::sync::Arc::new)
    })?;
    p.model
}

/// Whether run `a` (a file, or `file#k` for a report's k-th benchmark) is
/// the file `b` names: the same path, or the same name when `b` is a bare name.
fn same_file(a: &str, b: &str) -> bool {
    let whole = a.rsplit_once('#').map_or(a, |(f, _)| f);
    [a, whole].iter().any(|x| {
        *x == b || Path::new(x).file_name() == Path::new(b).file_name() && Path::new(b).components().count() == 1
    })
}

fn row(r: &Replayer, held_out: bool, simulated: &Simulated) -> Row {
    let run = r.run();
    Row { file: run.file.clone(), load: run.load.describe(), held_out, measured: run.measured, simulated: *simulated }
}

fn table_text(f: &FitMs) -> String {
    let l = |v: &[f64]| v.iter().map(|x| format!("{x:.6e}")).collect::<Vec<_>>().join(", ");
    format!("{{ prefill = [{}], decode = [{}], overhead = [{}] }}", l(&f.prefill), l(&f.decode), l(&f.overhead))
}

fn pct(x: Option<f64>) -> String {
    x.map_or("-".into(), |e| format!("{:+.1}%", e * 100.0))
}

fn num(x: Option<f64>) -> String {
    x.map_or("-".into(), |v| if v >= 100.0 { format!("{v:.0}") } else { format!("{v:.2}") })
}

impl Calibration {
    /// The backtest table, the fitted table and the verdict.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let held = self.rows.iter().filter(|r| r.held_out).count();
        let _ = writeln!(
            out,
            "calibrate {}: {} run(s), {} fitted, {} held out",
            self.design,
            self.rows.len(),
            self.rows.len() - held,
            held
        );
        let _ = writeln!(
            out,
            "{:<48} {:<26} {:<5} {:>22} {:>22} {:>22} {:>24}",
            "file",
            "load",
            "role",
            "TTFT p50 ms meas/sim",
            "TTFT p90 ms meas/sim",
            "TPOT p50 ms meas/sim",
            "output tok/s meas/sim"
        );
        for r in &self.rows {
            let cell = |m: Option<f64>, s: Option<f64>, metric: &str| {
                format!("{}/{} {}", num(m), num(s), pct(r.error(metric)))
            };
            let name = Path::new(&r.file).file_name().map_or(r.file.clone(), |f| f.to_string_lossy().into_owned());
            let _ = writeln!(
                out,
                "{:<48} {:<26} {:<5} {:>22} {:>22} {:>22} {:>24}",
                name,
                r.load,
                if r.held_out { "held" } else { "fit" },
                cell(r.measured.ttft_p50_ms, Some(r.simulated.ttft_p50_ms), "ttft_p50"),
                cell(r.measured.ttft_p90_ms, Some(r.simulated.ttft_p90_ms), "ttft_p90"),
                cell(r.measured.tpot_p50_ms, Some(r.simulated.tpot_p50_ms), "tpot_p50"),
                cell(r.measured.output_tokens_per_s, r.simulated.output_tokens_per_s, "output_tokens_per_s"),
            );
        }
        let _ = writeln!(out, "roofline start: {}", table_text(&self.start));
        let _ = writeln!(
            out,
            "fitted table:   {}  ({} simulations of the fit runs)",
            table_text(&self.table),
            self.evaluations
        );
        for w in &self.warnings {
            let _ = writeln!(out, "warning: {w}");
        }
        let _ = writeln!(out, "{}", self.verdict());
        out
    }

    /// One line: how well the table predicts what it did not see.
    pub fn verdict(&self) -> String {
        let weak = if self.runs.iter().all(BenchRun::per_request) {
            ""
        } else {
            " (some files are summaries only: the fit rests on their percentiles and mean lengths, a weaker test)"
        };
        match self.held_out_error {
            None => format!("verdict: nothing held out, the table is untested{weak}"),
            Some((ttft, tpot)) => {
                let worst = ttft.max(tpot);
                let word = if worst <= 0.10 {
                    "good: within 10%"
                } else if worst <= 0.25 {
                    "fair: within 25%"
                } else {
                    "poor: beyond 25%, do not extrapolate far from the fitted loads"
                };
                format!(
                    "verdict: held-out error TTFT p50 {:.1}%, TPOT p50 {:.1}% (worst held-out run); {word}{weak}",
                    ttft * 100.0,
                    tpot * 100.0
                )
            }
        }
    }

    /// The profile file: the model, and the fitted table for the instance
    /// type at this replica size, with where it came from.
    pub fn profile_text(&self, name: &str, date: &str) -> String {
        let mut t = String::new();
        let files: Vec<String> = self
            .runs
            .iter()
            .map(|r| {
                let base = Path::new(&r.file).file_name().map_or(r.file.clone(), |f| f.to_string_lossy().into_owned());
                format!("{base} (sha256 {})", r.sha256)
            })
            .collect();
        let held = match self.held_out_error {
            Some((a, b)) => format!("TTFT p50 {:.1}%, TPOT p50 {:.1}% (worst held-out run)", a * 100.0, b * 100.0),
            None => "none held out: untested".into(),
        };
        let _ = writeln!(t, "{MARKER} from {} benchmark file(s) on {}.", self.runs.len(), date);
        let _ = writeln!(t, "# Backtest: {}", self.verdict().trim_start_matches("verdict: "));
        let _ = writeln!(t, "name = {name:?}");
        let _ = writeln!(
            t,
            "source = {:?}",
            format!("spotsim calibrate of profile \"{}\" on {}: {}", self.profile, self.instance, files.join(", "))
        );
        if let Some(m) = &self.model {
            let _ = writeln!(
                t,
                "\n[model]\nparameters = {:e}\nlayers = {}\nhidden = {}\nkv_heads = {}\nhead_dim = {}\nbytes_per_parameter = {}",
                m.parameters, m.layers, m.hidden, m.kv_heads, m.head_dim, m.bytes_per_parameter
            );
        }
        let _ = writeln!(t, "\n[llm.{:?}]", self.instance);
        let _ = writeln!(t, "tensor_parallel = {}", self.tensor_parallel);
        let _ = writeln!(t, "step_time = {}", table_text(&self.table));
        let _ = writeln!(t, "source = {:?}", format!("fitted by spotsim calibrate to {}", files.join(", ")));
        let _ = writeln!(t, "engine = {:?}", self.engine.clone().unwrap_or_else(|| "unknown (give --engine)".into()));
        let _ = writeln!(t, "date = {date:?}");
        let _ = writeln!(t, "held_out_error = {held:?}");
        t
    }
}

/// The header of the backtest CSV (`--backtest FILE`): one row per run.
pub const BACKTEST_COLUMNS: [&str; 13] = [
    "file",
    "load",
    "role",
    "requests_per_s",
    "ttft_p50_ms",
    "ttft_p50_ms_sim",
    "ttft_p90_ms",
    "ttft_p90_ms_sim",
    "tpot_p50_ms",
    "tpot_p50_ms_sim",
    "output_tokens_per_s",
    "output_tokens_per_s_sim",
    "per_request",
];

impl Calibration {
    /// The backtest table as CSV (empty cells where a file gives no figure).
    pub fn backtest_csv(&self) -> String {
        let mut out = BACKTEST_COLUMNS.join(",") + "\n";
        let f = |x: Option<f64>| x.map_or(String::new(), |v| format!("{v}"));
        for (r, run) in self.rows.iter().zip(&self.runs) {
            let quoted = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
            let cells = [
                quoted(&r.file),
                quoted(&r.load),
                if r.held_out { "held_out".into() } else { "fit".into() },
                f(r.measured.requests_per_s),
                f(r.measured.ttft_p50_ms),
                f(Some(r.simulated.ttft_p50_ms)),
                f(r.measured.ttft_p90_ms),
                f(Some(r.simulated.ttft_p90_ms)),
                f(r.measured.tpot_p50_ms),
                f(Some(r.simulated.tpot_p50_ms)),
                f(r.measured.output_tokens_per_s),
                f(r.simulated.output_tokens_per_s),
                run.per_request().to_string(),
            ];
            out += &(cells.join(",") + "\n");
        }
        out
    }
}

/// The first line of every profile `calibrate` writes: it may replace only those.
pub const MARKER: &str = "# Written by spotsim calibrate";

/// Writes `text` to `path` through a temporary file beside it; refuses to
/// replace a file `calibrate` did not write.
pub fn write_profile(path: &Path, text: &str) -> anyhow::Result<()> {
    write_ours(path, text, MARKER)
}

/// Writes `text` to `path` atomically, replacing only a file that starts with `mark`.
pub fn write_ours(path: &Path, text: &str, mark: &str) -> anyhow::Result<()> {
    if path.exists() {
        let old = std::fs::read_to_string(path).unwrap_or_default();
        if !old.starts_with(mark) {
            return Err(Refused {
                path: path.display().to_string(),
                message: "exists and was not written by spotsim calibrate".into(),
                hint: "give another --out, or remove the file yourself".into(),
            }
            .into());
        }
    }
    let tmp = path.with_extension(format!("toml.tmp-{}", std::process::id()));
    std::fs::write(&tmp, text)?;
    std::fs::rename(&tmp, path).inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })?;
    Ok(())
}

/// Today's date, UTC, as YYYY-MM-DD.
pub fn today() -> String {
    let secs = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    output::utc_timestamp(secs)[..10].to_string()
}

/// The coefficients' bounds, for `docs/calibrate.md` and the tests.
pub fn bounds_of(start: &FitMs) -> Vec<(&'static str, Coef)> {
    NAMES.iter().copied().zip(fit::coefficients(start)).collect()
}

/// Nelder-Mead iterations per fit: enough for five coefficients to settle
/// to 0.01% (the simplex's spread) on the recovery test's runs.
pub const ITERATIONS: u64 = 300;
