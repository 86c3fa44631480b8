//! Live progress inside long replications. Engines whose replications can
//! run for minutes (every request an event) count their units of work
//! (requests, fluid steps: those of `scenario::Work`) here every `EVERY`
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

#[cfg(test)]
mod tests {
    use super::*;

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
