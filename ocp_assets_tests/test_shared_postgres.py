"""Which PostgreSQL the tests use: $OCP_ASSETS_TEST_DSN, else the machine's on 127.0.0.1:5432, else the embedded one."""

import psycopg
import pytest

from ocp_assets import local_postgres
from ocp_assets_tests import shared_postgres

UNREACHABLE = "postgresql://postgres@127.0.0.1:1/postgres"  # port 1: refused at once, as on a machine without one


@pytest.fixture(name="unresolved")
def unresolved_fixture(monkeypatch, tmp_path):
    """The resolver as at the start of a session, its embedded server's state in tmp_path; the session's own
    resolution (module state) is put back afterwards by monkeypatch, never released here."""
    for name in ("_resolved", "_embedded", "_described"):
        monkeypatch.setattr(shared_postgres, name, getattr(shared_postgres, name))
    monkeypatch.setattr(shared_postgres, "_resolved", None)
    monkeypatch.setattr(shared_postgres, "_embedded", None)
    monkeypatch.setenv(local_postgres.STATE_DIR_ENV, str(tmp_path))
    monkeypatch.delenv(shared_postgres.TEST_DSN_ENV, raising=False)
    return tmp_path


def test_a_configured_dsn_wins_without_a_connection(unresolved, monkeypatch):
    monkeypatch.setenv(shared_postgres.TEST_DSN_ENV, UNREACHABLE)
    assert shared_postgres.session_dsn() == UNREACHABLE
    assert shared_postgres.describe() == "$OCP_ASSETS_TEST_DSN"
    assert not (unresolved / shared_postgres.TEST_STATE).exists()


def test_without_the_machines_postgresql_the_embedded_server_runs_the_tests_and_stops_after(unresolved, monkeypatch):
    monkeypatch.setattr(shared_postgres, "MACHINE_DSN", UNREACHABLE)
    state = unresolved / shared_postgres.TEST_STATE
    try:
        dsn = shared_postgres.session_dsn()
        assert f"host={state / local_postgres.PGDATA}" in dsn  # its Unix socket, apart from make demo's server
        assert shared_postgres.session_dsn() == dsn  # once per session
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SHOW max_connections").fetchone() == (str(shared_postgres.EMBEDDED_MAX_CONNECTIONS),)
            assert conn.execute("SELECT current_user").fetchone() == ("postgres",)
        assert local_postgres.embedded_running(state)
    finally:
        shared_postgres.release()
    assert not local_postgres.embedded_running(state)


def test_embedded_forces_the_embedded_server_where_the_machine_has_postgresql(unresolved, monkeypatch):
    monkeypatch.setenv(shared_postgres.TEST_DSN_ENV, shared_postgres.FORCE_EMBEDDED)
    state = unresolved / shared_postgres.TEST_STATE
    try:
        assert f"host={state / local_postgres.PGDATA}" in shared_postgres.session_dsn()
        assert shared_postgres.describe().startswith("embedded PostgreSQL started")
    finally:
        shared_postgres.release()
    assert not local_postgres.embedded_running(state)
