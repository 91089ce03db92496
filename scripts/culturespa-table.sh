#!/usr/bin/env bash
# The CultureSPA table for a model on CPU (issue 6): unaware, P1 (and P2, P3: BASE_VARIANTS), P1 + a
# culture-joint adapter, P1 + culture-specific adapters, per culture and on average, in the paper's metric and in 1 − JSD,
# over the 259 WVS questions. Training data: the model's own culture-related instances on the
# paper's released generated questions (PER_TOPIC per topic, all 18 cultures).
#   scripts/culturespa-table.sh                 # default model, PER_TOPIC=10
#   MODEL=path/to/model.gguf PER_TOPIC=50 scripts/culturespa-table.sh
#   AMX=1 ...                            # bf16 projections for inference (AMX tiles or AVX-512 BF16; bigger models)
#   BASE_VARIANTS='["unaware", "p1", "p2", "p3"]' ...   # what the base run evaluates (default: all four)
#   RUNS='specific' CULTURES='USA CHN' ...   # what this sitting builds (default: all of it)
# The table is built in pieces that each leave their artefacts in $OUT_DIR (kept in git), so that
# it survives sittings on machines that do not keep the store (a piece whose artefacts are there is
# not built again; an interrupted piece resumes from the store when it is still there):
#   base       per culture a run: unaware, P1, P2, P3 on the 259 WVS questions; scores with
#              intervals, persona meters (pieces/*-CODE.json); the base model's probe row
#   instances  one run: unaware and P1 answers on the released questions; the culture-related
#              instances it collects, as SFT files (instances/joint.jsonl, instances/specific/CODE.jsonl)
#   joint      the joint adapter (`culturespa train` on instances/joint.jsonl), then per culture a run
#              evaluating P1 with it merged (pieces/p1-joint-CODE.json); its probe row
#   specific   per culture: its adapter (`culturespa train` on its instances), a run evaluating its
#              P1 with it merged, its probe row (pieces/*-specific-CODE.*)
# Adapters live in $DATA_DIR/adapters (too big for git: a piece trains again what a new machine lacks).
# Then writes $OUT_DIR/table.md and $OUT_DIR/table.json from whatever settings $OUT_DIR holds.
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
RUNS=${RUNS:-base instances joint specific}
ALL_CULTURES="USA CAN BOL BRA GBR NLD DEU UKR CHN RUS IND THA KEN NGA ETH ZWE AUS NZL" # the table's rows
CULTURES=${CULTURES:-$ALL_CULTURES} # what this sitting builds
BIN="$NATIVE_TARGET/release/culturespa"
GLOBAL=()
[ "${AMX:-0}" = 1 ] && GLOBAL+=(--amx)

[ -f "$MODEL" ] || [ -d "$MODEL" ] || { echo "[table] $MODEL is missing: run scripts/fetch-model.sh" >&2; exit 1; }
RUSTFLAGS="-C target-cpu=native" CARGO_TARGET_DIR="$NATIVE_TARGET" cargo build --release -p culturespa >&2

