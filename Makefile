# One-command workflows (see README.md). Everything installs into ./.venv.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo serve test bench lint install install-dev install-wheel clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Installs the package with every runtime extra (service, Redis, plots, CLI).
install: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[all]'

# Adds the test and lint tools (editable: for working on the code).
install-dev: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev]'

# The wheel and sdist built from this tree into dist/, and the wheel installed (not -e) with
# the dev extra: what `make test` tests.
install-wheel: $(BIN)/python
	rm -rf dist
	$(BIN)/python -m pip install --quiet 'build>=1.0'
	$(BIN)/python -m build --sdist --wheel --outdir dist . >/dev/null
	$(BIN)/python -m pip install --quiet "$$(ls dist/tsbandit-*.whl)[dev]"
	$(BIN)/python -m pip install --quiet --force-reinstall --no-deps dist/tsbandit-*.whl

# The main job: starts `tsbandit serve` on the embedded SQLite store (./tsbandit.db), sends
# simulated customers through its HTTP API, prints what it learned, and stops it.
demo: install
	$(BIN)/tsbandit demo

# The decision service in the foreground on http://127.0.0.1:8000 (./tsbandit.db).
serve: install
	$(BIN)/tsbandit serve

# The whole test suite (the same command CI runs), against the installed wheel.
test: install-wheel
	TSBANDIT_TEST_DIST=dist $(BIN)/python -m pytest

# One benchmark (default bench_core; e.g. `make bench BENCH=bench_lab ARGS=--quick`): each
# prints its table of side-by-side ratios (benchmarks/harness.py).
BENCH ?= bench_core
bench: install-dev
	$(BIN)/python benchmarks/$(BENCH).py $(ARGS)

lint: install-dev
	$(BIN)/ruff check src tests benchmarks

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .ruff_cache .mypy_cache
