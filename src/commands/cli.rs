//! The `spotsim` command line: its flags, each defined once, and what each
//! command does with them. `main.rs` parses, calls [`execute`] and maps a
//! [`Failure`] to an exit code. A simulating command builds a
//! [`Request`] and prepares it, as the Slurm
//! script's shards and the Python package do.

// The flags' doc comments are clap's help text, written for a terminal
// (`results/<experiment name>/`, `[sweep]`), not for rustdoc.
#![allow(rustdoc::invalid_html_tags, rustdoc::broken_intra_doc_links)]

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use crate::catalog::{catalog, profile};
use crate::engine::Runner;
use crate::engine::progress::Tracker;
use crate::engine::shard::Shard;
use crate::experiment::{self, InputError};
use crate::output::{self, RunInfo};

use super::prepared::{self, Prepared, Request};
use super::slurm::SlurmJob;
use super::{calibrate, loadtest, merge, recommend, run, verify};
use crate::input::bench;

#[derive(Parser)]
#[command(
    name = "spotsim",
    version,
    about = "Monte Carlo simulation of ML cloud deployments: spot training, checkpoints, costs"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run experiments and write summary.csv, replications.csv and manifest.json
    Run {
        /// Experiment files (TOML)
        #[arg(required = true)]
        experiments: Vec<PathBuf>,
        #[command(flatten)]
        flags: RunFlags,
        #[command(flatten)]
        replications: Replications,
        #[command(flatten)]
        allow_long: AllowLong,
        /// Compute only slice K of N (1-based) into a shard folder for `spotsim merge`;
        /// `auto` or `auto/N` takes K from a Slurm array or Kubernetes Indexed Job
        #[arg(long, value_name = "K/N")]
        shard: Option<String>,
        /// Run only point K of the sweep (repeatable; points are numbered from 0, as
        /// `check` and the result files number them); its rows are those of a full run
        #[arg(long = "point", value_name = "K")]
        points: Vec<u64>,
    },
    /// Merge the shard folders of a run into the outputs of one run
    Merge {
        /// Shard folders written by `spotsim run EXPERIMENT --shard K/N`
        #[arg(required = true, value_name = "SHARD_DIR")]
        shards: Vec<PathBuf>,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        threads: Threads,
        #[command(flatten)]
        quiet: Quiet,
    },
    /// Print a script that runs an experiment as a Slurm array job of shards plus a merge job
    Slurm {
        experiment: PathBuf,
        /// Array tasks, one shard each
        #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
        tasks: u64,
        /// Slurm partition (sbatch --partition)
        #[arg(long, value_name = "P")]
        partition: Option<String>,
        /// Time limit of each job (sbatch --time), e.g. 01:00:00
        #[arg(long, value_name = "T")]
        time: Option<String>,
        /// CPUs per task (sbatch --cpus-per-task); each shard uses that many threads [default: 1]
        #[arg(long, value_name = "C", value_parser = clap::value_parser!(u32).range(1..))]
        cpus_per_task: Option<u32>,
        #[command(flatten)]
        output: Output,
        #[command(flatten)]
        overrides: Overrides,
        #[command(flatten)]
        replications: Replications,
        #[command(flatten)]
        allow_long: AllowLong,
    },
    /// Parse and resolve experiments and print the resolved designs and the
    /// expected work and time of a run; run nothing
    Check {
        #[arg(required = true)]
        experiments: Vec<PathBuf>,
        #[command(flatten)]
        overrides: Overrides,
        #[command(flatten)]
        threads: Threads,
        /// Print every point's resolved design, every default filled in
        /// (default: one line a point)
        #[arg(short, long)]
        verbose: bool,
    },
    /// Hold the simulator to closed-form results and print the comparison
    Verify {
        #[command(flatten)]
        replications: Replications,
        #[command(flatten)]
        seed: Seed,
        #[command(flatten)]
        threads: Threads,
    },
    /// List the instance types of the built-in catalog
    Catalog,
    /// List the built-in model profiles: what each instance type gives
    Profiles,
    /// Fit a GPU's step times to benchmark files (vLLM --save-result JSON, AIPerf /
    /// genai-perf profile_export JSON or CSV, GuideLLM report JSON, a per-request CSV), backtest them on held-out
    /// runs and write a profile with the fitted table (docs/calibrate.md)
    Calibrate {
        /// Benchmark files, one run each, all of one replica of this instance type
        #[arg(required = true, value_name = "BENCH_FILE")]
        files: Vec<PathBuf>,
        /// The model: a built-in profile or a profile file with a [model] table
        #[arg(long, value_name = "P")]
        profile: String,
        /// The instance type the files were measured on
        #[arg(long, value_name = "TYPE")]
        instance: String,
        /// Engine servers per instance: each file measured one, on gpus / replicas GPUs
        #[arg(long, value_name = "R", default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        replicas: u32,
        /// Runs the fit does not see: heaviest (the default), K-fold, none, or a file
        /// (repeat for more files)
        #[arg(long = "holdout", value_name = "heaviest|K-fold|none|FILE")]
        holdout: Vec<String>,
        /// Where to write the profile [default: <profile>-<instance>-calibrated.toml]
        #[arg(long, value_name = "FILE")]
        out: Option<PathBuf>,
        /// Also write the backtest table, one row per run, as CSV to FILE (for plotting)
        #[arg(long, value_name = "FILE")]
        backtest: Option<PathBuf>,
        /// Read every file as this format instead of detecting it: vllm, aiperf, aiperf-csv, guidellm, csv
        #[arg(long, value_name = "F")]
        format: Option<String>,
        /// The serving engine and version, when the files do not name them (e.g. "vllm 0.8.5")
        #[arg(long, value_name = "E")]
        engine: Option<String>,
        #[command(flatten)]
        seed: Seed,
        #[command(flatten)]
        quiet: Quiet,
    },
    /// Find the cheapest design of the [sweep] that meets the [objective],
    /// with stated confidence; writes recommendations.csv, rounds.csv,
    /// summary.csv (the survivors) and manifest.json
    Recommend {
        experiment: PathBuf,
        #[command(flatten)]
        flags: RunFlags,
        /// Most replications to spend over all points [default: no limit but
        /// 100,000 per point]
        #[arg(long, value_name = "REPS", value_parser = clap::value_parser!(u64).range(1..))]
        budget: Option<u64>,
        /// Also write the chosen design as API request bodies into DIR: `--emit sagemaker DIR`
        /// writes SageMaker's and Application Auto Scaling's (docs/recommend.md)
        #[arg(long, num_args = 2, value_names = ["FORMAT", "DIR"])]
        emit: Option<Vec<String>>,
    },
    /// Per point, the highest steady request rate one instance sustains under
    /// the [loadtest] latency threshold; writes loadtest.csv and manifest.json
    Loadtest {
        experiment: PathBuf,
        #[command(flatten)]
        flags: RunFlags,
    },
}

