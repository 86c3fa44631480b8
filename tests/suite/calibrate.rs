//! `spotsim calibrate` (SPEC 2.10): recovery of a known table from files
//! simulated with it, real published files, and refusals that write nothing.

use std::path::{Path, PathBuf};

use rand::{RngExt, SeedableRng};
use spotsim::commands::calibrate::replay::{self, Replayer};
use spotsim::commands::calibrate::{self, Holdout, Options, fit};
use spotsim::input::bench::{BenchRun, Format, Load, Measured, Request};

fn options(profile: &str, instance: &str) -> Options {
    Options {
        profile: profile.into(),
        instance: instance.into(),
        replicas: 1,
        holdout: Holdout::Heaviest,
        format: None,
        engine: None,
        seed: 1,
        iterations: calibrate::ITERATIONS,
        pooled_requests: replay::POOLED_REQUESTS,
    }
}

/// A run at `rps` of `n` requests whose measurements are the engine's under
/// `truth` (another seed than the fit's), each percentile times 1 ± 2%.
fn simulated_run(
    ep: &spotsim::scenarios::inference::design::Endpoint,
    truth: &spotsim::scenarios::inference::llm::FitMs,
    rps: f64,
    n: usize,
    k: u64,
) -> BenchRun {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(k);
    let requests: Vec<Request> = (0..n)
        .map(|_| {
            // Prompts 100 to 1,500 tokens, outputs 20 to 300.
            let input = (100.0 * 15f64.powf(rng.random::<f64>())) as u32;
            let output = (20.0 * 15f64.powf(rng.random::<f64>())) as u32;
            Request { input, output, send_s: None }
        })
        .collect();
    let mut run = BenchRun {
        file: format!("sim-{rps}.json"),
        sha256: "0".repeat(64),
        format: Format::Vllm,
        engine: Some("spotsim".into()),
        version: None,
        model: None,
        load: Load::Rate { rps, burstiness: 1.0 },
        requests: Some(requests),
        input_stats: None,
        output_stats: None,
        completed: n as u32,
        duration_s: Some(n as f64 / rps),
        measured: Measured::default(),
        notes: Vec::new(),
    };
    let s = Replayer::new(ep, &run, 1000 + k, replay::POOLED_REQUESTS).simulate(truth);
    let mut noise = |x: f64| x * (1.0 + 0.02 * (2.0 * rng.random::<f64>() - 1.0));
    run.measured = Measured {
        ttft_p50_ms: Some(noise(s.ttft_p50_ms)),
        ttft_p90_ms: Some(noise(s.ttft_p90_ms)),
        ttft_p99_ms: Some(noise(s.ttft_p99_ms)),
        tpot_p50_ms: Some(noise(s.tpot_p50_ms)),
        e2e_p50_ms: Some(noise(s.e2e_p50_ms)),
        output_tokens_per_s: None,
        requests_per_s: Some(rps),
    };
    run
}

#[test]
fn a_known_table_is_recovered_and_predicts_a_heavier_load() {
    let o = Options { pooled_requests: 600, ..options("llama-3-8b", "ml.g6e.xlarge") };
    let ep = calibrate::design(&o).unwrap();
    let start = fit::roofline_table(&ep.llm.as_ref().unwrap().roofline.unwrap());
    // The truth: slower than the roofline, by other factors per term.
    let mut truth = start.clone();
    truth.prefill[0] *= 1.3;
    truth.prefill[1] *= 1.6;
    truth.decode[0] *= 1.25;
    truth.decode[1] *= 1.8;
    truth.decode[2] = 0.03;
    let runs: Vec<BenchRun> = [(2.0, 1), (5.0, 2), (8.0, 3), (11.0, 4)]
        .iter()
        .map(|&(rps, k)| simulated_run(&ep, &truth, rps, 300, k))
        .collect();
    let c = calibrate::calibrate_runs(runs, &ep, &o).unwrap();
    let got = &c.table;
    // The terms the runs pin down, within stated tolerances: the decode
    // intercept 5%, the prefill and decode slopes 25% (TTFTs here are short
    // prompts plus queueing; the context slope is a small share of a step).
    let close = |name: &str, got: f64, want: f64, tol: f64| {
        assert!((got / want - 1.0).abs() <= tol, "{name}: fitted {got}, true {want} (tolerance {tol})\n{}", c.render());
    };
    close("decode.a", got.decode[0], truth.decode[0], 0.05);
    close("prefill.b", got.prefill[1], truth.prefill[1], 0.25);
    close("decode.b", got.decode[1], truth.decode[1], 0.25);
    // The heaviest load, held out, predicted within 10% on TTFT p50 and TPOT p50.
    let held = c.rows.iter().find(|r| r.held_out).unwrap();
    assert_eq!(held.file, "sim-11.json");
    let (ttft, tpot) = c.held_out_error.unwrap();
    assert!(ttft <= 0.10 && tpot <= 0.10, "held-out errors {ttft} {tpot}\n{}", c.render());
    assert!(c.verdict().contains("good"), "{}", c.verdict());
}

