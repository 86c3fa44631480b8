//! Which slice of a run a shard computes: `--shard K/N`, or `auto` from a
//! Slurm array or a Kubernetes Indexed Job.
//!
//! K is 1-based: the shards of a run are 1/N … N/N. Shard K holds every
//! point and the replications `floor((K-1)·R/N) .. floor(K·R/N)`, so the
//! blocks are contiguous, in order, and differ in size by at most one; with
//! N > R some are empty. The 0-based indices of the schedulers map to K =
//! index + 1.

use std::ops::Range;

use crate::input::{InputError, Origin};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// 1-based: 1 ..= n.
    pub k: u64,
    pub n: u64,
}

/// The variables `--shard auto` reads.
pub const SLURM_TASK_ID: &str = "SLURM_ARRAY_TASK_ID";
pub const SLURM_TASK_COUNT: &str = "SLURM_ARRAY_TASK_COUNT";
pub const K8S_INDEX: &str = "JOB_COMPLETION_INDEX";

fn bad(message: impl Into<String>, hint: impl Into<String>) -> InputError {
    let origin = Origin { file: "--shard".to_string(), line: None };
    InputError::new(&origin, None, message).with_hint(Some(hint.into()))
}

const FORMS: &str = "give K/N with 1 <= K <= N (e.g. 2/8), `auto` (Slurm array: K = SLURM_ARRAY_TASK_ID + 1, \
                     N = SLURM_ARRAY_TASK_COUNT) or `auto/N` (K from SLURM_ARRAY_TASK_ID or JOB_COMPLETION_INDEX, plus 1)";

impl Shard {
    /// Parses `--shard`; `env` looks up environment variables (for `auto`).
    pub fn parse(arg: &str, env: impl Fn(&str) -> Option<String>) -> Result<Shard, InputError> {
        let malformed = || bad(format!("expected K/N, got `{arg}`"), FORMS);
        let (k, n) = arg.split_once('/').unwrap_or((arg, ""));
        let n = match n {
            "" if k == "auto" => None,
            n => Some(n.parse::<u64>().ok().filter(|&n| n >= 1).ok_or_else(malformed)?),
        };
        if k == "auto" {
            return Self::from_env(n, env);
        }
        let k = k.parse::<u64>().map_err(|_| malformed())?;
        Self::new(k, n.expect("N was given"), arg)
    }

    fn new(k: u64, n: u64, given: &str) -> Result<Shard, InputError> {
        if k == 0 || k > n {
            let last = if n == 1 { "1/1".to_string() } else { format!("1/{n} … {n}/{n}") };
            return Err(bad(
                format!("no shard {given}: shards are numbered from 1 to N"),
                format!("the shards of N = {n} are {last}"),
            ));
        }
        Ok(Shard { k, n })
    }

    fn from_env(n: Option<u64>, env: impl Fn(&str) -> Option<String>) -> Result<Shard, InputError> {
        let number = |name: &str| -> Result<Option<u64>, InputError> {
            match env(name) {
                None => Ok(None),
                Some(v) => v.trim().parse::<u64>().map(Some).map_err(|_| {
                    bad(
                        format!("{name} is `{v}`, not a whole number"),
                        "run it as the scheduler starts it, or give K/N",
                    )
                }),
            }
        };
        let (index, source) = match (number(SLURM_TASK_ID)?, number(K8S_INDEX)?) {
            (Some(i), _) => (i, SLURM_TASK_ID),
            (None, Some(i)) => (i, K8S_INDEX),
            (None, None) => {
                return Err(bad(
                    format!("`auto` found neither {SLURM_TASK_ID} nor {K8S_INDEX} in the environment"),
                    "run it as a task of a Slurm array or a Kubernetes Indexed Job, or give the shard as K/N",
                ));
            }
        };
        let n = match (n, source) {
            (Some(n), _) => n,
            (None, SLURM_TASK_ID) => number(SLURM_TASK_COUNT)?.ok_or_else(|| {
                bad(format!("`auto` found {SLURM_TASK_ID} but no {SLURM_TASK_COUNT}"), "give the count: --shard auto/N")
            })?,
            (None, _) => {
                return Err(bad(
                    format!("`auto` found {K8S_INDEX}, which comes without the count"),
                    "give the count (the Job's completions): --shard auto/N",
                ));
            }
        };
        Self::new(index + 1, n, &format!("{}/{n} ({source} = {index})", index + 1))
    }

    /// The replication indices of this shard, out of `replications`.
    pub fn range(&self, replications: u64) -> Range<u64> {
        let cut = |k: u64| (u128::from(k) * u128::from(replications) / u128::from(self.n)) as u64;
        cut(self.k - 1)..cut(self.k)
    }
}

/// `arg` as one word for a POSIX shell: as is when that is safe, else in
/// single quotes.
pub fn shell_quote(arg: &str) -> String {
    let plain = |c: char| c.is_ascii_alphanumeric() || "_-./,:=@%+".contains(c);
    if !arg.is_empty() && arg.chars().all(plain) {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.k, self.n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    fn env<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn slices_are_contiguous_and_cover_every_replication() {
        for (reps, n) in [(10, 3), (3, 7), (1_000_000, 64), (1, 1)] {
            let mut next = 0;
            for k in 1..=n {
                let r = Shard { k, n }.range(reps);
                assert_eq!(r.start, next);
                assert!(r.end - r.start <= reps / n + 1);
                next = r.end;
            }
            assert_eq!(next, reps);
        }
    }

    #[test]
    fn shell_words_survive_quoting() {
        assert_eq!(shell_quote("results/a-b/shard-1"), "results/a-b/shard-1");
        assert_eq!(shell_quote("my exp.toml"), "'my exp.toml'");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        assert_eq!(shell_quote(""), "''");
    }

    #[test]
    fn k_is_one_based() {
        assert_eq!(Shard::parse("1/3", no_env).unwrap(), Shard { k: 1, n: 3 });
        assert_eq!(Shard::parse("3/3", no_env).unwrap(), Shard { k: 3, n: 3 });
        for wrong in ["0/3", "4/3", "a/b", "1/0", "3", "", "1/3/4", "-1/3"] {
            assert!(Shard::parse(wrong, no_env).is_err(), "{wrong}");
        }
        assert!(Shard::parse("0/3", no_env).unwrap_err().to_string().contains("1/3 … 3/3"));
    }

    #[test]
    fn auto_maps_zero_based_indices() {
        let slurm = [(SLURM_TASK_ID, "0"), (SLURM_TASK_COUNT, "4")];
        assert_eq!(Shard::parse("auto", env(&slurm)).unwrap(), Shard { k: 1, n: 4 });
        // A rerun of one task sees a count of 1: the N given wins.
        let rerun = [(SLURM_TASK_ID, "2"), (SLURM_TASK_COUNT, "1")];
        assert_eq!(Shard::parse("auto/4", env(&rerun)).unwrap(), Shard { k: 3, n: 4 });
        assert!(Shard::parse("auto", env(&rerun)).is_err());
        let k8s = [(K8S_INDEX, "7")];
        assert_eq!(Shard::parse("auto/8", env(&k8s)).unwrap(), Shard { k: 8, n: 8 });
        assert!(Shard::parse("auto/7", env(&k8s)).is_err());
        assert!(Shard::parse("auto", env(&k8s)).unwrap_err().to_string().contains("auto/N"));
        assert!(Shard::parse("auto", no_env).is_err());
        assert!(Shard::parse("auto/4", env(&[(SLURM_TASK_ID, "x")])).is_err());
    }
}
