//! The LLM engine (SPEC 2.8): hand-worked timelines of both schedulers,
//! the closed forms, Little's law, bulk advance against single steps,
//! determinism, and bad input.

use spotsim::base::time::SimTime;
use spotsim::commands::verify::{evenly_spaced, llm_endpoint, lone_request};
use spotsim::engine::{Model, Runner, Streams};
use spotsim::experiment;
use spotsim::scenarios::inference::autoscaler::{AutoscalingPolicy, ScalingMetric};
use spotsim::scenarios::inference::design::Endpoint;
use spotsim::scenarios::inference::llm::{FitMs, Scheduler};
use spotsim::scenarios::inference::llm_engine::simulate;
use spotsim::scenarios::inference::traffic::tokens::{CountDist, Tokens};
use spotsim::scenarios::inference::traffic::{Replay, Traffic, TrafficSource};

/// Milliseconds that keep the hand-worked cases in whole numbers: a
/// prefill takes 10 + Σl ms, a decode 5 + B ms, no overhead.
fn simple_fit() -> FitMs {
    FitMs { prefill: [10.0, 1.0, 0.0], decode: [5.0, 0.0, 1.0], overhead: [0.0, 0.0] }
}

/// Requests at `times` (seconds) with their (input, output) tokens, once.
fn requests(times: &[f64], tokens: &[[u32; 2]]) -> Traffic {
    Traffic {
        source: TrafficSource::Requests {
            file: "hand".into(),
            times: times.into(),
            size_column: None,
            sizes: None,
            length: 3600.0,
            replay: Replay::AsIs,
        },
        scale: 1.0,
        duration: SimTime::from_mins(10),
        tokens: Some(Tokens::Columns {
            input_column: "in".into(),
            output_column: "out".into(),
            counts: tokens.to_vec().into(),
        }),
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
}

#[test]
fn a_hand_worked_vllm_timeline() {
    // max_batched_tokens = 100. A (20 in, 3 out) at 0 ms, B (30, 2) at 5 ms,
    // C (90, 2) at 6 ms.
    //   0 ms: A alone: prefill 10 + 20 = 30 ms. A's first token at 30.
    //  30 ms: B fits (30 tokens), C would make 120 > 100: prefill B, 40 ms.
    //         B's first token at 70 (the running A waits: prefills first).
    //  70 ms: prefill C, 100 ms; its first token at 170.
    // 170 ms: decode A, B, C: 5 + 3 = 8 ms. B and C make their last token at 178.
    // 178 ms: decode A: 6 ms; A's last token at 184.
    // TTFT: A 30, B 65, C 164. TPOT: A (184 − 30)/2 = 77, B 108, C 8.
    // Latency: A 184, B 173, C 172.
    let traffic = requests(&[0.0, 0.005, 0.006], &[[20, 3], [30, 2], [90, 2]]);
    let mut e = llm_endpoint(1, simple_fit(), Scheduler::Vllm, 1000, traffic);
    e.llm.as_mut().unwrap().max_batched_tokens = 100;
    let (o, lo, _, acct) = simulate(&e, &Streams::new(1, 0), None);
    assert_eq!((o.requests, o.served, lo.preemptions, lo.output_tokens), (3.0, 3.0, 0.0, 7.0));
    assert!(close(lo.ttft_sum_s, 0.030 + 0.065 + 0.164), "{}", lo.ttft_sum_s);
    assert!(close(lo.tpot_sum_s, 0.077 + 0.108 + 0.008), "{}", lo.tpot_sum_s);
    assert!(close(o.latency_sum_s, 0.184 + 0.173 + 0.172), "{}", o.latency_sum_s);
    assert_eq!(acct.in_system_area_ns, acct.sojourn_sum_ns);
}

#[test]
fn a_hand_worked_chunked_timeline_with_a_preemption() {
    // chunk = 16, kv_tokens = 40. A (10 in, 12 out) at 0 ms, B (12, 10) at 1 ms.
    //   0 ms: A's whole prompt (10 ≤ 16): 10 + 10 = 20 ms; first token at 20.
    //         A runs with context 11 and 11 tokens to go.
    //  20 ms: A decodes and B's prompt (12 ≤ 16 − 1) rides along: the larger
    //         intercept (10) + 12 + 1·1 = 23 ms. B's first token at 43; B runs
    //         with context 13 and 9 to go; A has context 12. KV: 25 of 40.
    //  43 ms: decode-only, 5 + 2 = 7 ms each. The cache holds 25 + 2j before
    //         iteration j, so 8 iterations fit (j = 0..7): until 99 ms. Then
    //         A holds 20, B 21: 41 > 40.
    //  99 ms: B, admitted last, is preempted (1 token to go); its 12 + 9 = 21
    //         tokens would need 22 and only 20 are free, so A decodes alone,
    //         6 ms each, and finishes after 2 more: at 111 ms.
    // 111 ms: B is prefilled again: 16 tokens (10 + 16 = 26 ms), then 5
    //         (15 ms): its last token at 152 ms.
    // TTFT: A 20, B 42. TPOT: A (111 − 20)/11, B (152 − 43)/9.
    // Latency: A 111, B 151.
    let traffic = requests(&[0.0, 0.001], &[[10, 12], [12, 10]]);
    let mut e = llm_endpoint(1, simple_fit(), Scheduler::Chunked, 40, traffic);
    e.llm.as_mut().unwrap().chunk = 16;
    let (o, lo, _, acct) = simulate(&e, &Streams::new(1, 0), None);
    assert_eq!((o.served, lo.preemptions, lo.output_tokens), (2.0, 1.0, 22.0));
    assert!(close(lo.ttft_sum_s, 0.020 + 0.042), "{}", lo.ttft_sum_s);
    assert!(close(lo.tpot_sum_s, 0.091 / 11.0 + 0.109 / 9.0), "{}", lo.tpot_sum_s);
    assert!(close(o.latency_sum_s, 0.111 + 0.151), "{}", o.latency_sum_s);
    assert_eq!(acct.in_system_area_ns, acct.sojourn_sum_ns);
}

#[test]
fn a_lone_request_follows_the_closed_form_exactly() {
    let fit = FitMs::SPEC_EXAMPLE;
    for scheduler in [Scheduler::Vllm, Scheduler::Chunked] {
        for (input, output) in [(1u32, 1u32), (512, 128), (2000, 7)] {
            let traffic = evenly_spaced(30.0, input, output, SimTime::from_mins(30));
            let mut e = llm_endpoint(1, fit.clone(), scheduler, 50_000, traffic);
            // The closed form is for a prompt prefilled in one iteration.
            e.llm.as_mut().unwrap().chunk = 4096;
            let (o, lo, _, _) = simulate(&e, &Streams::new(1, 0), None);
            assert_eq!(o.served, 60.0);
            let (ttft, tpot) = lone_request(&fit, input, output);
            // Event times are whole nanoseconds: within 1 ns of the formula.
            assert!(
                (lo.ttft_sum_s / o.served - ttft).abs() < 2e-9,
                "{scheduler:?} {input}/{output} {} {ttft}",
                lo.ttft_sum_s / o.served
            );
            if output >= 2 {
                assert!((lo.tpot_sum_s / o.served - tpot).abs() < 2e-9, "{scheduler:?} {input}/{output}");
            }
        }
    }
}

/// A loaded, autoscaled LLM endpoint with tight KV, timeouts and a queue
/// limit, varied by `k`.
fn loaded(k: u64, scheduler: Scheduler) -> Endpoint {
    let mut traffic =
        spotsim::scenarios::inference::traffic::Traffic::constant(2.0 + (k % 4) as f64, SimTime::from_mins(40));
    traffic.tokens = Some(Tokens::Drawn {
        input: CountDist::LogNormal { median: 300.0 + 100.0 * (k % 5) as f64, sigma: 0.9 },
        output: CountDist::Uniform { min: 1, max: 200 + 50 * (k % 3) as u32 },
    });
    let mut e = llm_endpoint(1 + (k % 2) as u32, FitMs::SPEC_EXAMPLE, scheduler, 6000 + 1000 * (k % 7), traffic);
    let l = e.llm.as_mut().unwrap();
    l.chunk = 64 + 128 * (k % 4) as u32;
    l.max_seqs = 4 + 8 * (k % 3) as u32;
    l.max_batched_tokens = 3000;
    e.timeout = SimTime::from_secs(20 + 10 * (k % 3));
    e.queue_limit = 5 + 10 * (k % 2) as u32;
    if k.is_multiple_of(2) {
        e.autoscaling = Some(AutoscalingPolicy::new(ScalingMetric::InvocationsPerInstance, 60.0, 1, 4));
        e.startup = spotsim::base::dist::Dist::Constant(SimTime::from_mins(2)).into();
    }
    e
}

#[test]
fn bulk_advance_gives_the_same_results_as_single_steps() {
    // A property over varied designs: every metric, the timeline and Little's
    // law's counters, bit for bit.
    for k in 0..12u64 {
        let scheduler = if k % 3 == 0 { Scheduler::Chunked } else { Scheduler::Vllm };
        let bulk = loaded(k, scheduler);
        let mut single = bulk.clone();
        single.llm.as_mut().unwrap().single_steps = true;
        let streams = Streams::new(7, k);
        let (mut a, mut b) = (vec![0.0; bulk.metrics().len()], vec![0.0; bulk.metrics().len()]);
        bulk.replicate(streams, &mut a);
        single.replicate(streams, &mut b);
        let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&a), bits(&b), "design {k}");
        let (_, lo, _, acct) = simulate(&bulk, &streams, None);
        let (_, _, _, acct1) = simulate(&single, &streams, None);
        assert_eq!(acct, acct1, "design {k}");
        assert_eq!(acct.in_system_area_ns, acct.sojourn_sum_ns, "Little's law, design {k}");
        if k < 3 {
            assert!(lo.preemptions > 0.0, "design {k} exercises preemption");
        }
        use spotsim::scenarios::Design;
        assert_eq!(bulk.timeline(streams), single.timeline(streams), "design {k}");
    }
}

