//! The `spotsim` command line: parse, call the library, map errors to exit
//! codes (0 success, 2 bad input, 1 anything else).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use indicatif::{ProgressBar, ProgressStyle};
use rayon::prelude::*;

use spotsim::catalog::catalog;
use spotsim::engine::Runner;
use spotsim::experiment::{self, Experiment, InputError};
use spotsim::output::{self, RunInfo};
use spotsim::{run, verify};

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
        /// Output folder [default: results/<experiment name>/]; with several
        /// experiments, each goes to DIR/<experiment name>/
        #[arg(short = 'o', long = "output", value_name = "DIR")]
        output: Option<PathBuf>,
        /// Replications per sweep point (overrides the file's `replications`)
        #[arg(short = 'n', long = "replications", value_name = "REPS", value_parser = clap::value_parser!(u64).range(1..))]
        replications: Option<u64>,
        /// Master seed (overrides the file's `seed`)
        #[arg(long, value_name = "S")]
        seed: Option<u64>,
        /// Worker threads [default: one per core]; results do not depend on it
        #[arg(long, value_name = "N", default_value_t = 0)]
        threads: usize,
        /// Override any key, with the file's syntax: --set training.checkpoint.interval=45m
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
        /// No progress bar or closing line on stderr
        #[arg(short, long)]
        quiet: bool,
    },
    /// Parse and resolve experiments and print the resolved designs; run nothing
    Check {
        #[arg(required = true)]
        experiments: Vec<PathBuf>,
        #[arg(long = "set", value_name = "PATH=VALUE")]
        set: Vec<String>,
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
        Command::Run { experiments, output, replications, seed, threads, set, quiet } => {
            // Every file is checked before anything runs or is written.
            let mut loaded = Vec::new();
            for path in &experiments {
                let mut e = experiment::load(path, &set)?;
                e.replications = replications.unwrap_or(e.replications);
                e.seed = seed.unwrap_or(e.seed);
                loaded.push(e);
            }
            let runner = Runner::new(threads)?;
            // Every output folder is checked and locked before anything runs.
            let mut dirs = Vec::new();
            for e in &loaded {
                let dir = match (&output, loaded.len()) {
                    (Some(dir), 1) => dir.clone(),
                    (Some(dir), _) => dir.join(&e.name),
                    (None, _) => Path::new("results").join(&e.name),
                };
                dirs.push(output::OutputDir::claim(&dir)?);
            }
            for (e, dir) in loaded.iter().zip(&dirs) {
                run_one(e, &runner, dir, quiet)?;
            }
            Ok(())
        }
        Command::Check { experiments, set } => {
            let loaded: Vec<Experiment> =
                experiments.iter().map(|p| experiment::load(p, &set)).collect::<Result<_, _>>()?;
            let mut out = std::io::stdout().lock();
            for e in &loaded {
                writeln!(out, "{}", describe(e))?;
            }
            Ok(())
        }
        Command::Verify { replications, seed, threads } => {
            let runner = Runner::new(threads)?;
            let mut checks = verify::training_checks(&runner, replications, seed);
            let (optimum, at_daly) = verify::optimum_checks(&runner, replications, seed);
            checks.extend(at_daly);
            let mut out = std::io::stdout().lock();
            writeln!(
                out,
                "Training job, checkpoint/restart closed form ({replications} replications per check, |z| < {}):\n",
                verify::Z_LIMIT
            )?;
            write!(out, "{}", verify::render_checks(&checks))?;
            writeln!(
                out,
                "\nYoung and Daly intervals against the exact optimum (excess = extra expected wall time, Daly must be <= {}):\n",
                verify::DALY_MAX_EXCESS
            )?;
            write!(out, "{}", verify::render_optimum(&optimum))?;
            let queueing = verify::erlang_c_checks(&runner, (replications / 500).max(20), seed);
            writeln!(
                out,
                "\nEndpoint, fixed fleet against Erlang C (20-minute runs, 2-minute warm-up, |z| < {}):\n",
                verify::Z_LIMIT
            )?;
            write!(out, "{}", verify::render_checks(&queueing))?;
            checks.extend(queueing);
            let zones = verify::zone_checks(&runner, (replications / 100).max(20), seed);
            writeln!(
                out,
                "\nAvailability zones: k-of-n availability, outages and zone-wide reclaims (|z| < {}):\n",
                verify::Z_LIMIT
            )?;
            write!(out, "{}", verify::render_checks(&zones))?;
            checks.extend(zones);
            let serverless = verify::serverless_checks(&runner, (replications / 200).max(40), seed);
            writeln!(out, "\nServerless: Erlang B throttling, keep-alive and cost (|z| < {}):\n", verify::Z_LIMIT)?;
            write!(out, "{}", verify::render_checks(&serverless))?;
            checks.extend(serverless);
            let failed = checks.iter().filter(|c| !c.passed()).count()
                + optimum.iter().filter(|r| r.excess_daly > verify::DALY_MAX_EXCESS).count();
            writeln!(out, "\n{} checks, {failed} failed", checks.len() + optimum.len())?;
            if failed > 0 {
                return Err(Failure::Other(anyhow::anyhow!("{failed} verification checks failed")));
            }
            Ok(())
        }
        Command::Catalog => {
            write!(std::io::stdout().lock(), "{}", catalog().render())?;
            Ok(())
        }
    }
}

