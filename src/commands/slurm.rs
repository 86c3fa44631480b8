//! `spotsim slurm`: a script that runs the shards of an experiment as a
//! Slurm array job and merges them in a job that waits for all of them.
//!
//! The script is run with bash, which submits it twice: as an array whose
//! task K computes shard K/N (the array is 1..=N, so task, shard folder, log
//! and `spotsim merge`'s messages use one number), and as a merge job with
//! `--dependency=afterok` on the array. Tested on a real Slurm by
//! `.ci/slurm-test.sh`.

use std::path::{Path, PathBuf};

use crate::engine::shard::shell_quote;

/// What the script needs; paths absolute, as the jobs run elsewhere.
#[derive(Clone, Debug)]
pub struct SlurmJob {
    pub spotsim: PathBuf,
    pub experiment: PathBuf,
    /// The merged result, as `spotsim run -o` writes it.
    pub output: PathBuf,
    pub tasks: u64,
    /// Passed to every shard's `spotsim run` (`-n`, `--seed`, `--set`).
    pub run_args: Vec<String>,
    /// Passed to both `sbatch` calls (`--partition`, `--time`, …).
    pub sbatch_args: Vec<String>,
    /// The command that printed the script, for its first comment.
    pub printed_by: Vec<String>,
    /// One line on what runs, e.g. "checkpoint-sweep: 18 points x 2000 replications".
    pub summary: String,
}

impl SlurmJob {
    /// Where the shard folders and logs go: `DIR-shards` beside the result `DIR`.
    pub fn work_dir(output: &Path) -> PathBuf {
        let leaf = output.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_else(|| "results".into());
        output.with_file_name(format!("{leaf}-shards"))
    }

    pub fn script(&self) -> String {
        let words = |args: &[String]| args.iter().map(|a| shell_quote(a)).collect::<Vec<_>>().join(" ");
        let path = |p: &Path| shell_quote(&p.display().to_string());
        TEMPLATE
            .replace("@PRINTED_BY@", &words(&self.printed_by))
            .replace("@SUMMARY@", &self.summary)
            .replace("@SPOTSIM@", &path(&self.spotsim))
            .replace("@EXP@", &path(&self.experiment))
            .replace("@RUN_ARGS@", &words(&self.run_args))
            .replace("@OUT@", &path(&self.output))
            .replace("@WORK@", &path(&Self::work_dir(&self.output)))
            .replace("@SBATCH_ARGS@", &words(&self.sbatch_args))
            .replace("@TASKS@", &self.tasks.to_string())
    }
}

const TEMPLATE: &str = r#"#!/bin/bash
# Printed by: @PRINTED_BY@
# @SUMMARY@, in @TASKS@ shards.
#
# Run it with bash, not sbatch: it submits itself twice, as an array job whose task K
# computes shard K/@TASKS@, and as one merge job that starts only if every shard
# succeeded (--dependency=afterok).
#   bash THIS-SCRIPT                      submit; prints the two job ids
#   bash THIS-SCRIPT --wait               submit, then wait for the merge (exit 1 if a shard failed)
#   bash THIS-SCRIPT rerun 3,5 [--wait]   rerun only those shards, then merge again
# Watch it with: squeue -u "$USER" (task K shows as JOBID_K); logs are in $WORK/logs.
# spotsim, the experiment and its data files must be at these paths on every node.
set -euo pipefail

SPOTSIM=@SPOTSIM@
EXP=@EXP@
RUN_ARGS=(@RUN_ARGS@)
OUT=@OUT@
WORK=@WORK@
TASKS=@TASKS@
SBATCH_ARGS=(@SBATCH_ARGS@)

# Inside a job, sbatch runs a copy of this file from its spool folder, so $0 is not
# this file: the role comes as an argument.
case ${1:-} in
  shard)
    # The count is written here, not read from SLURM_ARRAY_TASK_COUNT: a rerun of one
    # task sees a count of 1.
    exec "$SPOTSIM" run "$EXP" "${RUN_ARGS[@]}" --quiet --threads "${SLURM_CPUS_PER_TASK:-1}" \
      --shard "$SLURM_ARRAY_TASK_ID/$TASKS" -o "$WORK/shards/shard-$SLURM_ARRAY_TASK_ID" ;;
  merge)
    "$SPOTSIM" merge --quiet --threads "${SLURM_CPUS_PER_TASK:-1}" -o "$OUT" "$WORK"/shards/shard-*
    touch "$WORK/logs/merge.ok" # how --wait tells success without accounting (sacct)
    exit ;;
