//! No lost data, no hang, a helpful word for every typo: the output folder's
//! rules, signals, and the messages of SPEC section 4.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::child;
use super::cli::{GOOD, spotsim, stderr, workspace};

/// Entries of `dir`, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> =
        std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
    names.sort();
    names
}

/// Runs `spotsim run exp.toml -q -n 5 -o out` (plus `args`) in `dir`.
fn run_into_out(dir: &Path, args: &[&str]) -> std::process::Output {
    spotsim(&[&["run", "exp.toml", "-q", "-n", "5", "-o", "out"], args].concat(), dir)
}

#[test]
fn an_existing_output_that_spotsim_did_not_write_is_refused() {
    let (dir, _) = workspace(GOOD);
    let d = dir.path();
    // A folder of the user's, a file, and a result with a file added.
    std::fs::create_dir(d.join("mine")).unwrap();
    std::fs::write(d.join("mine/thesis.tex"), "precious").unwrap();
    std::fs::write(d.join("file"), "precious").unwrap();
    assert!(run_into_out(d, &[]).status.success());
    std::fs::write(d.join("out/notes.md"), "precious").unwrap();
    for (target, says) in [
        ("mine", "is a folder that spotsim did not write"),
        ("file", "exists and is not a folder"),
        ("out", "holds files that spotsim did not write: notes.md"),
    ] {
        let out = spotsim(&["run", "exp.toml", "-q", "-n", "5", "-o", target], d);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{target}: {err}");
        assert!(err.starts_with(&format!("error: {target}: {says}")) && err.contains("hint: "), "{err}");
    }
    assert_eq!(std::fs::read_to_string(d.join("mine/thesis.tex")).unwrap(), "precious");
    assert_eq!(std::fs::read_to_string(d.join("file")).unwrap(), "precious");
    assert_eq!(std::fs::read_to_string(d.join("out/notes.md")).unwrap(), "precious");
    // Nothing hidden beside them: no retired copy, no staging, no lock.
    assert_eq!(names(d), ["exp.toml", "file", "mine", "out"]);
    // An empty folder and a spotsim result are fine.
    std::fs::remove_file(d.join("out/notes.md")).unwrap();
    std::fs::create_dir(d.join("empty")).unwrap();
    assert!(run_into_out(d, &[]).status.success());
    assert!(spotsim(&["run", "exp.toml", "-q", "-n", "5", "-o", "empty"], d).status.success());
    assert!(d.join("empty/summary.csv").exists());
}

