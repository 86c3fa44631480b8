//! The `[loadtest]` table: an open-loop load test (which latency percentile
//! `spotsim loadtest` holds to which threshold, SPEC 2.7) or a closed-loop
//! one (`users`: requests held in flight, SPEC 2.9).

use serde::Serialize;

use crate::base::time::SimTime;
use crate::input::InputError;
use crate::input::section::Section;
use crate::input::tree::Value;

/// Percentiles a threshold may hold: end to end, then the LLM engine's.
const LATENCIES: [&str; 12] = [
    "p50", "p90", "p95", "p99", "ttft_p50", "ttft_p90", "ttft_p95", "ttft_p99", "tpot_p50", "tpot_p90", "tpot_p95",
    "tpot_p99",
];

/// The most users one closed-loop point may hold.
const MAX_USERS: i64 = 100_000;

/// The `[loadtest]` table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadtestSpec {
    /// The percentile held to the threshold: "p50", "p90", "p95" or "p99"
    /// of the end-to-end latency, or (LLM designs) of the TTFT or TPOT,
    /// such as "ttft_p90" or "tpot_p50".
    pub latency: &'static str,
    /// Open loop: the latency the percentile must stay under.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub threshold: Option<SimTime>,
    /// Closed loop: the user counts, each a run of `[traffic] duration`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<u32>,
    /// Closed loop: the time before measuring (default a tenth of the duration).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub warmup: Option<SimTime>,
    /// Whether `[traffic]` gives arrivals of its own (a `trace` or
    /// `synthetic`) at every point: an open-loop test makes its own load and
    /// needs none, a `spotsim run` of the file does.
    #[serde(skip)]
    pub arrivals: bool,
}

impl LoadtestSpec {
    pub fn quantile(&self) -> f64 {
        let p = self.latency.rsplit('p').next().expect("a checked percentile");
        p.parse::<f64>().expect("a checked percentile") / 100.0
    }

    /// "ttft" or "tpot" for an LLM metric's percentile, else `None`.
    pub fn token_metric(&self) -> Option<&'static str> {
        self.latency.split_once('_').map(|(m, _)| m)
    }

    pub fn closed_loop(&self) -> bool {
        !self.users.is_empty()
    }
}

pub(crate) fn read_loadtest(s: &Section) -> Result<LoadtestSpec, InputError> {
    let latency = s.choice("latency", &LATENCIES)?;
    let threshold = s.positive_duration("threshold")?;
    let users = read_users(s)?;
    let warmup = s.duration("warmup")?;
    s.finish()?;
    if !users.is_empty() {
        // Two different tests: the closed loop fixes the concurrency and
        // measures latency; the open loop fixes a latency and searches the rate.
        if let Some(entry) = s.entry("threshold") {
            return Err(s
                .error(entry, "`users` (a closed-loop test at fixed concurrency) and `threshold` (an open-loop search for the highest rate) are two different load tests")
                .with_hint(Some("give one: remove `threshold` to measure each user count, or `users` to search a rate".into())));
        }
        return Ok(LoadtestSpec { latency: latency.unwrap_or("p99"), threshold: None, users, warmup, arrivals: false });
    }
    if let Some(entry) = s.entry("warmup") {
        return Err(s.error(entry, "`warmup` applies to a closed-loop test (`users`)"));
    }
    let latency = latency.ok_or_else(|| {
        s.missing(
            "latency",
            "the percentile to hold: \"p50\", \"p90\", \"p95\" or \"p99\" (LLM: \"ttft_p90\", \"tpot_p50\", ...)",
        )
    })?;
    let threshold = threshold.ok_or_else(|| {
        s.missing(
            "threshold",
            "the latency the percentile must stay under, such as \"100ms\" (or `users = [1, 5, 10]` for a closed loop)",
        )
    })?;
    Ok(LoadtestSpec { latency, threshold: Some(threshold), users, warmup, arrivals: true })
}

/// `users = [1, 5, 10, 20]`: whole numbers from 1, each once.
fn read_users(s: &Section) -> Result<Vec<u32>, InputError> {
    let Some(entry) = s.entry("users") else {
        return Ok(Vec::new());
    };
    let expected = format!("an array of user counts from 1 to {MAX_USERS}, such as [1, 5, 10, 20]");
    let Value::Array(items) = &entry.node.value else {
        return Err(s.error(entry, format!("expected {expected}, found {}", entry.node.display())));
    };
    let mut users = Vec::with_capacity(items.len());
    for item in items {
        match item.value {
            Value::Int(n) if (1..=MAX_USERS).contains(&n) && !users.contains(&(n as u32)) => users.push(n as u32),
            _ => return Err(s.error(entry, format!("expected {expected}, each once; found {}", item.display()))),
        }
    }
    if users.is_empty() {
        return Err(s.error(entry, format!("expected {expected}, found an empty array")));
    }
    Ok(users)
}
