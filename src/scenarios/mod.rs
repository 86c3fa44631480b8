//! What every scenario (training, inference, and those to come) offers the
//! rest of spotsim: a resolved design that the engine can replicate, that
//! `check` and the manifest can print, and that may have a per-period
//! timeline. Reading one is registered in `experiment` (see
//! `docs/engine.md`, "Adding a scenario").

pub mod inference;
pub mod training;

use std::any::Any;
use std::fmt::Debug;

use serde::Serialize;

use crate::catalog::profile::ProfileUse;
use crate::engine::{Model, Streams};

/// One resolved design: everything its model needs, every default filled in.
pub trait Design: Model + Any + Debug + Send + Sync {
    /// The experiment file's tables this design was read from, resolved, in
    /// the order `check` prints them: `[("training", job), ("spot", terms)]`.
    fn tables(&self) -> Vec<(&'static str, &dyn erased_serde::Serialize)>;

    /// Replication `streams.replication`'s per-period output, for scenarios
    /// that have one (`timeline.csv`).
    fn timeline(&self, _streams: Streams) -> Option<Timeline> {
        None
    }

    /// What one replication is expected to simulate, so that a run far
    /// beyond what a machine does in hours is refused before it starts, and
    /// `check` and `run` can say how long it will take.
    fn work(&self) -> Work {
        Work::new(1.0, "replications", "replications")
    }

    /// How the design used a model profile, for designs read with one.
    fn profile(&self) -> Option<&ProfileUse> {
        None
    }
}

/// The expected work of one replication: `events` of a kind (`unit`), the
/// key that drives their number, and the seconds one thread takes for them.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Work {
    pub events: f64,
    pub unit: &'static str,
    pub driver: &'static str,
    pub seconds: f64,
}

/// Units of work one thread simulates per second, end to end (summaries and
/// CSVs included). Measured 2026-12-04 on the development machine (2 cores,
/// shared) as user CPU time of `spotsim run --threads 1` on: instance-loadtest
/// at 1,000 and 100,000 requests/s (14.9 and 14.3 million requests per CPU
/// second; the bundled endpoints with autoscaling, spot and serverless ran
/// at 9.5 to 14 million, so 12 is taken), a 30-day endpoint with a 1-second metric period and almost no
/// traffic (0.9 million periods), checkpoint-sweep (0.52 million
/// replications) and the optimal points of deadline-policies-v100 (0.46 ms a
/// plan). A fluid step costs next to nothing unless something changes in
/// it: zones-availability's fluid runs cost what their metric periods do
/// (1.1 us each), so steps get a nominal rate. See docs/performance.md,
/// "Estimates", for how good they are.
pub const RATES: &[(&str, f64)] = &[
    ("requests", 1.2e7),
    // azure-llm-replay at 1 thread: 1.6e6 requests (prompts up to 14k
    // tokens, 4 to 16 replicas) in 1.36 s of CPU, on a loaded machine.
    ("LLM requests", 1.0e6),
    ("fluid steps", 1e9),
    ("metric periods", 9.0e5),
    ("replications", 5.0e5),
    ("optimal plans", 2.0e3),
];

impl Work {
    /// `events` of `unit`, timed at that unit's rate in `RATES`.
    pub fn new(events: f64, unit: &'static str, driver: &'static str) -> Work {
        let rate = RATES.iter().find(|(u, _)| *u == unit).map_or(RATES[0].1, |&(_, r)| r);
        Work { events, unit, driver, seconds: events / rate }
    }
}

impl dyn Design {
    /// The design as the engine sees it.
    pub fn model(&self) -> &dyn Model {
        self
    }

    /// The concrete design, when it is a `T`.
    pub fn downcast<T: Design>(&self) -> Option<&T> {
        (self as &dyn Any).downcast_ref()
    }

    pub fn downcast_mut<T: Design>(&mut self) -> Option<&mut T> {
        (self as &mut dyn Any).downcast_mut()
    }
}

/// Serialises as the experiment file's tables.
impl Serialize for dyn Design {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let tables = self.tables();
        let mut map = s.serialize_map(Some(tables.len()))?;
        for (name, table) in tables {
            map.serialize_entry(name, table)?;
        }
        map.end()
    }
}

/// Per-period rows of one replication: `columns.len()` values per row,
/// row-major.
#[derive(Clone, Debug, PartialEq)]
pub struct Timeline {
    pub columns: &'static [&'static str],
    pub rows: Vec<f64>,
}
