# Two commands for a fresh machine:
#   make run    the embedded service (SQLite + local folder + a local worker), on http://127.0.0.1:8000
#   make test   lint, types, import rules and the whole test suite (needs Postgres and Redis on localhost)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: run test lint install clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: the CPU wheel that lies on this machine's disk (any other version downloads GBs).
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[engine,bench,dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(PY) -m worker.embedded

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

test: lint
	$(VENV)/bin/pytest -q -ra

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache
