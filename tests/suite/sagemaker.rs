//! SageMaker's deployment options (SPEC 2.9): concurrency autoscaling, scale
//! to zero, asynchronous inference and closed-loop load tests, each against
//! a hand-worked case; and the bad input around them.

use spotsim::base::dist::Dist;
use spotsim::base::time::SimTime;
use spotsim::commands::loadtest::{Settings, closed_loop};
use spotsim::commands::verify::mmc_endpoint;
use spotsim::engine::{Model, Runner, Streams};
use spotsim::experiment::{self, Experiment};
use spotsim::input::InputError;
use spotsim::scenarios::inference::design::{Endpoint, METRICS, ZERO_METRICS};

/// Loads an experiment from text, with extra files beside it.
fn load(text: &str, files: &[(&str, &str)]) -> Result<Experiment, InputError> {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    let file = dir.path().join("exp.toml");
    std::fs::write(&file, text).unwrap();
    experiment::load(&file, &[])
}

fn endpoint(text: &str, files: &[(&str, &str)]) -> Endpoint {
    let e = load(text, files).unwrap_or_else(|err| panic!("{err}"));
    e.points[0].design.downcast::<Endpoint>().expect("an inference experiment").clone()
}

fn error(text: &str) -> InputError {
    load(text, &[]).expect_err("should be refused")
}

/// Rows of metrics by name, one per replication.
fn run(ep: &Endpoint, replications: u64) -> impl Fn(&str) -> Vec<f64> + use<> {
    let names = ep.metrics();
    let values = Runner::new(2).unwrap().run(ep as &dyn Model, 7, replications, &|_| {});
    move |name: &str| {
        let m = names.iter().position(|&x| x == name).unwrap_or_else(|| panic!("no metric {name}"));
        values.chunks_exact(names.len()).map(|r| r[m]).collect()
    }
}

const CONSTANT_SECOND: &str = "[inference]\nprice_per_hour = 1.0\nworkers = 1\n\
    service_time = { dist = \"constant\", value = \"1s\" }\nstartup = { dist = \"constant\", value = \"5m\" }\n";

#[test]
fn concurrent_requests_per_copy_by_hand() {
    // Two instances of one worker; 24 users keep 24 requests in the endpoint
    // at every instant (a finish and the next request share their instant),
    // so each copy holds 24 / 2 = 12: every 10-second datapoint is 12.
    let mut ep = endpoint(
        &format!(
            "{CONSTANT_SECOND}initial_instances = 2\nqueue_limit = 1000\ntimeout = \"1h\"\n\
             [inference.autoscaling]\nmetric = \"concurrent-requests-per-copy\"\ntarget = 5\nmin = 1\nmax = 20\n\
             [traffic]\nsynthetic = {{ mean_rps = 1 }}\nduration = \"2m\"\n"
        ),
        &[],
    );
    ep.users = Some(24);
    let policy = ep.autoscaling.as_ref().unwrap();
    assert_eq!((policy.period, policy.metric_delay), (SimTime::from_secs(10), SimTime::from_secs(10)));
    assert_eq!((policy.scale_out_datapoints, policy.scale_in_datapoints), (3, 90));
    let rows = ep.timeline_rows(Streams::new(1, 0));
    assert!(rows.iter().all(|r| r.metric == 12.0), "{:?}", rows.iter().map(|r| r.metric).collect::<Vec<_>>());
    // Datapoints of 0-10, 10-20 and 20-30 s are seen at 20, 30 and 40 s; the
    // third breaches 3 in a row: ceil(2 × 12 / 5) = ceil(4.8) = 5 instances,
    // three of them pending (startup 5 minutes) from 40 s on.
    let pending: Vec<u32> = rows.iter().map(|r| r.instances_pending).collect();
    assert_eq!(&pending[..3], &[0, 0, 0]);
    assert_eq!(&pending[4..], &[3; 8]);
}

/// 5 requests/s for 10 minutes, nothing until minute 90, then 5/s again.
const GAP: &str = "time_s,rate\n0,5\n600,0\n5400,5\n6000,5\n";

fn gap_endpoint(min: u32) -> Endpoint {
    let wake = if min == 0 { "wake = {}\n" } else { "" };
    endpoint(
        &format!(
            "{CONSTANT_SECOND}workers = 8\n\
             [inference.autoscaling]\nmetric = \"invocations-per-instance\"\ntarget = 600\nmin = {min}\nmax = 4\n{wake}\
             [traffic]\ntrace = \"gap.csv\"\nduration = \"100m\"\n"
        )
        .replace("workers = 1\n", "")
        .replace("\"5m\"", "\"5m30s\""),
        &[("gap.csv", GAP)],
    )
}

