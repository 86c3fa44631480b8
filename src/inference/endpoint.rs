//! The endpoint design, its metrics, and the control plane (fleet,
//! autoscaler, startup) that both engines share.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

use hdrhistogram::Histogram;
use serde::Serialize;

use super::autoscaler::{Autoscaler, AutoscalingPolicy, ScalingMetric};
use super::fleet::Fleet;
use super::traffic::Traffic;
use super::{fluid, request};
use crate::dist::Dist;
use crate::engine::{Model, Purpose, SimRng, Streams};
use crate::time::SimTime;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Fidelity {
    /// Every request is an event.
    Request,
    /// Fixed steps with aggregate arrivals and a queueing approximation.
    Fluid,
}

#[derive(Clone, Debug, Serialize)]
pub struct Endpoint {
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
];

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

    fn simulate(&self, streams: &Streams, timeline: Option<&mut Vec<TimelineRow>>) -> (Outcome, Control) {
        match self.fidelity {
            Fidelity::Request => request::simulate(self, streams, timeline),
            Fidelity::Fluid => fluid::simulate(self, streams, timeline),
        }
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
        let (outcome, mut control) = self.simulate(&streams, None);
        let end = self.traffic.duration;
        let instance_hours = control.fleet.instance_hours(end);
        let (instances_mean, availability) = control.fleet.averages(end);
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
            instance_hours * self.price_per_hour,
            instance_hours,
            instances_mean,
            control.fleet.max_in_service() as f64,
            control.scale_outs() as f64,
            control.scale_ins() as f64,
            availability,
        ];
        out.copy_from_slice(&values);
    }
}

/// The control plane: the fleet, its startups, and the autoscaler fed by
/// one datapoint per period. Both engines drive it; it never sees requests.
pub struct Control {
    pub fleet: Fleet,
    autoscaler: Option<Autoscaler>,
    metric: ScalingMetric,
    period: SimTime,
    delay: SimTime,
    startup: Dist,
    startup_rng: SimRng,
    /// Instances starting up, by the time they come into service.
    starting: BinaryHeap<Reverse<(SimTime, usize)>>,
    /// Datapoints computed but not yet visible to the autoscaler.
    datapoints: VecDeque<(SimTime, f64)>,
    /// The last datapoint computed, for the timeline.
    pub last_metric: f64,
    end: SimTime,
    /// Past the end of the window: the autoscaler no longer acts.
    closed: bool,
}

impl Control {
    pub fn new(endpoint: &Endpoint, streams: &Streams) -> Self {
        let policy = endpoint.autoscaling.as_ref();
        let mut control = Control {
            fleet: Fleet::new(endpoint.initial_instances),
            autoscaler: policy.map(|p| Autoscaler::new(p.clone())),
            metric: policy.map_or(ScalingMetric::InvocationsPerInstance, |p| p.metric),
            period: policy.map_or(SimTime::from_mins(1), |p| p.period),
            delay: policy.map_or(SimTime::ZERO, |p| p.metric_delay),
            startup: endpoint.startup.clone(),
            startup_rng: streams.rng(Purpose::Startup),
            starting: BinaryHeap::new(),
            datapoints: VecDeque::new(),
            last_metric: f64::NAN,
            end: endpoint.traffic.duration,
            closed: false,
        };
        // The limits hold from the start: an initial fleet outside them is
        // brought inside at time zero.
        let initial = control.fleet.capacity();
        if let Some(d) = control.autoscaler.as_mut().and_then(|a| a.on_schedule(SimTime::ZERO, initial)) {
            control.resize(d, SimTime::ZERO);
        }
        control
    }

    /// Length of one metric period (the timeline's row too).
    pub fn period(&self) -> SimTime {
        self.period
    }

    pub fn scale_outs(&self) -> u32 {
        self.autoscaler.as_ref().map_or(0, |a| a.scale_outs())
    }

    pub fn scale_ins(&self) -> u32 {
        self.autoscaler.as_ref().map_or(0, |a| a.scale_ins())
    }

    /// A period ended at `now`. `per_instance` is the period's requests, each
    /// counted as 1/n for the n instances in service at its arrival;
    /// `orphans` counts requests that arrived with none in service;
    /// `busy_share` is the mean share of in-service workers busy. Returns the
    /// datapoint, which the autoscaler sees after the metric delay.
    pub fn period_end(&mut self, now: SimTime, per_instance: f64, orphans: f64, busy_share: f64) -> f64 {
        let value = match self.metric {
            ScalingMetric::InvocationsPerInstance if orphans > 0.0 && per_instance == 0.0 => f64::INFINITY,
            ScalingMetric::InvocationsPerInstance => per_instance * 60.0 / self.period.as_secs_f64(),
            ScalingMetric::ConcurrencyPerInstance => busy_share,
        };
        self.last_metric = value;
        if self.autoscaler.is_some() {
            self.datapoints.push_back((now + self.delay, value));
        }
        value
    }

    /// The next time something in the control plane is due (`MAX`: never).
    pub fn next_due(&self) -> SimTime {
        let ready = self.starting.peek().map_or(SimTime::MAX, |r| r.0.0);
        if self.closed {
            return ready;
        }
        let datapoint = self.datapoints.front().map_or(SimTime::MAX, |d| d.0);
        let scheduled = self.autoscaler.as_ref().and_then(|a| a.next_scheduled()).unwrap_or(SimTime::MAX);
        ready.min(datapoint).min(scheduled)
    }

    /// Does everything due at or before `now`. Instances that came into
    /// service are appended to `ready`.
    pub fn poll(&mut self, now: SimTime, ready: &mut Vec<usize>) {
        while let Some(&Reverse((at, id))) = self.starting.peek() {
            if at > now {
                break;
            }
            self.starting.pop();
            if self.fleet.ready(id, at) {
                ready.push(id);
            }
        }
        // The autoscaler acts only within the simulated window.
        if now > self.end {
            self.closed = true;
            self.datapoints.clear();
            return;
        }
        let Some(scaler) = self.autoscaler.as_mut() else { return };
        let mut desired = None;
        while scaler.next_scheduled().is_some_and(|t| t <= now) {
            desired = scaler.on_schedule(now, self.fleet.capacity()).or(desired);
        }
        if let Some(d) = desired {
            self.resize(d, now);
        }
        while let Some(&(due, value)) = self.datapoints.front() {
            if due > now {
                break;
            }
            self.datapoints.pop_front();
            let scaler = self.autoscaler.as_mut().expect("checked");
            if let Some(d) = scaler.on_datapoint(due, value, self.fleet.capacity()) {
                self.resize(d, due);
            }
        }
    }

    fn resize(&mut self, desired: u32, now: SimTime) {
        let capacity = self.fleet.capacity();
        if desired > capacity {
            for _ in capacity..desired {
                let id = self.fleet.launch(now);
                let at = now + self.startup.sample(&mut self.startup_rng);
                self.starting.push(Reverse((at, id)));
            }
        } else if desired < capacity {
            self.fleet.scale_in(capacity - desired, now);
        }
    }
}
