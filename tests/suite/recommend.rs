//! `spotsim recommend` and `spotsim loadtest` against known answers: Erlang C
//! for the smallest fleet that keeps the share of waiting requests down,
//! M/M/1 for the largest rate that keeps p99 under a threshold; and the
//! command line's handling of bad objectives.

use std::path::Path;
use std::process::{Command, Output};

use spotsim::commands::recommend::report::search;
use spotsim::commands::recommend::{Outcome, Settings, Status};
use spotsim::engine::Runner;
use spotsim::experiment;
use spotsim::scenarios::inference::queueing::erlang_c;

fn spotsim(args: &[&str], dir: &Path) -> Output {
    super::child::output(Command::new(env!("CARGO_BIN_EXE_spotsim")).args(args).current_dir(dir)).expect("spotsim runs")
}

fn workspace(text: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("exp.toml"), text).unwrap();
    dir
}

/// M/M/c: Poisson arrivals at 40/s, exponential service of mean 100 ms, one
/// worker per instance, a fixed fleet of c instances: offered load a = 4.
const MMC: &str = r#"name = "mmc"
seed = 3

[inference]
price_per_hour = 1.0
workers = 1
service_time = { dist = "exponential", mean = "100ms" }
queue_limit = 100000
warmup = "3s"

[traffic]
synthetic = { mean_rps = 40 }
duration = "15s"

[objective]
minimize = "cost_usd"
constraints = ["waited_frac.mean <= 0.09 +- 0.005"]
confidence = 0.95

[sweep]
"inference.initial_instances" = [4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20]
"#;

#[test]
fn recommend_picks_the_smallest_fleet_erlang_c_allows_and_saves_work() {
    let dir = workspace(MMC);
    let e = experiment::load(&dir.path().join("exp.toml"), &[]).unwrap();
    // C(7, 4) = 0.135 and C(8, 4) = 0.059: clearly on either side of 0.09 ± 0.005.
    let exact = (4..=20u32).find(|&c| erlang_c(c, 4.0) <= 0.09).unwrap();
    assert_eq!(exact, 8);
    assert!(erlang_c(7, 4.0) > 0.09 + 0.04 && erlang_c(8, 4.0) < 0.09 - 0.03);

    let runner = Runner::new(2).unwrap();
    let found = search(&e, &runner, &Settings::default(), &|_| {}, &|_| {}).unwrap();
    let rec = &found.recommendation;
    let best = rec.best().expect("a choice");
    assert_eq!(e.points[best].values, ["8"], "{:?}", rec.outcome);
    assert!(matches!(rec.outcome, Outcome::Selected { .. }));
    for (p, r) in rec.points.iter().enumerate() {
        let c: u32 = e.points[p].values[0].parse().unwrap();
        match c {
            4..=7 => assert_eq!(r.status, Status::Infeasible, "c = {c}"),
            8 => assert_eq!(r.status, Status::Best),
            _ => assert_eq!(r.status, Status::Dominated, "c = {c}"),
        }
    }
    // The work saved: every point run to the count the search needed at most.
    let ratio = rec.spent as f64 / found.exhaustive() as f64;
    eprintln!("Erlang C: {} replications against {} for every point: ratio {ratio:.2}", rec.spent, found.exhaustive());
    assert!(ratio <= 0.5, "ratio {ratio}");
}

/// M/M/1 with μ = 100/s: the sojourn time is exponential with rate μ − λ, so
/// p99 <= T exactly when λ <= μ − ln(100)/T.
const MM1: &str = r#"name = "mm1"

[inference]
price_per_hour = 0.5
workers = 1
service_time = { dist = "exponential", mean = "10ms" }

[traffic]
synthetic = { mean_rps = 10 }
duration = "10m"

[loadtest]
latency = "p99"
threshold = "100ms"

[sweep]
"loadtest.threshold" = ["100ms"]
"#;