fn data(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/bench").join(name)
}

#[test]
fn real_vllm_files_parse_calibrate_and_record_their_backtest() {
    let files: Vec<PathBuf> =
        ["01", "04", "16", "inf"].iter().map(|q| data(&format!("vllm-llama-3.3-70b-tp8-a100-qps-{q}.json"))).collect();
    let mut o = options("llama-3-70b", "ml.p4d.24xlarge");
    (o.iterations, o.pooled_requests) = (100, 400);
    let c = calibrate::calibrate(&files, &o).unwrap();
    assert_eq!(c.rows.len(), 4);
    assert!(c.runs.iter().all(|r| r.per_request() && r.completed == 200), "every request of the four completed");
    assert_eq!(c.runs[3].load, Load::AllAtOnce);
    assert_eq!(c.tensor_parallel, 8);
    // The fit's runs are matched on TPOT within 25%; docs/calibrate.md records the table.
    for r in c.rows.iter().filter(|r| !r.held_out) {
        assert!(r.error("tpot_p50").unwrap().abs() < 0.25, "{}", c.render());
    }
    let csv = c.backtest_csv();
    assert!(csv.starts_with("file,load,role,requests_per_s,ttft_p50_ms,ttft_p50_ms_sim"));
    assert_eq!(csv.lines().count(), 5);
    assert!(csv.lines().last().unwrap().contains("\"all at once\",held_out"));
    let text = c.profile_text("t", "2026-12-07");
    assert!(text.contains(&c.runs[0].sha256) && text.contains("tensor_parallel = 8"));
    spotsim::catalog::profile::parse(&text, "t.toml").expect("the written profile reads back");
    // A design on the written profile says its step times are calibrated.
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("cal.toml"), &text).unwrap();
    let experiment = dir.path().join("lt.toml");
    std::fs::write(
        &experiment,
        "name = \"lt\"\n[inference]\ninstance = \"ml.p4d.24xlarge\"\nengine = \"llm\"\nprofile = \"cal.toml\"\n\
         [traffic]\nduration = \"20s\"\ntokens = { input = 200, output = 100 }\n[loadtest]\nusers = [2]\n",
    )
    .unwrap();
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_spotsim"))
        .arg("loadtest")
        .arg(&experiment)
        .arg("-o")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{err}");
    assert!(err.contains("step times: calibrated on vllm, held-out error TTFT p50"), "{err}");
}

#[test]
fn bad_input_is_refused_with_file_and_field_and_nothing_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"{"request_rate": 1.0, "completed": 3, "median_ttft_ms": 5.0, "input_lens": [1, 2, 3], "output_lens": [1, 2], "ttfts": [0.1, 0.1, 0.1]}"#).unwrap();
    let out = dir.path().join("p.toml");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_spotsim"))
        .args(["calibrate", "--profile", "llama-3-8b", "--instance", "ml.g6e.xlarge", "--out"])
        .arg(&out)
        .arg(&bad)
        .output()
        .unwrap();
    assert_eq!(status.status.code(), Some(2));
    let err = String::from_utf8_lossy(&status.stderr);
    assert!(err.contains("bad.json") && err.contains("`output_lens`") && err.contains("2 entries"), "{err}");
    assert!(!out.exists(), "nothing written");
}

