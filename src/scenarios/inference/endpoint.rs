//! An endpoint design as a model: which engine runs it, and its metrics.

use super::control::Control;
use super::design::{
    CapacitySummary, Endpoint, Fidelity, LLM_PREFIX_TIMELINE_COLUMNS, LLM_TAIL, LLM_TIMELINE_COLUMNS, METRICS, Mode,
    Outcome, PREFIX_EXTRA, TIMELINE_COLUMNS, TimelineRow, quantile_over_arrivals, timeline_values,
};
use super::traffic::TrafficSource;
use super::{fluid, llm_engine, request, serverless};
use crate::base::time::SimTime;
use crate::engine::{Model, Streams};
use crate::scenarios::{Design, Timeline, Work};

impl Endpoint {
    fn simulate(&self, streams: &Streams, timeline: Option<&mut Vec<TimelineRow>>) -> (Outcome, CapacitySummary) {
        let end = self.traffic.duration;
        let mut extra = Vec::new();
        let (outcome, mut control) = match (self.mode, self.fidelity) {
            _ if self.llm.is_some() => {
                let (o, _, c, _) = llm_engine::simulate(self, streams, timeline.map(|t| (t, &mut extra)));
                (o, c)
            }
            (Mode::Serverless, _) => return serverless::simulate(self, streams, timeline),
            // The reader keeps asynchronous endpoints off the fluid and LLM engines.
            (Mode::Endpoint | Mode::Async, Fidelity::Request) => request::simulate(self, streams, timeline),
            (Mode::Endpoint | Mode::Async, Fidelity::Fluid) => fluid::simulate(self, streams, timeline),
        };
        (outcome, control.summary(end))
    }

    /// One replication's request counters, from whichever engine runs the
    /// design (load tests call this, so a new engine serves them too).
    pub fn outcome(&self, streams: &Streams) -> Outcome {
        self.outcomes(streams).0
    }

    /// `outcome`, with the LLM engine's token counters for an LLM design.
    pub fn outcomes(&self, streams: &Streams) -> (Outcome, Option<llm_engine::LlmOutcome>) {
        if self.llm.is_some() {
            let (o, lo, _, _) = llm_engine::simulate(self, streams, None);
            return (o, Some(lo));
        }
        (self.simulate(streams, None).0, None)
    }

    /// Replication `streams.replication`, minute by minute.
    pub fn timeline_rows(&self, streams: Streams) -> Vec<TimelineRow> {
        let mut rows = Vec::new();
        self.simulate(&streams, Some(&mut rows));
        rows
    }
}

impl Design for Endpoint {
    fn tables(&self) -> Vec<(&'static str, &dyn erased_serde::Serialize)> {
        let mut tables: Vec<(&'static str, &dyn erased_serde::Serialize)> = vec![("inference", self)];
        tables.extend(crate::spot::market_tables(self.spot.as_ref(), self.zones.as_ref()));
        tables.push(("traffic", &self.traffic));
        tables
    }

    fn work(&self) -> Work {
        let duration = self.traffic.duration.as_secs_f64();
        let main = match (self.mode, self.fidelity) {
            (Mode::Endpoint, Fidelity::Fluid) => {
                Work::new(duration / self.step.as_secs_f64(), "fluid steps", "inference.step")
            }
            _ => {
                let driver = match self.traffic.source {
                    TrafficSource::Synthetic { .. } => "traffic.synthetic.mean_rps",
                    _ => "traffic.scale",
                };
                let unit = if self.llm.is_some() { "LLM requests" } else { "requests" };
                Work::new(self.traffic.expected_requests(), unit, driver)
            }
        };
        // Every metric period is an event too, however little traffic comes.
        let period = self.autoscaling.as_ref().map_or(SimTime::from_mins(1), |a| a.period);
        let periods = Work::new(duration / period.as_secs_f64(), "metric periods", "inference.autoscaling.period");
        let (larger, smaller) = if periods.events > main.events { (periods, main) } else { (main, periods) };
        Work { events: larger.events + smaller.events, seconds: larger.seconds + smaller.seconds, ..larger }
    }

    fn timeline(&self, streams: Streams) -> Option<Timeline> {
        if self.llm.is_some() {
            let (mut rows, mut extra) = (Vec::new(), Vec::new());
            llm_engine::simulate(self, &streams, Some((&mut rows, &mut extra)));
            let columns =
                if self.uses_prefixes() { LLM_PREFIX_TIMELINE_COLUMNS.as_slice() } else { LLM_TIMELINE_COLUMNS };
            let more = columns.len() - TIMELINE_COLUMNS.len();
            let values = timeline_values(&rows)
                .chunks_exact(TIMELINE_COLUMNS.len())
                .zip(&extra)
                .flat_map(|(row, extra)| row.iter().chain(&extra[..more]).copied().collect::<Vec<_>>())
                .collect();
            return Some(Timeline { columns, rows: values });
        }
        Some(Timeline { columns: TIMELINE_COLUMNS, rows: timeline_values(&self.timeline_rows(streams)) })
    }

    fn profile(&self) -> Option<&crate::catalog::profile::ProfileUse> {
        self.from_profile.as_ref()
    }
}

impl Model for Endpoint {
    fn metrics(&self) -> &'static [&'static str] {
        self.metric_names()
    }

