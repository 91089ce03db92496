#!/usr/bin/env bash
# Builds the backend with --features cuda on a machine with no GPU and no CUDA toolkit: installs,
# only when missing, a CUDA 13.0 toolkit from NVIDIA's PyPI wheels (nvcc with its crt headers and
# nvvm/cicc, cccl, the runtime, nvrtc, cuBLAS, cuRAND) into a folder outside the clone, then runs
# `cargo build --release -p culturespa --features cuda` in a target dir of its own. Prints on
# stdout the path of the binary. Extra arguments go to cargo. About 30 minutes on 2 busy cores
# (the wheels: 1 GB to download, 1.2 GB on disk; the target dir: 1.3 GB).
#   scripts/cuda-build.sh
#   CUDA_COMPUTE_CAP=90 CUDA_TARGET=target-cuda-sm90 scripts/cuda-build.sh
#
# Why CUDA 13.0: the cu12 nvcc wheels (12.0 to 12.9) hold ptxas only, no bin/nvcc; the CUDA 13
# wheels lay out one toolkit tree (nvidia/cu13/{bin,include,lib,nvvm}) that nvcc runs from.
# cudarc 0.19 supports 13.0 to 13.4 and reads the version from `nvcc --version`; 13.0 is the
# oldest 13.x, so its PTX (which the driver compiles at load) needs the oldest 13-capable driver
# (580 or later). No wheel holds libcuda.so (the driver): candle links cudarc dynamically, so the
# link needs one, and the script generates a stub (every cu* entry point of cuda.h, returning
# CUDA_ERROR_STUB_LIBRARY) under lib/stubs, as the toolkit's own stub is. The binary needs at run
# time, also for --device cpu, the driver's libcuda.so.1 and the toolkit's libcublas.so.13 (with
# libcublasLt.so.13) and libcurand.so.10: LD_LIBRARY_PATH=<the folder the last log line names>.
# The kernels: PTX for sm_$CUDA_COMPUTE_CAP (JIT-compiled by the driver on newer GPUs too) and a
# static library of GGUF/MoE kernels with machine code for that one architecture only (candle's
# quantized matmuls; the engine dequantizes GGUF weights, so it does not call them).
set -euo pipefail
cd "$(dirname "$0")/.."

CUDA_VERSION=13.0
# Pinned wheels of one release (CUDA 13.0 update 2), installed without their (unpinned) deps.
WHEELS=(
  nvidia-cuda-nvcc==13.0.88
  nvidia-cuda-crt==13.0.88
  nvidia-nvvm==13.0.88
  nvidia-cuda-cccl==13.0.85
  nvidia-cuda-runtime==13.0.96
  nvidia-cuda-nvrtc==13.0.88
  nvidia-cublas==13.1.0.3
  nvidia-curand==10.4.0.35
)
CACHE=${CULTURESPA_CACHE:-$HOME/.cache/culturespa}
PREFIX="$CACHE/cuda-$CUDA_VERSION"
ROOT="$PREFIX/nvidia/cu13"   # what CUDA_HOME points at
STAMP="$PREFIX/culturespa-wheels.txt"
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-80}
CUDA_TARGET=${CUDA_TARGET:-target-cuda}

log() { printf '[cuda-build] %s\n' "$*" >&2; }
die() { printf '[cuda-build] error: %s\n' "$*" >&2; exit 1; }

command -v python3 >/dev/null || die "python3 is missing (it installs the CUDA wheels with pip)"
python3 -m pip --version >/dev/null 2>&1 || die "pip is missing for python3 (python3 -m ensurepip, or apt-get install python3-pip)"
command -v cargo >/dev/null || die "cargo is missing (install Rust with rustup)"
CC_BIN=${NVCC_CCBIN:-$(command -v g++ || true)}
[ -n "$CC_BIN" ] || die "g++ is missing: nvcc needs a host C++ compiler (apt-get install g++, or set NVCC_CCBIN)"
command -v cc >/dev/null || die "cc is missing: it builds the libcuda.so link stub (apt-get install gcc)"

# What must be there for the build; prints each missing piece.
missing() {
  local f
  for f in bin/nvcc bin/ptxas bin/cudafe++ bin/fatbinary nvvm/bin/cicc nvvm/libdevice/libdevice.10.bc \
           include/crt/host_config.h include/cuda_runtime.h include/cuda.h include/cccl/cuda/std/limits \
           include/cublas_v2.h include/curand.h include/nvrtc.h \
           lib/libcudart.so lib/libcublas.so lib/libcublasLt.so lib/libcurand.so lib/libnvrtc.so \
           lib/stubs/libcuda.so; do
    [ -e "$ROOT/$f" ] || printf '%s\n' "$ROOT/$f"
  done
}

# The unversioned names the linker looks for (the wheels ship only libfoo.so.N).
link_names() {
  local lib so
  for lib in cudart cublas cublasLt curand nvrtc; do
    so=$(cd "$ROOT/lib" && ls "lib$lib.so."* 2>/dev/null | grep -E "^lib$lib\.so\.[0-9]+$" | sort -V | tail -n1 || true)
    [ -n "$so" ] || die "$ROOT/lib/lib$lib.so.* is missing: the wheel providing lib$lib did not install"
    ln -sfn "$so" "$ROOT/lib/lib$lib.so"
  done
  ln -sfn lib "$ROOT/lib64"
}

