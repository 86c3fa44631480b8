//! spotsim: a Monte Carlo discrete-event simulator for the resource decisions
//! of machine-learning workloads in the cloud.
//!
//! # The layout
//!
//! - [`engine`]: integer time, event queues, one random stream per
//!   (replication, purpose), and the parallel replication [`engine::Runner`].
//! - [`spot`]: the spot market under every model: interruption processes,
//!   real availability traces and their prices, market terms, the fallback
//!   rule and the reader of `[spot]`. [`zones`] stands beside it.
//! - Scenarios, side by side on top: [`training`] (a job with checkpoints)
//!   and [`inference`] (endpoints and serverless under traffic). Each is a
//!   [`scenario::Design`]; neither imports the other.
//! - [`experiment`]: experiment files, sweeps and `--set`, with line-accurate
//!   errors; [`stats`] and [`output`]: summaries and result files; [`run`]:
//!   an experiment from start to files; [`verify`]: closed-form checks.
//! - Beyond one machine: [`shard`] cuts a run into slices, [`output::merge`]
//!   puts their folders back into one result, [`slurm`] prints the job script.
//!
//! # Running an experiment from Rust
//!
//! Load an experiment file (every point is resolved and checked before
//! anything runs), simulate every point on a runner, then summarise a
//! metric. Results do not depend on the thread count.
//!
//! ```
//! use spotsim::engine::Runner;
//! use spotsim::experiment;
//! use spotsim::stats::Summary;
//!
//! let file = concat!(env!("CARGO_MANIFEST_DIR"), "/experiments/spot-vs-on-demand.toml");
//! // The file's keys can be overridden as on the command line's `--set`.
//! let e = experiment::load(file.as_ref(), &["replications=200".to_string()])?;
//! let runner = Runner::new(2)?;
//! let results = spotsim::run::simulate(&e, &runner, &|_done| {});
//!
//! // One row of metrics per replication, point by point.
//! let width = e.metrics().len();
//! let cost = e.metrics().iter().position(|&m| m == "cost_usd").unwrap();
//! for (point, rows) in e.points.iter().zip(&results) {
//!     let mut costs: Vec<f64> = rows.chunks_exact(width).map(|row| row[cost]).collect();
//!     let s = Summary::of(&mut costs);
//!     println!("{:?}: mean {:.0} USD, p95 {:.0} USD", point.values, s.mean, s.p95);
//!     assert!(s.n == 200 && s.p95 >= s.p50);
//! }
//!
//! // The files `spotsim run` writes, as bytes.
//! let info = spotsim::output::RunInfo {
//!     spotsim_version: env!("CARGO_PKG_VERSION").into(),
//!     command_line: vec![],
//!     threads: runner.threads(),
//!     started: spotsim::output::utc_timestamp(0),
//!     elapsed_s: 0.0,
//! };
//! let files = spotsim::run::result_files(&e, &runner, &results, &info);
//! let summary = String::from_utf8(files[0].1.clone())?;
//! assert!(summary.starts_with("point,training.market,spot.interruptions.band,metric,n,mean"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod catalog;
pub mod dist;
pub mod engine;
pub mod experiment;
pub mod inference;
pub mod loadtest;
pub mod output;
pub mod profile;
pub mod recommend;
pub mod run;
pub mod scenario;
pub mod shard;
pub mod slurm;
pub mod spot;
pub mod stats;
pub mod time;
pub mod trace_file;
pub mod training;
pub mod verify;
pub mod zones;
