# HQ: `make run` starts HQ on this machine; `make test` runs the whole suite on real parts;
# `make check` is the quick loop (lint, types, unit and SQLite integration tests: no root, no
# Docker, no PostgreSQL); `make format` rewrites what ruff can fix.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HQ := $(BIN)/hq
BASE_IMAGE ?= hq-base:bookworm
SOURCES := hq agent dash_app tests bench

.PHONY: run test check format lint typecheck bench images base-image infra clean docker-ready

# -- set-up ------------------------------------------------------------------------------------
$(VENV)/.installed-run: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV) || { \
	  echo "error: could not create a virtualenv: apt-get install python3-venv"; exit 1; }
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e .
	@touch $@

# `test`: the checkers and the test suite's tools; `dev`: those and the benchmarks' baselines.
$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed-run
	$(BIN)/pip install -q -e '.[test]'
	@touch $@

$(VENV)/.installed-dev: pyproject.toml $(VENV)/.installed-test
	$(BIN)/pip install -q -e '.[dev]'
	@touch $@

# The host's part of `make run` (as root: apt installs what is missing and starts the engine;
# otherwise it prints the commands to run and stops). The same script serves tests/infra/up.sh.
docker-ready:
	@PYTHON=$(PYTHON) bash images/host-setup.sh run

base-image: $(VENV)/.installed-run docker-ready
	$(HQ) base-image build --tag $(BASE_IMAGE)

images: base-image
	@for dir in scripts/*/; do [ -f $${dir}hq.yaml ] || continue; $(HQ) script build $$dir --base $(BASE_IMAGE) || exit 1; done

# -- the two commands --------------------------------------------------------------------------
PORT ?= 8080
DASH_PORT ?= 8050
run: docker-ready images
	$(HQ) standalone --publish-examples --port $(PORT) --dash-port $(DASH_PORT)

# The suite runs in TEST_WORKERS pytest-xdist workers, a test file per worker at a time (a file's
# module-scoped server stays one), in collection order: tests/e2e's long files first, the many
# short unit files last to fill the gaps. Most tests wait on real processes: two share two cores.
TEST_WORKERS ?= 2
test: infra $(VENV)/.installed-dev lint typecheck
	$(BIN)/pytest -p no:dash -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder -ra --durations=25 tests

# -- the quick loop ----------------------------------------------------------------------------
# Tests that need PostgreSQL, Docker or Chromium are deselected by marker (tests/conftest.py
# gives the markers); pytest's exit 5, no test selected, fails it like any other failure.
CHECK_MARKS := not slow and not postgresql and not docker and not browser
check: lint typecheck
	$(BIN)/pytest -p no:dash -q -m "$(CHECK_MARKS)" tests/unit tests/integration

format: $(VENV)/.installed-test
	$(BIN)/ruff format $(SOURCES)
	$(BIN)/ruff check --fix $(SOURCES)

# -- parts of test and check -------------------------------------------------------------------
infra:
	bash tests/infra/up.sh

lint: $(VENV)/.installed-test
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

typecheck: $(VENV)/.installed-test
	$(BIN)/mypy --strict hq agent dash_app

bench: infra $(VENV)/.installed-dev
	$(BIN)/python -m bench.queue_speed
	$(BIN)/python -m bench.containers
	$(BIN)/python -m bench.dash
	$(BIN)/python -m bench.warm
	$(BIN)/python -m bench.fleet

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache test-artifacts
