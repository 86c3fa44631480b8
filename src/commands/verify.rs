//! Closed-form results the simulator is held to, used by `spotsim verify`
//! and by the test suite. `docs/training-model.md` derives the formulas.

use std::fmt::Write as _;

use crate::base::dist::Dist;
use crate::base::stats::Summary;
use crate::base::time::SimTime;
use crate::engine::{Model, Runner};
use crate::scenarios::inference::design::Serverless;
use crate::scenarios::inference::design::{Endpoint, Fidelity, METRICS as ENDPOINT_METRICS, Mode};
use crate::scenarios::inference::llm::{FitMs, Llm, Scheduler, StepOrigin, StepSource, StepTime};
use crate::scenarios::inference::llm_engine::simulate as simulate_llm;
use crate::scenarios::inference::queueing::{erlang_b, erlang_c, mm_n_mean_sojourn};
use crate::scenarios::inference::traffic::Replay;
use crate::scenarios::inference::traffic::prefix::{Prompt, Segment};
use crate::scenarios::inference::traffic::tokens::{CountDist, Tokens};
use crate::scenarios::inference::traffic::{Traffic, TrafficSource};
use crate::scenarios::training::llm::Recovery;
use crate::scenarios::training::{Checkpointing, IntervalRule, METRICS, TrainingJob, optimal_interval_s};
use crate::spot::Interruptions;
use crate::spot::{Market, SpotTerms};
use crate::zones::{Outage, SpotReclaim, Zones, k_of_n_availability, zone_unavailability};

/// Checks pass while |z| stays under this.
pub const Z_LIMIT: f64 = 4.0;

/// One comparison of a simulated mean with its exact value.
#[derive(Clone, Debug)]
pub struct Check {
    pub name: String,
    pub simulated: f64,
    pub sem: f64,
    pub exact: f64,
}

impl Check {
    pub fn z(&self) -> f64 {
        if self.sem > 0.0 {
            (self.simulated - self.exact) / self.sem
        } else if (self.simulated - self.exact).abs() <= 1e-9 * self.exact.abs().max(1.0) {
            0.0
        } else {
            f64::INFINITY
        }
    }
    pub fn passed(&self) -> bool {
        self.z().abs() < Z_LIMIT
    }
}

/// Exact expectations for a checkpointed job under Poisson interruptions.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Expected {
    pub wall_time_s: f64,
    pub interruptions: f64,
    pub billed_time_s: f64,
}

/// The checkpoint/restart closed form. Needs constant startup, write and
/// restore times, Poisson interruptions (or none), no notice checkpoints, no
/// limits and no fallback; `None` otherwise. With rate λ (all nodes), mean
/// capacity wait D, startup S, restore R' and R = S + R', segments x_i =
/// τ_i + C:
///
/// ```text
///   E[N] = e^{λR} [ (1 − e^{−λS}) + Σ_i (e^{λ x_i} − 1) ]
///   E[T] = D + (1/λ + D) E[N],   E[billed] = E[N] / λ.
/// ```
pub fn expected(job: &TrainingJob) -> Option<Expected> {
    let startup = job.startup.as_constant()?.as_secs_f64();
    let write = job.checkpoint.write.as_constant()?.as_secs_f64();
    let restore = job.checkpoint.restore.as_constant()?.as_secs_f64();
    if job.max_runtime.is_some() || job.max_wait.is_some() {
        return None;
    }
    let tau = job.checkpoint.interval.as_secs_f64();
    let work = job.work.as_secs_f64();
    let full = job.work.div_floor(job.checkpoint.interval) as f64;
    let rest = work - full * tau;
    // Zone-wide reclaims take the group at once: one zone's hazard.
    let zone_reclaim = job.zones.as_ref().is_some_and(|z| z.spot_reclaim == SpotReclaim::Zone);
    let group = if zone_reclaim { 1.0 } else { job.instances as f64 };
    let (rate, wait) = match (&job.market, &job.spot, &job.zones) {
        (Market::Spot, Some(spot), zones) => {
            if job.checkpoint.on_notice
                || spot.fallback_after_wait.is_some()
                || zones.as_ref().is_some_and(|z| z.outage.is_some())
            {
                return None;
            }
            let Interruptions::Poisson { mtbf } = spot.interruptions else {
                return None;
            };
            (group / mtbf.as_secs_f64(), spot.capacity_wait.mean_secs())
        }
        // On-demand in one zone whose up-times are exponential: an outage is
        // an interruption, and the wait is the rest of the outage (all of it,
        // since the outage has just begun).
        (_, _, Some(zones)) => match &zones.outage {
            Some(outage) if zones.count == 1 => (1.0 / outage.mtbf.as_secs_f64(), outage.duration.mean_secs()),
            Some(_) => return None,
            None => (0.0, 0.0),
        },
        _ => (0.0, 0.0),
    };
    // On-demand jobs wait only for a zone, never for capacity, at the first launch.
    let first_wait = if job.market == Market::Spot { wait } else { 0.0 };
    // `[training.llm]`: hardware failures add their rate; a node replaced
    // without a capacity wait makes the mean wait per interruption the
    // reclaims' share of D. Spares and async writes have no closed form here.
    let (rate, wait, final_write) = match &job.llm {
        None => (rate, wait, 0.0),
        Some(llm) => {
            let failures = llm.failure_rate_per_s();
            let background = job.background_write().map_or(0.0, |b| b.as_secs_f64());
            let volatile_on_spot = llm.storage.volatile() && rate > 0.0;
            let tiered = llm.memory_tier.is_some();
            if llm.pool() > 0 || (background > 0.0 && failures + rate > 0.0) || volatile_on_spot || tiered {
                return None;
            }
            let per = match llm.recovery {
                Recovery::SpotRestart => wait,
                _ if rate + failures > 0.0 => wait * rate / (rate + failures),
                _ => 0.0,
            };
            (rate + failures, per, background)
        }
    };
    if rate == 0.0 {
        let t = first_wait + startup + work + job.segments() as f64 * write + final_write;
        return Some(Expected { wall_time_s: t, interruptions: 0.0, billed_time_s: t - first_wait });
    }
    let grow = |x: f64| (rate * x).exp_m1();
    let mut segments = full * grow(tau + write);
    if rest > 0.0 {
        segments += grow(rest + write);
    }
    let first = -(-rate * startup).exp_m1();
    let n = (rate * (startup + restore)).exp() * (first + segments);
    Some(Expected { wall_time_s: first_wait + (1.0 / rate + wait) * n, interruptions: n, billed_time_s: n / rate })
}

