//! Runs every point of an experiment on the engine and turns the results
//! into the files of SPEC section 3.

use std::ops::Range;

use rayon::prelude::*;

use crate::engine::shard::Shard;
use crate::engine::{Runner, Streams};
use crate::experiment::{Experiment, InputError, Origin};
use crate::output::{self, PointRows, RunInfo, Table};
use crate::scenarios::Timeline;

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

/// Refuses to `run` a closed-loop load test: its users, not `[traffic]`,
/// make the requests, and only `loadtest` has them.
pub fn check_runnable(experiment: &Experiment) -> Result<(), InputError> {
    match &experiment.loadtest {
        Some(spec) if spec.closed_loop() => Err(InputError::new(
            &experiment.origin_of("loadtest"),
            Some("loadtest.users"),
            "`[loadtest] users` makes this a closed-loop load test: its users make the requests, and [traffic] has none",
        )
        .with_hint(Some("run it with `spotsim loadtest`".into()))),
        Some(spec) if !spec.arrivals => Err(InputError::new(
            &experiment.origin_of("traffic"),
            Some("traffic"),
            "[traffic] gives no arrivals (`trace` or `synthetic`): the load test makes its own load, a run needs them",
        )
        .with_hint(Some(
            "run it with `spotsim loadtest`, or give [traffic] a `synthetic = { mean_rps = ... }` and a `duration`"
                .into(),
        ))),
        _ => Ok(()),
    }
}

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

/// What a run is expected to cost: its work, in the unit of its largest
/// point, and the wall time at the rates of `scenarios::RATES`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    pub events: f64,
    pub unit: &'static str,
    pub seconds: f64,
    pub threads: usize,
}

/// The estimate of `replications` replications of every point on `threads`
/// threads. Points run one after another, each spread over the threads, so a
/// point of fewer replications than threads leaves some idle.
pub fn estimate(experiment: &Experiment, replications: u64, threads: usize) -> Estimate {
    let works: Vec<_> = experiment.points.iter().map(|p| p.design.work()).collect();
    let rounds = replications.div_ceil(threads.max(1) as u64) as f64;
    let unit = works.iter().max_by(|a, b| a.seconds.total_cmp(&b.seconds)).map_or("replications", |w| w.unit);
    Estimate {
        events: works.iter().map(|w| w.events).sum::<f64>() * replications as f64,
        unit,
        seconds: works.iter().map(|w| w.seconds).sum::<f64>() * rounds,
        threads: threads.max(1),
    }
}

impl std::fmt::Display for Estimate {
    /// `2.9e10 requests, about 14 min on 2 threads`
    fn fmt(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        let events = if self.events >= 1e5 { format!("{:.1e}", self.events) } else { compact(self.events) };
        let s = self.seconds;
        let time = match s {
            _ if !s.is_finite() => "without end".to_string(),
            _ if s < 0.1 => "under 0.1 s".to_string(),
            _ if s < 10.0 => format!("about {s:.1} s"),
            _ if s < 90.0 => format!("about {s:.0} s"),
            _ if s < 90.0 * 60.0 => format!("about {:.0} min", s / 60.0),
            _ if s < 48.0 * 3600.0 => format!("about {:.1} h", s / 3600.0),
            _ => format!("about {:.1} days", s / 86400.0),
        };
        let threads = if self.threads == 1 { "1 thread".to_string() } else { format!("{} threads", self.threads) };
        write!(f, "{events} {}, {time} on {threads}", self.unit)
    }
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
    fn the_estimate_times_work_at_the_measured_rates_and_never_splits_a_replication() {
        // 1e6 requests/s for an hour: 3.6e9 requests and 60 metric periods.
        let e = load(&ENDPOINT.replace("1e9", "1e6"));
        let one = estimate(&e, 1, 1);
        assert_eq!(one.unit, "requests");
        assert!((one.seconds - (3.6e9 / 1.2e7 + 60.0 / 9e5)).abs() < 1e-6, "{one:?}");
        assert_eq!(one.to_string(), "3.6e9 requests, about 5 min on 1 thread");
        // One replication runs on one thread; eight share two.
        assert_eq!(estimate(&e, 1, 2).seconds, one.seconds);
        assert_eq!(estimate(&e, 8, 2).seconds, 4.0 * one.seconds);
        assert_eq!(estimate(&e, 8, 2).to_string(), "2.9e10 requests, about 20 min on 2 threads");
        let small = load(&ENDPOINT.replace("1e9", "1"));
        assert_eq!(estimate(&small, 1, 2).to_string(), "3660 requests, under 0.1 s on 2 threads");
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
