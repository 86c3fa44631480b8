//! `spotsim loadtest`: the highest steady request rate one instance sustains
//! while a latency percentile stays under a threshold (SPEC 2.7;
//! docs/recommend.md, "Load tests").
//!
//! Per point, the endpoint becomes one on-demand instance of its type under
//! constant Poisson traffic, simulated request by request (no autoscaling,
//! no spot, no zones, no queue limit). The rate is bracketed by steps of
//! growing size from half the nominal capacity (workers / mean service time),
//! then bisected until the bracket is narrower than `Settings::precision` of
//! its lower end; the same search on the percentile's 95% confidence bounds
//! gives an interval for the rate.
//!
//! Every evaluation uses the same random numbers: a run at rate λ has
//! `warmup + requests` arrivals over (warmup + requests)/λ seconds, and
//! arrivals come from one Exp(1) draw each (inversion of the integrated rate),
//! so the runs at every rate see the same arrivals, rescaled in time, and the
//! same service times. FIFO waiting times only grow as arrivals are pushed
//! together, so the percentile rises with the rate on every sample path and
//! bisection cannot be misled by noise between evaluations.
//!
//! With `users` (SPEC 2.9) the test is a closed loop instead: per point and
//! user count, the one instance holds that many requests in flight, a new one
//! as soon as one finishes (`ArrivalFeed`'s closed loop), for the traffic's
//! duration after a warm-up; throughput and latency percentiles are measured.

use std::sync::atomic::{AtomicU64, Ordering};

use hdrhistogram::Histogram;
use rayon::prelude::*;
use serde::Serialize;

use crate::base::time::SimTime;
use crate::engine::{Runner, Streams};
use crate::experiment::Experiment;
use crate::experiment::loadtest::LoadtestSpec;
use crate::input::error::InputError;
use crate::output::{self, RunInfo};
use crate::scenarios::inference::design::{Endpoint, Fidelity, Mode, latency_histogram, value_at_rank};
use crate::scenarios::inference::llm_engine::LlmOutcome;
use crate::scenarios::inference::traffic::Traffic;
use crate::spot::Market;

/// How each search runs.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Settings {
    /// Independent runs per evaluated rate, in parallel; their latencies are pooled.
    pub runs: u64,
    /// Arrivals per run whose latency counts.
    pub requests: u64,
    /// Arrivals per run before those, left out: the queue starts empty.
    pub warmup: u64,
    /// The search stops when (high − low) ≤ precision × low.
    pub precision: f64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { runs: 4, requests: 50_000, warmup: 5_000, precision: 0.005 }
    }
}

/// The answer for one point.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LoadResult {
    /// The highest rate found at which the instance keeps up (`keeps_up`)
    /// and the percentile's estimate keeps the threshold, requests/s; 0 when
    /// even a request alone breaks it.
    pub max_rate: f64,
    /// A 95% interval for that rate: where the percentile's upper and lower
    /// confidence bounds cross the threshold (each found to `precision`,
    /// from the same evaluations), so `rate_low <= max_rate <= rate_high`.
    pub rate_low: f64,
    pub rate_high: f64,
    /// The percentile at `max_rate`, seconds (alone if no rate keeps it).
    pub latency_s: f64,
    /// The percentile with one request at a time (the search's floor).
    pub alone_s: f64,
    /// The highest rate the instance keeps up with, whatever its latency:
    /// where it saturates (NaN when no rate keeps the threshold).
    pub saturation_rate: f64,
    /// The search met its ceiling (`CEILING` × the starting guess) before
    /// the threshold or the instance's throughput did.
    pub at_ceiling: bool,
    /// USD per instance-hour (on-demand).
    pub price_per_hour: f64,
    /// Rates simulated.
    pub evaluations: usize,
    /// An LLM design's `LLM_ONLY_CLOSED_COLUMNS` at `max_rate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<[f64; 7]>,
}