/// A spot job with Poisson interruptions and constant times, for checks and
/// benchmarks. Times in minutes and hours as named.
#[allow(clippy::too_many_arguments)]
pub fn poisson_job(
    work_h: f64,
    interval_m: f64,
    mtbf_h: f64,
    write_m: f64,
    restore_m: f64,
    wait_mean_m: f64,
    startup_m: f64,
    nodes: u32,
) -> TrainingJob {
    let mins = |m: f64| SimTime::from_secs_f64(m * 60.0);
    let wait =
        if wait_mean_m > 0.0 { Dist::Exponential { mean: wait_mean_m * 60.0 } } else { Dist::Constant(SimTime::ZERO) };
    TrainingJob {
        instance: Some("ml.p3.2xlarge".into()),
        instances: nodes,
        work: SimTime::from_secs_f64(work_h * 3600.0),
        market: Market::Spot,
        startup: Dist::Constant(mins(startup_m)),
        max_runtime: None,
        max_wait: None,
        deadline: None,
        checkpoint: Checkpointing {
            interval: mins(interval_m),
            rule: IntervalRule::Fixed,
            write: Dist::Constant(mins(write_m)),
            restore: Dist::Constant(mins(restore_m)),
            on_notice: false,
        },
        policy: None,
        on_demand_price: 3.825,
        spot: Some(SpotTerms {
            interruptions: Interruptions::Poisson { mtbf: SimTime::from_secs_f64(mtbf_h * 3600.0) },
            notice: SimTime::from_mins(2),
            capacity_wait: wait,
            price_per_hour: 0.3 * 3.825,
            fallback_after_wait: None,
        }),
        zones: None,
        from_profile: None,
        llm: None,
    }
}

/// The reference scenario of the benchmark: W = 100 h, MTBF = 10 h, τ = 30 m,
/// write 5 m, restore 10 m, capacity wait exponential with mean 15 m.
pub fn reference_job() -> TrainingJob {
    poisson_job(100.0, 30.0, 10.0, 5.0, 10.0, 15.0, 0.0, 1)
}

/// (work h, interval m, MTBF h, write m, restore m, mean wait m, startup m, nodes).
type CaseRow = (f64, f64, f64, f64, f64, f64, f64, u32);

/// The grid of (work, interval, MTBF, write, restore, wait, startup, nodes)
/// cases that `verify` runs.
pub fn training_cases() -> Vec<(String, TrainingJob)> {
    let grid: [CaseRow; 14] = [
        (100.0, 30.0, 10.0, 5.0, 10.0, 15.0, 0.0, 1),
        (100.0, 30.0, 10.0, 5.0, 10.0, 15.0, 5.0, 1),
        (100.0, 5.0, 10.0, 5.0, 10.0, 15.0, 0.0, 1),
        (100.0, 120.0, 10.0, 5.0, 10.0, 15.0, 0.0, 1),
        (100.0, 30.0, 3.0, 5.0, 10.0, 15.0, 0.0, 1),
        (100.0, 60.0, 30.0, 5.0, 10.0, 15.0, 0.0, 1),
        (50.0, 20.0, 10.0, 0.5, 2.0, 15.0, 0.0, 1),
        (50.0, 30.0, 10.0, 5.0, 0.0, 15.0, 0.0, 1),
        (50.0, 30.0, 10.0, 5.0, 10.0, 0.0, 0.0, 1),
        (50.0, 30.0, 10.0, 5.0, 10.0, 60.0, 0.0, 1),
        (50.0, 30.0, 40.0, 5.0, 10.0, 15.0, 3.0, 4),
        (10.0, 45.0, 5.0, 2.0, 5.0, 10.0, 0.0, 1),
        (1.0 / 3.0, 60.0, 2.0, 1.0, 2.0, 5.0, 1.0, 1),
        (20.0, 10.0, 1.0, 1.0, 3.0, 5.0, 0.0, 1),
    ];
    grid.iter()
        .map(|&(w, tau, m, c, r, d, s, n)| {
            let name = format!("W={w:.3}h τ={tau}m MTBF={m}h C={c}m R={r}m D={d}m S={s}m n={n}");
            (name, poisson_job(w, tau, m, c, r, d, s, n))
        })
        .collect()
}

/// Mean and sem over replications of `value(row)`, for rows of `metrics`.
fn mean_sem_of(rows: &[f64], metrics: &[&str], value: impl Fn(&[f64]) -> f64) -> (f64, f64) {
    let mut column: Vec<f64> = rows.chunks_exact(metrics.len()).map(value).collect();
    let s = Summary::of(&mut column);
    (s.mean, s.sem)
}

fn index(metrics: &[&str], metric: &str) -> usize {
    metrics.iter().position(|&x| x == metric).expect("a metric of the model")
}

/// Mean and sem of one training metric.
fn mean_and_sem(rows: &[f64], metric: &str) -> (f64, f64) {
    let m = index(METRICS, metric);
    mean_sem_of(rows, METRICS, |r| r[m])
}

