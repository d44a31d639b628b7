"""db init creates koku's five cost-model tables in a new schema (contract 8.2) and never alters existing ones."""

import datetime as dt
import json
import uuid

import pytest
from psycopg import sql

from ocp_assets.core.costs.rates import load_cost_model, resolve_rates
from ocp_assets.core.pgschema import init_schema

COST_TABLES = ["cost_model", "cost_model_map", "price_list", "price_list_cost_model_map", "cost_model_rate"]
TS = "timestamp with time zone"
# koku's columns in koku's column order (cost_models/models.py; fields added by later migrations come last), with
# (type, nullable): TextField text, CharField varchar(n), JSONField jsonb, DecimalField(33, 15) numeric(33,15),
# PositiveIntegerField and AutoField integer; only CostModelMap.cost_model and Rate.default_rate are null=True.
KOKU_COLUMNS = {
    "cost_model": [
        ("uuid", "uuid", False), ("name", "text", False), ("description", "text", False),
        ("source_type", "character varying(50)", False), ("created_timestamp", TS, False),
        ("updated_timestamp", TS, False), ("rates", "jsonb", False), ("markup", "jsonb", False),
        ("distribution", "text", False), ("currency", "text", False), ("distribution_info", "jsonb", False),
    ],
    "cost_model_map": [("id", "integer", False), ("provider_uuid", "uuid", False), ("cost_model_id", "uuid", True)],
    "price_list": [
        ("uuid", "uuid", False), ("name", "text", False), ("description", "text", False), ("currency", "text", False),
        ("effective_start_date", "date", False), ("effective_end_date", "date", False), ("enabled", "boolean", False),
        ("version", "integer", False), ("rates", "jsonb", False), ("created_timestamp", TS, False),
        ("updated_timestamp", TS, False),
    ],
    "price_list_cost_model_map": [
        ("id", "integer", False), ("priority", "integer", False), ("cost_model_id", "uuid", False),
        ("price_list_id", "uuid", False),
    ],
    "cost_model_rate": [
        ("uuid", "uuid", False), ("custom_name", "character varying(50)", False), ("description", "text", False),
        ("metric", "character varying(100)", False), ("metric_type", "character varying(20)", False),
        ("cost_type", "character varying(20)", False), ("default_rate", "numeric(33,15)", True),
        ("tag_key", "character varying(253)", False), ("tag_values", "jsonb", False),
        ("created_timestamp", TS, False), ("updated_timestamp", TS, False), ("price_list_id", "uuid", False),
    ],
}  # fmt: skip
# koku's index names (Meta.indexes of CostModel, PriceList and Rate).
KOKU_INDEXES = {
    "cost_model": {"name_idx", "source_type_idx", "updated_timestamp_idx"},
    "price_list": {"price_list_name_idx", "price_list_validity_idx"},
    "cost_model_rate": {"rate_price_list_idx", "rate_custom_name_idx", "rate_metric_idx"},
}


def _columns(conn, schema: str, table: str) -> list[tuple]:
    return conn.execute(
        "SELECT column_name, CASE WHEN data_type = 'character varying' THEN format('character varying(%%s)', "
        "character_maximum_length) WHEN data_type = 'numeric' THEN format('numeric(%%s,%%s)', numeric_precision, "
        "numeric_scale) ELSE data_type END, is_nullable = 'YES' FROM information_schema.columns"
        " WHERE table_schema = %s AND table_name = %s ORDER BY ordinal_position",
        (schema, table),
    ).fetchall()


def _constraints(conn, schema: str, table: str) -> set[str]:
    rows = conn.execute(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c WHERE c.conrelid = %s::regclass AND c.contype <> 'n'",
        (f'"{schema}".{table}',),
    ).fetchall()
    return {definition.replace(f"{schema}.", "") for (definition,) in rows}


def _indexes(conn, schema: str, table: str) -> set[str]:
    rows = conn.execute("SELECT indexname FROM pg_indexes WHERE schemaname = %s AND tablename = %s", (schema, table))
    return {name for (name,) in rows}