BIN_PATH=$(realpath "$BIN") MODEL_PATH=$(realpath "$MODEL")
mkdir -p "$DATA_DIR" "$OUT_DIR"
DATA_DIR=$(realpath "$DATA_DIR") # adapter paths in run configurations are absolute
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
write_run instances '["answer", "collect"]' 'question_set = "paper"'
write_piece() { # name, culture, adapter folder (none: the base model)
  write_run "$1" '["evaluate"]' "cultures = [\"$2\"]
${3:+[adapter]
path = \"$3\"}" '["p1"]'
}

# A setting's scores with 95 % bootstrap intervals per culture (1,000 resamples of its questions).
fetch() { "$BIN" runs scores "$1" --variant "$2" --intervals 1000 --json --data-dir "$DATA_DIR"; }
# Writes a file only whole: a killed sitting leaves no half-written artefact behind.
save() { "${@:2}" > "$1.part" && mv "$1.part" "$1" || { rm -f "$1.part"; return 1; }; }
# The binary in the data folder: what it writes names adapters by their folder there
# (adapters/NAME), not by where this machine keeps the store.
in_data_dir() { (cd "$DATA_DIR" && "$BIN_PATH" "$@"); }
# The probe of adapters alone (the base model's row is probe-base.jsonl).
probe_adapters() { in_data_dir probe --model "$MODEL_PATH" --no-base "$@"; }

# A run of the store by name: resumed when it is there (a finished one does nothing), else started.
run_id_of() { sqlite3 "$DATA_DIR/culturespa.db" "SELECT run_id FROM runs WHERE name = 'table: $1' ORDER BY run_id DESC LIMIT 1" 2>/dev/null || true; }
run_once() { # name; prints the run id
  local id started
  id=$(run_id_of "$1")
  started=$(date +%s)
  if [ -z "$id" ]; then
    echo "[table] run $1" >&2
    "$BIN" "${GLOBAL[@]}" run --config "$DATA_DIR/$1.toml" >&2
    id=$(run_id_of "$1")
  else
    echo "[table] run $1 (#$id): resume or nothing to do" >&2
    "$BIN" "${GLOBAL[@]}" run --resume "$id" >&2
  fi
  echo "[table] run $1 (#$id) took $(( $(date +%s) - started )) s" >&2
  echo "$id"
}

# The base model per culture: unaware and the culture-aware variants (BASE_VARIANTS) of one
# culture, their scores and persona meters (the unaware answers are the same in every piece).
build_base() {
  local code id variant marker
  mkdir -p "$OUT_DIR/pieces"
  [ -f "$OUT_DIR/probe-base.jsonl" ] || save "$OUT_DIR/probe-base.jsonl" "$BIN" probe --model "$MODEL"
  for code in $CULTURES; do
    marker="$OUT_DIR/pieces/unaware-$code.json"
    [ -f "$marker" ] && continue
    write_run "base $code" '["evaluate"]' "cultures = [\"$code\"]" "$BASE_VARIANTS"
    id=$(run_once "base $code")
    for variant in P1 P2 P3; do # those the run answered
      save "$OUT_DIR/pieces/${variant,,}-$code.json" fetch "$id" "$variant" || continue
      save "$OUT_DIR/pieces/meter-${variant,,}-$code.json" \
        "$BIN" persona-meter --run "$id" --variant "$variant" --json --data-dir "$DATA_DIR"
    done
    save "$marker" fetch "$id" unaware # last: the piece's marker
  done
}

INSTANCES="$OUT_DIR/instances"
build_instances() {
  [ -f "$INSTANCES/joint.jsonl" ] && return
  local id tmp file code
  id=$(run_once instances)
  tmp=$(mktemp -d)
  "$BIN" export --run "$id" --mode specific --out "$tmp/specific" --data-dir "$DATA_DIR" >&2
  "$BIN" export --run "$id" --mode joint --out "$tmp/joint" --data-dir "$DATA_DIR" >&2
  mkdir -p "$INSTANCES/specific"
  for file in "$tmp"/specific/culturespa_run*_alpaca_*.jsonl; do
    code=${file##*_}
    mv "$file" "$INSTANCES/specific/$code"
  done
  mv "$tmp"/joint/culturespa_run*_alpaca_joint.jsonl "$INSTANCES/joint.jsonl" # last: the piece's marker
  rm -rf "$tmp"
}

# An adapter trained on instances (PER_TOPIC, the training settings): once per machine; its
# summary (examples, steps, first and last loss, tokens/s) is an artefact. Trained in the data
# folder, so that the summary names the adapter by its folder there (adapters/NAME).
train_adapter() { # name, instances file
  [ -f "$DATA_DIR/adapters/$1/adapter_model.safetensors" ] && return
  echo "[table] train adapter $1" >&2
  mkdir -p "$OUT_DIR/pieces"
  save "$OUT_DIR/pieces/train-$1.json" in_data_dir train --model "$MODEL_PATH" --data "$(realpath "$2")" \
    --out "adapters/$1" --threads "$THREADS" --batch-size "$BATCH_SIZE" --epochs "$EPOCHS" --learning-rate "$LEARNING_RATE"
}

# P1 on one culture with an adapter merged (none: the culture has no instances, as a run's Train
# stage leaves it).
evaluate_piece() { # kind (joint | specific), culture, adapter folder or ""
  local marker="$OUT_DIR/pieces/p1-$1-$2.json" id
  [ -f "$marker" ] && return
  write_piece "$1 $2" "$2" "$3"
  id=$(run_once "$1 $2")
  save "$marker" fetch "$id" P1
}

build_joint() {
  train_adapter joint "$INSTANCES/joint.jsonl"
  for code in $CULTURES; do evaluate_piece joint "$code" "$DATA_DIR/adapters/joint"; done
  [ -f "$OUT_DIR/probe-joint.jsonl" ] || save "$OUT_DIR/probe-joint.jsonl" probe_adapters --adapter adapters/joint
}

# Per culture its adapter and its P1 with it; then one probe for the adapters this sitting lacks
# the rows of (the model loaded once, not once per culture).
build_specific() {
  local code adapter unprobed=() adapters=() row=0 line
  for code in $CULTURES; do
    adapter=""
    if [ -f "$INSTANCES/specific/$code.jsonl" ]; then
      adapter="$DATA_DIR/adapters/specific-$code"
      [ -f "$OUT_DIR/pieces/p1-specific-$code.json" ] && [ -f "$OUT_DIR/pieces/probe-specific-$code.jsonl" ] && continue
      train_adapter "specific-$code" "$INSTANCES/specific/$code.jsonl"
      [ -f "$OUT_DIR/pieces/probe-specific-$code.jsonl" ] || { unprobed+=("$code"); adapters+=(--adapter "adapters/specific-$code"); }
    fi
    evaluate_piece specific "$code" "$adapter"
  done
  [ ${#unprobed[@]} -gt 0 ] || return 0
  echo "[table] probe of ${#unprobed[@]} specific adapter(s)" >&2
  save "$OUT_DIR/pieces/probe-specific.part.jsonl" probe_adapters "${adapters[@]}"
  while IFS= read -r line; do # one row per adapter, in their order
    printf '%s\n' "$line" > "$OUT_DIR/pieces/probe-specific-${unprobed[$row]}.jsonl"
    row=$((row + 1))
  done < "$OUT_DIR/pieces/probe-specific.part.jsonl"
  rm "$OUT_DIR/pieces/probe-specific.part.jsonl"
}

for name in $RUNS; do
  case $name in
    base) build_base ;;
    instances) build_instances ;;
    joint|specific)
      [ -f "$INSTANCES/joint.jsonl" ] || { echo "[table] $name needs the instances piece first (RUNS)" >&2; exit 2; }
      "build_$name" ;;
    *) echo "[table] unknown piece $name in RUNS (base, instances, joint, specific)" >&2; exit 2 ;;
  esac
