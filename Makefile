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

.PHONY: setup setup-gpu pipeline sweep test test-integration test-all browser tesseract lint docs ui bench gallery server server-stop clean

setup: $(VENV)/.installed tesseract

# torch first and exactly: 2.13.0 (CPU) lies on this disk; resolving it through opacus would fetch a CUDA build.
$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet torch==2.13.0
	$(BIN)/python -m pip install --quiet -e '.[dev,docs]'
	$(BIN)/python -m pip check
	$(BIN)/python -m flows.setup_models
	touch $@

# GPU execution (anonymize.device: auto | cuda; `privtrail anonymize --device`), after `make setup`, on a machine
# with an NVIDIA GPU. onnxruntime-gpu (the `gpu` extra) must REPLACE onnxruntime: both wheels ship the same
# `onnxruntime` module, so installed side by side each overwrites the other's files. So: uninstall both, then
# install the GPU wheel alone (--no-deps: its requirements are the CPU wheel's, already there). It needs the
# NVIDIA driver and CUDA 13 + cuDNN 9 runtime libraries (a CUDA toolkit, or the nvidia-* wheels of
# `onnxruntime-gpu[cuda,cudnn]` plus nvidia-cublas). Afterwards `pip check` names "rapidocr-onnxruntime 1.4.4
# requires onnxruntime, which is not installed": expected and harmless, since rapidocr needs the distribution
# *name* while it imports the module, which onnxruntime-gpu provides with the same API. `make setup` reinstalls
# the CPU wheel whenever pyproject.toml changes: run `make setup-gpu` again after it. The last line says what
# anonymize.device: auto resolves to here, and why (a CUDA provider that cannot start is reported, not used).
setup-gpu: setup
	$(BIN)/python -m pip uninstall --quiet --yes onnxruntime onnxruntime-gpu
	$(BIN)/python -m pip install --quiet --force-reinstall --no-deps 'onnxruntime-gpu==1.31.1'
	$(BIN)/python -c "import onnxruntime as ort; print('onnxruntime', ort.__version__, 'providers:', ort.get_available_providers())"
	$(BIN)/python -c "from tasks.anonymize.device import resolve_device; d = resolve_device('auto'); print('anonymize.device auto:', d.describe(), '--', d.reason)"

pipeline: setup
	@test -d .dvc || $(BIN)/dvc init --quiet
	@$(BIN)/python -m flows.pipeline repro || { rc=$$?; echo "report: reports/compliance.html (when the report stage ran: its first page lists every gate that failed or could not be assessed, with the sample that would resolve it)"; exit $$rc; }
	@echo "report: reports/compliance.html  |  MLflow UI: make ui"

# privacy–utility sweep over the target ε (dvc exp run --queue); needs `make pipeline` first (run cache).
sweep: setup
	$(BIN)/python -m flows.sweep
	$(BIN)/dvc repro --force --single-item report

# the default suite (~12 min on 2 cores): everything but `slow` and the end-to-end `integration` flows
test: setup browser tesseract
	$(BIN)/python -m pytest -m "not slow and not integration" -q

# flows end to end in temp workspaces (the small pipeline, own data, purge, scale-out); CI runs it after `test`
test-integration: setup browser tesseract
	$(BIN)/python -m pytest -m "integration and not slow" -q

test-all: setup browser tesseract
	$(BIN)/python -m pytest -q

# Debian chromium for the report's browser test (Playwright drives it; no browser download). Idempotent:
# nothing to do when it is there; installed only as root; otherwise the browser test skips and says why.
browser:
	@test -x /usr/bin/chromium || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null \
	  && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || echo "chromium not installed (needs root and apt-get): the report browser test will skip"

# Debian tesseract-ocr + English model: check_quality's independent text/plate auditor (pytesseract drives it;
# the anonymizer reads text with rapidocr). Idempotent; installed only as root; otherwise its metrics are NaN
# with the reason (the readability gates are not assessed, never passed) and its tests skip.
tesseract:
	@{ test -x /usr/bin/tesseract && test -f /usr/share/tesseract-ocr/5/tessdata/eng.traineddata; } \
	  || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq tesseract-ocr tesseract-ocr-eng >/dev/null; } \
	  || echo "tesseract-ocr not installed (needs root and apt-get): text/plate readability will be not assessed"