def _shape(conn, schema: str, table: str) -> tuple:
    return _columns(conn, schema, table), _constraints(conn, schema, table), _indexes(conn, schema, table)


def _catalog(conn, schema: str) -> dict:
    """Everything db init could change about the cost tables: columns, defaults, constraints, indexes."""
    defaults = conn.execute(
        "SELECT table_name, column_name, column_default FROM information_schema.columns WHERE table_schema = %s"
        " AND table_name = ANY(%s) ORDER BY 1, 2",
        (schema, COST_TABLES),
    ).fetchall()
    tables = {table: _shape(conn, schema, table) for table in COST_TABLES}
    return {"defaults": defaults, **tables}


def _drop_cost_tables(conn, schema: str) -> None:
    names = sql.SQL(", ").join(sql.Identifier(schema, t) for t in reversed(COST_TABLES))
    conn.execute(sql.SQL("DROP TABLE {}").format(names))


@pytest.fixture
def fresh(dsn):
    import psycopg

    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            yield conn, schema
        finally:
            conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema)))


def test_db_init_creates_kokus_cost_model_tables_in_a_new_schema(fresh):
    conn, schema = fresh
    created = init_schema(conn, schema)
    assert [t for t in created if t in COST_TABLES] == COST_TABLES  # referenced tables first
    for table in COST_TABLES:
        assert _columns(conn, schema, table) == KOKU_COLUMNS[table], table
        assert KOKU_INDEXES.get(table, set()) <= _indexes(conn, schema, table)
    assert _constraints(conn, schema, "cost_model_map") == {
        "PRIMARY KEY (id)",
        "UNIQUE (provider_uuid, cost_model_id)",
        "FOREIGN KEY (cost_model_id) REFERENCES cost_model(uuid) DEFERRABLE INITIALLY DEFERRED",
    }
    assert _constraints(conn, schema, "price_list_cost_model_map") == {
        "PRIMARY KEY (id)",
        "UNIQUE (price_list_id, cost_model_id)",
        "CHECK ((priority >= 0))",
        "FOREIGN KEY (cost_model_id) REFERENCES cost_model(uuid) DEFERRABLE INITIALLY DEFERRED",
        "FOREIGN KEY (price_list_id) REFERENCES price_list(uuid) DEFERRABLE INITIALLY DEFERRED",
    }
    assert _constraints(conn, schema, "price_list") == {"PRIMARY KEY (uuid)", "CHECK ((version >= 0))"}
    assert _constraints(conn, schema, "cost_model_rate") == {
        "PRIMARY KEY (uuid)",
        "UNIQUE (price_list_id, custom_name)",
        "FOREIGN KEY (price_list_id) REFERENCES price_list(uuid) DEFERRABLE INITIALLY DEFERRED",
    }
    assert _constraints(conn, schema, "cost_model") == {"PRIMARY KEY (uuid)"}