/// Mean and sem of one endpoint metric.
fn endpoint_column(rows: &[f64], metric: &str) -> (f64, f64) {
    let m = index(ENDPOINT_METRICS, metric);
    mean_sem_of(rows, ENDPOINT_METRICS, |r| r[m])
}

/// Simulates every case and compares mean wall time and mean interruptions
/// with the closed form.
pub fn training_checks(runner: &Runner, replications: u64, seed: u64) -> Vec<Check> {
    let mut checks = Vec::new();
    for (name, job) in training_cases() {
        let exact = expected(&job).expect("verify cases have closed forms");
        let rows = runner.run(&job as &dyn Model, seed, replications, &|_| {});
        let (wall, wall_sem) = mean_and_sem(&rows, "wall_time_h");
        let (n, n_sem) = mean_and_sem(&rows, "interruptions");
        checks.push(Check {
            name: format!("wall_time_h  {name}"),
            simulated: wall,
            sem: wall_sem,
            exact: exact.wall_time_s / 3600.0,
        });
        checks.push(Check {
            name: format!("interruptions {name}"),
            simulated: n,
            sem: n_sem,
            exact: exact.interruptions,
        });
    }
    checks
}

/// LLM training designs (SPEC 2.13) read from text, whose failures come from
/// the GPU count: (name, experiment text). Daly's interval from the derived
/// write time and the combined rate; 64 H100s with a per-GPU MTBF of 640 h
/// make the job's 10 h.
pub fn llm_training_cases() -> Vec<(&'static str, String)> {
    let design = |market: &str, recovery: &str, spot: &str| {
        format!(
            "[training]\ninstance = \"ml.p5.48xlarge\"\nmarket = \"{market}\"\nstartup = \"10m\"\n\
             [training.llm]\nprofile = \"llama-3-8b\"\ntokens = 1e11\ngpus = 64\ngpu_mtbf = \"640h\"\n\
             recovery = \"{recovery}\"\nreinit = \"10m\"\nstorage_gb_per_s = 0.5\n{spot}"
        )
    };
    let spot = "[spot]\ninterruptions = { model = \"poisson\", mtbf = \"80h\" }\n\
                capacity_wait = { dist = \"exponential\", mean = \"30m\" }\n";
    vec![
        ("on-demand, on-demand-restart", design("on-demand", "on-demand-restart", "")),
        ("spot, spot-restart", design("spot", "spot-restart", spot)),
        ("spot, on-demand-restart", design("spot", "on-demand-restart", spot)),
    ]
}

/// The job of an LLM training case.
pub fn llm_training_job(text: &str) -> TrainingJob {
    let path = std::path::Path::new("verify.toml");
    let experiment =
        crate::experiment::load_text(text, path, std::path::Path::new("."), &[], crate::experiment::Fit::Refuse)
            .expect("verify's LLM designs are valid");
    let design = &experiment.points[0].design;
    let job: &dyn std::any::Any = design.as_ref();
    job.downcast_ref::<TrainingJob>().expect("a training design").clone()
}

/// The LLM cases' mean wall time and interruptions against the closed form.
pub fn llm_training_checks(runner: &Runner, replications: u64, seed: u64) -> Vec<Check> {
    let mut checks = Vec::new();
    for (name, text) in llm_training_cases() {
        let job = llm_training_job(&text);
        let exact = expected(&job).expect("the LLM cases have closed forms");
        let rows = runner.run(&job as &dyn Model, seed, replications, &|_| {});
        let metrics = job.metrics();
        for (metric, value) in [("wall_time_h", exact.wall_time_s / 3600.0), ("interruptions", exact.interruptions)] {
            let m = index(metrics, metric);
            let (mean, sem) = mean_sem_of(&rows, metrics, |r| r[m]);
            checks.push(Check { name: format!("{metric:<13} llm {name}"), simulated: mean, sem, exact: value });
        }
    }
    checks
}

/// The interval that minimises the closed-form wall time, found by
/// golden-section search over a continuous number of segments W/τ.
pub fn exact_optimal_interval_s(write_s: f64, mtbf_s: f64) -> f64 {
    let cost = |tau: f64| segment_cost(tau, write_s, mtbf_s);
    let (mut a, mut b) = (1e-3 * write_s.max(1.0), 10.0 * mtbf_s);
    let g = 0.5 * (5f64.sqrt() - 1.0);
    for _ in 0..200 {
        let c = b - g * (b - a);
        let d = a + g * (b - a);
        if cost(c) < cost(d) { b = d } else { a = c }
    }
    0.5 * (a + b)
}

/// The part of the closed-form wall time that depends on τ, per unit of
/// work: (e^{(τ + C)/M} − 1) / τ.
fn segment_cost(tau: f64, write_s: f64, mtbf_s: f64) -> f64 {
    ((tau + write_s) / mtbf_s).exp_m1() / tau
}