/// A rate passes only if the instance keeps up with it: this share of the
/// counted arrivals is served by the time the arrivals end (the backlog
/// does not grow, and served throughput matches the offered rate; SPEC 3's
/// default `served_frac >= 0.99`).
pub const KEEPS_UP: f64 = 0.99;

/// The search's ceiling, over its starting guess; its floor is the rate at
/// which requests come one at a time (`ALONE` of the starting guess).
const CEILING: f64 = 1e4;
const ALONE: f64 = 1e-4;
/// Requests of each run at the floor: enough for a percentile alone.
const ALONE_REQUESTS: u64 = 1000;

/// Rates one open-loop search evaluates, for the progress bar's length
/// (each point tops up to it when its search ends).
pub const EVALUATIONS_PER_POINT: u64 = 40;

/// Refuses what a load test cannot run: a training experiment, serverless
/// points, no `[loadtest]` table.
pub fn check(experiment: &Experiment) -> Result<&LoadtestSpec, InputError> {
    let at = |table: &str| experiment.origin_of(table);
    for p in &experiment.points {
        let Some(ep) = p.design.downcast::<Endpoint>() else {
            return Err(InputError::new(
                &at("loadtest"),
                None,
                "`loadtest` measures an inference endpoint's instance; this is not an [inference] experiment",
            )
            .with_hint(Some("use `spotsim recommend` with an [objective] for training designs".into())));
        };
        if ep.mode == Mode::Serverless {
            return Err(InputError::new(
                &at("inference"),
                Some("inference.mode"),
                format!("`loadtest` measures one instance, but point {} is serverless", p.index),
            )
            .with_hint(Some("load-test the endpoint designs only: mode = \"endpoint\"".into())));
        }
    }
    if let Some(spec) = &experiment.loadtest
        && let Some(metric) = spec.token_metric()
        && let Some(p) =
            experiment.points.iter().find(|p| p.design.downcast::<Endpoint>().is_some_and(|e| e.llm.is_none()))
    {
        return Err(InputError::new(
            &at("loadtest"),
            Some("loadtest.latency"),
            format!(
                "`{}` is a percentile of the {metric} of an LLM design, but point {} is not one",
                spec.latency, p.index
            ),
        )
        .with_hint(Some("use engine = \"llm\", or an end-to-end percentile such as \"p99\"".into())));
    }
    experiment.loadtest.as_ref().ok_or_else(|| {
        InputError::new(
            &experiment.origin_of("loadtest"),
            Some("loadtest"),
            "`loadtest` needs a [loadtest] table: the latency percentile and its threshold",
        )
        .with_hint(Some("add [loadtest] with latency = \"p99\" and threshold = \"100ms\"".into()))
    })
}

/// One closed-loop measurement: a point at one user count.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClosedResult {
    pub users: u32,
    /// Requests sent in the measured window, per second.
    pub requests_per_s: f64,
    /// Latencies of those requests, seconds.
    pub latency_mean_s: f64,
    pub latency_p50_s: f64,
    pub latency_p90_s: f64,
    pub latency_p99_s: f64,
    pub price_per_hour: f64,
    /// An LLM design's `LLM_ONLY_CLOSED_COLUMNS`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub llm: Option<[f64; 7]>,
}

/// What a load test found: per point, the open-loop answer or the
/// closed-loop rows (one per user count).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Results {
    Open(Vec<LoadResult>),
    Closed(Vec<Vec<ClosedResult>>),
}

/// The units of work `loadtest` reports to its progress callback: a rate
/// evaluated (open loop, `EVALUATIONS_PER_POINT` a point) or a user count
/// run (closed loop).
pub fn work_units(experiment: &Experiment, spec: &LoadtestSpec) -> u64 {
    let per_point = if spec.closed_loop() { spec.users.len() as u64 } else { EVALUATIONS_PER_POINT };
    experiment.points.len() as u64 * per_point
}

