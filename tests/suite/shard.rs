//! Sharded runs and their merge: byte-identical to one run, and every way a
//! set of shards can be wrong refused with a message that says what to do.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/experiments");

fn spotsim(args: &[&str], dir: &Path) -> Output {
    super::child::output(
        Command::new(env!("CARGO_BIN_EXE_spotsim"))
            .args(args)
            .current_dir(dir)
            .env_remove("SLURM_ARRAY_TASK_ID")
            .env_remove("SLURM_ARRAY_TASK_COUNT")
            .env_remove("JOB_COMPLETION_INDEX"),
    )
    .expect("spotsim runs")
}

fn ok(args: &[&str], dir: &Path) {
    let out = spotsim(args, dir);
    assert!(out.status.success(), "spotsim {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// Exit status 2, and stderr holding every one of `words`.
fn refused(args: &[&str], dir: &Path, words: &[&str]) {
    let out = spotsim(args, dir);
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "spotsim {args:?}: {err}");
    for w in words {
        assert!(err.contains(w), "spotsim {args:?}: no `{w}` in: {err}");
    }
    assert!(err.contains("hint:"), "no advice in: {err}");
}

/// A bundled experiment with `-n reps` and overrides, as run arguments.
fn experiment(file: &str, reps: u64, sets: &[&str]) -> Vec<String> {
    let mut args = vec![format!("{EXAMPLES}/{file}"), "-n".into(), reps.to_string(), "-q".into()];
    for s in sets {
        args.extend(["--set".into(), s.to_string()]);
    }
    args
}

fn run(dir: &Path, exp: &[String], extra: &[&str]) {
    let mut args: Vec<&str> = vec!["run"];
    args.extend(exp.iter().map(String::as_str));
    args.extend(extra);
    ok(&args, dir);
}

/// Runs shards 1..=n of `exp` into `name/shard-K` and returns their folders.
fn shards(dir: &Path, exp: &[String], name: &str, n: u64) -> Vec<String> {
    (1..=n)
        .map(|k| {
            let out = format!("{name}/shard-{k}");
            run(dir, exp, &["--shard", &format!("{k}/{n}"), "-o", &out]);
            out
        })
        .collect()
}

fn merge(dir: &Path, out: &str, parts: &[String]) -> Output {
    let mut args = vec!["merge", "-q", "-o", out];
    args.extend(parts.iter().map(String::as_str));
    spotsim(&args, dir)
}

fn same_files(a: &Path, b: &Path) {
    let names = ["summary.csv", "replications.csv", "timeline.csv"];
    for name in names {
        let (x, y) = (std::fs::read(a.join(name)).ok(), std::fs::read(b.join(name)).ok());
        assert!(x == y, "{name} differs between {} and {}", a.display(), b.display());
    }
    assert!(a.join("summary.csv").exists());
}

/// For N in {1, 2, 3, 7}, shards merged in a shuffled order give the bytes
/// of one run; with 5 replications, N = 7 has empty shards.
fn merges_like_one_run(file: &str, reps: u64, sets: &[&str], timeline: bool) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let exp = experiment(file, reps, sets);
    run(dir, &exp, &["-o", "single"]);
    assert_eq!(dir.join("single/timeline.csv").exists(), timeline);
    for n in [1, 2, 3, 7] {
        let mut parts = shards(dir, &exp, &format!("n{n}"), n);
        parts.rotate_left(n as usize / 2);
        parts.reverse();
        let out = format!("merged-{n}");
        let o = merge(dir, &out, &parts);
        assert!(o.status.success(), "merge of {n}: {}", String::from_utf8_lossy(&o.stderr));
        same_files(&dir.join("single"), &dir.join(&out));
        let manifest: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(&out).join("manifest.json")).unwrap()).unwrap();
        assert_eq!(manifest["merged_from"].as_array().unwrap().len(), n as usize);
        assert_eq!(manifest["experiment"]["replications"], reps);
    }
}

#[test]
fn a_training_sweep_merges_byte_identical() {
    merges_like_one_run("checkpoint-sweep.toml", 5, &[], false);
}

