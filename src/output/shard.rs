//! A shard folder: the partial outputs of one slice of a run, and the shard
//! manifest that lets `merge` check the slices and put them back together.
//!
//! - `manifest.json`: a run's manifest plus `shard` ([`ShardInfo`]): K, N, the
//!   replication range, the experiment's fingerprint, the byte length and
//!   checksum of every other file.
//! - `replications.csv`: the slice's rows under the usual header, with their
//!   replication indices in the whole run.
//! - `columns.f64`: the same values as little-endian `f64`, point by point,
//!   metric by metric, in replication order, so a merge reads one (point,
//!   metric) column exactly, without parsing text.
//! - `timeline.csv`: only in the shard that holds replication 0.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Layout, PointRows, RunInfo};
use crate::experiment::Experiment;
use crate::scenario::Timeline;
use crate::shard::Shard;

pub const MANIFEST: &str = "manifest.json";
pub const REPLICATIONS: &str = "replications.csv";
pub const COLUMNS: &str = "columns.f64";
pub const TIMELINE: &str = "timeline.csv";

/// The `shard` entry of a shard manifest.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ShardInfo {
    /// 1-based: shard `k` of `n`.
    pub k: u64,
    pub n: u64,
    /// Replications per point in the whole run.
    pub replications: u64,
    /// This shard's replications: `first .. end`.
    pub first: u64,
    pub end: u64,
    /// Of the resolved experiment without its seed: see [`fingerprint`].
    pub fingerprint: String,
    pub layout: Layout,
    /// Where each point's rows start in `replications.csv`; last, its length.
    pub point_offsets: Vec<u64>,
    /// Every data file of the folder, by name.
    pub files: BTreeMap<String, FileCheck>,
}

impl ShardInfo {
    pub fn count(&self) -> u64 {
        self.end - self.first
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileCheck {
    pub bytes: u64,
    /// FNV-1a, 64 bits, in hex: catches a damaged file, not a forged one.
    pub fnv1a64: String,
}

impl FileCheck {
    fn of(bytes: &[u8]) -> FileCheck {
        let mut hash = Fnv::new();
        hash.write(bytes);
        FileCheck { bytes: bytes.len() as u64, fnv1a64: hash.hex() }
    }

    /// Checks the file at `path` against this record; `Err` says what is wrong.
    pub fn verify(&self, path: &Path) -> Result<(), String> {
        let mut file = std::fs::File::open(path).map_err(|e| format!("cannot be read: {e}"))?;
        let mut hash = Fnv::new();
        let mut buf = vec![0; 1 << 20];
        let mut len = 0u64;
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    hash.write(&buf[..n]);
                    len += n as u64;
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("cannot be read: {e}")),
            }
        }
        if len != self.bytes {
            let how = if len < self.bytes { "is cut off" } else { "has grown" };
            return Err(format!("{how}: {len} bytes, the shard manifest says {}", self.bytes));
        }
        if hash.hex() != self.fnv1a64 {
            return Err("is damaged: its checksum does not match the shard manifest".into());
        }
        Ok(())
    }
}

/// FNV-1a, 64 bits: small, stable across versions and platforms.
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// Identifies the resolved experiment (every default filled in, the
/// replication count included) apart from its seed, which the manifest holds
/// on its own so that a merge can say which of the two differs. Data files
/// (traces, samples) enter by path, not content.
pub fn fingerprint(experiment: &Experiment) -> String {
    let mut json = serde_json::to_value(experiment).expect("the experiment serialises");
    if let Some(fields) = json.as_object_mut() {
        fields.remove("seed");
    }
    let mut hash = Fnv::new();
    hash.write(json.to_string().as_bytes());
    hash.hex()
}

/// The files of shard `shard`: `results` holds its slice of every point,
/// `timelines` is given to the shard holding replication 0.
pub fn shard_files(
    experiment: &Experiment,
    shard: Shard,
    results: &[PointRows],
    timelines: Option<&[Timeline]>,
    info: &RunInfo,
) -> Vec<(&'static str, Vec<u8>)> {
    let layout = Layout::of(experiment);
    let range = shard.range(experiment.replications);
    let mut replications = super::replications_header(&layout);
    let mut point_offsets = Vec::with_capacity(results.len() + 1);
    for (p, rows) in results.iter().enumerate() {
        point_offsets.push(replications.len() as u64);
        super::push_replication_rows(&mut replications, &layout, p, rows, range.start);
    }
    point_offsets.push(replications.len() as u64);

    let width = layout.metrics.len();
    let mut columns = Vec::with_capacity(results.iter().map(|r| r.len() * 8).sum());
    for rows in results {
        for m in 0..width {
            for row in rows.chunks_exact(width) {
                columns.extend_from_slice(&row[m].to_le_bytes());
            }
        }
    }
    let mut data = vec![(REPLICATIONS, replications.into_bytes()), (COLUMNS, columns)];
    if let Some(timelines) = timelines {
        data.push((TIMELINE, super::timeline_csv(experiment, timelines)));
    }
    let files = data.iter().map(|(name, bytes)| (name.to_string(), FileCheck::of(bytes))).collect();
    let info_shard = ShardInfo {
        k: shard.k,
        n: shard.n,
        replications: experiment.replications,
        first: range.start,
        end: range.end,
        fingerprint: fingerprint(experiment),
        layout,
        point_offsets,
        files,
    };
    #[derive(Serialize)]
    struct Extra<'a> {
        shard: &'a ShardInfo,
    }
    let manifest = super::manifest_with(
        &experiment.file.display().to_string(),
        experiment.seed,
        experiment,
        info,
        Some(&Extra { shard: &info_shard }),
    );
    data.push((MANIFEST, manifest));
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv1a64_matches_the_reference_vectors() {
        let hex = |s: &[u8]| FileCheck::of(s).fnv1a64;
        assert_eq!(hex(b""), "cbf29ce484222325");
        assert_eq!(hex(b"a"), "af63dc4c8601ec8c");
        assert_eq!(hex(b"foobar"), "85944171f73967e8");
    }

    #[test]
    fn a_cut_off_file_is_named_as_such() {
        let tmp = tempfile::tempdir().unwrap();
        let path = tmp.path().join("f");
        let check = FileCheck::of(b"0123456789");
        std::fs::write(&path, b"01234").unwrap();
        assert!(check.verify(&path).unwrap_err().contains("cut off"));
        std::fs::write(&path, b"0123456780").unwrap();
        assert!(check.verify(&path).unwrap_err().contains("damaged"));
        std::fs::write(&path, b"0123456789").unwrap();
        assert!(check.verify(&path).is_ok());
    }
}
