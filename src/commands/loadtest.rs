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

use hdrhistogram::Histogram;
use rayon::prelude::*;
use serde::Serialize;

use crate::base::time::SimTime;
use crate::engine::{Runner, Streams};
use crate::experiment::Experiment;
use crate::experiment::loadtest::LoadtestSpec;
use crate::input::error::InputError;
use crate::output::{self, RunInfo};
use crate::scenarios::inference::design::{Endpoint, Fidelity, Mode, latency_histogram};
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
    /// The highest rate found to keep the threshold by the percentile's
    /// estimate, requests/s (0 if even the lightest load breaks it).
    pub max_rate: f64,
    /// A 95% interval for the rate at which the percentile crosses the
    /// threshold: the rates where the percentile's upper and lower
    /// confidence bounds cross it (each found to `precision`).
    pub rate_low: f64,
    pub rate_high: f64,
    /// The percentile at `max_rate`, seconds (at the lightest rate tried if
    /// none kept the threshold).
    pub latency_s: f64,
    /// USD per instance-hour (on-demand).
    pub price_per_hour: f64,
    /// Rates simulated.
    pub evaluations: usize,
}

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

/// Runs the search (or the closed loop) on every point, in order.
pub fn loadtest(
    experiment: &Experiment,
    runner: &Runner,
    settings: &Settings,
    progress: &dyn Fn(usize),
) -> Result<Results, InputError> {
    let spec = check(experiment)?;
    let designs = experiment.points.iter().map(|p| (p.index, p.design.downcast::<Endpoint>().expect("checked")));
    let results = if spec.closed_loop() {
        Results::Closed(
            designs
                .map(|(index, ep)| {
                    let rows = spec
                        .users
                        .iter()
                        .map(|&n| runner.install(|| closed_loop(ep, spec, n, settings, experiment.seed)))
                        .collect();
                    progress(index);
                    rows
                })
                .collect(),
        )
    } else {
        Results::Open(
            designs
                .map(|(index, ep)| {
                    let result = runner.install(|| search(ep, spec, settings, experiment.seed));
                    progress(index);
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
    let Pooled { latency, requests: sent, served, latency_sum_s, llm } = pooled(&ep, settings, seed);
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
        llm: llm.map(|lo| {
            let v = lo.values(window_s, 0.0);
            [v[7], v[0], v[1], v[2], v[3], v[4], v[5]]
        }),
    }
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

/// The percentile at one rate: its estimate and 95% confidence bounds, seconds.
#[derive(Clone, Copy, Debug)]
struct Measured {
    estimate: f64,
    low: f64,
    high: f64,
}

/// The rate search for one endpoint design.
pub fn search(design: &Endpoint, spec: &LoadtestSpec, settings: &Settings, seed: u64) -> LoadResult {
    let threshold = spec.threshold.expect("an open-loop test has a threshold").as_secs_f64();
    let q = spec.quantile();
    // Every rate is simulated once: the three searches share evaluations.
    let mut seen: Vec<(f64, Measured)> = Vec::new();
    let mut measure = |rate: f64| match seen.iter().find(|(r, _)| *r == rate) {
        Some((_, m)) => *m,
        None => {
            let m = percentile(design, rate, q, spec.token_metric(), settings, seed);
            seen.push((rate, m));
            m
        }
    };
    // An LLM design has no service time to size from: the search steps out
    // from one request per second.
    let capacity = if design.llm.is_some() { 2.0 } else { design.workers as f64 / design.mean_service_s() };
    let floor = capacity * 1e-6;
    let (max_rate, high) =
        crossing(&mut |r| measure(r).estimate <= threshold, 0.5 * capacity, settings.precision, floor);
    let start = if max_rate > 0.0 { max_rate } else { high };
    let (rate_low, _) = crossing(&mut |r| measure(r).high <= threshold, start, settings.precision, floor);
    let (_, rate_high) = crossing(&mut |r| measure(r).low <= threshold, start, settings.precision, floor);
    let latency_s = measure(if max_rate > 0.0 { max_rate } else { high }).estimate;
    LoadResult {
        max_rate,
        rate_low,
        rate_high,
        latency_s,
        price_per_hour: design.price_per_hour,
        evaluations: seen.len(),
    }
}

/// The rate where `keeps` turns false, with `keeps` true below it: steps out
/// from `start` by growing factors until the answer is bracketed, then
/// bisects until the bracket is narrower than `precision` of its low end.
/// Returns (highest rate kept, lowest rate broken); (0, r) if even `floor`
/// breaks it.
fn crossing(keeps: &mut dyn FnMut(f64) -> bool, start: f64, precision: f64, floor: f64) -> (f64, f64) {
    let mut step = 4.0 * precision;
    let (mut low, mut high);
    if keeps(start) {
        low = start;
        loop {
            high = low * (1.0 + step);
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
            if keeps(low) {
                break;
            }
            high = low;
            if low < floor {
                return (0.0, low);
            }
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
/// out count as infinitely slow.
/// `token`: "ttft" or "tpot" for an LLM design's percentile of those instead
/// (TPOT over the requests that have one).
fn percentile(design: &Endpoint, rate: f64, q: f64, token: Option<&str>, settings: &Settings, seed: u64) -> Measured {
    let ep = single_instance(design, rate, settings);
    let Pooled { latency, requests, served, llm, .. } = pooled(&ep, settings, seed);
    let lo = llm.as_ref();
    let (histogram, per_s, counted, served) = match token {
        Some("ttft") => (&lo.expect("checked: an LLM design").ttft_us, 1e6, requests, served),
        Some(_) => {
            let tpot = &lo.expect("checked: an LLM design").tpot_ns;
            (tpot, 1e9, tpot.len() as f64, tpot.len() as f64)
        }
        None => (&latency, 1e6, requests, served),
    };
    let at_rank = |rank: f64| {
        if served == 0.0 || rank > served {
            f64::INFINITY
        } else {
            histogram.value_at_quantile((rank / served).clamp(0.0, 1.0)) as f64 / per_s
        }
    };
    let half = 1.96 * (counted * q * (1.0 - q)).sqrt();
    Measured {
        estimate: at_rank(q * counted),
        low: at_rank(q * counted - half),
        high: at_rank(q * counted + half + 1.0),
    }
}

/// The counted requests of `settings.runs` runs of `ep`, in parallel.
struct Pooled {
    latency: Histogram<u64>,
    requests: f64,
    served: f64,
    latency_sum_s: f64,
    /// An LLM design's token counters, pooled.
    llm: Option<LlmOutcome>,
}

fn pooled(ep: &Endpoint, settings: &Settings, seed: u64) -> Pooled {
    let outcomes: Vec<_> = (0..settings.runs).into_par_iter().map(|r| ep.outcomes(&Streams::new(seed, r))).collect();
    let mut p = Pooled { latency: latency_histogram(), requests: 0.0, served: 0.0, latency_sum_s: 0.0, llm: None };
    for (o, lo) in &outcomes {
        p.latency.add(&o.latency_us).expect("same bounds");
        p.requests += o.requests;
        p.served += o.served;
        p.latency_sum_s += o.latency_sum_s;
        if let Some(lo) = lo {
            let all = p.llm.get_or_insert_with(LlmOutcome::new);
            all.ttft_us.add(&lo.ttft_us).expect("same bounds");
            all.tpot_ns.add(&lo.tpot_ns).expect("same bounds");
            all.output_tokens += lo.output_tokens;
        }
    }
    p
}

/// `loadtest.csv`'s columns after the point's swept keys.
pub const COLUMNS: [&str; 7] = [
    "max_invocations_per_min",
    "model_latency_ms",
    "cost_per_hour_usd",
    "cost_per_inference_usd",
    "cost_per_million_requests_usd",
    "max_invocations_per_min_low",
    "max_invocations_per_min_high",
];

impl LoadResult {
    /// The values of `COLUMNS`.
    pub fn row(&self) -> [f64; 7] {
        let per_min = self.max_rate * 60.0;
        let per_inference = self.price_per_hour / (self.max_rate * 3600.0);
        [
            per_min,
            self.latency_s * 1000.0,
            self.price_per_hour,
            per_inference,
            per_inference * 1e6,
            self.rate_low * 60.0,
            self.rate_high * 60.0,
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
        Results::Open(open) => (&COLUMNS, open.iter().enumerate().map(|(p, r)| (p, cells(&r.row()))).collect()),
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
        "{}: one instance per point, the highest steady rate with {} latency <= {}\n",
        experiment.name, spec.latency, threshold
    );
    let best = (0..results.len())
        .filter(|&p| results[p].max_rate > 0.0)
        .min_by(|&a, &b| results[a].row()[4].total_cmp(&results[b].row()[4]));
    for (p, r) in results.iter().enumerate() {
        let row = r.row();
        let label = crate::commands::recommend::report::point_label(experiment, p);
        out += &format!(
            "  point {p}{}: {:.0} invocations/min per instance ({} {:.1} ms), ${:.3}/h, ${:.4} per million requests{}{}\n",
            if label.is_empty() { String::new() } else { format!(" ({label})") },
            row[0],
            spec.latency,
            row[1],
            row[2],
            row[4],
            if best == Some(p) { "  <- cheapest per request" } else { "" },
            step_note(experiment, p),
        );
    }
    out
}

/// The closed-loop table: per point, a line per user count.
/// "; step times: ..." for an LLM design (SPEC 2.10), else nothing.
fn step_note(experiment: &Experiment, p: usize) -> String {
    experiment.step_times_note(p).map_or(String::new(), |n| format!("  [{n}]"))
}

fn render_closed(experiment: &Experiment, results: &[Vec<ClosedResult>]) -> String {
    let mut out = format!("{}: one instance per point, users holding one request each in flight\n", experiment.name);
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
        let r = runner.install(|| search(ep, spec, &Settings::default(), 1));
        let exact = 100.0 - 100f64.ln() / 0.1;
        assert!((r.max_rate / exact - 1.0).abs() < 0.01, "{r:?} against {exact}");
        assert!(r.rate_low <= r.max_rate && r.max_rate <= r.rate_high, "{r:?}");
        assert!(r.rate_low * 0.995 <= exact && exact <= r.rate_high * 1.005, "{r:?}");
    }
}
