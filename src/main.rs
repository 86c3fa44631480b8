//! The `spotsim` command line: parse, call the library, map errors to exit
//! codes (0 success, 2 bad input, 1 anything else).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime};

use clap::{Args, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};

use spotsim::catalog::catalog;
use spotsim::catalog::profile;
use spotsim::commands::slurm::SlurmJob;
use spotsim::commands::{loadtest, merge, recommend, run, verify};
use spotsim::engine::Runner;
use spotsim::engine::progress::Tracker;
use spotsim::engine::shard::Shard;
use spotsim::experiment::{self, Experiment, InputError};
use spotsim::output::{self, RunInfo};

#[derive(Parser)]
#[command(
    name = "spotsim",
    version,
    about = "Monte Carlo simulation of ML cloud deployments: spot training, checkpoints, costs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run experiments and write summary.csv, replications.csv and manifest.json
    Run {
        /// Experiment files (TOML)
        #[arg(required = true)]
        experiments: Vec<PathBuf>,
        #[command(flatten)]
        flags: RunFlags,
        /// Replications per sweep point (overrides the file's `replications`)
        #[arg(short = 'n', long = "replications", value_name = "REPS", value_parser = clap::value_parser!(u64).range(1..))]
        replications: Option<u64>,
        /// Run even when the expected work is far beyond what a machine does in hours
        #[arg(long)]
        allow_long: bool,
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
        /// Output folder for the merged result
        #[arg(short = 'o', long = "output", value_name = "DIR", required = true)]
        output: PathBuf,
        /// Shard folders written by `spotsim run EXPERIMENT --shard K/N`
        #[arg(required = true, value_name = "SHARD_DIR")]
        shards: Vec<PathBuf>,
        #[arg(long, value_name = "N", default_value_t = 0)]
        threads: usize,
        #[arg(short, long)]
        quiet: bool,
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
        /// The merged result's folder [default: results/<experiment name>/]; shards and logs go to DIR-shards/
        #[arg(short = 'o', long = "output", value_name = "DIR")]
        output: Option<PathBuf>,
        #[arg(short = 'n', long = "replications", value_name = "REPS", value_parser = clap::value_parser!(u64).range(1..))]
        replications: Option<u64>,
        #[arg(long, value_name = "S")]
        seed: Option<u64>,
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
        /// Let each shard run even when its slice is far beyond what a machine does in hours
        #[arg(long)]
        allow_long: bool,
    },
    /// Parse and resolve experiments and print the resolved designs and the
    /// expected work and time of a run; run nothing
    Check {
        #[arg(required = true)]
        experiments: Vec<PathBuf>,
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
        /// Threads the time estimate assumes [default: one per core]
        #[arg(long, value_name = "N", default_value_t = 0)]
        threads: usize,
    },
    /// Hold the simulator to closed-form results and print the comparison
    Verify {
        /// Replications per check
        #[arg(short = 'n', long = "replications", default_value_t = 20_000, value_parser = clap::value_parser!(u64).range(2..))]
        replications: u64,
        #[arg(long, default_value_t = 1)]
        seed: u64,
        #[arg(long, default_value_t = 0)]
        threads: usize,
    },
    /// List the instance types of the built-in catalog
    Catalog,
    /// List the built-in model profiles: what each instance type gives
    Profiles,
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
    },
    /// Per point, the highest steady request rate one instance sustains under
    /// the [loadtest] latency threshold; writes loadtest.csv and manifest.json
    Loadtest {
        experiment: PathBuf,
        #[command(flatten)]
        flags: RunFlags,
    },
}

/// The flags of every command that simulates an experiment and writes a
/// result folder (`run`, `recommend`, `loadtest`), defined once.
#[derive(Args)]
struct RunFlags {
    /// Output folder [default: results/<experiment name>/]; with several
    /// experiments, each goes to DIR/<experiment name>/
    #[arg(short = 'o', long = "output", value_name = "DIR")]
    output: Option<PathBuf>,
    /// Master seed (overrides the file's `seed`)
    #[arg(long, value_name = "S")]
    seed: Option<u64>,
    /// Worker threads [default: one per core]; results do not depend on it
    #[arg(long, value_name = "N", default_value_t = 0)]
    threads: usize,
    /// Override any key, with the file's syntax: --set training.checkpoint.interval=45m
    #[arg(long = "set", value_name = "PATH=VALUE")]
    set: Vec<String>,
    /// No progress bar, table or closing line on stderr
    #[arg(short, long)]
    quiet: bool,
}

impl RunFlags {
    /// The experiment at `path` with these flags' overrides.
    fn load(&self, path: &Path, fit: experiment::Fit) -> Result<Experiment, Failure> {
        let mut e = experiment::load_with(path, &self.set, fit)?;
        e.seed = self.seed.unwrap_or(e.seed);
        Ok(e)
    }

    /// The output folder of `e`, claimed.
    fn claim(&self, e: &Experiment) -> Result<output::OutputDir, Failure> {
        Ok(output::OutputDir::claim(&self.output.clone().unwrap_or_else(|| default_dir(e)))?)
    }
}

