# The two commands of the README: `make demo` (set up, then python -m ocp_assets.quickstart: sample data summarised
# through Dagster into PostgreSQL, and a report) and `make test` (set up, run the whole test suite). `make ui` opens
# the Dagster UI over the demo data. PostgreSQL is $OCP_ASSETS_DSN when set, else an embedded server whose data lives
# in $(STATE_DIR)/pgdata (ocp_assets/local_postgres.py); nothing here sets a DSN.
VENV ?= .venv
PYTHON ?= python3
STATE_DIR ?= $(or $(OCP_ASSETS_STATE_DIR),var)
DEMO_DATA ?= $(STATE_DIR)/demo-data
UI_PORT ?= 3000
DAGSTER_HOME_DIR ?= $(abspath $(STATE_DIR))/dagster-home
DAGSTER_DB ?= dagster
DEMO_START_DATE ?= 2026-10-01

.PHONY: setup demo test test-fast test-db browser lint benchmark benchmark-dagster ui

setup: $(VENV)/.installed

# pip's own progress is shown: the first install takes a few minutes (Dagster, pyarrow, pandas, PostgreSQL's wheel).
$(VENV)/.installed: pyproject.toml setup.py
	@echo "== installing ocp_assets and its dependencies into $(VENV) (first run only, a few minutes)"
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install --progress-bar on -e '.[test]'
	touch $@
	@echo "== installed; the command line is $(VENV)/bin/ocp-assets (or: . $(VENV)/bin/activate)"

# `make demo UI=1` serves the Dagster UI afterwards (Ctrl-C stops it).
demo: setup
	$(VENV)/bin/python -m ocp_assets.quickstart --state-dir $(STATE_DIR) $(if $(UI),--ui --port $(UI_PORT))

# ruff's rules and formatting, and ty's type check of the package (settings in pyproject.toml); `make test` runs the
# same gate as ocp_assets_tests/test_lint.py.
lint: setup
	$(VENV)/bin/ruff check ocp_assets ocp_assets_tests scripts
	$(VENV)/bin/ruff format --check ocp_assets ocp_assets_tests scripts
	$(VENV)/bin/ty check --python $(VENV)

# PostgreSQL: $OCP_ASSETS_TEST_DSN, else the machine's on 127.0.0.1:5432, else an embedded server whose data lives in
# test-postgres/ under $OCP_ASSETS_STATE_DIR or var/ (ocp_assets_tests/shared_postgres.py).
test: setup browser
	$(VENV)/bin/python -m pytest -q

# The test layers (ocp_assets_tests/conftest.py): the fast one has no PostgreSQL and no process (seconds); test-db adds
# PostgreSQL and Dagster in process, everything but the end-to-end tests (slow: processes, browser, nise); `make test`
# runs all three.
test-fast: setup
	$(VENV)/bin/python -m pytest -q -m fast

test-db: setup
	$(VENV)/bin/python -m pytest -q -m "not slow"

# The UI test's Chromium: found, or installed from Debian's packages when root with apt-get, or one line saying how.
browser:
	scripts/ensure_chromium.sh

# The benchmark (scripts/benchmark.py): per scale, `ocp-assets summarize`, ingest and --help, and DuckDB and koku's SQL
# (the project's port) on the same Parquet, alternating, each run a fresh process; medians of $(REPEAT) runs. Report:
# docs/benchmarks/latest.md, .json, .svg. The large scales: make benchmark SCALES="100k 1m 10m day100k" (nise needs
# about 10 min for 10m the first time; its payload is cached).
SCALES ?= 100k 1m
REPEAT ?= 5
benchmark: setup
	$(VENV)/bin/python scripts/benchmark.py --scale "$(SCALES)" --repeat $(REPEAT)

# The 1m scale as one Dagster run over its 3 days (multiprocess executor, then in_process for comparison), then the
# UI's timings through dagster dev on a month of two clusters (sensor first pass, 30-day backfill, rewritten file).
# Report: docs/benchmarks/dagster.md, .json.
benchmark-dagster: setup
	$(VENV)/bin/python scripts/benchmark.py --scale 1m --measures none --dagster --ui --repeat 3 \
	  --executor multiprocess,in_process --name dagster

# Dagster's own storage goes to database $(DAGSTER_DB) on the same server as koku's tables (created if missing), never
# koku's tenant schemas. The day partitions start on the first day of the demo data's month. Dagster's own output
# goes to $(DAGSTER_HOME_DIR)/ui-console.log; `make ui VERBOSE=1` shows it on the terminal.
ui: setup
	[ -d $(DEMO_DATA)/data ] || $(MAKE) demo
	$(VENV)/bin/python -m ocp_assets.ui --data-root $(DEMO_DATA) --home $(DAGSTER_HOME_DIR) --database $(DAGSTER_DB) \
	  --start-date $(DEMO_START_DATE) --port $(UI_PORT) --state-dir $(STATE_DIR) $(if $(VERBOSE),--verbose)
