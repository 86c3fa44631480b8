use super::*;

fn vllm_detailed() -> String {
    r#"{"backend": "vllm", "model_id": "m", "num_prompts": 3, "request_rate": 2.0, "burstiness": 1.0,
        "max_concurrency": null, "duration": 3.0, "completed": 2, "total_input_tokens": 30,
        "total_output_tokens": 6, "request_throughput": 0.66, "output_throughput": 2.0,
        "median_ttft_ms": 99.0, "median_tpot_ms": 9.0,
        "input_lens": [10, 20, 5], "output_lens": [3, 3, 0], "ttfts": [0.1, 0.2, 0.0],
        "itls": [[0.01, 0.02], [0.03, 0.03], []], "errors": ["", "", "timeout"]}"#
        .to_string()
}

#[test]
fn vllm_detailed_arrays_give_the_completed_requests_and_their_percentiles() {
    let r = parse(vllm_detailed().as_bytes(), "a.json", None).unwrap();
    assert_eq!(r.format, Format::Vllm);
    assert_eq!(r.load, Load::Rate { rps: 2.0, burstiness: 1.0 });
    assert_eq!(r.completed, 2);
    let reqs = r.requests.as_ref().unwrap();
    assert_eq!((reqs[0].input, reqs[0].output, reqs[1].input), (10, 3, 20));
    // Type-7 median of 100 and 200 ms; TPOTs 15 and 30 ms.
    assert!((r.measured.ttft_p50_ms.unwrap() - 150.0).abs() < 1e-9);
    assert!((r.measured.tpot_p50_ms.unwrap() - 22.5).abs() < 1e-9);
    assert_eq!(r.sha256.len(), 64);
    assert_eq!(r.engine.as_deref(), Some("vllm"));
}

#[test]
fn vllm_inf_and_max_concurrency_set_the_arrivals() {
    let base = |rate: &str, conc: &str| {
        format!(
            r#"{{"request_rate": {rate}, "max_concurrency": {conc}, "completed": 4, "median_ttft_ms": 5.0,
                "median_tpot_ms": 1.0, "total_input_tokens": 40, "total_output_tokens": 8}}"#
        )
    };
    let all = parse(base("\"inf\"", "null").as_bytes(), "b.json", None).unwrap();
    assert_eq!(all.load, Load::AllAtOnce);
    assert!(!all.per_request());
    assert_eq!(all.input_stats.unwrap().mean, 10.0);
    let closed = parse(base("\"inf\"", "8").as_bytes(), "b.json", None).unwrap();
    assert_eq!(closed.load, Load::Closed { users: 8 });
}

fn refused(text: &str, field: &str, says: &str) {
    let e = parse(text.as_bytes(), "bad.json", None).expect_err(field);
    assert_eq!(e.origin.file, "bad.json");
    assert_eq!(e.key.as_deref(), Some(field), "{e}");
    assert!(e.message.contains(says), "{e}");
}

