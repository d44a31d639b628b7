# The two commands of the README: `make demo` (set up, generate sample data, summarise it into PostgreSQL)
# and `make test` (set up, run the whole test suite). `make ui` opens the Dagster UI over the demo data.
VENV ?= .venv
PYTHON ?= python3
OCP_ASSETS_DSN ?= postgresql://postgres@127.0.0.1:5432/postgres
DEMO_DATA ?= var/demo-data
DEMO_SCHEMA ?= org1234567
UI_PORT ?= 3000
DAGSTER_HOME_DIR ?= $(CURDIR)/var/dagster-home
DAGSTER_DB ?= dagster
DEMO_START_DATE ?= 2026-10-01
export OCP_ASSETS_DSN

.PHONY: setup demo test lint benchmark benchmark-dagster ui

setup: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml setup.py
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[test]'
	touch $@

demo: setup
	$(VENV)/bin/ocp-assets generate --scale 100k --out $(DEMO_DATA) --account $(DEMO_SCHEMA)
	$(VENV)/bin/ocp-assets db init --schema $(DEMO_SCHEMA)
	$(VENV)/bin/ocp-assets summarize --data-root $(DEMO_DATA) --schema $(DEMO_SCHEMA) --all-clusters

# ruff's rules and formatting (settings in pyproject.toml); `make test` runs the same gate as ocp_assets_tests/test_lint.py.
lint: setup
	$(VENV)/bin/ruff check ocp_assets ocp_assets_tests scripts
	$(VENV)/bin/ruff format --check ocp_assets ocp_assets_tests scripts

test: setup
	$(VENV)/bin/python -m pytest -q

benchmark: setup
	$(VENV)/bin/python scripts/benchmark.py --scale 1m

# The same input as one Dagster run over its 3 days (multiprocess executor, then in_process for comparison), then the
# UI's timings through dagster dev on a month of two clusters (sensor first pass, 30-day backfill, rewritten file).
benchmark-dagster: setup
	$(VENV)/bin/python scripts/benchmark.py --scale 1m --dagster --repeat 3 --executor multiprocess,in_process
	$(VENV)/bin/python scripts/benchmark_ui.py --repeat 3

# Dagster's own storage goes to database $(DAGSTER_DB) on OCP_ASSETS_DSN's server (created if missing), never koku's
# tenant schemas. The day partitions start on the first day of the demo data's month.
ui: setup
	[ -d $(DEMO_DATA)/data ] || $(MAKE) demo
	$(VENV)/bin/python -m ocp_assets.ui --data-root $(DEMO_DATA) --home $(DAGSTER_HOME_DIR) --database $(DAGSTER_DB) \
	  --start-date $(DEMO_START_DATE) --port $(UI_PORT)
