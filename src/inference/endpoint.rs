//! The endpoint design and its metrics.

use hdrhistogram::Histogram;
use serde::Serialize;

use super::autoscaler::AutoscalingPolicy;
use super::serverless::Serverless;
use super::traffic::Traffic;
use super::{fluid, request, serverless};
use crate::dist::Dist;
use crate::engine::{Model, Streams};
use crate::time::SimTime;
use crate::training::{Market, SpotTerms};
use crate::zones::Zones;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fidelity {
    /// Every request is an event.
    Request,
    /// Fixed steps with aggregate arrivals and a queueing approximation.
    Fluid,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Endpoint,
    Serverless,
}

#[derive(Clone, Debug, Serialize)]
pub struct Endpoint {
    pub mode: Mode,
    /// Serverless terms, used when `mode` is serverless.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub serverless: Option<Serverless>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub instance: Option<String>,
    /// On-demand USD per instance-hour.
    pub price_per_hour: f64,
    /// Requests one instance serves at once.
    pub workers: u32,
    pub service_time: Dist,
    /// Seconds of service per unit of a trace's request size (linear model).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_per_unit: Option<f64>,
    /// Waiting requests allowed per in-service instance.
    pub queue_limit: u32,
    pub timeout: SimTime,
    pub slo: SimTime,
    pub initial_instances: u32,
    pub startup: Dist,
    pub fidelity: Fidelity,
    /// Step of the fluid engine.
    pub step: SimTime,
    /// Requests arriving before this are left out of the request metrics.
    pub warmup: SimTime,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub autoscaling: Option<AutoscalingPolicy>,
    /// "spot": instances above `on_demand_base` are spot, per `[spot]`.
    pub market: Market,
    pub on_demand_base: u32,
    #[serde(skip)]
    pub spot: Option<SpotTerms>,
    #[serde(skip)]
    pub zones: Option<Zones>,
    #[serde(skip)]
    pub traffic: Traffic,
}

pub const METRICS: &[&str] = &[
    "requests",
    "served",
    "rejected",
    "timed_out",
    "slo_attainment",
    "latency_mean_ms",
    "latency_p50_ms",
    "latency_p95_ms",
    "latency_p99_ms",
    "waited_frac",
    "cost_usd",
    "instance_hours",
    "instances_mean",
    "instances_max",
    "scale_outs",
    "scale_ins",
    "availability",
    "zone_outages",
    "capacity_lost_instance_hours",
    "cold_starts",
    "cold_start_frac",
    "throttled",
];

/// What the capacity side of a replication adds to the request metrics:
/// instances for an endpoint, containers for serverless.
#[derive(Clone, Debug, Default)]
pub struct CapacitySummary {
    pub cost_usd: f64,
    pub instance_hours: f64,
    pub instances_mean: f64,
    pub instances_max: f64,
    pub scale_outs: f64,
    pub scale_ins: f64,
    pub availability: f64,
    pub zone_outages: f64,
    pub capacity_lost_instance_hours: f64,
}

/// The request-level counters of one replication. Counts are `f64` because
/// the fluid engine's are expectations.
pub struct Outcome {
    pub requests: f64,
    pub served: f64,
    pub rejected: f64,
    pub timed_out: f64,
    pub slo_met: f64,
    pub waited: f64,
    pub latency_sum_s: f64,
    /// Latencies of served requests, in microseconds.
    pub latency_us: Histogram<u64>,
    /// Serverless: requests that started a container, and requests refused
    /// at the concurrency limit (also counted as rejected).
    pub cold_starts: f64,
    pub throttled: f64,
}

impl Outcome {
    pub fn new() -> Self {
        Outcome {
            requests: 0.0,
            served: 0.0,
            rejected: 0.0,
            timed_out: 0.0,
            slo_met: 0.0,
            waited: 0.0,
            latency_sum_s: 0.0,
            latency_us: latency_histogram(),
            cold_starts: 0.0,
            throttled: 0.0,
        }
    }
}

impl Default for Outcome {
    fn default() -> Self {
        Self::new()
    }
}

/// Microseconds from 1 µs to one hour, three significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

pub fn micros(t: SimTime) -> u64 {
    (t.as_nanos() / 1000).max(1)
}

/// One row of `timeline.csv`.
#[derive(Clone, Debug, PartialEq)]
pub struct TimelineRow {
    pub t_s: f64,
    pub arrival_rate: f64,
    pub instances_in_service: u32,
    pub instances_pending: u32,
    pub queue: f64,
    pub latency_p99_ms: f64,
    pub rejected: f64,
    pub metric: f64,
}

pub const TIMELINE_COLUMNS: [&str; 8] = [
    "t_s",
    "arrival_rate",
    "instances_in_service",
    "instances_pending",
    "queue",
    "latency_p99_ms",
    "rejected",
    "metric",
];

impl Endpoint {
    pub fn mean_service_s(&self) -> f64 {
        self.service_time.mean_secs()
    }

    fn simulate(&self, streams: &Streams, timeline: Option<&mut Vec<TimelineRow>>) -> (Outcome, CapacitySummary) {
        let end = self.traffic.duration;
        let (outcome, mut control) = match (self.mode, self.fidelity) {
            (Mode::Serverless, _) => return serverless::simulate(self, streams, timeline),
            (Mode::Endpoint, Fidelity::Request) => request::simulate(self, streams, timeline),
            (Mode::Endpoint, Fidelity::Fluid) => fluid::simulate(self, streams, timeline),
        };
        (outcome, control.summary(end))
    }

    /// Replication `streams.replication`, minute by minute.
    pub fn timeline(&self, streams: Streams) -> Vec<TimelineRow> {
        let mut rows = Vec::new();
        self.simulate(&streams, Some(&mut rows));
        rows
    }
}

impl Model for Endpoint {
    fn metrics(&self) -> &'static [&'static str] {
        METRICS
    }

    fn replicate(&self, streams: Streams, out: &mut [f64]) {
        let (outcome, c) = self.simulate(&streams, None);
        let o = &outcome;
        let quantile_ms = |q: f64| {
            if o.latency_us.is_empty() { f64::NAN } else { o.latency_us.value_at_quantile(q) as f64 / 1000.0 }
        };
        let ratio = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        let values = [
            o.requests,
            o.served,
            o.rejected,
            o.timed_out,
            ratio(o.slo_met, o.requests),
            ratio(o.latency_sum_s * 1000.0, o.served),
            quantile_ms(0.50),
            quantile_ms(0.95),
            quantile_ms(0.99),
            ratio(o.waited, o.served + o.timed_out),
            c.cost_usd,
            c.instance_hours,
            c.instances_mean,
            c.instances_max,
            c.scale_outs,
            c.scale_ins,
            c.availability,
            c.zone_outages,
            c.capacity_lost_instance_hours,
            o.cold_starts,
            ratio(o.cold_starts, o.requests - o.throttled),
            o.throttled,
        ];
        out.copy_from_slice(&values);
    }
}
