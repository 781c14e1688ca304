# Two commands do all the set-up on a fresh machine:
#   make demo   replay the study's incidents against the guard, with a no-guard control (main job)
#   make test   lint, type-check and every test (what CI runs)
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[dev]'
	touch $@

demo: $(VENV)/.installed
	$(BIN)/peerguard bench examples/scenarios

test: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest

bench: $(VENV)/.installed
	$(BIN)/python benchmarks/decision_time.py
	$(BIN)/python benchmarks/integration_overhead.py
	$(BIN)/python benchmarks/snapshot.py --big-mib 256 --small 2000

clean:
	rm -rf $(VENV) build dist *.egg-info .mypy_cache .ruff_cache .pytest_cache .hypothesis
