"""Shared fixtures (a real PostgreSQL connection, a throw-away koku tenant schema per test) and the test layers.

Layers (markers registered in pyproject.toml; `make test-fast`, `make test-db`, `make test` runs all):

- ``fast``: pure functions, no PostgreSQL, no subprocess; runs in seconds. A fast test that connects to PostgreSQL
  or starts a process fails (the guard below), so the layer cannot silently grow slow.
- ``db``: PostgreSQL (it uses the ``dsn`` or ``pg`` fixture, or is listed in DATABASE_MODULES), Dagster in process,
  a short process (ruff, the installed command).
- ``slow``: end to end: the CLI or ``dagster dev`` as processes, the browser, nise, private PostgreSQL servers
  (SLOW_MODULES, SLOW_FIXTURES, or marked slow by its module or test).
"""

import subprocess
import uuid

import psycopg
import pytest

from ocp_assets.core.pgschema import init_schema
from ocp_assets_tests import shared_postgres

DATABASE_FIXTURES = {"dsn", "pg"}
# Modules of the db layer without those fixtures in every test: they reach PostgreSQL, or start a short process.
DATABASE_MODULES = {
    "test_cli_errors",  # the installed command as a process
    "test_costs_rates",  # koku's cost SQL (reference/koku_cost_sql.py) on the session's PostgreSQL
    "test_costs_vm_scenarios",  # the same
    "test_costs_vm_vs_koku",  # the same
    "test_dagster_s3",  # the code location loaded in a process
    "test_day_partitions_window",  # the code location loaded in a process
    "test_definitions_settings",  # the same
    "test_lint",  # ruff
}
# Fixtures of the slow layer in modules otherwise fast or db.
SLOW_FIXTURES = {
    "gpu_vm_scenario",  # nise's gpu_vm.yml generated (test_ingest_gpu_vm)
}
# End-to-end modules: each test runs processes, a browser, nise or a server of its own.
SLOW_MODULES = {
    "test_cli_truth",  # the CLI through pipes, signals and /dev/full
    "test_concurrency",  # the CLI beside a Dagster run
    "test_dagster_e2e",  # dagster dev, the daemon
    "test_dagster_run_monitoring",  # a daemon killed and restarted
    "test_dagster_ui",  # the browser over dagster dev
    "test_quickstart",  # make demo's command and the embedded server
    "test_secrets",  # the CLI and the UI launcher as processes, one per DSN form
    "test_shared_postgres",  # starts embedded PostgreSQL servers
    "test_ui_launcher",  # make ui's launcher as a process
}


def _uses_database(item: pytest.Item) -> bool:
    # A parametrize argument may be called dsn too: only the fixtures count.
    parameters = set(getattr(getattr(item, "callspec", None), "params", {}))
    return bool(DATABASE_FIXTURES & (set(item.fixturenames) - parameters)) or item.path.stem in DATABASE_MODULES


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("slow") or item.path.stem in SLOW_MODULES or SLOW_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.slow)
        elif _uses_database(item):
            item.add_marker(pytest.mark.db)
        else:
            item.add_marker(pytest.mark.fast)


def _refuse_in_fast_test(what: str):
    def refuse(*args, **kwargs):
        pytest.fail(
            f"a test of the fast layer {what}: give it the dsn or pg fixture (layer db), or list its module in"
            " DATABASE_MODULES or SLOW_MODULES (ocp_assets_tests/conftest.py)",
            pytrace=True,
        )

    return refuse


def _refuse_postgresql_and_processes(patch: pytest.MonkeyPatch) -> None:
    connects = _refuse_in_fast_test("connected to PostgreSQL")
    patch.setattr(psycopg, "connect", connects)
    patch.setattr(psycopg.Connection, "connect", connects)
    patch.setattr(psycopg.AsyncConnection, "connect", connects)
    try:
        import psycopg2  # Dagster's PostgreSQL storage (dagster-postgres)
    except ImportError:
        pass
    else:
        patch.setattr(psycopg2, "connect", connects)
    patch.setattr(subprocess.Popen, "__init__", _refuse_in_fast_test("started a process"))


# Around set-up too, so a module-scoped fixture a fast test asks for is held to the same; not around teardown, which
# may end the fixtures of the db test before it.
@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item):
    return (yield from _guarded(item))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    return (yield from _guarded(item))


def _guarded(item: pytest.Item):
    if item.get_closest_marker("fast") is None:
        return (yield)
    with pytest.MonkeyPatch.context() as patch:
        _refuse_postgresql_and_processes(patch)
        return (yield)


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
