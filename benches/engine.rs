//! Speed of the engine and models. Figures and the machine they were measured
//! on are in docs/performance.md.

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;

use spotsim::base::stats::Summary;
use spotsim::commands::verify::{poisson_job, reference_job};
use spotsim::engine::{Model, Runner};

/// Runs `replications` of `model` and summarises every metric, as `spotsim run` does.
fn run_and_summarise(runner: &Runner, model: &dyn Model, replications: u64) -> f64 {
    let rows = runner.run(model, 1, replications, &|_| {});
    runner.summarise(&rows, model.metrics().len()).iter().map(|s: &Summary| s.p99).sum()
}

fn training_reference(c: &mut Criterion) {
    // W = 100 h, MTBF = 10 h, τ = 30 m, write 5 m, restore 10 m, wait exp(15 m).
    let job = reference_job();
    let replications = 200_000;
    let mut group = c.benchmark_group("training_reference");
    group.throughput(Throughput::Elements(replications));
    group.sample_size(20);
    for threads in [1, 2] {
        let runner = Runner::new(threads).unwrap();
        group.bench_function(format!("{threads}_threads"), |b| {
            b.iter(|| black_box(run_and_summarise(&runner, &job, replications)))
        });
    }
    group.finish();
}

fn training_cost_per_interruption(c: &mut Criterion) {
    // Same job at three interruption rates: time should follow the number of
    // interruptions (about 4, 12 and 45 per replication), not work / interval.
    let runner = Runner::new(1).unwrap();
    let replications = 50_000;
    let mut group = c.benchmark_group("training_by_mtbf");
    group.throughput(Throughput::Elements(replications));
    group.sample_size(20);
    for mtbf_h in [30.0, 10.0, 3.0] {
        let job = poisson_job(100.0, 30.0, mtbf_h, 5.0, 10.0, 15.0, 0.0, 1);
        group.bench_function(format!("mtbf_{mtbf_h}h"), |b| {
            b.iter(|| black_box(runner.run(&job, 1, replications, &|_| {})))
        });
    }
    // A 1-minute interval means 6000 segments: bulk skipping keeps it cheap.
    let fine = poisson_job(100.0, 1.0, 10.0, 0.1, 10.0, 15.0, 0.0, 1);
    group.bench_function("mtbf_10h_interval_1m", |b| b.iter(|| black_box(runner.run(&fine, 1, replications, &|_| {}))));
    group.finish();
}

/// Synthetic diurnal traffic (amplitude 0.6, 10% noise per minute).
fn diurnal(mean_rps: f64, hours: u64) -> spotsim::scenarios::inference::traffic::Traffic {
    use spotsim::base::time::SimTime;
    use spotsim::scenarios::inference::traffic::{Traffic, TrafficSource};
    Traffic {
        source: TrafficSource::Synthetic {
            mean_rps,
            diurnal_amplitude: 0.6,
            period: SimTime::from_hours(24),
            noise: 0.1,
            step: SimTime::from_mins(1),
            spikes: Vec::new(),
        },
        scale: 1.0,
        duration: SimTime::from_hours(hours),
        tokens: None,
    }
}

fn traffic_arrivals(c: &mut Criterion) {
    // One day of synthetic diurnal traffic at 200 requests/s with noise:
    // about 17 million arrivals over 1440 pieces, profile included.
    use spotsim::engine::Streams;
    let traffic = diurnal(200.0, 24);
    let expected = traffic.profile(&Streams::new(1, 0)).expected_requests();
    let mut group = c.benchmark_group("traffic_arrivals");
    group.throughput(Throughput::Elements(expected as u64));
    group.sample_size(10);
    group.bench_function("synthetic_day", |b| {
        b.iter(|| black_box(traffic.arrivals(&Streams::new(1, 0)).fold(0u64, |n, a| n ^ a.at.as_nanos())))
    });
    group.finish();
}

