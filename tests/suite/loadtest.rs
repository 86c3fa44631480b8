//! Closed-loop load tests (SPEC 2.9) against Little's law and fixed service
//! times, for both engines; and the load-test keys refused.

use spotsim::base::dist::Dist;
use spotsim::base::time::SimTime;
use spotsim::commands::loadtest::{Settings, closed_loop};
use spotsim::commands::verify::mmc_endpoint;
use spotsim::engine::Runner;
use spotsim::scenarios::inference::design::Endpoint;

use crate::designs::{REALTIME, error, load};

fn closed(ep: &Endpoint, users: u32) -> (f64, f64) {
    let e = load(
        "[inference]\nprice_per_hour = 1\nservice_time = \"1s\"\n[traffic]\nduration = \"1h\"\n[loadtest]\nusers = [1]\n",
        &[],
    )
    .unwrap();
    let spec = e.loadtest.clone().unwrap();
    let settings = Settings::default();
    let r = Runner::new(2).unwrap().install(|| closed_loop(ep, &spec, users, &settings, 3));
    (r.requests_per_s, r.latency_mean_s)
}

#[test]
fn closed_loop_throughput_at_one_user_is_one_over_the_mean_latency() {
    let ep = mmc_endpoint(1, 4, 1.0, 0.05, SimTime::from_secs(1000));
    let (throughput, latency) = closed(&ep, 1);
    assert!((throughput * latency - 1.0).abs() < 2e-3, "{throughput} × {latency}");
    assert!((latency / 0.05 - 1.0).abs() < 0.02, "{latency}");
}

#[test]
fn closed_loop_with_fixed_service_times_gives_min_users_workers_over_service() {
    let mut ep = mmc_endpoint(1, 4, 1.0, 0.1, SimTime::from_secs(500));
    ep.service_time = Dist::Constant(SimTime::from_millis(100));
    for n in [1, 2, 3, 4, 8, 20] {
        let (throughput, latency) = closed(&ep, n);
        let expected = n.min(4) as f64 / 0.1;
        assert!((throughput / expected - 1.0).abs() < 2e-3, "{n} users: {throughput} against {expected}");
        // Little's law: n in flight = throughput × latency.
        assert!((throughput * latency / n as f64 - 1.0).abs() < 2e-3, "{n} users: latency {latency}");
    }
}

#[test]
fn users_with_a_threshold_are_two_load_tests() {
    let e = error(
        "[inference]\nprice_per_hour = 1\nservice_time = \"50ms\"\n[traffic]\nduration = \"10m\"\n\
         [loadtest]\nusers = [1, 5]\nlatency = \"p99\"\nthreshold = \"100ms\"\n",
    );
    assert_eq!(e.key.as_deref(), Some("loadtest.threshold"), "{e}");
    let e = error(&format!("{REALTIME}[loadtest]\nusers = [1, 5]\n"));
    assert!(e.message.contains("holds only `duration`"), "{e}");
    let e = error(
        "[inference]\nprice_per_hour = 1\nservice_time = \"50ms\"\n[traffic]\nduration = \"10m\"\n[loadtest]\nusers = [0]\n",
    );
    assert_eq!(e.key.as_deref(), Some("loadtest.users"), "{e}");
}

const LLM: &str = "[inference]\ninstance = \"ml.g5.2xlarge\"\nengine = \"llm\"\n\
    [inference.llm]\nkv_tokens = 20000\n\
    step_time = { prefill = [22.05, 0.1405, 8.08e-6], decode = [23.48, 5.93e-4, 0.0607], overhead = [2.0, 1e-4] }\n";

#[test]
fn closed_loop_llm_designs_report_tokens_ttft_and_tpot() {
    let e = load(
        &format!(
            "{LLM}[traffic]\nduration = \"5m\"\ntokens = {{ input = 100, output = 50 }}\n[loadtest]\nusers = [1, 8]\n"
        ),
        &[],
    )
    .unwrap();
    let ep = e.points[0].design.downcast::<Endpoint>().unwrap();
    let spec = e.loadtest.clone().unwrap();
    let runner = Runner::new(2).unwrap();
    for users in [1, 8] {
        let r = runner.install(|| closed_loop(ep, &spec, users, &Settings::default(), 3));
        let [tokens_per_s, ttft_p50, _, _, tpot_p50, _, _] = r.llm.expect("an LLM design");
        // 50 output tokens a request; n users in flight = throughput × latency.
        assert!((tokens_per_s / (50.0 * r.requests_per_s) - 1.0).abs() < 0.02, "{tokens_per_s} {}", r.requests_per_s);
        assert!((r.requests_per_s * r.latency_mean_s / users as f64 - 1.0).abs() < 0.01, "{users} users: {r:?}");
        assert!(ttft_p50 > 0.0 && tpot_p50 > 0.0);
    }
}

#[test]
fn token_percentile_thresholds_need_an_llm_design() {
    let llm = load(&format!("{LLM}[traffic]\nsynthetic = {{ mean_rps = 1 }}\nduration = \"10m\"\ntokens = {{ input = 100, output = 50 }}\n[loadtest]\nlatency = \"ttft_p90\"\nthreshold = \"500ms\"\n"), &[]).unwrap();
    assert_eq!(llm.loadtest.as_ref().unwrap().quantile(), 0.9);
    assert!(spotsim::commands::loadtest::check(&llm).is_ok());
    let plain = load(&format!("{REALTIME}[loadtest]\nlatency = \"tpot_p50\"\nthreshold = \"50ms\"\n"), &[]).unwrap();
    let e = spotsim::commands::loadtest::check(&plain).expect_err("not an LLM design");
    assert_eq!(e.key.as_deref(), Some("loadtest.latency"), "{e}");
}