/// Runs the search (or the closed loop) on every point, in order;
/// `progress` hears of each unit of `work_units` done.
pub fn loadtest(
    experiment: &Experiment,
    runner: &Runner,
    settings: &Settings,
    progress: &(dyn Fn(u64) + Sync),
) -> Result<Results, InputError> {
    let spec = check(experiment)?;
    let designs = experiment.points.iter().map(|p| (p.index, p.design.downcast::<Endpoint>().expect("checked")));
    let results = if spec.closed_loop() {
        Results::Closed(
            designs
                .map(|(_, ep)| {
                    spec.users
                        .iter()
                        .map(|&n| {
                            let row = runner.install(|| closed_loop(ep, spec, n, settings, experiment.seed));
                            progress(1);
                            row
                        })
                        .collect()
                })
                .collect(),
        )
    } else {
        Results::Open(
            designs
                .map(|(_, ep)| {
                    let done = AtomicU64::new(0);
                    let tick = || {
                        if done.fetch_add(1, Ordering::Relaxed) < EVALUATIONS_PER_POINT {
                            progress(1);
                        }
                    };
                    let result = runner.install(|| search(ep, spec, settings, experiment.seed, &tick));
                    progress(EVALUATIONS_PER_POINT.saturating_sub(done.load(Ordering::Relaxed)));
                    result
                })
                .collect(),
        )
    };
    Ok(results)
}

/// The design as one instance holding `users` requests in flight for the
/// traffic's duration after the warm-up (`[loadtest] warmup`, by default a
/// tenth of the duration), `settings.runs` runs pooled.
pub fn closed_loop(design: &Endpoint, spec: &LoadtestSpec, users: u32, settings: &Settings, seed: u64) -> ClosedResult {
    let measured = design.traffic.duration;
    let warmup = spec.warmup.unwrap_or(SimTime::from_nanos(measured.as_nanos() / 10));
    let mut ep = single_instance(design, 1.0, settings);
    ep.users = Some(users);
    ep.warmup = warmup;
    ep.traffic.duration = warmup + measured;
    let Pooled { latency, requests: sent, served, latency_sum_s, llm, .. } = pooled(&ep, settings, seed);
    let window_s = settings.runs as f64 * measured.as_secs_f64();
    let quantile = |q: f64| if latency.is_empty() { f64::NAN } else { latency.value_at_quantile(q) as f64 / 1e6 };
    ClosedResult {
        users,
        requests_per_s: sent / (settings.runs as f64 * measured.as_secs_f64()),
        latency_mean_s: latency_sum_s / served,
        latency_p50_s: quantile(0.50),
        latency_p90_s: quantile(0.90),
        latency_p99_s: quantile(0.99),
        price_per_hour: design.price_per_hour,
        llm: llm.map(|lo| llm_columns(&lo, window_s)),
    }
}

/// `LLM_ONLY_CLOSED_COLUMNS` of pooled runs measured over `window_s`.
fn llm_columns(lo: &LlmOutcome, window_s: f64) -> [f64; 7] {
    let q = |h: &Histogram<u64>, q: f64, per_ms: f64| {
        if h.is_empty() { f64::NAN } else { h.value_at_quantile(q) as f64 / per_ms }
    };
    let (ttft, tpot) = (&lo.ttft_us, &lo.tpot_ns);
    [
        lo.output_tokens / window_s,
        q(ttft, 0.50, 1e3),
        q(ttft, 0.90, 1e3),
        q(ttft, 0.99, 1e3),
        q(tpot, 0.50, 1e6),
        q(tpot, 0.90, 1e6),
        q(tpot, 0.99, 1e6),
    ]
}

/// `loadtest.csv`'s closed-loop columns for an LLM engine, after `CLOSED_COLUMNS`.
pub const LLM_ONLY_CLOSED_COLUMNS: [&str; 7] =
    ["output_tokens_per_s", "ttft_p50_ms", "ttft_p90_ms", "ttft_p99_ms", "tpot_p50_ms", "tpot_p90_ms", "tpot_p99_ms"];

