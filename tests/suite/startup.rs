//! Start-up in stages (SPEC 2.12, docs/autoscaling.md "Start-up in stages"):
//! derived stages against their closed forms, AWS's published cold starts,
//! the switches, and bad input.

use spotsim::base::dist::Dist;
use spotsim::engine::{Purpose, Streams};
use spotsim::scenarios::inference::startup::{Stages, Startup};

use crate::designs::{endpoint, error};

/// An endpoint on `instance` with `[inference.startup]` holding `startup`.
fn staged(instance: &str, startup: &str) -> Stages {
    let text = format!(
        "[inference]\ninstance = \"{instance}\"\nservice_time = \"50ms\"\n[inference.startup]\n{startup}\n\
         [traffic]\nsynthetic = {{ mean_rps = 1 }}\nduration = \"10m\"\n"
    );
    match endpoint(&text, &[]).startup {
        Startup::Staged(s) => *s,
        other => panic!("expected stages, found {other:?}"),
    }
}

fn secs(d: &Dist) -> f64 {
    d.as_constant().expect("a derived stage is constant").as_secs_f64()
}

/// One draw's instance and copy start-ups, in seconds.
fn totals(s: &Stages) -> (f64, f64) {
    let t = s.sample(&mut Streams::new(1, 0).rng(Purpose::Startup));
    (t.instance_secs(), t.copy_secs())
}

/// Qwen3-8B: 8.2e9 parameters in bf16 (https://huggingface.co/Qwen/Qwen3-8B
/// model card, "Number of Parameters: 8.2B"), 16.4 GB.
const QWEN3_8B: &str = "weights_size = \"16.4GB\"";

#[test]
fn the_container_caching_post_is_reproduced_from_derived_stages() {
    // AWS: 525 s without caching, 258 s with (Qwen3-8B, ml.g6.2xlarge, a
    // 17.7 GB image). Tolerance 5%: the remainder's split is assumed.
    let (cold, _) = totals(&staged("ml.g6.2xlarge", QWEN3_8B));
    let (cached, _) = totals(&staged("ml.g6.2xlarge", &format!("{QWEN3_8B}\ncontainer_caching = true")));
    assert!((cold - 525.0).abs() / 525.0 < 0.05, "{cold}");
    assert!((cached - 258.0).abs() / 258.0 < 0.05, "{cached}");
    let cut = 1.0 - cached / cold;
    assert!((cut - (1.0 - 258.0 / 525.0)).abs() < 0.03, "caching cuts {cut}, AWS 0.51");
}

#[test]
fn derived_stages_follow_their_closed_forms() {
    let s = staged("ml.g6.2xlarge", QWEN3_8B);
    // Pull: 17.7 GB at 17.7 GB / 333 s.
    assert!((secs(&s.image_pull) - 333.0).abs() < 1e-6);
    // Download alone: 16.4 GB at 16.4 GB / 77 s (under the 625 MB/s network).
    assert!((secs(&s.weights_download) - 77.0).abs() < 1e-6);
    // Load over PCIe Gen4 x16: 16.4 / 31.5 s.
    assert!((secs(&s.weights_load) - 16.4 / 31.5).abs() < 1e-6);
    let t = s.sample(&mut Streams::new(1, 0).rng(Purpose::Startup));
    assert!((t.weights_download_pulling - 168.0).abs() < 1e-6, "{}", t.weights_download_pulling);
    let expected = 60.0 + 333.0f64.max(168.0) + 16.4 / 31.5 + 96.0 + 30.0;
    assert!((t.instance_secs() - expected).abs() < 1e-6);
    // The weights from a profile's [model]: 8.03e9 x 2 bytes.
    let text = "[inference]\ninstance = \"ml.g6.2xlarge\"\nengine = \"llm\"\nprofile = \"llama-3-8b\"\n\
        [inference.startup]\n[traffic]\nsynthetic = { mean_rps = 1 }\nduration = \"10m\"\n\
        tokens = { input = { dist = \"constant\", value = 100 }, output = { dist = \"constant\", value = 10 } }\n";
    let ep = endpoint(text, &[]);
    let st = ep.startup.stages().expect("stages");
    assert!((secs(&st.weights_download) - 16.06e3 / (16.4e3 / 77.0)).abs() < 1e-3);
    // A small network caps the download: ml.g4dn.xlarge's 5 Gbit/s is
    // above the download's rate, ml.c5.xlarge's 1.25 Gbit/s below it.
    let capped = staged("ml.c5.xlarge", "weights_size = \"10GB\"\nweights_load = \"1s\"");
    assert!((secs(&capped.weights_download) - 10e3 / 156.25).abs() < 1e-6);
}

