"""Shared fixtures: a real PostgreSQL connection and a throw-away koku tenant schema per test."""

import os
import uuid

import psycopg
import pytest

from ocp_assets.core.pgschema import init_schema

TEST_DSN = os.environ.get("OCP_ASSETS_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")


@pytest.fixture(scope="session")
def dsn() -> str:
    try:
        psycopg.connect(TEST_DSN, connect_timeout=5).close()
    except psycopg.OperationalError as exc:
        pytest.fail(f"PostgreSQL is not reachable at {TEST_DSN}: {exc} (.ci/run starts it)")
    return TEST_DSN


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
