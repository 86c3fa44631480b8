//! The basics every layer uses: simulated time, statistics, distributions,
//! and the reader of trace files' rows.

pub mod dist;
pub mod stats;
pub mod time;
pub mod trace_file;
