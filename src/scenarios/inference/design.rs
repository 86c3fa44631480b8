//! The endpoint design and what its engines produce: the types that the
//! request, LLM, fluid and serverless engines share, with the one place that
//! records a finished request, admits an arrival and builds a timeline row.

use std::sync::LazyLock;

use hdrhistogram::Histogram;
use serde::Serialize;

use super::autoscaler::AutoscalingPolicy;
use super::llm::Llm;
use super::startup::Startup;
use super::traffic::{Arrivals, Traffic};
use crate::base::dist::Dist;
use crate::base::time::SimTime;
use crate::catalog::ServerlessPrices;
use crate::catalog::profile::ProfileUse;
use crate::engine::{EventQueue, Purpose, SimRng, Streams};
use crate::spot::{Market, SpotTerms};
use crate::zones::Zones;

/// SageMaker's real-time invocation timeout: a design's default.
pub const DEFAULT_TIMEOUT: SimTime = SimTime::from_secs(60);

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
    /// Asynchronous inference: requests queue without a timeout.
    Async,
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
    /// `MAX` (not shown) when an LLM design's `slo` is a table.
    #[serde(skip_serializing_if = "is_never")]
    pub slo: SimTime,
    pub initial_instances: u32,
    pub startup: Startup,
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
    /// What a model profile gave.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub from_profile: Option<ProfileUse>,
    /// A closed-loop load test's users: that many requests in flight, a new
    /// one as soon as one finishes, instead of the traffic's arrivals.
    #[serde(skip)]
    pub users: Option<u32>,
    /// Report `ZERO_METRICS` even without scaling to zero: another point of
    /// the sweep does, and every point has the same columns.
    #[serde(skip)]
    pub wide_metrics: bool,
    /// `engine = "llm"`: the token-level engine and its terms.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<Llm>,
}

/// The metrics of an LLM endpoint: `METRICS` and those of SPEC 2.8. A
/// `_pNN_ms` percentile is over the requests served; its `_pNN_all_ms` twin
/// is over every counted arrival, a request not served counting as slower
/// than any (infinite once more than 1 − NN% went unserved): the one a
/// latency constraint is judged on (SPEC 3).
pub const LLM_METRICS: &[&str] = &[
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
    "served_frac",
    "latency_p50_all_ms",
    "latency_p95_all_ms",
    "latency_p99_all_ms",
    // The LLM engine's, `LLM_TAIL` of them.
    "ttft_mean_ms",
    "ttft_p50_ms",
    "ttft_p90_ms",
    "ttft_p95_ms",
    "ttft_p99_ms",
    "tpot_mean_ms",
    "tpot_p50_ms",
    "tpot_p90_ms",
    "tpot_p95_ms",
    "tpot_p99_ms",
    "output_tokens",
    "output_tokens_per_s",
    "preemptions",
    "kv_utilization_mean",
    "cost_per_million_output_tokens_usd",
    "cost_per_million_tokens_usd",
    "gpu_hours",
    "goodput_rps",
    "ttft_p50_all_ms",
    "ttft_p90_all_ms",
    "ttft_p95_all_ms",
    "ttft_p99_all_ms",
    "tpot_p50_all_ms",
    "tpot_p90_all_ms",
    "tpot_p95_all_ms",
    "tpot_p99_all_ms",
];

/// How many of `LLM_METRICS` only the LLM engine reports.
pub const LLM_TAIL: usize = 26;

fn is_never(t: &SimTime) -> bool {
    *t == SimTime::MAX
}

/// The metrics of every other endpoint.
pub const METRICS: &[&str] = LLM_METRICS.split_at(LLM_METRICS.len() - LLM_TAIL).0;

/// What a design that scales to zero or is asynchronous reports after
/// `METRICS` (SPEC 2.9).
pub const ZERO_EXTRA: [&str; 4] = ["scale_from_zero", "no_capacity_failures", "queue_wait_p99_s", "backlog_max"];

