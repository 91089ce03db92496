#!/usr/bin/env bash
# Installs what the project needs, each piece only when it is missing (idempotent).
#   scripts/setup.sh            everything: wasm target, trunk, wasm-bindgen-cli, binaryen, model
#   scripts/setup.sh --browser  also Debian's chromium + chromedriver (for the browser tests)
set -euo pipefail
cd "$(dirname "$0")/.."

TRUNK_VERSION=0.21.14
BINARYEN_VERSION=132.0.0

log() { printf '[setup] %s\n' "$*" >&2; }

# wasm-bindgen-cli must match the wasm-bindgen crate in Cargo.lock exactly.
wasm_bindgen_version() {
  awk '/^name = "wasm-bindgen"$/ {getline; gsub(/version = |"/, ""); print; exit}' Cargo.lock
}

if ! rustup target list --installed | grep -qx wasm32-unknown-unknown; then
  log "adding the wasm32-unknown-unknown target"
  rustup target add wasm32-unknown-unknown
fi

if ! trunk --version 2>/dev/null | grep -q "$TRUNK_VERSION"; then
  log "installing trunk $TRUNK_VERSION (a few minutes)"
  cargo install --locked trunk --version "$TRUNK_VERSION"
fi

WB_VERSION=$(wasm_bindgen_version)
if ! wasm-bindgen --version 2>/dev/null | grep -q "$WB_VERSION"; then
  log "installing wasm-bindgen-cli $WB_VERSION (a few minutes)"
  # Not --locked: its own lockfile pins a crate the index lacks.
  cargo install wasm-bindgen-cli --version "$WB_VERSION"
fi

if [ ! -x node_modules/.bin/wasm-opt ] || ! node_modules/.bin/wasm-opt --version | grep -q "${BINARYEN_VERSION%%.*}"; then
  log "installing binaryen $BINARYEN_VERSION from npm"
  npm ci --no-audit --no-fund
fi

if [ "${1:-}" = "--browser" ]; then
  if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    log "installing chromium and chromedriver"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
fi

scripts/fetch-model.sh