#[test]
fn littles_law_and_the_request_identity_hold_with_losses() {
    for k in 0..6u64 {
        let mut e = loaded(k, if k % 2 == 0 { Scheduler::Vllm } else { Scheduler::Chunked });
        // Zones with frequent outages: instances (and their sequences) are lost.
        e.zones = Some(spotsim::zones::Zones {
            count: 2,
            outage: Some(spotsim::zones::Outage {
                mtbf: SimTime::from_mins(20),
                duration: spotsim::base::dist::Dist::Constant(SimTime::from_mins(3)),
            }),
            detection: SimTime::from_mins(1),
            spot_reclaim: spotsim::zones::SpotReclaim::Instance,
            rebalance: false,
        });
        e.initial_instances = 2;
        let (o, _, _, acct) = simulate(&e, &Streams::new(3, k), None);
        assert_eq!(acct.in_system_area_ns, acct.sojourn_sum_ns, "design {k}");
        assert_eq!(o.requests, o.served + o.rejected + o.timed_out, "design {k}");
    }
}

#[test]
fn results_do_not_depend_on_the_thread_count() {
    let e = loaded(2, Scheduler::Vllm);
    let runs: Vec<Vec<f64>> =
        [1, 2, 3].iter().map(|&t| Runner::new(t).unwrap().run(&e as &dyn Model, 5, 12, &|_| {})).collect();
    let bits = |v: &[f64]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(&runs[0]), bits(&runs[1]));
    assert_eq!(bits(&runs[0]), bits(&runs[2]));
}