#[test]
fn a_second_run_into_a_busy_folder_is_refused_and_a_dead_holder_is_no_holder() {
    let (dir, _) = workspace(GOOD);
    let d = dir.path();
    assert!(run_into_out(d, &[]).status.success());
    let before = std::fs::read(d.join("out/replications.csv")).unwrap();
    std::fs::write(d.join("endless.toml"), ENDLESS).unwrap();
    let mut first = start_endless(d, libc::SIG_DFL);
    let out = run_into_out(d, &["--seed", "9"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(err.contains(&format!("out: spotsim (PID {}) is writing into this folder", first.0.id())), "{err}");
    assert_eq!(std::fs::read(d.join("out/replications.csv")).unwrap(), before);
    // Killed outright, it leaves its lock file, but the kernel has released the lock.
    first.0.kill().unwrap();
    child::wait(&mut first.0, Duration::from_secs(20), "a killed run");
    assert!(d.join(".out.lock").exists());
    let out = run_into_out(d, &["--seed", "9"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_ne!(std::fs::read(d.join("out/replications.csv")).unwrap(), before);
    assert_eq!(names(d), ["endless.toml", "exp.toml", "out"]);
}

/// A spotsim process that is killed when the test ends, passed or failed.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill(); // SIGKILL: the wait that follows returns.
        let _ = self.0.wait();
    }
}

/// Starts a run of `ENDLESS` into `out` with SIGINT, SIGHUP and SIGTERM at
/// `action`, and waits until it holds the lock.
fn start_endless(dir: &Path, action: libc::sighandler_t) -> Running {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_spotsim"));
    cmd.args(["run", "endless.toml", "-q", "-o", "out"]).current_dir(dir).stdout(Stdio::null()).stderr(Stdio::null());
    let child = child::with_signals(&mut cmd, SIGNALS, action).spawn().unwrap();
    let running = Running(child);
    let start = Instant::now();
    let pid = running.0.id().to_string();
    while std::fs::read_to_string(dir.join(".out.lock")).map_or(true, |text| text.trim() != pid) {
        assert!(start.elapsed() < Duration::from_secs(20), "no lock appeared");
        std::thread::sleep(Duration::from_millis(20));
    }
    running
}

#[test]
fn two_experiments_of_one_run_into_one_folder_are_refused() {
    let (dir, _) = workspace(GOOD);
    std::fs::copy(dir.path().join("exp.toml"), dir.path().join("same.toml")).unwrap();
    let out = spotsim(&["run", "exp.toml", "same.toml", "-q", "-n", "5"], dir.path());
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("two experiments of this run would write into this folder"), "{}", stderr(&out));
    assert!(!dir.path().join("results").exists(), "a refused run leaves nothing, not even the parent it made");
}

#[test]
fn debris_of_killed_runs_is_removed_by_the_next_run() {
    let (dir, _) = workspace(GOOD);
    let d = dir.path();
    assert!(run_into_out(d, &[]).status.success());
    // What `kill -9` leaves: a staging folder with a cut-off file, mid-write.
    std::fs::create_dir(d.join(".out.partial-999999999")).unwrap();
    std::fs::write(d.join(".out.partial-999999999/replications.csv"), "point,replication,wall_ti").unwrap();
    // Killed between its two renames: the previous result is retired, no `out`.
    std::fs::rename(d.join("out"), d.join(".out.old-999999998")).unwrap();
    let previous = std::fs::read(d.join(".out.old-999999998/summary.csv")).unwrap();
    let out = spotsim(&["check", "exp.toml"], d);
    assert!(out.status.success());
    assert_eq!(names(d).len(), 3, "check touches no output");
    // A run into another folder leaves them alone; the next run into `out` clears them.
    assert!(spotsim(&["run", "exp.toml", "-q", "-n", "5", "-o", "other"], d).status.success());
    assert_eq!(names(d), [".out.old-999999998", ".out.partial-999999999", "exp.toml", "other"]);
    let out = spotsim(&["run", "exp.toml", "-q", "-n", "5", "-o", "out", "--set", "training.work=1h"], d);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(names(d), ["exp.toml", "other", "out"]);
    assert_ne!(std::fs::read(d.join("out/summary.csv")).unwrap(), previous);
}

const ENDLESS: &str = r#"name = "endless"
replications = 1

[inference]
instance = "ml.c5.xlarge"
workers = 4
service_time = "40ms"
initial_instances = 50

[traffic]
synthetic = { mean_rps = 5000 }
duration = "30d"
"#;

/// The signals spotsim stops on, each with the exit code it stops with.
const SIGNALS: &[libc::c_int] = &[libc::SIGINT, libc::SIGHUP, libc::SIGTERM];

/// The signals reach the child with their default action even when the test
/// started with SIGINT and SIGHUP ignored (`nohup cargo test &`, or `cmd &`
/// in a script, which the child would inherit), and every wait has a limit.
#[test]
fn sigint_sighup_and_sigterm_stop_a_run_without_debris() {
    let (dir, _) = workspace(GOOD);
    let d = dir.path();
    assert!(run_into_out(d, &[]).status.success());
    let previous = std::fs::read(d.join("out/replications.csv")).unwrap();
    std::fs::write(d.join("endless.toml"), ENDLESS).unwrap();
    for &signal in SIGNALS {
        let mut running = start_endless(d, libc::SIG_DFL);
        child::send(&running.0, signal);
        let status = child::wait(&mut running.0, Duration::from_secs(20), "a run sent a signal");
        assert_eq!(status.code(), Some(128 + signal), "signal {signal}");
        assert_eq!(names(d), ["endless.toml", "exp.toml", "out"], "signal {signal}");
        assert_eq!(std::fs::read(d.join("out/replications.csv")).unwrap(), previous);
    }
    // Started with them ignored (as `nohup` does with SIGHUP), it ignores them.
    let mut running = start_endless(d, libc::SIG_IGN);
    for &signal in SIGNALS {
        child::send(&running.0, signal);
    }
    std::thread::sleep(Duration::from_millis(300));
    assert!(running.0.try_wait().unwrap().is_none(), "an ignored signal stopped the run");
}

/// The system calls of a run, where `strace` is there to show them.
#[test]
fn outputs_are_synced_before_the_rename_and_the_folder_after() {
    let (dir, _) = workspace(GOOD);
    let d = dir.path();
    let traced = child::output(
        Command::new("strace")
            .args(["-f", "-y", "-qq", "-o", "trace.log", "-e", "trace=fsync,fdatasync,rename,renameat,renameat2"])
            .arg(env!("CARGO_BIN_EXE_spotsim"))
            .args(["run", "exp.toml", "-q", "-n", "5", "-o", "out"])
            .current_dir(d),
    );
    if !traced.is_ok_and(|o| o.status.success()) {
        return; // no strace (or no ptrace) here
    }
    let log = std::fs::read_to_string(d.join("trace.log")).unwrap();
    let lines: Vec<&str> = log.lines().collect();
    let at = |needle: &dyn Fn(&str) -> bool| lines.iter().position(|l| needle(l));
    let rename = at(&|l| l.contains("rename") && l.contains(".out.partial-")).expect("the staging folder is renamed");
    for file in ["summary.csv", "replications.csv", "manifest.json"] {
        let synced = at(&|l| l.contains("fsync(") && l.contains(&format!("/{file}>"))).expect(file);
        assert!(synced < rename, "{file} synced before the rename:\n{log}");
    }
    let staging = at(&|l| {
        let folder = l.split(".out.partial-").nth(1);
        l.contains("fsync(")
            && folder.is_some_and(|rest| rest.trim_start_matches(|c: char| c.is_ascii_digit()).starts_with('>'))
    });
    assert!(staging.is_some_and(|s| s < rename), "the staging folder synced before the rename:\n{log}");
    let parent = format!("<{}>", d.canonicalize().unwrap().display());
    assert!(
        lines[rename..].iter().any(|l| l.contains("fsync(") && l.contains(&parent)),
        "the parent synced after:\n{log}"
    );
}

/// Each message names the file, the line and the key (SPEC section 4).
#[test]
fn messages_name_the_key_and_its_line() {
    let cases: &[(&str, &str, &str, &[&str])] = &[
        (
            "a misspelt required key",
            "work = \"10h\"",
            "wrok = \"10h\"",
            &["exp.toml:6: `training.wrok`: unknown key in `training`", "did you mean `work`?"],
        ),
        (
            "an integer too large, in a table",
            "write = \"2m\"",
            "write = 99999999999999999999",
            &["exp.toml:11: `training.checkpoint.write`: integer 99999999999999999999 is out of range"],
        ),
        (
            "a date, in a table",
            "restore = \"5m\"",
            "restore = 1979-05-27",
            &["exp.toml:12: `training.checkpoint.restore`: dates are not used"],
        ),
        (
            "a duplicate key",
            "startup = \"5m\"",
            "startup = \"5m\"\nwork = \"5h\"",
            &["exp.toml:8: `training.work`: not valid TOML: duplicate key"],
        ),
        (
            "a syntax error in a value",
            "startup = \"5m\"",
            "startup = 5m",
            &["exp.toml:7: `training.startup`: not valid TOML"],
        ),
        (
            "an extreme number",
            "[spot]\n",
            "[spot]\ndiscount = 1e308\n",
            &["exp.toml:15: `spot.discount`: expected a number from 0 to 1, found 1e308"],
        ),
        (
            "a bound that is no bound",
            "replications = 50",
            "replications = 50\nseed = -1",
            &["exp.toml:3: `seed`: expected a whole number >= 0, found -1"],
        ),
        (
            "a name too long for a folder",
            "name = \"tiny\"",
            &format!("name = \"{}\"", "x".repeat(300)),
            &["exp.toml:1: `name`: expected a name of at most 200 bytes, found 300"],
        ),
    ];
    for (what, from, to, needles) in cases {
        assert!(GOOD.contains(from), "{what}");
        let (dir, _) = workspace(&GOOD.replacen(from, to, 1));
        let out = spotsim(&["run", "exp.toml", "-q"], dir.path());
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{what}: {err}");
        for needle in *needles {
            assert!(err.contains(needle), "{what}: {needle:?} not in:\n{err}");
        }
        assert!(err.len() < 400, "{what}: short: {err}");
        assert_eq!(names(dir.path()), ["exp.toml"], "{what}");
    }
}

#[test]
fn a_byte_that_is_not_utf8_is_located() {
    let (dir, file) = workspace(GOOD);
    let mut bytes = GOOD.replacen("work = \"10h\"", "work = \"10h#\"", 1).into_bytes();
    let at = bytes.iter().position(|&b| b == b'#').unwrap();
    bytes[at] = 0xFF;
    std::fs::write(file, bytes).unwrap();
    let out = spotsim(&["check", "exp.toml"], dir.path());
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("exp.toml:6: not valid UTF-8 at column 12 (byte 0xFF)"), "{}", stderr(&out));
}