#[test]
fn fast_model_loader_streams_the_weights_at_the_network_rate() {
    let s = staged("ml.g6.2xlarge", &format!("{QWEN3_8B}\nfast_model_loader = true\ncontainer_caching = true"));
    assert_eq!(secs(&s.weights_load), 0.0);
    assert!((secs(&s.weights_download) - 16.4e3 / 625.0).abs() < 1e-6);
    let (cached, _) = totals(&staged("ml.g6.2xlarge", &format!("{QWEN3_8B}\ncontainer_caching = true")));
    let (fast, _) = totals(&s);
    // AWS: "up to 19%" faster scaling with Fast Model Loader.
    let gain = 1.0 - fast / cached;
    assert!(gain > 0.1 && gain < 0.25, "{gain}");
}

#[test]
fn a_copy_is_faster_by_exactly_provisioning_and_the_pull() {
    let s = staged(
        "ml.g6.2xlarge",
        &format!(
            "{QWEN3_8B}\nprovision = {{ dist = \"uniform\", min = \"40s\", max = \"90s\" }}\n\
             engine_init = {{ dist = \"lognormal\", median = \"90s\", sigma = 0.2 }}"
        ),
    );
    let startup = Startup::Staged(Box::new(s.clone()));
    let streams = Streams::new(5, 2);
    let (mut a, mut b, mut c) =
        (streams.rng(Purpose::Startup), streams.rng(Purpose::Startup), streams.rng(Purpose::Startup));
    for _ in 0..500 {
        let t = s.sample(&mut c);
        let instance = startup.instance(&mut a).as_secs_f64();
        let copy = startup.copy(&mut b).as_secs_f64();
        // Skipped: provisioning, and the pull with the contention it causes.
        let skipped = t.provision + t.image_pull.max(t.weights_download_pulling) - t.weights_download;
        assert!((instance - copy - skipped).abs() < 2e-9, "{instance} {copy} {skipped}");
        assert!(skipped >= t.provision + t.image_pull - t.weights_download);
    }
}

#[test]
fn held_out_customer_start_ups_are_within_the_documented_error() {
    // The post's three customers' P50s, no constant fitted on them:
    // (instance, image GB, weights GB, before, after caching).
    let rows = [
        ("ml.g4dn.xlarge", 15.7, 0.0f64, 381.0, 134.0),
        ("ml.g5.2xlarge", 17.5, 5.8, 346.0, 164.0),
        ("ml.g5.xlarge", 10.6, 6.5, 346.0, 216.0),
    ];
    let mut errors = Vec::new();
    for (instance, image, weights, before, after) in rows {
        let keys = format!("image_size = \"{image}GB\"\nweights_size = \"{}GB\"", weights.max(0.001));
        let (cold, _) = totals(&staged(instance, &keys));
        let (warm, _) = totals(&staged(
            instance,
            &format!("weights_size = \"{}GB\"\ncontainer_caching = true", weights.max(0.001)),
        ));
        errors.push(cold / before - 1.0);
        errors.push(warm / after - 1.0);
    }
    let max = errors.iter().fold(0.0f64, |m, e| m.max(e.abs()));
    let mut sorted: Vec<f64> = errors.iter().map(|e| e.abs()).collect();
    sorted.sort_by(f64::total_cmp);
    let median = 0.5 * (sorted[2] + sorted[3]);
    // docs/autoscaling.md: median 28%, max 49%, every one an over-estimate.
    assert!(median < 0.35 && max < 0.50, "median {median}, max {max}, {errors:?}");
    assert!(errors.iter().all(|&e| e > 0.0), "{errors:?}");
}

