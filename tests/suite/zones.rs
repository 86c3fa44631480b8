//! Zones, outages, spot endpoints and real spot traces.

use std::path::Path;

use spotsim::commands::verify::zone_checks;
use spotsim::engine::{Runner, Streams};
use spotsim::experiment;
use spotsim::scenarios::inference::design::Endpoint;
use spotsim::scenarios::inference::design::METRICS as ENDPOINT_METRICS;
use spotsim::scenarios::training::METRICS as TRAINING_METRICS;

#[test]
fn zones_match_their_closed_forms() {
    for c in zone_checks(&Runner::new(2).unwrap(), 60, 31) {
        assert!(c.passed(), "{}: simulated {} exact {} z {}", c.name, c.simulated, c.exact, c.z());
    }
}

fn load(dir: &Path, name: &str, text: &str) -> experiment::Experiment {
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    experiment::load(&file, &[]).unwrap_or_else(|e| panic!("{e}"))
}

fn rows(e: &experiment::Experiment, point: usize, replications: u64) -> Vec<Vec<f64>> {
    let design = e.points[point].design.model();
    let width = design.metrics().len();
    Runner::new(2).unwrap().run(design, e.seed, replications, &|_| {}).chunks_exact(width).map(|r| r.to_vec()).collect()
}

fn training(row: &[f64], metric: &str) -> f64 {
    row[TRAINING_METRICS.iter().position(|&m| m == metric).unwrap()]
}

fn endpoint(row: &[f64], metric: &str) -> f64 {
    row[ENDPOINT_METRICS.iter().position(|&m| m == metric).unwrap()]
}

/// Ten 10-minute samples: available for 30 minutes, then 20 unavailable, then
/// 50 available; the trace repeats every 100 minutes.
const AVAILABLE: [u8; 10] = [1, 1, 1, 0, 0, 1, 1, 1, 1, 1];
const PRICES: [f64; 10] = [1.0, 1.0, 2.0, 2.0, 2.0, 3.0, 3.0, 3.0, 3.0, 3.0];

fn write_traces(dir: &Path) {
    // Minutes past 10:00 beyond 59 roll into 11:xx.
    let mut csv = String::from("date,availability\n");
    for (i, a) in AVAILABLE.iter().enumerate() {
        let minutes = i * 10;
        csv += &format!("2023-02-15 {:02}:{:02}:00,{a}\n", 10 + minutes / 60, minutes % 60);
    }
    std::fs::write(dir.join("zone.csv"), csv).unwrap();
    let prices: Vec<String> = PRICES.iter().map(|p| p.to_string()).collect();
    std::fs::write(dir.join("prices.json"), format!("{{\"zone_a\": [{}]}}", prices.join(", "))).unwrap();
    let preempted: Vec<String> = AVAILABLE.iter().map(|a| (1 - a).to_string()).collect();
    std::fs::write(
        dir.join("zone.json"),
        format!("{{\"metadata\": {{\"gap_seconds\": 600}}, \"data\": [{}]}}", preempted.join(", ")),
    )
    .unwrap();
}

const TRACE_JOB: &str = r#"replications = 4
[training]
price_per_hour = 10.0
work = "60m"
[training.checkpoint]
interval = "20m"
[spot]
interruptions = { model = "trace", file = "zone.csv", convention = "available", offset = "0s" }
price_per_hour = 5.0
"#;