# libcuda.so comes with the driver, not with any wheel: a stub exporting every driver entry point
# of cuda.h (legacy, versioned and per-thread-stream names), soname libcuda.so.1 like the driver's.
cuda_stub() {
  local dir="$ROOT/lib/stubs" defs
  mkdir -p "$dir"
  for defs in "" "-D__CUDA_API_VERSION_INTERNAL" "-DCUDA_API_PER_THREAD_DEFAULT_STREAM"; do
    # shellcheck disable=SC2086
    cc -E -P $defs -I"$ROOT/include" "$ROOT/include/cuda.h" 2>/dev/null || true
  done | grep -oE '\bcu[A-Z][A-Za-z0-9_]*[[:space:]]*\(' | tr -d ' (\t' | sort -u \
    | awk '{ printf "int %s(void) { return 34; } /* CUDA_ERROR_STUB_LIBRARY */\n", $1 }' > "$dir/libcuda-stub.c"
  [ "$(wc -l < "$dir/libcuda-stub.c")" -gt 300 ] || die "could not read the driver API from $ROOT/include/cuda.h"
  cc -shared -fPIC -O0 -Wl,-soname,libcuda.so.1 -o "$dir/libcuda.so" "$dir/libcuda-stub.c" \
    || die "building the libcuda.so stub failed"
}

if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "${WHEELS[*]}" ] || [ -n "$(missing)" ]; then
  log "installing the CUDA $CUDA_VERSION wheels into $PREFIX (1 GB download, 1.2 GB on disk)"
  rm -rf "$PREFIX"
  mkdir -p "$PREFIX"
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --no-cache-dir \
    --target "$PREFIX" "${WHEELS[@]}" >&2 \
    || die "pip could not install ${WHEELS[*]} (is PyPI reachable?)"
  [ -x "$ROOT/bin/nvcc" ] || die "$ROOT/bin/nvcc is missing after installing nvidia-cuda-nvcc"
  link_names
  cuda_stub
  LEFT=$(missing)
  [ -z "$LEFT" ] || die "the CUDA wheels lack: $(echo $LEFT)"
  printf '%s' "${WHEELS[*]}" > "$STAMP"
  log "toolkit ready: $ROOT"
fi

export CUDA_HOME="$ROOT" CUDA_PATH="$ROOT" CUDA_ROOT="$ROOT" CUDA_TOOLKIT_ROOT_DIR="$ROOT"
export PATH="$ROOT/bin:$PATH"
export NVCC="$ROOT/bin/nvcc"
export LIBRARY_PATH="$ROOT/lib:$ROOT/lib/stubs${LIBRARY_PATH:+:$LIBRARY_PATH}"
# The real libraries only: the stub must never be what a program loads.
export LD_LIBRARY_PATH="$ROOT/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
if [ -n "${NVCC_CCBIN:-}" ]; then export NVCC_CCBIN; fi
# nvcc's kernel compiles run in parallel in candle-kernels' build script: as many as cargo's jobs.
export CUDAFORGE_THREADS=${CUDAFORGE_THREADS:-${CARGO_BUILD_JOBS:-$(nproc)}}

NVCC_RELEASE=$(nvcc --version | sed -n 's/.*release \([0-9]*\.[0-9]*\),.*/\1/p')
[ "$NVCC_RELEASE" = "$CUDA_VERSION" ] || die "nvcc --version says release '${NVCC_RELEASE:-?}', expected $CUDA_VERSION"
export CUDARC_CUDA_VERSION="${CUDA_VERSION%%.*}0${CUDA_VERSION##*.}0"   # 13.0 -> 13000
# A smoke test of the toolkit: catches a broken install before an hour of cargo.
SMOKE=$(mktemp -d)
trap 'rm -rf "$SMOKE"' EXIT
printf '#include <cuda_fp16.h>\n#include <cuda/std/limits>\n__global__ void k(__half *x) { x[0] = __float2half(1.0f); }\n' > "$SMOKE/k.cu"
nvcc -ccbin "$CC_BIN" -arch="sm_$CUDA_COMPUTE_CAP" -std=c++17 -ptx -o "$SMOKE/k.ptx" "$SMOKE/k.cu" >&2 \
  || die "nvcc cannot compile a test kernel for sm_$CUDA_COMPUTE_CAP with $CC_BIN (see above)"

log "cargo build --release -p culturespa --features cuda (CUDA $CUDA_VERSION, sm_$CUDA_COMPUTE_CAP, target $CUDA_TARGET)"
CARGO_TARGET_DIR="$CUDA_TARGET" cargo build --release -p culturespa --features cuda "$@" >&2
BIN="$CUDA_TARGET/release/culturespa"
[ -x "$BIN" ] || die "cargo finished but $BIN is missing"
BIN=$(cd "$(dirname "$BIN")" && pwd)/culturespa
log "binary: $BIN (CUDA $CUDA_VERSION, kernels for sm_$CUDA_COMPUTE_CAP; run it with LD_LIBRARY_PATH=$ROOT/lib and an NVIDIA driver >= 580)"
echo "$BIN"
