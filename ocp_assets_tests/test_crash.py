"""Crashes: `ocp-assets summarize` killed at chosen points (start-up, waiting for a day's lock, a day's rows written but
not committed), PostgreSQL restarted under it, its backend terminated mid-write; old or new rows, never a mix.

The points are reached by waiting on PostgreSQL's own view of the run (pg_stat_activity), never on a clock: the test
holds a lock the run is bound to wait for, sees it waiting there, then kills it. A loaded machine only makes it slower.
"""

import datetime as dt
import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

from ocp_assets.core import consistency
from ocp_assets.core.identity import ClusterDay
from ocp_assets.core.pgschema import SUMMARY_TABLE, init_schema
from ocp_assets.core.pipeline import summarize_day
from ocp_assets.core.storage import open_data_root
from ocp_assets.core.transaction import lock_cluster_day
from ocp_assets_tests.dagster_fixtures import ENABLED_KEYS, build_cluster, change_day
from ocp_assets_tests.engine_support import day_hashes, enable_keys, summarize_command
from ocp_assets_tests.private_postgres import as_server_user, private_postgres

pytestmark = pytest.mark.slow

DAYS = [dt.date(2026, 5, 1) + dt.timedelta(days=n) for n in range(8)]
STATE_TIMEOUT_SECONDS = 180  # a bound for a failure to surface, not a measurement: a run reaches its point far sooner
POLL_SECONDS = 0.05


@dataclass(frozen=True)
class KillPoint:
    """Where a run is stopped: `stage` of the cluster-day `day` (DAYS' index).

    startup: at once, before it connects. day_lock: waiting for the day's lock, the days before it committed.
    rows_written: the day's old rows deleted and its new rows inserted, not committed (a trigger holds it there).
    """

    stage: str
    day: int = 0


KILL_POINTS = [
    KillPoint("startup"),
    *(KillPoint("day_lock", d) for d in (0, 1, 4, 7)),
    *(KillPoint("rows_written", d) for d in (0, 2, 5, 7)),
]


def _gate_key(schema: str, day: dt.date) -> str:
    return f"crash-gate/{schema}/{day.isoformat()}"


def install_gate(conn: psycopg.Connection, schema: str) -> None:
    """After a summary row of a day is inserted, wait for that day's gate lock: free unless a test holds it."""
    conn.execute(
        f"""CREATE FUNCTION "{schema}".crash_gate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_advisory_xact_lock(hashtext('crash-gate/' || TG_TABLE_SCHEMA || '/' || NEW.usage_start));
            RETURN NULL;
        END $$"""
    )
    conn.execute(
        f'CREATE TRIGGER crash_gate AFTER INSERT ON "{schema}".{SUMMARY_TABLE}'
        f' FOR EACH ROW EXECUTE FUNCTION "{schema}".crash_gate()'
    )


def _summarize_cli(data_root: Path, identity, schema: str, dsn: str, app: str = "crash") -> subprocess.Popen:
    # PGAPPNAME (read by libpq) names the run's backend in pg_stat_activity.
    return subprocess.Popen(
        summarize_command(data_root, identity, dsn, schema),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "PGAPPNAME": app},
    )


def _backend(dsn: str, app: str) -> tuple | None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT wait_event_type, wait_event, query FROM pg_stat_activity WHERE application_name = %s", (app,)
        ).fetchone()


def _wait_for(what: str, probe, process: subprocess.Popen | None = None) -> None:
    deadline = time.monotonic() + STATE_TIMEOUT_SECONDS
    while not probe():
        if process is not None and process.poll() is not None:
            raise AssertionError(
                f"the run ended ({process.returncode}) before {what}: {process.stderr.read().decode()}"
            )
        assert time.monotonic() < deadline, f"no sign of {what} after {STATE_TIMEOUT_SECONDS} s"
        time.sleep(POLL_SECONDS)


