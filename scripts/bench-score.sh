#!/usr/bin/env bash
# Scoring throughput on the WVS workload: ours against llama.cpp (when llama-cpp-python is
# importable) on the same first N prompts; prints both summaries, the speed ratio and the argmax
# agreement as one JSON object.
#   scripts/bench-score.sh                 LIMIT=1000 THREADS=2 by default
#   PEER_ARGS=--no-repack scripts/bench-score.sh
set -euo pipefail
cd "$(dirname "$0")/.."

LIMIT=${LIMIT:-1000}
THREADS=${THREADS:-2}
MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
BENCH=${BENCH:-../shared/bench}
OUT=${OUT:-var/bench}
PEER_ARGS=${PEER_ARGS:-}
# A separate target dir: native code must not invalidate the default build.
NATIVE_TARGET=${NATIVE_TARGET:-target-native}

[ -f "$MODEL" ] || { echo "[bench] $MODEL is missing: run scripts/fetch-model.sh" >&2; exit 1; }
mkdir -p "$OUT"
RUSTFLAGS="-C target-cpu=native" CARGO_TARGET_DIR="$NATIVE_TARGET" cargo build --release -p culturespa >&2

python3 "$BENCH/make_prompts.py" > "$OUT/prompts-all.jsonl"
head -n "$LIMIT" "$OUT/prompts-all.jsonl" > "$OUT/prompts.jsonl"

echo "[bench] culturespa on $(wc -l < "$OUT/prompts.jsonl") prompts, $THREADS threads" >&2
"$NATIVE_TARGET/release/culturespa" bench score --model "$MODEL" --prompts "$OUT/prompts.jsonl" \
  --threads "$THREADS" > "$OUT/culturespa.jsonl" 2> "$OUT/culturespa.log"

PEER_OUT=""
if python3 -c "import llama_cpp, numpy" 2>/dev/null; then
  echo "[bench] llama.cpp on the same prompts" >&2
  # shellcheck disable=SC2086
  python3 "$BENCH/llamacpp_score.py" --model "$MODEL" --prompts "$OUT/prompts.jsonl" \
    --threads "$THREADS" $PEER_ARGS > "$OUT/llamacpp.jsonl" 2> "$OUT/llamacpp.log"
  PEER_OUT="$OUT/llamacpp"
else
  echo "[bench] llama-cpp-python is not importable: skipping the peer" >&2
fi

python3 - "$OUT/culturespa" "$PEER_OUT" <<'PY'
import json, sys

def summary(prefix):
    lines = [l for l in open(prefix + ".log") if l.strip()]
    return json.loads(lines[-1])

def answers(prefix):
    return {r["id"]: r for r in map(json.loads, open(prefix + ".jsonl"))}

ours_prefix, peer_prefix = sys.argv[1], sys.argv[2]
ours = summary(ours_prefix)
# SmolLM2-135M prefill ceiling on 2 cores here (DESIGN.md §3: 340 GFLOP/s ÷ 212 MFLOP/token).
PREFILL_CEILING_TOKENS_PER_S = 1600
result = {"culturespa": ours, "fraction_of_prefill_ceiling": round(ours["tokens_per_s"] / PREFILL_CEILING_TOKENS_PER_S, 3),
          "llama_cpp": None}
if peer_prefix:
    peer = summary(peer_prefix)
    a, b = answers(ours_prefix), answers(peer_prefix)
    common = [i for i in a if i in b]
    agree = sum(a[i]["answer"] == b[i]["answer"] for i in common)
    tv = [0.5 * sum(abs(x - y) for x, y in zip(a[i]["probs"], b[i]["probs"])) for i in common]
    result.update({
        "llama_cpp": peer,
        "speedup_prompts_per_s": round(ours["prompts_per_s"] / peer["prompts_per_s"], 3),
        "argmax_agreement": round(agree / len(common), 4) if common else None,
        "mean_total_variation": round(sum(tv) / len(tv), 5) if tv else None,
        "compared": len(common),
    })
print(json.dumps(result))
PY