/// Runs a `GAP` design 4 times: it woke once, about 5 × 450 requests
/// failed for no capacity, and every request is served, rejected, timed out
/// or failed.
fn woke_from_zero_with_every_request_accounted(ep: &Endpoint) -> impl Fn(&str) -> Vec<f64> + use<> {
    let m = run(ep, 4);
    assert_eq!(m("scale_from_zero"), vec![1.0; 4]);
    for f in m("no_capacity_failures") {
        assert!((f - 2250.0).abs() < 5.0 * 2250f64.sqrt(), "{f}");
    }
    let (requests, served, rejected, timed_out, failed) =
        (m("requests"), m("served"), m("rejected"), m("timed_out"), m("no_capacity_failures"));
    for r in 0..4 {
        assert_eq!(requests[r], served[r] + rejected[r] + timed_out[r] + failed[r], "replication {r}");
    }
    m
}

#[test]
fn scale_to_zero_drops_to_zero_in_a_gap_and_wakes_after_the_startup() {
    let ep = gap_endpoint(0);
    assert!(ep.scales_to_zero());
    assert_eq!(ep.metrics(), ZERO_METRICS.as_slice());
    let rows = ep.timeline_rows(Streams::new(7, 0));
    let at = |t: f64| rows.iter().find(|r| r.t_s == t).unwrap();
    // No traffic from minute 10: 15 low datapoints later the fleet is empty.
    assert!((30..90).all(|m| at(m as f64 * 60.0).instances_in_service == 0), "stays at zero in the gap");
    assert_eq!(at(60.0 * 60.0).instances_pending, 0);
    // Minute 90 brings requests that fail; its datapoint (1 of 1) is acted on
    // at 91 + 1 = 92 minutes (5520 s), and the instance serves 5m30s later,
    // at 5850 s: pending in the minute ending at 5820 s, in service at 5880 s.
    assert_eq!((at(5400.0).instances_in_service, at(5400.0).instances_pending), (0, 0));
    assert_eq!((at(5520.0).instances_in_service, at(5520.0).instances_pending), (0, 1));
    assert_eq!((at(5760.0).instances_in_service, at(5760.0).instances_pending), (0, 1));
    assert_eq!(at(5820.0).instances_in_service, 1);

    // Requests from 5400 s to 5850 s fail: about 5 × 450.
    let m = woke_from_zero_with_every_request_accounted(&ep);
    let always_on = run(&gap_endpoint(1), 4);
    assert_eq!(gap_endpoint(1).metrics(), METRICS);
    for (zero, one) in m("cost_usd").iter().zip(always_on("cost_usd")) {
        assert!(*zero < 0.6 * one, "{zero} against {one}");
    }
}

/// 100 requests/s for 10 s, then nothing for 20 minutes.
const BURST: &str = "time_s,rate\n0,100\n10,0\n1200,0\n";

#[test]
fn an_asynchronous_burst_is_served_in_full_at_the_fleets_rate() {
    // Two instances of one worker, 1 s per request: about 1000 requests in
    // 10 s drain at 2 per second. The k-th request arrives near 10k/N s and
    // starts near k/2 s, so the p99 wait is near 0.99 N / 2 − 9.9 s, and the
    // backlog peaks at the end of the burst near N − 20.
    let ep = endpoint(
        &format!(
            "{CONSTANT_SECOND}mode = \"async\"\ninitial_instances = 2\n\
             [traffic]\ntrace = \"burst.csv\"\nduration = \"20m\"\n"
        ),
        &[("burst.csv", BURST)],
    );
    assert_eq!(ep.timeout, SimTime::MAX);
    let m = run(&ep, 4);
    let (requests, served) = (m("requests"), m("served"));
    assert_eq!(requests, served);
    assert!(m("rejected").iter().chain(&m("timed_out")).all(|&x| x == 0.0));
    for ((n, wait), backlog) in requests.iter().zip(m("queue_wait_p99_s")).zip(m("backlog_max")) {
        let expected = 0.99 * n / 2.0 - 9.9;
        assert!((wait - expected).abs() < 0.01 * expected + 2.0, "wait p99 {wait} against {expected}");
        assert!((backlog - (n - 20.0)).abs() <= 3.0, "backlog {backlog} against {}", n - 20.0);
    }
}

