//! The `[loadtest]` table: which latency percentile `spotsim loadtest`
//! holds to which threshold (SPEC 2.7).

use serde::Serialize;

use crate::input::InputError;
use crate::input::section::Section;
use crate::time::SimTime;

/// The `[loadtest]` table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadtestSpec {
    /// The percentile held to the threshold: "p50", "p90", "p95" or "p99".
    pub latency: &'static str,
    pub threshold: SimTime,
}

impl LoadtestSpec {
    pub fn quantile(&self) -> f64 {
        self.latency[1..].parse::<f64>().expect("a checked percentile") / 100.0
    }
}

pub(crate) fn read_loadtest(s: &Section) -> Result<LoadtestSpec, InputError> {
    let latency = s
        .choice("latency", &["p50", "p90", "p95", "p99"])?
        .ok_or_else(|| s.missing("latency", "the percentile to hold: \"p50\", \"p90\", \"p95\" or \"p99\""))?;
    let threshold = s
        .positive_duration("threshold")?
        .ok_or_else(|| s.missing("threshold", "the latency the percentile must stay under, such as \"100ms\""))?;
    s.finish()?;
    Ok(LoadtestSpec { latency, threshold })
}