def test_a_cost_model_written_by_hand_with_the_defaults_is_what_the_cost_steps_read(fresh):
    """The standalone product: rows inserted with only the required columns get koku's model defaults (cpu, USD, {}),
    and rates.py resolves them: one tag rate valid in October."""
    conn, schema = fresh
    init_schema(conn, schema)
    source = str(uuid.uuid4())
    s = sql.Identifier(schema)
    model = conn.execute(
        sql.SQL(
            "INSERT INTO {}.cost_model (name, description, source_type) VALUES ('m', '', 'OCP') RETURNING *"
        ).format(s)
    ).fetchone()
    assert model[6:] == ({}, {}, "cpu", "USD", {})  # rates, markup, distribution, currency, distribution_info
    conn.execute(sql.SQL("INSERT INTO {}.cost_model_map (provider_uuid, cost_model_id) VALUES (%s, %s)").format(s),
                 (source, model[0]))  # fmt: skip
    prod = {"tag_value": "prod", "value": "310", "default": False}
    tag_rate = {"metric": {"name": "project_per_month"}, "cost_type": "Infrastructure",
                "tag_rates": {"tag_key": "env", "tag_values": [prod]}}  # fmt: skip
    price_list = conn.execute(
        sql.SQL(
            "INSERT INTO {}.price_list (name, description, currency, effective_start_date, effective_end_date, rates)"
            " VALUES ('p', '', 'USD', '2026-10-01', '2026-10-31', %s) RETURNING uuid, enabled, version"
        ).format(s),
        (json.dumps([tag_rate]),),
    ).fetchone()
    assert price_list[1:] == (True, 1)
    conn.execute(
        sql.SQL("INSERT INTO {}.price_list_cost_model_map (price_list_id, cost_model_id, priority) VALUES (%s, %s, 0)")
        .format(s), (price_list[0], model[0]),
    )  # fmt: skip
    rate = conn.execute(
        sql.SQL(
            "INSERT INTO {}.cost_model_rate (price_list_id, custom_name, metric, metric_type, cost_type, tag_key)"
            " VALUES (%s, 'r', 'project_per_month', 'cpu', 'Infrastructure', 'env') RETURNING description, tag_values"
        ).format(s),
        (price_list[0],),
    ).fetchone()
    assert rate == ("", [])
    resolved = resolve_rates(load_cost_model(conn, schema, source), dt.date(2026, 10, 1))
    # The list is effective in October; its tag rate is the project call's parameter set (8.2 step 3).
    assert resolved.tag_rates == {
        "project_per_month": [{"rate_type": "Infrastructure", "tag_key": "env", "value_rates": {"prod": 310.0}}]
    }
    assert resolved.distribution == "cpu" and resolved.gpu_unallocated is False


def test_a_second_db_init_changes_nothing(fresh):
    conn, schema = fresh
    init_schema(conn, schema)
    before = _catalog(conn, schema)
    assert init_schema(conn, schema) == []
    assert _catalog(conn, schema) == before


def test_existing_cost_model_tables_are_only_read(fresh, dsn, capsys):
    """A koku schema whose cost tables exist (here in koku's own shape: no column defaults, and a column of a later
    koku) keeps them exactly, rows included; db init says all tables are present."""
    from ocp_assets.cli import main

    conn, schema = fresh
    init_schema(conn, schema)
    s = sql.Identifier(schema)
    _drop_cost_tables(conn, schema)
    kokus_shape = ("CREATE TABLE {}.cost_model (uuid uuid PRIMARY KEY, name text NOT NULL, description text NOT NULL,"
                   " source_type varchar(50) NOT NULL, later_koku_column integer)")  # fmt: skip
    conn.execute(sql.SQL(kokus_shape).format(s))
    for table in COST_TABLES[1:]:
        conn.execute(sql.SQL("CREATE TABLE {}.{} (id integer)").format(s, sql.Identifier(table)))
    conn.execute(sql.SQL("INSERT INTO {}.cost_model VALUES (gen_random_uuid(), 'kept', '', 'OCP', 7)").format(s))
    before = _catalog(conn, schema)

    assert main(["db", "init", "--dsn", dsn, "--schema", schema]) == 0
    assert capsys.readouterr().out.strip() == f"schema {schema}: all tables already present"
    assert _catalog(conn, schema) == before
    assert conn.execute(sql.SQL("SELECT name, later_koku_column FROM {}.cost_model").format(s)).fetchall() == [
        ("kept", 7)
    ]


def test_a_koku_schema_without_cost_tables_gets_them_only_on_request_with_a_note(pg, dsn, capsys):
    """Like every koku table db init adds to a schema koku manages: created when asked, and said on stderr."""
    from ocp_assets.cli import main

    conn, schema = pg
    _drop_cost_tables(conn, schema)
    assert main(["db", "init", "--dsn", dsn, "--schema", schema]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"schema {schema}: created {', '.join(COST_TABLES)}"
    assert captured.err.startswith(f"ocp-assets: note: {', '.join(COST_TABLES)} added to schema {schema}")
    for table in COST_TABLES:
        assert _columns(conn, schema, table) == KOKU_COLUMNS[table]
