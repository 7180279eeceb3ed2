# Two set-up commands (see README.md): `make demo` and `make test`.
# Both create their own virtual environment in .venv, so they work where the
# system pip refuses installs (PEP 668).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit docs bench compare clean

$(STAMP): pyproject.toml
	@./scripts/make-venv $(PYTHON) $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP)

demo: $(STAMP)
	$(BIN)/chronolog demo --seconds $(or $(SECONDS),20)

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy --strict src

# The PostgreSQL tests start a throw-away server: its programs are installed
# if missing (as root, from the distribution's packages). Without them the
# tests that need it are skipped -- except in CI, where they fail.
unit: $(STAMP)
	@./scripts/ensure-postgres || echo "PostgreSQL is missing: its tests will be skipped (fail in CI)"
	$(BIN)/python -m pytest -q

docs: $(STAMP)
	$(BIN)/mkdocs build --strict --site-dir $(VENV)/site

test: lint typecheck unit docs

bench: $(STAMP)
	$(BIN)/python benchmarks/replay.py
	$(BIN)/python benchmarks/triggers.py
	$(BIN)/python benchmarks/runtime.py
	$(BIN)/python benchmarks/durability.py
	$(BIN)/python benchmarks/cli.py
	$(BIN)/python benchmarks/simulation.py
	$(BIN)/python benchmarks/metrics.py

# chronolog side by side with APScheduler (docs/benchmarks.md): APScheduler 3
# and 4 cannot share an environment, so each gets its own (a .gitignore
# inside keeps git from listing them); matplotlib draws the plot. The JSON
# and the plot land in $(VENV)/; COMPARE_ARGS passes options, such as
# COMPARE_ARGS="--size smoke" or "--only dispatch --rounds 5".
APS3 := .venv-aps3
APS4 := .venv-aps4

$(APS3)/.installed:
	@./scripts/make-venv $(PYTHON) $(APS3)
	@echo '*' > $(APS3)/.gitignore
	$(APS3)/bin/python -m pip install --quiet 'apscheduler==3.11.*'
	@touch $@

$(APS4)/.installed:
	@./scripts/make-venv $(PYTHON) $(APS4)
	@echo '*' > $(APS4)/.gitignore
	$(APS4)/bin/python -m pip install --quiet 'apscheduler[sqlalchemy]==4.0.0a6' aiosqlite trio
	@touch $@

$(VENV)/.matplotlib: $(STAMP)
	$(BIN)/python -m pip install --quiet matplotlib
	@touch $@

compare: $(STAMP) $(VENV)/.matplotlib $(APS3)/.installed $(APS4)/.installed
	$(BIN)/python benchmarks/compare.py --plot $(VENV)/compare.png $(COMPARE_ARGS) > $(VENV)/compare.json
	@echo "compare: results in $(VENV)/compare.json, plot in $(VENV)/compare.png"

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
