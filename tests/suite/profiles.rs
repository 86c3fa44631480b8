//! Model profiles: the fitted service time, the derived compute and
//! checkpoint times, the new input errors, and common random numbers across
//! instance types.

use std::path::Path;
use std::process::Command;

use spotsim::catalog::catalog;
use spotsim::catalog::profile::{self, S3_MAX_GBPS};
use spotsim::engine::Runner;
use spotsim::experiment::{self, Experiment, Fit};
use spotsim::scenarios::inference::design::{Endpoint, METRICS as INFERENCE_METRICS};
use spotsim::scenarios::training::TrainingJob;

use super::{close, simulate};

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).unwrap();
}

fn load(text: &str, sets: &[&str]) -> Experiment {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "exp.toml", text);
    let sets: Vec<String> = sets.iter().map(|s| s.to_string()).collect();
    experiment::load(&dir.path().join("exp.toml"), &sets).unwrap_or_else(|e| panic!("{e}"))
}

const ENDPOINT: &str = r#"
[inference]
profile = "llama-2-7b"
instance = "ml.g5.2xlarge"
initial_instances = 1
queue_limit = 1000
timeout = "10m"
[traffic]
synthetic = { mean_rps = 0.3 }
duration = "4h"
"#;

#[test]
fn the_fitted_service_time_reproduces_p50_and_p99() {
    for f in profile::built_in().iter().flat_map(|p| &p.inference) {
        let d = f.service_time();
        let (p50, p99) = (f.p50.as_secs_f64(), f.p99.as_secs_f64());
        assert!(close(d.quantile_secs(0.5), p50), "{}", f.instance);
        assert!((d.quantile_secs(0.99) / p99 - 1.0).abs() < 1e-9, "{}: {}", f.instance, d.quantile_secs(0.99));
    }
    // Through the request engine: 20 workers at 0.3 requests/s are busy 5%
    // of the time, so a request almost never waits and latency = service time.
    let e = load(ENDPOINT, &[]);
    let rows = Runner::new(2).unwrap().run(e.points[0].design.model(), 7, 20, &|_| {});
    let m = |name: &str| {
        let k = INFERENCE_METRICS.iter().position(|&x| x == name).unwrap();
        let c: Vec<f64> = rows.chunks_exact(INFERENCE_METRICS.len()).map(|r| r[k]).collect();
        c.iter().sum::<f64>() / c.len() as f64
    };
    assert!(m("waited_frac") < 1e-3, "{}", m("waited_frac"));
    assert!((m("latency_p50_ms") / 3240.0 - 1.0).abs() < 0.01, "p50 {}", m("latency_p50_ms"));
    assert!((m("latency_p99_ms") / 4010.0 - 1.0).abs() < 0.03, "p99 {}", m("latency_p99_ms"));
}

#[test]
fn explicit_keys_override_the_profile() {
    let e = load(ENDPOINT, &["inference.workers=3"]);
    let d = e.points[0].design.downcast::<Endpoint>().unwrap();
    assert_eq!(d.workers, 3);
    let used = d.from_profile.as_ref().unwrap();
    assert_eq!((used.gives.as_slice(), used.overridden.as_slice()), (&["service_time"][..], &["workers"][..]));
}

const TRAINING: &str = r#"
[training]
profile = "bert-large-pretraining"
instance = "ml.p3.2xlarge"
work = "100h"
market = "on-demand"
startup = "5m"
[training.checkpoint]
interval = "2h"
write = "auto"
restore = "auto"
"#;