/// Errors that are the user's input, not the program's.
enum Failure {
    Input(InputError),
    Other(anyhow::Error),
}

impl From<InputError> for Failure {
    fn from(e: InputError) -> Self {
        Failure::Input(e)
    }
}
impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Other(e)
    }
}
impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Other(e.into())
    }
}

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    match execute(cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(Failure::Input(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
        Err(Failure::Other(e)) => {
            if e.downcast_ref::<std::io::Error>().is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::from(if e.is::<output::Refused>() { 2 } else { 1 })
        }
    }
}

fn execute(command: Command) -> Result<(), Failure> {
    match command {
        Command::Run { experiments, flags, replications, allow_long, shard, points } => {
            let shard = shard.map(|s| Shard::parse(&s, |name| std::env::var(name).ok())).transpose()?;
            if shard.is_some() && experiments.len() > 1 {
                return Err(usage("--shard", "runs one experiment; give one experiment file"));
            }
            // Every file is checked before anything runs or is written.
            let mut loaded = Vec::new();
            for path in &experiments {
                let mut e = flags.load(path, experiment::Fit::Refuse)?;
                run::check_runnable(&e)?;
                if !points.is_empty() {
                    e.keep_points(&points)?;
                }
                e.replications = replications.unwrap_or(e.replications);
                if !allow_long {
                    let range = shard.map_or(0..e.replications, |s| s.range(e.replications));
                    run::check_work_of(&e, range.end - range.start)?;
                }
                loaded.push(e);
            }
            let runner = Runner::new(flags.threads)?;
            // Every output folder is checked and locked before anything runs.
            let mut dirs = Vec::new();
            for e in &loaded {
                let dir = match (&flags.output, loaded.len(), shard) {
                    (Some(dir), 1, _) => dir.clone(),
                    (Some(dir), _, _) => dir.join(&e.name),
                    (None, _, Some(s)) => {
                        Path::new("results").join(format!("{}-shards", e.name)).join(format!("shard-{}", s.k))
                    }
                    (None, _, None) => default_dir(e),
                };
                dirs.push(output::OutputDir::claim(&dir)?);
            }
            // The cheapest of some points is no answer: their table is left out.
            let table = points.is_empty() && shard.is_none();
            for (e, dir) in loaded.iter().zip(&dirs) {
                run_one(e, &runner, dir, flags.quiet, shard, table)?;
            }
            Ok(())
        }
        Command::Merge { output, shards, threads, quiet } => {
            let clock = Instant::now();
            let dir = output::OutputDir::claim(&output)?;
            let merged = merge::merge(&dir, &shards, &Runner::new(threads)?).map_err(input_or_other)?;
            if !quiet {
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
            replications,
            seed,
            set,
            allow_long,
        } => {
            let mut e = experiment::load(&experiment, &set)?;
            e.replications = replications.unwrap_or(e.replications);
            e.seed = seed.unwrap_or(e.seed);
            let mut run_args: Vec<String> = Vec::new();
            if let Some(n) = replications {
                run_args.extend(["-n".into(), n.to_string()]);
            }
            if let Some(s) = seed {
                run_args.extend(["--seed".into(), s.to_string()]);
            }
            for s in &set {
                run_args.extend(["--set".into(), s.clone()]);
            }
            if allow_long {
                run_args.push("--allow-long".into());
            } else {
                // The largest slice, as a shard will check it.
                run::check_work_of(&e, e.replications.div_ceil(tasks))?;
            }
            let sbatch_args = [
                ("--partition", partition),
                ("--time", time),
                ("--cpus-per-task", cpus_per_task.map(|c| c.to_string())),
            ]
            .into_iter()
            .filter_map(|(flag, value)| value.map(|v| format!("{flag}={v}")))
            .collect();
            let absolute = |p: &Path| std::path::absolute(p).map_err(Failure::from);
            let job = SlurmJob {
                spotsim: std::env::current_exe()?,
                experiment: absolute(&experiment)?,
                output: absolute(&output.unwrap_or_else(|| default_dir(&e)))?,
                tasks,
                run_args,
                sbatch_args,
                printed_by: std::env::args().collect(),
                summary: format!("{}: {} point(s) x {} replications", e.name, e.points.len(), e.replications),
            };
            write!(std::io::stdout().lock(), "{}", job.script())?;
            Ok(())
        }
        Command::Check { experiments, set, threads } => {
            let loaded: Vec<Experiment> =
                experiments.iter().map(|p| experiment::load(p, &set)).collect::<Result<_, _>>()?;
            let threads = Runner::new(threads)?.threads();
            let mut out = std::io::stdout().lock();
            for e in &loaded {
                let estimate = run::estimate(e, e.replications, threads);
                writeln!(out, "{}", e.describe(&[format!("estimate: {estimate}")]))?;
            }
            Ok(())
        }
        Command::Verify { replications, seed, threads } => {
            let (report, failed) = verify::report(&Runner::new(threads)?, replications, seed);
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
        Command::Profiles => {
            write!(std::io::stdout().lock(), "{}", profile::render())?;
            Ok(())
        }
        Command::Recommend { experiment, flags, budget } => {
            // A design that does not fit its instance is an answer here.
            let e = flags.load(&experiment, experiment::Fit::Mark)?;
            recommend::report::check(&e)?;
            let dir = flags.claim(&e)?;
            let runner = Runner::new(flags.threads)?;
            let quiet = flags.quiet;
            let started = SystemTime::now();
            let clock = Instant::now();
            let settings = recommend::Settings { budget, ..Default::default() };
            let bar = progress_bar(quiet, None, "{prefix} {spinner} {msg}  {human_pos} replications  {rate}", &e.name);
            let points = e.points.len();
            let search = recommend::report::search(&e, &runner, &settings, &|n| bar.inc(n), &|r| {
                bar.set_message(recommend::report::round_line(r, points))
            })?;
            bar.finish_and_clear();
            let info = RunInfo::now(runner.threads(), started, clock.elapsed().as_secs_f64());
            dir.write(&search.files(&e, &runner, &info))?;
            if !quiet {
                eprint!("{}", search.render(&e));
                eprintln!("-> {} ({:.2} s)", dir.path().display(), clock.elapsed().as_secs_f64());
                if let Some(line) = run_alone(&experiment, &flags, &search.recommendation) {
                    eprintln!("{line}");
                }
            }
            Ok(())
        }
        Command::Loadtest { experiment, flags } => {
            let e = flags.load(&experiment, experiment::Fit::Refuse)?;
            loadtest::check(&e)?;
            let dir = flags.claim(&e)?;
            let runner = Runner::new(flags.threads)?;
            let quiet = flags.quiet;
            let started = SystemTime::now();
            let clock = Instant::now();
            let settings = loadtest::Settings::default();
            let bar = progress_bar(
                quiet,
                Some(e.points.len() as u64),
                "{prefix} [{bar:30}] {pos}/{len} points  ETA {eta}",
                &e.name,
            );
            let results = loadtest::loadtest(&e, &runner, &settings, &|_| bar.inc(1))?;
            bar.finish_and_clear();
            let info = RunInfo::now(runner.threads(), started, clock.elapsed().as_secs_f64());
            dir.write(&loadtest::files(&e, &results, &settings, &info))?;
            if !quiet {
                eprint!("{}", loadtest::render(&e, &results));
                eprintln!("-> {} ({:.2} s)", dir.path().display(), clock.elapsed().as_secs_f64());
            }
            Ok(())
        }
    }
}

/// The command that runs the chosen (or leading) point alone, with ten times
/// the replications the search gave it and the same seed and overrides.
fn run_alone(path: &Path, flags: &RunFlags, rec: &recommend::Recommendation) -> Option<String> {
    use recommend::Outcome;
    let point = match rec.outcome {
        Outcome::Selected { best, .. } => best,
        Outcome::BudgetSpent { leader: Some(p) } | Outcome::CapReached { leader: Some(p) } => p,
        _ => return None,
    };
    let quote = |s: &str| {
        if s.chars().all(|c| c.is_ascii_alphanumeric() || "_-./=:,+@".contains(c)) {
            s.to_string()
        } else {
            format!("'{}'", s.replace('\'', r"'\''"))
        }
    };
    let mut line = format!("spotsim run {} --point {point}", quote(&path.display().to_string()));
    line += &format!(" -n {}", (10 * rec.points[point].replications).max(1000));
    if let Some(seed) = flags.seed {
        line += &format!(" --seed {seed}");
    }
    for set in &flags.set {
        line += &format!(" --set {}", quote(set));
    }
    Some(format!("Run it alone, with more replications and its timeline: {line}"))
}

fn usage(flag: &str, message: &str) -> Failure {
    let origin = experiment::Origin { file: flag.to_string(), line: None };
    Failure::Input(InputError::new(&origin, None, message))
}

/// Input errors the library reports inside an `anyhow::Error` exit with 2.
fn input_or_other(e: anyhow::Error) -> Failure {
    match e.downcast::<InputError>() {
        Ok(input) => Failure::Input(input),
        Err(other) => Failure::Other(other),
    }
}

fn default_dir(e: &Experiment) -> PathBuf {
    Path::new("results").join(&e.name)
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

fn run_one(
    e: &Experiment,
    runner: &Runner,
    dir: &output::OutputDir,
    quiet: bool,
    shard: Option<Shard>,
    table: bool,
) -> Result<(), Failure> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let range = shard.map_or(0..e.replications, |s| s.range(e.replications));
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
    let results = with_work_bar(&bar, &tracker, total, estimate.unit, || {
        run::simulate_range(e, runner, range.clone(), &|n| tracker.finished(n))
    });
    bar.finish_and_clear();
    let info = RunInfo::now(runner.threads(), started, clock.elapsed().as_secs_f64());
    let files = match shard {
        None => run::result_files(e, runner, &results, &info),
        Some(s) => run::shard_files(e, runner, s, &results, &info),
    };
    dir.write(&files)?;
    if !quiet {
        // A slice's table would read as the answer; the merge has the whole.
        if table && let Some(table) = recommend::report::sweep_table(e, &results) {
            eprint!("{table}");
        }
        let slice = shard.map_or(String::new(), |s| format!(" (shard {s}: {range:?})"));
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