/// `loadtest.csv`'s columns after the swept keys, for a closed loop.
pub const CLOSED_COLUMNS: [&str; 7] = [
    "users",
    "requests_per_s",
    "latency_mean_ms",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "cost_per_million_requests_usd",
];

/// `CLOSED_COLUMNS` then `LLM_ONLY_CLOSED_COLUMNS`.
const CLOSED_COLUMNS_WITH_LLM: [&str; 14] = [
    CLOSED_COLUMNS[0],
    CLOSED_COLUMNS[1],
    CLOSED_COLUMNS[2],
    CLOSED_COLUMNS[3],
    CLOSED_COLUMNS[4],
    CLOSED_COLUMNS[5],
    CLOSED_COLUMNS[6],
    LLM_ONLY_CLOSED_COLUMNS[0],
    LLM_ONLY_CLOSED_COLUMNS[1],
    LLM_ONLY_CLOSED_COLUMNS[2],
    LLM_ONLY_CLOSED_COLUMNS[3],
    LLM_ONLY_CLOSED_COLUMNS[4],
    LLM_ONLY_CLOSED_COLUMNS[5],
    LLM_ONLY_CLOSED_COLUMNS[6],
];

/// `COLUMNS` then `LLM_ONLY_CLOSED_COLUMNS`.
static OPEN_COLUMNS_WITH_LLM: std::sync::LazyLock<Vec<&'static str>> =
    std::sync::LazyLock::new(|| [COLUMNS.as_slice(), &LLM_ONLY_CLOSED_COLUMNS].concat());

impl ClosedResult {
    /// The values of `CLOSED_COLUMNS`.
    pub fn row(&self) -> [f64; 7] {
        [
            self.users as f64,
            self.requests_per_s,
            self.latency_mean_s * 1000.0,
            self.latency_p50_s * 1000.0,
            self.latency_p90_s * 1000.0,
            self.latency_p99_s * 1000.0,
            self.price_per_hour / (self.requests_per_s * 3600.0) * 1e6,
        ]
    }
}

/// What one rate's runs showed: the percentile's estimate and 95%
/// confidence bounds (seconds), whether the instance kept up, and an LLM
/// design's columns.
#[derive(Clone, Copy, Debug)]
struct Measured {
    estimate: f64,
    low: f64,
    high: f64,
    keeps_up: bool,
    llm: Option<[f64; 7]>,
}

/// The rate search for one endpoint design; `tick` hears of every rate
/// simulated.
pub fn search(
    design: &Endpoint,
    spec: &LoadtestSpec,
    settings: &Settings,
    seed: u64,
    tick: &(dyn Fn() + Sync),
) -> LoadResult {
    let threshold = spec.threshold.expect("an open-loop test has a threshold").as_secs_f64();
    let q = spec.quantile();
    // An LLM design has no service time to size from: the search steps out
    // from one request per second.
    let capacity = if design.llm.is_some() { 2.0 } else { design.workers as f64 / design.mean_service_s() };
    let (floor, ceiling) = (ALONE * capacity, CEILING * capacity);
    // Alone first: if a request by itself misses the threshold, no rate
    // meets it and the search ends here.
    let lone = Settings { requests: ALONE_REQUESTS.min(settings.requests), warmup: 0, ..settings.clone() };
    let alone = percentile(design, floor, q, spec.token_metric(), &lone, seed);
    tick();
    let mut result = LoadResult {
        max_rate: 0.0,
        rate_low: 0.0,
        rate_high: 0.0,
        latency_s: alone.estimate,
        alone_s: alone.estimate,
        saturation_rate: f64::NAN,
        at_ceiling: false,
        price_per_hour: design.price_per_hour,
        evaluations: 1,
        llm: alone.llm,
    };
    // NaN (nothing served alone) fails too.
    if alone.estimate.partial_cmp(&threshold).is_none_or(|o| o.is_gt()) {
        return result;
    }
    // Every rate is simulated once: the searches share evaluations.
    let mut seen: Vec<(f64, Measured)> = Vec::new();
    let mut measure = |rate: f64| match seen.iter().find(|(r, _)| *r == rate) {
        Some((_, m)) => *m,
        None => {
            let m = percentile(design, rate, q, spec.token_metric(), settings, seed);
            tick();
            seen.push((rate, m));
            m
        }
    };
    let bounds = (floor, ceiling);
    let (max_rate, _) = crossing(
        &mut |r| measure(r).keeps_up && measure(r).estimate <= threshold,
        0.5 * capacity,
        settings.precision,
        bounds,
    );
    // The interval's ends start from the estimate, so they bracket it.
    let rate_low = if measure(max_rate).high <= threshold {
        max_rate
    } else {
        crossing(&mut |r| measure(r).keeps_up && measure(r).high <= threshold, max_rate, settings.precision, bounds).0
    };
    let (rate_high, _) =
        crossing(&mut |r| measure(r).keeps_up && measure(r).low <= threshold, max_rate, settings.precision, bounds);
    let (saturation_rate, _) = crossing(&mut |r| measure(r).keeps_up, rate_high, settings.precision, bounds);
    let at = measure(max_rate);
    result.max_rate = max_rate;
    result.rate_low = rate_low;
    result.rate_high = rate_high;
    result.latency_s = at.estimate;
    result.saturation_rate = saturation_rate;
    result.at_ceiling = saturation_rate >= ceiling;
    result.llm = at.llm;
    result.evaluations = 1 + seen.len();
    result
}

/// The rate where `keeps` turns false, with `keeps` true below it: steps out
/// from `start` by growing factors until the answer is bracketed, then
/// bisects until the bracket is narrower than `precision` of its low end.
/// Returns (highest rate kept, lowest rate broken), within `(floor,
/// ceiling)`: the floor itself (known to keep) if every rate above it
/// breaks, and the ceiling (with an infinite high end) if none up to it does.
fn crossing(
    keeps: &mut dyn FnMut(f64) -> bool,
    start: f64,
    precision: f64,
    (floor, ceiling): (f64, f64),
) -> (f64, f64) {
    let mut step = 4.0 * precision;
    let (mut low, mut high);
    if keeps(start) {
        low = start;
        loop {
            high = (low * (1.0 + step)).min(ceiling);
            if high <= low {
                return (ceiling, f64::INFINITY);
            }
            if !keeps(high) {
                break;
            }
            low = high;
            step *= 2.0;
        }
    } else {
        high = start;
        loop {
            low = high / (1.0 + step);
            if low <= floor {
                return (floor, high);
            }
            if keeps(low) {
                break;
            }
            high = low;
            step *= 2.0;
        }
    }
    while high - low > precision * low {
        let mid = 0.5 * (low + high);
        if keeps(mid) {
            low = mid;
        } else {
            high = mid;
        }
    }
    (low, high)
}

/// The design as one instance under constant Poisson load `rate` (requests/s)
/// for `warmup + requests` arrivals, the first `warmup` left out.
pub fn single_instance(design: &Endpoint, rate: f64, settings: &Settings) -> Endpoint {
    let seconds = |arrivals: u64| SimTime::from_secs_f64(arrivals as f64 / rate);
    let duration = seconds(settings.warmup + settings.requests);
    Endpoint {
        mode: Mode::Endpoint,
        serverless: None,
        // Every request waits and every latency is measured: the percentile
        // must not hide refused or abandoned requests. An hour is the
        // latency histogram's top.
        queue_limit: 100_000_000,
        timeout: SimTime::from_hours(1),
        initial_instances: 1,
        fidelity: Fidelity::Request,
        warmup: seconds(settings.warmup),
        autoscaling: None,
        market: Market::OnDemand,
        on_demand_base: 0,
        spot: None,
        zones: None,
        service_per_unit: None,
        traffic: Traffic { tokens: design.traffic.tokens.clone(), ..Traffic::constant(rate, duration) },
        ..design.clone()
    }
}