/// On on-demand nothing interrupts: the wall time is startup + compute +
/// one write per segment, exactly, with compute = work / (speed n scaling(n)).
#[test]
fn on_demand_wall_time_is_startup_compute_and_writes() {
    let cases = [
        ("ml.p3.2xlarge", 1, 1.0, 1.0),
        ("ml.p3.8xlarge", 4, 3.35, 1.0),
        ("ml.g5.2xlarge", 2, 0.74, 1.0),
        ("ml.p4d.24xlarge", 1, 21.4, 1.0),
        ("ml.p4d.24xlarge", 2, 21.4, 0.99),   // between 1 (1.0) and 4 (0.97)
        ("ml.p4d.24xlarge", 8, 21.4, 0.9467), // between 4 and 16: 0.97 - 4/12 * 0.07
        ("ml.p4d.24xlarge", 64, 21.4, 0.84),  // beyond the last: held
    ];
    for (instance, n, speed, efficiency) in cases {
        let set_i = format!("training.instance={instance}");
        let set_n = format!("training.instances={n}");
        let e = load(TRAINING, &[&set_i, &set_n]);
        let job = e.points[0].design.downcast::<TrainingJob>().unwrap();
        let expected_h = 100.0 / (speed * n as f64 * efficiency);
        let got_h = job.work.as_secs_f64() / 3600.0;
        assert!((got_h / expected_h - 1.0).abs() < 1e-4, "{instance} x{n}: {got_h} h, expected {expected_h} h");
        let write_s = job.checkpoint.write.mean_secs();
        let wall_h = (300.0 + job.work.as_secs_f64() + job.segments() as f64 * write_s) / 3600.0;
        let rows = simulate(job, 3, 1);
        assert!(close(rows.only("wall_time_h"), wall_h), "{instance} x{n}: {} vs {wall_h}", rows.only("wall_time_h"));
        assert_eq!(rows.only("interruptions"), 0.0);
        let used = job.from_profile.as_ref().unwrap();
        assert_eq!(used.gives, ["work", "checkpoint.write", "checkpoint.restore"]);
        let note = used.scaling.as_deref().unwrap();
        assert_eq!(note.starts_with("perfect"), !instance.starts_with("ml.p4d"), "{note}");
    }
}

#[test]
fn auto_checkpoint_times_follow_the_documented_rule() {
    for (instance, nic) in [("ml.p3.2xlarge", 2.5), ("ml.p3.16xlarge", 25.0), ("ml.p4d.24xlarge", 400.0)] {
        let set = format!("training.instance={instance}");
        let e = load(TRAINING, &[&set]);
        let job = e.points[0].design.downcast::<TrainingJob>().unwrap();
        assert_eq!(catalog().find(instance).unwrap().network_gbps, nic);
        // checkpoint_size 4.1 GB over min(NIC, S3 ceiling), to the millisecond.
        let expected = (4.1 * 8.0 / f64::min(nic, S3_MAX_GBPS) * 1e3).round() / 1e3;
        assert_eq!(job.checkpoint.write.mean_secs(), expected, "{instance}");
        assert_eq!(job.checkpoint.restore.mean_secs(), expected, "{instance}");
    }
    // 4.1 GB over 2.5 Gbit/s.
    let e = load(TRAINING, &[]);
    assert_eq!(e.points[0].design.downcast::<TrainingJob>().unwrap().checkpoint.write.mean_secs(), 13.12);
}

/// A sweep over instance types: every point sees the same arrivals (and, on
/// spot, the same interruption draws), replication by replication.
#[test]
fn instance_sweeps_share_their_random_numbers() {
    let text = format!(
        "{ENDPOINT}\n[sweep]\n\"inference.instance\" = [\"ml.g5.2xlarge\", \"ml.g5.12xlarge\", \"ml.p4d.24xlarge\"]\n"
    );
    let e = load(&text, &["traffic.duration=30m"]);
    let results = spotsim::commands::run::simulate(&e, &Runner::new(2).unwrap(), &|_| {});
    let k = INFERENCE_METRICS.iter().position(|&x| x == "requests").unwrap();
    let requests: Vec<Vec<f64>> =
        results.iter().map(|rows| rows.chunks_exact(INFERENCE_METRICS.len()).map(|r| r[k]).collect()).collect();
    assert_eq!(requests[0].len() as u64, e.replications);
    assert!(requests.iter().all(|r| r == &requests[0]), "{requests:?}");
    let latency = |p: usize| e.points[p].design.downcast::<Endpoint>().unwrap().service_time.quantile_secs(0.5);
    assert!(latency(2) < latency(0), "the profile decides the service time per type");
}

