//! Same experiment, same seed: byte-identical CSVs at any thread count.

use std::path::Path;

use spotsim::engine::Runner;
use spotsim::experiment;
use spotsim::output::{replications_csv, summary_csv};
use spotsim::run::simulate;

fn csvs(file: &Path, threads: usize) -> (Vec<u8>, Vec<u8>) {
    let e = experiment::load(file, &["replications=3000".to_string()]).unwrap();
    let runner = Runner::new(threads).unwrap();
    let results = simulate(&e, &runner, &|_| {});
    let summaries: Vec<_> = results.iter().map(|rows| runner.summarise(rows, e.metrics().len())).collect();
    (summary_csv(&e, &summaries), replications_csv(&e, &results))
}

#[test]
fn csvs_are_byte_identical_at_one_and_two_threads() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/checkpoint-sweep.toml");
    let one = csvs(&file, 1);
    let two = csvs(&file, 2);
    assert!(one.0 == two.0, "summary.csv differs");
    assert!(one.1 == two.1, "replications.csv differs");
    let three = csvs(&file, 3);
    assert!(one.0 == three.0 && one.1 == three.1);
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