/// The q-quantile of the latency of the counted requests over `settings.runs`
/// runs at `rate`, with a 95% distribution-free interval (the order
/// statistics at ranks nq ± 1.96√(nq(1 − q))); requests refused or timed
/// out count as infinitely slow (SPEC 3), and whether the instance kept up.
/// `token`: "ttft" or "tpot" for an LLM design's percentile of those instead
/// (TPOT over the arrivals with at least two output tokens).
fn percentile(design: &Endpoint, rate: f64, q: f64, token: Option<&str>, settings: &Settings, seed: u64) -> Measured {
    let ep = single_instance(design, rate, settings);
    let p = pooled(&ep, settings, seed);
    let lo = p.llm.as_ref();
    let (histogram, per_s, counted) = match token {
        Some("ttft") => (&lo.expect("checked: an LLM design").ttft_us, 1e6, p.requests),
        Some(_) => {
            let lo = lo.expect("checked: an LLM design");
            (&lo.tpot_ns, 1e9, lo.tpot_arrivals)
        }
        None => (&p.latency, 1e6, p.requests),
    };
    let served = histogram.len() as f64;
    let at_rank = |rank: f64| value_at_rank(histogram, served, rank, per_s);
    let half = 1.96 * (counted * q * (1.0 - q)).sqrt();
    let window_s = settings.runs as f64 * (ep.traffic.duration - ep.warmup).as_secs_f64();
    Measured {
        estimate: at_rank(q * counted),
        low: at_rank(q * counted - half),
        high: at_rank(q * counted + half + 1.0),
        keeps_up: p.served - p.served_after_end >= KEEPS_UP * p.requests,
        llm: lo.map(|lo| llm_columns(lo, window_s)),
    }
}

/// The counted requests of `settings.runs` runs of `ep`, in parallel.
struct Pooled {
    latency: Histogram<u64>,
    requests: f64,
    served: f64,
    served_after_end: f64,
    latency_sum_s: f64,
    /// An LLM design's token counters, pooled.
    llm: Option<LlmOutcome>,
}

fn pooled(ep: &Endpoint, settings: &Settings, seed: u64) -> Pooled {
    let outcomes: Vec<_> = (0..settings.runs).into_par_iter().map(|r| ep.outcomes(&Streams::new(seed, r))).collect();
    let mut p = Pooled {
        latency: latency_histogram(),
        requests: 0.0,
        served: 0.0,
        served_after_end: 0.0,
        latency_sum_s: 0.0,
        llm: None,
    };
    for (o, lo) in &outcomes {
        p.latency.add(&o.latency_us).expect("same bounds");
        p.requests += o.requests;
        p.served += o.served;
        p.served_after_end += o.served_after_end;
        p.latency_sum_s += o.latency_sum_s;
        if let Some(lo) = lo {
            p.llm.get_or_insert_with(LlmOutcome::new).add(lo);
        }
    }
    p
}

/// `loadtest.csv`'s columns after the point's swept keys (an LLM design's
/// `LLM_ONLY_CLOSED_COLUMNS` at the rate found follow). With no rate that
/// keeps the threshold, the rate and cost columns are NaN and
/// `latency_alone_ms` says why.
pub const COLUMNS: [&str; 9] = [
    "max_invocations_per_min",
    "model_latency_ms",
    "cost_per_hour_usd",
    "cost_per_inference_usd",
    "cost_per_million_requests_usd",
    "max_invocations_per_min_low",
    "max_invocations_per_min_high",
    "latency_alone_ms",
    "saturation_invocations_per_min",
];

