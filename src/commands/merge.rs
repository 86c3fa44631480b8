//! `spotsim merge`: shard folders back into the outputs of one run.
//!
//! The merge first checks every shard (same resolved experiment, seed, split
//! and spotsim version; none repeated or missing; every file as its shard
//! manifest records it), then streams: `summary.csv` is computed one (point,
//! metric) column at a time, each column read from the shards' `columns.f64`
//! in replication order and summarised by the same `Summary::of` as a single
//! run, so the bytes agree; `replications.csv` is formatted by the single
//! run's row formatter, a block of rows at a time, point by point in shard
//! order; `timeline.csv` is the one the shard with replication 0 wrote.
//! Memory holds a few columns or a block of rows, never every row.

use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Instant, SystemTime};

use anyhow::Context;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::base::stats::Summary;
use crate::engine::Runner;
use crate::engine::shard::{Shard, shell_quote};
use crate::input::{InputError, Origin};
use crate::output::shard::{COLUMNS, MANIFEST, ShardInfo, TIMELINE};
use crate::output::{OutputDir, RunInfo, manifest_of, push_replication_rows, replications_header, summary_table};

/// What a merge put together.
#[derive(Debug)]
pub struct Merged {
    pub shards: u64,
    pub points: usize,
    pub replications: u64,
}

/// A shard manifest as the merge reads it; the experiment stays as written,
/// so the merged manifest repeats it verbatim.
#[derive(Deserialize)]
struct ShardManifest {
    experiment_file: String,
    spotsim_version: String,
    command_line: Vec<String>,
    threads: usize,
    started: String,
    elapsed_s: f64,
    seed: u64,
    shard: ShardInfo,
    experiment: Box<RawValue>,
}

struct Part {
    dir: PathBuf,
    m: ShardManifest,
}

impl Part {
    fn name(&self) -> String {
        self.dir.display().to_string()
    }
    fn shard(&self) -> Shard {
        Shard { k: self.m.shard.k, n: self.m.shard.n }
    }
}

fn refuse(at: &Path, message: impl Into<String>, hint: impl Into<String>) -> anyhow::Error {
    let origin = Origin { file: at.display().to_string(), line: None };
    InputError::new(&origin, None, message).with_hint(Some(hint.into())).into()
}

/// Merges the shard folders `dirs` into `out`, written atomically. Input
/// problems (a shard missing, repeated, damaged, from another experiment or
/// seed) are [`InputError`]s inside the `anyhow::Error`.
pub fn merge(out: &OutputDir, dirs: &[PathBuf], runner: &Runner) -> anyhow::Result<Merged> {
    let started = SystemTime::now();
    let clock = Instant::now();
    let mut parts = dirs.iter().map(|d| read_part(d)).collect::<anyhow::Result<Vec<_>>>()?;
    check_out(out.path(), &parts)?;
    check_same_run(&parts)?;
    parts.sort_by_key(|p| p.m.shard.k);
    check_complete(&parts)?;
    runner.install(|| parts.par_iter().try_for_each(check_files))?;

    let first = &parts[0].m;
    let layout = &first.shard.layout;
    let width = layout.metrics.len();
    let points = layout.points.len();
    out.write_with(|staging| {
        let summaries: Vec<Vec<Summary>> = (0..points)
            .map(|p| {
                runner.install(|| {
                    (0..width)
                        .into_par_iter()
                        .map(|m| {
                            let mut column = Vec::with_capacity(first.shard.replications as usize);
                            for part in &parts {
                                let s = &part.m.shard;
                                read_values(part, s.column_offset(p, m), s.count() as usize, &mut column)?;
                            }
                            Ok(Summary::of(&mut column))
                        })
                        .collect::<anyhow::Result<Vec<_>>>()
                })
            })
            .collect::<anyhow::Result<_>>()?;
        let table = summary_table(layout, summaries.iter().enumerate());
        write_file(&staging.join("summary.csv"), |w| Ok(w.write_all(&table)?))?;
        write_file(&staging.join("replications.csv"), |w| {
            w.write_all(replications_header(layout).as_bytes())?;
            for p in 0..points {
                for part in &parts {
                    write_rows(part, p, runner, w)?;
                }
            }
            Ok(())
        })?;
        // Replication 0 is in the first shard that holds any replication.
        if let Some(part) = parts.iter().find(|p| p.m.shard.count() > 0 && p.m.shard.files.contains_key(TIMELINE)) {
            let path = part.dir.join(TIMELINE);
            write_file(&staging.join(TIMELINE), |w| {
                let mut file = File::open(&path).with_context(|| format!("cannot open {}", path.display()))?;
                std::io::copy(&mut file, w).with_context(|| format!("cannot copy {}", path.display()))?;
                Ok(())
            })?;
        }
        let manifest = merged_manifest(&parts, runner.threads(), started, clock);
        write_file(&staging.join(MANIFEST), |w| Ok(w.write_all(&manifest)?))
    })?;
    Ok(Merged { shards: parts.len() as u64, points, replications: first.shard.replications })
}

