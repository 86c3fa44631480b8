//! The commands, on top of everything else: `run` (and its shards),
//! `recommend`, `loadtest`, `merge`, `slurm` and `verify`. Each takes an
//! experiment from the reading layer, drives the models through the engine
//! and hands plain data to the output layer. No layer below imports them.

pub mod calibrate;
pub mod cli;
pub mod loadtest;
pub mod merge;
pub mod prepared;
pub mod recommend;
pub mod run;
pub mod slurm;
pub mod verify;
