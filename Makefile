# Embedded mode needs nothing but Python 3.11+; `make test` needs PostgreSQL and Redis (see README).
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run test lint demo-data clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

## Install, migrate the SQLite database, load the demo, serve with a Celery worker.
run: install
	$(BIN)/realunify-board run --host $(HOST) --port $(PORT)

## Lint, type-check and run the tests against PostgreSQL, Redis and a real worker.
test: install lint
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check app workers tests migrations
	$(BIN)/mypy

## Rebuild the demo benchmark and baselines (deterministic: the files must not change).
demo-data: install
	$(BIN)/python -m app.demo.build demo

clean:
	rm -rf var .pytest_cache .mypy_cache .ruff_cache
