#!/usr/bin/env bash
# Installs llama-cpp-python (llama.cpp's Python binding and its OpenAI-compatible server) with
# numpy into a virtual environment outside the clone, built from source for this CPU, only when
# missing: the peer of scripts/bench-score.sh and the third-party server of the remote-engine test.
# Prints the venv's python on stdout. About 15 minutes on 2 cores the first time.
#   PY=$(scripts/setup-llamacpp.sh)
set -euo pipefail

VERSION=${LLAMA_CPP_PYTHON_VERSION:-0.3.36}
CACHE=${CULTURESPA_CACHE:-$HOME/.cache/culturespa}
# The build is for this CPU's instruction sets; a machine with others gets a venv of its own.
FLAGS=$(grep -m1 '^flags' /proc/cpuinfo | tr ' ' '\n' | grep -E '^(avx2|avx512f|avx512bw|avx512_vnni|avx512_bf16|amx_tile|amx_bf16|amx_int8|fma|f16c)$' | sort | tr '\n' '-')
SIGNATURE=$(printf '%s' "$FLAGS" | sha256sum | cut -c1-10)
VENV="$CACHE/llama-cpp-python-$VERSION-$SIGNATURE"

log() { printf '[setup-llamacpp] %s\n' "$*" >&2; }

if [ -x "$VENV/bin/python" ] && "$VENV/bin/python" -c "import llama_cpp, numpy, uvicorn, fastapi" 2>/dev/null; then
  echo "$VENV/bin/python"
  exit 0
fi

# What the CPU has, spelled out for llama.cpp's CMake (GGML_NATIVE would do the same, but
# naming the sets records in the build log which ones the benchmark's peer was built with).
has() { case "$FLAGS" in *"$1-"*) echo ON ;; *) echo OFF ;; esac; }
CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=$(has avx2) -DGGML_FMA=$(has fma) -DGGML_F16C=$(has f16c)"
CMAKE_ARGS+=" -DGGML_AVX512=$(has avx512f) -DGGML_AVX512_VNNI=$(has avx512_vnni) -DGGML_AVX512_BF16=$(has avx512_bf16)"
# AMX stays off: llama.cpp's AMX repacking crashes on multi-token batches (shared/bench notes).
CMAKE_ARGS+=" -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
log "building llama-cpp-python $VERSION into $VENV ($CMAKE_ARGS); about 15 minutes"
rm -rf "$VENV"
python3 -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --upgrade pip
CMAKE_ARGS="$CMAKE_ARGS" CMAKE_BUILD_PARALLEL_LEVEL="$(nproc)" \
  "$VENV/bin/python" -m pip install --quiet --no-cache-dir "llama-cpp-python[server]==$VERSION" numpy >&2
printf '%s\n' "$CMAKE_ARGS" > "$VENV/culturespa-build-flags.txt"
log "ready: $VENV"
echo "$VENV/bin/python"