fn read_part(dir: &Path) -> anyhow::Result<Part> {
    let path = dir.join(MANIFEST);
    let what = "give the folders that `spotsim run EXPERIMENT --shard K/N -o DIR` wrote";
    if !dir.is_dir() {
        return Err(refuse(dir, "is not a folder", what));
    }
    let bytes =
        std::fs::read(&path).map_err(|e| refuse(dir, format!("is not a shard folder: {MANIFEST}: {e}"), what))?;
    let value: serde_json::Value = serde_json::from_slice(&bytes)
        .map_err(|e| refuse(&path, format!("is damaged: {e}"), "rerun this shard with the command that wrote it"))?;
    if value.get("shard").is_none() {
        let whole = value.get("spotsim_version").is_some();
        let message = if whole { "is the result of a whole run, not a shard" } else { "is not a spotsim shard folder" };
        return Err(refuse(dir, message, what));
    }
    let m: ShardManifest = serde_json::from_slice(&bytes).map_err(|e| {
        refuse(
            &path,
            format!("is not a shard manifest this spotsim reads: {e}"),
            "merge with the spotsim that ran the shards",
        )
    })?;
    Ok(Part { dir: dir.to_path_buf(), m })
}

/// `out` is replaced whole, so it must not be one of the shards.
fn check_out(out: &Path, parts: &[Part]) -> anyhow::Result<()> {
    let canonical = |p: &Path| std::fs::canonicalize(p).ok();
    if let Some(out_c) = canonical(out)
        && let Some(part) = parts.iter().find(|p| canonical(&p.dir).as_ref() == Some(&out_c))
    {
        return Err(refuse(
            out,
            format!("is the shard folder {}, which the merge would replace", part.name()),
            "choose another -o for the merged result",
        ));
    }
    Ok(())
}