#[test]
fn loadtest_finds_the_mm1_rate_within_its_precision() {
    for (threshold, seed) in [("100ms", 1), ("50ms", 2), ("200ms", 3)] {
        let text = MM1.replace("[sweep]\n\"loadtest.threshold\" = [\"100ms\"]\n", "");
        let text = text.replace("threshold = \"100ms\"", &format!("threshold = \"{threshold}\""));
        let dir = workspace(&format!("seed = {seed}\n{text}"));
        let out = spotsim(&["loadtest", "exp.toml", "-q", "-o", "out"], dir.path());
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        let csv = std::fs::read_to_string(dir.path().join("out/loadtest.csv")).unwrap();
        let mut lines = csv.lines();
        assert_eq!(
            lines.next().unwrap(),
            "point,max_invocations_per_min,model_latency_ms,cost_per_hour_usd,cost_per_inference_usd,\
             cost_per_million_requests_usd,max_invocations_per_min_low,max_invocations_per_min_high,\
             latency_alone_ms,saturation_invocations_per_min"
        );
        let row: Vec<f64> = lines.next().unwrap().split(',').map(|x| x.parse().unwrap()).collect();
        let t: f64 = threshold.trim_end_matches("ms").parse::<f64>().unwrap() / 1000.0;
        let exact = (100.0 - 100f64.ln() / t) * 60.0;
        let error = row[1] / exact - 1.0;
        eprintln!(
            "M/M/1, p99 <= {threshold}: {:.1}/min [{:.1}, {:.1}] against {exact:.1}/min ({:+.2}%)",
            row[1],
            row[6],
            row[7],
            100.0 * error
        );
        // The stated precision: the 95% interval, each end found to 0.5%.
        assert!(row[6] * 0.995 <= exact && exact <= row[7] * 1.005, "{threshold}: {row:?} against {exact}");
        assert!(row[6] <= row[1] && row[1] <= row[7] && row[2] <= t * 1000.0);
        if threshold == "100ms" {
            // Where the percentile moves with the rate, the rate is sharp.
            assert!(error.abs() < 0.01 && row[7] / row[6] < 1.03, "{row:?}");
        }
        assert!((row[4] - 0.5 / (row[1] * 60.0)).abs() < 1e-12 && (row[5] / row[4] - 1e6).abs() < 1e-3);
        // Alone, the sojourn is the Exp(μ = 100/s) service: p99 = ln(100)/μ.
        assert!((row[8] / (100f64.ln() * 10.0) - 1.0).abs() < 0.1, "alone {}", row[8]);
        // It keeps up until λ nears μ = 6000/min.
        assert!((row[9] / 6000.0 - 1.0).abs() < 0.05 && row[9] >= row[7], "saturation {}", row[9]);
    }
}

