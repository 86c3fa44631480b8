//! What every scenario (training, inference, and those to come) offers the
//! rest of spotsim: a resolved design that the engine can replicate, that
//! `check` and the manifest can print, and that may have a per-period
//! timeline. Reading one is registered in `experiment` (see
//! `docs/engine.md`, "Adding a scenario").

use std::any::Any;
use std::fmt::Debug;

use serde::Serialize;

use crate::engine::{Model, Streams};
use crate::profile::ProfileUse;

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
    /// beyond what a machine does in hours is refused before it starts.
    fn work(&self) -> Work {
        Work { events: 1.0, unit: "replications", driver: "replications" }
    }

    /// How the design used a model profile, for designs read with one.
    fn profile(&self) -> Option<&ProfileUse> {
        None
    }
}

/// The expected work of one replication: `events` of a kind (`unit`), and
/// the key that drives their number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Work {
    pub events: f64,
    pub unit: &'static str,
    pub driver: &'static str,
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