/// The request-engine reference: one hour at 1,000 requests/s, 10 instances
/// of 4 workers (E[S] = 30 ms, 75% busy), target tracking on.
fn request_reference() -> spotsim::scenarios::inference::design::Endpoint {
    use spotsim::base::dist::Dist;
    use spotsim::base::time::SimTime;
    use spotsim::scenarios::inference::autoscaler::{AutoscalingPolicy, ScalingMetric};
    let mut e = spotsim::commands::verify::mmc_endpoint(10, 4, 1000.0, 0.03, SimTime::from_hours(1));
    e.service_time = Dist::LogNormal { median: 0.0285, sigma: 0.3 };
    e.queue_limit = 200;
    e.timeout = SimTime::from_secs(60);
    e.warmup = SimTime::ZERO;
    e.autoscaling = Some(AutoscalingPolicy::new(ScalingMetric::InvocationsPerInstance, 7000.0, 10, 20));
    e
}

fn request_engine(c: &mut Criterion) {
    let endpoint = request_reference();
    let replications = 4;
    let mut group = c.benchmark_group("request_engine");
    group.throughput(Throughput::Elements(replications * 3_600_000));
    group.sample_size(10);
    for threads in [1, 2] {
        let runner = Runner::new(threads).unwrap();
        group.bench_function(format!("1h_1000rps_{threads}_threads"), |b| {
            b.iter(|| black_box(runner.run(&endpoint, 1, replications, &|_| {})))
        });
    }
    // The same traffic served serverless: up to 200 containers, 2 s cold starts.
    let serverless = spotsim::commands::verify::serverless_endpoint(
        1000.0,
        endpoint.service_time.clone(),
        200,
        spotsim::base::time::SimTime::from_secs(2),
        spotsim::base::time::SimTime::from_mins(10),
        1,
    );
    for threads in [1, 2] {
        let runner = Runner::new(threads).unwrap();
        group.bench_function(format!("serverless_1h_1000rps_{threads}_threads"), |b| {
            b.iter(|| black_box(runner.run(&serverless, 1, replications, &|_| {})))
        });
    }
    group.finish();
}

fn fluid_engine(c: &mut Criterion) {
    // Seven days of diurnal traffic at 1-second steps: 604,800 steps.
    use spotsim::scenarios::inference::design::Fidelity;
    let mut endpoint = request_reference();
    endpoint.fidelity = Fidelity::Fluid;
    endpoint.traffic = diurnal(1000.0, 24 * 7);
    let runner = Runner::new(1).unwrap();
    let mut group = c.benchmark_group("fluid_engine");
    group.sample_size(10);
    group.bench_function("7d_1s_steps", |b| b.iter(|| black_box(runner.run(&endpoint, 1, 1, &|_| {}))));
    group.finish();
}

fn spot_trace(c: &mut Criterion) {
    // The real AWS us-east-1a trace (20,158 rows, about 600 state runs) with
    // its per-row prices; 4,096 random queries per iteration, each at a
    // random offset and a random time within 500 h (so about half wrap).
    use rand::RngExt;
    use spotsim::base::time::SimTime;
    use spotsim::engine::{Purpose, Streams};
    use spotsim::spot::trace::{Convention, SpotTrace};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("models/traces/aws-v100");
    let text = std::fs::read_to_string(dir.join("us-east-1a.csv")).unwrap();
    let prices: std::collections::BTreeMap<String, Vec<f64>> =
        serde_json::from_str(&std::fs::read_to_string(dir.join("spot-prices.json")).unwrap()).unwrap();
    let trace = SpotTrace::parse_csv("us-east-1a.csv", &text, Convention::Available)
        .unwrap()
        .with_prices(prices["us-east-1a_v100_1"].clone())
        .unwrap();
    let mut rng = Streams::new(1, 0).rng(Purpose::Interruptions);
    let horizon = SimTime::from_hours(500).as_nanos();
    let queries: Vec<(SimTime, SimTime, SimTime)> = (0..4096)
        .map(|_| {
            let offset = SimTime::from_nanos(rng.random_range(0..trace.length().as_nanos()));
            let t = SimTime::from_nanos(rng.random_range(0..horizon));
            let span = SimTime::from_nanos(rng.random_range(0..SimTime::from_hours(50).as_nanos()));
            (offset, t, t + span)
        })
        .collect();
    let mut group = c.benchmark_group("spot_trace");
    group.throughput(Throughput::Elements(queries.len() as u64));
    group.bench_function("next_unavailable", |b| {
        b.iter(|| queries.iter().fold(0u64, |x, &(o, t, _)| x ^ trace.next_unavailable(black_box(o), t).as_nanos()))
    });
    group.bench_function("next_available", |b| {
        b.iter(|| queries.iter().fold(0u64, |x, &(o, t, _)| x ^ trace.next_available(black_box(o), t).as_nanos()))
    });
    group.bench_function("cost", |b| {
        b.iter(|| queries.iter().fold(0.0, |x, &(o, a, e)| x + trace.cost(black_box(o), a, e).unwrap()))
    });
    group.finish();
}