def _waiting_at(dsn: str, app: str, statement: str) -> bool:
    backend = _backend(dsn, app)
    return backend is not None and backend[:2] == ("Lock", "advisory") and backend[2].lstrip().startswith(statement)


@contextmanager
def stopped_at(point: KillPoint, version: tuple, schema: str, dsn: str, app: str) -> Iterator[subprocess.Popen]:
    """A summarize run of `version`, held at `point` while the with block runs (it kills or interrupts it there).

    Afterwards the held lock is let go and the run's backend is waited out, so the next run starts on a quiet table.
    """
    root, identity = version
    day = DAYS[point.day]
    holder = psycopg.connect(dsn)  # a transaction of its own: its lock lasts until the rollback below
    try:
        if point.stage == "day_lock":
            lock_cluster_day(holder, schema, identity.source_uuid, day)  # the writer's own lock of that cluster-day
        elif point.stage == "rows_written":
            holder.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_gate_key(schema, day),))
        process = _summarize_cli(root, identity, schema, dsn, app)
        if point.stage == "day_lock":
            _wait_for(f"{app} waiting for {day}'s lock", lambda: _waiting_at(dsn, app, "SELECT pg_advisory"), process)
        elif point.stage == "rows_written":
            _wait_for(f"{app} holding {day}'s rows uncommitted", lambda: _waiting_at(dsn, app, "INSERT"), process)
        yield process
    finally:
        holder.close()  # rolls back: the lock goes (a restarted server has let it go already)
        _wait_for(f"{app}'s backend to end", lambda: _backend(dsn, app) is None)


def _expected_after(point: KillPoint, before: dict, target: dict) -> dict:
    """The days before the kill point hold the run's version; the others keep what they held."""
    done = 0 if point.stage == "startup" else point.day
    return {d: target[d] if i < done else before[d] for i, d in enumerate(DAYS)}


@pytest.fixture(name="two_versions")
def two_versions_fixture(tmp_path, dsn):
    """The same cluster's Parquet in two versions (B uses twice A's CPU), and the rows each gives uninterrupted."""
    versions = {}
    for name, factor in (("a", 1.0), ("b", 2.0)):
        root = tmp_path / name
        identity = build_cluster(root, "crash", DAYS)
        for day in DAYS:
            change_day(root, identity, "pod_usage", "pod_usage_cpu_core_seconds", day, lambda v, f=factor: v * f)
        versions[name] = (root, identity)
    schemas = []
    with psycopg.connect(dsn, autocommit=True) as conn:
        reference = {}
        for name, (root, identity) in versions.items():
            schema = f"crash_ref_{name}_{os.getpid()}"
            schemas.append(schema)
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
            init_schema(conn, schema)
            enable_keys(conn, schema, ENABLED_KEYS)
            for day in DAYS:
                summarize_day(
                    conn,
                    schema,
                    open_data_root(str(root)),
                    ClusterDay(identity.account, identity.source_uuid, "crash", identity.cluster_alias, day),
                )
            reference[name] = day_hashes(conn, schema)
        try:
            yield versions, reference
        finally:
            for schema in schemas:
                conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_sigkill_at_each_point_leaves_old_or_new_days_and_a_rerun_converges(two_versions, pg, dsn):
    versions, reference = two_versions
    conn, schema = pg
    enable_keys(conn, schema, ENABLED_KEYS)
    install_gate(conn, schema)
    assert all(reference["a"][d] != reference["b"][d] for d in DAYS)
    first = _summarize_cli(*versions["a"], schema, dsn)
    assert first.wait(timeout=STATE_TIMEOUT_SECONDS) == 0, first.stderr.read().decode()
    for trial, point in enumerate(KILL_POINTS):
        name = "b" if trial % 2 == 0 else "a"
        before = day_hashes(conn, schema)
        with stopped_at(point, versions[name], schema, dsn, f"crash-{os.getpid()}-{trial}") as process:
            assert process.poll() is None, point  # killed while it worked, at the point it was held
            process.send_signal(signal.SIGKILL)
            process.wait(timeout=30)
        # The days before the point hold the run's version, the others what they held: never a mix or a duplicate.
        assert day_hashes(conn, schema) == _expected_after(point, before, reference[name]), point
    finish = _summarize_cli(*versions["b"], schema, dsn)
    assert finish.wait(timeout=STATE_TIMEOUT_SECONDS) == 0
    assert day_hashes(conn, schema) == reference["b"]