// Each flag is defined once, below, and flattened into the commands that
// take it.

/// `-o DIR`.
#[derive(Args)]
pub struct Output {
    /// Output folder [default: results/<experiment name>/]; with several
    /// experiments, each goes to DIR/<experiment name>/
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: Option<PathBuf>,
}

/// `--threads N`.
#[derive(Args)]
pub struct Threads {
    /// Worker threads [default: one per core]; results do not depend on it
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
}

/// `--seed S`.
#[derive(Args)]
pub struct Seed {
    /// Master seed (overrides the file's `seed`)
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
}

/// `--set PATH=VALUE` and `--seed`: what changes the experiment as read.
#[derive(Args)]
pub struct Overrides {
    /// Override any key, with the file's syntax: --set training.checkpoint.interval=45m
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
    #[command(flatten)]
    seed: Seed,
}

/// `-n REPS`.
#[derive(Args)]
pub struct Replications {
    /// Replications per sweep point, overriding the file's `replications` (`verify`: per check, 20000 by default)
    #[arg(short = 'n', long = "replications", value_name = "REPS", value_parser = clap::value_parser!(u64).range(1..))]
    replications: Option<u64>,
}

/// `--allow-long`.
#[derive(Args)]
pub struct AllowLong {
    /// Run even when the expected work is far beyond what a machine does in hours
    #[arg(long)]
    allow_long: bool,
}

