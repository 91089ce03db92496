#!/usr/bin/env bash
# Prints the gzipped size of the release wasm + JS in dist/ and fails above the budget.
set -euo pipefail
cd "$(dirname "$0")/.."
BUDGET_BYTES=$((600 * 1000))
total=0
for file in dist/*.wasm dist/*.js; do
  size=$(gzip -9 -c "$file" | wc -c)
  total=$((total + size))
  printf '[wasm-size] %s: %d bytes raw, %d gzipped\n' "$file" "$(stat -c %s "$file")" "$size"
done
printf '[wasm-size] wasm + js gzipped: %d bytes (budget %d)\n' "$total" "$BUDGET_BYTES"
[ "$total" -le "$BUDGET_BYTES" ] || { echo "[wasm-size] over budget" >&2; exit 1; }