/// `METRICS`, then `ZERO_EXTRA`.
pub static ZERO_METRICS: LazyLock<Vec<&'static str>> = LazyLock::new(|| [METRICS, &ZERO_EXTRA].concat());

/// `LLM_METRICS`, then `ZERO_EXTRA`: an LLM design that scales to zero or is
/// asynchronous.
pub static LLM_ZERO_METRICS: LazyLock<Vec<&'static str>> = LazyLock::new(|| [LLM_METRICS, &ZERO_EXTRA].concat());

/// What an LLM design whose traffic carries prompts' content reports last
/// (SPEC 2.11): prompt tokens found in the cache over prompt tokens, the
/// prompt tokens prefilled, and the cache's mean share of the KV blocks.
pub const PREFIX_EXTRA: [&str; 3] = ["prefix_hit_frac", "prefill_tokens", "prefix_cache_occupancy_mean"];

/// What an LLM design with synthetic sessions reports after `PREFIX_EXTRA`
/// (SPEC 2.11): counted sessions, the share completed, completed sessions'
/// time, and TTFT by turn (the last bucket is turn 5 and later).
pub const SESSION_EXTRA: [&str; 15] = [
    "sessions",
    "session_completed_frac",
    "session_time_mean_s",
    "session_time_p50_s",
    "session_time_p99_s",
    "ttft_p50_turn1_ms",
    "ttft_p99_turn1_ms",
    "ttft_p50_turn2_ms",
    "ttft_p99_turn2_ms",
    "ttft_p50_turn3_ms",
    "ttft_p99_turn3_ms",
    "ttft_p50_turn4_ms",
    "ttft_p99_turn4_ms",
    "ttft_p50_turn5plus_ms",
    "ttft_p99_turn5plus_ms",
];

/// `LLM_METRICS`, then `PREFIX_EXTRA`; and with `ZERO_EXTRA` between.
pub static LLM_PREFIX_METRICS: LazyLock<Vec<&'static str>> = LazyLock::new(|| [LLM_METRICS, &PREFIX_EXTRA].concat());
pub static LLM_ZERO_PREFIX_METRICS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| [LLM_METRICS, &ZERO_EXTRA, &PREFIX_EXTRA].concat());
/// The same two with `SESSION_EXTRA` last.
pub static LLM_SESSION_METRICS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| [LLM_METRICS, &PREFIX_EXTRA, &SESSION_EXTRA].concat());
pub static LLM_ZERO_SESSION_METRICS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| [LLM_METRICS, &ZERO_EXTRA, &PREFIX_EXTRA, &SESSION_EXTRA].concat());

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
    /// Wakes from zero instances (scale to zero, asynchronous endpoints).
    pub scale_from_zero: f64,
    /// Designs with start-up in stages: what their scale-outs cost.
    pub scale_out: Option<ScaleOutSummary>,
}

/// Scale-outs of a design with start-up in stages (docs/autoscaling.md).
#[derive(Clone, Debug, Default)]
pub struct ScaleOutSummary {
    /// Mean time from a scale-out decision to its first instance in service.
    pub time_to_capacity_s: f64,
    /// Counted requests that arrived during a scale-out and waited, or were refused.
    pub delayed: f64,
    pub lost: f64,
    /// Per metric period: a scale-out under way at its end (0 or 1), and
    /// the requests it delayed and lost (all arrivals, warm-up included).
    pub periods: Vec<[f64; 3]>,
}

/// The summary metrics and timeline columns of start-up in stages.
pub const STARTUP_METRICS: [&str; 3] = ["time_to_capacity_s", "scale_out_delayed", "scale_out_lost"];
pub const STARTUP_TIMELINE_COLUMNS: [&str; 3] = ["scale_out_under_way", "scale_out_delayed", "scale_out_lost"];

