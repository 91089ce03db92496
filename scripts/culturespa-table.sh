#!/usr/bin/env bash
# The CultureSPA table for a model on CPU (issue 6): unaware, P1 (and P2, P3: BASE_VARIANTS), P1 + a
# culture-joint adapter, P1 + culture-specific adapters, per culture and on average, in the paper's metric and in 1 − JSD,
# over the 259 WVS questions. Training data: the model's own culture-related instances on the
# paper's released generated questions (PER_TOPIC per topic, all 18 cultures).
#   scripts/culturespa-table.sh                 # default model, PER_TOPIC=10
#   MODEL=path/to/model.gguf PER_TOPIC=50 scripts/culturespa-table.sh
#   AMX=1 ...                            # bf16 projections for inference (AMX tiles or AVX-512 BF16; bigger models)
#   BASE_VARIANTS='["unaware", "p1", "p2", "p3"]' ...   # what the base run evaluates (default: all four)
#   RUNS='specific' ...                  # which runs this sitting builds (default: base joint specific)
# Each run, once finished, leaves its artefacts in $OUT_DIR (scores with intervals, persona meters,
# training log, probe rows), so a table built over several sittings survives the loss of its store:
# a run whose artefacts are there is not run again. Then writes $OUT_DIR/table.md and
# $OUT_DIR/table.json from whatever settings $OUT_DIR holds; prints the table.
set -euo pipefail
cd "$(dirname "$0")/.."

MODEL=${MODEL:-models/SmolLM2-135M-Instruct.Q4_1.gguf}
PER_TOPIC=${PER_TOPIC:-10}
BASE_VARIANTS=${BASE_VARIANTS:-'["unaware", "p1", "p2", "p3"]'}
THREADS=${THREADS:-2}
BATCH_SIZE=${BATCH_SIZE:-16}
EPOCHS=${EPOCHS:-3}
LEARNING_RATE=${LEARNING_RATE:-1e-4}
DATA_DIR=${DATA_DIR:-var/table}
OUT_DIR=${OUT_DIR:-docs/table}
NATIVE_TARGET=${NATIVE_TARGET:-target-native}
RUNS=${RUNS:-base joint specific}
BIN="$NATIVE_TARGET/release/culturespa"
GLOBAL=()
[ "${AMX:-0}" = 1 ] && GLOBAL+=(--amx)

[ -f "$MODEL" ] || [ -d "$MODEL" ] || { echo "[table] $MODEL is missing: run scripts/fetch-model.sh" >&2; exit 1; }
RUSTFLAGS="-C target-cpu=native" CARGO_TARGET_DIR="$NATIVE_TARGET" cargo build --release -p culturespa >&2

mkdir -p "$DATA_DIR" "$OUT_DIR"
export CULTURESPA_DATA_DIR="$DATA_DIR" CULTURESPA_MODEL="$MODEL" RAYON_NUM_THREADS="$THREADS"

