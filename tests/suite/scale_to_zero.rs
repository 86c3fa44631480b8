//! Scale to zero (SPEC 2.9): an endpoint empties in a gap and wakes after
//! its startup, for both engines; a minimum of 0 needs a way to wake.

use spotsim::engine::{Model, Streams};
use spotsim::scenarios::inference::design::{Endpoint, METRICS, ZERO_METRICS};

use crate::designs::{CONSTANT_SECOND, LLM_FIXED, REALTIME, endpoint, error, load, run};

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