/// Young's and Daly's intervals against the exact optimum, and the simulated
/// wall time at Daly's interval against the closed form.
pub fn optimum_checks(runner: &Runner, replications: u64, seed: u64) -> (Vec<OptimumRow>, Vec<Check>) {
    let mut rows = Vec::new();
    let mut checks = Vec::new();
    for &(write_m, mtbf_h) in &[(5.0, 10.0), (1.0, 3.0), (10.0, 30.0), (2.0, 1.0)] {
        let (c, m) = (write_m * 60.0, mtbf_h * 3600.0);
        let optimum = exact_optimal_interval_s(c, m);
        let young = optimal_interval_s(IntervalRule::Young, c, m);
        let daly = optimal_interval_s(IntervalRule::Daly, c, m);
        let mut job = poisson_job(50.0, daly / 60.0, mtbf_h, write_m, 10.0, 15.0, 0.0, 1);
        job.checkpoint.rule = IntervalRule::Daly;
        let exact = expected(&job).expect("closed form");
        // The same continuous cost the optimum minimises: W/τ segments of τ + C.
        let at = |tau: f64| segment_cost(tau, c, m);
        let (t_opt, t_daly, t_young) = (at(optimum), at(daly), at(young));
        rows.push(OptimumRow {
            write_s: c,
            mtbf_s: m,
            optimum_s: optimum,
            young_s: young,
            daly_s: daly,
            excess_daly: t_daly / t_opt - 1.0,
            excess_young: t_young / t_opt - 1.0,
        });
        let sim = runner.run(&job as &dyn Model, seed, replications, &|_| {});
        let (wall, sem) = mean_and_sem(&sim, "wall_time_h");
        checks.push(Check {
            name: format!("wall_time_h  at Daly τ={:.1}m C={write_m}m MTBF={mtbf_h}h", daly / 60.0),
            simulated: wall,
            sem,
            exact: exact.wall_time_s / 3600.0,
        });
    }
    (rows, checks)
}

#[derive(Clone, Debug)]
pub struct OptimumRow {
    pub write_s: f64,
    pub mtbf_s: f64,
    pub optimum_s: f64,
    pub young_s: f64,
    pub daly_s: f64,
    /// Relative excess of the expected wall time at Daly's interval over the optimum.
    pub excess_daly: f64,
    pub excess_young: f64,
}

/// Daly's interval must cost at most this much over the exact optimum.
pub const DALY_MAX_EXCESS: f64 = 0.002;

/// The whole `spotsim verify` report: every check, as tables under
/// headings, and how many failed (checks outside |z| < `Z_LIMIT`, and Daly
/// intervals whose excess passes `DALY_MAX_EXCESS`). `replications` is per
/// training check; the queueing, zone and serverless checks scale it down,
/// since each of their replications is a long run.
pub fn report(runner: &Runner, replications: u64, seed: u64) -> (String, usize) {
    let mut checks = training_checks(runner, replications, seed);
    let (optimum, at_daly) = optimum_checks(runner, replications, seed);
    checks.extend(at_daly);
    checks.extend(llm_training_checks(runner, replications, seed));
    let mut out = format!(
        "Training job, checkpoint/restart closed form ({replications} replications per check, |z| < {Z_LIMIT}):\n\n"
    );
    out += &render_checks(&checks);
    out += &format!(
        "\nYoung and Daly intervals against the exact optimum (excess = extra expected wall time, Daly must be <= {DALY_MAX_EXCESS}):\n\n"
    );
    out += &render_optimum(&optimum);
    let sections: [(String, Vec<Check>); 5] = [
        (
            "Endpoint, fixed fleet against Erlang C (20-minute runs, 2-minute warm-up".into(),
            erlang_c_checks(runner, (replications / 500).max(20), seed),
        ),
        (
            "Availability zones: k-of-n availability, outages and zone-wide reclaims (".into(),
            zone_checks(runner, (replications / 100).max(20), seed),
        ),
        (
            "Serverless: Erlang B throttling, keep-alive and cost (".into(),
            serverless_checks(runner, (replications / 200).max(40), seed),
        ),
        (
            "LLM engine: a lone request's closed form (SPEC 2.8), Little's law on its counters (exact".into(),
            llm_checks(seed),
        ),
        (
            "Prefix cache: shared-prompt hit share, a cached prompt's TTFT, LRU's worst case (SPEC 2.11, exact".into(),
            prefix_checks(seed),
        ),
    ];
    for (title, section) in sections {
        let sep = if title.ends_with('(') { "" } else { ", " };
        out += &format!("\n{title}{sep}|z| < {Z_LIMIT}):\n\n");
        out += &render_checks(&section);
        checks.extend(section);
    }
    let failed = checks.iter().filter(|c| !c.passed()).count()
        + optimum.iter().filter(|r| r.excess_daly > DALY_MAX_EXCESS).count();
    out += &format!("\n{} checks, {failed} failed\n", checks.len() + optimum.len());
    (out, failed)
}

pub fn render_checks(checks: &[Check]) -> String {
    let mut out = format!("{:<72} {:>12} {:>12} {:>10} {:>7}  {}\n", "check", "simulated", "exact", "sem", "z", "");
    for c in checks {
        let _ = writeln!(
            out,
            "{:<72} {:>12.5} {:>12.5} {:>10.5} {:>7.2}  {}",
            c.name,
            c.simulated,
            c.exact,
            c.sem,
            c.z(),
            if c.passed() { "ok" } else { "FAIL" }
        );
    }
    out
}

pub fn render_optimum(rows: &[OptimumRow]) -> String {
    let mut out = format!(
        "{:>8} {:>8} {:>12} {:>10} {:>10} {:>12} {:>12}  {}\n",
        "write_m", "mtbf_h", "optimum_m", "young_m", "daly_m", "daly_excess", "young_excess", ""
    );
    for r in rows {
        let _ = writeln!(
            out,
            "{:>8.1} {:>8.1} {:>12.2} {:>10.2} {:>10.2} {:>12.2e} {:>12.2e}  {}",
            r.write_s / 60.0,
            r.mtbf_s / 3600.0,
            r.optimum_s / 60.0,
            r.young_s / 60.0,
            r.daly_s / 60.0,
            r.excess_daly,
            r.excess_young,
            if r.excess_daly <= DALY_MAX_EXCESS { "ok" } else { "FAIL" }
        );
    }
    out
}