def test_backend_terminated_mid_write_keeps_the_old_rows_and_a_rerun_converges(two_versions, pg, dsn, monkeypatch):
    versions, reference = two_versions
    conn, schema = pg
    enable_keys(conn, schema, ENABLED_KEYS)
    (root_a, identity), (root_b, _) = versions["a"], versions["b"]
    cluster_day = ClusterDay(identity.account, identity.source_uuid, "crash", identity.cluster_alias, DAYS[0])
    summarize_day(conn, schema, open_data_root(str(root_a)), cluster_day)
    real = consistency.rows_written_match

    def terminated_after_the_insert(*args, **kwargs):
        # Inside the cluster-day's transaction, after the COPY and the INSERT: the server ends the backend.
        with psycopg.connect(dsn, autocommit=True) as killer:
            killer.execute("SELECT pg_terminate_backend(%s)", (victim.info.backend_pid,))
        return real(*args, **kwargs)

    monkeypatch.setattr(consistency, "rows_written_match", terminated_after_the_insert)
    with psycopg.connect(dsn, autocommit=True) as victim, pytest.raises(psycopg.OperationalError):
        summarize_day(victim, schema, open_data_root(str(root_b)), cluster_day)
    assert day_hashes(conn, schema)[DAYS[0]] == reference["a"][DAYS[0]]

    monkeypatch.undo()
    summarize_day(conn, schema, open_data_root(str(root_b)), cluster_day)
    assert day_hashes(conn, schema)[DAYS[0]] == reference["b"][DAYS[0]]


@pytest.fixture(name="private_pg")
def private_pg_fixture():
    """A PostgreSQL of this test's own, so it can be restarted under a running summarize."""
    with private_postgres() as server:
        yield server.dsn, server.ctl


RESTART_POINTS = [KillPoint("day_lock", 2), KillPoint("rows_written", 5), KillPoint("rows_written", 0)]


def test_postgresql_restart_under_a_running_summarize(two_versions, private_pg):
    versions, reference = two_versions
    dsn, ctl = private_pg
    schema = "restarted"
    with psycopg.connect(dsn, autocommit=True) as conn:
        init_schema(conn, schema)
        enable_keys(conn, schema, ENABLED_KEYS)
        install_gate(conn, schema)
    first = _summarize_cli(*versions["a"], schema, dsn)
    assert first.wait(timeout=STATE_TIMEOUT_SECONDS) == 0, first.stderr.read().decode()
    for trial, point in enumerate(RESTART_POINTS):
        name = "b" if trial % 2 == 0 else "a"
        with psycopg.connect(dsn, autocommit=True) as conn:
            before = day_hashes(conn, schema)
        with stopped_at(point, versions[name], schema, dsn, f"restart-{trial}") as process:
            as_server_user(*ctl, "-m", "fast", "restart")
            code = process.wait(timeout=STATE_TIMEOUT_SECONDS)
        err = process.stderr.read().decode().strip().splitlines()
        # It says so in one line and exits 1: never a traceback.
        assert code == 1 and len(err) == 1 and err[0].startswith("ocp-assets: database error"), (code, err)
        with psycopg.connect(dsn, autocommit=True) as conn:
            assert day_hashes(conn, schema) == _expected_after(point, before, reference[name]), point
    finish = _summarize_cli(*versions["b"], schema, dsn)
    assert finish.wait(timeout=STATE_TIMEOUT_SECONDS) == 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert day_hashes(conn, schema) == reference["b"]