#[test]
fn an_asynchronous_endpoint_at_zero_wakes_on_its_backlog() {
    // Quiet for 30 minutes (the fleet goes to zero), then 3000 requests in a
    // minute: queued, the endpoint woken by HasBacklogWithoutCapacity (2
    // datapoints of 1 minute), every request served.
    let trace = "time_s,rate\n0,0\n1800,50\n1860,0\n10800,0\n";
    let ep = endpoint(
        &format!(
            "{CONSTANT_SECOND}mode = \"async\"\nworkers = 4\n\
             [inference.autoscaling]\nmetric = \"backlog-per-instance\"\ntarget = 20\nmin = 0\nmax = 10\n\
             [traffic]\ntrace = \"t.csv\"\nduration = \"3h\"\n"
        )
        .replace("workers = 1\n", ""),
        &[("t.csv", trace)],
    );
    let rows = ep.timeline_rows(Streams::new(7, 0));
    assert_eq!(rows.iter().find(|r| r.t_s == 1740.0).unwrap().instances_in_service, 0);
    let m = run(&ep, 3);
    assert_eq!(m("requests"), m("served"));
    assert_eq!(m("scale_from_zero"), vec![1.0; 3]);
    assert!(m("timed_out").iter().chain(&m("no_capacity_failures")).all(|&x| x == 0.0));
}

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

const REALTIME: &str = "[inference]\nprice_per_hour = 1\nservice_time = \"50ms\"\n\
    [traffic]\nsynthetic = { mean_rps = 5 }\nduration = \"1h\"\n";

#[test]
fn the_old_metric_name_names_both_new_ones() {
    let e = error(&format!(
        "{REALTIME}[inference.autoscaling]\nmetric = \"concurrency-per-instance\"\ntarget = 0.7\nmax = 4\n"
    ));
    assert_eq!(e.key.as_deref(), Some("inference.autoscaling.metric"));
    let hint = e.hint.clone().unwrap_or_default();
    assert!(hint.contains("\"utilization\"") && hint.contains("\"concurrent-requests-per-copy\""), "{e}");
}

#[test]
fn targets_outside_a_metrics_range_are_refused_with_the_range() {
    for (metric, target, range) in [
        ("utilization", "1.5", "in (0, 1]"),
        ("utilization", "0", "in (0, 1]"),
        ("concurrent-requests-per-copy", "0", "greater than 0"),
        ("invocations-per-instance", "-70", "greater than 0"),
    ] {
        let e =
            error(&format!("{REALTIME}[inference.autoscaling]\nmetric = \"{metric}\"\ntarget = {target}\nmax = 4\n"));
        assert_eq!(e.key.as_deref(), Some("inference.autoscaling.target"), "{e}");
        assert!(e.message.contains(range), "{metric} {target}: {e}");
    }
    let e =
        error(&format!("{REALTIME}[inference.autoscaling]\nmetric = \"backlog-per-instance\"\ntarget = 5\nmax = 4\n"));
    assert!(e.message.contains("asynchronous"), "{e}");
}