fn check_same_run(parts: &[Part]) -> anyhow::Result<()> {
    let r = &parts[0];
    for p in &parts[1..] {
        let (a, b) = (&r.m, &p.m);
        if a.shard.fingerprint != b.shard.fingerprint {
            let names = {
                let name = |part: &Part| {
                    serde_json::from_str::<serde_json::Value>(part.m.experiment.get())
                        .ok()
                        .and_then(|e| e.get("name").and_then(|n| n.as_str().map(str::to_string)))
                        .unwrap_or_default()
                };
                let (x, y) = (name(r), name(p));
                if x == y { format!("experiment `{x}`") } else { format!("experiments `{y}` and `{x}`") }
            };
            return Err(refuse(
                &p.dir,
                format!(
                    "comes from a different resolved experiment than {} ({names}: fingerprints {} and {}); \
                     the experiment file, a --set, --point, -n or a data file's path changed between the shards",
                    r.name(),
                    b.shard.fingerprint,
                    a.shard.fingerprint
                ),
                "rerun every shard from one version of the experiment, or merge only the shards of one run",
            ));
        }
        if a.seed != b.seed {
            return Err(refuse(
                &p.dir,
                format!(
                    "has seed {}, but {} has seed {}; shards of different seeds do not merge",
                    b.seed,
                    r.name(),
                    a.seed
                ),
                format!("merge only the shards of one seed, or rerun this shard with --seed {}", a.seed),
            ));
        }
        if a.shard.n != b.shard.n {
            return Err(refuse(
                &p.dir,
                format!("is shard {}, but {} is shard {}: the run was split two ways", p.shard(), r.name(), r.shard()),
                "merge the shards of one split (one N in --shard K/N)",
            ));
        }
        if a.spotsim_version != b.spotsim_version {
            return Err(refuse(
                &p.dir,
                format!(
                    "was computed by spotsim {}, but {} by spotsim {}",
                    b.spotsim_version,
                    r.name(),
                    a.spotsim_version
                ),
                "compute every shard with one spotsim version",
            ));
        }
    }
    Ok(())
}

/// `parts` is sorted by K.
fn check_complete(parts: &[Part]) -> anyhow::Result<()> {
    for pair in parts.windows(2) {
        if pair[0].m.shard.k == pair[1].m.shard.k {
            return Err(refuse(
                &pair[1].dir,
                format!("is shard {}, and so is {}: a shard was given twice", pair[1].shard(), pair[0].name()),
                "give each shard once",
            ));
        }
    }
    let n = parts[0].m.shard.n;
    let have: Vec<u64> = parts.iter().map(|p| p.m.shard.k).collect();
    let missing: Vec<u64> = (1..=n).filter(|k| have.binary_search(k).is_err()).collect();
    if missing.is_empty() {
        return Ok(());
    }
    const SHOWN: usize = 8;
    let list: Vec<String> = missing.iter().take(SHOWN).map(|k| format!("{k}/{n}")).collect();
    let more = if missing.len() > SHOWN { format!(" and {} more", missing.len() - SHOWN) } else { String::new() };
    let mut hint = "run the missing shards, then merge again with their folders:".to_string();
    for &k in missing.iter().take(SHOWN) {
        hint.push_str("\n    ");
        hint.push_str(&rerun_command(&parts[0], k));
    }
    if missing.len() > SHOWN {
        hint.push_str("\n    … and likewise for the others");
    }
    let message = format!("missing {} of {n} shards: {}{more}", missing.len(), list.join(", "));
    Err(refuse(&parts[0].dir.parent().map_or(PathBuf::from("."), Path::to_path_buf), message, hint))
}

/// The command line that wrote `part`, for shard `k` into a sibling folder.
fn rerun_command(part: &Part, k: u64) -> String {
    let n = part.m.shard.n;
    let dir = part.dir.parent().unwrap_or(Path::new("")).join(format!("shard-{k}"));
    let dir = dir.display().to_string();
    let args = &part.m.command_line;
    let mut out: Vec<String> = Vec::with_capacity(args.len() + 2);
    let mut has_output = false;
    let mut i = 0;
    while i < args.len() {
        let a = args[i].as_str();
        match a {
            "--shard" | "-o" | "--output" if i + 1 < args.len() => {
                out.push(a.to_string());
                out.push(if a == "--shard" { format!("{k}/{n}") } else { dir.clone() });
                has_output |= a != "--shard";
                i += 2;
                continue;
            }
            _ if a.starts_with("--shard=") => out.push(format!("--shard={k}/{n}")),
            _ if a.starts_with("--output=") => {
                out.push(format!("--output={dir}"));
                has_output = true;
            }
            _ => out.push(a.to_string()),
        }
        i += 1;
    }
    if !has_output {
        out.extend(["-o".to_string(), dir]);
    }
    out.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ")
}