impl LoadResult {
    /// The values of `COLUMNS`.
    pub fn row(&self) -> [f64; 9] {
        let rate = |r: f64| if self.max_rate > 0.0 { r * 60.0 } else { f64::NAN };
        let per_inference = if self.max_rate > 0.0 { self.price_per_hour / (self.max_rate * 3600.0) } else { f64::NAN };
        [
            rate(self.max_rate),
            self.latency_s * 1000.0,
            self.price_per_hour,
            per_inference,
            per_inference * 1e6,
            rate(self.rate_low),
            rate(self.rate_high),
            self.alone_s * 1000.0,
            self.saturation_rate * 60.0,
        ]
    }
}

/// The result files: `loadtest.csv` and `manifest.json`.
pub fn files(
    experiment: &Experiment,
    results: &Results,
    settings: &Settings,
    info: &RunInfo,
) -> Vec<(&'static str, Vec<u8>)> {
    #[derive(Serialize)]
    struct Procedure<'a> {
        command: &'static str,
        settings: &'a Settings,
        results: &'a Results,
    }
    let cells = |row: &[f64]| row.iter().map(|&x| output::cell(x)).collect::<Vec<_>>();
    let (columns, rows): (&[&str], Vec<(usize, Vec<String>)>) = match results {
        Results::Open(open) => {
            let llm = open.iter().any(|r| r.llm.is_some());
            let row = |r: &LoadResult| {
                let mut row = r.row().to_vec();
                if llm {
                    row.extend(r.llm.unwrap_or([f64::NAN; 7]));
                }
                cells(&row)
            };
            let columns: &[&str] = if llm { &OPEN_COLUMNS_WITH_LLM } else { &COLUMNS };
            (columns, open.iter().enumerate().map(|(p, r)| (p, row(r))).collect())
        }
        Results::Closed(closed) => {
            // LLM points add their token columns (NaN for the others).
            let llm = closed.iter().flatten().any(|r| r.llm.is_some());
            let row = |r: &ClosedResult| {
                let mut row = r.row().to_vec();
                if llm {
                    row.extend(r.llm.unwrap_or([f64::NAN; 7]));
                }
                cells(&row)
            };
            let columns: &[&str] = if llm { &CLOSED_COLUMNS_WITH_LLM } else { &CLOSED_COLUMNS };
            (columns, closed.iter().enumerate().flat_map(|(p, rs)| rs.iter().map(move |r| (p, row(r)))).collect())
        }
    };
    let columns: Vec<String> = columns.iter().map(|c| c.to_string()).collect();
    let procedure = Procedure { command: "loadtest", settings, results };
    vec![
        ("loadtest.csv", output::point_table_csv(&experiment.layout(), &columns, &rows)),
        ("manifest.json", output::manifest_json_with(&experiment.subject(), info, Some(&procedure))),
    ]
}

/// The table for the terminal, cheapest per million requests first marked.
pub fn render(experiment: &Experiment, results: &Results) -> String {
    let spec = experiment.loadtest.as_ref().expect("checked");
    let results = match results {
        Results::Open(open) => open,
        Results::Closed(closed) => return render_closed(experiment, closed),
    };
    let threshold = spec.threshold.expect("an open-loop test has a threshold");
    let mut out = format!(
        "{}: one instance per point, the highest steady rate with {} latency <= {} over all counted arrivals, \
         and the instance keeping up (serving {}% of them by the end of the test)\n",
        experiment.name,
        spec.latency,
        threshold,
        KEEPS_UP * 100.0
    );
    let best = (0..results.len())
        .filter(|&p| results[p].max_rate > 0.0)
        .min_by(|&a, &b| results[a].row()[4].total_cmp(&results[b].row()[4]));
    for (p, r) in results.iter().enumerate() {
        let row = r.row();
        let label = crate::commands::recommend::report::point_label(experiment, p);
        let label = if label.is_empty() { String::new() } else { format!(" ({label})") };
        let ms = |x: f64| if x < 10.0 { format!("{x:.1} ms") } else { format!("{x:.0} ms") };
        if r.max_rate == 0.0 {
            let on = experiment.points[p].design.downcast::<Endpoint>().and_then(|e| e.instance.clone());
            out += &format!(
                "  point {p}{label}: no rate meets {} <= {threshold}{}: alone, a request has {} = {}\n",
                spec.latency,
                on.map_or(String::new(), |i| format!(" on {i}")),
                spec.latency,
                ms(row[7]),
            );
            continue;
        }
        out += &format!(
            "  point {p}{label}: {:.0} invocations/min per instance ({} {}), saturates at {:.0}/min{}, ${:.3}/h, ${:.4} per million requests{}{}\n",
            row[0],
            spec.latency,
            ms(row[1]),
            row[8],
            if r.at_ceiling { " (the search's ceiling: it did not saturate)" } else { "" },
            row[2],
            row[4],
            if best == Some(p) { "  <- cheapest per request" } else { "" },
            step_note(experiment, p),
        );
    }
    out
}

