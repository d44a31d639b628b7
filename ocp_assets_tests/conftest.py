"""Shared fixtures: a real PostgreSQL connection and a throw-away koku tenant schema per test."""

import uuid

import psycopg
import pytest

from ocp_assets.core.pgschema import init_schema
from ocp_assets_tests import shared_postgres


def pytest_sessionfinish(session, exitstatus):
    # Here rather than in the fixture's teardown: the reference SQL (reference/koku_sql.py) may resolve it too.
    shared_postgres.release()


def pytest_terminal_summary(terminalreporter):
    terminalreporter.write_line(f"PostgreSQL of the tests: {shared_postgres.describe()}")


@pytest.fixture(scope="session")
def dsn() -> str:
    """$OCP_ASSETS_TEST_DSN, else the machine's PostgreSQL on 127.0.0.1:5432, else the embedded server."""
    try:
        resolved = shared_postgres.session_dsn()
        psycopg.connect(resolved, connect_timeout=5).close()
    except (psycopg.OperationalError, RuntimeError) as exc:
        pytest.fail(f"no PostgreSQL for the tests: {exc}")
    return resolved


@pytest.fixture
def pg(dsn):
    """An autocommit connection and a fresh schema with koku's tables, dropped afterwards."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        init_schema(conn, schema)
        try:
            yield conn, schema
        finally:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