/// A fixed fleet under constant Poisson traffic with exponential service:
/// an M/M/(instances × workers) queue. No queue limit or timeout in reach;
/// the first tenth of the window is warm-up.
pub fn mmc_endpoint(instances: u32, workers: u32, rate: f64, mean_service_s: f64, duration: SimTime) -> Endpoint {
    Endpoint {
        mode: Mode::Endpoint,
        serverless: None,
        instance: None,
        price_per_hour: 1.0,
        workers,
        service_time: Dist::Exponential { mean: mean_service_s },
        service_per_unit: None,
        queue_limit: 1_000_000,
        timeout: SimTime::from_hours(24),
        slo: SimTime::from_millis(200),
        initial_instances: instances,
        startup: Dist::Constant(SimTime::from_mins(5)).into(),
        fidelity: Fidelity::Request,
        step: SimTime::from_secs(1),
        warmup: SimTime::from_nanos(duration.as_nanos() / 10),
        autoscaling: None,
        market: Market::OnDemand,
        on_demand_base: 0,
        spot: None,
        zones: None,
        traffic: Traffic::constant(rate, duration),
        from_profile: None,
        users: None,
        wide_metrics: false,
        llm: None,
    }
}

/// (instances, workers, arrival rate /s, mean service s): M/M/1, M/M/4, M/M/20.
pub const ERLANG_C_CASES: [(u32, u32, f64, f64); 3] = [(1, 1, 14.0, 0.05), (2, 2, 80.0, 0.04), (5, 4, 170.0, 0.1)];

/// Mean latency and waiting share of fixed fleets against Erlang C.
pub fn erlang_c_checks(runner: &Runner, replications: u64, seed: u64) -> Vec<Check> {
    let mut checks = Vec::new();
    for &(instances, workers, rate, service) in &ERLANG_C_CASES {
        let n = instances * workers;
        let endpoint = mmc_endpoint(instances, workers, rate, service, SimTime::from_mins(20));
        let rows = runner.run(&endpoint as &dyn Model, seed, replications, &|_| {});
        let column = |metric: &str| endpoint_column(&rows, metric);
        let mu = 1.0 / service;
        let c = erlang_c(n, rate / mu);
        let label = format!("M/M/{n} λ={rate}/s E[S]={}ms ρ={:.2}", service * 1000.0, rate / (n as f64 * mu));
        let (latency, sem) = column("latency_mean_ms");
        checks.push(Check {
            name: format!("latency_mean_ms {label}"),
            simulated: latency,
            sem,
            exact: 1000.0 * mm_n_mean_sojourn(n, rate, mu),
        });
        let (waited, sem) = column("waited_frac");
        checks.push(Check { name: format!("waited_frac     {label}"), simulated: waited, sem, exact: c });
    }
    checks
}

/// One instance in each of `zones` zones with exponential outages (mean up
/// `mttf_h`, mean down `mttr_h`), a fixed fleet, almost no traffic (the fleet
/// is what is measured), fluid fidelity. `detection`: `None` never replaces.
pub fn zone_endpoint(zones: u32, mttf_h: f64, mttr_h: f64, detection: Option<SimTime>, hours: u64) -> Endpoint {
    let mut e = mmc_endpoint(zones, 1, 0.001, 0.01, SimTime::from_hours(hours));
    e.fidelity = Fidelity::Fluid;
    e.warmup = SimTime::ZERO;
    e.startup = Dist::Constant(SimTime::ZERO).into();
    e.zones = Some(Zones {
        count: zones,
        outage: Some(Outage {
            mtbf: SimTime::from_secs_f64(mttf_h * 3600.0),
            duration: Dist::Exponential { mean: mttr_h * 3600.0 },
        }),
        detection: detection.unwrap_or(SimTime::MAX),
        spot_reclaim: SpotReclaim::Instance,
        rebalance: false,
    });
    e
}

/// Zone availability (k-of-n), training under zone outages, and zone-wide
/// reclaims of a multi-node job, against their closed forms.
pub fn zone_checks(runner: &Runner, replications: u64, seed: u64) -> Vec<Check> {
    let mut checks = Vec::new();
    let (mttf, mttr) = (100.0, 50.0);
    let up_all = k_of_n_availability(3, 1, 1.0 - zone_unavailability(mttf, mttr));
    for (label, detection) in [("no replacement", None), ("replaced at once", Some(SimTime::ZERO))] {
        let e = zone_endpoint(3, mttf, mttr, detection, 20_000);
        let rows = runner.run(&e as &dyn Model, seed, replications, &|_| {});
        let (a, sem) = endpoint_column(&rows, "availability");
        checks.push(Check {
            name: format!("availability 3 zones × 1 instance, MTTF={mttf}h MTTR={mttr}h, {label}"),
            simulated: a,
            sem,
            exact: up_all,
        });
        if detection.is_some() {
            let (m, sem) = endpoint_column(&rows, "instances_mean");
            checks.push(Check {
                name: format!("instances_mean 3 zones, MTTF={mttf}h MTTR={mttr}h, {label}"),
                simulated: m,
                sem,
                exact: 3.0 * up_all,
            });
        }
    }
    // Training on-demand in one zone: outages are the only interruptions.
    let mut job = poisson_job(50.0, 30.0, 10.0, 5.0, 10.0, 0.0, 5.0, 4);
    job.market = Market::OnDemand;
    job.spot = None;
    job.zones = Some(Zones {
        count: 1,
        outage: Some(Outage { mtbf: SimTime::from_hours(8), duration: Dist::LogNormal { median: 1800.0, sigma: 1.0 } }),
        detection: SimTime::ZERO,
        spot_reclaim: SpotReclaim::Instance,
        rebalance: false,
    });
    let exact = expected(&job).expect("closed form");
    let rows = runner.run(&job as &dyn Model, seed, replications, &|_| {});
    let (wall, sem) = mean_and_sem(&rows, "wall_time_h");
    checks.push(Check {
        name: "wall_time_h  on-demand, zone outages MTTF=8h, lognormal down (median 30m)".into(),
        simulated: wall,
        sem,
        exact: exact.wall_time_s / 3600.0,
    });
    // Eight nodes whose spot capacity is reclaimed a zone at a time.
    let mut job = poisson_job(50.0, 30.0, 10.0, 5.0, 10.0, 15.0, 5.0, 8);
    job.zones = Some(Zones {
        count: 1,
        outage: None,
        detection: SimTime::ZERO,
        spot_reclaim: SpotReclaim::Zone,
        rebalance: false,
    });
    let exact = expected(&job).expect("closed form");
    let rows = runner.run(&job as &dyn Model, seed, replications, &|_| {});
    let (n, sem) = mean_and_sem(&rows, "interruptions");
    checks.push(Check {
        name: "interruptions 8 nodes, spot_reclaim = zone, MTBF=10h (one zone's hazard)".into(),
        simulated: n,
        sem,
        exact: exact.interruptions,
    });
    checks
}