/// "; step times: ..." for an LLM design (SPEC 2.10), else nothing.
fn step_note(experiment: &Experiment, p: usize) -> String {
    experiment.step_times_note(p).map_or(String::new(), |n| format!("  [{n}]"))
}

/// The closed-loop table: per point, a line per user count.
fn render_closed(experiment: &Experiment, results: &[Vec<ClosedResult>]) -> String {
    let sessions = experiment
        .points
        .first()
        .and_then(|p| p.design.downcast::<crate::scenarios::inference::design::Endpoint>())
        .is_some_and(|e| e.uses_sessions());
    let each = if sessions { "one session each, a turn in flight or thinking" } else { "one request each in flight" };
    let mut out = format!("{}: one instance per point, users holding {each}\n", experiment.name);
    for (p, rows) in results.iter().enumerate() {
        let label = crate::commands::recommend::report::point_label(experiment, p);
        out += &format!(
            "  point {p}{}:{}\n",
            if label.is_empty() { String::new() } else { format!(" ({label})") },
            step_note(experiment, p)
        );
        for r in rows {
            let row = r.row();
            let tokens = r.llm.map_or(String::new(), |l| {
                format!(", {:.0} output tokens/s, TTFT p50 {:.0} ms, TPOT p50 {:.1} ms", l[0], l[1], l[4])
            });
            out += &format!(
                "    {:>5} users: {:.2} requests/s, latency p50 {:.1} ms, p99 {:.1} ms{tokens}, ${:.4} per million requests\n",
                r.users, row[1], row[3], row[5], row[6]
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::test_files::with_files;

    const MM1: &str = "[inference]\nprice_per_hour = 0.2\nworkers = 1\n\
        service_time = { dist = \"exponential\", mean = \"10ms\" }\n\
        [traffic]\nsynthetic = { mean_rps = 1 }\nduration = \"1h\"\n\
        [loadtest]\nlatency = \"p99\"\nthreshold = \"100ms\"\n";

    /// M/M/1: the sojourn time is exponential with rate μ − λ, so
    /// p99 ≤ T exactly when λ ≤ μ − ln(100)/T.
    #[test]
    fn mm1_p99_rate_is_mu_minus_ln100_over_threshold() {
        let dir = with_files(&[("e.toml", MM1)]);
        let e = crate::experiment::load(&dir.path().join("e.toml"), &[]).unwrap();
        let ep = e.points[0].design.downcast::<Endpoint>().unwrap();
        let spec = check(&e).unwrap();
        let runner = Runner::new(2).unwrap();
        let r = runner.install(|| search(ep, spec, &Settings::default(), 1, &|| {}));
        let exact = 100.0 - 100f64.ln() / 0.1;
        assert!((r.max_rate / exact - 1.0).abs() < 0.01, "{r:?} against {exact}");
        assert!(r.rate_low <= r.max_rate && r.max_rate <= r.rate_high, "{r:?}");
        assert!(r.rate_low * 0.995 <= exact && exact <= r.rate_high * 1.005, "{r:?}");
    }
}