#[test]
fn async_mode_refuses_serverless_keys_and_timeouts() {
    let e = error(&format!(
        "{}[inference.serverless]\nmemory = \"4GB\"\nmax_concurrency = 5\ncold_start = \"2s\"\n",
        REALTIME.replace("[inference]\n", "[inference]\nmode = \"async\"\n")
    ));
    assert!(e.message.contains("asynchronous") && e.message.contains("serverless"), "{e}");
    let e = error(&REALTIME.replace("[inference]\n", "[inference]\nmode = \"async\"\ntimeout = \"1m\"\n"));
    assert_eq!(e.key.as_deref(), Some("inference.timeout"));
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

#[test]
fn min_zero_without_a_way_to_wake_is_refused() {
    let e = error(&format!(
        "{REALTIME}[inference.autoscaling]\nmetric = \"utilization\"\ntarget = 0.6\nmin = 0\nmax = 4\n"
    ));
    assert_eq!(e.key.as_deref(), Some("inference.autoscaling.min"));
    assert!(e.message.contains("without a way to wake"), "{e}");
    assert!(e.hint.as_deref().unwrap_or("").contains("NoCapacityInvocationFailures"), "{e}");
    let e = error(&format!(
        "{REALTIME}[inference.autoscaling]\nmetric = \"utilization\"\ntarget = 0.6\nmin = 1\nmax = 4\nscheduled = [{{ at = \"2h\", min = 0 }}]\n"
    ));
    assert!(e.message.contains("without a way to wake"), "{e}");
    // With the wake rule it loads.
    load(
        &format!(
            "{REALTIME}[inference.autoscaling]\nmetric = \"utilization\"\ntarget = 0.6\nmin = 0\nmax = 4\nwake = {{}}\n"
        ),
        &[],
    )
    .unwrap();
}

#[test]
fn a_sweep_into_async_gives_every_point_the_same_columns() {
    let e = load(&format!("{REALTIME}[sweep]\n\"inference.mode\" = [\"endpoint\", \"async\"]\n"), &[]).unwrap();
    let metrics: Vec<_> = e.points.iter().map(|p| p.design.metrics()).collect();
    assert_eq!(metrics, [ZERO_METRICS.as_slice(); 2]);
    let realtime = e.points[0].design.downcast::<Endpoint>().unwrap();
    let m = run(realtime, 2);
    assert_eq!(m("scale_from_zero"), [0.0, 0.0]);
    assert!(m("backlog_max").iter().all(|&b| b >= 1.0));
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

/// An LLM replica whose requests (100 prompt, 10 output tokens) take 10 ms a
/// step: a lone one is 10 ms of prefill and 9 decode steps, 100 ms.
const LLM_FIXED: &str = "[inference]\nengine = \"llm\"\nprice_per_hour = 1.0\n\
    startup = { dist = \"constant\", value = \"5m30s\" }\n\
    [inference.llm]\nkv_tokens = 100000\nmax_seqs = 4\n\
    step_time = { prefill = [10.0, 0.0, 0.0], decode = [10.0, 0.0, 0.0], overhead = [0.0, 0.0] }\n";

#[test]
fn the_llm_engine_scales_to_zero_and_wakes_as_the_request_engine_does() {
    let ep = endpoint(
        &format!(
            "{LLM_FIXED}[inference.autoscaling]\nmetric = \"invocations-per-instance\"\ntarget = 600\nmin = 0\nmax = 4\n\
             wake = {{}}\n[traffic]\ntrace = \"gap.csv\"\nduration = \"100m\"\ntokens = {{ input = 100, output = 10 }}\n"
        ),
        &[("gap.csv", GAP)],
    );
    assert!(ep.scales_to_zero());
    assert!(ep.metrics().ends_with(&["scale_from_zero", "no_capacity_failures", "queue_wait_p99_s", "backlog_max"]));
    // The same wake as the request engine's (the control plane is shared):
    // requests from 5400 s until the instance serves at 5850 s fail.
    let m = woke_from_zero_with_every_request_accounted(&ep);
    assert!(m("rejected").iter().chain(&m("timed_out")).all(|&x| x == 0.0));
}

#[test]
fn an_asynchronous_llm_endpoint_holds_requests_at_zero_and_serves_them_all() {
    // Quiet for 30 minutes (the fleet goes to zero), then 50 requests/s for a
    // minute: held with no replica, the endpoint woken by its backlog, every
    // request served. The first waits for the wake (2 datapoints of a minute,
    // acted on at 1800 + 120 + 60 s) and the startup (330 s).
    let trace = "time_s,rate\n0,0\n1800,50\n1860,0\n10800,0\n";
    let ep = endpoint(
        &format!(
            "{}[inference.autoscaling]\nmetric = \"backlog-per-instance\"\ntarget = 20\nmin = 0\nmax = 10\n\
             [traffic]\ntrace = \"t.csv\"\nduration = \"3h\"\ntokens = {{ input = 100, output = 10 }}\n",
            LLM_FIXED.replace("[inference]\n", "[inference]\nmode = \"async\"\n")
        ),
        &[("t.csv", trace)],
    );
    let m = run(&ep, 3);
    assert_eq!(m("requests"), m("served"));
    assert_eq!(m("scale_from_zero"), vec![1.0; 3]);
    assert!(m("timed_out").iter().chain(&m("no_capacity_failures")).chain(&m("rejected")).all(|&x| x == 0.0));
    for (backlog, n) in m("backlog_max").iter().zip(m("requests")) {
        // Nothing is served before the wake: the whole burst is held.
        assert_eq!(*backlog, n, "every request of the burst is held at once");
    }
    for wait in m("queue_wait_p99_s") {
        assert!(wait > 1980.0 + 330.0 - 1860.0, "the last held requests wait for the wake and the startup: {wait}");
    }
}
