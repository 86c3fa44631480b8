//! Runs every point of an experiment on the engine and turns the results
//! into the files of SPEC section 3.

use std::ops::Range;

use rayon::prelude::*;

use crate::engine::{Runner, Streams};
use crate::experiment::{Experiment, InputError, Origin};
use crate::output::{self, PointRows, RunInfo, Table};
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
    let subject = experiment.subject();
    let mut files = runner.install(|| {
        vec![
            ("summary.csv", output::summary_csv(&subject.layout, &summaries)),
            ("replications.csv", output::replications_csv(&subject.layout, results)),
            ("manifest.json", output::manifest_json(&subject, info)),
        ]
    });
    if let Some(timelines) = timelines(experiment, runner) {
        files.push(("timeline.csv", output::timeline_csv(&subject.layout, &timelines)));
    }
    files
}

/// The tables of a run's CSV files, by file name, as [`result_files`]
/// writes them: for a host that takes the columns (the Python package).
pub fn result_tables(experiment: &Experiment, runner: &Runner, results: &[PointRows]) -> Vec<(&'static str, Table)> {
    let width = experiment.metrics().len();
    let summaries: Vec<_> = results.iter().map(|rows| runner.summarise(rows, width)).collect();
    let layout = experiment.layout();
    let mut tables = runner.install(|| {
        vec![
            ("summary.csv", output::summary_columns(&layout, summaries.iter().enumerate())),
            ("replications.csv", output::replications_columns(&layout, results)),
        ]
    });
    if let Some(timelines) = timelines(experiment, runner) {
        tables.push(("timeline.csv", output::timeline_table(&layout, &timelines)));
    }
    tables
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
    runner.install(|| output::shard::shard_files(&experiment.subject(), shard, results, timelines.as_deref(), info))
}

/// A run expected to simulate more events than this is refused unless the
/// user insists: at about 10 million events per second per core, it would
/// take a 2-core machine more than a day.
pub const MAX_EVENTS: f64 = 2e12;

/// Refuses a run whose expected work is beyond `MAX_EVENTS`, naming the
/// estimate and the key that drives it.
pub fn check_work(experiment: &Experiment) -> Result<(), InputError> {
    check_work_of(experiment, experiment.replications)
}

/// [`check_work`] for `replications` replications of every point (a shard's slice).
pub fn check_work_of(experiment: &Experiment, replications: u64) -> Result<(), InputError> {
    let reps = replications as f64;
    let works: Vec<_> = experiment.points.iter().map(|p| p.design.work()).collect();
    let total: f64 = works.iter().map(|w| w.events * reps).sum();
    let Some(most) = works.iter().max_by(|a, b| a.events.total_cmp(&b.events)) else {
        return Ok(());
    };
    if total <= MAX_EVENTS {
        return Ok(());
    }
    let hours = total / 2e7 / 3600.0;
    Err(InputError::new(
        &Origin { file: experiment.file.display().to_string(), line: None },
        Some(most.driver),
        format!(
            "this run would simulate about {} {} ({} per replication at the largest point, {} replications, {} point(s)): \
             about {} hours at 10 million a second on each of 2 cores",
            compact(total),
            most.unit,
            compact(most.events),
            replications,
            experiment.points.len(),
            compact(hours),
        ),
    )
    .with_hint(Some(format!(
        "lower `{}` or the duration, or fewer replications; or pass --allow-long to run it anyway",
        most.driver
    ))))
}

/// A number for a message: three significant digits, exponent when large.
fn compact(x: f64) -> String {
    if !x.is_finite() {
        "an unbounded number of".into()
    } else if x.abs() >= 1e5 {
        format!("{x:.2e}")
    } else {
        format!("{}", (x * 100.0).round() / 100.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::test_files::with_files;

    fn load(text: &str) -> Experiment {
        let dir = with_files(&[("e.toml", text), ("huge.csv", "time_s,rate\n0,1e300\n60,1e300\n")]);
        crate::experiment::load(&dir.path().join("e.toml"), &[]).unwrap()
    }

    const ENDPOINT: &str = r#"replications = 1
[inference]
price_per_hour = 1.0
service_time = "10ms"
[traffic]
synthetic = { mean_rps = 1e9 }
duration = "1h"
"#;

    #[test]
    fn a_billion_requests_a_second_for_an_hour_is_refused_with_the_key() {
        let err = check_work(&load(ENDPOINT)).unwrap_err().to_string();
        assert!(err.contains("traffic.synthetic.mean_rps"), "{err}");
        assert!(err.contains("3.60e12 requests"), "{err}");
        assert!(err.contains("--allow-long"), "{err}");
    }

    #[test]
    fn ordinary_runs_pass_and_unbounded_rates_do_not() {
        assert!(check_work(&load(&ENDPOINT.replace("1e9", "100"))).is_ok());
        let trace = ENDPOINT.replace("synthetic = { mean_rps = 1e9 }", "trace = \"huge.csv\"");
        let err = check_work(&load(&trace)).unwrap_err().to_string();
        assert!(err.contains("`traffic.scale`") && err.contains("requests"), "{err}");
        // Fluid steps, not requests, bound a fluid run.
        let fluid = ENDPOINT.replace("service_time", "fidelity = \"fluid\"\nservice_time");
        assert!(check_work(&load(&fluid)).is_ok());
        // A nanosecond metric period is 3.6e12 periods in an hour.
        let periods = ENDPOINT.replace("1e9", "1").replace(
            "[traffic]",
            "[inference.autoscaling]\nmetric = \"invocations-per-instance\"\ntarget = 100\nmin = 1\nmax = 2\nperiod = \"1ns\"\n[traffic]",
        );
        let err = check_work(&load(&periods)).unwrap_err().to_string();
        assert!(err.contains("`inference.autoscaling.period`") && err.contains("metric periods"), "{err}");
    }
}
