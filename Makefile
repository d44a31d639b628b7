# The two commands of the README: `make demo` (set up, generate sample data, summarise it into PostgreSQL)
# and `make test` (set up, run the whole test suite). Everything else here serves those two.
VENV ?= .venv
PYTHON ?= python3
OCP_ASSETS_DSN ?= postgresql://postgres@127.0.0.1:5432/postgres
DEMO_DATA ?= var/demo-data
DEMO_SCHEMA ?= org1234567
export OCP_ASSETS_DSN

.PHONY: setup demo test benchmark ui

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