#[test]
fn a_single_startup_still_reads_as_before() {
    let text = "[inference]\nprice_per_hour = 1\nservice_time = \"50ms\"\n\
        startup = { dist = \"uniform\", min = \"2m\", max = \"3m\" }\n\
        [traffic]\nsynthetic = { mean_rps = 1 }\nduration = \"10m\"\n";
    assert_eq!(endpoint(text, &[]).startup, Startup::Single(Dist::Uniform { min: 120.0, max: 180.0 }));
    let plain = "[inference]\nprice_per_hour = 1\nservice_time = \"50ms\"\n\
        [traffic]\nsynthetic = { mean_rps = 1 }\nduration = \"10m\"\n";
    assert_eq!(endpoint(plain, &[]).startup, Startup::Single(Dist::Uniform { min: 240.0, max: 480.0 }));
}

fn refused(instance_line: &str, startup: &str) -> String {
    let text = format!(
        "[inference]\n{instance_line}\nservice_time = \"50ms\"\n[inference.startup]\n{startup}\n\
         [traffic]\nsynthetic = {{ mean_rps = 1 }}\nduration = \"10m\"\n"
    );
    error(&text).to_string()
}

#[test]
fn bad_stages_are_refused_by_name() {
    let g6 = "instance = \"ml.g6.2xlarge\"";
    let e = refused(g6, "");
    assert!(e.contains("inference.startup.weights_download") && e.contains("weights_size"), "{e}");
    let e = refused("price_per_hour = 1", "weights_size = \"16GB\"");
    assert!(e.contains("weights_download") && e.contains("names no `inference.instance`"), "{e}");
    let e = refused(g6, "weights_size = \"16GB\"\ncontainer_caching = true\nimage_pull = \"1m\"");
    assert!(
        e.contains("exp.toml:") && e.contains("inference.startup.image_pull") && e.contains("container_caching"),
        "{e}"
    );
    let e = refused(g6, "weights_size = \"16GB\"\nfast_model_loader = true\nweights_load = \"10s\"");
    assert!(e.contains("inference.startup.weights_load") && e.contains("fast_model_loader"), "{e}");
    let e = refused(g6, "weights_size = \"16GB\"\nprovison = \"1m\"");
    assert!(e.contains("provison") && e.contains("provision"), "{e}");
    let e = refused(g6, "weights_size = \"lots\"");
    assert!(e.contains("inference.startup.weights_size") && e.contains("4GB"), "{e}");
    let e = refused(g6, "weights_size = \"16GB\"\nengine_init = 90");
    assert!(e.contains("inference.startup.engine_init") && e.contains("unit"), "{e}");
    let e = refused(g6, "weights_size = \"16GB\"\ncontainer_caching = \"yes\"");
    assert!(e.contains("container_caching") && e.contains("true or false"), "{e}");
    let e = refused("instance = \"ml.inf2.xlarge\"", "weights_size = \"16GB\"");
    assert!(e.contains("weights_load") && e.contains("host-to-GPU"), "{e}");
}

/// A fleet of 1 at 1 request/s meets a 20x burst at 1 h: every stage
/// constant, so each scale-out's first instance serves exactly one
/// instance start-up after the decision.
fn burst(period: &str, extra: &str) -> String {
    format!(
        "replications = 4\n[inference]\ninstance = \"ml.g6.2xlarge\"\nworkers = 4\n\
         service_time = {{ dist = \"constant\", value = \"1s\" }}\n\
         [inference.startup]\nweights_size = \"16.4GB\"\n{extra}\n\
         [inference.autoscaling]\nmetric = \"concurrent-requests-per-copy\"\ntarget = 3\nmin = 1\nmax = 20\n\
         period = \"{period}\"\nmetric_delay = \"{period}\"\n\
         [traffic]\nsynthetic = {{ mean_rps = 1, spikes = [ {{ start = \"1h\", duration = \"1h\", multiplier = 20.0 }} ] }}\n\
         duration = \"3h\"\n"
    )
}

