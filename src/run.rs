//! Runs every point of an experiment on the engine and turns the results
//! into the files of SPEC section 3.

use std::ops::Range;

use rayon::prelude::*;

use crate::engine::{Runner, Streams};
use crate::experiment::Experiment;
use crate::output::{self, PointRows, RunInfo};
use crate::scenario::Timeline;
use crate::shard::Shard;

/// Simulates every point in order; replication r of every point uses the same
/// streams (common random numbers).
pub fn simulate(experiment: &Experiment, runner: &Runner, progress: &(dyn Fn(u64) + Sync)) -> Vec<PointRows> {
    simulate_range(experiment, runner, 0..experiment.replications, progress)
}

/// Simulates the replications in `range` of every point (a shard's slice);
/// each draws the same numbers as in a whole run.
pub fn simulate_range(
    experiment: &Experiment,
    runner: &Runner,
    range: Range<u64>,
    progress: &(dyn Fn(u64) + Sync),
) -> Vec<PointRows> {
    experiment
        .points
        .iter()
        .map(|p| runner.run_range(p.design.model(), experiment.seed, range.clone(), progress))
        .collect()
}

/// Replication 0 of every point as a timeline, when the scenario has one.
pub fn timelines(experiment: &Experiment, runner: &Runner) -> Option<Vec<Timeline>> {
    runner
        .install(|| experiment.points.par_iter().map(|p| p.design.timeline(Streams::new(experiment.seed, 0))).collect())
}

/// The result files of a run, by name: `summary.csv`, `replications.csv`,
/// `manifest.json`, and `timeline.csv` when the scenario has one.
pub fn result_files(
    experiment: &Experiment,
    runner: &Runner,
    results: &[PointRows],
    info: &RunInfo,
) -> Vec<(&'static str, Vec<u8>)> {
    let width = experiment.metrics().len();
    let summaries: Vec<_> = results.iter().map(|rows| runner.summarise(rows, width)).collect();
    let mut files = runner.install(|| {
        vec![
            ("summary.csv", output::summary_csv(experiment, &summaries)),
            ("replications.csv", output::replications_csv(experiment, results)),
            ("manifest.json", output::manifest_json(experiment, info)),
        ]
    });
    if let Some(timelines) = timelines(experiment, runner) {
        files.push(("timeline.csv", output::timeline_csv(experiment, &timelines)));
    }
    files
}

/// The files of a shard folder (see `output::shard`): `results` is the
/// shard's slice; the shard holding replication 0 adds the timeline.
pub fn shard_files(
    experiment: &Experiment,
    runner: &Runner,
    shard: Shard,
    results: &[PointRows],
    info: &RunInfo,
) -> Vec<(&'static str, Vec<u8>)> {
    let timelines =
        if shard.range(experiment.replications).contains(&0) { timelines(experiment, runner) } else { None };
    runner.install(|| output::shard::shard_files(experiment, shard, results, timelines.as_deref(), info))
}
