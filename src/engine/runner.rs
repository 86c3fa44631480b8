//! Runs replications in parallel and collects them by replication index.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use rayon::prelude::*;

use super::Streams;
use crate::base::stats::Summary;

/// A model turns the random streams of one replication into one row of metrics.
pub trait Model: Sync {
    /// Metric names, with units, in output column order.
    fn metrics(&self) -> &'static [&'static str];
    /// Simulates one replication and writes one value per metric into `out`.
    fn replicate(&self, streams: Streams, out: &mut [f64]);
}

/// At most this many replications per task: large enough that scheduling
/// costs nothing for light replications; heavy runs with few replications
/// get smaller tasks so every thread has work.
const MAX_CHUNK: usize = 512;

pub struct Runner {
    pool: rayon::ThreadPool,
    /// Set from outside (an embedding's interrupt) to stop a run between
    /// blocks; the rows of a stopped run are incomplete and to be dropped.
    cancel: Option<Arc<AtomicBool>>,
}

impl Runner {
    /// A runner with `threads` workers (0: one per core).
    pub fn new(threads: usize) -> anyhow::Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build()?;
        Ok(Runner { pool, cancel: None })
    }

    /// This runner, stopping its runs early once `flag` is set.
    pub fn with_cancel(mut self, flag: Arc<AtomicBool>) -> Self {
        self.cancel = Some(flag);
        self
    }

    /// Whether the cancel flag is set: results computed since are incomplete.
    pub fn cancelled(&self) -> bool {
        self.cancel.as_ref().is_some_and(|f| f.load(Ordering::Relaxed))
    }

    pub fn threads(&self) -> usize {
        self.pool.current_num_threads()
    }

    /// Runs `replications` replications of `model` and returns their metrics
    /// row-major: row r holds replication r, whatever the thread count.
    /// `progress` is told how many replications each finished chunk held.
    pub fn run(&self, model: &dyn Model, seed: u64, replications: u64, progress: &(dyn Fn(u64) + Sync)) -> Vec<f64> {
        self.run_range(model, seed, 0..replications, progress)
    }

    /// Runs the replications with indices in `range` (a shard's slice):
    /// row i holds replication `range.start + i`, drawn from that
    /// replication's own streams, so a slice matches the same rows of a
    /// whole run.
    pub fn run_range(
        &self,
        model: &dyn Model,
        seed: u64,
        range: std::ops::Range<u64>,
        progress: &(dyn Fn(u64) + Sync),
    ) -> Vec<f64> {
        let width = model.metrics().len();
        let replications = range.end.saturating_sub(range.start);
        let mut rows = vec![0.0; width * replications as usize];
        if width == 0 || replications == 0 {
            return rows;
        }
        let chunk_len = (replications as usize / (8 * self.threads())).clamp(1, MAX_CHUNK);
        self.pool.install(|| {
            rows.par_chunks_mut(width * chunk_len).enumerate().for_each(|(chunk, block)| {
                if self.cancelled() {
                    return;
                }
                let first = range.start + (chunk * chunk_len) as u64;
                for (i, row) in block.chunks_exact_mut(width).enumerate() {
                    model.replicate(Streams::new(seed, first + i as u64), row);
                }
                progress((block.len() / width) as u64);
            });
        });
        rows
    }

    /// Runs `f` on this runner's threads (for parallel work outside `run`).
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }

    /// Summarises each metric column of row-major `rows`, metrics in
    /// parallel; each summary is computed sequentially, so the result does
    /// not depend on the thread count.
    pub fn summarise(&self, rows: &[f64], width: usize) -> Vec<Summary> {
        self.pool.install(|| {
            (0..width)
                .into_par_iter()
                .map(|m| {
                    let mut column: Vec<f64> = rows.chunks_exact(width).map(|r| r[m]).collect();
                    Summary::of(&mut column)
                })
                .collect()
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::Purpose;
    use rand::Rng;

    struct Draws;
    impl Model for Draws {
        fn metrics(&self) -> &'static [&'static str] {
            &["replication", "draw"]
        }
        fn replicate(&self, streams: Streams, out: &mut [f64]) {
            out[0] = streams.replication as f64;
            out[1] = streams.rng(Purpose::Interruptions).next_u32() as f64;
        }
    }

    #[test]
    fn rows_come_back_in_index_order_at_any_thread_count() {
        let one = Runner::new(1).unwrap().run(&Draws, 42, 5000, &|_| {});
        let three = Runner::new(3).unwrap().run(&Draws, 42, 5000, &|_| {});
        assert_eq!(one, three);
        for (r, row) in one.chunks(2).enumerate() {
            assert_eq!(row[0], r as f64);
        }
    }

    #[test]
    fn a_range_is_the_same_rows_of_a_whole_run() {
        let whole = Runner::new(2).unwrap().run(&Draws, 7, 300, &|_| {});
        let slice = Runner::new(1).unwrap().run_range(&Draws, 7, 120..250, &|_| {});
        assert_eq!(slice, whole[2 * 120..2 * 250]);
    }

    #[test]
    fn a_cancelled_run_stops_early() {
        let flag = Arc::new(AtomicBool::new(true));
        let done = std::sync::atomic::AtomicU64::new(0);
        Runner::new(2).unwrap().with_cancel(flag).run(&Draws, 1, 5000, &|n| {
            done.fetch_add(n, Ordering::Relaxed);
        });
        assert_eq!(done.into_inner(), 0);
    }

    #[test]
    fn progress_counts_every_replication() {
        let done = std::sync::atomic::AtomicU64::new(0);
        Runner::new(2).unwrap().run(&Draws, 1, 1234, &|n| {
            done.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
        });
        assert_eq!(done.into_inner(), 1234);
    }
}
