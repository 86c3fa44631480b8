//! The output folder: claimed before a run, replaced whole after it, and
//! never anything that spotsim did not write. The rules, as docs/outputs.md
//! states them:
//!
//! - `DIR` may be missing, an empty folder, or a spotsim result: a folder
//!   whose `manifest.json` has `spotsim_version` and which holds nothing but
//!   spotsim's output files ([`OUTPUT_FILES`], and the request bodies of
//!   `recommend --emit`). Anything else is refused.
//! - From claim to finish a run holds `.NAME.lock` beside `DIR`, an OS file
//!   lock (the kernel drops it when the process dies, so it is never stale); a
//!   second run into the same folder is refused.
//! - Holding the lock, a run removes the staging (`.NAME.partial-PID`) and
//!   retired (`.NAME.old-PID`) folders that killed runs left behind; a retired
//!   folder with no `DIR` is the previous result, and is put back.
//! - Files are written into the staging folder, each synced to disk, then
//!   the folder is synced, renamed over `DIR`, and the parent synced.
//! - SIGINT, SIGTERM and SIGHUP remove the staging folders and locks of the
//!   process, then exit with 128 + the signal number.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

use anyhow::Context;
use rayon::prelude::*;

/// The files spotsim writes into an output folder; a folder holding anything
/// else is not replaced.
pub const OUTPUT_FILES: [&str; 8] = [
    "summary.csv",
    "replications.csv",
    "manifest.json",
    "timeline.csv",
    "recommendations.csv",
    "rounds.csv",
    "loadtest.csv",
    "columns.f64",
];

/// The request bodies `recommend --emit sagemaker` writes, by the API call
/// that opens their names: `CreateEndpointConfig.json`,
/// `PutScalingPolicy-AllTraffic.json`.
pub const REQUEST_PREFIXES: [&str; 7] = [
    "CreateEndpointConfig",
    "CreateEndpoint",
    "CreateInferenceComponent",
    "RegisterScalableTarget",
    "PutScalingPolicy",
    "PutScheduledAction",
    "PutMetricAlarm",
];

/// Whether spotsim writes files named `name` into an output folder.
fn is_output_file(name: &str) -> bool {
    let request = name.strip_suffix(".json").is_some_and(|stem| {
        REQUEST_PREFIXES
            .iter()
            .any(|p| stem.strip_prefix(p).is_some_and(|rest| rest.is_empty() || rest.starts_with('-')))
    });
    request || OUTPUT_FILES.contains(&name)
}

/// Longest experiment name, in bytes: it becomes a folder name, and staging
/// folders add up to 20 bytes to it within the usual 255-byte limit.
pub const MAX_NAME_BYTES: usize = 200;

/// An output folder that spotsim will not touch: exit status 2, before any
/// work is done.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {message}\n  hint: {hint}")]
pub struct Refused {
    pub path: String,
    pub message: String,
    pub hint: String,
}

fn refuse(path: &Path, message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    Refused { path: path.display().to_string(), message: message.into(), hint: hint.into() }.into()
}

/// Paths the signal handler removes: staging folders and lock files of this
/// process. Held across the final renames, so a signal never cuts them in two.
static CLEANUP: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());

fn cleanup() -> MutexGuard<'static, Vec<PathBuf>> {
    CLEANUP.lock().unwrap_or_else(|e| e.into_inner())
}

fn forget(path: &Path) {
    cleanup().retain(|p| p != path);
}

/// Removes the process's debris on SIGINT, SIGTERM and SIGHUP, then exits.
/// A signal that spotsim was started with ignored (`nohup`, `&` in a script)
/// stays ignored.
#[cfg(unix)]
fn install_signal_handler() {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let wanted: Vec<i32> = [SIGINT, SIGTERM, SIGHUP].into_iter().filter(|&s| !ignored(s)).collect();
        let Ok(mut signals) = signal_hook::iterator::Signals::new(wanted) else {
            return; // Without the handler a signal kills as before; the next run cleans up.
        };
        std::thread::spawn(move || {
            if let Some(signal) = signals.forever().next() {
                let paths = cleanup();
                for path in paths.iter() {
                    remove(path);
                }
                std::process::exit(128 + signal);
            }
        });
    });
}

