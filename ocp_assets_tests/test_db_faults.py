"""Database faults: a full disk and statement timeouts end in one line (CLI exit 1, Dagster retries), old rows kept."""

import datetime as dt
import os
import subprocess
import threading
import time

import psycopg
import pytest

from ocp_assets.core.pgschema import SUMMARY_TABLE, init_schema
from ocp_assets.defs.partitions import partition_key
from ocp_assets_tests.dagster_fixtures import (  # noqa: F401 (dagster_env_fixture is the dagster_env fixture)
    ENABLED_KEYS,
    build_cluster,
    change_day,
    dagster_env_fixture,
    resources,
)
from ocp_assets_tests.engine_support import day_hashes, enable_keys, summarize_command
from ocp_assets_tests.private_postgres import private_postgres

pytestmark = pytest.mark.slow

DAYS = [dt.date(2026, 6, 1) + dt.timedelta(days=n) for n in range(3)]
# PostgreSQL cancels any statement of the run that waits longer than this (set per connection through the DSN).
TIMEOUT_OPTIONS = "options=-c%20statement_timeout%3D1500"


def with_statement_timeout(dsn: str) -> str:
    """The DSN with a 1.5 s statement timeout; the embedded server's URL already has a query (its socket's host)."""
    return f"{dsn}{'&' if '?' in dsn else '?'}{TIMEOUT_OPTIONS}"


def hashes(dsn: str, schema: str) -> dict[dt.date, str]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return day_hashes(conn, schema)


def summarize_cli(version, dsn: str, schema: str) -> subprocess.CompletedProcess:
    root, identity = version
    command = summarize_command(root, identity, dsn, schema)
    return subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)


def fresh_schema(dsn: str, schema: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        init_schema(conn, schema)
        enable_keys(conn, schema, ENABLED_KEYS)


def assert_one_line_failure(done: subprocess.CompletedProcess, reason: str) -> None:
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1, (done.returncode, done.stderr)
    assert len(lines) == 1 and reason in lines[0] and "Traceback" not in done.stderr, done.stderr
    assert lines[0].startswith("ocp-assets: database error"), lines


@pytest.fixture(name="versions")
def versions_fixture(tmp_path):
    """One cluster's Parquet in two versions: B has ten times A's pods (more rows than A's pages hold) and twice the
    CPU, so writing B needs new pages and every B day differs from A's."""
    small = tmp_path / "a"
    large = tmp_path / "b"
    identity_a = build_cluster(small, "faulty", DAYS)
    identity_b = build_cluster(large, "faulty", DAYS, pods_per_node=20)
    for day in DAYS:
        change_day(large, identity_b, "pod_usage", "pod_usage_cpu_core_seconds", day, lambda v: v * 2)
    return {"a": (small, identity_a), "b": (large, identity_b)}


def test_a_full_disk_fails_in_one_line_keeps_the_old_rows_and_a_rerun_with_space_converges(versions):
    if os.geteuid() != 0:
        pytest.fail("mounting the small file system this test fills needs root (CI and the sessions run as root)")
    with private_postgres() as server:
        disk = server.home / "disk"
        disk.mkdir()
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(disk)], check=True)
        try:
            subprocess.run(["chown", server.user, str(disk)], check=True)  # the server writes its tablespace there
            with psycopg.connect(server.dsn, autocommit=True) as conn:
                # koku's tables (and the month partitions created on write) live on the small file system.
                conn.execute(f"CREATE TABLESPACE small_disk LOCATION '{disk}'")
                conn.execute("ALTER DATABASE postgres SET default_tablespace = small_disk")
            fresh_schema(server.dsn, "koku")
            fresh_schema(server.dsn, "reference")
            assert summarize_cli(versions["b"], server.dsn, "reference").returncode == 0
            reference_b = hashes(server.dsn, "reference")
            assert summarize_cli(versions["a"], server.dsn, "koku").returncode == 0
            before = hashes(server.dsn, "koku")
            assert set(before) == set(DAYS) and all(before[d] != reference_b[d] for d in DAYS)

            filler = disk / "filler"
            with open(filler, "wb") as out:
                try:
                    while True:
                        out.write(b"\0" * (1 << 20))
                        out.flush()
                except OSError:
                    pass
            done = summarize_cli(versions["b"], server.dsn, "koku")
            assert_one_line_failure(done, "No space left on device")
            assert hashes(server.dsn, "koku") == before  # every day keeps its old rows, none half-written

            filler.unlink()
            assert summarize_cli(versions["b"], server.dsn, "koku").returncode == 0
            assert hashes(server.dsn, "koku") == reference_b
        finally:
            # Lazy: the server still holds files there; the memory is released when it stops.
            subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.fixture(name="locked_summary")