done

python3 - "$OUT_DIR" "$MODEL" "$PER_TOPIC" "$BATCH_SIZE" "$EPOCHS" "$LEARNING_RATE" "$ALL_CULTURES" <<'PY'
import json, os, sys
out, model, per_topic, batch, epochs, lr, all_cultures = sys.argv[1:]
all_cultures = all_cultures.split()
# The adapters' settings from their per-culture pieces: one scores file (the cultures there so far,
# averaged over them) and one probe file per kind.
def pieces_of(name):
    found = [(code, f"{out}/pieces/{name}-{code}.json") for code in all_cultures]
    return [(code, json.load(open(path))) for code, path in found if os.path.exists(path)]
for name in ("unaware", "p1", "p2", "p3", "p1-joint", "p1-specific"):
    pieces = pieces_of(name)
    if not pieces:
        continue
    first = pieces[0][1]
    # The unaware prompt names no culture, so every base piece answers it alike and scores it against
    # all 18: when the pieces agree (scores and intervals), the column is whole from the first piece.
    unaware_whole = name == "unaware" and all(
        piece["scores"]["scores"] == first["scores"]["scores"] and piece.get("intervals") == first.get("intervals") for _, piece in pieces)
    if unaware_whole:
        rows, intervals = first["scores"]["scores"], first.get("intervals", [])
    else: # a piece's own culture only
        if name == "unaware" and len(pieces) > 1:
            print("[table] the unaware pieces disagree: the column keeps each piece's own culture", file=sys.stderr)
        rows = [row for code, piece in pieces for row in piece["scores"]["scores"] if row["country_code"] == code]
        intervals = [row for code, piece in pieces for row in piece.get("intervals", []) if row["country_code"] == code]
    mean = lambda key: sum(row[key] for row in rows) / len(rows) if all(row.get(key) is not None for row in rows) else None
    merged = {"variant": first["scores"]["variant"], "variant_label": first["scores"]["variant_label"], "runs": [piece["scores"]["run_id"] for _, piece in pieces],
              "cultures": len(rows), "scores": rows, "average": mean("score"), "average_one_minus_jsd": mean("one_minus_jsd")}
    if unaware_whole:
        merged["scored_from"] = f"run {merged['runs'][0]}: the unaware answers of every culture's piece agree"
    json.dump({"scores": merged, "intervals": intervals}, open(f"{out}/{name}.json", "w"), indent=1)
    if name == "p1-specific":
        probes = [f"{out}/pieces/probe-specific-{code}.jsonl" for code, _ in pieces]
        open(f"{out}/probe-specific.jsonl", "w").write("".join(open(path).read() for path in probes if os.path.exists(path)))
