# HQ: `make run` starts HQ on this machine; `make test` runs the whole suite on real parts.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HQ := $(BIN)/hq
BASE_IMAGE ?= hq-base:bookworm
SOURCES := hq agent dash_app tests bench

.PHONY: run test lint typecheck bench images base-image infra clean

# -- set-up ------------------------------------------------------------------------------------
$(VENV)/.installed-run: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "error: could not create a virtualenv: apt-get install python3-venv"; exit 1; }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	@touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed-run
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

docker-ready:
	@docker info > /dev/null 2>&1 || { echo "error: the Docker engine does not answer."; \
	  echo "  On Debian: apt-get install docker.io && dockerd --bridge=none &"; exit 1; }

base-image: $(VENV)/.installed-run docker-ready
	$(HQ) base-image build --tag $(BASE_IMAGE)

images: base-image
	@for dir in scripts/*/; do $(HQ) script build $$dir --base $(BASE_IMAGE) || exit 1; done

# -- the two commands --------------------------------------------------------------------------
PORT ?= 8080
DASH_PORT ?= 8050
run: images
	$(HQ) standalone --publish-examples --port $(PORT) --dash-port $(DASH_PORT)

test: infra $(VENV)/.installed-dev lint typecheck
	$(BIN)/pytest -p no:dash -ra --durations=15 tests

# -- parts of test -----------------------------------------------------------------------------
infra:
	bash tests/infra/up.sh

lint: $(VENV)/.installed-dev
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

typecheck: $(VENV)/.installed-dev
	$(BIN)/mypy --strict hq agent

bench: infra $(VENV)/.installed-dev
	$(BIN)/python bench/queue.py
	$(BIN)/python bench/containers.py
	$(BIN)/python bench/dash.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache test-artifacts
