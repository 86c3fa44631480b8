//! Same experiment, same seed: byte-identical CSVs at any thread count.

use std::path::Path;

use spotsim::commands::run::{result_files, simulate};
use spotsim::engine::Runner;
use spotsim::experiment;
use spotsim::output::RunInfo;

/// Every result file but the manifest (which records the thread count), for
/// `experiments/NAME.toml` with `sets`, at `threads` threads.
fn files(name: &str, sets: &[&str], threads: usize) -> Vec<(&'static str, Vec<u8>)> {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments").join(name);
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    let e = experiment::load(&file, &sets).unwrap();
    let runner = Runner::new(threads).unwrap();
    let results = simulate(&e, &runner, &|_| {});
    let info = RunInfo {
        spotsim_version: String::new(),
        command_line: Vec::new(),
        threads: 0,
        started: String::new(),
        elapsed_s: 0.0,
    };
    let mut files = result_files(&e, &runner, &results, &info);
    files.retain(|(name, _)| *name != "manifest.json");
    files
}

/// The same files, byte for byte, at one, two and three threads.
fn assert_thread_count_free(name: &str, sets: &[&str], expected: &[&str]) {
    let one = files(name, sets, 1);
    let names: Vec<&str> = one.iter().map(|f| f.0).collect();
    assert_eq!(names, expected, "{name}");
    for threads in [2, 3] {
        for ((file, a), (_, b)) in one.iter().zip(files(name, sets, threads)) {
            assert!(*a == b, "{name}: {file} differs at {threads} threads");
        }
    }
}

const CSVS: [&str; 2] = ["summary.csv", "replications.csv"];
const WITH_TIMELINE: [&str; 3] = ["summary.csv", "replications.csv", "timeline.csv"];

#[test]
fn training_is_byte_identical_at_any_thread_count() {
    assert_thread_count_free("checkpoint-sweep.toml", &["replications=3000"], &CSVS);
}

#[test]
fn a_request_level_endpoint_with_autoscaling_zones_and_spot_is_byte_identical() {
    let sets = ["replications=6", "traffic.duration=3h", "traffic.synthetic.mean_rps=20"];
    assert_thread_count_free("spot-endpoint.toml", &sets, &WITH_TIMELINE);
}

#[test]
fn a_fluid_endpoint_with_zone_outages_is_byte_identical() {
    // Five days with outages every 25 h: as many outages per zone as twenty
    // days at the example's 100 h, at a quarter of the periods.
    let sets = ["replications=6", "traffic.duration=5d", "zones.outage.mtbf=25h"];
    assert_thread_count_free("zones-availability.toml", &sets, &WITH_TIMELINE);
}

#[test]
fn serverless_is_byte_identical() {
    let sets = ["replications=6", "traffic.duration=2h", "inference.mode=serverless"];
    assert_thread_count_free("serverless-vs-endpoint.toml", &sets, &WITH_TIMELINE);
}

#[test]
fn sweep_points_share_random_numbers() {
    // Common random numbers: the interval does not touch the wait stream, so a
    // replication that is never interrupted waits the same first wait at every point.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("crn.toml");
    std::fs::write(
        &file,
        r#"replications = 300
[training]
price_per_hour = 1.0
work = "1h"
[training.checkpoint]
interval = "10m"
write = "1m"
[spot]
interruptions = { model = "poisson", mtbf = "100h" }
capacity_wait = { dist = "exponential", mean = "15m" }
[sweep]
"training.checkpoint.interval" = ["5m", "10m", "20m", "30m"]
"#,
    )
    .unwrap();
    let e = experiment::load(&file, &[]).unwrap();
    let results = simulate(&e, &Runner::new(2).unwrap(), &|_| {});
    let width = e.metrics().len();
    let col = |name: &str| e.metrics().iter().position(|&m| m == name).unwrap();
    let (wait, interruptions) = (col("waiting_time_h"), col("interruptions"));
    let mut compared = 0;
    for r in 0..300 {
        let rows: Vec<&[f64]> = (0..e.points.len()).map(|p| &results[p][r * width..(r + 1) * width]).collect();
        if rows.iter().all(|row| row[interruptions] == 0.0) {
            compared += 1;
            assert!(rows.windows(2).all(|w| w[0][wait] == w[1][wait]), "replication {r}");
        }
    }
    assert!(compared > 250, "{compared}");
    // Different replications do draw different waits.
    let first: Vec<f64> = (0..10).map(|r| results[0][r * width + wait]).collect();
    assert!(first.windows(2).all(|w| w[0] != w[1]));
}

#[test]
fn the_timeline_writes_periods_without_an_instance_as_undefined_not_infinite() {
    // One zone, frequent outages: some minutes have traffic and no instance.
    let sets = ["replications=1", "traffic.duration=20d", "zones.outage.mtbf=100h", "zones.count=1"];
    let files = files("zones-availability.toml", &sets, 1);
    let timeline = String::from_utf8(files.iter().find(|f| f.0 == "timeline.csv").unwrap().1.clone()).unwrap();
    assert!(!timeline.lines().skip(1).any(|l| l.contains("inf")), "no infinite value in timeline.csv");
    let no_instance = timeline.lines().skip(1).filter(|l| {
        let cells: Vec<&str> = l.split(',').collect();
        cells[cells.len() - 6] == "0" && cells[cells.len() - 1] == "NaN"
    });
    assert!(no_instance.count() > 0, "some minute had no instance in service");
}
