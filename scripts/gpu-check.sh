#!/usr/bin/env bash
# On a machine with an NVIDIA GPU and nvcc: builds with --features cuda and runs the scoring bench
# on the GPU (bf16); prints the bench summary as one JSON line. Not part of CI.
#   PROMPTS=prompts.jsonl MODEL=models/SmolLM2-135M-Instruct.Q4_1.gguf LIMIT=1000 scripts/gpu-check.sh
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
LIMIT=${LIMIT:-1000}
CUDA_TARGET=${CUDA_TARGET:-target-cuda}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT

command -v nvcc >/dev/null || { echo "[gpu-check] nvcc not found: the cuda feature needs the CUDA toolkit" >&2; exit 1; }
[ -f "$MODEL" ] || { echo "[gpu-check] $MODEL is missing: run scripts/fetch-model.sh" >&2; exit 1; }
PROMPTS=${PROMPTS:-}
if [ -z "$PROMPTS" ]; then
  PROMPTS="$WORK/prompts.jsonl"
  python3 ../shared/bench/make_prompts.py > "$PROMPTS"
fi

CARGO_TARGET_DIR="$CUDA_TARGET" cargo build --release -p culturespa --features cuda >&2
"$CUDA_TARGET/release/culturespa" bench score --device cuda --model "$MODEL" --prompts "$PROMPTS" \
  --limit "$LIMIT" --threads 1 > "$WORK/scores.jsonl" 2> "$WORK/bench.log" \
  || { tail -n 20 "$WORK/bench.log" >&2; exit 1; }
tail -n 1 "$WORK/bench.log"
