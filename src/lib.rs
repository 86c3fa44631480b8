//! spotsim: a Monte Carlo discrete-event simulator for the resource decisions
//! of machine-learning workloads in the cloud.
//!
//! # The layout
//!
//! Layers, each importing only from those below it (docs/engine.md, "The
//! layers"; a test holds the source to it):
//!
//! - [`base`]: time, statistics, distributions, trace rows;
//! - [`input`]: TOML documents that remember their lines, the one input
//!   error with its hints, and the typed getters of a table; [`engine`]:
//!   event queues, random streams, the parallel [`engine::Runner`], and the
//!   slices of a run;
//! - domains: [`catalog`] (instance types, prices, model profiles),
//!   [`spot`] (interruption processes, traces and prices, market terms,
//!   fallback) and [`zones`];
//! - [`scenarios`], side by side on [`scenarios::Design`]: training and
//!   inference, neither importing the other;
//! - [`output`]: result files from plain data ([`output::Subject`]);
//! - [`experiment`]: the reading layer: experiment files, sweeps and `--set`,
//!   and the reader of every table;
//! - [`commands`]: `run`, `recommend`, `loadtest`, `merge`, `slurm` and
//!   `verify`.
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
//! use spotsim::base::stats::Summary;
//!
//! let file = concat!(env!("CARGO_MANIFEST_DIR"), "/experiments/spot-vs-on-demand.toml");
//! // The file's keys can be overridden as on the command line's `--set`.
//! let e = experiment::load(file.as_ref(), &["replications=200".to_string()])?;
//! let runner = Runner::new(2)?;
//! let results = spotsim::commands::run::simulate(&e, &runner, &|_done| {});
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
//! let files = spotsim::commands::run::result_files(&e, &runner, &results, &info);
//! let summary = String::from_utf8(files[0].1.clone())?;
//! assert!(summary.starts_with("point,training.market,spot.interruptions.band,metric,n,mean"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

// The layers, bottom up (docs/engine.md): basics; input and the engine;
// the catalog, the spot market and zones; the scenarios; outputs; the
// reading layer; commands.
pub mod base;
pub mod catalog;
pub mod commands;
pub mod engine;
pub mod experiment;
pub mod input;
pub mod output;
pub mod scenarios;
pub mod spot;
pub mod zones;
