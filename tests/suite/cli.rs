//! The command line as a user meets it: exit codes, messages, output files.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub fn spotsim(args: &[&str], dir: &Path) -> Output {
    super::child::output(Command::new(env!("CARGO_BIN_EXE_spotsim")).args(args).current_dir(dir)).expect("spotsim runs")
}

pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

pub const GOOD: &str = r#"name = "tiny"
replications = 50

[training]
instance = "ml.p3.2xlarge"
work = "10h"
startup = "5m"

[training.checkpoint]
interval = "30m"
write = "2m"
restore = "5m"

[spot]
interruptions = { model = "poisson", mtbf = "5h" }
capacity_wait = { dist = "exponential", mean = "10m" }

[sweep]
"training.checkpoint.interval" = ["15m", "1h"]
"#;

pub fn workspace(text: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("exp.toml");
    std::fs::write(&file, text).unwrap();
    (dir, file)
}

#[test]
fn run_writes_the_three_outputs() {
    let (dir, _) = workspace(GOOD);
    let out = spotsim(&["run", "exp.toml", "--quiet"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let results = dir.path().join("results/tiny");
    let summary = std::fs::read_to_string(results.join("summary.csv")).unwrap();
    let header = summary.lines().next().unwrap();
    assert_eq!(
        header,
        "point,training.checkpoint.interval,metric,n,mean,std,sem,ci95_low,ci95_high,min,p05,p25,p50,p75,p95,p99,max"
    );
    assert_eq!(summary.lines().count(), 1 + 2 * spotsim::scenarios::training::METRICS.len());
    let reps = std::fs::read_to_string(results.join("replications.csv")).unwrap();
    assert!(reps.starts_with("point,training.checkpoint.interval,replication,wall_time_h,billed_time_h,cost_usd,"));
    assert_eq!(reps.lines().count(), 1 + 2 * 50);
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(results.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["seed"], 1);
    assert_eq!(manifest["experiment"]["replications"], 50);
    assert!(manifest["threads"].as_u64().unwrap() >= 1);
    assert!(manifest["elapsed_s"].as_f64().is_some());
    assert_eq!(manifest["experiment"]["points"][0]["design"]["training"]["checkpoint"]["restore"], "5m");
    // Nothing on stdout: results go to files.
    assert!(out.stdout.is_empty());
}

#[test]
fn overrides_and_flags_apply() {
    let (dir, _) = workspace(GOOD);
    let out = spotsim(
        &[
            "run",
            "exp.toml",
            "-q",
            "-o",
            "out",
            "-n",
            "7",
            "--seed",
            "5",
            "--threads",
            "1",
            "--set",
            "training.work=2h",
            "--set",
            "training.checkpoint.interval=45m",
        ],
        dir.path(),
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let reps = std::fs::read_to_string(dir.path().join("out/replications.csv")).unwrap();
    // --set on a swept key replaces the sweep: one point.
    assert!(reps.starts_with("point,replication,"), "{}", reps.lines().next().unwrap());
    assert_eq!(reps.lines().count(), 1 + 7);
    let manifest = std::fs::read_to_string(dir.path().join("out/manifest.json")).unwrap();
    assert!(manifest.contains("\"seed\": 5") && manifest.contains("\"work\": \"2h\""));
}

#[test]
fn check_prints_the_resolved_design_and_writes_nothing() {
    let (dir, _) = workspace(GOOD);
    let out = spotsim(&["check", "exp.toml", "--verbose"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("[point 1] training.checkpoint.interval = 1h"), "{text}");
    assert!(text.contains("price_per_hour"), "defaults are filled in: {text}");
    assert!(!dir.path().join("results").exists());
    // By default one line a point after the header (issue 26, item 7).
    let out = spotsim(&["check", "exp.toml"], dir.path());
    let short = String::from_utf8_lossy(&out.stdout);
    let points: Vec<&str> = short.lines().filter(|l| !l.starts_with('#') && !l.is_empty()).collect();
    assert_eq!(points, ["[point 0] training.checkpoint.interval = 15m", "[point 1] training.checkpoint.interval = 1h"]);
    assert!(short.lines().count() < 10 && !short.contains("price_per_hour"), "{short}");
}

#[test]
fn catalog_lists_instances() {
    let out = spotsim(&["catalog"], Path::new("/"));
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in ["ml.p3.2xlarge", "ml.p4d.24xlarge", "ml.g5.12xlarge", "ml.m5.xlarge"] {
        assert!(text.contains(name), "{name}");
    }
}

/// CI's run of `spotsim verify` (it has no step of its own).
#[test]
fn verify_passes() {
    let out = spotsim(&["verify", "-n", "20000"], Path::new("/"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{text}");
    assert!(text.contains(", 0 failed"), "{text}");
}

/// Broken experiment files: each must exit 2, name the file, the line and the
/// key, and write nothing.
#[test]
fn broken_experiments_get_one_clear_message() {
    let cases: &[(&str, &str, &str, &[&str])] = &[
        (
            "misspelt key",
            "interval = \"30m\"",
            "intervl = \"30m\"",
            &["exp.toml:10", "training.checkpoint.intervl", "unknown key", "did you mean `interval`"],
        ),
        (
            "duration without unit",
            "work = \"10h\"",
            "work = 10",
            &["exp.toml:6", "training.work", "bare number", "\"10s\""],
        ),
        ("unknown unit", "work = \"10h\"", "work = \"10hours\"", &["exp.toml:6", "training.work", "unknown unit"]),
        (
            "unknown instance",
            "ml.p3.2xlarge",
            "ml.p3.2xlarg",
            &["exp.toml:5", "training.instance", "not in the catalog", "did you mean `ml.p3.2xlarge`"],
        ),
        (
            "wrong type",
            "replications = 50",
            "replications = \"many\"",
            &["exp.toml:2", "replications", "expected a whole number"],
        ),
        (
            "bad distribution name",
            "dist = \"exponential\"",
            "dist = \"exponental\"",
            &["exp.toml:16", "spot.capacity_wait.dist", "did you mean `exponential`"],
        ),
        ("out of range", "[spot]\n", "[spot]\ndiscount = 1.5\n", &["exp.toml:15", "spot.discount", "from 0 to 1"]),
        ("invalid TOML", "[spot]\n", "[spot\n", &["exp.toml:14", "not valid TOML"]),
        ("missing work", "work = \"10h\"\n", "", &["exp.toml", "training.work", "missing"]),
        (
            "unknown sweep key",
            "\"training.checkpoint.interval\" = [",
            "\"training.checkpoint.intervals\" = [",
            &["exp.toml:19", "training.checkpoint.intervals", "did you mean `interval`"],
        ),
        (
            "trace without its convention",
            "model = \"poisson\", mtbf = \"5h\"",
            "model = \"trace\", file = \"t.csv\"",
            &["exp.toml:15", "spot.interruptions.convention", "missing"],
        ),
        (
            "misspelt market",
            "work = \"10h\"",
            "work = \"10h\"\nmarket = \"spto\"",
            &["exp.toml:7", "training.market", "did you mean `spot`"],
        ),
        (
            "bad swept value",
            "[\"15m\", \"1h\"]",
            "[\"15m\", \"yong\"]",
            &["exp.toml:19", "training.checkpoint.interval", "did you mean `young`"],
        ),
    ];
    for (what, from, to, needles) in cases {
        assert!(GOOD.contains(from), "{what}: the template has no {from:?}");
        let (dir, _) = workspace(&GOOD.replacen(from, to, 1));
        let out = spotsim(&["run", "exp.toml"], dir.path());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        for needle in *needles {
            assert!(err.contains(needle), "{what}: {needle:?} not in:\n{err}");
        }
        assert_eq!(err.matches("error:").count(), 1, "{what}: one message: {err}");
        assert!(!dir.path().join("results").exists(), "{what}: no output folder");
        let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        assert_eq!(leftovers.len(), 1, "{what}: {leftovers:?}");
    }
}

#[test]
fn bad_set_and_missing_file_exit_2() {
    let (dir, _) = workspace(GOOD);
    for args in [
        &["run", "exp.toml", "--set", "training.work"][..],
        &["run", "exp.toml", "--set", "training.wrok=3h"][..],
        &["run", "nope.toml"][..],
        &["run"][..],
        &["frobnicate"][..],
    ] {
        let out = spotsim(args, dir.path());
        assert_eq!(out.status.code(), Some(2), "{args:?}: {}", stderr(&out));
    }
    let out = spotsim(&["run", "exp.toml", "--set", "training.wrok=3h"], dir.path());
    assert!(
        stderr(&out).contains("--set: `training.wrok`: unknown key") && stderr(&out).contains("did you mean `work`"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn a_second_bad_file_stops_the_run_before_any_output() {
    let (dir, _) = workspace(GOOD);
    std::fs::write(dir.path().join("bad.toml"), "[training]\nwork = \"1h\"\ninstance = \"x\"\n").unwrap();
    let out = spotsim(&["run", "exp.toml", "bad.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("bad.toml:3"), "{}", stderr(&out));
    assert!(!dir.path().join("results").exists());
}

#[test]
fn empirical_files_are_relative_to_the_experiment_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join("exp")).unwrap();
    std::fs::write(dir.path().join("exp/waits.csv"), "wait_s\n60\n120\n600\n").unwrap();
    let text = GOOD.replace(
        r#"capacity_wait = { dist = "exponential", mean = "10m" }"#,
        r#"capacity_wait = { dist = "empirical", file = "waits.csv" }"#,
    );
    std::fs::write(dir.path().join("exp/e.toml"), text).unwrap();
    let out = spotsim(&["run", "exp/e.toml", "-q", "-n", "20"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let manifest = std::fs::read_to_string(dir.path().join("results/tiny/manifest.json")).unwrap();
    assert!(manifest.contains("\"dist\": \"empirical\""), "{manifest}");

    std::fs::write(dir.path().join("exp/waits.csv"), "wait_s\n60\nabc\n").unwrap();
    std::fs::remove_dir_all(dir.path().join("results")).unwrap();
    let out = spotsim(&["run", "exp/e.toml", "-q"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("e.toml:16") && err.contains("spot.capacity_wait.file") && err.contains("line 3"), "{err}");
    assert!(!dir.path().join("results").exists());
}

#[test]
fn an_unwritable_output_folder_exits_1_and_leaves_nothing() {
    let (dir, _) = workspace(GOOD);
    let out = spotsim(&["run", "exp.toml", "-q", "-o", "exp.toml/out"], dir.path());
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).starts_with("error: cannot create"), "{}", stderr(&out));
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, ["exp.toml"]);
}

#[test]
fn every_bundled_experiment_resolves() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<PathBuf> = std::fs::read_dir(root.join("experiments"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(files.len() >= 4);
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(text.starts_with("# Question:"), "{} states its question first", file.display());
        let e = spotsim::experiment::load(&file, &[]).unwrap_or_else(|err| panic!("{err}"));
        assert!(!e.points.is_empty());
        let warnings: Vec<String> = e.warnings.iter().map(|w| w.to_string()).collect();
        // Its sweep holds 16 GB GPUs on purpose, to show them fail: they warn.
        if file.ends_with("llm-recommendation.toml") {
            assert!(warnings.iter().all(|w| w.contains("KV cache")) && !warnings.is_empty(), "{warnings:?}");
            continue;
        }
        assert!(warnings.is_empty(), "{}: {warnings:?}", file.display());
    }
    assert!(root.join("experiments/checkpoint-sweep.toml").exists());
}

const ENDPOINT: &str = r#"name = "ep"
replications = 3

[inference]
price_per_hour = 0.2
workers = 2
service_time = { dist = "exponential", mean = "50ms" }
initial_instances = 2

[inference.autoscaling]
metric = "invocations-per-instance"
target = 1200
min = 2
max = 6

[traffic]
trace = "rates.csv"
duration = "30m"
"#;

#[test]
fn an_endpoint_run_writes_a_timeline() {
    let (dir, _) = workspace(ENDPOINT);
    std::fs::write(dir.path().join("rates.csv"), "time_s,rate\n0,20\n600,90\n1200,20\n").unwrap();
    let out = spotsim(&["run", "exp.toml", "-q"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let timeline = std::fs::read_to_string(dir.path().join("results/ep/timeline.csv")).unwrap();
    assert_eq!(
        timeline.lines().next().unwrap(),
        "point,t_s,arrival_rate,instances_in_service,instances_pending,queue,latency_p99_ms,rejected,metric"
    );
    assert_eq!(timeline.lines().count(), 1 + 30);
    let summary = std::fs::read_to_string(dir.path().join("results/ep/summary.csv")).unwrap();
    for metric in spotsim::scenarios::inference::design::METRICS {
        assert!(summary.contains(&format!(",{metric},")), "{metric}");
    }
}

#[test]
fn a_bad_trace_row_exits_2_naming_the_line() {
    let (dir, _) = workspace(ENDPOINT);
    std::fs::write(dir.path().join("rates.csv"), "time_s,rate\n0,20\n600,lots\n").unwrap();
    let out = spotsim(&["run", "exp.toml", "-q"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    let err = stderr(&out);
    assert!(err.contains("exp.toml:17") && err.contains("traffic.trace") && err.contains("line 3"), "{err}");
    assert!(!dir.path().join("results").exists());
}

#[test]
fn a_run_far_beyond_hours_is_refused_up_front_and_allowed_on_request() {
    // A billion requests a second for an hour: 3.6e12 requests.
    let text = "[inference]\nprice_per_hour = 1.0\nservice_time = \"1ms\"\n[traffic]\nsynthetic = { mean_rps = 1e9 }\nduration = \"1h\"\n";
    let (dir, file) = workspace(text);
    let o = spotsim(&["run", file.to_str().unwrap(), "-n", "1", "-o", "out"], dir.path());
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("`traffic.synthetic.mean_rps`") && err.contains("3.60e12 requests"), "{err}");
    assert!(err.contains("--allow-long"), "{err}");
    assert!(!dir.path().join("out").exists());
    // The same shape at a sane rate runs; --allow-long lifts the bound.
    let (dir, file) = workspace(&text.replace("1e9", "1e3").replace("1h", "1m"));
    let o = spotsim(&["run", file.to_str().unwrap(), "-n", "1", "-o", "out", "--allow-long", "--quiet"], dir.path());
    assert_eq!(o.status.code(), Some(0), "{}", stderr(&o));
}

/// `run --point K` runs those points alone, with their own indices: their
/// rows are byte for byte those of the full run (the streams of replication
/// r depend on the seed and r only). A bad K is exit 2.
#[test]
fn run_point_gives_the_rows_of_the_full_run() {
    let exp = concat!(env!("CARGO_MANIFEST_DIR"), "/experiments/checkpoint-sweep.toml");
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let ok = |args: &[&str]| {
        let out = spotsim(args, d);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    };
    ok(&["run", exp, "-n", "40", "-q", "-o", "full"]);
    ok(&["run", exp, "-n", "40", "-q", "-o", "some", "--point", "5", "--point", "2", "--point", "5"]);
    for file in ["replications.csv", "summary.csv"] {
        let full = std::fs::read_to_string(d.join("full").join(file)).unwrap();
        let some = std::fs::read_to_string(d.join("some").join(file)).unwrap();
        let mut lines = full.lines();
        let header = lines.next().unwrap();
        let kept: Vec<&str> =
            std::iter::once(header).chain(lines.filter(|l| l.starts_with("2,") || l.starts_with("5,"))).collect();
        assert!(kept.len() > 2, "{file}");
        assert_eq!(some, kept.join("\n") + "\n", "{file}");
    }
    for (k, says) in [
        ("24", "there is no point 24; the sweep has 24 points, 0 to 23"),
        ("x", "invalid value 'x' for '--point <K>'"),
        ("-1", "unexpected argument '-1'"),
        ("", "invalid value '' for '--point <K>'"),
    ] {
        let out = spotsim(&["run", exp, "-n", "5", "-q", "-o", "bad", "--point", k], d);
        assert_eq!(out.status.code(), Some(2), "--point {k}: {}", stderr(&out));
        assert!(stderr(&out).contains(says), "--point {k}: {}", stderr(&out));
    }
    assert!(!d.join("bad").exists());
}

/// `recommend` closes with the command that runs its choice alone, and that
/// command runs that point only.
#[test]
fn recommend_prints_the_command_that_runs_its_choice_alone() {
    let exp = concat!(env!("CARGO_MANIFEST_DIR"), "/experiments/training-recommendation.toml");
    let dir = tempfile::tempdir().unwrap();
    let out = spotsim(&["recommend", exp, "-o", "rec", "--seed", "3"], dir.path());
    let err = stderr(&out);
    assert!(out.status.success(), "{err}");
    let line = err.lines().last().unwrap();
    let command = line.split(": spotsim ").nth(1).unwrap_or_else(|| panic!("no command in {line:?}"));
    let args: Vec<&str> = command.split(' ').collect();
    assert_eq!(&args[..2], ["run", exp], "{line}");
    let chosen = err.split("Choice: point ").nth(1).and_then(|s| s.split(' ').next()).expect("a choice");
    assert_eq!(&args[2..4], ["--point", chosen], "{line}");
    assert!(args.ends_with(&["--seed", "3"]), "{line}");
    let out = spotsim(&[&args[..], &["-q", "-o", "alone"]].concat(), dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = std::fs::read_to_string(dir.path().join("alone/summary.csv")).unwrap();
    assert!(summary.lines().skip(1).all(|l| l.starts_with(&format!("{chosen},"))), "{summary}");
}

/// `check` says what a run would cost (issue 20): an `estimate:` line for
/// every bundled experiment, and a long one says minutes.
#[test]
fn check_prints_an_estimate_for_every_bundled_experiment() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files: Vec<String> = std::fs::read_dir(root.join("experiments"))
        .unwrap()
        .map(|e| e.unwrap().path().display().to_string())
        .filter(|p| p.ends_with(".toml"))
        .collect();
    files.sort();
    let args: Vec<&str> = std::iter::once("check").chain(files.iter().map(String::as_str)).collect();
    let out = spotsim(&args, root);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = String::from_utf8(out.stdout).unwrap();
    // Each experiment's header: its name line, swept keys, then the estimate.
    let lines: Vec<&str> = text.lines().collect();
    let headers: Vec<usize> = (0..lines.len()).filter(|&i| lines[i].contains(" replications per point, ")).collect();
    assert_eq!(headers.len(), files.len());
    for h in headers {
        let estimate = lines[h + 1..h + 3].iter().find(|l| l.starts_with("# estimate: "));
        assert!(estimate.is_some_and(|l| l.contains(" on ") && l.contains(" thread")), "{}", lines[h]);
    }

    let loadtest = root.join("experiments/instance-loadtest.toml");
    let loadtest = loadtest.to_str().unwrap();
    let fast = ["--set", "traffic.synthetic.mean_rps=1000000", "--set", "replications=2", "--threads", "2"];
    let out = spotsim(&[&["check", loadtest][..], &fast].concat(), root);
    let text = String::from_utf8(out.stdout).unwrap();
    let line = text.lines().find(|l| l.starts_with("# estimate: ")).unwrap();
    assert!(line.starts_with("# estimate: 2.9e10 requests, about ") && line.ends_with(" min on 2 threads"), "{line}");
}

/// `run` says up front (on stderr, without a terminal too) when it expects
/// more than a minute.
#[test]
fn a_long_run_says_so_up_front() {
    use std::io::BufRead;
    use std::process::Stdio;
    let dir = tempfile::tempdir().unwrap();
    let exp = concat!(env!("CARGO_MANIFEST_DIR"), "/experiments/instance-loadtest.toml");
    let mut child = Command::new(env!("CARGO_BIN_EXE_spotsim"))
        .args(["run", exp, "-n", "1", "--threads", "1", "--point", "0", "-o", "out"])
        .args(["--set", "traffic.synthetic.mean_rps=1000000"])
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = std::io::BufReader::new(child.stderr.take().unwrap());
    let (send, first) = std::sync::mpsc::channel();
    std::thread::spawn(move || send.send(stderr.lines().next().and_then(Result::ok)));
    let line = first.recv_timeout(std::time::Duration::from_secs(60));
    let _ = child.kill();
    super::child::wait(&mut child, std::time::Duration::from_secs(20), "a killed run");
    let line = line.expect("a first line within a minute").expect("a line");
    assert_eq!(line, "instance-loadtest: estimate: 3.6e9 requests, about 5 min on 1 thread");
}

/// Issue 25: `run` and `slurm` prepare a run the same way, so a closed-loop
/// load test is refused by both with one message (and by Python's
/// `spotsim.run`: python/tests), and `slurm` prints no job array for it.
#[test]
fn run_and_slurm_refuse_a_closed_loop_file_alike() {
    let exp = concat!(env!("CARGO_MANIFEST_DIR"), "/experiments/llm-closed-loop.toml");
    let dir = tempfile::tempdir().unwrap();
    let run = spotsim(&["run", exp, "-q"], dir.path());
    let slurm = spotsim(&["slurm", exp, "--tasks", "2"], dir.path());
    assert_eq!(run.status.code(), Some(2), "{}", stderr(&run));
    assert_eq!(slurm.status.code(), Some(2), "{}", stderr(&slurm));
    assert!(slurm.stdout.is_empty(), "a script was printed");
    assert_eq!(stderr(&run), stderr(&slurm));
    assert!(stderr(&run).contains("`loadtest.users`") && stderr(&run).contains("spotsim loadtest"), "{}", stderr(&run));
    assert!(!dir.path().join("results").exists());
}

/// A valid design that turns most requests away: `check` and `run` say so
/// on stderr, naming the line and the key, and exit 0 (issue 26, item 4).
#[test]
fn check_and_run_warn_of_a_design_that_turns_requests_away_and_exit_0() {
    let text = "name = \"w\"\nreplications = 2\n[inference]\ninstance = \"ml.g5.12xlarge\"\nengine = \"llm\"\n\
        [inference.llm]\nkv_tokens = 500\nstep_time = { prefill = [22.05, 0.1405, 8.08e-6], decode = [23.48, 5.93e-4, 0.0607], overhead = [2.0, 1e-4] }\n\
        [traffic]\nduration = \"1m\"\nsynthetic = { mean_rps = 1 }\n\
        tokens = { input = { dist = \"uniform\", min = 100, max = 899 }, output = 100 }\n";
    let (dir, _) = workspace(text);
    // Prompt + output above 500 tokens: prompts 401 to 899, 499 of 800.
    let want =
        "warning: exp.toml:7: inference.llm.kv_tokens = 500 is below the prompt + output of about 62% of requests";
    for args in [&["check", "exp.toml"][..], &["run", "exp.toml", "--quiet"]] {
        let out = spotsim(args, dir.path());
        assert!(out.status.success(), "{}", stderr(&out));
        assert!(stderr(&out).contains(want), "{args:?}: {}", stderr(&out));
    }
}

/// An open-loop load test makes its own Poisson load: it does not ask
/// [traffic] for arrivals it would ignore, while `run` of the same file,
/// which needs them, says so (issue 26, item 5).
#[test]
fn an_open_loop_loadtest_needs_no_traffic_and_run_says_it_does() {
    let text = "name = \"lt\"\n[inference]\ninstance = \"ml.g4dn.xlarge\"\nworkers = 4\n\
        service_time = { dist = \"lognormal\", median = \"9ms\", sigma = 0.2 }\n\
        [loadtest]\nlatency = \"p99\"\nthreshold = \"100ms\"\n";
    let (dir, _) = workspace(text);
    let out = spotsim(&["loadtest", "exp.toml", "--quiet", "-o", "lt"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = std::fs::read_to_string(dir.path().join("lt/loadtest.csv")).unwrap();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    let out = spotsim(&["run", "exp.toml", "--quiet"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("`traffic`: [traffic] gives no arrivals"), "{}", stderr(&out));
}

/// `[sweep] together`: values that go together sweep as one axis, each key
/// its own column, in the Cartesian product with the other axes (issue 26,
/// item 7).
#[test]
fn keys_that_go_together_sweep_as_one_axis_with_their_own_columns() {
    let text = GOOD.replace(
        "[sweep]\n\"training.checkpoint.interval\" = [\"15m\", \"1h\"]\n",
        "[sweep]\n\"spot.interruptions.mtbf\" = [\"3h\", \"10h\"]\ntogether = [\n  \
         { \"training.checkpoint.interval\" = \"15m\", \"training.work\" = \"5h\" },\n  \
         { \"training.checkpoint.interval\" = \"1h\", \"training.work\" = \"20h\" },\n]\n",
    );
    let (dir, _) = workspace(&text);
    let out = spotsim(&["check", "exp.toml"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let points: Vec<&str> = stdout.lines().filter(|l| l.starts_with("[point")).collect();
    let label = |m: &str, i: &str, w: &str| {
        format!("spot.interruptions.mtbf = {m}, training.checkpoint.interval = {i}, training.work = {w}")
    };
    let want: Vec<String> = [("3h", "15m", "5h"), ("3h", "1h", "20h"), ("10h", "15m", "5h"), ("10h", "1h", "20h")]
        .iter()
        .enumerate()
        .map(|(k, (m, i, w))| format!("[point {k}] {}", label(m, i, w)))
        .collect();
    assert_eq!(points, want);
    let out = spotsim(&["run", "exp.toml", "--quiet", "-n", "3"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    let summary = std::fs::read_to_string(dir.path().join("results/tiny/summary.csv")).unwrap();
    assert!(summary.starts_with("point,spot.interruptions.mtbf,training.checkpoint.interval,training.work,metric,"));
    assert!(summary.contains("\n3,10h,1h,20h,"), "{summary}");
    // Every table names the same keys; a key is swept once.
    for (bad, says) in [
        (
            "{ \"training.checkpoint.interval\" = \"1h\" }",
            "exp.toml:22: `sweep.together`: every table names the same keys",
        ),
        (
            "{ \"training.checkpoint.interval\" = \"1h\", \"spot.interruptions.mtbf\" = \"1h\" }",
            "every table names the same keys",
        ),
    ] {
        let broken = text.replace("{ \"training.checkpoint.interval\" = \"1h\", \"training.work\" = \"20h\" }", bad);
        let (dir, _) = workspace(&broken);
        let out = spotsim(&["check", "exp.toml"], dir.path());
        assert_eq!(out.status.code(), Some(2));
        assert!(stderr(&out).contains(says), "{}", stderr(&out));
    }
    let twice =
        text.replace("\"spot.interruptions.mtbf\" = [\"3h\", \"10h\"]", "\"training.work\" = [\"3h\", \"10h\"]");
    let (dir, _) = workspace(&twice);
    let out = spotsim(&["check", "exp.toml"], dir.path());
    assert!(stderr(&out).contains("`sweep.\"training.work\"`: is swept twice"), "{}", stderr(&out));
}

/// The catalog's footer dates its figures by the newest date the catalog
/// file states for them (issue 26, item 8: it said 2026-11-23 while prices
/// and GPU figures of 2026-12-04 were in).
#[test]
fn the_catalog_footer_names_its_newest_figures_date() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let file = std::fs::read_to_string(root.join("models/catalog.toml")).unwrap();
    let is_date = |w: &[u8]| {
        w.len() == 10
            && w.iter().enumerate().all(|(i, b)| if i == 4 || i == 7 { *b == b'-' } else { b.is_ascii_digit() })
    };
    let newest = file.as_bytes().windows(10).filter(|w| w.starts_with(b"20") && is_date(w)).max().unwrap();
    let newest = std::str::from_utf8(newest).unwrap();
    let out = spotsim(&["catalog"], Path::new("/"));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains(&format!("figures as of {newest} ")), "{newest}: {text}");
}
