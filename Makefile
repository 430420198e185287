# privtrail — two commands on a fresh machine:  make pipeline  |  make test
SHELL := /bin/bash
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
export PATH := $(abspath $(BIN)):$(PATH)
export PREFECT_SERVER_ANALYTICS_ENABLED := false
export DO_NOT_TRACK := 1
export MLFLOW_DISABLE_TELEMETRY := true
export GX_ANALYTICS_ENABLED := false
export DVC_NO_ANALYTICS := 1
export PREFECT_HOME ?= $(abspath .prefect)
export MPLBACKEND := Agg

.PHONY: setup pipeline sweep test test-all lint ui bench clean

setup: $(VENV)/.installed

# torch first and exactly: 2.13.0 (CPU) lies on this disk; resolving it through opacus would fetch a CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip check
	touch $@

pipeline: setup
	@test -d .dvc || $(BIN)/dvc init --quiet
	$(BIN)/dvc repro
	$(BIN)/python -m flows.cli lineage
	@echo "report: reports/compliance.html  |  MLflow UI: make ui"

# privacy–utility sweep over the target ε (dvc exp run --queue); needs `make pipeline` first (run cache).
sweep: setup
	$(BIN)/python -m flows.sweep
	$(BIN)/dvc repro --force --single-item report

test: setup
	$(BIN)/python -m pytest -m "not slow" -q

test-all: setup
	$(BIN)/python -m pytest -q

lint: setup
	$(BIN)/ruff check tasks flows tests bench
	$(BIN)/mypy --strict tasks

ui: setup
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(abspath mlflow.db) --host 127.0.0.1 --port 5000

bench: setup
	$(BIN)/python -m bench

clean:
	rm -rf data models reports mlflow.db mlartifacts .prefect dvc_plots .pytest_cache