/// `-q`.
#[derive(Args)]
pub struct Quiet {
    /// No progress bar, table or closing line on stderr
    #[arg(short, long)]
    quiet: bool,
}

/// The flags of every command that simulates an experiment and writes a
/// result folder (`run`, `recommend`, `loadtest`).
#[derive(Args)]
pub struct RunFlags {
    #[command(flatten)]
    output: Output,
    #[command(flatten)]
    overrides: Overrides,
    #[command(flatten)]
    threads: Threads,
    #[command(flatten)]
    quiet: Quiet,
}

impl Overrides {
    /// The request for the file at `path` with these overrides.
    fn request(&self, path: &Path) -> Request {
        Request { set: self.set.clone(), seed: self.seed.seed, ..Request::file(path) }
    }
}

impl RunFlags {
    fn request(&self, path: &Path) -> Request {
        Request { threads: self.threads.threads, ..self.overrides.request(path) }
    }
}

/// Why a command failed: the user's input (exit 2) or anything else.
pub enum Failure {
    Input(InputError),
    Other(anyhow::Error),
}

impl Failure {
    /// 2 for bad input and refused folders, 0 for a closed pipe, else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            Failure::Input(_) => 2,
            Failure::Other(e) if e.is::<output::Refused>() => 2,
            Failure::Other(e)
                if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) =>
            {
                0
            }
            Failure::Other(_) => 1,
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        match self {
            Failure::Input(e) => write!(f, "{e}"),
            Failure::Other(e) => write!(f, "{e:#}"),
        }
    }
}

impl From<InputError> for Failure {
    fn from(e: InputError) -> Self {
        Failure::Input(e)
    }
}
impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        // Input errors the library reports inside an `anyhow::Error` exit with 2.
        match e.downcast::<InputError>() {
            Ok(input) => Failure::Input(input),
            Err(other) => Failure::Other(other),
        }
    }
}
impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Other(e.into())
    }
}

/// Prepares `request` as every door does (`prepared`), and says its
/// warnings on stderr: they never change the exit status.
fn prepare(request: &Request, command: prepared::Command) -> Result<Prepared, InputError> {
    let p = request.prepare(command)?;
    for w in &p.experiment.warnings {
        eprintln!("{w}");
    }
    Ok(p)
}