fn run_one(e: &Experiment, runner: &Runner, dir: &output::OutputDir, quiet: bool) -> Result<(), Failure> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let total = e.replications * e.points.len() as u64;
    let bar = if quiet || !std::io::stderr().is_terminal() {
        ProgressBar::hidden()
    } else {
        let bar = ProgressBar::new(total);
        bar.set_style(
            ProgressStyle::with_template("{prefix} [{bar:30}] {human_pos}/{human_len} replications  {rate}  ETA {eta}")
                .expect("a valid template")
                .with_key("rate", |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0}/s", state.per_sec());
                })
                .progress_chars("=> "),
        );
        bar.set_prefix(e.name.clone());
        bar
    };
    let results = run::simulate(e, runner, &|n| bar.inc(n));
    bar.finish_and_clear();
    let width = e.metrics().len();
    let summaries: Vec<_> = results.iter().map(|rows| runner.summarise(rows, width)).collect();
    let info = RunInfo {
        spotsim_version: env!("CARGO_PKG_VERSION").to_string(),
        command_line: std::env::args().collect(),
        threads: runner.threads(),
        started: output::utc_timestamp(started.duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)),
        elapsed_s: clock.elapsed().as_secs_f64(),
    };
    let files = runner.install(|| {
        let mut files = vec![
            ("summary.csv", output::summary_csv(e, &summaries)),
            ("replications.csv", output::replications_csv(e, &results)),
            ("manifest.json", output::manifest_json(e, &info)),
        ];
        let timelines: Option<Vec<_>> = e.points.par_iter().map(|p| p.design.timeline(e.seed)).collect();
        if let Some(timelines) = timelines {
            files.push(("timeline.csv", output::timeline_csv(e, &timelines)));
        }
        files
    });
    dir.write(&files)?;
    if !quiet {
        eprintln!(
            "{}: {} point(s) x {} replications in {:.2} s -> {}",
            e.name,
            e.points.len(),
            e.replications,
            clock.elapsed().as_secs_f64(),
            dir.path().display()
        );
    }
    Ok(())
}

/// The resolved experiment, as `check` prints it.
fn describe(e: &Experiment) -> String {
    let mut out = format!(
        "# {} ({}): seed {}, {} replications per point, {} point(s)\n",
        e.name,
        e.file.display(),
        e.seed,
        e.replications,
        e.points.len()
    );
    if !e.swept.is_empty() {
        out += &format!("# swept: {}\n", e.swept.join(", "));
    }
    for p in &e.points {
        let label: Vec<String> = e.swept.iter().zip(&p.values).map(|(k, v)| format!("{k} = {v}")).collect();
        out += &format!("\n[point {}] {}\n", p.index, label.join(", "));
        out += &toml::to_string_pretty(&p.design).unwrap_or_else(|err| format!("(cannot render: {err})\n"));
    }
    out
}