// ---------------------------------------------------------------- errors

fn spotsim_in(dir: &Path, args: &[&str]) -> (i32, String) {
    let out = super::child::output(Command::new(env!("CARGO_BIN_EXE_spotsim")).args(args).current_dir(dir)).unwrap();
    (out.status.code().unwrap(), String::from_utf8_lossy(&out.stderr).into_owned())
}

const BIG_MODEL: &str = r#"name = "big"
source = "a test"
[inference."ml.g5.2xlarge"]
workers = 1
latency = { p50 = "10ms", p99 = "20ms" }
memory = "30GB"
[inference."ml.g5.12xlarge"]
workers = 4
latency = { p50 = "10ms", p99 = "20ms" }
memory = "30GB"
"#;

/// Each new error: exit 2, the file, the line, the key, the valid names.
#[test]
fn profile_errors_name_file_line_key_and_valid_names() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "big.toml", BIG_MODEL);
    write(dir.path(), "typo.toml", &BIG_MODEL.replace("workers = 4", "workers = 4\nnotes = \"x\""));
    let experiment = |profile: &str, instance: &str, sweep: &str| {
        format!(
            "[inference]\nprofile = \"{profile}\"\ninstance = \"{instance}\"\n[traffic]\nsynthetic = {{ mean_rps = 1 }}\nduration = \"1m\"\n{sweep}"
        )
    };
    let cases: Vec<(String, Vec<&str>)> = vec![
        (
            experiment("bert-base", "ml.c5.xlarge", ""),
            vec!["exp.toml:3", "`inference.instance`", "ml.c6i.2xlarge, ml.g5.2xlarge, ml.inf2.xlarge"],
        ),
        (
            experiment("bert-bas", "ml.g5.2xlarge", ""),
            vec!["exp.toml:2", "`inference.profile`", "bert-base-compiled", "did you mean `bert-base`"],
        ),
        (
            experiment("typo.toml", "ml.g5.2xlarge", ""),
            vec!["typo.toml:9", "inference.\"ml.g5.12xlarge\".notes", "unknown key", "did you mean `note`"],
        ),
        (
            experiment(
                "big.toml",
                "ml.g5.2xlarge",
                "[sweep]\n\"inference.instance\" = [\"ml.g5.12xlarge\", \"ml.g5.2xlarge\"]\n",
            ),
            vec![
                "exp.toml:8",
                "`inference.instance`",
                "point 1 (inference.instance = ml.g5.2xlarge)",
                "needs 27.94 GiB",
                "has 24.00 GiB",
            ],
        ),
        (
            experiment("missing.toml", "ml.g5.2xlarge", ""),
            vec!["exp.toml:2", "`inference.profile`", "cannot read the profile file missing.toml", "llama-2-7b"],
        ),
        (
            TRAINING.replace("profile = \"bert-large-pretraining\"\n", ""),
            vec!["exp.toml:9", "`training.checkpoint.write`", "\"auto\"", "training.profile"],
        ),
        (
            TRAINING.replace("ml.p3.2xlarge", "ml.g4dn.xlarge"),
            vec!["exp.toml:4", "`training.instance`", "ml.p3.2xlarge, ml.p3.8xlarge, ml.p3.16xlarge, ml.g5.2xlarge"],
        ),
    ];
    for (text, needles) in cases {
        write(dir.path(), "exp.toml", &text);
        for command in ["run", "check"] {
            let (code, err) =
                spotsim_in(dir.path(), &[command, "exp.toml", "-q"][..if command == "run" { 3 } else { 2 }]);
            assert_eq!(code, 2, "{command}: {err}");
            for needle in &needles {
                assert!(err.contains(needle), "{command}: `{needle}` not in: {err}");
            }
        }
        assert!(!dir.path().join("results").exists());
    }
}