/// Runs one command.
pub fn execute(command: Command) -> Result<(), Failure> {
    match command {
        Command::Run { experiments, flags, replications, allow_long, shard, points } => {
            let shard = shard.map(|s| Shard::parse(&s, |name| std::env::var(name).ok())).transpose()?;
            if shard.is_some() && experiments.len() > 1 {
                return Err(usage("--shard", "runs one experiment; give one experiment file"));
            }
            // Every file is checked before anything runs or is written.
            let mut prepared = Vec::new();
            for path in &experiments {
                let request = Request {
                    points: points.clone(),
                    replications: replications.replications,
                    allow_long: allow_long.allow_long,
                    ..flags.request(path)
                };
                prepared.push(prepare(&request, prepared::Command::Run(shard))?);
            }
            let runner = Runner::new(flags.threads.threads)?;
            // Every output folder is checked and locked before anything runs.
            let mut dirs = Vec::new();
            for p in &prepared {
                let dir = match (&flags.output.output, prepared.len()) {
                    (Some(dir), 1) => dir.clone(),
                    (Some(dir), _) => dir.join(&p.experiment.name),
                    (None, _) => p.default_dir(),
                };
                dirs.push(output::OutputDir::claim(&dir)?);
            }
            for (p, dir) in prepared.iter().zip(&dirs) {
                run_one(p, &runner, dir, flags.quiet.quiet)?;
            }
            Ok(())
        }
        Command::Merge { shards, output, threads, quiet } => {
            let Some(output) = output.output else {
                return Err(usage("-o", "merge writes one result folder: give it with -o DIR"));
            };
            let clock = Instant::now();
            let dir = output::OutputDir::claim(&output)?;
            let merged = merge::merge(&dir, &shards, &Runner::new(threads.threads)?)?;
            if !quiet.quiet {
                eprintln!(
                    "merged {} shards: {} point(s) x {} replications in {:.2} s -> {}",
                    merged.shards,
                    merged.points,
                    merged.replications,
                    clock.elapsed().as_secs_f64(),
                    output.display()
                );
            }
            Ok(())
        }
        Command::Slurm {
            experiment,
            tasks,
            partition,
            time,
            cpus_per_task,
            output,
            overrides,
            replications,
            allow_long,
        } => {
            let request = Request {
                replications: replications.replications,
                allow_long: allow_long.allow_long,
                ..overrides.request(&experiment)
            };
            let p = prepare(&request, prepared::Command::Slurm { tasks })?;
            let sbatch_args = [
                ("--partition", partition),
                ("--time", time),
                ("--cpus-per-task", cpus_per_task.map(|c| c.to_string())),
            ]
            .into_iter()
            .filter_map(|(flag, value)| value.map(|v| format!("{flag}={v}")))
            .collect();
            let absolute = |p: &Path| std::path::absolute(p).map_err(Failure::from);
            let e = &p.experiment;
            let job = SlurmJob {
                spotsim: std::env::current_exe()?,
                experiment: absolute(&experiment)?,
                output: absolute(&output.output.unwrap_or_else(|| p.default_dir()))?,
                tasks,
                run_args: request.run_args(),
                sbatch_args,
                printed_by: std::env::args().collect(),
                summary: format!("{}: {} point(s) x {} replications", e.name, e.points.len(), e.replications),
            };
            write!(std::io::stdout().lock(), "{}", job.script())?;
            Ok(())
        }
        Command::Check { experiments, overrides, threads, verbose } => {
            let prepared: Vec<Prepared> = experiments
                .iter()
                .map(|path| prepare(&overrides.request(path), prepared::Command::Check))
                .collect::<Result<_, _>>()?;
            let threads = Runner::new(threads.threads)?.threads();
            let mut out = std::io::stdout().lock();
            for p in &prepared {
                let e = &p.experiment;
                let estimate = run::estimate(e, e.replications, threads);
                writeln!(out, "{}", e.describe(&[format!("estimate: {estimate}")], verbose))?;
            }
            Ok(())
        }
        Command::Verify { replications, seed, threads } => {
            let n = replications.replications.unwrap_or(20_000);
            if n < 2 {
                return Err(usage("-n", "verify compares spreads: give at least 2 replications per check"));
            }
            let (report, failed) = verify::report(&Runner::new(threads.threads)?, n, seed.seed.unwrap_or(1));
            write!(std::io::stdout().lock(), "{report}")?;
            if failed > 0 {
                return Err(Failure::Other(anyhow::anyhow!("{failed} verification checks failed")));
            }
            Ok(())
        }
        Command::Catalog => {
            write!(std::io::stdout().lock(), "{}", catalog().render())?;
            Ok(())
        }
        Command::Calibrate {
            files,
            profile,
            instance,
            replicas,
            holdout,
            out,
            backtest,
            format,
            engine,
            seed,
            quiet,
        } => {
            let holdout = calibrate::Holdout::parse(&holdout).map_err(|m| usage("--holdout", &m))?;
            let format = format.map(|f| bench::Format::parse(&f)).transpose().map_err(|m| usage("--format", &m))?;
            let options = calibrate::Options {
                profile,
                instance,
                replicas,
                holdout,
                format,
                engine,
                seed: seed.seed.unwrap_or(1),
                iterations: calibrate::ITERATIONS,
                pooled_requests: calibrate::replay::POOLED_REQUESTS,
            };
            let clock = Instant::now();
            let c = calibrate::calibrate(&files, &options)?;
            let out = out.unwrap_or_else(|| {
                let stem = Path::new(&options.profile)
                    .file_stem()
                    .map_or("profile".into(), |s| s.to_string_lossy().into_owned());
                PathBuf::from(format!("{stem}-{}-calibrated.toml", options.instance))
            });
            let name = out.file_stem().map_or("calibrated".into(), |s| s.to_string_lossy().into_owned());
            calibrate::write_profile(&out, &c.profile_text(&name, &calibrate::today()))?;
            if let Some(path) = &backtest {
                calibrate::write_ours(path, &c.backtest_csv(), calibrate::BACKTEST_COLUMNS[0])?;
            }
            if !quiet.quiet {
                eprint!("{}", c.render());
                eprintln!("-> {} ({:.2} s)", out.display(), clock.elapsed().as_secs_f64());
            }
            Ok(())
        }
        Command::Profiles => {
            write!(std::io::stdout().lock(), "{}", profile::render())?;
            Ok(())
        }
        Command::Recommend { experiment, flags, budget, emit } => {
            let request = flags.request(&experiment);
            let emit_dir = emit.map(|v| emit_folder(&v, &flags)).transpose()?;
            let a = Answer::open(&flags, &request, prepared::Command::Recommend)?;
            let e = &a.p.experiment;
            // Refused before the search, and the folder claimed: no work is lost to a refusal.
            let emit_dir = match emit_dir {
                Some(dir) => {
                    recommend::sagemaker::check(e)?;
                    Some(output::OutputDir::claim(&dir)?)
                }
                None => None,
            };
            let settings = recommend::Settings { budget, ..Default::default() };
            if !a.quiet {
                eprintln!("{}: {}", e.name, recommend_estimate(e, &settings, a.runner.threads()));
            }
            // The bar's length is the work to the end of the current round,
            // grown as rounds end, so its ETA is the round's.
            let points = e.points.len();
            let first = settings.first_stage * points as u64;
            let bar = progress_bar(a.quiet, Some(first), "{prefix} [{bar:30}] {msg}  ETA {eta}", &e.name);
            let search = recommend::report::search(e, &a.runner, &settings, &|n| bar.inc(n), &|r| {
                bar.set_length(recommend::report::next_round_total(r, &settings).max(r.spent));
                bar.set_message(recommend::report::round_line(r, points))
            })?;
            bar.finish_and_clear();
            a.write(&search.files(e, &a.runner, &a.info()), &search.render(e))?;
            if !a.quiet
                && let Some(line) = run_alone(&request, &search.recommendation)
            {
                eprintln!("{line}");
            }
            match &emit_dir {
                Some(dir) => emit_sagemaker(&a, &search.recommendation, dir),
                None => Ok(()),
            }
        }
        Command::Loadtest { experiment, flags } => {
            let a = Answer::open(&flags, &flags.request(&experiment), prepared::Command::Loadtest)?;
            let e = &a.p.experiment;
            let settings = loadtest::Settings::default();
            let spec = loadtest::check(e)?;
            // The bar counts rates simulated (or user counts run), so its
            // ETA follows the search's work, not only its points.
            let bar = progress_bar(
                a.quiet,
                Some(loadtest::work_units(e, spec)),
                "{prefix} [{bar:30}] {percent}%  ETA {eta}",
                &e.name,
            );
            let results = loadtest::loadtest(e, &a.runner, &settings, &|n| bar.inc(n))?;
            bar.finish_and_clear();
            a.write(&loadtest::files(e, &results, &settings, &a.info()), &loadtest::render(e, &results))?;
            Ok(())
        }
    }
}