/// Whether `signal` is ignored now.
#[cfg(unix)]
fn ignored(signal: i32) -> bool {
    // SAFETY: with a null new action, `sigaction` only reads the current one
    // into `old`, a plain C struct for which all zeroes is a valid value.
    unsafe {
        let mut old: libc::sigaction = std::mem::zeroed();
        libc::sigaction(signal, std::ptr::null(), &mut old) == 0 && old.sa_sigaction == libc::SIG_IGN
    }
}

#[cfg(not(unix))]
fn install_signal_handler() {}

fn remove(path: &Path) {
    let _ = if path.is_dir() { std::fs::remove_dir_all(path) } else { std::fs::remove_file(path) };
}

/// An output folder claimed by this run: checked, locked and cleared of
/// debris. Dropping it removes the lock.
#[derive(Debug)]
pub struct OutputDir {
    /// As the user gave it, for messages.
    shown: PathBuf,
    /// In the canonical parent, for the file operations.
    dir: PathBuf,
    parent: PathBuf,
    leaf: String,
    lock_path: PathBuf,
    lock: Option<File>,
    /// Folders the claim created for the lock; removed again, if still
    /// empty, when no result was written (a refused run leaves nothing).
    created: Vec<PathBuf>,
}

impl OutputDir {
    /// Claims `dir` for this process, or refuses it (a [`Refused`] error).
    pub fn claim(dir: &Path) -> anyhow::Result<OutputDir> {
        Self::claim_with(dir, true)
    }

    /// `claim` for a host process that owns its signals (the Python
    /// package): no handler that exits the process on SIGINT. The host
    /// drops the claim on an interrupt; debris of a kill goes with the next
    /// run into the folder, as always.
    pub fn claim_embedded(dir: &Path) -> anyhow::Result<OutputDir> {
        Self::claim_with(dir, false)
    }

    fn claim_with(dir: &Path, handle_signals: bool) -> anyhow::Result<OutputDir> {
        let Some(leaf) = dir.file_name() else {
            return Err(refuse(dir, "is not a folder name", "give a path such as `results/run1` as -o"));
        };
        let leaf = leaf.to_string_lossy().into_owned();
        if leaf.len() > MAX_NAME_BYTES {
            return Err(refuse(
                dir,
                format!("the folder name is {} bytes long; at most {MAX_NAME_BYTES}", leaf.len()),
                "choose a shorter -o",
            ));
        }
        let parent = match dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let created: Vec<PathBuf> = parent
            .ancestors()
            .take_while(|a| !a.as_os_str().is_empty() && !a.exists())
            .map(Path::to_path_buf)
            .collect();
        std::fs::create_dir_all(&parent).with_context(|| format!("cannot create {}", parent.display()))?;
        // One lock per folder however it is spelt (`out`, `./out`).
        let parent = parent.canonicalize().with_context(|| format!("cannot find {}", parent.display()))?;
        if handle_signals {
            install_signal_handler();
        }
        let lock_path = parent.join(format!(".{leaf}.lock"));
        if cleanup().contains(&lock_path) {
            return Err(refuse(
                dir,
                "two experiments of this run would write into this folder",
                "give each experiment its own `name`, or run them one at a time",
            ));
        }
        let lock = take_lock(&lock_path, dir)?;
        let claimed = OutputDir {
            shown: dir.to_path_buf(),
            dir: parent.join(&leaf),
            parent,
            leaf,
            lock_path,
            lock: Some(lock),
            created,
        };
        claimed.clear_debris()?;
        claimed.check()?;
        Ok(claimed)
    }

    pub fn path(&self) -> &Path {
        &self.shown
    }

    fn sibling(&self, kind: &str) -> PathBuf {
        self.parent.join(format!(".{}.{kind}-{}", self.leaf, std::process::id()))
    }

