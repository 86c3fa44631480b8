//! The spot market, below every model: interruption processes, real
//! availability traces and their prices (`trace`), the market terms and the
//! fallback rule, and the reader of `[spot]` with the rule that ties it to a
//! scenario's `market` (`read`). Training and inference both stand on it.
//!
//! Interruption processes.
//!
//! Each process is described by the lifetime of a launch: the time from the
//! moment capacity is granted until the group is reclaimed. A launch's age
//! starts at zero, so the Weibull hazard is by instance age; the Poisson
//! process is memoryless, so drawing a fresh lifetime per launch is exact.

use rand::RngExt;
use serde::Serialize;

use crate::base::dist::Dist;
use crate::base::time::SimTime;
use crate::engine::{Purpose, Streams};
use std::sync::Arc;

pub mod trace;

use trace::SpotTrace;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Market {
    Spot,
    OnDemand,
}

#[derive(Clone, Debug, Serialize)]
pub struct SpotTerms {
    pub interruptions: Interruptions,
    pub notice: SimTime,
    pub capacity_wait: Dist,
    /// USD per instance-hour.
    pub price_per_hour: f64,
    /// A capacity wait longer than this is cut here, and the job moves to
    /// on-demand instances for good.
    #[serde(rename = "fallback", skip_serializing_if = "Option::is_none", serialize_with = "fallback_table")]
    pub fallback_after_wait: Option<SimTime>,
}

/// `fallback = { after_wait = "1h" }`, as in the experiment file.
fn fallback_table<S: serde::Serializer>(after: &Option<SimTime>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = s.serialize_map(Some(1))?;
    map.serialize_entry("after_wait", after)?;
    map.end()
}

/// The `[spot]` and `[zones]` tables of a design, those it has, as the
/// experiment file names them.
pub fn market_tables<'a>(
    spot: Option<&'a SpotTerms>,
    zones: Option<&'a crate::zones::Zones>,
) -> impl Iterator<Item = (&'static str, &'a dyn erased_serde::Serialize)> {
    let spot = spot.map(|s| ("spot", s as &dyn erased_serde::Serialize));
    let zones = zones.map(|z| ("zones", z as &dyn erased_serde::Serialize));
    spot.into_iter().chain(zones)
}

/// Hours in the month over which the Spot Instance Advisor reports its bands.
pub const ADVISOR_MONTH_HOURS: f64 = 730.0;