/// What `recommend` says up front: the work of its first round, and of the
/// most it may spend (the budget, or every point to the cap).
fn recommend_estimate(experiment: &experiment::Experiment, settings: &recommend::Settings, threads: usize) -> String {
    let points = experiment.points.len().max(1) as u64;
    let first = run::estimate(experiment, settings.first_stage, threads);
    let (most, why) = match settings.budget {
        Some(b) => (b.div_ceil(points), "the budget"),
        None => (settings.max_per_point, "every point to the cap, without --budget"),
    };
    let all = run::estimate(experiment, most, threads);
    format!(
        "estimate: the first round {} replications ({first}); at most {} replications ({}, {why})",
        settings.first_stage * points,
        most * points,
        all.to_string().split_once(", ").map_or(String::new(), |(_, t)| t.to_string())
    )
}

/// A `recommend` or `loadtest` under way: its prepared run, its claimed
/// output folder, its runner and its clocks.
struct Answer {
    p: Prepared,
    dir: output::OutputDir,
    runner: Runner,
    quiet: bool,
    started: SystemTime,
    clock: Instant,
}

impl Answer {
    fn open(flags: &RunFlags, request: &Request, command: prepared::Command) -> Result<Answer, Failure> {
        let p = prepare(request, command)?;
        let dir = output::OutputDir::claim(&flags.output.output.clone().unwrap_or_else(|| p.default_dir()))?;
        let runner = p.runner()?;
        Ok(Answer { p, dir, runner, quiet: flags.quiet.quiet, started: SystemTime::now(), clock: Instant::now() })
    }