/// `Fit::Mark` keeps a point that does not fit, marked, for `recommend`.
#[test]
fn points_that_do_not_fit_can_be_marked_instead() {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "big.toml", BIG_MODEL);
    let text = "[inference]\nprofile = \"big.toml\"\ninstance = \"ml.g5.2xlarge\"\n[traffic]\nsynthetic = { mean_rps = 1 }\nduration = \"1m\"\n\
                [sweep]\n\"inference.instance\" = [\"ml.g5.12xlarge\", \"ml.g5.2xlarge\"]\n";
    write(dir.path(), "exp.toml", text);
    let e = experiment::load_with(&dir.path().join("exp.toml"), &[], Fit::Mark).unwrap();
    assert_eq!(e.points.iter().map(|p| p.fits).collect::<Vec<_>>(), [true, false]);
    assert!(e.describe(&[], true).contains("fits = false"));
    assert!(e.describe(&[], false).contains("(the model does not fit its instance)"));
}

#[test]
fn profiles_lists_the_built_in_profiles() {
    let out = super::child::output(Command::new(env!("CARGO_BIN_EXE_spotsim")).arg("profiles")).unwrap();
    assert!(out.status.success());
    let text = String::from_utf8_lossy(&out.stdout);
    for name in
        ["bert-base", "bert-base-compiled", "llama-2-7b", "bert-large-pretraining", "ml.inf2.xlarge", "4 = 0.97"]
    {
        assert!(text.contains(name), "{name}");
    }
}

/// `endpoint-recommendation.toml` gives its instance types whole (workers and
/// service time by hand) and says why: no bundled profile lists its types.
/// Should one come to, the example ought to use it, and this test says so.
#[test]
fn the_recommendation_example_says_why_it_gives_types_whole() {
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("experiments/endpoint-recommendation.toml");
    let text = std::fs::read_to_string(file).unwrap();
    assert!(!text.contains("Without model profiles"), "a stale comment: profiles have landed");
    assert!(text.contains("No bundled\n# profile"), "the example says why it gives types whole");
    let types = ["ml.c5.xlarge", "ml.c5.2xlarge", "ml.g4dn.xlarge"];
    for t in types {
        assert!(text.contains(&format!("instance = \"{t}\", workers")), "{t} is swept whole");
    }
    for p in spotsim::catalog::profile::built_in() {
        let listed = p.inference.iter().filter(|f| types.contains(&f.instance.as_str())).count();
        assert!(listed < types.len(), "profile {} lists all of {types:?}: use it in the example", p.name);
    }
}

#[test]
fn a_measured_step_table_holds_only_at_its_gpus_per_replica() {
    use spotsim::scenarios::inference::llm::StepSource;
    let text = |replicas: u32| {
        format!(
            "[inference]\nengine = \"llm\"\nprofile = \"llama-3-8b\"\ninstance = \"ml.p4de.24xlarge\"\n\
             initial_instances = 1\n[inference.llm]\nreplicas = {replicas}\n\
             [traffic]\nsynthetic = {{ mean_rps = 1 }}\ntokens = {{ input = 512, output = 128 }}\nduration = \"1m\"\n"
        )
    };
    let step = |replicas: u32| {
        let e = load(&text(replicas), &[]);
        e.points[0].design.downcast::<Endpoint>().unwrap().llm.as_ref().unwrap().step_time.clone()
    };
    // One GPU per replica: the table measured at tensor parallel 1.
    let StepSource::Fit(fit) = step(8) else { panic!("replicas of one GPU take the profile's table") };
    let table = profile::built_in().iter().find(|p| p.name == "llama-3-8b").unwrap();
    assert_eq!(fit, table.llm_steps[0].fit);
    // Two GPUs per replica: the table does not apply; the roofline does.
    assert!(matches!(step(4), StepSource::Roofline(_)));
}