#[test]
fn set_sweeps_a_key_and_shows_toml_errors() {
    let (dir, _) = workspace(GOOD);
    let out = spotsim(&["check", "exp.toml", "--set", "sweep.training.work=[\"1h\", \"2h\", \"3h\"]"], dir.path());
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(text.contains("6 point(s)") && text.contains("# swept: training.checkpoint.interval, training.work"));
    // Quoted like the file's [sweep] keys, and replacing a swept key's values.
    let out = spotsim(&["check", "exp.toml", "--set", "sweep.\"training.checkpoint.interval\"=[\"2h\"]"], dir.path());
    assert!(String::from_utf8_lossy(&out.stdout).contains("1 point(s)"), "{}", stderr(&out));
    for (set, says) in [
        ("sweep.training.work=1h", "--set: `sweep.\"training.work\"`: expected a list of values"),
        (
            "spot.interruptions={ model = \"poisson\"",
            "--set: `spot.interruptions`: not valid TOML: unclosed inline table",
        ),
    ] {
        let out = spotsim(&["check", "exp.toml", "--set", set], dir.path());
        assert_eq!(out.status.code(), Some(2), "{set}");
        assert!(stderr(&out).contains(says), "{set}: {}", stderr(&out));
    }
}

#[test]
fn a_hidden_file_without_a_name_runs_into_a_visible_folder() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join(".exp.toml"), GOOD.replacen("name = \"tiny\"\n", "", 1)).unwrap();
    let out = spotsim(&["run", ".exp.toml", "-q", "-n", "5"], dir.path());
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(dir.path().join("results/exp/summary.csv").exists());
}