#[test]
fn malformed_files_are_refused_with_file_and_field() {
    let good = vllm_detailed();
    // Wrong types.
    refused(&good.replace(r#""request_rate": 2.0"#, r#""request_rate": "fast""#), "request_rate", "\"inf\"");
    refused(&good.replace(r#""completed": 2"#, r#""completed": "2""#), "completed", "expected a number");
    refused(&good.replace("[10, 20, 5]", "[10, \"x\", 5]"), "input_lens[1]", "number");
    refused(&good.replace("[0.1, 0.2, 0.0]", "{}"), "ttfts", "array");
    // A missing array, and arrays of unequal length.
    refused(&good.replace(r#""ttfts": [0.1, 0.2, 0.0],"#, ""), "ttfts", "together");
    refused(&good.replace("[3, 3, 0]", "[3, 3]"), "output_lens", "2 entries");
    refused(&good.replace(r#"[[0.01, 0.02], [0.03, 0.03], []]"#, "[[0.01]]"), "itls", "1 entries");
    // No request completed.
    refused(&good.replace(r#"["", "", "timeout"]"#, r#"["e", "e", "e"]"#), "completed", "no request completed");
    let summary = r#"{"request_rate": 1.0, "completed": 0, "median_ttft_ms": 5.0, "total_input_tokens": 1,
                      "total_output_tokens": 1}"#;
    refused(summary, "completed", "no request completed");
    let aiperf = r#"{"time_to_first_token": {"unit": "ms", "p50": "x"}, "request_throughput": {"avg": 1}}"#;
    refused(aiperf, "time_to_first_token.p50", "expected a number");
}

#[test]
fn aiperf_summary_reads_units_lengths_and_the_profiling_phase() {
    let text = r#"{"aiperf_version": "0.10.0",
        "request_throughput": {"unit": "requests/sec", "avg": 2.0},
        "time_to_first_token": {"unit": "s", "p50": 0.2, "p90": 0.4, "p99": 0.6},
        "inter_token_latency": {"unit": "ms", "p50": 12.0},
        "request_latency": {"unit": "ms", "p50": 900.0, "count": 10},
        "output_token_throughput": {"avg": 100.0},
        "input_sequence_length": {"avg": 300.0, "std": 50.0},
        "output_sequence_length": {"avg": 60.0},
        "request_count": {"avg": 10},
        "input_config": {"phases": [{"name": "warmup", "exclude_from_results": true, "concurrency": 2},
                                    {"name": "profiling", "concurrency": 16}]}}"#;
    let r = parse(text.as_bytes(), "p.json", None).unwrap();
    assert_eq!(r.format, Format::Aiperf);
    assert_eq!(r.load, Load::Closed { users: 16 });
    assert!((r.measured.ttft_p50_ms.unwrap() - 200.0).abs() < 1e-9);
    assert_eq!(r.input_stats.unwrap(), LengthStats { mean: 300.0, std: 50.0 });
    assert_eq!(r.completed, 10);
    let no_load = text.replace(r#""concurrency": 16"#, r#""x": 1"#).replace(r#""concurrency": 2"#, r#""y": 1"#);
    refused(&no_load, "input_config.phases", "no load");
}

#[test]
fn a_requests_csv_replays_its_send_times() {
    let text = "send_time_s,input_tokens,output_tokens,ttft_ms,e2e_ms\n10.5,100,11,50,150\n10.0,200,1,80,80\n";
    let r = parse(text.as_bytes(), "r.csv", None).unwrap();
    assert_eq!(r.load, Load::Trace);
    let reqs = r.requests.unwrap();
    assert_eq!(reqs[0].send_s, Some(0.0));
    assert_eq!(reqs[1].send_s, Some(0.5));
    assert!((r.measured.tpot_p50_ms.unwrap() - 10.0).abs() < 1e-9);
    let e = parse(b"send_time_s,input_tokens,output_tokens,ttft_ms\n", "r.csv", None).unwrap_err();
    assert_eq!(e.key.as_deref(), Some("e2e_ms"));
    let e = parse(b"send_time_s,input_tokens,output_tokens,ttft_ms,e2e_ms\n1,2.5,3,4,5\n", "r.csv", None).unwrap_err();
    assert_eq!((e.key.as_deref(), e.origin.line), (Some("input_tokens"), Some(2)));
    assert!(Format::parse("vlm").unwrap_err().contains("did you mean `vllm`"));
}

#[test]
fn a_guidellm_report_gives_one_run_per_benchmark() {
    let req = |start: f64, ttft: f64, out: u32| {
        format!(
            r#"{{"prompt_tokens": 100, "output_tokens": {out}, "start_time": {start}, "first_token_time": {},
                "last_token_time": {}, "end_time": {}}}"#,
            start + ttft,
            start + ttft + 0.01 * (out - 1) as f64,
            start + ttft + 0.01 * (out - 1) as f64
        )
    };
    let bench = |strategy: &str, reqs: &[String]| {
        format!(
            r#"{{"type_": "generative_benchmark", "args": {{"strategy": {strategy}}}, "requests": {{"successful": [{}]}}}}"#,
            reqs.join(",")
        )
    };
    let text = format!(
        r#"{{"benchmarks": [{}, {}]}}"#,
        bench(r#"{"type_": "synchronous"}"#, &[req(100.0, 0.05, 11), req(101.0, 0.07, 11)]),
        bench(r#"{"type_": "poisson", "rate": 4.0}"#, &[req(200.5, 0.2, 21), req(200.0, 0.1, 21)]),
    );
    let runs = parse_all(text.as_bytes(), "g.json", None).unwrap();
    assert_eq!(runs.len(), 2);
    assert_eq!(
        (runs[0].format, runs[0].load, runs[0].file.as_str()),
        (Format::GuideLlm, Load::Closed { users: 1 }, "g.json#0")
    );
    assert!((runs[0].measured.ttft_p50_ms.unwrap() - 60.0).abs() < 1e-6);
    assert!((runs[0].measured.tpot_p50_ms.unwrap() - 10.0).abs() < 1e-6);
    assert_eq!(runs[1].load, Load::Trace);
    let sends: Vec<Option<f64>> = runs[1].requests.as_ref().unwrap().iter().map(|r| r.send_s).collect();
    assert_eq!(sends, [Some(0.0), Some(0.5)]);
    let bad = text.replace(r#""type_": "poisson""#, r#""type_": "burst""#);
    let e = parse_all(bad.as_bytes(), "g.json", None).unwrap_err();
    assert_eq!(e.key.as_deref(), Some("benchmarks[1].args.strategy.type_"), "{e}");
    let none = text.replace("\"successful\"", "\"errored\"");
    let e = parse_all(none.as_bytes(), "g.json", None).unwrap_err();
    assert_eq!(e.key.as_deref(), Some("benchmarks[0].requests.successful"), "{e}");
}

/// genai-perf's summary CSV, as NVIDIA/cloudai's documentation shows one
/// (tests/data/bench/README.md): thousands separators, two sections, and
/// the load from Little's law, 1.50/s × 6.4062 s = 9.6, so 10 users.
#[test]
fn a_real_genai_perf_summary_csv_reads_as_a_closed_loop_by_littles_law() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/data/bench/genai-perf-llama-3.1-405b-fp8-dynamo.csv");
    let r = read(&path, "g.csv", None).unwrap().remove(0);
    assert_eq!(r.format, Format::AiperfCsv);
    assert_eq!((r.load, r.completed), (Load::Closed { users: 10 }, 40));
    let m = &r.measured;
    assert_eq!((m.ttft_p50_ms, m.ttft_p90_ms, m.ttft_p99_ms), (Some(640.07), Some(3215.06), Some(3457.97)));
    assert_eq!((m.tpot_p50_ms, m.e2e_p50_ms, m.requests_per_s), (Some(30.13), Some(5690.23), Some(1.5)));
    let (input, output) = (r.input_stats.unwrap(), r.output_stats.unwrap());
    assert_eq!(input.mean, 3000.05);
    assert!((output.std - (177.0 - 171.75) / 1.349).abs() < 1e-12);
    assert!((r.duration_s.unwrap() - 40.0 / 1.5).abs() < 1e-12);
    // A cell that is not a number is named by its metric and column.
    let bad = std::fs::read_to_string(&path).unwrap().replace("640.07", "n/a");
    let e = parse(bad.as_bytes(), "g.csv", None).unwrap_err();
    assert_eq!(e.key.as_deref(), Some("Time To First Token (ms).p50"), "{e}");
    assert_eq!(e.origin.line, Some(2));
    // Without the request count there is nothing to size the run by.
    let short = std::fs::read_to_string(&path).unwrap().replace("Request Count (count),40.00\n", "");
    let e = parse(short.as_bytes(), "g.csv", None).unwrap_err();
    assert!(e.to_string().contains("request count"), "{e}");
}
