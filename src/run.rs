//! Runs every point of an experiment on the engine.

use crate::engine::Runner;
use crate::experiment::Experiment;
use crate::output::PointRows;

/// Simulates every point in order; replication r of every point uses the same
/// streams (common random numbers).
pub fn simulate(experiment: &Experiment, runner: &Runner, progress: &(dyn Fn(u64) + Sync)) -> Vec<PointRows> {
    experiment
        .points
        .iter()
        .map(|p| runner.run(p.design.model(), experiment.seed, experiment.replications, progress))
        .collect()
}
