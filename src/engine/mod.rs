//! The generic engine every model runs on: random streams, an event queue and
//! the parallel replication runner.

pub mod progress;
mod queue;
mod rng;
mod runner;
pub mod shard;

pub use queue::EventQueue;
pub use rng::{Purpose, SimRng, Streams};
pub use runner::{Model, Runner};
