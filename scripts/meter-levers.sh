#!/usr/bin/env bash
# The persona meter for each model of the catalogue × each scoring lever (README "The levers"):
# `culturespa sensitivity` with the paper's P1 persona on a seeded sample of 2 questions per topic
# for six cultures, once per (scoring formulation, calibration), the JSON of each in
# $OUT_DIR/{model}-{scoring}-{calibration}.json. A lever whose JSON exists is not measured again
# (FORCE=1 measures it anew); each sensitivity run is stored in $DATA_DIR, and one that was
# interrupted is finished with `culturespa run --resume ID --data-dir $DATA_DIR`.
#   scripts/meter-levers.sh                              # the three catalogue models
#   MODELS="smollm2-135m" scripts/meter-levers.sh        # some of them
#   AMX=1 scripts/meter-levers.sh                        # bf16 projections on AMX tiles (the 1.5B)
set -euo pipefail
cd "$(dirname "$0")/.."

MODELS=${MODELS:-"smollm2-135m qwen2.5-coder-0.5b qwen2.5-coder-1.5b"}
LEVERS=${LEVERS:-"digits/none digits/content_free digits/permutation cloze/none"}
CULTURES=${CULTURES:-USA,BRA,DEU,CHN,IND,NGA}
QUESTIONS=${QUESTIONS:-26}
SEED=${SEED:-20240917}
THREADS=${THREADS:-2}
DATA_DIR=${DATA_DIR:-var-meter}
OUT_DIR=${OUT_DIR:-docs/meter/levers}
NATIVE_TARGET=${NATIVE_TARGET:-target-native}
BIN="$NATIVE_TARGET/release/culturespa"

RUSTFLAGS="-C target-cpu=native" CARGO_TARGET_DIR="$NATIVE_TARGET" cargo build --release -p culturespa >&2
mkdir -p "$DATA_DIR" "$OUT_DIR"
export RAYON_NUM_THREADS="$THREADS"
GLOBAL=()
[ "${AMX:-0}" = 1 ] && GLOBAL+=(--amx)

for model in $MODELS; do
  scripts/fetch-model.sh "$model"
  for lever in $LEVERS; do
    scoring=${lever%/*}
    calibration=${lever#*/}
    out="$OUT_DIR/$model-$scoring-$calibration.json"
    if [ -f "$out" ] && [ "${FORCE:-0}" != 1 ]; then
      echo "[levers] $out exists (FORCE=1 measures it again)" >&2
      continue
    fi
    echo "[levers] $model: scoring $scoring, calibration $calibration" >&2
    started=$(date +%s)
    "$BIN" "${GLOBAL[@]}" sensitivity --model "$model" --questions "$QUESTIONS" --cultures "$CULTURES" \
      --variants P1 --scoring "$scoring" --calibration "$calibration" --seed "$SEED" \
      --data-dir "$DATA_DIR" --json > "$out.tmp"
    mv "$out.tmp" "$out"
    echo "[levers] $out ($(( $(date +%s) - started )) s)" >&2
  done
done

# The README's table, from the JSON files.
python3 - "$OUT_DIR" $MODELS <<'PY'
import json, os, sys
out, models = sys.argv[1], sys.argv[2:]
titles = {"smollm2-135m": "SmolLM2-135M", "qwen2.5-coder-0.5b": "Qwen2.5-Coder-0.5B", "qwen2.5-coder-1.5b": "Qwen2.5-Coder-1.5B"}
levers = [("digits", "none"), ("digits", "content_free"), ("digits", "permutation"), ("cloze", "none")]
print("| model | scoring | calibration | first option (unaware / P1) | P1 ≠ unaware | mean TV | paper metric unaware → P1 (Δ) | ± | 1 − JSD unaware (Δ) | ± |")
print("|---|---|---|---|---|---|---|---|---|---|")
for model in models:
    for scoring, calibration in levers:
        path = f"{out}/{model}-{scoring}-{calibration}.json"
        if not os.path.exists(path):
            continue
        meter = json.load(open(path))[0]
        cultures = meter["cultures"]
        mean = lambda key: sum(c[key] for c in cultures) / len(cultures)
        above = lambda key: sum(c[key]["low"] > 0 for c in cultures)
        below = lambda key: sum(c[key]["high"] < 0 for c in cultures)
        sign = lambda x: f"{x:+.2f}".replace("-", "−")
        print(f"| {titles.get(model, model)} | {scoring} | {calibration.replace('_', '-')} "
              f"| {100 * meter['first_option_unaware']:.0f} % / {100 * meter['first_option_aware']:.0f} % "
              f"| {100 * meter['changed']:.1f} % | {meter['mean_total_variation']:.3f} "
              f"| {mean('unaware_score'):.2f} → {mean('aware_score'):.2f} ({sign(mean('delta_score'))}) "
              f"| {above('delta_score_interval')} / {below('delta_score_interval')} "
              f"| {mean('unaware_one_minus_jsd'):.2f} ({sign(mean('delta_one_minus_jsd'))}) "
              f"| {above('delta_one_minus_jsd_interval')} / {below('delta_one_minus_jsd_interval')} |")
PY
