//! Inference components (SPEC 2.12): copies packed onto shared instances,
//! managed instance scaling, the copy start-up, cost shared by reserved
//! GPU-hours, scale to zero per component, and the keys' bad input.

use spotsim::engine::{Model, Runner, Streams};
use spotsim::scenarios::Design;
use spotsim::scenarios::inference::components::ComponentsEndpoint;

use crate::designs::load;

/// A component's engine terms: 10 ms steps, so runs are fast and exact.
const FIXED_LLM: &str = "llm = { kv_tokens = 100000, max_seqs = 8, step_time = { prefill = [10.0, 0.0, 0.0], \
    decode = [10.0, 0.0, 0.0], overhead = [0.0, 0.0] } }\n";

fn component(name: &str, gpus: u32, copies: &str, traffic: &str) -> String {
    format!(
        "[[inference.components]]\nname = \"{name}\"\nprofile = \"llama-3-8b\"\ngpus = {gpus}\n{copies}\n{FIXED_LLM}\
         traffic = {{ {traffic}, duration = \"2h\", tokens = {{ input = 100, output = 10 }} }}\n"
    )
}

/// An endpoint of ml.g5.12xlarge (4 GPUs) with `rest` after its keys.
fn endpoint_text(keys: &str, rest: &str) -> String {
    format!(
        "[inference]\ninstance = \"ml.g5.12xlarge\"\nmax_instances = 8\n\
         startup = {{ dist = \"constant\", value = \"10m\" }}\ncopy_startup = {{ dist = \"constant\", value = \"1m\" }}\n\
         {keys}\n{rest}"
    )
}

fn design(text: &str, files: &[(&str, &str)]) -> ComponentsEndpoint {
    let e = load(text, files).unwrap_or_else(|err| panic!("{err}"));
    e.points[0].design.downcast::<ComponentsEndpoint>().expect("an endpoint with components").clone()
}

fn run(ep: &ComponentsEndpoint, replications: u64, threads: usize) -> impl Fn(&str) -> Vec<f64> + use<> {
    let names = ep.metrics();
    let values = Runner::new(threads).unwrap().run(ep as &dyn Model, 7, replications, &|_| {});
    move |name: &str| {
        let m = names.iter().position(|&x| x == name).unwrap_or_else(|| panic!("no metric {name}"));
        values.chunks_exact(names.len()).map(|r| r[m]).collect()
    }
}

/// The timeline's column `name`, a value a minute.
fn timeline(ep: &ComponentsEndpoint) -> impl Fn(&str) -> Vec<f64> + use<> {
    let t = ep.timeline(Streams::new(7, 0)).expect("a timeline");
    move |name: &str| {
        let k = t.columns.iter().position(|&c| c == name).unwrap_or_else(|| panic!("no column {name}"));
        t.rows.chunks_exact(t.columns.len()).map(|r| r[k]).collect()
    }
}

const LIGHT: &str = "synthetic = { mean_rps = 0.2 }";

#[test]
fn fixed_copies_take_the_closed_form_number_of_instances_and_their_hours() {
    for g in 1..=4u32 {
        for k in 1..=6u32 {
            let text = endpoint_text("min_instances = 0", &component("m", g, &format!("min_copies = {k}"), LIGHT));
            let ep = design(&text, &[]);
            let m = run(&ep, 2, 2);
            let want = k.div_ceil(4 / g) as f64;
            assert_eq!(m("instances_max"), vec![want; 2], "{k} copies of {g} GPUs");
            assert!((m("instance_hours")[0] - 2.0 * want).abs() < 1e-9);
            // Idle: the GPUs no copy reserves, all two hours.
            let idle = (4.0 * want - f64::from(k * g)) * 2.0;
            assert!((m("idle_gpu_hours")[0] - idle).abs() < 1e-9, "{k} x {g}: {}", m("idle_gpu_hours")[0]);
            assert!((m("m.copy_hours")[0] - 2.0 * f64::from(k)).abs() < 1e-9);
        }
    }
}

#[test]
fn the_instances_cost_is_the_components_shares_plus_the_idle_capacity() {
    let text = endpoint_text(
        "min_instances = 1",
        &(component("big", 2, "min_copies = 1", LIGHT) + &component("small", 1, "min_copies = 3", LIGHT)),
    );
    let ep = design(&text, &[]);
    let m = run(&ep, 2, 2);
    let price = 7.09; // ml.g5.12xlarge in the catalog
    let cost = m("cost_usd")[0];
    // 2 + 3 GPUs: two instances (binpack puts the 2-GPU copy and two small
    // ones on the first), 3 GPUs idle.
    assert_eq!(m("instances_max")[0], 2.0);
    assert!((cost - 2.0 * 2.0 * price).abs() < 0.05 * cost, "{cost}");
    let parts = m("big.cost_usd")[0] + m("small.cost_usd")[0] + m("idle_cost_usd")[0];
    assert!((cost - parts).abs() < 1e-9 * cost, "{cost} against {parts}");
    assert!((m("big.cost_usd")[0] - 2.0 * 2.0 / 4.0 * cost / 4.0).abs() < 1e-9 * cost);
    assert!((m("idle_gpu_hours")[0] - 3.0 * 2.0).abs() < 1e-9);
}