/// Serverless inference under constant Poisson traffic, with the catalog's
/// prices; `cold_start`, `idle_timeout` and the limits as given.
pub fn serverless_endpoint(
    rate: f64,
    service: Dist,
    max_concurrency: u32,
    cold_start: SimTime,
    idle_timeout: SimTime,
    hours: u64,
) -> Endpoint {
    let mut e = mmc_endpoint(1, 1, rate, 0.05, SimTime::from_hours(hours));
    e.mode = Mode::Serverless;
    e.service_time = service;
    e.warmup = SimTime::ZERO;
    let p = &crate::catalog::catalog().serverless;
    e.serverless = Some(Serverless {
        memory_gb: 4.0,
        max_concurrency,
        provisioned_concurrency: 0,
        cold_start: Dist::Constant(cold_start),
        idle_timeout,
        service_memory_gb: None,
        prices: p.prices,
    });
    e
}

/// Erlang B throttling, keep-alive cold starts and the cost formula.
pub fn serverless_checks(runner: &Runner, replications: u64, seed: u64) -> Vec<Check> {
    let mut checks = Vec::new();
    // The per-replication share num/den (0 without any den).
    let ratio = |rows: &[f64], num: &str, den: &str| {
        let (n, d) = (index(ENDPOINT_METRICS, num), index(ENDPOINT_METRICS, den));
        mean_sem_of(rows, ENDPOINT_METRICS, |r| if r[d] > 0.0 { r[n] / r[d] } else { 0.0 })
    };
    // Erlang B: a loss system with max_concurrency servers, any service time.
    for (c, rate, service) in
        [(5u32, 4.0, Dist::LogNormal { median: 0.5, sigma: 0.6 }), (20, 15.0, Dist::Uniform { min: 0.5, max: 1.5 })]
    {
        let a = rate * service.mean_secs();
        let e = serverless_endpoint(rate, service.clone(), c, SimTime::ZERO, SimTime::from_mins(10), 2);
        let rows = runner.run(&e as &dyn Model, seed, replications, &|_| {});
        let (throttled, sem) = ratio(&rows, "throttled", "requests");
        checks.push(Check {
            name: format!("throttled share c={c} a={a:.2} ({service})"),
            simulated: throttled,
            sem,
            exact: erlang_b(c, a),
        });
    }
    // Keep-alive: one container, sparse traffic, short constant service s.
    let (rate, s, idle) = (1.0 / 300.0, 0.01, 600.0);
    let e = serverless_endpoint(
        rate,
        Dist::Constant(SimTime::from_millis(10)),
        10,
        SimTime::ZERO,
        SimTime::from_mins(10),
        24 * 20,
    );
    let rows = runner.run(&e as &dyn Model, seed, replications, &|_| {});
    let (cold, sem) = endpoint_column(&rows, "cold_start_frac");
    checks.push(Check {
        name: "cold_start_frac λ=1/300s s=10ms idle_timeout=10m: e^(−λ(T+s))".to_string(),
        simulated: cold,
        sem,
        exact: (-rate * (idle + s)).exp(),
    });
    // Cost: requests × E[billed compute] × memory × price + requests × request price.
    let mean = 0.05;
    let e = serverless_endpoint(2.0, Dist::Exponential { mean }, 50, SimTime::ZERO, SimTime::from_mins(10), 6);
    let rows = runner.run(&e as &dyn Model, seed, replications, &|_| {});
    let (cost, sem) = endpoint_column(&rows, "cost_usd");
    let p = &crate::catalog::catalog().serverless.prices;
    // Billing rounds each run up to 1 ms: E[ceil(S/δ)]δ = δ / (1 − e^(−δ/mean)) for exponential S.
    let billed_s = 0.001 / (1.0 - (-0.001 / mean).exp());
    let requests = 2.0 * 6.0 * 3600.0;
    checks.push(Check {
        name: "cost_usd serverless, 2 req/s, E[S]=50ms, 4GB: requests × E[S] × GB × price".into(),
        simulated: cost,
        sem,
        exact: requests * (billed_s * 4.0 * p.compute_per_gb_second + p.request_price),
    });
    checks
}