#[test]
fn time_to_capacity_is_the_instance_start_up_after_each_decision() {
    for extra in ["", "container_caching = true", "container_caching = true\nfast_model_loader = true"] {
        let ep = endpoint(&burst("10s", extra), &[]);
        let (instance, _) = totals(ep.startup.stages().unwrap());
        let m = crate::designs::run(&ep, 4);
        for (r, t) in m("time_to_capacity_s").iter().enumerate() {
            assert!((t - instance).abs() < 1e-6, "replication {r}: {t} against {instance} ({extra})");
        }
        let delayed: f64 = m("scale_out_delayed").iter().sum();
        assert!(delayed > 0.0, "a burst that outruns the fleet delays requests while capacity starts");
    }
    // A single distribution has no stages: no scale-out metrics.
    let single = endpoint(REALTIME_SINGLE, &[]);
    assert!(!spotsim::engine::Model::metrics(&single).contains(&"time_to_capacity_s"));
}

const REALTIME_SINGLE: &str = "[inference]\nprice_per_hour = 1\nservice_time = \"50ms\"\n\
    [traffic]\nsynthetic = { mean_rps = 5 }\nduration = \"1h\"\n";

/// The first period's start (s) at whose end a scale-out is under way.
fn first_scale_out(text: &str) -> f64 {
    use spotsim::scenarios::Design;
    let ep = endpoint(text, &[]);
    let t = ep.timeline(Streams::new(7, 0)).expect("an endpoint has a timeline");
    let width = t.columns.len();
    let (ts, open) = (0, t.columns.iter().position(|&c| c == "scale_out_under_way").expect("the column"));
    t.rows.chunks_exact(width).find(|r| r[open] == 1.0).map(|r| r[ts]).expect("a scale-out")
}

#[test]
fn high_resolution_metrics_see_a_burst_within_40_seconds() {
    // Datapoints k of `period` p cover [kp, (k+1)p) and are seen p later;
    // three above the target alarm. From a burst at 3600 s: 10 s periods
    // decide at 3600 + 3 x 10 + 10 = 3640 s, one-minute ones at 3600 + 3 x
    // 60 + 60 = 3840 s. The row holding the decision ends at or after it.
    let fast = first_scale_out(&burst("10s", ""));
    let slow = first_scale_out(&burst("1m", ""));
    assert!((3630.0..=3640.0).contains(&fast), "{fast}");
    assert!((3780.0..=3840.0).contains(&slow), "{slow}");
    assert!(slow - fast >= 150.0);
}

/// Every stage given: 10 + max(30, 20) + 5 + 15 + 10 = 70 s for an
/// instance, 20 + 5 + 15 + 10 = 50 s for a copy; no catalog figure needed.
const GIVEN: &str = "[inference.startup]\nprovision = \"10s\"\nimage_pull = \"30s\"\nweights_download = \"20s\"\n\
    weights_load = \"5s\"\nengine_init = \"15s\"\nhealth_check = \"10s\"\n";

