# Two set-up commands (see README.md): `make demo` and `make test`.
# Both create their own virtual environment in .venv, so they work where the
# system pip refuses installs (PEP 668).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint typecheck unit docs bench clean

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

unit: $(STAMP)
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

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis
