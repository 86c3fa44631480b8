//! spotsim: a Monte Carlo discrete-event simulator for the resource decisions
//! of machine-learning workloads in the cloud.
//!
//! The engine (`engine`) runs replications of a `Model` in parallel with one
//! random stream per (replication, purpose); models sit on top of it
//! (`training`); `experiment` reads experiment files into designs, `stats`
//! summarises replications, `output` writes the result files and `verify`
//! holds the models to closed-form results. `shard`, `output::merge` and
//! `slurm` split a run over machines and put it back together.

pub mod catalog;
pub mod dist;
pub mod engine;
pub mod experiment;
pub mod inference;
pub mod output;
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