#[test]
fn loadtest_sweeping_the_loadtest_table_is_refused() {
    let dir = workspace(MM1);
    let out = spotsim(&["loadtest", "exp.toml", "-q"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot be swept"));
}

const TRAINING: &str = r#"name = "t"
replications = 20

[training]
instance = "ml.p3.2xlarge"
work = "10h"

[training.checkpoint]
interval = "30m"
write = "2m"
restore = "5m"

[spot]
interruptions = { model = "poisson", mtbf = "5h" }

[objective]
minimize = "cost_usd"
constraints = ["wall_time_h.p95 <= 30"]

[sweep]
"training.checkpoint.interval" = ["15m", "1h"]
"#;

/// Exit status 2 and a message containing `needle`.
fn refused(dir: &Path, args: &[&str], needle: &str) {
    let out = spotsim(args, dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
    assert!(err.contains(needle), "{args:?}: {err}");
    assert!(!dir.join("results").exists(), "nothing written");
}

#[test]
fn bad_objectives_and_misused_commands_exit_2() {
    let cases = [
        ("\"wall_time_h.p95 <= 30\"", "\"wall_tme_h.p95 <= 30\"", "did you mean `wall_time_h`?"),
        ("\"wall_time_h.p95 <= 30\"", "\"wall_time_h.median <= 30\"", "did you mean `p50`?"),
        ("\"wall_time_h.p95 <= 30\"", "\"wall_time_h.p95 == 30\"", "compare with `<=` or `>=`"),
        ("minimize = \"cost_usd\"", "minimize = \"cost_usd\"\nconfidence = 1.0", "above 0 and below 1"),
        ("minimize = \"cost_usd\"", "minimize = \"cost\"", "unknown metric"),
    ];
    for (from, to, needle) in cases {
        let dir = workspace(&TRAINING.replace(from, to));
        refused(dir.path(), &["recommend", "exp.toml", "-q"], needle);
        // `run` reads the same table and refuses it too.
        refused(dir.path(), &["run", "exp.toml", "-q"], needle);
    }
    let no_sweep = TRAINING.split("[sweep]").next().unwrap();
    let dir = workspace(no_sweep);
    refused(dir.path(), &["recommend", "exp.toml", "-q"], "has no [sweep]");
    let no_objective =
        TRAINING.replace("[objective]\nminimize = \"cost_usd\"\nconstraints = [\"wall_time_h.p95 <= 30\"]\n", "");
    let dir = workspace(&no_objective);
    refused(dir.path(), &["recommend", "exp.toml", "-q"], "needs an [objective] table");
    let dir = workspace(TRAINING);
    refused(dir.path(), &["loadtest", "exp.toml", "-q"], "not an [inference] experiment");
    refused(dir.path(), &["recommend", "exp.toml", "-q", "--budget", "10"], "does not cover the first stage");
}

#[test]
fn recommend_writes_its_files_and_run_marks_the_cheapest() {
    let dir = workspace(TRAINING);
    let out = spotsim(&["recommend", "exp.toml", "-o", "rec"], dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("Choice: point") || err.contains("Nothing is feasible") || err.contains("No choice"), "{err}");
    let rec = std::fs::read_to_string(dir.path().join("rec/recommendations.csv")).unwrap();
    assert!(rec.starts_with(
        "point,training.checkpoint.interval,rank,status,replications,dropped_round,dropped_by,cost_usd.mean,\
         cost_usd.mean_low,cost_usd.mean_high,wall_time_h.p95,wall_time_h.p95_low,wall_time_h.p95_high,\
         wall_time_h.p95_holds,shortfall\n"
    ));
    assert_eq!(rec.lines().count(), 3);
    let rounds = std::fs::read_to_string(dir.path().join("rec/rounds.csv")).unwrap();
    assert!(rounds.starts_with("round,replications,sampled,survivors,spent\n1,20,2,"));
    let summary = std::fs::read_to_string(dir.path().join("rec/summary.csv")).unwrap();
    assert!(summary.starts_with("point,training.checkpoint.interval,metric,n,mean,"));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("rec/manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["procedure"]["command"], "recommend");
    assert!(!manifest["procedure"]["rounds"].as_array().unwrap().is_empty());
    assert!(manifest["procedure"]["errors"]["alpha"].as_f64().unwrap() > 0.0);

    let out = spotsim(&["run", "exp.toml", "-o", "run"], dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{err}");
    assert!(err.contains("cost_usd.mean") && err.contains("meets"), "{err}");
    assert!(err.contains("no confidence is claimed") || err.contains("no confidence claimed"), "{err}");
    // --quiet: nothing at all.
    let out = spotsim(&["run", "exp.toml", "-o", "run", "-q"], dir.path());
    assert!(out.stderr.is_empty());
}

/// Issue 26, item 7: `recommend` says up front what its rounds will take,
/// and a load test's progress adds up to the work it announced, whatever
/// its searches evaluate.
#[test]
fn recommend_states_its_estimate_first_and_loadtest_progress_adds_up_to_its_work() {
    let dir = workspace(MMC);
    let out = spotsim(&["recommend", "exp.toml", "-o", "out", "--budget", "400"], dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let first = stderr.lines().next().unwrap_or_default();
    // 17 points: 20 replications each in the first round; the budget of 400
    // at most 24 each (408).
    assert!(
        first.starts_with("mmc: estimate: the first round 340 replications (")
            && first.contains("; at most 408 replications (")
            && first.ends_with(", the budget)"),
        "{first}"
    );

    let dir = workspace(&MM1.replace("[sweep]\n\"loadtest.threshold\" = [\"100ms\"]\n", ""));
    let e = experiment::load(&dir.path().join("exp.toml"), &[]).unwrap();
    let spec = spotsim::commands::loadtest::check(&e).unwrap();
    let units = spotsim::commands::loadtest::work_units(&e, spec);
    let done = std::sync::atomic::AtomicU64::new(0);
    let settings = spotsim::commands::loadtest::Settings { runs: 2, requests: 10_000, warmup: 1_000, precision: 0.01 };
    spotsim::commands::loadtest::loadtest(&e, &Runner::new(2).unwrap(), &settings, &|n| {
        done.fetch_add(n, std::sync::atomic::Ordering::Relaxed);
    })
    .unwrap();
    assert_eq!(done.into_inner(), units);
    assert_eq!(units, spotsim::commands::loadtest::EVALUATIONS_PER_POINT);
}

/// The M/M/c sweep with an instance type and autoscaling, so that its
/// choice can be emitted as SageMaker requests (issue 30, section 3).
fn emittable() -> String {
    let design = MMC.split("[sweep]").next().unwrap().replace("name = \"mmc\"", "name = \"emit me\"").replace(
        "price_per_hour = 1.0",
        "instance = \"ml.c5.xlarge\"\nautoscaling = { metric = \"invocations-per-instance\", target = 700, min = 1, \
         max = 20, scale_in_cooldown = \"10m\" }",
    );
    design + "[sweep]\n\"inference.autoscaling.min\" = [4, 8, 12]\n"
}

fn json(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))).unwrap()
}

#[test]
fn recommend_emits_the_chosen_design_as_sagemaker_requests() {
    let dir = workspace(&emittable());
    let args = ["recommend", "exp.toml", "-q", "-o", "rec", "--emit", "sagemaker", "sm"];
    let out = spotsim(&args, dir.path());
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let sm = dir.path().join("sm");
    let manifest = json(&sm.join("manifest.json"));
    assert_eq!(manifest["procedure"]["command"], "recommend --emit sagemaker");
    let point = manifest["procedure"]["point"].as_u64().unwrap() as usize;
    // The same point `recommend` ranked first.
    let rec = std::fs::read_to_string(dir.path().join("rec/recommendations.csv")).unwrap();
    assert!(rec.lines().nth(1).unwrap().starts_with(&format!("{point},")), "{rec}");
    let min = [4, 8, 12][point];
    let config = json(&sm.join("CreateEndpointConfig.json"));
    assert_eq!(config["EndpointConfigName"], "emit-me-config");
    let variant = &config["ProductionVariants"][0];
    assert_eq!(variant["InstanceType"], "ml.c5.xlarge");
    assert_eq!(variant["InitialInstanceCount"], min);
    assert_eq!(json(&sm.join("CreateEndpoint.json"))["EndpointName"], "emit-me");
    let target = json(&sm.join("RegisterScalableTarget-AllTraffic.json"));
    assert_eq!((target["MinCapacity"].as_u64(), target["MaxCapacity"].as_u64()), (Some(min), Some(20)));
    assert_eq!(target["ResourceId"], "endpoint/emit-me/variant/AllTraffic");
    let tt = &json(&sm.join("PutScalingPolicy-AllTraffic.json"))["TargetTrackingScalingPolicyConfiguration"];
    assert_eq!(tt["TargetValue"], 700.0);
    assert_eq!((tt["ScaleOutCooldown"].as_u64(), tt["ScaleInCooldown"].as_u64()), (Some(300), Some(600)));

    // Its own folder is replaced whole by the next emission; a user's file in it is not.
    let again = spotsim(&args, dir.path());
    assert!(again.status.success(), "{}", String::from_utf8_lossy(&again.stderr));
    std::fs::write(sm.join("notes.txt"), "mine").unwrap();
    let out = spotsim(&args, dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("holds files that spotsim did not write: notes.txt"));
    assert_eq!(std::fs::read_to_string(sm.join("notes.txt")).unwrap(), "mine");
}

#[test]
fn emitting_what_has_no_endpoint_or_no_format_is_refused_before_any_work() {
    let dir = workspace(TRAINING);
    refused(
        dir.path(),
        &["recommend", "exp.toml", "-q", "--emit", "sagemaker", "sm"],
        "this experiment is not an [inference] endpoint",
    );
    assert!(!dir.path().join("sm").exists());
    let dir = workspace(&emittable());
    refused(dir.path(), &["recommend", "exp.toml", "-q", "--emit", "sagemakr", "sm"], "did you mean `sagemaker`?");
    refused(dir.path(), &["recommend", "exp.toml", "-q", "-o", "same", "--emit", "sagemaker", "same"], "other than -o");
    // A design SageMaker cannot run: no instance type, only a price.
    let priced = emittable().replace("instance = \"ml.c5.xlarge\"", "price_per_hour = 0.2");
    let dir = workspace(&priced);
    let out = spotsim(&["recommend", "exp.toml", "-q", "-o", "rec", "--emit", "sagemaker", "sm"], dir.path());
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains("`inference.instance`") && err.contains("SageMaker needs the type"), "{err}");
    assert!(!dir.path().join("sm").exists(), "nothing emitted");
}