/// An LLM endpoint of `instances` fixed instances (one replica each) with
/// step times `fit`, under `traffic` whose requests all have `input` and
/// `output` tokens; no warm-up, a day's timeout.
pub fn llm_endpoint(instances: u32, fit: FitMs, scheduler: Scheduler, kv_tokens: u64, traffic: Traffic) -> Endpoint {
    let mut e = mmc_endpoint(instances, 1, 1.0, 1.0, traffic.duration);
    e.warmup = SimTime::ZERO;
    e.traffic = traffic;
    e.llm = Some(Llm {
        replicas: 1,
        gpus_per_replica: 1,
        scheduler,
        chunk: 512,
        max_seqs: 256,
        max_batched_tokens: 8192,
        kv_tokens,
        memory_util: 0.9,
        step: StepTime::from_fit(&fit),
        step_time: StepSource::Fit(fit),
        roofline: None,
        slo: None,
        step_origin: StepOrigin::Given,
        serving_engine: None,
        prefix_caching: true,
        block_size: 16,
        routing: crate::scenarios::inference::llm::Routing::LeastOutstanding,
        single_steps: false,
    });
    e
}

/// Requests of `input` and `output` tokens every `gap_s` seconds, replayed
/// as is for `duration`.
pub fn evenly_spaced(gap_s: f64, input: u32, output: u32, duration: SimTime) -> Traffic {
    Traffic {
        source: TrafficSource::Requests {
            file: "evenly spaced".into(),
            times: vec![0.0, gap_s].into(),
            size_column: None,
            sizes: None,
            length: 2.0 * gap_s,
            replay: Replay::AsIs,
        },
        scale: 1.0,
        duration,
        tokens: Some(Tokens::Drawn { input: CountDist::Constant(input), output: CountDist::Constant(output) }),
    }
}

/// One request every `gap_s` seconds, row by row, each with its input,
/// output and prompt segments; the traffic ends with the last row's gap.
pub fn prompted(gap_s: f64, rows: &[(u32, u32, Vec<Segment>)]) -> Traffic {
    let n = rows.len();
    Traffic {
        source: TrafficSource::Requests {
            file: "prompted".into(),
            times: (0..n).map(|k| k as f64 * gap_s).collect::<Vec<_>>().into(),
            size_column: None,
            sizes: None,
            length: n as f64 * gap_s,
            replay: Replay::AsIs,
        },
        scale: 1.0,
        duration: SimTime::from_secs_f64(n as f64 * gap_s),
        tokens: Some(Tokens::Prompts {
            source: "built".into(),
            counts: rows.iter().map(|r| [r.0, r.1]).collect::<Vec<_>>().into(),
            prompts: rows
                .iter()
                .map(|r| Some(Prompt { segments: r.2.clone().into(), answer: None, session: None }))
                .collect::<Vec<_>>()
                .into(),
        }),
    }
}

/// The closed-form prefill of `new` tokens after `cached` ones in KV, with
/// its overhead, alone in its iteration (docs/prefix-caching.md), seconds.
pub fn cached_prefill(fit: &FitMs, new: u32, cached: u32) -> f64 {
    let [pa, pb, pc] = fit.prefill;
    let [o0, o1] = fit.overhead;
    let (u, c) = (new as f64, cached as f64);
    (pa + pb * u + pc * (u * u + 2.0 * u * c) + o0 + o1 * u) / 1e3
}

/// The prefix cache against closed forms, one replica, requests spaced so
/// that each runs alone; exact (sem zero, but a TTFT to the nanosecond).
pub fn prefix_checks(seed: u64) -> Vec<Check> {
    let fit = FitMs::SPEC_EXAMPLE;
    let seg = |id: u64, tokens: u32| Segment { id, tokens };
    let run = |rows: &[(u32, u32, Vec<Segment>)], kv_tokens: u64| {
        let e = llm_endpoint(1, fit.clone(), Scheduler::Vllm, kv_tokens, prompted(60.0, rows));
        let (o, lo, _, _) = simulate_llm(&e, &crate::engine::Streams::new(seed, 0), None);
        (o, lo)
    };
    let mut checks = Vec::new();
    // (a) A shared system prompt of S tokens, unique suffixes of U.
    let (s, u, n) = (1024u32, 300u32, 40usize);
    let (_, lo) = run(&vec![(s + u, 20, vec![seg(1, s)]); n], 1_000_000);
    checks.push(Check {
        name: format!("prefix_hit_frac: system prompt S={s}, suffix U={u}, n={n}: S(n−1)/(n(S+U))"),
        simulated: lo.prefix_values()[0],
        sem: 0.0,
        exact: (s as f64 * (n - 1) as f64) / (n as f64 * (s + u) as f64),
    });
    // (b) A prompt of L tokens, all cached: its last block is prefilled.
    let l = 2048u32;
    let (o, lo) = run(&[(l, 1, vec![seg(7, l)]), (l, 1, vec![seg(7, l)])], 1_000_000);
    let first = lone_request(&fit, l, 1).0;
    checks.push(Check {
        name: format!("ttft_s of a cached {l}-token prompt: the prefill of its last block of 16 after {}", l - 16),
        simulated: lo.ttft_sum_s - first,
        // Two TTFTs, each rounded up to the engine's whole nanosecond.
        sem: 1e-9,
        exact: cached_prefill(&fit, 16, l - 16),
    });
    debug_assert_eq!(o.served, 2.0);
    // (c) LRU: K + 1 blocks of KV, so K cached between requests (a running
    // request of 17 tokens and its output takes 2, its full one cached when
    // it ends); sessions of one cacheable block each, cycled in order.
    let k = 8u64;
    for (sessions, want) in [(k + 1, 0.0), (k, 1.0)] {
        let rounds = 5;
        let rows: Vec<_> = (0..sessions * rounds).map(|j| (17, 1, vec![seg(100 + j % sessions, 16)])).collect();
        let (_, lo) = run(&rows, (k + 1) * 16);
        // A hit is 16 of 17 tokens; the first round cannot hit.
        let rounds_hit = (rounds - 1) as f64 * want;
        checks.push(Check {
            name: format!("prefix_hit_frac: {sessions} sessions cycled through a cache of {k} blocks"),
            simulated: lo.prefix_values()[0],
            sem: 0.0,
            exact: rounds_hit * 16.0 / (rounds as f64 * 17.0),
        });
    }
    checks
}