    /// Removes what killed runs into this folder left; puts a retired
    /// previous result back if it never got replaced.
    fn clear_debris(&self) -> anyhow::Result<()> {
        let partial = format!(".{}.partial-", self.leaf);
        let old = format!(".{}.old-", self.leaf);
        let entries =
            std::fs::read_dir(&self.parent).with_context(|| format!("cannot list {}", self.parent.display()))?;
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            let is_debris = |prefix: &str| {
                name.strip_prefix(prefix).is_some_and(|pid| !pid.is_empty() && pid.bytes().all(|b| b.is_ascii_digit()))
            };
            if is_debris(&old) && std::fs::symlink_metadata(&self.dir).is_err() {
                std::fs::rename(entry.path(), &self.dir)
                    .with_context(|| format!("cannot restore {}", self.dir.display()))?;
            } else if is_debris(&partial) || is_debris(&old) {
                // What cannot be removed now is tried again by the next run.
                remove(&entry.path());
            }
        }
        Ok(())
    }

    /// Refuses a target that is not missing, empty, or a spotsim result.
    fn check(&self) -> anyhow::Result<()> {
        let dir = &self.shown;
        let meta = match std::fs::symlink_metadata(&self.dir) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(e).with_context(|| format!("cannot inspect {}", dir.display())),
        };
        let elsewhere = "choose another -o (spotsim replaces its output folder whole)";
        if meta.file_type().is_symlink() {
            return Err(refuse(
                dir,
                "is a symbolic link, which a result would replace",
                "give the link's target as -o",
            ));
        }
        if !meta.is_dir() {
            return Err(refuse(dir, "exists and is not a folder; spotsim does not replace it", elsewhere));
        }
        let mut names = Vec::new();
        let mut foreign = Vec::new();
        for entry in std::fs::read_dir(&self.dir).with_context(|| format!("cannot list {}", dir.display()))? {
            let entry = entry?;
            let name = entry.file_name().to_string_lossy().into_owned();
            if !(is_output_file(&name) && entry.file_type()?.is_file()) {
                foreign.push(name.clone());
            }
            names.push(name);
        }
        if names.is_empty() {
            return Ok(());
        }
        if !is_manifest(&self.dir.join("manifest.json")) {
            return Err(refuse(
                dir,
                "is a folder that spotsim did not write (no spotsim manifest.json in it)",
                elsewhere,
            ));
        }
        if !foreign.is_empty() {
            foreign.sort();
            return Err(refuse(
                dir,
                format!("holds files that spotsim did not write: {}", foreign.join(", ")),
                "move them out of the folder, or choose another -o",
            ));
        }
        Ok(())
    }

    /// Writes `files` into the folder as one unit: into a staging folder,
    /// synced, then renamed over the old result. On failure the old result
    /// stays as it was.
    pub fn write(&self, files: &[(&str, Vec<u8>)]) -> anyhow::Result<()> {
        self.write_with(|staging| {
            // The largest file dominates; writing in parallel hides the rest.
            files.par_iter().try_for_each(|(name, bytes)| {
                let path = staging.join(name);
                std::fs::write(&path, bytes).with_context(|| format!("cannot write {}", path.display()))
            })
        })
    }

    /// Like `write`, for files too large to hold in memory: `fill` writes
    /// them into the staging folder it is given; each is synced after.
    pub fn write_with(&self, fill: impl FnOnce(&Path) -> anyhow::Result<()>) -> anyhow::Result<()> {
        let staging = self.sibling("partial");
        let retired = self.sibling("old");
        cleanup().push(staging.clone());
        let result = self.write_via(&staging, &retired, fill);
        if result.is_err() {
            remove(&staging);
            if std::fs::symlink_metadata(&self.dir).is_err() && retired.exists() {
                let _ = std::fs::rename(&retired, &self.dir);
            }
        }
        forget(&staging);
        result
    }

    fn write_via(
        &self,
        staging: &Path,
        retired: &Path,
        fill: impl FnOnce(&Path) -> anyhow::Result<()>,
    ) -> anyhow::Result<()> {
        std::fs::create_dir(staging).with_context(|| format!("cannot create {}", staging.display()))?;
        fill(staging)?;
        let written: Vec<PathBuf> = std::fs::read_dir(staging)
            .with_context(|| format!("cannot list {}", staging.display()))?
            .map(|e| e.map(|e| e.path()))
            .collect::<std::io::Result<_>>()?;
        written.par_iter().try_for_each(|path| {
            File::open(path).and_then(|f| f.sync_all()).with_context(|| format!("cannot sync {}", path.display()))
        })?;
        sync_dir(staging)?;
        // The folder may have changed while the run computed.
        self.check()?;
        // A signal waits until the result is in place.
        let hold = cleanup();
        let replacing = std::fs::symlink_metadata(&self.dir).is_ok();
        if replacing {
            std::fs::rename(&self.dir, retired).with_context(|| format!("cannot replace {}", self.dir.display()))?;
        }
        std::fs::rename(staging, &self.dir)
            .with_context(|| format!("cannot move results into {}", self.dir.display()))?;
        sync_dir(&self.parent)?;
        drop(hold);
        // The result is in place; an old one that cannot be removed now is
        // debris that the next run into this folder removes.
        let _ = std::fs::remove_dir_all(retired);
        Ok(())
    }
}

