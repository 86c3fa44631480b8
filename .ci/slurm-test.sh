#!/usr/bin/env bash
# The real-Slurm test: a single-node Slurm runs the script that `spotsim slurm` prints
# for a bundled experiment (4 shards and a merge), first with shard 2 made to fail,
# then with `rerun 2`; the merged result must equal a one-machine run byte for byte.
# Needs root on Debian 12 (it installs and starts Slurm, and stops it at the end).
# By hand: cargo build --release && sudo bash .ci/slurm-test.sh
set -euo pipefail
cd "$(dirname "$0")/.."
SPOTSIM=$PWD/target/release/spotsim
EXP=experiments/checkpoint-sweep.toml
ARGS=(-n 40)
W=$PWD/target/ci-slurm
WAIT=90 # seconds for one submission; a good one takes a few

say() { printf 'slurm-test: %s (%ss)\n' "$*" "$SECONDS"; }
finish() {
  local rc=$?
  if ((rc != 0)); then
    say "FAILED; job logs and Slurm state follow"
    for f in "$W"/merged-shards/logs/*.out; do [[ -f $f ]] && { echo "--- $f"; tail -n 30 "$f"; }; done
    squeue -t all 2>&1 | tail -n 20 || true
    tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log 2>/dev/null || true
  fi
  bash .ci/slurm.sh stop || true
  exit "$rc"
}

[[ -x $SPOTSIM ]] || { say "build spotsim first: cargo build --release"; exit 1; }
bash .ci/slurm.sh install
trap finish EXIT
bash .ci/slurm.sh start
say "slurm up"

rm -rf "$W"
mkdir -p "$W"
"$SPOTSIM" slurm "$EXP" --tasks 4 --partition main --time 00:05:00 "${ARGS[@]}" -o "$W/merged" >"$W/job.slurm"

# The script as printed, but through a wrapper that fails shard 2 while $W/fail-2 exists.
cat >"$W/spotsim" <<WRAPPER
#!/bin/bash
if [[ \$1 == run && -e $W/fail-2 && \${SLURM_ARRAY_TASK_ID:-} == 2 ]]; then echo "injected failure" >&2; exit 1; fi
exec $SPOTSIM "\$@"
WRAPPER
chmod +x "$W/spotsim"
sed -i "s|^SPOTSIM=.*|SPOTSIM=$W/spotsim|" "$W/job.slurm"
touch "$W/fail-2"
rc=0
timeout "$WAIT" bash "$W/job.slurm" --wait 2>"$W/failed.err" || rc=$?
cat "$W/failed.err"
[[ $rc == 1 ]] || { say "expected exit 1 with shard 2 failing, got $rc"; exit 1; }
grep -q "rerun 2 --wait" "$W/failed.err" || { say "the failure does not name shard 2"; exit 1; }
[[ ! -e $W/merged ]] || { say "merged although a shard failed"; exit 1; }
say "a failed shard stops the merge and is named"

rm "$W/fail-2"
timeout "$WAIT" bash "$W/job.slurm" rerun 2 --wait
say "rerun of shard 2 merged"

"$SPOTSIM" run "$EXP" "${ARGS[@]}" --quiet -o "$W/single"
for f in summary.csv replications.csv; do
  cmp "$W/single/$f" "$W/merged/$f"
done
say "PASS: the merge of 4 Slurm shards equals one run byte for byte"