    fn info(&self) -> RunInfo {
        RunInfo::now(self.runner.threads(), self.started, self.clock.elapsed().as_secs_f64())
    }

    /// Writes the answer's files, then (unless quiet) prints it and where it went.
    fn write(&self, files: &[(&str, Vec<u8>)], rendered: &str) -> Result<(), Failure> {
        self.dir.write(files)?;
        if !self.quiet {
            eprint!("{rendered}");
            eprintln!("-> {} ({:.2} s)", self.dir.path().display(), self.clock.elapsed().as_secs_f64());
        }
        Ok(())
    }
}

/// The folder of `--emit FORMAT DIR`: the format is `sagemaker`, and the
/// folder is not the one `-o` names.
fn emit_folder(args: &[String], flags: &RunFlags) -> Result<PathBuf, Failure> {
    let [format, dir] = args else { unreachable!("clap takes two values") };
    if format != "sagemaker" {
        let hint =
            crate::input::error::did_you_mean(format, ["sagemaker"]).unwrap_or("the one format is `sagemaker`".into());
        return Err(usage("--emit", &format!("expected `--emit sagemaker DIR`, found format `{format}` ({hint})")));
    }
    let dir = PathBuf::from(dir);
    let same = |o: &Path| std::path::absolute(o).ok() == std::path::absolute(&dir).ok();
    if flags.output.output.as_deref().is_some_and(same) {
        return Err(usage("--emit", "the request bodies go to their own folder: give --emit a DIR other than -o"));
    }
    Ok(dir)
}

/// Writes the chosen (or leading) design's SageMaker requests into `dir`,
/// with a manifest saying which point they are.
fn emit_sagemaker(a: &Answer, rec: &recommend::Recommendation, dir: &output::OutputDir) -> Result<(), Failure> {
    let e = &a.p.experiment;
    let Some((point, chosen)) = chosen_point(rec) else {
        return Err(Failure::Other(anyhow::anyhow!(
            "{}: no design was chosen, so none was emitted into {}",
            e.name,
            dir.path().display()
        )));
    };
    let emission = recommend::sagemaker::emit(e, point)?;
    #[derive(serde::Serialize)]
    struct Procedure<'a> {
        command: &'static str,
        point: usize,
        chosen: &'static str,
        endpoints: &'a [String],
        notes: &'a [String],
    }
    let procedure = Procedure {
        command: "recommend --emit sagemaker",
        point,
        chosen,
        endpoints: &emission.endpoints,
        notes: &emission.notes,
    };
    let manifest = output::manifest_json_with(&e.subject(), &a.info(), Some(&procedure));
    let mut files: Vec<(&str, Vec<u8>)> = emission.files.iter().map(|(n, b)| (n.as_str(), b.clone())).collect();
    files.push(("manifest.json", manifest));
    dir.write(&files)?;
    if !a.quiet {
        for note in &emission.notes {
            eprintln!("note: {note}");
        }
        eprintln!(
            "-> {}: point {point} ({chosen}) as {} SageMaker request bodies for endpoint(s) {} (docs/recommend.md gives the aws commands)",
            dir.path().display(),
            emission.files.len(),
            emission.endpoints.join(", ")
        );
    }
    Ok(())
}

/// The point `recommend` chose, or the leader of a search the budget or the
/// cap stopped, with which of the two it is.
fn chosen_point(rec: &recommend::Recommendation) -> Option<(usize, &'static str)> {
    use recommend::Outcome;
    match rec.outcome {
        Outcome::Selected { best, .. } => Some((best, "chosen")),
        Outcome::BudgetSpent { leader: Some(p) } | Outcome::CapReached { leader: Some(p) } => {
            Some((p, "leading, without the guarantee"))
        }
        _ => None,
    }
}