    fn replicate(&self, streams: Streams, out: &mut [f64]) {
        if self.llm.is_some() {
            let (o, lo, mut control, _) = llm_engine::simulate(self, &streams, None);
            self.llm_values(&o, &lo, &mut control, out);
            return;
        }
        let (outcome, c) = self.simulate(&streams, None);
        let (head, tail) = out.split_at_mut(METRICS.len());
        request_values(&outcome, &c, head);
        zero_values(&outcome, &c, tail);
    }
}

impl Endpoint {
    /// An LLM design's metrics (`metric_names`) into `out`, from what its
    /// replication left.
    pub(super) fn llm_values(&self, o: &Outcome, lo: &llm_engine::LlmOutcome, control: &mut Control, out: &mut [f64]) {
        let llm = self.llm.as_ref().expect("an LLM design");
        let c = control.summary(self.traffic.duration);
        let window = (self.traffic.duration - self.warmup).as_secs_f64();
        let (head, tail) = out.split_at_mut(METRICS.len());
        request_values(o, &c, head);
        let (llm_tail, zero_tail) = tail.split_at_mut(LLM_TAIL);
        let gpu_hours = c.instance_hours * f64::from(llm.replicas * llm.gpus_per_replica);
        llm_tail.copy_from_slice(&lo.values(o, window, c.cost_usd, gpu_hours));
        let (zero_tail, prefix_tail) =
            zero_tail.split_at_mut(zero_tail.len() - if self.uses_prefixes() { PREFIX_EXTRA.len() } else { 0 });
        zero_values(o, &c, zero_tail);
        if !prefix_tail.is_empty() {
            prefix_tail.copy_from_slice(&lo.prefix_values());
        }
    }
}

/// The metrics of `ZERO_EXTRA` into `out`, for a design that scales to zero
/// or is asynchronous (`out` is empty for any other).
fn zero_values(o: &Outcome, c: &CapacitySummary, out: &mut [f64]) {
    if out.is_empty() {
        return;
    }
    let wait_p99_s =
        if o.queue_wait_us.is_empty() { f64::NAN } else { o.queue_wait_us.value_at_quantile(0.99) as f64 / 1e6 };
    out.copy_from_slice(&[c.scale_from_zero, o.no_capacity, wait_p99_s, o.backlog_max]);
}

/// The metrics of `METRICS`, in order.
fn request_values(o: &Outcome, c: &CapacitySummary, out: &mut [f64]) {
    let quantile_ms = |q: f64| {
        if o.latency_us.is_empty() { f64::NAN } else { o.latency_us.value_at_quantile(q) as f64 / 1000.0 }
    };
    let over_arrivals = |q: f64| quantile_over_arrivals(&o.latency_us, o.served, o.requests, q, 1000.0);
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
        ratio(o.served, o.requests),
        over_arrivals(0.50),
        over_arrivals(0.95),
        over_arrivals(0.99),
    ];
    out.copy_from_slice(&values);
}
