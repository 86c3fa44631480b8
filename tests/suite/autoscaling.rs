//! Autoscaling on SageMaker's metrics (SPEC 2.9): concurrency per copy by
//! hand, and the metric names and targets refused with their ranges.

use spotsim::base::time::SimTime;
use spotsim::engine::Streams;

use crate::designs::{CONSTANT_SECOND, REALTIME, endpoint, error};

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
