//! Runs every point of an experiment on the engine and turns the results
//! into the files of SPEC section 3.

use rayon::prelude::*;

use crate::engine::{Runner, Streams};
use crate::experiment::Experiment;
use crate::output::{self, PointRows, RunInfo};

/// Simulates every point in order; replication r of every point uses the same
/// streams (common random numbers).
pub fn simulate(experiment: &Experiment, runner: &Runner, progress: &(dyn Fn(u64) + Sync)) -> Vec<PointRows> {
    experiment
        .points
        .iter()
        .map(|p| runner.run(p.design.model(), experiment.seed, experiment.replications, progress))
        .collect()
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
    runner.install(|| {
        let mut files = vec![
            ("summary.csv", output::summary_csv(experiment, &summaries)),
            ("replications.csv", output::replications_csv(experiment, results)),
            ("manifest.json", output::manifest_json(experiment, info)),
        ];
        let timelines: Option<Vec<_>> =
            experiment.points.par_iter().map(|p| p.design.timeline(Streams::new(experiment.seed, 0))).collect();
        if let Some(timelines) = timelines {
            files.push(("timeline.csv", output::timeline_csv(experiment, &timelines)));
        }
        files
    })
}
