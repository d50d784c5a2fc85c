# StyleFusion: make install | run | test | bench
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8080

.PHONY: install install-dev run test lint bench bench-gpu clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e '.[dev,cluster]'
	touch $(VENV)/.installed $@

install: $(VENV)/.installed

install-dev: $(VENV)/.installed-dev

run: install
	$(BIN)/stylefusion-server --host $(HOST) --port $(PORT) --models-dir models --data-dir var

lint: install-dev
	$(BIN)/ruff check stylefusion server tests bench docs
	$(BIN)/ruff format --check stylefusion server tests bench docs

# two workers (CI has 2 cores); a file's tests stay on one worker (they share its fixtures)
TEST_WORKERS ?= 2
test: install-dev lint
	$(BIN)/python -m pytest -q -ra -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder

bench: install
	$(BIN)/python bench/run.py --output bench/results.json

# every GPU check (on a lent GPU box; no install there): PART=1|2, DRY=1 for the CPU dry run
bench-gpu:
	bench/gpu.sh $(if $(DRY),--dry-run) $(PART)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