#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "model", rename_all = "lowercase")]
pub enum Interruptions {
    /// Exponential lifetimes with mean `mtbf` per instance.
    Poisson { mtbf: SimTime },
    /// Weibull lifetimes per instance, hazard by age since launch.
    Weibull { shape: f64, scale: SimTime },
    /// A Spot Instance Advisor band: the share `p` of instances interrupted in
    /// a month becomes the rate -ln(1 - p) / 730 h.
    Advisor { band: &'static str, low: f64, high: f64, draw: AdvisorDraw },
    /// Real availability traces, one per zone: an instance is reclaimed when
    /// its zone's trace turns unavailable, and a launch waits for capacity.
    Trace {
        files: Vec<String>,
        #[serde(skip)]
        traces: Vec<Arc<SpotTrace>>,
        /// A fixed starting point in the trace; `None`: random per replication.
        #[serde(skip_serializing_if = "Option::is_none")]
        offset: Option<SimTime>,
        /// Rows replayed this far apart, whatever their dates.
        #[serde(skip_serializing_if = "Option::is_none")]
        tick: Option<SimTime>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AdvisorDraw {
    /// p is the band's midpoint in every replication.
    Midpoint,
    /// p is drawn uniformly within the band, once per replication.
    Uniform,
}

/// The Spot Instance Advisor's bands, with the range of p each stands for.
/// The open top band is taken as 20-30%.
pub const ADVISOR_BANDS: [(&str, f64, f64); 5] =
    [("<5%", 0.0, 0.05), ("5-10%", 0.05, 0.10), ("10-15%", 0.10, 0.15), ("15-20%", 0.15, 0.20), (">20%", 0.20, 0.30)];

/// Where replication `streams` starts in a trace of `length`: `fixed`, or
/// uniformly at random from its own stream. Every zone uses the same offset,
/// so zones stay aligned in time.
pub fn trace_offset(fixed: Option<SimTime>, length: SimTime, streams: &Streams) -> SimTime {
    match fixed {
        Some(o) => SimTime::from_nanos(o.as_nanos() % length.as_nanos().max(1)),
        None => SimTime::from_nanos(streams.rng(Purpose::TraceOffset).random_range(0..length.as_nanos().max(1))),
    }
}

/// Interruption rate per hour of one instance whose monthly interruption
/// share is `p`.
pub fn advisor_rate_per_hour(p: f64) -> f64 {
    -(1.0 - p).ln() / ADVISOR_MONTH_HOURS
}

impl Interruptions {
    /// The lifetime distribution of a group of `nodes` instances, any one of
    /// whose loss interrupts the job: the minimum of `nodes` independent
    /// lifetimes. `None` means the group is never interrupted.
    pub fn group_lifetime(&self, nodes: u32, streams: &Streams) -> Option<Dist> {
        let n = nodes as f64;
        match *self {
            Interruptions::Poisson { mtbf } => Some(Dist::Exponential { mean: mtbf.as_secs_f64() / n }),
            // The minimum of n Weibull(k, s) lifetimes is Weibull(k, s n^(-1/k)).
            Interruptions::Weibull { shape, scale } => {
                Some(Dist::Weibull { shape, scale: scale.as_secs_f64() * n.powf(-1.0 / shape) })
            }
            Interruptions::Advisor { low, high, draw, .. } => {
                let p = match draw {
                    AdvisorDraw::Midpoint => 0.5 * (low + high),
                    AdvisorDraw::Uniform => low + (high - low) * streams.rng(Purpose::AdvisorRate).random::<f64>(),
                };
                let rate = advisor_rate_per_hour(p) * n / 3600.0;
                (rate > 0.0).then(|| Dist::Exponential { mean: 1.0 / rate })
            }
            // A trace's lifetimes come from the trace itself.
            Interruptions::Trace { .. } => None,
        }
    }

    /// The mean time between interruptions of a group, in seconds, for the
    /// Young/Daly intervals: the mean lifetime of a fresh launch. For the
    /// advisor model, the band's midpoint.
    pub fn group_mtbf_s(&self, nodes: u32) -> f64 {
        let n = nodes as f64;
        match *self {
            Interruptions::Poisson { mtbf } => mtbf.as_secs_f64() / n,
            Interruptions::Weibull { shape, scale } => {
                Dist::Weibull { shape, scale: scale.as_secs_f64() * n.powf(-1.0 / shape) }.mean_secs()
            }
            Interruptions::Advisor { low, high, .. } => 3600.0 / (advisor_rate_per_hour(0.5 * (low + high)) * n),
            // The mean available stretch of the first zone's trace.
            Interruptions::Trace { ref traces, .. } => {
                traces.first().map_or(f64::INFINITY, |t| t.mean_uptime().as_secs_f64())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn advisor_rate_follows_the_monthly_share() {
        // 12.5% of instances interrupted in 730 h: 1 - exp(-730 rate) = 0.125.
        let rate = advisor_rate_per_hour(0.125);
        assert!(((1.0 - (-730.0 * rate).exp()) - 0.125).abs() < 1e-12);
        let m = Interruptions::Advisor { band: "10-15%", low: 0.10, high: 0.15, draw: AdvisorDraw::Midpoint };
        assert!((m.group_mtbf_s(1) / 3600.0 - 1.0 / rate).abs() < 1e-6);
        assert!((m.group_mtbf_s(4) * 4.0 - m.group_mtbf_s(1)).abs() < 1e-6);
    }

    #[test]
    fn uniform_advisor_draws_stay_within_the_band() {
        let m = Interruptions::Advisor { band: "5-10%", low: 0.05, high: 0.10, draw: AdvisorDraw::Uniform };
        let (lo, hi) = (3600.0 / advisor_rate_per_hour(0.10), 3600.0 / advisor_rate_per_hour(0.05));
        let means: Vec<f64> = (0..200).map(|r| m.group_lifetime(1, &Streams::new(3, r)).unwrap().mean_secs()).collect();
        assert!(means.iter().all(|&x| x >= lo - 1e-6 && x <= hi + 1e-6));
        assert!(means.iter().any(|&x| x < 0.5 * (lo + hi)) && means.iter().any(|&x| x > 0.5 * (lo + hi)));
    }

    #[test]
    fn group_lifetimes_shrink_with_nodes() {
        let s = Streams::new(1, 0);
        let p = Interruptions::Poisson { mtbf: SimTime::from_hours(10) };
        assert_eq!(p.group_lifetime(4, &s).unwrap().mean_secs(), 9000.0);
        let w = Interruptions::Weibull { shape: 0.7, scale: SimTime::from_hours(12) };
        let one = w.group_lifetime(1, &s).unwrap().mean_secs();
        let eight = w.group_lifetime(8, &s).unwrap().mean_secs();
        assert!((one / eight - 8f64.powf(1.0 / 0.7)).abs() < 1e-9);
    }
}