fn load_text(text: &str, files: &[(&str, &str)]) -> Result<experiment::Experiment, String> {
    let dir = tempfile::tempdir().unwrap();
    for (name, body) in files {
        std::fs::write(dir.path().join(name), body).unwrap();
    }
    let path = dir.path().join("e.toml");
    std::fs::write(&path, text).unwrap();
    experiment::load(&path, &[]).map_err(|e| e.to_string())
}

const FIT: &str =
    "step_time = { prefill = [22.05, 0.1405, 8.08e-6], decode = [23.48, 5.93e-4, 0.0607], overhead = [2.0, 1e-4] }";

fn design(inference: &str, llm: &str, traffic: &str) -> String {
    format!(
        "[inference]\ninstance = \"ml.g5.12xlarge\"\n{inference}\n[inference.llm]\n{llm}\n[traffic]\nduration = \"1h\"\n{traffic}\n"
    )
}

#[test]
fn an_llm_experiment_loads_and_bad_input_is_refused_with_its_line() {
    let ok_traffic = "synthetic = { mean_rps = 1 }\ntokens = { input = 100, output = { dist = \"lognormal\", median = 50, sigma = 0.5 } }";
    let e = load_text(&design("engine = \"llm\"", &format!("replicas = 2\nkv_tokens = 9000\n{FIT}"), ok_traffic), &[])
        .unwrap();
    let ep = e.points[0].design.downcast::<Endpoint>().unwrap();
    let l = ep.llm.as_ref().unwrap();
    assert_eq!((l.replicas, l.gpus_per_replica, l.kv_tokens), (2, 2, 9000));
    assert_eq!(e.points[0].design.metrics(), spotsim::scenarios::inference::design::LLM_METRICS);

    type Case = (String, Vec<(&'static str, &'static str)>, &'static str);
    let cases: Vec<Case> = vec![
        (
            design("engine = \"llm\"", &format!("replicas = 3\nkv_tokens = 9000\n{FIT}"), ok_traffic),
            vec![],
            "e.toml:5: `inference.llm.replicas`: 3 replicas do not divide the 4 GPU(s) of ml.g5.12xlarge",
        ),
        (
            design("engine = \"llm\"", &format!("scheduler = \"chunkd\"\nkv_tokens = 9000\n{FIT}"), ok_traffic),
            vec![],
            "did you mean `chunked`?",
        ),
        (
            design("engine = \"llm\"\nworkers = 4", &format!("kv_tokens = 9000\n{FIT}"), ok_traffic),
            vec![],
            "e.toml:4: `inference.workers`: does not apply to engine = \"llm\"",
        ),
        (
            design("engine = \"llm\"\nservice_time = \"1s\"", &format!("kv_tokens = 9000\n{FIT}"), ok_traffic),
            vec![],
            "`inference.service_time`: does not apply",
        ),
        (
            design("engine = \"llm\"", "kv_tokens = 9000\nstep_time = \"roofline\"", ok_traffic),
            vec![],
            "e.toml:6: `inference.llm.step_time`: step_time = \"roofline\" needs the model's architecture",
        ),
        (
            design("engine = \"llm\"", &format!("kv_tokens = 9000\n{FIT}"), "synthetic = { mean_rps = 1 }"),
            vec![],
            "`traffic.tokens`: this key is missing",
        ),
        (
            design(
                "engine = \"llm\"",
                &format!("kv_tokens = 9000\n{FIT}"),
                "trace = \"r.csv\"\nformat = \"requests\"\ninput_tokens_column = \"ContextTokens\"\noutput_tokens_column = \"Generated\"",
            ),
            vec![(
                "r.csv",
                "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,374,44\n2023-11-16 18:15:47,10,2\n",
            )],
            // Blamed on the output key's line, not the input's (issue 26, item 5).
            "e.toml:12: `traffic.output_tokens_column`: r.csv line 1: no column `Generated` for `output_tokens_column`",
        ),
        (
            // A zero count is bad input, as in `tokens`: the trace's row is named.
            design(
                "engine = \"llm\"",
                &format!("kv_tokens = 9000\n{FIT}"),
                "trace = \"r.csv\"\nformat = \"requests\"\ninput_tokens_column = \"ContextTokens\"\noutput_tokens_column = \"GeneratedTokens\"",
            ),
            vec![(
                "r.csv",
                "TIMESTAMP,ContextTokens,GeneratedTokens\n2023-11-16 18:15:46,374,44\n2023-11-16 18:15:47,10,0\n",
            )],
            "e.toml:12: `traffic.output_tokens_column`: r.csv line 3: column `GeneratedTokens`: expected a token count, a whole number from 1 to",
        ),
        (
            format!(
                "[inference]\ninstance = \"ml.g5.12xlarge\"\nservice_time = \"1s\"\n[traffic]\nduration = \"1h\"\n{ok_traffic}\n"
            ),
            vec![],
            "e.toml:7: `traffic.tokens`: token counts drive the LLM engine only",
        ),
        (
            format!(
                "[inference]\ninstance = \"ml.g5.2xlarge\"\nengine = \"llm\"\nprofile = \"big.toml\"\n[traffic]\nduration = \"1h\"\n{ok_traffic}\n"
            ),
            vec![(
                "big.toml",
                "name = \"big\"\nsource = \"test\"\n[model]\nparameters = 70e9\nlayers = 80\nhidden = 8192\nkv_heads = 8\nhead_dim = 128\n",
            )],
            "e.toml:2: `inference.instance`: the model does not fit: profile \"big\" needs 130.39 GiB",
        ),
        (
            // 100 + 50 tokens against a cache of 120: no request can ever run.
            design(
                "engine = \"llm\"",
                &format!("kv_tokens = 120\n{FIT}"),
                &ok_traffic.replace("{ dist = \"lognormal\", median = 50, sigma = 0.5 }", "50"),
            ),
            vec![],
            "e.toml:5: `inference.llm.kv_tokens`: no request can run: the smallest holds 150 tokens",
        ),
        (
            design(
                "engine = \"llm\"",
                &format!("scheduler = \"vllm\"\nkv_tokens = 9000\nmax_batched_tokens = 64\n{FIT}"),
                ok_traffic,
            ),
            vec![],
            "e.toml:7: `inference.llm.max_batched_tokens`: no request can run: the smallest prompt has 100 tokens",
        ),
    ];
    // Other tools' names get a hint of what to write (issue 26, item 5).
    let cases = [
        cases,
        vec![
            (
                design("engine = \"llm\"", &format!("scheduler = \"chunked\"\nchunk_size = 256\nkv_tokens = 9000\n{FIT}"), ok_traffic),
                vec![],
                "e.toml:6: `inference.llm.chunk_size`: unknown key in `inference.llm`\n  hint: did you mean `chunk`?",
            ),
            (
                design("engine = \"llm\"", &format!("tensor_parallel = 4\nkv_tokens = 9000\n{FIT}"), ok_traffic),
                vec![],
                "`inference.llm.tensor_parallel`: unknown key in `inference.llm`\n  hint: GPUs per replica come from the instance: its GPUs / `replicas`",
            ),
            (
                design("engine = \"llm\"\ntensor_parallel_size = 4", &format!("kv_tokens = 9000\n{FIT}"), ok_traffic),
                vec![],
                "e.toml:4: `inference.tensor_parallel_size`: unknown key in `inference`\n  hint: GPUs per replica come from",
            ),
        ],
    ]
    .concat();
    for (text, files, want) in cases {
        let got = load_text(&text, &files).map(|_| ()).unwrap_err();
        assert!(got.contains(want), "{text}\n  gave: {got}\n  want: {want}");
    }
}

#[test]
fn a_trace_of_one_request_or_one_instant_plays_once_over_the_duration() {
    // Issue 26, item 5: "needs at least two rows" before. One request alone
    // meets SPEC 2.8's closed form; three at one instant are three requests.
    let columns =
        "trace = \"r.csv\"\nformat = \"requests\"\ninput_tokens_column = \"in\"\noutput_tokens_column = \"out\"";
    let text = design("engine = \"llm\"", &format!("kv_tokens = 9000\n{FIT}"), columns);
    let fit = FitMs { prefill: [22.05, 0.1405, 8.08e-6], decode: [23.48, 5.93e-4, 0.0607], overhead: [2.0, 1e-4] };
    for (trace, n) in [("time_s,in,out\n7,100,10\n", 1.0), ("time_s,in,out\n7,100,10\n7,100,10\n7,100,10\n", 3.0)] {
        let e = load_text(&text, &[("r.csv", trace)]).unwrap();
        let ep = e.points[0].design.downcast::<Endpoint>().unwrap();
        let (o, lo, _, _) = simulate(ep, &Streams::new(1, 0), None);
        assert_eq!((o.requests, o.served), (n, n), "{trace}");
        if n == 1.0 {
            let (ttft, tpot) = lone_request(&fit, 100, 10);
            assert!(close(lo.ttft_sum_s, ttft) && close(lo.tpot_sum_s, tpot), "{} {}", lo.ttft_sum_s, lo.tpot_sum_s);
        }
    }
}

#[test]
fn designs_that_turn_requests_away_or_ignore_a_key_get_a_warning() {
    let warnings = |text: &str, files: &[(&str, &str)]| -> Vec<String> {
        // Named from the file on, without load_text's temporary folder.
        let e = load_text(text, files).unwrap();
        e.warnings.iter().map(|w| w.to_string().replace(&e.file.display().to_string(), "e.toml")).collect()
    };
    // Issue 26's design: median-800 prompts (sigma 0.8) against 512 under
    // "vllm": P(prompt > 512) = 1 - Phi(ln(512.5/800)/0.8) = 0.711.
    let drawn = "synthetic = { mean_rps = 1 }\ntokens = { input = { dist = \"lognormal\", median = 800, sigma = 0.8 }, output = 10 }";
    let text = design(
        "engine = \"llm\"",
        &format!("kv_tokens = 90000\nmax_batched_tokens = 512\nscheduler = \"vllm\"\n{FIT}"),
        drawn,
    );
    assert_eq!(
        warnings(&text, &[]),
        [
            "warning: e.toml:6: inference.llm.max_batched_tokens = 512 is below about 71% of prompts (scheduler \"vllm\" \
          rejects them); raise it or use scheduler = \"chunked\""
        ]
    );
    // The chunked scheduler splits prompts: nothing to say.
    let chunked = text.replace("scheduler = \"vllm\"", "scheduler = \"chunked\"");
    assert_eq!(warnings(&chunked, &[]), Vec::<String>::new());
    // `chunk` under "vllm" is ignored; said at its line.
    let ignored =
        design("engine = \"llm\"", &format!("chunk = 256\nkv_tokens = 90000\nscheduler = \"vllm\"\n{FIT}"), drawn);
    let w = warnings(&ignored, &[]);
    assert!(w.len() == 1 && w[0].starts_with("warning: e.toml:5: inference.llm.chunk = 256 applies to"), "{w:?}");
    // A trace: exact counts. Prompt + output of 150, 710, 910 and 310
    // against a cache of 500: two of four rows.
    let trace = "time_s,in,out\n0,100,50\n1,700,10\n2,900,10\n3,300,10\n";
    let columns =
        "trace = \"r.csv\"\nformat = \"requests\"\ninput_tokens_column = \"in\"\noutput_tokens_column = \"out\"";
    let text = design("engine = \"llm\"", &format!("scheduler = \"chunked\"\nkv_tokens = 500\n{FIT}"), columns);
    assert_eq!(
        warnings(&text, &[("r.csv", trace)]),
        ["warning: e.toml:6: inference.llm.kv_tokens = 500 is below the prompt + output of 50% of the trace's \
          requests (2 of 4 rows), which are rejected on arrival; raise it (or memory_util), or give each replica \
          more GPUs"]
    );
    // A sweep: the warning names the points that have it.
    let swept = format!("{text}[sweep]\n\"inference.llm.kv_tokens\" = [500, 9000]\n");
    let w = warnings(&swept, &[("r.csv", trace)]);
    assert!(
        w.len() == 1
            && w[0].starts_with("warning: e.toml:15: inference.llm.kv_tokens = 500")
            && w[0].ends_with("(at point 0 of the sweep)"),
        "{w:?}"
    );
    // llama-3-8b's measured table is for one GPU per replica on the p4de;
    // one replica of eight GPUs gets the roofline, and is told so.
    let tp = "[inference]\ninstance = \"ml.p4de.24xlarge\"\nengine = \"llm\"\nprofile = \"llama-3-8b\"\n[inference.llm]\nreplicas = 1\n[traffic]\nduration = \"1h\"\nsynthetic = { mean_rps = 1 }\ntokens = { input = 100, output = 10 }\n";
    let w = warnings(tp, &[]);
    assert!(
        w.len() == 1
            && w[0].starts_with(
                "warning: e.toml:6: profile \"llama-3-8b\" measured ml.p4de.24xlarge at tensor_parallel = 1 only"
            )
            && w[0].contains("set replicas = 8"),
        "{w:?}"
    );
    assert_eq!(warnings(&tp.replace("replicas = 1", "replicas = 8"), &[]), Vec::<String>::new());
}

#[test]
fn kv_capacity_and_roofline_follow_from_a_profile() {
    let profile = "name = \"l3\"\nsource = \"test\"\n[model]\nparameters = 8.03e9\nlayers = 32\nhidden = 4096\nkv_heads = 8\nhead_dim = 128\n";
    let text = "[inference]\ninstance = \"ml.g5.12xlarge\"\nengine = \"llm\"\nprofile = \"l3.toml\"\n[inference.llm]\nreplicas = 4\n[traffic]\nduration = \"1h\"\nsynthetic = { mean_rps = 1 }\ntokens = { input = 100, output = 10 }\n";
    let e = load_text(text, &[("l3.toml", profile)]).unwrap();
    let l = e.points[0].design.downcast::<Endpoint>().unwrap().llm.clone().unwrap();
    // vLLM's sizing (docs/llm-serving.md): the A10G's 22.07 GiB as CUDA
    // reports it × 0.9, less 16.06 GB of weights, the activation peak at the
    // default chunked budget of 2048 tokens and 0.18 GiB outside PyTorch, in
    // blocks of 16 tokens of 131072 bytes.
    let gib = (1u64 << 30) as f64;
    let free = 22.07 * gib * 0.9 - 16.06e9 - 20.2 * 4096.0 * 2.0 * 2048.0 - 0.18 * gib;
    let want = (free / (16.0 * 131_072.0)).floor() as u64 * 16;
    assert_eq!(l.kv_tokens, want);
    assert!(l.roofline.is_some());
    let text = text.replace("replicas = 4", "replicas = 2");
    // Two GPUs per replica: the catalog's interconnect figure gives the
    // all-reduces (a type without one is refused, src/experiment/llm.rs).
    let e = load_text(&text, &[("l3.toml", profile)]).unwrap();
    let l = e.points[0].design.downcast::<Endpoint>().unwrap().llm.clone().unwrap();
    assert!(l.roofline.is_some_and(|r| r.comm_ms_per_iteration > 0.0 && r.comm_ms_per_token > 0.0));
}

#[test]
fn requests_larger_than_the_cache_are_rejected_and_counted_while_the_rest_run() {
    // Prompts of 100 and outputs of 1 to 100 tokens against a cache of 150:
    // the requests with outputs above 50 (about half) can never run.
    let traffic =
        "synthetic = { mean_rps = 1 }\ntokens = { input = 100, output = { dist = \"uniform\", min = 1, max = 100 } }";
    let e = load_text(&design("engine = \"llm\"", &format!("kv_tokens = 150\n{FIT}"), traffic), &[]).unwrap();
    let ep = e.points[0].design.downcast::<Endpoint>().unwrap();
    let rows = Runner::new(2).unwrap().run(ep as &dyn Model, 3, 4, &|_| {});
    let m = |name: &str| ep.metrics().iter().position(|&x| x == name).unwrap();
    for row in rows.chunks_exact(ep.metrics().len()) {
        let (requests, served, rejected) = (row[m("requests")], row[m("served")], row[m("rejected")]);
        assert_eq!(requests, served + rejected + row[m("timed_out")]);
        let share = rejected / requests;
        assert!((share - 0.5).abs() < 5.0 * (0.25 / requests).sqrt(), "rejected share {share}");
    }
}

#[test]
fn the_default_scheduler_is_vllm_v1s_chunked_prefill_with_its_budget_per_gpu() {
    use spotsim::scenarios::inference::llm::Scheduler;
    let profile = "name = \"l3\"\nsource = \"test\"\n[model]\nparameters = 8.03e9\nlayers = 32\nhidden = 4096\nkv_heads = 8\nhead_dim = 128\n";
    let llm = |instance: &str, extra: &str| {
        let text = format!(
            "[inference]\ninstance = \"{instance}\"\nengine = \"llm\"\nprofile = \"l3.toml\"\n[inference.llm]\nreplicas = 8\n{extra}[traffic]\nduration = \"1h\"\nsynthetic = {{ mean_rps = 1 }}\ntokens = {{ input = 100, output = 10 }}\n"
        );
        let e = load_text(&text, &[("l3.toml", profile)]).unwrap();
        e.points[0].design.downcast::<Endpoint>().unwrap().llm.clone().unwrap()
    };
    // vLLM's `vllm serve` defaults: 8192 tokens and 1024 sequences on a GPU
    // of 70 GiB or more that is not an A100, else 2048 and 256.
    let h100 = llm("ml.p5.48xlarge", "");
    assert_eq!((h100.scheduler, h100.chunk, h100.max_seqs), (Scheduler::Chunked, 8192, 1024));
    let a100 = llm("ml.p4de.24xlarge", "");
    assert_eq!((a100.scheduler, a100.chunk, a100.max_seqs), (Scheduler::Chunked, 2048, 256));
    // The whole-prompt scheduler stays as an option; its budget sizes the
    // activation peak, so it leaves a smaller cache than chunks of 2048.
    let old = llm("ml.p4de.24xlarge", "scheduler = \"vllm\"\n");
    assert_eq!(old.scheduler, Scheduler::Vllm);
    assert!(old.kv_tokens < a100.kv_tokens);
}

/// Issue 28: a design that runs another engine (or version) than the one its
/// calibrated step times were fitted on is told so; the same engine, or a
/// design that does not say, is not.
#[test]
fn a_table_calibrated_on_another_engine_version_warns() {
    let profile = "name = \"cal\"\nsource = \"test\"\n[model]\nparameters = 8.03e9\nlayers = 32\nhidden = 4096\n\
        kv_heads = 8\nhead_dim = 128\nbytes_per_parameter = 2\n\
        [llm.\"ml.g6e.xlarge\"]\ntensor_parallel = 1\n\
        step_time = { prefill = [20.0, 0.1, 0.0], decode = [20.0, 0.0005, 0.05], overhead = [1.0, 0.0] }\n\
        source = \"fitted by spotsim calibrate\"\nengine = \"vllm 0.6.3\"\ndate = \"2026-12-07\"\n";
    let text = |engine: &str| {
        format!(
            "[inference]\ninstance = \"ml.g6e.xlarge\"\nengine = \"llm\"\nprofile = \"cal.toml\"\n\
             [inference.llm]\n{engine}\n[traffic]\nduration = \"1h\"\nsynthetic = {{ mean_rps = 1 }}\n\
             tokens = {{ input = 100, output = 10 }}\n"
        )
    };
    let warnings = |engine: &str| -> Vec<String> {
        let e = load_text(&text(engine), &[("cal.toml", profile)]).unwrap();
        e.warnings.iter().map(|w| w.to_string()).collect()
    };
    let w = warnings("serving_engine = \"vllm 0.8.5\"");
    assert!(
        w.len() == 1
            && w[0].contains("e.toml:6: inference.llm.serving_engine = \"vllm 0.8.5\"")
            && w[0].contains("calibrated on \"vllm 0.6.3\""),
        "{w:?}"
    );
    assert_eq!(warnings("serving_engine = \"vLLM  0.6.3\""), Vec::<String>::new());
    assert_eq!(warnings(""), Vec::<String>::new());
    // Its own step_time is not the calibrated table: nothing to compare.
    assert_eq!(warnings(&format!("serving_engine = \"vllm 0.8.5\"\n{FIT}")), Vec::<String>::new());
}