# what CI checks before the docs and tests (.ci/run): lint, the formatter's check, strict types on tasks and flows
lint: setup
	$(BIN)/ruff check tasks flows tests bench
	$(BIN)/ruff format --check tasks flows
	$(BIN)/mypy --strict tasks flows

# the docs site (mkdocs.yml, docs/): warnings (a broken link or anchor, a page outside the nav) are errors;
# offline (no plugin that fetches, no web fonts). Open site/index.html.
docs: setup
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --site-dir site

ui: setup
	$(BIN)/mlflow ui --backend-store-uri sqlite:///$(abspath mlflow.db) --host 127.0.0.1 --port 5000

bench: setup
	$(BIN)/python -m bench

# docs/gallery/ (gitignored): deface beside privtrail's face methods on public-domain / package photos (docs/gallery.md)
gallery: setup
	$(BIN)/python -m bench.gallery

# A long-running Prefect server (UI + schedules; no per-process ephemeral start-up) and an MLflow tracking
# server (sqlite store, artifact directory), both under .servers/, in the background. Ports: make server
# PREFECT_PORT=4300 MLFLOW_PORT=5100. Flows use them once the printed lines are exported.
SERVERS := $(abspath .servers)
PREFECT_PORT ?= 4200
MLFLOW_PORT ?= 5000
server: setup
	@mkdir -p $(SERVERS)/prefect $(SERVERS)/mlartifacts && echo '*' > $(SERVERS)/.gitignore
	@if kill -0 "$$(cat $(SERVERS)/prefect.pid 2>/dev/null)" 2>/dev/null; then echo "prefect server already running"; \
	else PREFECT_HOME=$(SERVERS)/prefect PREFECT_API_URL= setsid $(BIN)/prefect server start --host 127.0.0.1 \
	  --port $(PREFECT_PORT) > $(SERVERS)/prefect.log 2>&1 & echo $$! > $(SERVERS)/prefect.pid; fi
	@if kill -0 "$$(cat $(SERVERS)/mlflow.pid 2>/dev/null)" 2>/dev/null; then echo "mlflow server already running"; \
	else setsid $(BIN)/mlflow server --backend-store-uri sqlite:///$(SERVERS)/mlflow.db --workers 1 \
	  --artifacts-destination $(SERVERS)/mlartifacts --host 127.0.0.1 --port $(MLFLOW_PORT) \
	  > $(SERVERS)/mlflow.log 2>&1 & echo $$! > $(SERVERS)/mlflow.pid; fi
	@for url in http://127.0.0.1:$(PREFECT_PORT)/api/health http://127.0.0.1:$(MLFLOW_PORT)/health; do \
	  for i in $$(seq 180); do curl -sf $$url >/dev/null && break; sleep 1; done; \
	  curl -sf $$url >/dev/null || { echo "$$url not up: see $(SERVERS)/*.log"; exit 1; }; done
	@echo "Prefect UI: http://127.0.0.1:$(PREFECT_PORT)   MLflow UI: http://127.0.0.1:$(MLFLOW_PORT)"
	@echo "export PREFECT_API_URL=http://127.0.0.1:$(PREFECT_PORT)/api MLFLOW_TRACKING_URI=http://127.0.0.1:$(MLFLOW_PORT) PRIVTRAIL_ARTIFACT_ROOT=mlflow-artifacts:/privtrail"

server-stop:
	@for s in prefect mlflow; do f=$(SERVERS)/$$s.pid; pid=$$(cat $$f 2>/dev/null); \
	  if [ -n "$$pid" ] && kill -0 "$$pid" 2>/dev/null; then kill -- -"$$pid"; \
	    for i in $$(seq 60); do kill -0 -- -"$$pid" 2>/dev/null || break; sleep 1; done; \
	    kill -9 -- -"$$pid" 2>/dev/null; echo "stopped $$s server"; fi; \
	  rm -f $$f; done

clean:
	rm -rf data models reports mlflow.db mlartifacts .prefect dvc_plots .pytest_cache