#[test]
fn a_named_pipe_is_not_read_as_a_data_file() {
    let (dir, _) = workspace(&GOOD.replace(
        r#"capacity_wait = { dist = "exponential", mean = "10m" }"#,
        r#"capacity_wait = { dist = "empirical", file = "pipe.csv" }"#,
    ));
    let made = child::output(Command::new("mkfifo").arg(dir.path().join("pipe.csv")));
    if !made.is_ok_and(|o| o.status.success()) {
        return; // no mkfifo here
    }
    for file in ["exp.toml", "pipe.csv"] {
        let mut child = Running(
            Command::new(env!("CARGO_BIN_EXE_spotsim"))
                .args(["check", file])
                .current_dir(dir.path())
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        );
        let start = Instant::now();
        let status = loop {
            if let Some(status) = child.0.try_wait().unwrap() {
                break status;
            }
            assert!(start.elapsed() < Duration::from_secs(20), "`check {file}` blocks on a named pipe");
            std::thread::sleep(Duration::from_millis(20));
        };
        let mut err = String::new();
        std::io::Read::read_to_string(&mut child.0.stderr.take().unwrap(), &mut err).unwrap();
        assert_eq!(status.code(), Some(2), "{file}: {err}");
        assert!(err.contains("is not a regular file"), "{file}: {err}");
    }
}

/// `queue_limit` × instances beyond 32 bits, in both engines.
#[test]
fn huge_queue_limits_do_not_overflow() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("e.toml");
    for fidelity in ["request", "fluid"] {
        // One worker per instance, overloaded: the queue limit is consulted.
        let text = ENDLESS.replace("duration = \"30d\"", "duration = \"1m\"").replace("workers = 4", "workers = 1")
            + &format!(
                "\n[sweep]\n\"inference.queue_limit\" = [100000000]\n\"inference.fidelity\" = [\"{fidelity}\"]\n"
            );
        std::fs::write(&path, text).unwrap();
        let e = spotsim::experiment::load(&path, &[]).unwrap();
        let runner = spotsim::engine::Runner::new(1).unwrap();
        let rows = spotsim::commands::run::simulate(&e, &runner, &|_| {});
        assert_eq!(rows.len(), 1);
    }
}
