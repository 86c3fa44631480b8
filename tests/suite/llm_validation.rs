//! The LLM engine's roofline held to published measurements it was not
//! fitted to (tests/data/llm/heldout.csv; docs/llm-serving.md,
//! "Validation"). Every row runs through the engine: a lone request, or a
//! fixed batch arriving at once, on the design that reproduces the
//! measurement. The test fails if the engine's value moves from the one
//! the docs' table shows, or if its error leaves the documented bound.

use std::collections::HashMap;
use std::path::Path;

use spotsim::engine::Runner;
use spotsim::experiment;

use super::Rows;

fn data() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/data/llm"))
}

/// One held-out row's design, run once; the metric it names.
fn simulate(row: &HashMap<String, String>) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let field = |k: &str| row.get(k).unwrap_or_else(|| panic!("no column {k}")).as_str();
    let profile = field("profile");
    let profile =
        if profile.ends_with(".toml") { data().join(profile).display().to_string() } else { profile.to_string() };
    // `requests_at_once` per replica: least-outstanding routing spreads
    // them evenly. All at one instant, alone on the endpoint, so all give
    // the value (a trace with no gap plays once over the duration).
    let at_once: u32 = field("requests_at_once").parse::<u32>().unwrap() * field("replicas").parse::<u32>().unwrap();
    let mut trace = String::from("time_s,input,output\n");
    for _ in 0..at_once {
        trace += &format!("0,{},{}\n", field("input_tokens"), field("output_tokens"));
    }
    std::fs::write(dir.path().join("trace.csv"), trace).unwrap();
    let text = format!(
        r#"
name = "{id}"
replications = 1
[inference]
mode = "endpoint"
instance = "{instance}"
engine = "llm"
profile = "{profile}"
initial_instances = 1
[inference.llm]
replicas = {replicas}
scheduler = "vllm"
step_time = "roofline"
[traffic]
trace = "trace.csv"
format = "requests"
replay = "as-is"
input_tokens_column = "input"
output_tokens_column = "output"
duration = "1h"
"#,
        id = field("id"),
        instance = field("instance"),
        replicas = field("replicas"),
    );
    std::fs::write(dir.path().join("exp.toml"), text).unwrap();
    let e = experiment::load(&dir.path().join("exp.toml"), &[]).unwrap_or_else(|err| panic!("{err}"));
    let values = Runner::new(1).unwrap().run(e.points[0].design.model(), 1, 1, &|_| {});
    Rows { metrics: e.metrics(), values }.only(field("metric"))
}