/// The command that runs the chosen (or leading) point alone, with ten times
/// the replications the search gave it and the same seed and overrides.
fn run_alone(request: &Request, rec: &recommend::Recommendation) -> Option<String> {
    let (point, _) = chosen_point(rec)?;
    let alone = Request {
        points: vec![point as u64],
        replications: Some((10 * rec.points[point].replications).max(1000)),
        ..request.clone()
    };
    let prepared::Source::File(path) = &alone.source else { return None };
    let words: Vec<String> = [path.display().to_string()].into_iter().chain(alone.run_args()).collect();
    let line = words.iter().map(|w| crate::engine::shard::shell_quote(w)).collect::<Vec<_>>().join(" ");
    Some(format!("Run it alone, with more replications and its timeline: spotsim run {line}"))
}

fn usage(flag: &str, message: &str) -> Failure {
    let origin = experiment::Origin { file: flag.to_string(), line: None };
    Failure::Input(InputError::new(&origin, None, message))
}

/// A progress bar on stderr when it is a terminal and not `quiet`; a spinner
/// when `total` is unknown.
fn progress_bar(quiet: bool, total: Option<u64>, template: &str, prefix: &str) -> ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = total.map_or_else(ProgressBar::new_spinner, ProgressBar::new);
    bar.set_style(
        ProgressStyle::with_template(template)
            .expect("a valid template")
            .with_key("rate", |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                let _ = write!(w, "{:.0}/s", state.per_sec());
            })
            .progress_chars("=> "),
    );
    bar.set_prefix(prefix.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(200));
    bar
}

/// Runs `simulate` with the bar measuring work, not replications: long
/// replications move it (and its ETA) as their engines report events.
fn with_work_bar<R: Send>(
    bar: &ProgressBar,
    tracker: &Tracker,
    replications: u64,
    unit: &str,
    simulate: impl FnOnce() -> R + Send,
) -> R {
    let show = || {
        bar.set_position(tracker.done() as u64);
        bar.set_message(format!(
            "{}/{} replications  {:.2e} of about {:.2e} {unit}",
            tracker.replications_done(),
            replications,
            tracker.done(),
            tracker.total()
        ));
    };
    let (done, wait) = std::sync::mpsc::channel::<()>();
    std::thread::scope(|s| {
        if !bar.is_hidden() {
            s.spawn(move || {
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    wait.recv_timeout(std::time::Duration::from_millis(200))
                {
                    show();
                }
            });
        }
        let result = simulate();
        drop(done);
        result
    })
}

fn run_one(p: &Prepared, runner: &Runner, dir: &output::OutputDir, quiet: bool) -> Result<(), Failure> {
    let e = &p.experiment;
    let started = SystemTime::now();
    let clock = Instant::now();
    let range = p.range();
    let reps = range.end - range.start;
    let estimate = run::estimate(e, reps, runner.threads());
    if !quiet && estimate.seconds > 60.0 {
        eprintln!("{}: estimate: {estimate}", e.name);
    }
    let tracker = Tracker::new(e.points.iter().map(|p| p.design.work().events).collect(), reps);
    let bar = progress_bar(
        quiet,
        Some(tracker.total().ceil().max(1.0) as u64),
        "{prefix} [{bar:30}] {msg}  ETA {eta}",
        &e.name,
    );
    let total = reps * e.points.len() as u64;
    let results = with_work_bar(&bar, &tracker, total, estimate.unit, || p.simulate(runner, &|n| tracker.finished(n)));
    bar.finish_and_clear();
    let info = RunInfo::now(runner.threads(), started, clock.elapsed().as_secs_f64());
    let files = match p.shard() {
        None => run::result_files(e, runner, &results, &info),
        Some(s) => run::shard_files(e, runner, s, &results, &info),
    };
    dir.write(&files)?;
    if !quiet {
        // The cheapest of some points is no answer, and a slice's table would
        // read as the answer (the merge has the whole): only whole runs print it.
        let whole = p.request.points.is_empty() && p.shard().is_none();
        if whole && let Some(table) = recommend::report::sweep_table(e, &results) {
            eprint!("{table}");
        }
        let slice = p.shard().map_or(String::new(), |s| format!(" (shard {s}: {range:?})"));
        eprintln!(
            "{}: {} point(s) x {} replications{slice} in {:.2} s -> {}",
            e.name,
            e.points.len(),
            e.replications,
            clock.elapsed().as_secs_f64(),
            dir.path().display()
        );
    }
    Ok(())
}
