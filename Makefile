# Two commands for a fresh machine:
#   make run    the embedded service (SQLite + local folder + a local worker), on http://127.0.0.1:8000
#   make test   lint, types, import rules, the docs site and the whole test suite (needs Postgres and Redis on localhost)
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

TS     := tests/contract/ts

.PHONY: run test lint docs install install-ts clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	# torch first, pinned: the CPU wheel that lies on this machine's disk (any other version downloads GBs).
	$(PY) -m pip install -q torch==2.13.0
	$(PY) -m pip install -q -e '.[engine,bench,dev]'
	touch $(STAMP)

install: $(STAMP)

# The TypeScript contract check's tools (openapi-typescript, typescript), where Node is installed: without it the
# test is skipped, and fails under CI=true.
$(TS)/node_modules/.package-lock.json: $(TS)/package-lock.json
	@if command -v npm >/dev/null 2>&1; then cd $(TS) && npm ci --no-audit --no-fund || echo "npm ci failed"; \
	else echo "no npm: tests/contract/test_contract_typescript.py will be skipped (fails under CI=true)"; fi

install-ts: $(TS)/node_modules/.package-lock.json

run: $(STAMP)
	$(PY) -m worker.embedded

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy
	$(VENV)/bin/lint-imports

# The docs site (mkdocs.yml): --strict turns a broken link or anchor, or a page missing from the nav, into a failure.
# NO_MKDOCS_2_WARNING silences mkdocs-material's banner about MkDocs 2.0 (a notice, not a build warning).
docs: $(STAMP)
	NO_MKDOCS_2_WARNING=1 $(VENV)/bin/mkdocs build --strict --site-dir site

test: lint docs install-ts
	$(VENV)/bin/pytest -q -ra

clean:
	rm -rf $(VENV) site .mypy_cache .ruff_cache .pytest_cache $(TS)/node_modules $(TS)/generated
