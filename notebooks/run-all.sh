#!/usr/bin/env bash
# Run the experiments the notebooks read, then execute every notebook in place.
#
#   bash notebooks/run-all.sh            # full replication counts (the files' own)
#   bash notebooks/run-all.sh --quick    # small counts, about a minute (or QUICK=1)
set -euo pipefail

QUICK="${QUICK:-0}"
for arg in "$@"; do
  case "$arg" in
    --quick) QUICK=1 ;;
    -h|--help) sed -n '2,6p' "$0"; exit 0 ;;
    *) echo "unknown argument: $arg" >&2; exit 2 ;;
  esac
done

cd "$(dirname "${BASH_SOURCE[0]}")/.."   # repository root

BIN=target/release/spotsim
if [[ ! -x "$BIN" ]]; then
  echo "building $BIN" >&2
  cargo build --release
fi

# checkpoint-interval.ipynb runs its sweep itself with the Python package.
if ! python3 -c "import spotsim" 2>/dev/null; then
  echo "the spotsim Python package is missing: pip install ./python" >&2
  exit 1
fi
export SPOTSIM_QUICK="$QUICK"

# experiment name and its quick-mode replication count
EXPERIMENTS=(
  "endpoint-autoscaling 3"
  "serverless-vs-endpoint 3"
  "zones-availability 10"
  "real-spot-v100 50"
  "encoder-gpu-or-cpu 3"
  "training-instance-spot 50"
  "deadline-policies-v100 40"
  "llm-load-by-gpu 3"
  "deployment-options 3"
  "llm-training-llama3-8b 20"
  "llm-training-llama3-70b 10"
  "two-models-one-endpoint 3"
)

for spec in "${EXPERIMENTS[@]}"; do
  read -r name reps <<<"$spec"
  args=(run "experiments/$name.toml" --quiet)
  [[ "$QUICK" == 1 ]] && args+=(-n "$reps")
  echo "spotsim ${args[*]}" >&2
  "$BIN" "${args[@]}"
done

# recommend.ipynb reads what `spotsim recommend` writes (quick: a budget).
args=(recommend experiments/endpoint-recommendation.toml --quiet)
[[ "$QUICK" == 1 ]] && args+=(--budget 3000)
echo "spotsim ${args[*]}" >&2
"$BIN" "${args[@]}"

# llm-endpoints.ipynb reads the LLM recommendation.
args=(recommend experiments/llm-recommendation.toml --quiet)
[[ "$QUICK" == 1 ]] && args+=(--budget 1000)
echo "spotsim ${args[*]}" >&2
"$BIN" "${args[@]}"

# calibrate.ipynb reads the backtest of the real vLLM files (quick: fewer iterations is not
# a flag; the command takes a few seconds).
mkdir -p results/calibrate
args=(calibrate --profile llama-3-70b --instance ml.p4d.24xlarge --quiet
      --out results/calibrate/llama-3-70b-p4d.toml --backtest results/calibrate/backtest.csv)
echo "spotsim ${args[*]} tests/data/bench/vllm-llama-3.3-70b-tp8-a100-qps-*.json" >&2
"$BIN" "${args[@]}" tests/data/bench/vllm-llama-3.3-70b-tp8-a100-qps-*.json

echo "executing notebooks" >&2
python3 -m nbconvert --to notebook --execute --inplace \
  --ExecutePreprocessor.timeout=600 notebooks/*.ipynb
echo "done: figures in notebooks/figures/" >&2