#[test]
fn trace_replay_gives_the_hand_worked_job() {
    // From 0 the job computes 20 m and saves; it is reclaimed at 30 m, losing
    // 10 m. It waits until capacity returns at 50 m, then computes 20 + 20 m:
    // done at 90 m. Held 30 + 40 = 70 m, waited 20 m.
    let dir = tempfile::tempdir().unwrap();
    write_traces(dir.path());
    for (name, text) in [
        ("aws.toml", TRACE_JOB.to_string()),
        (
            "gcp.toml",
            TRACE_JOB.replace(
                "file = \"zone.csv\", convention = \"available\"",
                "file = \"zone.json\", convention = \"preempted\"",
            ),
        ),
    ] {
        let e = load(dir.path(), name, &text);
        for row in rows(&e, 0, 4) {
            let m = |k: &str| training(&row, k);
            assert_eq!(m("interruptions"), 1.0, "{name}");
            assert!((m("wall_time_h") - 1.5).abs() < 1e-12, "{name}: {}", m("wall_time_h"));
            assert!((m("billed_time_h") - 70.0 / 60.0).abs() < 1e-12, "{name}");
            assert!((m("waiting_time_h") - 20.0 / 60.0).abs() < 1e-12, "{name}");
            assert!((m("lost_work_h") - 10.0 / 60.0).abs() < 1e-12, "{name}");
            // A fixed spot price without trace prices: 70 minutes at 5 USD/h.
            assert!((m("cost_usd") - 5.0 * 70.0 / 60.0).abs() < 1e-9, "{name}");
        }
    }
}

#[test]
fn trace_prices_are_integrated_over_the_time_held() {
    // Held [0, 30 m) at 1, 1, 2 USD/h and [50, 90 m) at 3 USD/h: 2/3 + 2 USD.
    let dir = tempfile::tempdir().unwrap();
    write_traces(dir.path());
    let text = TRACE_JOB
        .replace("offset = \"0s\" }", "offset = \"0s\", prices = \"prices.json\", price_keys = [\"zone_a\"] }")
        .replace("price_per_hour = 5.0\n", "");
    let e = load(dir.path(), "priced.toml", &text);
    for row in rows(&e, 0, 2) {
        assert!((training(&row, "cost_usd") - (2.0 / 3.0 + 2.0)).abs() < 1e-9, "{}", training(&row, "cost_usd"));
    }
}

#[test]
fn a_random_offset_moves_the_replay_and_all_zones_share_it() {
    let dir = tempfile::tempdir().unwrap();
    write_traces(dir.path());
    let text = TRACE_JOB.replace(", offset = \"0s\"", "").replace("replications = 4", "replications = 400");
    let e = load(dir.path(), "random.toml", &text);
    let walls: Vec<f64> = rows(&e, 0, 400).iter().map(|r| training(r, "wall_time_h")).collect();
    assert!(walls.iter().any(|&w| (w - 1.5).abs() > 1e-9), "offsets differ between replications");
    // The job needs 60 minutes of capacity; the trace gives 80 of every 100.
    assert!(walls.iter().all(|&w| w >= 1.0 - 1e-12));
}

const ZONED_ENDPOINT: &str = r#"replications = 3
[inference]
price_per_hour = 1.0
workers = 2
service_time = { dist = "exponential", mean = "50ms" }
initial_instances = 6
startup = "2m"
[traffic]
synthetic = { mean_rps = 20 }
duration = "2d"
[zones]
count = 3
outage = { mtbf = "6h", duration = { dist = "exponential", mean = "2h" } }
detection = "never"
"#;

#[test]
fn zone_outages_take_a_zones_instances_and_bring_them_back_with_it() {
    let dir = tempfile::tempdir().unwrap();
    let e = load(dir.path(), "zoned.toml", ZONED_ENDPOINT);
    let ep = e.points[0].design.downcast::<Endpoint>().unwrap();
    // Round-robin: two instances per zone; without replacement the count in
    // service moves in steps of two.
    let timeline = ep.timeline_rows(Streams::new(1, 0));
    assert!(timeline.iter().all(|r| r.instances_in_service % 2 == 0 || r.instances_pending > 0));
    assert!(timeline.iter().any(|r| r.instances_in_service < 6), "some outage");
    for row in rows(&e, 0, 3) {
        assert!(endpoint(&row, "zone_outages") > 0.0);
        assert!(endpoint(&row, "capacity_lost_instance_hours") > 0.0);
        assert!(endpoint(&row, "instances_mean") < 6.0);
    }
    // With fast replacement in healthy zones the fleet stays nearer 6.
    let replaced =
        load(dir.path(), "replaced.toml", &ZONED_ENDPOINT.replace("detection = \"never\"", "detection = \"1m\""));
    let slow: f64 = rows(&e, 0, 3).iter().map(|r| endpoint(r, "instances_mean")).sum();
    let fast: f64 = rows(&replaced, 0, 3).iter().map(|r| endpoint(r, "instances_mean")).sum();
    assert!(fast > slow, "replacement restores capacity: {fast} vs {slow}");
}