/// 0.5 requests/s for 30 minutes, then 40/s: the concurrency per copy rises
/// far above the target and the component scales out.
const STEP: &str = "time_s,rate\n0,0.5\n1800,40\n";

fn step_design(gpus: u32) -> ComponentsEndpoint {
    let copies = "min_copies = 1\nmax_copies = 4\n\
        autoscaling = { metric = \"concurrent-requests-per-copy\", target = 2, scale_out_cooldown = \"0s\" }";
    let traffic = "trace = \"step.csv\", format = \"rates\"";
    design(&endpoint_text("min_instances = 1", &component("m", gpus, copies, traffic)), &[("step.csv", STEP)])
}

/// The longest run of minutes in which `pending` is above zero.
fn longest_run(pending: &[f64]) -> usize {
    pending.split(|&p| p == 0.0).map(<[f64]>::len).max().unwrap_or(0)
}

#[test]
fn copies_scale_out_with_the_copy_startup_where_an_instance_has_room() {
    // 1-GPU copies: the first instance holds four, so every new copy starts
    // in 1 minute and no instance is ever pending.
    let t = timeline(&step_design(1));
    assert!(t("m.copies_in_service").iter().any(|&c| c >= 2.0), "it scaled out");
    assert!(t("instances_pending").iter().all(|&p| p == 0.0));
    assert!(t("instances_in_service").iter().all(|&n| n == 1.0));
    let pending = t("m.copies_pending");
    assert!(longest_run(&pending) >= 1 && longest_run(&pending) <= 2, "{pending:?}");
    // 4-GPU copies: every new copy needs an instance and its 10 minutes.
    let t = timeline(&step_design(4));
    assert!(t("instances_pending").iter().any(|&p| p > 0.0));
    let pending = t("m.copies_pending");
    assert!((9..=11).contains(&longest_run(&pending)), "{pending:?}");
    assert_eq!(
        t("instances_in_service").iter().cloned().fold(0.0, f64::max),
        t("m.copies_in_service").iter().cloned().fold(0.0, f64::max)
    );
}

/// 5 requests/s for 10 minutes, none until minute 90, then 5/s again.
const GAP: &str = "time_s,rate\n0,5\n600,0\n5400,5\n6000,5\n";

#[test]
fn a_component_scales_to_zero_its_instance_goes_and_the_first_request_wakes_it() {
    let copies = "min_copies = 0\nmax_copies = 2\n\
        autoscaling = { metric = \"concurrent-requests-per-copy\", target = 4, wake = {} }";
    let text =
        endpoint_text("min_instances = 0", &component("m", 1, copies, "trace = \"gap.csv\", format = \"rates\""));
    let ep = design(&text, &[("gap.csv", GAP)]);
    let t = timeline(&ep);
    let minute = |k: usize| (t("instances_in_service")[k], t("m.copies_in_service")[k]);
    assert!((40..90).all(|k| minute(k) == (0.0, 0.0)), "no copy and no instance in the gap");
    // After minute 90 the wake rule asks for a copy: a new instance and its 10 minutes.
    assert!((92..100).any(|k| t("instances_pending")[k] == 1.0));
    assert_eq!(minute(110), (1.0, 1.0));
    let m = run(&ep, 3, 2);
    assert_eq!(m("m.scale_from_zero"), vec![1.0; 3]);
    assert!(m("m.no_capacity_failures").iter().all(|&f| f > 1000.0));
    // Billed: the first instance until the gap empties it, the second from the wake.
    // An always-on instance would bill 2 hours: the first goes in the gap,
    // the second comes at the wake (minute 92) and bills its last 28 minutes.
    assert!(m("instance_hours").iter().all(|&h| h > 28.0 / 60.0 && h < 1.0), "{:?}", m("instance_hours"));
}