#[test]
fn an_endpoint_sweep_with_a_timeline_merges_byte_identical() {
    merges_like_one_run("endpoint-autoscaling.toml", 5, &["traffic.duration=40m"], true);
}

#[test]
fn serverless_merges_byte_identical() {
    merges_like_one_run("serverless-vs-endpoint.toml", 5, &["traffic.duration=30m"], true);
}

#[test]
fn merge_refuses_what_is_not_one_whole_run() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let exp = experiment("checkpoint-sweep.toml", 6, &["training.work=20h"]);
    let parts = shards(dir, &exp, "good", 3);
    let with = |k: usize, other: &str| -> Vec<String> {
        let mut p = parts.clone();
        p[k] = other.to_string();
        p
    };

    // A missing shard: named, with the command that computes it.
    let o = merge(dir, "m", &parts[..2]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("missing 1 of 3 shards: 3/3"), "{err}");
    assert!(err.contains("--shard 3/3 -o good/shard-3"), "{err}");
    assert!(!dir.join("m").exists());

    // A repeated one.
    let mut twice = parts.clone();
    twice.push(parts[1].clone());
    let args = |p: &[String]| -> Vec<String> {
        ["merge", "-q", "-o", "m"].iter().map(|s| s.to_string()).chain(p.iter().cloned()).collect()
    };
    let check = |p: &[String], words: &[&str]| {
        let a = args(p);
        refused(&a.iter().map(String::as_str).collect::<Vec<_>>(), dir, words);
        assert!(!dir.join("m").exists());
    };
    check(&twice, &["shard 2/3", "given twice", "give each shard once"]);

    // Another seed.
    run(dir, &exp, &["--seed", "9", "--shard", "2/3", "-o", "seed9"]);
    check(&with(1, "seed9"), &["seed9", "seed 9", "seed 1", "--seed 1"]);

    // An edited experiment.
    let edited = experiment("checkpoint-sweep.toml", 6, &["training.work=21h"]);
    run(dir, &edited, &["--shard", "2/3", "-o", "edited"]);
    check(&with(1, "edited"), &["edited", "different resolved experiment", "rerun every shard"]);

    // Another split.
    run(dir, &exp, &["--shard", "2/4", "-o", "split"]);
    check(&with(1, "split"), &["shard 2/4", "split two ways"]);

    // A cut-off file, as a killed copy would leave it.
    let cut = dir.join("good/shard-2/columns.f64");
    let bytes = std::fs::read(&cut).unwrap();
    std::fs::write(&cut, &bytes[..bytes.len() - 8]).unwrap();
    check(&parts, &["columns.f64", "cut off", "rerun this shard", "--shard 2/3"]);
    std::fs::write(&cut, &bytes).unwrap();

    // A flipped byte in the binary columns.
    let columns = dir.join("good/shard-3/columns.f64");
    let mut bytes = std::fs::read(&columns).unwrap();
    bytes[5] ^= 1;
    std::fs::write(&columns, &bytes).unwrap();
    check(&parts, &["columns.f64", "damaged"]);
    bytes[5] ^= 1;
    std::fs::write(&columns, &bytes).unwrap();

    // A whole run is not a shard; a shard is not an output folder.
    run(dir, &exp, &["-o", "whole"]);
    check(&with(0, "whole"), &["whole run, not a shard"]);
    let a = args(&parts);
    let mut a: Vec<&str> = a.iter().map(String::as_str).collect();
    a[3] = "good/shard-1";
    refused(&a, dir, &["would replace"]);

    // After all that, the good shards still merge.
    let o = merge(dir, "m", &parts);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

#[test]
fn a_cut_off_timeline_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let exp = experiment("endpoint-autoscaling.toml", 3, &["traffic.duration=20m"]);
    let parts = shards(dir, &exp, "s", 2);
    let timeline = dir.join("s/shard-1/timeline.csv");
    let text = std::fs::read(&timeline).unwrap();
    std::fs::write(&timeline, &text[..text.len() / 2]).unwrap();
    let o = merge(dir, "m", &parts);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("timeline.csv: is cut off") && err.contains("rerun this shard"), "{err}");
    assert!(err.contains("--shard 1/2 -o s/shard-1"), "{err}");
    assert!(!dir.join("m").exists());
}

