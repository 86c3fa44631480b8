//! Asynchronous inference (SPEC 2.9): a burst served in full at the fleet's
//! rate, a wake on the backlog, and the keys that mode refuses.

use spotsim::base::time::SimTime;
use spotsim::engine::Streams;
use spotsim::scenarios::inference::design::{Endpoint, ZERO_METRICS};

use crate::designs::{CONSTANT_SECOND, LLM_FIXED, REALTIME, endpoint, error, load, run};

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
fn a_sweep_into_async_gives_every_point_the_same_columns() {
    let e = load(&format!("{REALTIME}[sweep]\n\"inference.mode\" = [\"endpoint\", \"async\"]\n"), &[]).unwrap();
    let metrics: Vec<_> = e.points.iter().map(|p| p.design.metrics()).collect();
    assert_eq!(metrics, [ZERO_METRICS.as_slice(); 2]);
    let realtime = e.points[0].design.downcast::<Endpoint>().unwrap();
    let m = run(realtime, 2);
    assert_eq!(m("scale_from_zero"), [0.0, 0.0]);
    assert!(m("backlog_max").iter().all(|&b| b >= 1.0));
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