#[test]
fn separate_endpoints_do_not_share_instances() {
    let both = component("a", 1, "min_copies = 1", LIGHT) + &component("b", 1, "min_copies = 1", LIGHT);
    let shared = design(&endpoint_text("min_instances = 0", &both), &[]);
    let separate = design(&endpoint_text("min_instances = 0\nshared = false", &both), &[]);
    let (s, p) = (run(&shared, 2, 2), run(&separate, 2, 2));
    assert_eq!(s("instances_max")[0], 1.0);
    assert_eq!(p("instances_max")[0], 2.0);
    assert!((s("idle_gpu_hours")[0] - 2.0 * 2.0).abs() < 1e-9);
    assert!((p("idle_gpu_hours")[0] - 2.0 * 3.0 * 2.0).abs() < 1e-9);
    // Each component's own requests are the same in both: its own streams.
    assert_eq!(s("a.requests"), p("a.requests"));
    assert_ne!(s("a.requests"), s("b.requests"));
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let ep = step_design(1);
    let (one, two) = (run(&ep, 4, 1), run(&ep, 4, 2));
    for metric in ["cost_usd", "m.ttft_p99_ms", "m.copies_mean", "instances_mean"] {
        assert_eq!(one(metric), two(metric), "{metric}");
    }
}

/// The message of a refused experiment, with its key.
fn refused(text: &str) -> (String, String) {
    let e = load(text, &[]).expect_err("should be refused");
    (e.key.clone().unwrap_or_default(), format!("{e}"))
}

#[test]
fn bad_component_keys_are_refused_by_name() {
    let good = component("m", 1, "min_copies = 1", LIGHT);
    let cases: Vec<(String, &str, &str)> = vec![
        (endpoint_text("", &good.replace("gpus = 1", "gpus = 8")), "inference.components[0].gpus", "more than one ml.g5.12xlarge has"),
        (endpoint_text("", &good.replace("min_copies = 1", "min_copie = 1")), "inference.components[0].min_copie", "min_copies"),
        (endpoint_text("", &(good.clone() + &good)), "inference.components[1].name", "a second component named"),
        (endpoint_text("", &good.replace("min_copies = 1", "min_copies = 0")), "inference.components[0].min_copies", "without [autoscaling]"),
        (
            endpoint_text("", &good.replace("min_copies = 1", "min_copies = 0\nmax_copies = 2\nautoscaling = { metric = \"concurrent-requests-per-copy\", target = 4 }")),
            "inference.components[0].min_copies",
            "without a way to wake",
        ),
        (
            endpoint_text("", &good.replace("min_copies = 1", "max_copies = 2\nautoscaling = { metric = \"invocations-per-instance\", target = 4 }")),
            "inference.components[0].autoscaling.metric",
            "invocations-per-copy",
        ),
        (
            endpoint_text("", &good.replace("min_copies = 1", "max_copies = 2\nautoscaling = { metric = \"invocations-per-copy\", target = 4, max = 3 }")),
            "inference.components[0].autoscaling.max",
            "max_copies",
        ),
        (endpoint_text("", &good.replace("llama-3-8b", "bert-base")), "inference.components[0].profile", "no [model] table"),
        (endpoint_text("", &good.replace("max_seqs = 8", "max_seqs = 8, replicas = 2")), "inference.components[0].llm.replicas", "one replica"),
        (endpoint_text("workers = 4", &good), "inference.workers", "workers"),
        (endpoint_text("engine = \"llm\"", &good), "inference.engine", "belongs to each component"),
        (endpoint_text("", &good).replace("max_instances = 8\n", ""), "inference.max_instances", "managed instance scaling"),
        (endpoint_text("min_instances = 9", &good), "inference.max_instances", ">= `min_instances`"),
        (endpoint_text("", &good).replace("ml.g5.12xlarge", "ml.c5.xlarge"), "inference.instance", "not a GPU instance type"),
        (endpoint_text("", &good.replace("name = \"m\"", "name = \"a b\"")), "inference.components[0].name", "letters, digits"),
        (endpoint_text("", &good.replace("placement", "x").replace("gpus = 1", "gpus = 1\nplacement = \"pack\"")), "inference.components[0].placement", "binpack"),
        (endpoint_text("", &good) + "[traffic]\nsynthetic = { mean_rps = 1 }\nduration = \"1h\"\n", "traffic", "each component's `traffic`"),
        (endpoint_text("", &(good.clone() + &component("n", 1, "min_copies = 1", LIGHT).replace("\"2h\"", "\"3h\""))), "inference.components[1].traffic.duration", "as long as the first"),
    ];
    for (text, key, words) in cases {
        let (k, message) = refused(&text);
        assert_eq!(k, key, "{message}");
        assert!(message.contains(words), "{key}: {message}");
    }
}

#[test]
fn a_design_without_components_is_the_single_model_endpoint() {
    let e = load("[inference]\nprice_per_hour = 1\nservice_time = \"50ms\"\n[traffic]\nsynthetic = { mean_rps = 5 }\nduration = \"1h\"\n", &[]).unwrap();
    assert!(e.points[0].design.downcast::<spotsim::scenarios::inference::design::Endpoint>().is_some());
    assert!(e.points[0].design.downcast::<ComponentsEndpoint>().is_none());
}