#[test]
fn real_aiperf_files_parse_and_calibrate() {
    let files: Vec<PathBuf> =
        ["c2", "c16"].iter().map(|c| data(&format!("aiperf-qwen3.6-35b-a3b-rtx5090-agent-{c}.json"))).collect();
    let mut o = options(data("standin-3b-active-fp4.toml").to_str().unwrap(), "ml.g6e.xlarge");
    (o.iterations, o.pooled_requests) = (60, 300);
    o.engine = Some("vllm".into());
    let c = calibrate::calibrate(&files, &o).unwrap();
    let loads: Vec<Load> = c.runs.iter().map(|r| r.load).collect();
    assert_eq!(loads, [Load::Closed { users: 2 }, Load::Closed { users: 16 }]);
    assert!(c.runs.iter().all(|r| r.format == Format::Aiperf && !r.per_request() && r.completed == 96));
    assert!((c.runs[0].measured.ttft_p50_ms.unwrap() - 136.4860965).abs() < 1e-9);
    // The heavier run is held out; one fitted load level is warned about.
    assert!(c.rows[1].held_out && !c.rows[0].held_out);
    assert!(c.warnings.iter().any(|w| w.contains("one load level")), "{}", c.render());
    assert!(c.verdict().contains("summaries only"));
    // The fitted run's TPOT and throughput within 10% (docs/calibrate.md records the rest).
    for metric in ["tpot_p50", "output_tokens_per_s"] {
        assert!(c.rows[0].error(metric).unwrap().abs() < 0.10, "{metric}\n{}", c.render());
    }
}

#[test]
fn k_fold_and_named_holdouts_predict_every_held_run() {
    let o = Options { pooled_requests: 100, ..options("llama-3-8b", "ml.g6e.xlarge") };
    let ep = calibrate::design(&o).unwrap();
    let truth = fit::roofline_table(&ep.llm.as_ref().unwrap().roofline.unwrap());
    let runs: Vec<BenchRun> =
        [(2.0, 1), (6.0, 2), (10.0, 3)].iter().map(|&(rps, k)| simulated_run(&ep, &truth, rps, 100, k)).collect();
    let k = Options { holdout: Holdout::KFold(3), iterations: 30, ..o.clone() };
    let c = calibrate::calibrate_runs(runs.clone(), &ep, &k).unwrap();
    assert!(c.rows.iter().all(|r| r.held_out), "each run predicted by a fit on the others");
    let named = Options { holdout: Holdout::Files(vec!["sim-6.json".into()]), iterations: 30, ..o.clone() };
    let c = calibrate::calibrate_runs(runs.clone(), &ep, &named).unwrap();
    let held: Vec<&str> = c.rows.iter().filter(|r| r.held_out).map(|r| r.file.as_str()).collect();
    assert_eq!(held, ["sim-6.json"]);
    let wrong = Options { holdout: Holdout::Files(vec!["sim-7.json".into()]), ..o.clone() };
    let e = calibrate::calibrate_runs(runs.clone(), &ep, &wrong).err().unwrap().to_string();
    assert!(e.contains("\"sim-7.json\" is not one of the benchmark files"), "{e}");
    assert_eq!(Holdout::parse(&["3-fold".into()]), Ok(Holdout::KFold(3)));
    assert!(Holdout::parse(&["1-fold".into()]).is_err());
    let all = Options { holdout: Holdout::Files(runs.iter().map(|r| r.file.clone()).collect()), ..o };
    assert!(calibrate::calibrate_runs(runs, &ep, &all).err().unwrap().to_string().contains("every run is held out"));
}

#[test]
fn flags_are_refused_by_name() {
    let o = Options { profile: "llama-3-8c".into(), ..options("llama-3-8b", "ml.g6e.xlarge") };
    let e = calibrate::design(&o).err().unwrap().downcast::<spotsim::input::InputError>().unwrap();
    assert_eq!(e.origin.file, "--profile");
    assert!(e.hint.unwrap().contains("llama-3-8b"));
    let o = options("llama-3-8b", "ml.g6e.xlarg");
    let e = calibrate::design(&o).err().unwrap().downcast::<spotsim::input::InputError>().unwrap();
    assert_eq!((e.origin.file.as_str(), e.hint.as_deref()), ("--instance", Some("did you mean `ml.g6e.xlarge`?")));
    let o = Options { replicas: 3, ..options("llama-3-8b", "ml.g6e.xlarge") };
    let e = calibrate::design(&o).err().unwrap().downcast::<spotsim::input::InputError>().unwrap();
    assert_eq!(e.origin.file, "--replicas");
}
