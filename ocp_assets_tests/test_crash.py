"""Crashes: `ocp-assets summarize` killed at random moments, its backend terminated mid-write; old or new rows, never a
mix.
"""

import datetime as dt
import os
import random
import signal
import subprocess
import time
from pathlib import Path

import psycopg
import pytest

from ocp_assets.core import consistency
from ocp_assets.core.engine import ClusterDay
from ocp_assets.core.pgschema import init_schema
from ocp_assets.core.pipeline import summarize_day
from ocp_assets.core.storage import open_data_root
from ocp_assets_tests.dagster_fixtures import ENABLED_KEYS, build_cluster, change_day
from ocp_assets_tests.engine_support import day_hashes, enable_keys, summarize_command
from ocp_assets_tests.private_postgres import as_server_user, private_postgres

pytestmark = pytest.mark.slow

DAYS = [dt.date(2026, 5, 1) + dt.timedelta(days=n) for n in range(8)]
KILLS = 20


def _summarize_cli(data_root: Path, identity, schema: str, dsn: str) -> subprocess.Popen:
    return subprocess.Popen(
        summarize_command(data_root, identity, dsn, schema), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )


def _interrupted_runs(versions: dict, schema: str, dsn: str, trials: int, *, seed: int, earliest: float):
    """(trial, running process) of `trials` summarize runs, alternating versions B and A, each handed over after a
    random share (`earliest` to 1) of an uninterrupted run's duration: start-up, then reading, computing, COPY.
    An uninterrupted run of version A comes first and sets that duration."""
    started = time.monotonic()
    first = _summarize_cli(*versions["a"], schema, dsn)
    assert first.wait(timeout=120) == 0, first.stderr.read().decode()
    window = time.monotonic() - started
    generator = random.Random(seed)
    for trial in range(trials):
        process = _summarize_cli(*versions["b" if trial % 2 == 0 else "a"], schema, dsn)
        time.sleep(generator.uniform(earliest * window, window))
        yield trial, process


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


def test_sigkill_at_random_moments_leaves_old_or_new_rows_and_a_rerun_converges(two_versions, pg, dsn):
    versions, reference = two_versions
    conn, schema = pg
    enable_keys(conn, schema, ENABLED_KEYS)
    assert all(reference["a"][d] != reference["b"][d] for d in DAYS)
    killed_while_running = 0
    for trial, process in _interrupted_runs(versions, schema, dsn, KILLS, seed=8, earliest=0.3):
        if process.poll() is None:
            killed_while_running += 1
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        now = day_hashes(conn, schema)
        # Every cluster-day holds exactly version A's rows or exactly version B's, never a mix or a duplicate.
        assert set(now) == set(DAYS)
        assert all(now[d] in (reference["a"][d], reference["b"][d]) for d in DAYS), trial
    assert killed_while_running >= KILLS // 2  # most kills landed while it worked
    finish = _summarize_cli(*versions["b"], schema, dsn)
    assert finish.wait(timeout=120) == 0
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


RESTARTS = 3


@pytest.fixture(name="private_pg")
def private_pg_fixture():
    """A PostgreSQL of this test's own, so it can be restarted under a running summarize."""
    with private_postgres() as server:
        yield server.dsn, server.ctl


def test_postgresql_restart_under_a_running_summarize(two_versions, private_pg):
    versions, reference = two_versions
    dsn, ctl = private_pg
    schema = "restarted"
    with psycopg.connect(dsn, autocommit=True) as conn:
        init_schema(conn, schema)
        enable_keys(conn, schema, ENABLED_KEYS)
    interrupted = 0
    for trial, process in _interrupted_runs(versions, schema, dsn, RESTARTS, seed=15, earliest=0.5):
        as_server_user(*ctl, "-m", "fast", "restart")
        code = process.wait(timeout=120)
        err = process.stderr.read().decode().strip().splitlines()
        # Either it finished before the restart, or it says so in one line and exits 1: never a traceback.
        assert code == 0 or (code == 1 and len(err) == 1 and err[0].startswith("ocp-assets: database error")), (
            code,
            err,
        )
        interrupted += code == 1
        with psycopg.connect(dsn, autocommit=True) as conn:
            now = day_hashes(conn, schema)
        assert all(now[d] in (reference["a"][d], reference["b"][d]) for d in DAYS), trial
    assert interrupted >= 1  # at least one restart landed while it worked
    finish = _summarize_cli(*versions["b"], schema, dsn)
    assert finish.wait(timeout=120) == 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        assert day_hashes(conn, schema) == reference["b"]