if [ ! -f "$DATA_DIR/.paper-imported" ]; then
  "$BIN" questions import data/generated/Meta-Llama-3-8B-Instruct/*.json.gz --set paper >&2
  touch "$DATA_DIR/.paper-imported"
fi

write_run() { # name, stages, extra toml, variants
  local variants=${4:-}
  [ -n "$variants" ] || variants='["unaware", "p1"]'
  cat > "$DATA_DIR/$1.toml" <<EOF
name = "table: $1"
model = "$MODEL"
questions_per_topic = $PER_TOPIC
variants = $variants
answer_mode = "scoring"
stages = $2
$3
EOF
}
training() { # mode
  printf '[training]\nmode = "%s"\nbatch_size = %s\nepochs = %s\nlearning_rate = %s\n' "$1" "$BATCH_SIZE" "$EPOCHS" "$LEARNING_RATE"
}
write_run base '["evaluate"]' '' "$BASE_VARIANTS"
write_run joint '["answer", "collect", "export", "train", "evaluate"]' "question_set = \"paper\"
$(training joint)"
write_run specific '["answer", "collect", "train", "evaluate"]' "question_set = \"paper\"
$(training specific)"

# A setting's scores with 95 % bootstrap intervals per culture (1,000 resamples of its questions).
fetch() { "$BIN" runs scores "$1" --variant "$2" --intervals 1000 --json --data-dir "$DATA_DIR"; }
# Writes a file only whole: a killed sitting leaves no half-written artefact behind.
save() { "${@:2}" > "$1.part" && mv "$1.part" "$1" || { rm -f "$1.part"; return 1; }; }
training_log() {
  sqlite3 "$DATA_DIR/culturespa.db" \
    "SELECT json_extract(event_json, '$.message') FROM run_events WHERE run_id = $1 AND json_extract(event_json, '$.kind') = 'log'"
}
# The general-ability probe of a run: the base model (base run), its adapter(s) (joint, specific).
probe_run() { # name, id
  local adapters=()
  case $1 in
    base) ;;
    joint) adapters=(--adapter "$DATA_DIR/runs/$2/adapters/joint") ;;
    specific) for dir in "$DATA_DIR/runs/$2"/adapters/*/; do adapters+=(--adapter "${dir%/}"); done ;;
  esac
  if [ "$1" = base ]; then
    save "$OUT_DIR/probe-base.jsonl" "$BIN" probe --model "$MODEL"
  else # the probe prints the base model's row first: the run's rows are the ones after it
    save "$OUT_DIR/probe-$1.jsonl" bash -c 'set -o pipefail; "$@" | tail -n +2' _ "$BIN" probe --model "$MODEL" "${adapters[@]}"
  fi
}
export_run() { # name, id: what the table needs of a finished run
  case $1 in
    base)
      save "$OUT_DIR/unaware.json" fetch "$2" unaware
      save "$OUT_DIR/p1.json" fetch "$2" P1
      for variant in P2 P3; do # when the base run answered them (BASE_VARIANTS)
        save "$OUT_DIR/${variant,,}.json" fetch "$2" "$variant" || true
      done
      # The persona meter of each culture-aware variant (movement and direction).
      for variant in P1 P2 P3; do
        save "$OUT_DIR/meter-${variant,,}.json" "$BIN" persona-meter --run "$2" --variant "$variant" --json --data-dir "$DATA_DIR" || true
      done ;;
    *)
      save "$OUT_DIR/$1-log.txt" training_log "$2"
      save "$OUT_DIR/p1-$1.json" fetch "$2" P1 ;;
  esac
}
done_marker() { case $1 in base) echo "$OUT_DIR/p1.json" ;; *) echo "$OUT_DIR/p1-$1.json" ;; esac; }

# Each run once: a run whose artefacts are in $OUT_DIR is done; otherwise it is found by name in the
# store and resumed, or started.
run_id_of() { sqlite3 "$DATA_DIR/culturespa.db" "SELECT run_id FROM runs WHERE name = 'table: $1' ORDER BY run_id DESC LIMIT 1" 2>/dev/null || true; }
for name in $RUNS; do
  case $name in base|joint|specific) ;; *) echo "[table] unknown run $name in RUNS (base, joint, specific)" >&2; exit 2 ;; esac
  if [ -f "$(done_marker "$name")" ] && [ -f "$OUT_DIR/probe-$name.jsonl" ]; then
    echo "[table] run $name: its artefacts are in $OUT_DIR" >&2
    continue
  fi
  id=$(run_id_of "$name")
  started=$(date +%s)
  if [ -z "$id" ]; then
    echo "[table] run $name" >&2
    "$BIN" "${GLOBAL[@]}" run --config "$DATA_DIR/$name.toml" >&2
    id=$(run_id_of "$name")
  else
    echo "[table] run $name (#$id): resume or nothing to do" >&2
    "$BIN" "${GLOBAL[@]}" run --resume "$id" >&2
  fi
  echo "[table] run $name (#$id) took $(( $(date +%s) - started )) s" >&2
  export_run "$name" "$id"
  started=$(date +%s)
  probe_run "$name" "$id"
  echo "[table] probe of $name took $(( $(date +%s) - started )) s" >&2
done

python3 - "$OUT_DIR" "$MODEL" "$PER_TOPIC" "$BATCH_SIZE" "$EPOCHS" "$LEARNING_RATE" <<'PY'
import json, os, sys
out, model, per_topic, batch, epochs, lr = sys.argv[1:]
settings = [("unaware", "unaware"), ("P1", "p1"), ("P2", "p2"), ("P3", "p3"), ("P1 + joint adapter", "p1-joint"), ("P1 + specific adapters", "p1-specific")]
settings = [(label, name) for label, name in settings if os.path.exists(f"{out}/{name}.json")]
loaded = {label: json.load(open(f"{out}/{name}.json")) for label, name in settings}
# Each file is {"scores": <the scores API's answer>, "intervals": [...]}.
data = {label: value["scores"] for label, value in loaded.items()}
bounds = {label: {row["country_code"]: row for row in value.get("intervals", [])} for label, value in loaded.items()}
if not settings:
    sys.exit(f"[table] {out} holds no setting yet")
