# The README's two set-up commands: `make demo` (main job) and `make test` (tests).
# Both create the virtual environment from nothing on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

STAGE := build/stage

.PHONY: setup demo test test-all bench lint stage clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip "setuptools>=77" wheel
	# The cached CPU build first, so that no range below pulls a multi-GB CUDA build.
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[test,ray,bench]"
	touch $(STAMP)

setup: $(STAMP)

demo: setup
	$(BIN)/python -m dtasm_opt.demo

test: setup
	$(BIN)/python -m pytest -q -m "not slow"

test-all: setup
	$(BIN)/python -m pytest -q

bench: setup
	$(BIN)/python benchmarks/bench_simulator.py --quick

# mypy and import-linter read source trees and do not follow setuptools' package-dir mapping:
# they run on a copy with models/ and solvers/ inside dtasm_opt/, as installed.
stage:
	rm -rf $(STAGE) && mkdir -p $(STAGE)
	cp -r dtasm_opt $(STAGE)/dtasm_opt
	cp -r models $(STAGE)/dtasm_opt/models
	cp -r solvers $(STAGE)/dtasm_opt/solvers
	find $(STAGE) -name __pycache__ -prune -exec rm -rf {} +

lint: setup stage
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	cd $(STAGE) && ../../$(BIN)/mypy --config-file ../../pyproject.toml
	cd $(STAGE) && PYTHONPATH=. ../../$(BIN)/lint-imports ../../pyproject.toml

clean:
	rm -rf $(VENV) out build .pytest_cache