#[test]
fn bad_shard_arguments_are_input_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let exp = experiment("checkpoint-sweep.toml", 3, &[]);
    for (shard, words) in [
        ("0/3", &["no shard 0/3", "1/3 … 3/3"][..]),
        ("4/3", &["no shard 4/3"][..]),
        ("a/b", &["expected K/N, got `a/b`"][..]),
        ("auto", &["SLURM_ARRAY_TASK_ID", "JOB_COMPLETION_INDEX"][..]),
    ] {
        let mut args = vec!["run"];
        args.extend(exp.iter().map(String::as_str));
        args.extend(["--shard", shard, "-o", "out"]);
        refused(&args, dir, words);
    }
    assert!(!dir.join("out").exists());
}

#[test]
fn auto_takes_the_shard_from_the_scheduler() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let exp = experiment("checkpoint-sweep.toml", 4, &[]);
    let run_env = |vars: &[(&str, &str)], shard: &str, out: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_spotsim"));
        cmd.arg("run").args(&exp).args(["--shard", shard, "-o", out]).current_dir(dir);
        cmd.env_remove("SLURM_ARRAY_TASK_ID").env_remove("SLURM_ARRAY_TASK_COUNT").env_remove("JOB_COMPLETION_INDEX");
        let o = super::child::output(cmd.envs(vars.iter().copied())).unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        let m: serde_json::Value =
            serde_json::from_slice(&std::fs::read(dir.join(out).join("manifest.json")).unwrap()).unwrap();
        (m["shard"]["k"].as_u64().unwrap(), m["shard"]["n"].as_u64().unwrap())
    };
    assert_eq!(run_env(&[("SLURM_ARRAY_TASK_ID", "0"), ("SLURM_ARRAY_TASK_COUNT", "2")], "auto", "a"), (1, 2));
    // A rerun of one array task sees a count of 1; the N given wins.
    assert_eq!(run_env(&[("SLURM_ARRAY_TASK_ID", "1"), ("SLURM_ARRAY_TASK_COUNT", "1")], "auto/2", "b"), (2, 2));
    assert_eq!(run_env(&[("JOB_COMPLETION_INDEX", "1")], "auto/2", "c"), (2, 2));
    let o = merge(dir, "m", &["a".into(), "b".into()]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    run(dir, &exp, &["-o", "single"]);
    same_files(&dir.join("single"), &dir.join("m"));
}

#[test]
fn the_slurm_script_runs_every_shard_and_a_dependent_merge() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let exp = format!("{EXAMPLES}/checkpoint-sweep.toml");
    let o = spotsim(
        &["slurm", &exp, "--tasks", "4", "--partition", "main", "--time", "00:10:00", "-n", "20", "-o", "res"],
        dir,
    );
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let script = String::from_utf8(o.stdout).unwrap();
    let out: PathBuf = std::path::absolute(dir.join("res")).unwrap();
    for line in [
        "TASKS=4".to_string(),
        "RUN_ARGS=(-n 20)".to_string(),
        "SBATCH_ARGS=(--partition=main --time=00:10:00)".to_string(),
        format!("OUT={}", out.display()),
        format!("WORK={}-shards", out.display()),
    ] {
        assert!(script.lines().any(|l| l == line), "no line {line} in:\n{script}");
    }
    assert!(script.contains("--dependency=afterok"));
    std::fs::write(dir.join("job.slurm"), &script).unwrap();
    let syntax = super::child::output(Command::new("bash").args(["-n", "job.slurm"]).current_dir(dir)).unwrap();
    assert!(syntax.status.success(), "{}", String::from_utf8_lossy(&syntax.stderr));
    assert!(script.contains("--array=\"$array\""));
    // Bad input is refused before any script is printed.
    refused(&["slurm", &exp, "--tasks", "4", "--set", "training.wokr=1h"], dir, &["wokr"]);
}