def locked_summary_fixture(dsn):
    """Hold an exclusive lock on a schema's summary table (another session's long transaction) until released."""
    holders = []

    def lock(schema: str):
        holder = psycopg.connect(dsn)
        holder.execute(f'LOCK TABLE "{schema}".{SUMMARY_TABLE} IN ACCESS EXCLUSIVE MODE')
        holders.append(holder)
        return holder

    yield lock
    for holder in holders:
        holder.close()


def test_a_statement_timeout_fails_in_one_line_and_keeps_the_old_rows(versions, pg, dsn, locked_summary):
    _, schema = pg
    enable_keys(pg[0], schema, ENABLED_KEYS)
    reference = f"{schema}_ref"
    fresh_schema(dsn, reference)
    try:
        assert summarize_cli(versions["b"], dsn, reference).returncode == 0
        reference_b = hashes(dsn, reference)
    finally:
        pg[0].execute(f'DROP SCHEMA "{reference}" CASCADE')
    assert summarize_cli(versions["a"], dsn, schema).returncode == 0
    before = hashes(dsn, schema)

    holder = locked_summary(schema)
    done = summarize_cli(versions["b"], with_statement_timeout(dsn), schema)
    holder.rollback()
    assert_one_line_failure(done, "statement timeout")
    assert hashes(dsn, schema) == before

    assert summarize_cli(versions["b"], dsn, schema).returncode == 0
    assert hashes(dsn, schema) == reference_b


def release_after_first_cancellation(holder: psycopg.Connection, dsn: str, schema: str) -> threading.Thread:
    """Release the lock once a statement waiting for it has been cancelled: the first attempt fails, the retry runs."""

    def watch():
        with psycopg.connect(dsn, autocommit=True) as watcher:
            waited = False
            deadline = time.monotonic() + 120
            while time.monotonic() < deadline:
                waiting = watcher.execute(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted AND relation = %s::regclass",
                    (f'"{schema}".{SUMMARY_TABLE}',),
                ).fetchone()[0]
                if waiting:
                    waited = True
                elif waited:
                    break
                time.sleep(0.05)
        holder.rollback()

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


def test_a_statement_timeout_in_dagster_is_retried_with_backoff_and_the_retry_writes_the_day(
    dagster_env, dsn, locked_summary, tmp_path
):
    identity = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    dagster_env.register(identity)
    # The run's koku connections cancel any statement that waits longer than 1.5 s.
    dagster_env.resources.update(
        resources(
            with_statement_timeout(dsn),
            dagster_env.schema,
            dagster_env.data_root,
            tmp_path / "snapshots",
            dagster_env.registry_schema,
        )
    )
    holder = locked_summary(dagster_env.schema)
    watcher = release_after_first_cancellation(holder, dsn, dagster_env.schema)
    result = dagster_env.materialize(partition_key=str(partition_key("cluster-a", DAYS[0])))
    watcher.join(timeout=5)

    retries = [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    assert result.success and retries
    # The retried failure is PostgreSQL's cancellation (SQLSTATE 57014), not bad input: no red check, no lost day.
    assert "QueryCanceled" in repr(retries[0].event_specific_data.error)
    assert {r[1] for r in dagster_env.summary_rows()} == {DAYS[0]}
