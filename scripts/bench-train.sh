#!/usr/bin/env bash
# LoRA training throughput beside the prefill throughput of the same sequences: builds a native
# release, makes the SFT file once (the paper's released Llama-3-8B answers imported as a run into
# a scratch data dir, exported as culture-joint alpaca records), then runs `culturespa bench train`
# (one warm-up, REPEATS timed repetitions, the median) and prints its JSON line (also written to
# $OUT/train.json).
#   scripts/bench-train.sh                 MODEL=smollm2-135m STEPS=2 BATCH=8 MICRO=4 REPEATS=3
#   AUTOGRAD=1 scripts/bench-train.sh      also time candle's autograd path on the same steps
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL=${MODEL:-smollm2-135m}
STEPS=${STEPS:-2}
BATCH=${BATCH:-8}
MICRO=${MICRO:-4}
REPEATS=${REPEATS:-3}
THREADS=${THREADS:-2}
OUT=${OUT:-var/bench/train}
NATIVE_TARGET=${NATIVE_TARGET:-target-native}

mkdir -p "$OUT"
RUSTFLAGS="-C target-cpu=native" CARGO_TARGET_DIR="$NATIVE_TARGET" cargo build --release -p culturespa >&2
BIN="$NATIVE_TARGET/release/culturespa"
SFT="$OUT/sft/released_alpaca_joint.jsonl"
if [ ! -s "$SFT" ]; then
  rm -rf "$OUT/data" "$OUT/sft"
  "$BIN" import-released --data-dir "$OUT/data" >&2
  "$BIN" export --run 1 --format alpaca --mode joint --out "$OUT/sft.tmp" --data-dir "$OUT/data" >&2
  mkdir -p "$OUT/sft"
  mv "$(find "$OUT/sft.tmp" -name '*.jsonl' | head -n 1)" "$SFT"
  rm -rf "$OUT/sft.tmp"
fi
EXTRA=()
[ -n "${AUTOGRAD:-}" ] && EXTRA+=(--with-autograd)
"$BIN" bench train --model "$MODEL" --data "$SFT" --steps "$STEPS" --batch-size "$BATCH" \
  --micro-batch-size "$MICRO" --repeats "$REPEATS" --threads "$THREADS" "${EXTRA[@]}" | tee "$OUT/train.json"