const SPOT_ENDPOINT: &str = r#"replications = 3
[inference]
price_per_hour = 1.0
workers = 2
service_time = { dist = "exponential", mean = "50ms" }
initial_instances = 6
startup = "2m"
market = "spot"
on_demand_base = 2
[spot]
interruptions = { model = "poisson", mtbf = "3h" }
capacity_wait = "1m"
discount = 0.7
[traffic]
synthetic = { mean_rps = 20 }
duration = "1d"
"#;

#[test]
fn spot_endpoints_keep_their_on_demand_base() {
    let dir = tempfile::tempdir().unwrap();
    let e = load(dir.path(), "spot.toml", SPOT_ENDPOINT);
    let ep = e.points[0].design.downcast::<Endpoint>().unwrap();
    let timeline = ep.timeline_rows(Streams::new(2, 0));
    assert!(timeline.iter().all(|r| r.instances_in_service >= 2), "the on-demand base is never reclaimed");
    assert!(timeline.iter().any(|r| r.instances_in_service < 6), "spot instances are reclaimed");
    for row in rows(&e, 0, 3) {
        // Two on-demand instances at 1 USD/h and four spot ones at 0.3 for a day, less gaps.
        let cost = endpoint(&row, "cost_usd");
        assert!(cost < 24.0 * (2.0 + 4.0 * 0.3) + 1e-9 && cost > 24.0 * 2.0, "{cost}");
        assert!(endpoint(&row, "capacity_lost_instance_hours") > 0.0);
    }
}

#[test]
fn a_zone_wide_reclaim_takes_every_spot_instance_in_the_zone() {
    let dir = tempfile::tempdir().unwrap();
    let text = format!("{SPOT_ENDPOINT}[zones]\ncount = 1\nspot_reclaim = \"zone\"\ndetection = \"10m\"\n");
    let e = load(dir.path(), "zone-reclaim.toml", &text);
    let ep = e.points[0].design.downcast::<Endpoint>().unwrap();
    let timeline = ep.timeline_rows(Streams::new(3, 0));
    // All four spot instances go at once: the fleet drops straight to the base.
    let drops: Vec<u32> = timeline
        .windows(2)
        .filter(|w| w[1].instances_in_service < w[0].instances_in_service)
        .map(|w| w[1].instances_in_service)
        .collect();
    assert!(!drops.is_empty());
    assert!(drops.iter().all(|&n| n == 2), "{drops:?}");
}

#[test]
fn a_bundled_real_trace_runs_both_models() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    for file in ["real-spot-v100.toml", "spot-endpoint.toml", "zones-availability.toml"] {
        let e = experiment::load(&root.join("experiments").join(file), &["replications=2".into()])
            .unwrap_or_else(|err| panic!("{file}: {err}"));
        let design = e.points[0].design.model();
        let out = Runner::new(1).unwrap().run(design, 1, 2, &|_| {});
        assert!(out.iter().all(|x| !x.is_infinite()), "{file}");
    }
}

#[test]
fn fleet_metrics_stop_at_the_end_of_the_window() {
    // Replacements that come into service after the window must not count.
    let dir = tempfile::tempdir().unwrap();
    let text = SPOT_ENDPOINT
        .replace("duration = \"1d\"", "duration = \"6h\"")
        .replace("replications = 3", "replications = 20");
    let e = load(dir.path(), "short.toml", &text);
    for row in rows(&e, 0, 20) {
        assert!((0.0..=1.0).contains(&endpoint(&row, "availability")));
        assert!(endpoint(&row, "instances_mean") <= 6.0 + 1e-9);
        assert!(endpoint(&row, "instances_max") <= 6.0);
    }
}