# The persona meters: pairs-weighted shares, the cultures side by side, means over the cultures.
for variant in ("p1", "p2", "p3"):
    pieces = [piece for _, piece in pieces_of(f"meter-{variant}")]
    if not pieces:
        continue
    pairs = sum(piece["pairs"] for piece in pieces)
    def weighted(key):
        if pairs == 0 or any(piece.get(key) is None for piece in pieces):
            return None
        return sum(piece[key] * piece["pairs"] for piece in pieces) / pairs
    cultures = [culture for piece in pieces for culture in piece["cultures"]]
    def over_cultures(key):
        values = [culture.get(key) for culture in cultures]
        return None if any(v is None for v in values) else sum(values) / len(values)
    meter = {"runs": [piece["run_id"] for piece in pieces], "variant": pieces[0]["variant"], "variant_label": pieces[0]["variant_label"],
             "pairs": pairs, "first_option_unaware": weighted("first_option_unaware"), "first_option_aware": weighted("first_option_aware"),
             "changed": weighted("changed"), "mean_total_variation": weighted("mean_total_variation"), "cultures": cultures,
             "mean_delta_score": over_cultures("delta_score"), "mean_delta_one_minus_jsd": over_cultures("delta_one_minus_jsd"),
             "resamples": pieces[0]["resamples"], "seed": pieces[0]["seed"]}
    json.dump(meter, open(f"{out}/meter-{variant}.json", "w"), indent=1)
settings = [("unaware", "unaware"), ("P1", "p1"), ("P2", "p2"), ("P3", "p3"), ("P1 + joint adapter", "p1-joint"), ("P1 + specific adapters", "p1-specific")]
settings = [(label, name) for label, name in settings if os.path.exists(f"{out}/{name}.json")]
loaded = {name: json.load(open(f"{out}/{name}.json")) for _, name in settings}
# A setting built for some cultures so far says so in its column.
def column(label, name):
    built = loaded[name]["scores"].get("cultures", len(all_cultures))
    return label if built == len(all_cultures) else f"{label} ({built} of {len(all_cultures)} cultures)"
settings = [(column(label, name), name) for label, name in settings]
loaded = {label: loaded[name] for label, name in settings}
# Each file is {"scores": <the scores API's answer>, "intervals": [...]}.
data = {label: value["scores"] for label, value in loaded.items()}
bounds = {label: {row["country_code"]: row for row in value.get("intervals", [])} for label, value in loaded.items()}
if not settings:
    print(f"[table] {out} holds no setting yet")
    sys.exit(0)
cultures = all_cultures
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
# Per culture with a base piece: P1's change and its interval, and the culture's own adapter against P1.
p1_meter = next((m for m in meters if m["variant"] == "p1"), None)
label_of = {name: label for label, name in settings}
if p1_meter and "p1" in label_of:
    specific = label_of.get("p1-specific")
    lines += ["", "P1 per culture with a base piece: the change from unaware on the paper metric (95 % interval), the share of answers changed,",
              "and P1 + the culture's specific adapter − P1 (paper metric / 1 − JSD; two runs, so no interval).", "",
              "| culture | P1 − unaware [95 %] | P1 changed | specific adapter − P1 |", "|---|---|---|---|"]
    for c in p1_meter["cultures"]:
        code, i = c["country_code"], c["delta_score_interval"]
        gain = "–"
        if specific and cell(data[specific], code, "score") is not None:
            gain = " / ".join(f"{cell(data[specific], code, key) - cell(data[label_of['p1']], code, key):+.2f}" for key in ("score", "one_minus_jsd"))
        lines.append(f"| {code} | {c['delta_score']:+.2f} [{i['low']:+.2f}, {i['high']:+.2f}] | {100 * c['changed']:.1f} % | {gain} |")
open(f"{out}/table.md", "w").write("\n".join(lines) + "\n")
json.dump(table, open(f"{out}/table.json", "w"), indent=1)
print("\n".join(lines))
PY