cultures = [c["country_code"] for c in data[settings[0][0]]["scores"]]
def cell(scores, code, key):
    for c in scores["scores"]:
        if c["country_code"] == code and c.get(key) is not None:
            return c[key]
    return None
def fmt(x):
    return "–" if x is None else f"{x:.2f}"
def span(interval):
    return "" if not interval else f" [{interval['low']:.1f}, {interval['high']:.1f}]"
def bound(label, code, key):
    row = bounds[label].get(code)
    return row.get(key) if row else None
rows = []
header = "| culture | " + " | ".join(label for label, _ in settings) + " |"
lines = [f"Paper metric (×100) per culture; in parentheses 1 − JSD (×100); in brackets 95 % bootstrap intervals (1,000 resamples of the questions). Model `{model}`; training data: its own",
         f"instances on {per_topic} released generated questions per topic; LoRA rank 8, alpha 16, lr {lr}, batch {batch}, {epochs} epochs.", "",
         header, "|" + "---|" * (len(settings) + 1)]
table = {}
for code in cultures:
    values = [(cell(data[label], code, "score"), cell(data[label], code, "one_minus_jsd")) for label, _ in settings]
    table[code] = {label: {"score": s, "one_minus_jsd": j} for (label, _), (s, j) in zip(settings, values)}
    cells = [f"{fmt(s)}{span(bound(label, code, 'score'))} ({fmt(j)}{span(bound(label, code, 'one_minus_jsd'))})"
             for (label, _), (s, j) in zip(settings, values)]
    lines.append(f"| {code} | " + " | ".join(cells) + " |")
averages = [(data[label].get("average"), data[label].get("average_one_minus_jsd")) for label, _ in settings]
lines.append("| **average** | " + " | ".join(f"**{fmt(s)}** ({fmt(j)})" for s, j in averages) + " |")
table["average"] = {label: {"score": s, "one_minus_jsd": j} for (label, _), (s, j) in zip(settings, averages)}
def probe_rows(run):
    path = f"{out}/probe-{run}.jsonl"
    return [json.loads(line) for line in open(path)] if os.path.exists(path) else []
specific = probe_rows("specific")
mean = lambda key, rows: sum(r[key] for r in rows) / len(rows)
lines += ["", "General-ability probe (`culturespa probe`): perplexity on the shipped general text, multiple-choice accuracy (40 questions).", "",
          "| setting | perplexity | multiple choice | chose option 1 |", "|---|---|---|---|"]
for label, rows in [("base", probe_rows("base")), ("joint adapter", probe_rows("joint")), (f"specific adapters (mean of {len(specific)})", specific)]:
    if rows:
        lines.append(f"| {label} | {mean('perplexity', rows):.3f} | {100 * mean('multiple_choice_accuracy', rows):.1f} % | {100 * mean('chose_first_option', rows):.0f} % |")
meters = [json.load(open(f"{out}/meter-{v}.json")) for v in ("p1", "p2", "p3") if os.path.exists(f"{out}/meter-{v}.json")]
if meters:
    pct = lambda x: "–" if x is None else f"{100 * x:.1f} %"
    lines += ["", "Persona meter of the base run (`culturespa persona-meter`): how often the culture-aware answer differs from the unaware one,",
              "how far the distributions move (mean total variation), and the direction: aware − unaware on the paper metric and on 1 − JSD (×100),",
              "averaged over the cultures; a culture counts as toward / away when its 95 % bootstrap interval of the change lies above / below 0.", "",
              "| variant | first option, unaware → aware | aware ≠ unaware | mean TV | Δ paper metric | Δ 1 − JSD | cultures toward / away (metric) |",
              "|---|---|---|---|---|---|---|"]
    for m in meters:
        toward = sum(1 for c in m["cultures"] if c["delta_score_interval"]["low"] > 0)
        away = sum(1 for c in m["cultures"] if c["delta_score_interval"]["high"] < 0)
        tv = m.get("mean_total_variation")
        lines.append(f"| {m['variant_label']} | {pct(m.get('first_option_unaware'))} → {pct(m.get('first_option_aware'))} | {pct(m.get('changed'))} | "
                     f"{'–' if tv is None else f'{tv:.4f}'} | {fmt(m.get('mean_delta_score'))} | {fmt(m.get('mean_delta_one_minus_jsd'))} | {toward} / {away} of {len(m['cultures'])} |")
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
json.dump(table, open(f"{out}/table.json", "w"), indent=1)
print("\n".join(lines))
PY