/// `base` with `more` after it, built once per distinct pair and kept for
/// the run (names are `'static` throughout the output code).
pub fn with_columns(base: &'static [&'static str], more: &'static [&'static str]) -> &'static [&'static str] {
    type Key = (usize, usize, usize);
    static BUILT: std::sync::Mutex<Vec<(Key, &'static [&'static str])>> = std::sync::Mutex::new(Vec::new());
    let key = (base.as_ptr() as usize, base.len(), more.as_ptr() as usize);
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(&(_, names)) = built.iter().find(|(k, _)| *k == key) {
        return names;
    }
    let names: &'static [&'static str] = Box::leak([base, more].concat().into_boxed_slice());
    built.push((key, names));
    names
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
    /// Requests that found no instance in service on an endpoint scaled to
    /// zero, and failed (SageMaker answers them with an error).
    pub no_capacity: f64,
    /// Waits from arrival to service start, microseconds.
    pub queue_wait_us: Histogram<u64>,
    /// The most requests held at once, waiting and in service.
    pub backlog_max: f64,
    /// Served requests that finished after the traffic ended: a load test's
    /// sign that the design fell behind its arrivals.
    pub served_after_end: f64,
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
            no_capacity: 0.0,
            queue_wait_us: latency_histogram(),
            backlog_max: 0.0,
            served_after_end: 0.0,
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

/// The value at `rank` (1-based, fractional) among `served` values held in
/// `h`, in its units over `per_unit`; infinite past the served ones (a
/// request not served is slower than any), NaN with nothing to rank.
pub fn value_at_rank(h: &Histogram<u64>, served: f64, rank: f64, per_unit: f64) -> f64 {
    if served == 0.0 || rank > served {
        return if rank > 0.0 { f64::INFINITY } else { f64::NAN };
    }
    h.value_at_quantile((rank / served).clamp(0.0, 1.0)) as f64 / per_unit
}

/// The q-quantile over `arrivals` requests of which `h` holds the `served`
/// ones (SPEC 3's rule for latency constraints); NaN without arrivals.
pub fn quantile_over_arrivals(h: &Histogram<u64>, served: f64, arrivals: f64, q: f64, per_unit: f64) -> f64 {
    if arrivals == 0.0 { f64::NAN } else { value_at_rank(h, served, q * arrivals, per_unit) }
}

pub fn micros(t: SimTime) -> u64 {
    (t.as_nanos() / 1000).max(1)
}

/// Where each instance's slots (or replicas) begin in an engine's flat
/// list: set when the instance comes into service.
#[derive(Clone, Debug, Default)]
pub struct FirstIndex(Vec<u32>);

impl FirstIndex {
    pub fn set(&mut self, instance: usize, first: u32) {
        if self.0.len() <= instance {
            self.0.resize(instance + 1, u32::MAX);
        }
        self.0[instance] = first;
    }

    /// The first index of `instance`, once it has come into service.
    pub fn get(&self, instance: usize) -> Option<u32> {
        self.0.get(instance).copied().filter(|&f| f != u32::MAX)
    }

    /// One more than the highest instance id ever set.
    pub fn instances(&self) -> usize {
        self.0.len()
    }
}

/// What one metric period saw, as the autoscaler reads it: its arrivals
/// and the requests it held. Both engines keep one and close it with
/// `Control::close_period`.
#[derive(Clone, Copy, Debug, Default)]
pub struct PeriodCounts {
    pub invocations: f64,
    /// Each arrival as 1/n for the n instances in service then.
    pub per_instance: f64,
    /// Arrivals with no instance in service.
    pub orphans: f64,
    pub rejected: f64,
    /// ∫ held / in service dt, in seconds, while an instance is in service.
    pub held_per_copy: f64,
    /// Requests were held with no instance in service.
    pub held_orphan: bool,
}

impl PeriodCounts {
    pub fn arrival(&mut self, in_service: u32) {
        self.invocations += 1.0;
        match in_service {
            0 => self.orphans += 1.0,
            n => self.per_instance += 1.0 / n as f64,
        }
    }