impl Drop for OutputDir {
    fn drop(&mut self) {
        // Unlink before unlocking: see `take_lock`.
        if let Some(lock) = self.lock.take() {
            let _ = std::fs::remove_file(&self.lock_path);
            drop(lock);
        }
        forget(&self.lock_path);
        if !self.dir.exists() {
            // Innermost first; `remove_dir` leaves a folder that has anything in it.
            for folder in &self.created {
                let _ = std::fs::remove_dir(folder);
            }
        }
    }
}

/// Locks `path` for this process, or refuses: another run holds it.
fn take_lock(path: &Path, dir: &Path) -> anyhow::Result<File> {
    loop {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .with_context(|| format!("cannot create the lock file {}", path.display()))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = file.read_to_string(&mut holder);
                let holder = holder.trim();
                let who =
                    if holder.is_empty() { "another spotsim run".into() } else { format!("spotsim (PID {holder})") };
                return Err(refuse(
                    dir,
                    format!("{who} is writing into this folder"),
                    "wait for it to finish, or choose another -o",
                ));
            }
            Err(TryLockError::Error(e)) => {
                return Err(e).with_context(|| format!("cannot lock {}", path.display()));
            }
        }
        // A holder removes the file before it unlocks: if it did so after we
        // opened it, our lock is on a file no one else will see. Try again.
        if !same_file(&file, path) {
            continue;
        }
        cleanup().push(path.to_path_buf());
        file.set_len(0)?;
        writeln!(file, "{}", std::process::id())?;
        return Ok(file);
    }
}

#[cfg(unix)]
fn same_file(file: &File, path: &Path) -> bool {
    use std::os::unix::fs::MetadataExt;
    match (file.metadata(), std::fs::metadata(path)) {
        (Ok(a), Ok(b)) => a.dev() == b.dev() && a.ino() == b.ino(),
        _ => false,
    }
}

#[cfg(not(unix))]
fn same_file(_: &File, path: &Path) -> bool {
    path.exists()
}

/// Whether `path` is the manifest of a spotsim result.
fn is_manifest(path: &Path) -> bool {
    let is_file = std::fs::symlink_metadata(path).is_ok_and(|m| m.is_file());
    is_file
        && std::fs::read(path)
            .ok()
            .and_then(|bytes| serde_json::from_slice::<serde_json::Value>(&bytes).ok())
            .is_some_and(|m| m.get("spotsim_version").is_some_and(|v| v.is_string()))
}