fn training_trace_replay(c: &mut Criterion) {
    // The same 24-hour job on the real us-east-1a V100 trace (about 50
    // interruptions per replication, with per-sample prices) and on a
    // Poisson model: trace replay should cost no more per interruption.
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let load = |sets: &[&str]| {
        let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
        let mut e = spotsim::experiment::load(&root.join("experiments/real-spot-v100.toml"), &sets).unwrap();
        e.points.swap_remove(0).design
    };
    let trace = load(&["training.checkpoint.interval=30m"]);
    let poisson = load(&[
        "training.checkpoint.interval=30m",
        "spot.interruptions={ model = \"poisson\", mtbf = \"30m\" }",
        "spot.capacity_wait={ dist = \"exponential\", mean = \"5h\" }",
    ]);
    let runner = Runner::new(1).unwrap();
    let replications = 20_000;
    let mut group = c.benchmark_group("training_trace_vs_poisson");
    group.throughput(Throughput::Elements(replications));
    group.sample_size(10);
    for (name, design) in [("trace_us_east_1a", &trace), ("poisson", &poisson)] {
        group.bench_function(name, |b| b.iter(|| black_box(runner.run(design.model(), 1, replications, &|_| {}))));
    }
    group.finish();
}

fn training_policy_on_trace(c: &mut Criterion) {
    // The Can't Be Late case (48-hour job, 52-hour deadline, 0.2-hour
    // restart) on the us-east-1c V100 trace from random offsets, per policy:
    // the time per simulated job, against sky_spot's (docs/performance.md).
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let runner = Runner::new(1).unwrap();
    let replications = 20_000;
    let mut group = c.benchmark_group("training_policy_on_trace");
    group.throughput(Throughput::Elements(replications));
    group.sample_size(10);
    for policy in ["uniform-progress", "greedy", "on-demand", "optimal"] {
        let sets: Vec<String> = [
            format!("training.policy.name=\"{policy}\""),
            "training.deadline=\"52h\"".into(),
            "training.startup=\"12m\"".into(),
            "spot.interruptions.offset=\"random\"".into(),
            "spot.interruptions.file=\"../../../models/traces/aws-v100/us-east-1c.csv\"".into(),
        ]
        .into();
        let file = root.join("tests/data/cant-be-late/cant-be-late.toml");
        let design = spotsim::experiment::load(&file, &sets).unwrap().points.swap_remove(0).design;
        let n = if policy == "optimal" { replications / 20 } else { replications };
        group.throughput(Throughput::Elements(n));
        group.bench_function(policy, |b| b.iter(|| black_box(runner.run(design.model(), 1, n, &|_| {}))));
    }
    group.finish();
}