    /// `held` requests (waiting and in service) for `dt`, a time in units
    /// of `1 / per_second` s, with `in_service` instances in service.
    pub fn hold(&mut self, in_service: u32, held: f64, dt: f64, per_second: f64) {
        match in_service {
            0 => self.held_orphan |= held > 0.0,
            n => self.held_per_copy += held / n as f64 * dt / per_second,
        }
    }
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

/// The timeline of an LLM endpoint: `TIMELINE_COLUMNS`, then output tokens
/// per second, the time-average KV use over capacity, and the p99 TTFT of
/// the requests served in the period.
pub const LLM_TIMELINE_COLUMNS: &[&str] = &[
    "t_s",
    "arrival_rate",
    "instances_in_service",
    "instances_pending",
    "queue",
    "latency_p99_ms",
    "rejected",
    "metric",
    "output_tokens_per_s",
    "kv_utilization",
    "ttft_p99_ms",
];

pub const TIMELINE_COLUMNS: &[&str] = LLM_TIMELINE_COLUMNS.split_at(8).0;

/// `LLM_TIMELINE_COLUMNS`, then the period's prompt tokens found in the
/// cache over its prompt tokens and the cache's share of the KV blocks at
/// its end: for designs whose traffic carries prompts' content.
pub static LLM_PREFIX_TIMELINE_COLUMNS: LazyLock<Vec<&'static str>> =
    LazyLock::new(|| [LLM_TIMELINE_COLUMNS, &["prefix_hit_frac", "prefix_cache_occupancy"]].concat());

/// What becomes of an arrival that finds no free worker.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Wait,
    /// The queue is full.
    Reject,
    /// Scaled to zero, real-time: no instance in service, the request fails.
    NoCapacity,
}

impl Endpoint {
    pub fn mean_service_s(&self) -> f64 {
        self.service_time.mean_secs()
    }

    /// Whether the endpoint can go to zero instances and wake: `min = 0`
    /// with a wake rule, or an asynchronous endpoint.
    pub fn scales_to_zero(&self) -> bool {
        self.mode == Mode::Async || self.autoscaling.as_ref().is_some_and(|a| a.wake.is_some())
    }

    /// Whether the design reports `ZERO_METRICS`.
    pub fn zero_metrics(&self) -> bool {
        self.wide_metrics || self.scales_to_zero()
    }

    /// The metric names of this design.
    pub fn metric_names(&self) -> &'static [&'static str] {
        let base = self.base_metric_names();
        if self.staged_startup() { with_columns(base, &STARTUP_METRICS) } else { base }
    }

    /// Whether instances start in stages, with the scale-out metrics (a
    /// serverless design has no instances).
    pub fn staged_startup(&self) -> bool {
        self.startup.stages().is_some() && self.mode != Mode::Serverless
    }

    fn base_metric_names(&self) -> &'static [&'static str] {
        match (self.llm.is_some(), self.zero_metrics(), self.uses_prefixes(), self.uses_sessions()) {
            (false, false, ..) => METRICS,
            (false, true, ..) => ZERO_METRICS.as_slice(),
            (true, false, false, _) => LLM_METRICS,
            (true, true, false, _) => LLM_ZERO_METRICS.as_slice(),
            (true, false, true, false) => LLM_PREFIX_METRICS.as_slice(),
            (true, true, true, false) => LLM_ZERO_PREFIX_METRICS.as_slice(),
            (true, false, true, true) => LLM_SESSION_METRICS.as_slice(),
            (true, true, true, true) => LLM_ZERO_SESSION_METRICS.as_slice(),
        }
    }

    /// Whether an LLM design's traffic carries prompts' content: it reports
    /// the prefix cache's metrics and timeline columns.
    pub fn uses_prefixes(&self) -> bool {
        self.llm.is_some() && self.traffic.carries_prompts()
    }

    /// Whether an LLM design's traffic is synthetic sessions: it reports
    /// `SESSION_EXTRA` too.
    pub fn uses_sessions(&self) -> bool {
        self.llm.is_some() && self.traffic.sessions().is_some()
    }

    /// An arrival with no free worker, `waiting` queued and `in_service`
    /// instances: the queue limit is per instance in service on a real-time
    /// endpoint, for the whole queue on an asynchronous one (SPEC 2.9).
    pub fn admit(&self, waiting: usize, in_service: u32) -> Admission {
        let limit = match self.mode {
            Mode::Async => u64::from(self.queue_limit),
            _ if in_service == 0 && self.scales_to_zero() => return Admission::NoCapacity,
            _ => u64::from(self.queue_limit) * u64::from(in_service),
        };
        if (waiting as u64) < limit { Admission::Wait } else { Admission::Reject }
    }
}

