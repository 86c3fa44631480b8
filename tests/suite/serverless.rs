//! Serverless inference: closed forms, edge cases, and sweeping the mode.

use std::path::Path;

use spotsim::base::dist::Dist;
use spotsim::base::time::SimTime;
use spotsim::commands::verify::{serverless_checks, serverless_endpoint};
use spotsim::engine::{Model, Runner};
use spotsim::experiment;
use spotsim::scenarios::inference::design::METRICS;

fn run(e: &spotsim::scenarios::inference::design::Endpoint, replications: u64) -> Vec<Vec<f64>> {
    let rows = Runner::new(2).unwrap().run(e as &dyn Model, 3, replications, &|_| {});
    rows.chunks_exact(METRICS.len()).map(|r| r.to_vec()).collect()
}

fn metric(row: &[f64], name: &str) -> f64 {
    row[METRICS.iter().position(|&m| m == name).unwrap()]
}

#[test]
fn serverless_matches_erlang_b_keep_alive_and_cost() {
    for c in serverless_checks(&Runner::new(2).unwrap(), 60, 41) {
        assert!(c.passed(), "{}: simulated {} exact {} z {}", c.name, c.simulated, c.exact, c.z());
    }
}

#[test]
fn provisioned_concurrency_up_to_the_limit_never_starts_cold() {
    let mut e =
        serverless_endpoint(3.0, Dist::Exponential { mean: 0.2 }, 4, SimTime::from_secs(5), SimTime::from_mins(1), 2);
    let sl = e.serverless.as_mut().unwrap();
    sl.provisioned_concurrency = 4;
    let prices = sl.prices;
    for row in run(&e, 5) {
        assert_eq!(metric(&row, "cold_starts"), 0.0);
        assert!(metric(&row, "throttled") > 0.0, "bursts beyond 4 at once are throttled");
        assert_eq!(metric(&row, "rejected"), metric(&row, "throttled"));
        assert_eq!(
            metric(&row, "requests"),
            metric(&row, "served") + metric(&row, "rejected") + metric(&row, "timed_out")
        );
        // Provisioned: 4 × 4 GB for 2 h, plus compute at the provisioned rate.
        let floor = 4.0 * 4.0 * prices.provisioned_per_gb_second * 7200.0;
        assert!(metric(&row, "cost_usd") > floor);
        assert_eq!(metric(&row, "instances_mean"), 4.0);
    }
}

#[test]
fn zero_traffic_costs_only_what_is_provisioned() {
    let mut e =
        serverless_endpoint(0.0, Dist::Exponential { mean: 0.2 }, 10, SimTime::from_secs(5), SimTime::from_mins(1), 3);
    for (provisioned, expected_cost) in [(0u32, 0.0), (2, 2.0 * 4.0 * 3.0 * 3600.0)] {
        let sl = e.serverless.as_mut().unwrap();
        sl.provisioned_concurrency = provisioned;
        let per_gb_s = sl.prices.provisioned_per_gb_second;
        for row in run(&e, 2) {
            assert_eq!(metric(&row, "requests"), 0.0);
            assert_eq!(metric(&row, "cold_starts"), 0.0);
            assert!((metric(&row, "cost_usd") - expected_cost * per_gb_s).abs() < 1e-12);
            assert!(metric(&row, "latency_p99_ms").is_nan() && metric(&row, "slo_attainment").is_nan());
        }
    }
}

#[test]
fn mode_can_be_swept_on_the_same_traffic() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/serverless-vs-endpoint.toml");
    let e = experiment::load(&file, &["replications=2".into(), "traffic.duration=2h".into()]).unwrap();
    assert_eq!(e.swept, ["inference.mode", "traffic.synthetic.mean_rps"]);
    let runner = Runner::new(2).unwrap();
    let rates = e.points.len() / 2;
    for k in 0..rates {
        let (endpoint, serverless) = (&e.points[k], &e.points[rates + k]);
        assert_eq!(endpoint.values[1], serverless.values[1]);
        let a = runner.run(endpoint.design.model(), e.seed, 2, &|_| {});
        let b = runner.run(serverless.design.model(), e.seed, 2, &|_| {});
        // Common random numbers: the same requests arrive in both modes.
        assert_eq!(metric(&a[..METRICS.len()], "requests"), metric(&b[..METRICS.len()], "requests"));
    }
}

#[test]
fn memory_scales_the_service_time_when_asked() {
    let mut e = serverless_endpoint(
        2.0,
        Dist::Constant(SimTime::from_millis(100)),
        50,
        SimTime::ZERO,
        SimTime::from_mins(10),
        1,
    );
    e.serverless.as_mut().unwrap().service_memory_gb = Some(2.0); // measured at 2 GB, runs at 4 GB: twice as fast
    for row in run(&e, 2) {
        assert!((metric(&row, "latency_mean_ms") - 50.0).abs() < 1e-6, "{}", metric(&row, "latency_mean_ms"));
    }
}
