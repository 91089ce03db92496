#!/usr/bin/env bash
# Scoring throughput on the WVS workload: ours against llama.cpp (llama-cpp-python, built for this
# CPU by scripts/setup-llamacpp.sh into a cached venv) on the same first N prompts of the same GGUF;
# prints both summaries, the speed ratio, the argmax agreement, our fraction of the f32 GEMM
# ceiling measured in the same run, and how the peer was built, as one JSON object (also written
# to $OUT/result.json). On a CPU with AMX-BF16 or AVX-512 BF16 ours runs twice, f32 projections (the
# reference) and bf16 projections (`culturespa --bf16 bench score`: AMX tiles, else AVX-512 BF16
# vectors), both compared with the peer (keys culturespa_bf16, bf16_vs_f32, bf16_vs_llama_cpp).
#   scripts/bench-score.sh                 LIMIT=1000 THREADS=2 MODEL=models/SmolLM2-...gguf
#   MODEL=models/Qwen2.5-Coder-0.5B-Instruct.gguf scripts/bench-score.sh
#   NO_PEER=1 scripts/bench-score.sh       ours only
#   NO_BF16=1 scripts/bench-score.sh       f32 projections only, even where a bf16 kernel exists
#   PEER_ARGS=--no-repack scripts/bench-score.sh
#   VARIANT=P3 scripts/bench-score.sh      another variant's prompts (`culturespa data prompts`), culture by culture
#   VARIANT=P3 SORTED=1 scripts/bench-score.sh   ... in the order a scoring stage answers them (by text)
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

if [ -n "${VARIANT:-}" ]; then # one variant's workload, rendered by us in the same format
  "$NATIVE_TARGET/release/culturespa" data prompts --model "$MODEL" --variant "$VARIANT" ${SORTED:+--sorted} \
    > "$OUT/prompts-all.jsonl"
else
  python3 "$BENCH/make_prompts.py" > "$OUT/prompts-all.jsonl"
fi
head -n "$LIMIT" "$OUT/prompts-all.jsonl" > "$OUT/prompts.jsonl"

echo "[bench] culturespa on $(wc -l < "$OUT/prompts.jsonl") prompts, $THREADS threads" >&2
"$NATIVE_TARGET/release/culturespa" bench score --model "$MODEL" --prompts "$OUT/prompts.jsonl" \
  --threads "$THREADS" > "$OUT/culturespa.jsonl" 2> "$OUT/culturespa.log"
BF16_OUT=""
if [ -z "${NO_BF16:-${NO_AMX:-}}" ] && grep -m1 '^flags' /proc/cpuinfo | grep -qwE 'amx_bf16|avx512_bf16'; then
  echo "[bench] culturespa with bf16 projections (AMX tiles or AVX-512 BF16)" >&2
  "$NATIVE_TARGET/release/culturespa" --bf16 bench score --model "$MODEL" --prompts "$OUT/prompts.jsonl" \
    --threads "$THREADS" > "$OUT/culturespa-bf16.jsonl" 2> "$OUT/culturespa-bf16.log"
  BF16_OUT="$OUT/culturespa-bf16"
fi

PEER_OUT=""
PEER_BUILD=""
if [ -z "${NO_PEER:-}" ]; then
  PEER_PY=$(scripts/setup-llamacpp.sh)
  PEER_BUILD="$(dirname "$(dirname "$PEER_PY")")/culturespa-build-flags.txt"
  PEER_VERSION=$("$PEER_PY" -c "import llama_cpp; print(llama_cpp.__version__)")
  echo "[bench] llama.cpp on the same prompts" >&2
  # shellcheck disable=SC2086
  "$PEER_PY" "$BENCH/llamacpp_score.py" --model "$MODEL" --prompts "$OUT/prompts.jsonl" \
    --threads "$THREADS" $PEER_ARGS > "$OUT/llamacpp.jsonl" 2> "$OUT/llamacpp.log"
  PEER_OUT="$OUT/llamacpp"
fi

CPU=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
CPU_SETS=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512_vnni|avx512_bf16|amx_tile|amx_bf16)$' | tr '\n' ' ')
python3 - "$OUT/culturespa" "$PEER_OUT" "$MODEL" "$PEER_BUILD" "$CPU" "$CPU_SETS" "$PEER_ARGS" "${PEER_VERSION:-}" "$BF16_OUT" <<'PY' | tee "$OUT/result.json"
import json, sys

def summary(prefix):
    lines = [l for l in open(prefix + ".log") if l.strip()]
    return json.loads(lines[-1])

def answers(prefix):
    return {r["id"]: r for r in map(json.loads, open(prefix + ".jsonl"))}

ours_prefix, peer_prefix, model, peer_build, cpu, cpu_sets, peer_args, peer_version, bf16_prefix = sys.argv[1:10]

def compare(a, b):
    common = [i for i in a if i in b]
    agree = sum(a[i]["answer"] == b[i]["answer"] for i in common)
    tv = [0.5 * sum(abs(x - y) for x, y in zip(a[i]["probs"], b[i]["probs"])) for i in common]
    return {"argmax_agreement": round(agree / len(common), 4) if common else None,
            "mean_total_variation": round(sum(tv) / len(tv), 5) if tv else None,
            "compared": len(common)}

ours = summary(ours_prefix)
result = {"model": model, "cpu": cpu, "cpu_instruction_sets": cpu_sets.split(),
          "culturespa": ours, "fraction_of_ceiling": ours.get("fraction_of_ceiling"), "llama_cpp": None}
if bf16_prefix:
    bf16 = summary(bf16_prefix)
    result["culturespa_bf16"] = bf16
    result["bf16_vs_f32"] = {"speedup_prompts_per_s": round(bf16["prompts_per_s"] / ours["prompts_per_s"], 3),
                             **compare(answers(ours_prefix), answers(bf16_prefix))}
if peer_prefix:
    peer = summary(peer_prefix)
    flags = open(peer_build).read().strip() if peer_build else ""
    peer["build"] = {"llama_cpp_python": peer_version, "cmake_args": flags, "peer_args": peer_args,
                     "repack": "--no-repack" not in peer_args}
    result["llama_cpp"] = peer
    result["speedup_prompts_per_s"] = round(ours["prompts_per_s"] / peer["prompts_per_s"], 3)
    result.update(compare(answers(ours_prefix), answers(peer_prefix)))
    if bf16_prefix:
        result["bf16_vs_llama_cpp"] = {"speedup_prompts_per_s": round(bf16["prompts_per_s"] / peer["prompts_per_s"], 3),
                                       **compare(answers(bf16_prefix), answers(peer_prefix))}
print(json.dumps(result))
PY