fn check_files(part: &Part) -> anyhow::Result<()> {
    let s = &part.m.shard;
    let rerun = format!("rerun this shard: {}", rerun_command(part, s.k));
    let expected = part.shard().range(s.replications);
    if (s.first..s.end) != expected {
        return Err(refuse(
            &part.dir.join(MANIFEST),
            format!("is damaged: shard {} should hold replications {expected:?}", part.shard()),
            rerun,
        ));
    }
    let columns_len = s.column_offset(s.layout.points.len(), 0);
    if s.files.get(COLUMNS).is_none_or(|f| f.bytes != columns_len) {
        return Err(refuse(&part.dir.join(MANIFEST), "is damaged: its file list does not match its slice", rerun));
    }
    for (name, check) in &s.files {
        let path = part.dir.join(name);
        check.verify(&path).map_err(|problem| refuse(&path, problem, rerun.clone()))?;
    }
    Ok(())
}

/// Appends `count` values from byte `at` of the shard's `columns.f64`.
fn read_values(part: &Part, at: u64, count: usize, out: &mut Vec<f64>) -> anyhow::Result<()> {
    if count == 0 {
        return Ok(());
    }
    let path = part.dir.join(COLUMNS);
    let mut bytes = vec![0; count * 8];
    File::open(&path)
        .and_then(|mut file| {
            file.seek(SeekFrom::Start(at))?;
            file.read_exact(&mut bytes)
        })
        .with_context(|| format!("cannot read {}", path.display()))?;
    out.extend(bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().expect("8 bytes"))));
    Ok(())
}

/// Writes the shard's rows of point `p`, a block at a time: its columns
/// read back into rows, then formatted as a single run formats them.
fn write_rows(part: &Part, p: usize, runner: &Runner, w: &mut dyn Write) -> anyhow::Result<()> {
    const BLOCK: u64 = 1 << 16;
    let s = &part.m.shard;
    let width = s.layout.metrics.len();
    let mut start = 0;
    while start < s.count() {
        let len = BLOCK.min(s.count() - start) as usize;
        let mut columns = Vec::with_capacity(len * width);
        for m in 0..width {
            read_values(part, s.column_offset(p, m) + start * 8, len, &mut columns)?;
        }
        let rows: Vec<f64> = (0..len * width).map(|j| columns[(j % width) * len + j / width]).collect();
        let mut text = String::new();
        runner.install(|| push_replication_rows(&mut text, &s.layout, p, &rows, s.first + start));
        w.write_all(text.as_bytes())?;
        start += len as u64;
    }
    Ok(())
}

fn write_file(path: &Path, fill: impl FnOnce(&mut dyn Write) -> anyhow::Result<()>) -> anyhow::Result<()> {
    let file = File::create(path).with_context(|| format!("cannot write {}", path.display()))?;
    let mut w = BufWriter::with_capacity(1 << 20, file);
    fill(&mut w)?;
    w.flush().with_context(|| format!("cannot write {}", path.display()))
}

/// The manifest of the merged result: the shards' experiment verbatim, this
/// merge's run information, and where each shard came from.
fn merged_manifest(parts: &[Part], threads: usize, started: SystemTime, clock: Instant) -> Vec<u8> {
    #[derive(Serialize)]
    struct Source<'a> {
        shard: String,
        folder: String,
        started: &'a str,
        elapsed_s: f64,
        threads: usize,
    }
    #[derive(Serialize)]
    struct Extra<'a> {
        merged_from: Vec<Source<'a>>,
    }
    let extra = Extra {
        merged_from: parts
            .iter()
            .map(|p| Source {
                shard: p.shard().to_string(),
                folder: p.name(),
                started: &p.m.started,
                elapsed_s: p.m.elapsed_s,
                threads: p.m.threads,
            })
            .collect(),
    };
    let first = &parts[0].m;
    let info = RunInfo::now(threads, started, clock.elapsed().as_secs_f64());
    manifest_of(&first.experiment_file, first.seed, &info, Some(&extra), &first.experiment, None)
}
