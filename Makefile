# CultureSPA Studio. Two commands do everything on a fresh machine:
#   make run    installs what is missing, builds, serves http://127.0.0.1:8080 (MODEL=NAME picks the default model)
#   make test   fmt, clippy, all Rust tests (the store's on PostgreSQL too), the wasm build, the browser tests
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

export PATH := $(CURDIR)/node_modules/.bin:$(HOME)/.cargo/bin:$(PATH)
export TRUNK_SKIP_VERSION_CHECK := true

ADDR ?= 127.0.0.1:8080
# The model of runs that name none: a name of data/models/catalog.toml (`scripts/fetch-model.sh
# --list`), installed on first use.
MODEL ?= smollm2-135m
DATA_DIR ?= var
# The server binary `make run` starts is built for this machine's CPU (about 4x faster prefill);
# it gets a target dir of its own so that it never invalidates the test builds.
NATIVE_TARGET_DIR ?= target-native

.PHONY: run setup setup-test frontend backend-native test fmt-check clippy rust-tests postgres-tests wasm browser-tests clean

run: setup frontend backend-native
	scripts/fetch-model.sh $(MODEL)
	CULTURESPA_STATIC_DIR=dist $(NATIVE_TARGET_DIR)/release/culturespa serve --addr $(ADDR) --data-dir $(DATA_DIR) --model $(MODEL)

setup:
	scripts/setup.sh

frontend:
	trunk build --release

backend-native:
	RUSTFLAGS="-C target-cpu=native" CARGO_TARGET_DIR=$(NATIVE_TARGET_DIR) cargo build --release -p culturespa

test: setup-test fmt-check clippy rust-tests postgres-tests wasm browser-tests

setup-test:
	scripts/setup.sh --browser

fmt-check:
	cargo fmt --all -- --check

clippy:
	cargo clippy -p culturespa -p culturespa-engine -p shared --all-targets -- -D warnings
	cargo clippy -p frontend --target wasm32-unknown-unknown -- -D warnings
	cargo clippy -p e2e --all-targets -- -D warnings

rust-tests:
	# llama.cpp's OpenAI-compatible server (llama-cpp-python, a cached venv) is the third-party
	# peer of the remote-engine test.
	CULTURESPA_LLAMACPP_PYTHON="$$(scripts/setup-llamacpp.sh)" cargo test -p culturespa -p culturespa-engine -p shared
	# The frontend's pure helpers (URLs, keys, CSV, scales) natively; apart, so that its features
	# do not change the backend's build.
	cargo test -p frontend

# The store's tests again on a throwaway PostgreSQL (installed here, started and stopped by the script).
postgres-tests:
	scripts/test-postgres.sh

wasm:
	trunk build --release
	@scripts/wasm-size.sh

browser-tests: wasm
	cargo build -p culturespa
	cargo test -p e2e -- --test-threads=1

clean:
	cargo clean
	rm -rf dist