/// SPEC 2.8: a request alone has TTFT = prefill(input) + overhead, and its
/// TPOT is the mean of its decode iterations (B = 1, ctx = input + 1, ...,
/// input + output − 1) with their overheads. Seconds.
pub fn lone_request(fit: &FitMs, input: u32, output: u32) -> (f64, f64) {
    let [pa, pb, pc] = fit.prefill;
    let [da, db, dc] = fit.decode;
    let [o0, o1] = fit.overhead;
    let l = input as f64;
    let ttft = pa + pb * l + pc * l * l + o0 + o1 * l;
    let decodes: f64 = (1..output).map(|j| da + db * (l + j as f64) + dc + o0 + o1 * (l + j as f64)).sum();
    (ttft / 1e3, decodes / (output.max(2) - 1) as f64 / 1e3)
}

/// The LLM engine against the lone-request closed form (both schedulers),
/// and Little's law on its own integer counters under load with
/// preemptions and timeouts: exact, so their sem is zero.
pub fn llm_checks(seed: u64) -> Vec<Check> {
    let mut checks = Vec::new();
    let fit = FitMs::SPEC_EXAMPLE;
    for (scheduler, name) in [(Scheduler::Vllm, "vllm"), (Scheduler::Chunked, "chunked")] {
        for (input, output) in [(512u32, 128u32), (100, 2), (3000, 400)] {
            let traffic = evenly_spaced(60.0, input, output, SimTime::from_hours(1));
            let mut e = llm_endpoint(1, fit.clone(), scheduler, 100_000, traffic);
            if let Some(l) = e.llm.as_mut() {
                l.chunk = 4096;
            }
            let (o, lo, _, _) = simulate_llm(&e, &crate::engine::Streams::new(seed, 0), None);
            let (ttft, tpot) = lone_request(&fit, input, output);
            let label = format!("{name}, {input} in, {output} out");
            checks.push(Check {
                name: format!("ttft_mean_s lone request, {label}"),
                simulated: lo.ttft_sum_s / o.served,
                sem: 0.0,
                exact: ttft,
            });
            checks.push(Check {
                name: format!("tpot_mean_s lone request, {label}"),
                simulated: lo.tpot_sum_s / o.served,
                sem: 0.0,
                exact: tpot,
            });
        }
    }
    for (scheduler, name) in [(Scheduler::Vllm, "vllm"), (Scheduler::Chunked, "chunked")] {
        let mut traffic = Traffic::constant(3.0, SimTime::from_mins(30));
        traffic.tokens = Some(Tokens::Drawn {
            input: CountDist::LogNormal { median: 600.0, sigma: 0.8 },
            output: CountDist::Uniform { min: 1, max: 400 },
        });
        let mut e = llm_endpoint(2, fit.clone(), scheduler, 12_000, traffic);
        e.timeout = SimTime::from_secs(30);
        e.queue_limit = 20;
        let (o, lo, _, acct) = simulate_llm(&e, &crate::engine::Streams::new(seed, 0), None);
        checks.push(Check {
            name: format!(
                "∫N dt = Σ sojourn (s), {name}: {} preemptions, {} timed out, {} rejected",
                lo.preemptions, o.timed_out, o.rejected
            ),
            simulated: acct.in_system_area_ns as f64 / 1e9,
            sem: 0.0,
            exact: acct.sojourn_sum_ns as f64 / 1e9,
        });
    }
    checks
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_form_matches_the_spec_formula_when_it_applies() {
        // S = 0 and τ dividing W: E[T] = D + (W/τ)(1/λ + D) e^{λR}(e^{λ(τ+C)} − 1).
        let job = reference_job();
        let (l, d, r, tau, c, w): (f64, f64, f64, f64, f64, f64) =
            (1.0 / 36000.0, 900.0, 600.0, 1800.0, 300.0, 360000.0);
        let spec = d + (w / tau) * (1.0 / l + d) * (l * r).exp() * ((l * (tau + c)).exp() - 1.0);
        let got = expected(&job).unwrap().wall_time_s;
        assert!((got - spec).abs() < 1e-6 * spec, "{got} vs {spec}");
    }

    #[test]
    fn the_prefix_cache_meets_its_closed_forms() {
        let checks = prefix_checks(1);
        assert_eq!(checks.len(), 4);
        for c in &checks {
            assert!(c.passed() && (c.simulated - c.exact).abs() < 1e-8, "{}: {} vs {}", c.name, c.simulated, c.exact);
        }
        // Each can fail: the hit share is not the no-cache 0, nor all.
        assert!(checks[0].exact > 0.7 && checks[3].exact > 0.7 && checks[2].exact == 0.0);
    }

    #[test]
    fn closed_form_tends_to_the_no_failure_time() {
        let job = poisson_job(10.0, 60.0, 1e9, 5.0, 10.0, 0.0, 5.0, 1);
        let got = expected(&job).unwrap().wall_time_s;
        let plain = 5.0 * 60.0 + 10.0 * 3600.0 + 10.0 * 300.0;
        assert!((got - plain).abs() < 1e-3 * plain, "{got} vs {plain}");
    }

    #[test]
    fn golden_section_finds_the_minimum() {
        let (c, m) = (300.0, 36000.0);
        let t = exact_optimal_interval_s(c, m);
        let f = |tau: f64| ((tau + c) / m).exp_m1() / tau;
        assert!(f(t) <= f(t * 1.01) && f(t) <= f(t * 0.99));
        // Young's interval is close to, and above, the first-order optimum.
        assert!((t / optimal_interval_s(IntervalRule::Young, c, m) - 1.0).abs() < 0.05);
    }
}
