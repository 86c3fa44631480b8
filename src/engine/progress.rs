//! Live progress inside long replications. Engines whose replications can
//! run for minutes (every request an event) count their units of work
//! (requests, fluid steps: those of `scenarios::Work`) here every `EVERY`
//! units, so a progress display moves within a replication. It is display
//! only: no result depends on it.

use std::sync::atomic::{AtomicU64, Ordering};

static EVENTS: AtomicU64 = AtomicU64::new(0);

/// How many events an engine counts locally before it reports them.
pub const EVERY: u32 = 1 << 16;

/// Counts events locally and reports them in batches of `EVERY`.
#[derive(Default)]
pub struct Ticker(u32);

impl Ticker {
    #[inline]
    pub fn tick(&mut self) {
        self.0 += 1;
        if self.0 == EVERY {
            EVENTS.fetch_add(EVERY as u64, Ordering::Relaxed);
            self.0 = 0;
        }
    }
}

/// Events reported so far by every engine in this process.
pub fn events() -> u64 {
    EVENTS.load(Ordering::Relaxed)
}

/// How far a run is, in its expected units of work: by the replications
/// finished (points run one after another, each with its expected work per
/// replication), or by the events the engines reported since it began,
/// whichever is further; so the estimate moves within a long replication too.
pub struct Tracker {
    per_point: Vec<f64>,
    replications: u64,
    finished: AtomicU64,
    before: u64,
}

impl Tracker {
    /// A run of `replications` of each point, `per_point` the expected
    /// events of one replication of each.
    pub fn new(per_point: Vec<f64>, replications: u64) -> Tracker {
        Tracker { per_point, replications, finished: AtomicU64::new(0), before: events() }
    }

    /// Hears of `n` more replications finished (the runner's progress).
    pub fn finished(&self, n: u64) {
        self.finished.fetch_add(n, Ordering::Relaxed);
    }

    pub fn replications_done(&self) -> u64 {
        self.finished.load(Ordering::Relaxed)
    }

    pub fn total(&self) -> f64 {
        self.per_point.iter().sum::<f64>() * self.replications as f64
    }

    /// The work done so far, at most `total`.
    pub fn done(&self) -> f64 {
        let reps = self.replications.max(1);
        let finished = self.replications_done();
        let (whole, part) = ((finished / reps) as usize, finished % reps);
        let whole = whole.min(self.per_point.len());
        let by_replications = self.per_point[..whole].iter().sum::<f64>() * reps as f64
            + part as f64 * self.per_point.get(whole).copied().unwrap_or(0.0);
        let reported = (events() - self.before) as f64;
        by_replications.max(reported).min(self.total())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_done_follows_replications_and_reported_events() {
        // Two points: 10 and 1,000 events a replication, 4 replications each.
        let t = Tracker::new(vec![10.0, 1000.0], 4);
        assert_eq!(t.total(), 4040.0);
        t.finished(4);
        assert_eq!(t.done(), 40.0);
        t.finished(1);
        assert_eq!(t.done(), 1040.0);
        // Within a replication, the events reported move it (other tests may
        // report too, so only a lower bound holds).
        let t = Tracker::new(vec![1e12], 1);
        let mut ticker = Ticker::default();
        for _ in 0..EVERY {
            ticker.tick();
        }
        assert!(t.done() >= EVERY as f64 && t.done() < 1e12);
        t.finished(1);
        assert_eq!(t.done(), 1e12);
    }

    #[test]
    fn ticks_arrive_in_batches() {
        let before = events();
        let mut t = Ticker::default();
        for _ in 0..EVERY - 1 {
            t.tick();
        }
        t.tick();
        assert!(events() - before >= EVERY as u64, "a full batch is reported");
    }
}