impl Outcome {
    /// A request arrived at `now`: counted from the end of the `warmup` on.
    /// Returns whether it is counted.
    pub fn arrival(&mut self, now: SimTime, warmup: SimTime) -> bool {
        let counted = now >= warmup;
        if counted {
            self.requests += 1.0;
        }
        counted
    }

    /// An arrival that was not admitted (`Reject` or `NoCapacity`): counted
    /// if `counted`. Returns whether it was a rejection, which the caller's
    /// period also counts.
    pub fn refuse(&mut self, admission: Admission, counted: bool) -> bool {
        let rejected = admission == Admission::Reject;
        if counted {
            *(if rejected { &mut self.rejected } else { &mut self.no_capacity }) += 1.0;
        }
        rejected
    }

    /// A counted request that arrived at `arrival` finished after
    /// `latency`; `waited` says whether it waited for a worker or a
    /// container first.
    pub fn finish(&mut self, arrival: SimTime, latency: SimTime, waited: bool, ep: &Endpoint) {
        self.finish_with(arrival, latency, waited, ep, latency <= ep.slo);
    }

    /// `finish`, with the SLO judged by the caller. Returns whether the
    /// request was served (within its timeout).
    pub fn finish_with(
        &mut self,
        arrival: SimTime,
        latency: SimTime,
        waited: bool,
        ep: &Endpoint,
        slo_met: bool,
    ) -> bool {
        if waited {
            self.waited += 1.0;
        }
        // The worker finishes the request even when the client has given up.
        if latency > ep.timeout {
            self.timed_out += 1.0;
            return false;
        }
        self.served += 1.0;
        if arrival + latency > ep.traffic.duration {
            self.served_after_end += 1.0;
        }
        self.latency_sum_s += latency.as_secs_f64();
        self.latency_us.saturating_record(micros(latency));
        if slo_met {
            self.slo_met += 1.0;
        }
        true
    }
}

impl TimelineRow {
    /// The row of the period of length `period` that ends at `end`, with
    /// `arrivals` over it and the p99 of `latency`, which it empties (NaN
    /// when nothing finished). The fleet columns are the caller's.
    pub fn new(end: SimTime, period: SimTime, arrivals: f64, latency: &mut Histogram<u64>) -> Self {
        let p99 = if latency.is_empty() { f64::NAN } else { latency.value_at_quantile(0.99) as f64 / 1000.0 };
        latency.reset();
        TimelineRow {
            t_s: (end - period).as_secs_f64(),
            arrival_rate: arrivals / period.as_secs_f64(),
            instances_in_service: 0,
            instances_pending: 0,
            queue: 0.0,
            latency_p99_ms: p99,
            rejected: 0.0,
            metric: 0.0,
        }
    }

    fn values(&self) -> [f64; 8] {
        [
            self.t_s,
            self.arrival_rate,
            self.instances_in_service as f64,
            self.instances_pending as f64,
            self.queue,
            self.latency_p99_ms,
            self.rejected,
            // The autoscaler reads requests with no instance in service as
            // +inf per instance; per instance, they are undefined (NaN).
            if self.metric.is_finite() { self.metric } else { f64::NAN },
        ]
    }
}