/// Makes a folder's entries (new files, renames) durable.
fn sync_dir(path: &Path) -> anyhow::Result<()> {
    #[cfg(unix)]
    File::open(path).and_then(|dir| dir.sync_all()).with_context(|| format!("cannot sync {}", path.display()))?;
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<_> =
            std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().file_name().to_string_lossy().into_owned()).collect();
        names.sort();
        names
    }

    fn manifest() -> (&'static str, Vec<u8>) {
        ("manifest.json", b"{\"spotsim_version\": \"0.1.0\"}\n".to_vec())
    }

    #[test]
    fn replaces_a_result_whole_and_leaves_nothing_beside_it() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        OutputDir::claim(&dir).unwrap().write(&[manifest(), ("summary.csv", b"1".to_vec())]).unwrap();
        OutputDir::claim(&dir).unwrap().write(&[manifest(), ("timeline.csv", b"2".to_vec())]).unwrap();
        assert_eq!(names(&dir), ["manifest.json", "timeline.csv"]);
        assert_eq!(names(tmp.path()), ["out"]);
    }

    #[test]
    fn refuses_what_it_did_not_write() {
        let tmp = tempfile::tempdir().unwrap();
        let file = tmp.path().join("file");
        std::fs::write(&file, "mine").unwrap();
        let folder = tmp.path().join("folder");
        std::fs::create_dir(&folder).unwrap();
        std::fs::write(folder.join("notes.txt"), "mine").unwrap();
        let result = tmp.path().join("result");
        OutputDir::claim(&result).unwrap().write(&[manifest()]).unwrap();
        std::fs::write(result.join("analysis.ipynb"), "mine").unwrap();
        for (path, says) in [
            (&file, "is not a folder"),
            (&folder, "spotsim did not write"),
            (&result, "holds files that spotsim did not write: analysis.ipynb"),
        ] {
            let e = OutputDir::claim(path).unwrap_err();
            assert!(e.is::<Refused>() && e.to_string().contains(says), "{e}");
        }
        assert_eq!(std::fs::read_to_string(&file).unwrap(), "mine");
        assert_eq!(names(&folder), ["notes.txt"]);
        assert_eq!(names(tmp.path()), ["file", "folder", "result"], "no lock left behind");
    }

    #[test]
    fn request_bodies_are_spotsims_and_look_alikes_are_not() {
        for ours in ["CreateEndpointConfig.json", "CreateEndpoint-a-b.json", "PutMetricAlarm-small-wake.json"] {
            assert!(is_output_file(ours), "{ours}");
        }
        for theirs in ["CreateEndpointConfigs.json", "PutScalingPolicy.yaml", "policy.json", "DeleteEndpoint.json"] {
            assert!(!is_output_file(theirs), "{theirs}");
        }
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("emit");
        OutputDir::claim(&dir).unwrap().write(&[manifest(), ("CreateEndpoint.json", b"{}".to_vec())]).unwrap();
        OutputDir::claim(&dir).unwrap().write(&[manifest(), ("PutScalingPolicy-x.json", b"{}".to_vec())]).unwrap();
        assert_eq!(names(&dir), ["PutScalingPolicy-x.json", "manifest.json"]);
    }

    #[test]
    fn a_second_claim_is_refused_while_the_first_holds() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        let first = OutputDir::claim(&dir).unwrap();
        let e = OutputDir::claim(&dir).unwrap_err();
        assert!(e.is::<Refused>() && e.to_string().contains("would write into this folder"), "{e}");
        // Another process's lock: the same check the kernel makes.
        let other = OpenOptions::new().read(true).open(tmp.path().join(".out.lock")).unwrap();
        assert!(matches!(other.try_lock(), Err(TryLockError::WouldBlock)));
        drop(first);
        OutputDir::claim(&dir).unwrap();
    }

    #[test]
    fn debris_of_killed_runs_goes_and_a_retired_result_comes_back() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("out");
        std::fs::create_dir(tmp.path().join(".out.partial-99999999")).unwrap();
        std::fs::write(tmp.path().join(".out.partial-99999999/replications.csv"), "cut off").unwrap();
        std::fs::create_dir(tmp.path().join(".out.old-99999998")).unwrap();
        std::fs::write(tmp.path().join(".out.old-99999998/manifest.json"), manifest().1).unwrap();
        std::fs::create_dir(tmp.path().join(".out.partial-x")).unwrap(); // not ours
        let claimed = OutputDir::claim(&dir).unwrap();
        assert_eq!(names(&dir), ["manifest.json"]);
        drop(claimed);
        assert_eq!(names(tmp.path()), [".out.partial-x", "out"]);
    }
}
