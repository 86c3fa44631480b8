//! The one prepared run behind every door. The command line, the Slurm
//! script and the Python package each build a [`Request`] (a plain value:
//! where the experiment comes from, its overrides, points, seed, threads
//! and replications) and [`Request::prepare`] it for a command; the steps
//! and their refusals are the same whatever the door.

use std::path::{Path, PathBuf};

use crate::engine::Runner;
use crate::engine::shard::Shard;
use crate::experiment::{self, Experiment, Fit, InputError};
use crate::output::PointRows;

use super::{loadtest, recommend, run};

/// Where the experiment comes from.
#[derive(Clone, Debug)]
pub enum Source {
    File(PathBuf),
    /// Its text, with the folder its paths are relative to (the Python
    /// package's `toml=`).
    Text {
        text: String,
        base_dir: PathBuf,
    },
}

/// What the user asked for, before anything is read.
#[derive(Clone, Debug)]
pub struct Request {
    pub source: Source,
    /// `--set PATH=VALUE`, in order.
    pub set: Vec<String>,
    /// `--point K`: only these sweep points (empty: all).
    pub points: Vec<u64>,
    /// `--seed` (None: the file's).
    pub seed: Option<u64>,
    /// `--threads` (0: one per core).
    pub threads: usize,
    /// `-n` (None: the file's).
    pub replications: Option<u64>,
    /// `--allow-long`: run even when the expected work is beyond hours.
    pub allow_long: bool,
}

/// What the prepared experiment is for: each command has its own checks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Command {
    /// `run`, or one of its shards.
    Run(Option<Shard>),
    /// `slurm`: every task runs a shard of this many.
    Slurm {
        tasks: u64,
    },
    Recommend,
    Loadtest,
    /// `check`: resolve and describe, whatever the experiment is for.
    Check,
}

/// A request read, overridden and checked for its command.
#[derive(Debug)]
pub struct Prepared {
    pub experiment: Experiment,
    pub request: Request,
    pub command: Command,
}

impl Request {
    /// A request for the file at `path` with no overrides.
    pub fn file(path: impl Into<PathBuf>) -> Request {
        Request {
            source: Source::File(path.into()),
            set: Vec::new(),
            points: Vec::new(),
            seed: None,
            threads: 0,
            replications: None,
            allow_long: false,
        }
    }

    /// Reads the experiment, applies `--set`, the seed, `--point` and `-n`,
    /// and refuses what `command` cannot do with it: a closed-loop load test
    /// under `run`, a run far beyond hours, a recommendation without
    /// `[objective]`.
    pub fn prepare(&self, command: Command) -> Result<Prepared, InputError> {
        // A design that does not fit its instance is an answer for recommend.
        let fit = if command == Command::Recommend { Fit::Mark } else { Fit::Refuse };
        let mut e = match &self.source {
            Source::File(path) => experiment::load_with(path, &self.set, fit)?,
            Source::Text { text, base_dir } => {
                experiment::load_text(text, Path::new("<toml>"), base_dir, &self.set, fit)?
            }
        };
        e.seed = self.seed.unwrap_or(e.seed);
        match command {
            Command::Run(_) | Command::Slurm { .. } => run::check_runnable(&e)?,
            Command::Recommend => {
                recommend::report::check(&e)?;
            }
            Command::Loadtest => {
                loadtest::check(&e)?;
            }
            Command::Check => {}
        }
        if !self.points.is_empty() {
            e.keep_points(&self.points)?;
        }
        e.replications = self.replications.unwrap_or(e.replications);
        let slice = match command {
            Command::Run(shard) => Some(shard.map_or(e.replications, |s| {
                let r = s.range(e.replications);
                r.end - r.start
            })),
            // The largest slice, as a shard will check it.
            Command::Slurm { tasks } => Some(e.replications.div_ceil(tasks)),
            _ => None,
        };
        if let Some(replications) = slice.filter(|_| !self.allow_long) {
            run::check_work_of(&e, replications)?;
        }
        Ok(Prepared { experiment: e, request: self.clone(), command })
    }

    /// The arguments of `spotsim run` that repeat this request's overrides:
    /// what the Slurm script passes to every shard, and what the line that
    /// reruns a recommendation gives.
    pub fn run_args(&self) -> Vec<String> {
        let mut args = Vec::new();
        for k in &self.points {
            args.extend(["--point".into(), k.to_string()]);
        }
        if let Some(n) = self.replications {
            args.extend(["-n".into(), n.to_string()]);
        }
        if let Some(s) = self.seed {
            args.extend(["--seed".into(), s.to_string()]);
        }
        for s in &self.set {
            args.extend(["--set".into(), s.clone()]);
        }
        if self.allow_long {
            args.push("--allow-long".into());
        }
        args
    }
}

impl Prepared {
    /// The runner of `--threads`.
    pub fn runner(&self) -> anyhow::Result<Runner> {
        Runner::new(self.request.threads)
    }

    /// The shard of a `run`, if it computes one.
    pub fn shard(&self) -> Option<Shard> {
        match self.command {
            Command::Run(shard) => shard,
            _ => None,
        }
    }

    /// The replications this run computes: all, or its shard's slice.
    pub fn range(&self) -> std::ops::Range<u64> {
        let n = self.experiment.replications;
        self.shard().map_or(0..n, |s| s.range(n))
    }

    /// The output folder when `-o` is not given: `results/<name>/`, or a
    /// shard's folder beside it.
    pub fn default_dir(&self) -> PathBuf {
        let results = Path::new("results");
        match self.shard() {
            Some(s) => results.join(format!("{}-shards", self.experiment.name)).join(format!("shard-{}", s.k)),
            None => results.join(&self.experiment.name),
        }
    }

    /// Simulates the run's replications of every point; `progress` hears
    /// of each finished block of replications.
    pub fn simulate(&self, runner: &Runner, progress: &(dyn Fn(u64) + Sync)) -> Vec<PointRows> {
        run::simulate_range(&self.experiment, runner, self.range(), progress)
    }
}
