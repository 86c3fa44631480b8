//! A shard folder: the partial outputs of one slice of a run, and the shard
//! manifest that lets `merge` check the slices and put them back together.
//!
//! - `manifest.json`: a run's manifest plus `shard` ([`ShardInfo`]): K, N, the
//!   replication range, the experiment's fingerprint, the byte length and
//!   checksum of every other file.
//! - `columns.f64`: every metric of every replication of the slice, as
//!   little-endian `f64`, point by point, metric by metric, in replication
//!   order. Binary, so the merge reads back the exact values (a summary
//!   needs them bit for bit) and reads one (point, metric) column without
//!   parsing; text is formatted once, by the merge.
//! - `timeline.csv`: only in the shard that holds replication 0.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{Layout, PointRows, RunInfo, Subject};
use crate::engine::shard::Shard;
use crate::scenarios::Timeline;

pub const MANIFEST: &str = "manifest.json";
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
    /// Of the resolved experiment without its seed: see [`Subject::fingerprint`](super::Subject::fingerprint).
    pub fingerprint: String,
    pub layout: Layout,
    /// Every data file of the folder, by name.
    pub files: BTreeMap<String, FileCheck>,
}

impl ShardInfo {
    pub fn count(&self) -> u64 {
        self.end - self.first
    }

    /// Where column (point `p`, metric `m`) starts in `columns.f64`.
    pub fn column_offset(&self, p: usize, m: usize) -> u64 {
        (p * self.layout.metrics.len() + m) as u64 * self.count() * 8
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FileCheck {
    pub bytes: u64,
    /// CRC-32 (ISO-HDLC, as zlib), in hex: catches a damaged file, not a
    /// forged one, and costs little next to writing the file.
    pub crc32: String,
}

impl FileCheck {
    fn of(bytes: &[u8]) -> FileCheck {
        FileCheck { bytes: bytes.len() as u64, crc32: format!("{:08x}", crc32fast::hash(bytes)) }
    }

    /// Checks the file at `path` against this record; `Err` says what is wrong.
    pub fn verify(&self, path: &Path) -> Result<(), String> {
        let mut file = std::fs::File::open(path).map_err(|e| format!("cannot be read: {e}"))?;
        let mut hash = crc32fast::Hasher::new();
        let mut buf = vec![0; 1 << 20];
        let mut len = 0u64;
        loop {
            match file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    hash.update(&buf[..n]);
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
        if format!("{:08x}", hash.finalize()) != self.crc32 {
            return Err("is damaged: its checksum does not match the shard manifest".into());
        }
        Ok(())
    }
}

/// FNV-1a, 64 bits, for the fingerprint: small and stable across versions
/// and platforms.
pub(super) struct Fnv(u64);

impl Fnv {
    pub(super) fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    pub(super) fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    }
    pub(super) fn hex(&self) -> String {
        format!("{:016x}", self.0)
    }
}

/// The files of shard `shard`: `results` holds its slice of every point,
/// `timelines` is given to the shard holding replication 0.
pub fn shard_files(
    subject: &Subject,
    shard: Shard,
    results: &[PointRows],
    timelines: Option<&[Timeline]>,
    info: &RunInfo,
) -> Vec<(&'static str, Vec<u8>)> {
    let layout = subject.layout.clone();
    let range = shard.range(subject.replications);
    let width = layout.metrics.len();
    let mut columns = vec![0u8; results.iter().map(|r| r.len() * 8).sum()];
    let mut point_start = 0;
    for rows in results {
        let count = rows.len() / width.max(1);
        // One pass over the rows, writing into every column at once.
        for (i, row) in rows.chunks_exact(width).enumerate() {
            for (m, x) in row.iter().enumerate() {
                let at = point_start + (m * count + i) * 8;
                columns[at..at + 8].copy_from_slice(&x.to_le_bytes());
            }
        }
        point_start += rows.len() * 8;
    }
    let mut data = vec![(COLUMNS, columns)];
    if let Some(timelines) = timelines {
        data.push((TIMELINE, super::timeline_csv(&layout, timelines)));
    }
    let files = data.iter().map(|(name, bytes)| (name.to_string(), FileCheck::of(bytes))).collect();
    let info_shard = ShardInfo {
        k: shard.k,
        n: shard.n,
        replications: subject.replications,
        first: range.start,
        end: range.end,
        fingerprint: subject.fingerprint(),
        layout,
        files,
    };
    #[derive(Serialize)]
    struct Extra<'a> {
        shard: &'a ShardInfo,
    }
    let manifest = super::manifest_of(
        &subject.file,
        subject.seed,
        info,
        Some(&Extra { shard: &info_shard }),
        subject.resolved,
        None,
    );
    data.push((MANIFEST, manifest));
    data
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checksums_match_the_reference_vectors() {
        let fnv = |s: &[u8]| {
            let mut h = Fnv::new();
            h.write(s);
            h.hex()
        };
        assert_eq!(fnv(b""), "cbf29ce484222325");
        assert_eq!(fnv(b"foobar"), "85944171f73967e8");
        assert_eq!(FileCheck::of(b"123456789").crc32, "cbf43926");
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