#[test]
fn the_roofline_stays_within_its_documented_error_on_held_out_measurements() {
    let mut reader = csv::Reader::from_path(data().join("heldout.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let mut failures = Vec::new();
    let mut n = 0;
    for record in reader.records() {
        let record = record.unwrap();
        let row: HashMap<String, String> =
            headers.iter().zip(record.iter()).map(|(h, v)| (h.into(), v.into())).collect();
        if row["load"] != "fixed" {
            continue;
        }
        let num = |k: &str| row[k].parse::<f64>().unwrap_or_else(|_| panic!("{k} of {}", row["id"]));
        let got = simulate(&row);
        let (measured, documented, bound) = (num("measured_ms"), num("simulated_ms"), num("bound_pct"));
        let error = 100.0 * (got / measured - 1.0);
        if (got / documented - 1.0).abs() > 0.005 || error.abs() > bound {
            failures.push(format!(
                "{}: engine {got:.3} ms, docs {documented:.3} ms, measured {measured} ms: error {error:+.1}% (bound {bound}%)",
                row["id"]
            ));
        }
        n += 1;
    }
    assert!(n >= 15, "only {n} held-out rows");
    assert!(
        failures.is_empty(),
        "update docs/llm-serving.md and heldout.csv, or fix the drift:\n{}",
        failures.join("\n")
    );
}

/// `n` token counts whose sorted values are the lognormal's quantiles at
/// (i + ½)/n, clamped to `lo..=hi`: a deterministic sample of the shape.
fn lognormal_quantiles(median: f64, sigma: f64, n: usize) -> Vec<f64> {
    use statrs::distribution::{ContinuousCDF, Normal};
    let z = Normal::new(0.0, 1.0).unwrap();
    (0..n).map(|i| (median.ln() + sigma * z.inverse_cdf((i as f64 + 0.5) / n as f64)).exp()).collect()
}

/// A saturation row: `requests_at_once` requests per replica arrive at
/// time 0 with lognormal token counts (ShareGPT's filter of vLLM's
/// benchmark: prompt ≤ 1024, prompt + output ≤ 2048); the output throughput
/// (`output_tokens_per_s`) or requests (`requests_per_s`) per replica over
/// the makespan, found as the smallest end-to-end `slo` that every request
/// meets (to 0.1%); or the metric the row names, such as `tpot_p50_ms`,
/// over the burst. Fixed lengths when both spreads are 0; `max_seqs` and
/// `chunk` columns, where not empty, set the engine's.
fn simulate_burst(row: &HashMap<String, String>) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let field = |k: &str| row.get(k).unwrap_or_else(|| panic!("no column {k}")).as_str();
    let num = |k: &str| field(k).parse::<f64>().unwrap_or_else(|_| panic!("{k} of {}", field("id")));
    let replicas = num("replicas") as usize;
    let n = num("requests_at_once") as usize;
    let input = lognormal_quantiles(num("input_tokens"), num("input_sigma"), n);
    let output = lognormal_quantiles(num("output_tokens"), num("output_sigma"), n);
    let mut trace = String::from("time_s,input,output\n");
    let mut total = 0.0;
    // Fixed lengths (both spreads 0, as trtllm-bench's synthetic sets) are
    // taken as they are; sampled ones get ShareGPT's filter.
    let sampled = num("input_sigma") > 0.0 || num("output_sigma") > 0.0;
    for i in 0..n {
        let (prompt, out) = (input[i].round(), output[(i * 389) % n].round());
        // 389 is prime to n: prompt and output lengths unpaired.
        let (prompt, out) = if sampled {
            let prompt = prompt.clamp(4.0, 1024.0);
            (prompt, out.clamp(4.0, 2048.0 - prompt))
        } else {
            (prompt, out)
        };
        for _ in 0..replicas {
            trace += &format!("0,{prompt},{out}\n");
        }
        total += out;
    }
    // One late request ends the trace, so it does not repeat within the run.
    trace += "40000,4,2\n";
    std::fs::write(dir.path().join("trace.csv"), trace).unwrap();
    let profile = field("profile");
    let profile =
        if profile.ends_with(".toml") { data().join(profile).display().to_string() } else { profile.to_string() };
    // Engine settings a row may give (`max_seqs`, `chunk`); empty: the default.
    let settings: String = ["max_seqs", "chunk"]
        .iter()
        .filter_map(|k| row.get(*k).filter(|v| !v.is_empty()).map(|v| format!("{k} = {v}\n")))
        .collect();
    // The metric `read` of one run with an end-to-end `slo` of `slo_s`.
    let run = |slo_s: f64, read: &str| {
        let text = format!(
            r#"
name = "{id}"
replications = 1
[inference]
mode = "endpoint"
instance = "{instance}"
engine = "llm"
profile = "{profile}"
initial_instances = 1
queue_limit = 1000000
timeout = "12h"
slo = "{slo_ms}ms"
[inference.llm]
replicas = {replicas}
scheduler = "{scheduler}"
step_time = "roofline"
serving_engine = "{engine}"
{settings}
[traffic]
trace = "trace.csv"
format = "requests"
replay = "as-is"
input_tokens_column = "input"
output_tokens_column = "output"
duration = "39000s"
"#,
            id = field("id"),
            instance = field("instance"),
            scheduler = field("scheduler"),
            engine = field("engine"),
            slo_ms = (slo_s * 1e3).round() as u64,
        );
        std::fs::write(dir.path().join("exp.toml"), text).unwrap();
        let e = experiment::load(&dir.path().join("exp.toml"), &[]).unwrap_or_else(|err| panic!("{err}"));
        let values = Runner::new(1).unwrap().run(e.points[0].design.model(), 1, 1, &|_| {});
        let rows = Rows { metrics: e.metrics(), values };
        rows.only(read)
    };
    let per_makespan = match field("metric") {
        "output_tokens_per_s" => total,
        "requests_per_s" => n as f64,
        metric => return run(1.0, metric),
    };
    let (mut lo, mut hi) = (1.0f64, 38000.0f64);
    while hi / lo > 1.001 {
        let mid = (lo * hi).sqrt();
        // The late request (in the counts) always meets it.
        if run(mid, "slo_attainment") >= 1.0 { hi = mid } else { lo = mid }
    }
    per_makespan / hi
}

/// Held-out saturation rows (`load = "burst"` in heldout.csv): each within
/// its documented value and bound; and the acceptance of issue 27 on them,
/// median and max |error|.
#[test]
fn saturation_throughput_stays_within_its_documented_error() {
    let mut reader = csv::Reader::from_path(data().join("heldout.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    let (mut failures, mut errors) = (Vec::new(), Vec::new());
    for record in reader.records() {
        let record = record.unwrap();
        let row: HashMap<String, String> =
            headers.iter().zip(record.iter()).map(|(h, v)| (h.into(), v.into())).collect();
        if row["load"] != "burst" {
            continue;
        }
        let num = |k: &str| row[k].parse::<f64>().unwrap();
        let got = simulate_burst(&row);
        let (measured, documented, bound) = (num("measured_ms"), num("simulated_ms"), num("bound_pct"));
        let error = 100.0 * (got / measured - 1.0);
        if (got / documented - 1.0).abs() > 0.005 || error.abs() > bound {
            failures.push(format!(
                "{}: engine {got:.3} ms, docs {documented:.3} ms, measured {measured} ms: error {error:+.1}% (bound {bound}%)",
                row["id"]
            ));
        }
        errors.push(error.abs());
    }
    // Issue 27's acceptance is median |error| <= 15% and max <= 35%. It does
    // not hold on these rows (docs/llm-serving.md, "Held-out error at
    // saturation", gives it per GPU family and TP): the test holds the figures
    // the docs state, so a row added or a change to the engine that moves
    // them must update both.
    errors.sort_by(f64::total_cmp);
    let mid = errors.len() / 2;
    let median = if errors.len() % 2 == 1 { errors[mid] } else { (errors[mid - 1] + errors[mid]) / 2.0 };
    let max = errors[errors.len() - 1];
    let (documented_median, documented_max, documented_holds) = (8.4, 48.5, false);
    assert!(
        (median - documented_median).abs() < 0.1
            && (max - documented_max).abs() < 0.1
            && (median <= 15.0 && max <= 35.0) == documented_holds,
        "held-out saturation |errors| {errors:?}: median {median:.1}, max {max:.1}; docs say {documented_median}, {documented_max}\n{}",
        failures.join("\n")
    );
    assert!(
        failures.is_empty(),
        "update docs/llm-serving.md and heldout.csv, or fix the drift:\n{}",
        failures.join("\n")
    );
}

/// The saturation rows constants were fitted on (training-saturation.csv):
/// each row's id, the constant it trains and its error (percent).
fn saturation_training_errors() -> Vec<(String, String, f64)> {
    let mut reader = csv::Reader::from_path(data().join("training-saturation.csv")).unwrap();
    let headers = reader.headers().unwrap().clone();
    reader
        .records()
        .map(|record| {
            let record = record.unwrap();
            let row: HashMap<String, String> =
                headers.iter().zip(record.iter()).map(|(h, v)| (h.into(), v.into())).collect();
            let got = simulate_burst(&row);
            let measured = row["measured_ms"].parse::<f64>().unwrap();
            (row["id"].clone(), row["constant"].clone(), 100.0 * (got / measured - 1.0))
        })
        .collect()
}

/// Each constant fitted at saturation is the fixed point of its training
/// rows: their median error is 0 (within 2.5%), so the constant neither
/// over- nor under-states what its rows measured.
#[test]
fn the_saturation_constants_are_the_ones_their_training_rows_give() {
    let errors = saturation_training_errors();
    for constant in ["TRTLLM_OVERHEAD_PER_SEQUENCE_MS", "PCIE_BUS_EFFICIENCY", "CROSS_SOCKET_BUS_EFFICIENCY"] {
        let mut of: Vec<f64> = errors.iter().filter(|(_, c, _)| c == constant).map(|(_, _, e)| *e).collect();
        assert!(of.len() >= 5, "{constant}: {} training rows", of.len());
        of.sort_by(f64::total_cmp);
        let mid = of.len() / 2;
        let median = if of.len() % 2 == 1 { of[mid] } else { (of[mid - 1] + of[mid]) / 2.0 };
        assert!(median.abs() <= 2.5, "{constant}: median error {median:+.1}% on its training rows {errors:?}");
    }
}

#[test]
fn the_constants_are_the_ones_their_training_data_give() {
    use spotsim::scenarios::inference::llm::roofline::{
        ACTIVATION_HIDDENS_PER_TOKEN, ALLREDUCE_BASE_US, CROSS_SOCKET_BUS_EFFICIENCY, DECODE_BANDWIDTH_EFFICIENCY,
        DECODE_MFU, ITERATION_OVERHEAD_MS, NON_TORCH_GIB, OVERHEAD_PER_SEQUENCE_MS, PCIE_BUS_EFFICIENCY, PREFILL_MFU,
        TRTLLM_OVERHEAD_PER_SEQUENCE_MS,
    };
    let mut reader = csv::Reader::from_path(data().join("training.csv")).unwrap();
    let mut seen = 0;
    for record in reader.records() {
        let r = record.unwrap();
        let (name, value) = (&r[0], r[1].parse::<f64>().unwrap());
        let figures: Vec<f64> = r[3].split(';').map(|x| x.parse().unwrap()).collect();
        let constant = match name {
            "DECODE_BANDWIDTH_EFFICIENCY" => DECODE_BANDWIDTH_EFFICIENCY,
            "PREFILL_MFU" => PREFILL_MFU,
            "DECODE_MFU" => DECODE_MFU,
            "ACTIVATION_HIDDENS_PER_TOKEN" => ACTIVATION_HIDDENS_PER_TOKEN,
            "NON_TORCH_GIB" => NON_TORCH_GIB,
            "OVERHEAD_PER_SEQUENCE_MS" => OVERHEAD_PER_SEQUENCE_MS,
            "ALLREDUCE_BASE_US" => ALLREDUCE_BASE_US,
            "ITERATION_OVERHEAD_MS" => ITERATION_OVERHEAD_MS,
            "TRTLLM_OVERHEAD_PER_SEQUENCE_MS" => TRTLLM_OVERHEAD_PER_SEQUENCE_MS,
            "PCIE_BUS_EFFICIENCY" => PCIE_BUS_EFFICIENCY,
            "CROSS_SOCKET_BUS_EFFICIENCY" => CROSS_SOCKET_BUS_EFFICIENCY,
            other => panic!("unknown constant {other}"),
        };
        assert_eq!(constant, value, "{name}: the code and training.csv disagree");
        // The constant is the median (or mean) of its training figures, rounded.
        let mut sorted = figures.clone();
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 { sorted[mid] } else { (sorted[mid - 1] + sorted[mid]) / 2.0 };
        let mean = figures.iter().sum::<f64>() / figures.len() as f64;
        let near = |x: f64| (x / value - 1.0).abs() < 0.025;
        assert!(near(median) || near(mean), "{name} = {value}, training figures {figures:?}");
        seen += 1;
    }
    assert_eq!(seen, 11);
}

/// Open loop against the peer: the engine and Vidur on the same configuration
/// (tests/data/llm/vidur-peer.toml: one Llama-3-8B replica on an A100, Poisson
/// arrivals, 512 + 128 tokens, step times fitted to Vidur's own). Each metric
/// (mean over replications of the per-replication percentile) must stay within
/// the bound docs/llm-serving.md states for its scheduler.
#[test]
fn the_engine_stays_near_vidur_under_poisson_load() {
    let e = experiment::load(&data().join("vidur-peer.toml"), &[]).unwrap_or_else(|err| panic!("{err}"));
    let runner = Runner::new(2).unwrap();
    let mut got = HashMap::new();
    for p in &e.points {
        let values = runner.run(p.design.model(), e.seed, e.replications, &|_| {});
        let rows = Rows { metrics: e.metrics(), values };
        let (scheduler, traffic) = (&p.values[0], &p.values[1]);
        let rps = traffic.split("mean_rps = ").nth(1).and_then(|t| t.split(' ').next()).unwrap().to_string();
        for m in e.metrics() {
            got.insert((scheduler.clone(), rps.clone(), m.to_string()), rows.mean(m));
        }
    }
    let mut reader = csv::Reader::from_path(data().join("vidur-peer.csv")).unwrap();
    let mut failures = Vec::new();
    for record in reader.records() {
        let r = record.unwrap();
        let key = (r[0].to_string(), r[1].to_string(), r[2].to_string());
        let vidur: f64 = r[3].parse().unwrap();
        let ours = got[&key];
        let error = 100.0 * (ours / vidur - 1.0);
        // vllm: within 16% everywhere; chunked: the mixed-iteration rule adds
        // the decode intercept to a chunk's prefill terms, up to +51% on TTFT.
        let bound = if key.0 == "vllm" { 16.0 } else { 55.0 };
        if error.abs() > bound {
            failures.push(format!("{key:?}: spotsim {ours:.2} ms, Vidur {vidur} ms: {error:+.1}% (bound {bound}%)"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