/// Rows of the same order as `TIMELINE_COLUMNS`, row-major.
pub fn timeline_values(rows: &[TimelineRow]) -> Vec<f64> {
    rows.iter().flat_map(TimelineRow::values).collect()
}

/// The arrivals of one replication, fed into an event queue one at a time
/// (they come in time order, so they use its FIFO lane), each with its
/// service time.
pub struct ArrivalFeed<'a> {
    ep: &'a Endpoint,
    arrivals: Arrivals,
    next_size: Option<f64>,
    next_row: Option<u32>,
    service_rng: SimRng,
}

impl<'a> ArrivalFeed<'a> {
    /// Schedules the first arrival as `event`.
    /// With `users` (a closed loop), that many arrivals at time zero instead.
    pub fn start<E: Copy>(ep: &'a Endpoint, streams: &Streams, queue: &mut EventQueue<E>, event: E) -> Self {
        let mut feed = ArrivalFeed {
            ep,
            arrivals: ep.traffic.arrivals(streams),
            next_size: None,
            next_row: None,
            service_rng: streams.rng(Purpose::ServiceTime),
        };
        match ep.users {
            Some(users) => (0..users).for_each(|_| queue.schedule_in_order(SimTime::ZERO, event)),
            None => feed.schedule_next(queue, event),
        }
        feed
    }

    /// A request finished at `now`: in a closed loop its user sends the next
    /// one at once, until the traffic's duration. (A refused request's user
    /// leaves: retrying at the same instant would never end.)
    pub fn finished<E>(&mut self, queue: &mut EventQueue<E>, event: E, now: SimTime) {
        if self.ep.users.is_some() && now < self.ep.traffic.duration {
            queue.schedule_in_order(now, event);
        }
    }

    fn schedule_next<E>(&mut self, queue: &mut EventQueue<E>, event: E) {
        if self.ep.users.is_some() {
            return;
        }
        if let Some(a) = self.arrivals.next() {
            self.next_size = a.size;
            self.next_row = a.row;
            queue.schedule_in_order(a.at, event);
        }
    }

    /// At an arrival event: schedules the next arrival as `event` and
    /// returns this one's service time (plus its size's share, for request
    /// traces with sizes).
    pub fn arrive<E>(&mut self, queue: &mut EventQueue<E>, event: E) -> SimTime {
        let size = self.next_size;
        self.schedule_next(queue, event);
        let mut service = self.ep.service_time.sample(&mut self.service_rng);
        if let (Some(per_unit), Some(size)) = (self.ep.service_per_unit, size) {
            service += SimTime::from_secs_f64(per_unit * size);
        }
        service
    }

    /// At an arrival event of a design without service times (the LLM
    /// engine): schedules the next arrival and returns this one's trace
    /// row, if it came from a request trace.
    pub fn arrive_row<E>(&mut self, queue: &mut EventQueue<E>, event: E) -> Option<u32> {
        let row = self.next_row;
        self.schedule_next(queue, event);
        row
    }
}

#[derive(Clone, Debug, Serialize)]
pub struct Serverless {
    pub memory_gb: f64,
    pub max_concurrency: u32,
    pub provisioned_concurrency: u32,
    pub cold_start: Dist,
    /// A container stays warm this long after its last request.
    pub idle_timeout: SimTime,
    /// The memory at which `service_time` holds; service time scales with
    /// service_memory / memory (CPU grows with memory). `None`: no scaling.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_memory_gb: Option<f64>,
    pub prices: ServerlessPrices,
}

impl Serverless {
    /// The factor applied to every service time.
    pub fn service_factor(&self) -> f64 {
        self.service_memory_gb.map_or(1.0, |m| m / self.memory_gb)
    }
}
