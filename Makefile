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
export OCP_ASSETS_DSN

.PHONY: setup demo test benchmark benchmark-dagster ui

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

test: setup
	$(VENV)/bin/python -m pytest -q

benchmark: setup
	$(VENV)/bin/python -m ocp_assets.benchmark --scale 1m

# The same input as one Dagster run over its 3 days (forkserver executor, then in_process for comparison).
benchmark-dagster: setup
	$(VENV)/bin/python -m ocp_assets.benchmark --scale 1m --dagster --repeat 3 --executor forkserver,in_process

# Dagster's own storage goes to database $(DAGSTER_DB) (created if missing), never koku's tenant schemas.
ui: setup
	[ -d $(DEMO_DATA)/data ] || $(MAKE) demo
	mkdir -p $(DAGSTER_HOME_DIR) && cp dagster.yaml $(DAGSTER_HOME_DIR)/dagster.yaml
	psql -h 127.0.0.1 -U postgres -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$(DAGSTER_DB)'" | grep -q 1 \
	  || createdb -h 127.0.0.1 -U postgres $(DAGSTER_DB)
	DAGSTER_HOME=$(DAGSTER_HOME_DIR) OCP_ASSETS_DATA_ROOT=$(CURDIR)/$(DEMO_DATA) OCP_ASSETS_IO_ROOT=$(CURDIR)/var/dagster-io \
	  OCP_ASSETS_DAGSTER_PG_HOST=127.0.0.1 OCP_ASSETS_DAGSTER_PG_PORT=5432 OCP_ASSETS_DAGSTER_PG_USER=postgres \
	  OCP_ASSETS_DAGSTER_PG_PASSWORD= OCP_ASSETS_DAGSTER_PG_DB=$(DAGSTER_DB) \
	  $(VENV)/bin/dagster dev -w workspace.yaml -h 127.0.0.1 -p $(UI_PORT)