esac
[[ -z ${SLURM_JOB_ID:-} ]] || { echo "run this script with bash, not sbatch" >&2; exit 2; }

array=1-$TASKS wait=0
while (($#)); do
  case $1 in
    rerun) array=${2:?rerun needs shard numbers, e.g. 3,5}; shift ;;
    --wait) wait=1 ;;
    *) echo "usage: bash $0 [rerun K[,K...]] [--wait]" >&2; exit 2 ;;
  esac
  shift
done
[[ $array =~ ^[0-9]+(-[0-9]+)?(,[0-9]+(-[0-9]+)?)*$ ]] ||
  { echo "rerun: give shard numbers such as 3,5 or 2-4, not '$array'" >&2; exit 2; }

# Slurm does not create the --output folder: a job whose log folder is missing fails unseen.
mkdir -p "$WORK/shards" "$WORK/logs"
rm -f "$WORK/logs/merge.ok"
self=$(realpath "$0")
A=$(sbatch --parsable "${SBATCH_ARGS[@]}" --job-name=spotsim-shard --array="$array" \
  --output="$WORK/logs/shard-%a.%A.out" "$self" shard)
A=${A%%;*} # --parsable prints "id;cluster" on multi-cluster sites
M=$(sbatch --parsable "${SBATCH_ARGS[@]}" --job-name=spotsim-merge --dependency=afterok:"$A" \
  --output="$WORK/logs/merge.%j.out" "$self" merge)
M=${M%%;*}
echo "shards: job $A (array $array), merge: job $M; logs in $WORK/logs"
((wait)) || exit 0

# Not sbatch --wait: it never returns when a shard fails (the merge stays pending with
# DependencyNeverSatisfied), and it polls sparsely.
active() { squeue -h -j "$1" -o %A 2>/dev/null | grep -q .; }
while active "$M"; do
  if [[ $(squeue -h -j "$M" -o %r 2>/dev/null) == DependencyNeverSatisfied ]]; then
    scancel "$M"
    while active "$A"; do sleep 2; done
    # Finished tasks stay listed for MinJobAge (300 s by default), then drop out.
    failed=$(squeue -h -j "$A" -t all -o '%K %T' 2>/dev/null | awk '$2 != "COMPLETED" {printf "%s%s", s, $1; s = ","}')
    echo "a shard failed (${failed:+shards $failed; }logs: $WORK/logs/shard-K.$A.out); the merge is cancelled" >&2
    echo "rerun the failed shards with: bash $self rerun ${failed:-K[,K...]} --wait" >&2
    exit 1
  fi
  sleep 2
done
if [[ ! -e $WORK/logs/merge.ok ]]; then
  echo "merge job $M failed; its log, $WORK/logs/merge.$M.out, ends:" >&2
  tail -n 20 "$WORK/logs/merge.$M.out" >&2 || true
  exit 1
fi
echo "merged: $OUT"
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_script_names_its_paths_and_split() {
        let job = SlurmJob {
            spotsim: "/opt/spotsim".into(),
            experiment: "/home/me/my exp.toml".into(),
            output: "/scratch/out/".into(),
            tasks: 8,
            run_args: vec!["-n".into(), "100".into()],
            sbatch_args: vec!["--partition=gpu".into()],
            printed_by: vec!["spotsim".into(), "slurm".into()],
            summary: "exp: 1 point(s) x 100 replications".into(),
        };
        let s = job.script();
        assert!(!s.replace("[@]", "").contains('@'), "an unfilled placeholder");
        for line in [
            "EXP='/home/me/my exp.toml'",
            "OUT=/scratch/out/",
            "WORK=/scratch/out-shards",
            "TASKS=8",
            "RUN_ARGS=(-n 100)",
            "SBATCH_ARGS=(--partition=gpu)",
        ] {
            assert!(s.lines().any(|l| l == line), "no line {line}");
        }
    }
}