#[test]
fn given_stages_drive_the_llm_and_fluid_engines_too() {
    let (instance, copy) = totals(&staged("ml.g6.2xlarge", &GIVEN.replace("[inference.startup]\n", "")));
    assert_eq!((instance, copy), (70.0, 50.0));
    let scaling = "[inference.autoscaling]\nmetric = \"concurrent-requests-per-copy\"\ntarget = 2\nmin = 1\nmax = 8\n";
    // 80 requests/s of 100 ms each in the spike: more than one replica's 4 sequences.
    let traffic = "[traffic]\nsynthetic = { mean_rps = 2, spikes = [ { start = \"20m\", duration = \"20m\", multiplier = 40.0 } ] }\n\
        duration = \"1h\"\n\
        tokens = { input = { dist = \"constant\", value = 100 }, output = { dist = \"constant\", value = 10 } }\n";
    // LLM_FIXED's own single startup gives way to the stages.
    let fixed = crate::designs::LLM_FIXED.replace("startup = { dist = \"constant\", value = \"5m30s\" }\n", "");
    let llm = format!("replications = 2\n{fixed}{GIVEN}{scaling}{traffic}");
    let ep = endpoint(&llm, &[]);
    let names = spotsim::engine::Model::metrics(&ep);
    assert_eq!(&names[names.len() - 3..], &["time_to_capacity_s", "scale_out_delayed", "scale_out_lost"]);
    let m = crate::designs::run(&ep, 2);
    assert!(m("time_to_capacity_s").iter().all(|&t| t == 70.0), "{:?}", m("time_to_capacity_s"));
    assert!(m("scale_out_delayed").iter().all(|&d| d >= 0.0));
    use spotsim::scenarios::Design;
    let t = ep.timeline(Streams::new(7, 0)).unwrap();
    assert_eq!(&t.columns[t.columns.len() - 3..], &["scale_out_under_way", "scale_out_delayed", "scale_out_lost"]);
    assert!(t.columns.contains(&"ttft_p99_ms"));
    let open = t.columns.len() - 3;
    assert!(t.rows.chunks_exact(t.columns.len()).any(|r| r[open] == 1.0));
    // The fluid engine has no single requests: time to capacity, no counts.
    let fluid = format!(
        "replications = 2\n[inference]\nprice_per_hour = 1\nworkers = 4\nservice_time = \"1s\"\nfidelity = \"fluid\"\n\
         {GIVEN}{scaling}[traffic]\nsynthetic = {{ mean_rps = 2, spikes = [ {{ start = \"20m\", duration = \"20m\", \
         multiplier = 8.0 }} ] }}\nduration = \"1h\"\n"
    );
    let ep = endpoint(&fluid, &[]);
    let m = crate::designs::run(&ep, 2);
    assert!(m("time_to_capacity_s").iter().all(|&t| t == 70.0), "{:?}", m("time_to_capacity_s"));
    assert!(m("scale_out_delayed").iter().all(|d| d.is_nan()));
}

#[test]
fn a_scale_out_cancelled_before_serving_ends_its_window() {
    // A 30 s burst at 1 h: the scale-out at 3640 s launches pending
    // instances (520 s to start); three low 10 s datapoints after the burst
    // scale in, which removes pending instances first. The window closes
    // then, with no time to capacity, instead of lasting to the end.
    let text = "replications = 1\n[inference]\ninstance = \"ml.g6.2xlarge\"\nworkers = 100\n\
        service_time = { dist = \"constant\", value = \"1s\" }\n\
        [inference.startup]\nweights_size = \"16.4GB\"\n\
        [inference.autoscaling]\nmetric = \"concurrent-requests-per-copy\"\ntarget = 3\nmin = 1\nmax = 20\n\
        scale_in_datapoints = 3\n\
        [traffic]\nsynthetic = { mean_rps = 0.05, step = \"10s\", spikes = [ { start = \"1h\", duration = \"30s\", multiplier = 600.0 } ] }\n\
        duration = \"2h\"\n";
    use spotsim::scenarios::Design;
    let ep = endpoint(text, &[]);
    let t = ep.timeline(Streams::new(7, 0)).unwrap();
    let w = t.columns.len();
    let (ts, open, pending) = (0, w - 3, t.columns.iter().position(|&c| c == "instances_pending").unwrap());
    let rows: Vec<&[f64]> = t.rows.chunks_exact(w).collect();
    let first = rows.iter().position(|r| r[open] == 1.0).expect("a scale-out");
    assert!(rows[first][pending] > 0.0);
    let closed = rows[first..].iter().position(|r| r[open] == 0.0).expect("the window closes") + first;
    assert!(rows[closed][ts] < 3600.0 + 520.0, "closed at {}", rows[closed][ts]);
    assert_eq!(rows[closed][pending], 0.0);
    assert!(crate::designs::run(&ep, 1)("time_to_capacity_s")[0].is_nan());
}