/// The LLM engine reference: a day of diurnal traffic at 2 requests/s
/// (lognormal prompts, median 500 tokens; outputs 20 to 300), vllm
/// scheduling with SPEC 2.8's example step times, target tracking from 1
/// to 10 instances.
fn llm_reference() -> spotsim::scenarios::inference::design::Endpoint {
    use spotsim::scenarios::inference::autoscaler::{AutoscalingPolicy, ScalingMetric};
    use spotsim::scenarios::inference::llm::Scheduler;
    use spotsim::scenarios::inference::traffic::tokens::{CountDist, Tokens};
    let mut traffic = diurnal(2.0, 24);
    traffic.tokens = Some(Tokens::Drawn {
        input: CountDist::LogNormal { median: 500.0, sigma: 0.8 },
        output: CountDist::Uniform { min: 20, max: 300 },
    });
    let fit = spotsim::scenarios::inference::llm::step::FitMs::SPEC_EXAMPLE;
    let mut e = spotsim::commands::verify::llm_endpoint(2, fit, Scheduler::Vllm, 20_000, traffic);
    e.autoscaling = Some(AutoscalingPolicy::new(ScalingMetric::InvocationsPerInstance, 100.0, 1, 10));
    e
}

fn llm_engine(c: &mut Criterion) {
    let endpoint = llm_reference();
    let replications = 4;
    let mut group = c.benchmark_group("llm_engine");
    group.throughput(Throughput::Elements(replications));
    group.sample_size(10);
    let runner = Runner::new(1).unwrap();
    group.bench_function("1d_2rps_autoscaled_1_thread", |b| {
        b.iter(|| black_box(runner.run(&endpoint, 1, replications, &|_| {})))
    });
    group.finish();
}

/// A day of a chat endpoint on 10 fixed instances (one replica each) fed by
/// synthetic sessions (SPEC 2.11) at about 4 requests/s: 8/9 sessions a
/// second (Poisson), 1 to 8 turns each (uniform), one of 8 system prompts of
/// 1024 tokens (Zipf(1)), 100 new tokens and a 150-token answer a turn,
/// think time lognormal (median 15 s), so each turn resends its whole
/// conversation. Session-affinity routing; `caching` switches the prefix cache.
fn chat_day(caching: bool) -> spotsim::scenarios::inference::design::Endpoint {
    use spotsim::base::dist::Dist;
    use spotsim::scenarios::inference::llm::{Routing, Scheduler};
    use spotsim::scenarios::inference::traffic::sessions::{Sessions, SystemPrompts};
    use spotsim::scenarios::inference::traffic::tokens::{CountDist, Tokens};
    let sessions = Sessions {
        turns: CountDist::Uniform { min: 1, max: 8 },
        input: CountDist::Constant(100),
        output: CountDist::Constant(150),
        think: Dist::LogNormal { median: 15.0, sigma: 0.8 },
        system_prompts: Some(SystemPrompts::zipf(vec![1024; 8], 1.0)),
    };
    let mut traffic = diurnal(4.0 / 4.5, 24);
    if let spotsim::scenarios::inference::traffic::TrafficSource::Synthetic { diurnal_amplitude, noise, .. } =
        &mut traffic.source
    {
        (*diurnal_amplitude, *noise) = (0.0, 0.0);
    }
    traffic.tokens = Some(Tokens::Sessions(std::sync::Arc::new(sessions)));
    let fit = spotsim::scenarios::inference::llm::step::FitMs::SPEC_EXAMPLE;
    let mut e = spotsim::commands::verify::llm_endpoint(10, fit, Scheduler::Chunked, 200_000, traffic);
    if let Some(l) = e.llm.as_mut() {
        l.chunk = 2048;
        l.prefix_caching = caching;
        l.routing = Routing::SessionAffinity;
    }
    e
}

fn llm_prefix_cache(c: &mut Criterion) {
    let mut group = c.benchmark_group("llm_prefix_cache");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    let runner = Runner::new(1).unwrap();
    for (name, caching) in [("chat_day_10_replicas_cached", true), ("chat_day_10_replicas_uncached", false)] {
        let endpoint = chat_day(caching);
        group.bench_function(name, |b| b.iter(|| black_box(runner.run(&endpoint, 1, 1, &|_| {}))));
    }
    group.finish();
}

criterion_group!(
    benches,
    llm_prefix_cache,
    llm_engine,
    training_policy_on_trace,
    training_trace_replay,
    training_reference,
    training_cost_per_interruption,
    traffic_arrivals,
    request_engine,
    fluid_engine,
    spot_trace
);
criterion_main!(benches);
