"""Run monitoring for real: a run whose daemon process group is SIGKILLed mid-run ends FAILURE once the daemon is
back, and a re-run writes each cluster-day's rows once."""

import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from ocp_assets.defs.jobs import JOB_NAME
from ocp_assets.defs.partitions import CLUSTERS_PARTITIONS_NAME
from ocp_assets.defs.resources import SummaryDatabase
from ocp_assets.defs.sensors import RANGE_END_TAG, RANGE_START_TAG
from ocp_assets_tests.dagster_fixtures import (  # noqa: F401 (fixture)
    DAY,
    REPO,
    build_cluster,
    dagster_home_fixture,
)

DAYS = [DAY, DAY + dt.timedelta(days=1)]
ROWS_PER_DAY = 7  # build_cluster's day: 4 pod rows, 1 storage row, 1 unallocated row per node (2)
TIMEOUT = 240  # seconds any awaited state may take on two shared cores


def _wait(what: str, probe, timeout: float = TIMEOUT):
    """Poll `probe` until it returns something truthy; fail naming `what` after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = probe()
        if found:
            return found
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout} s waiting for {what}")


def _dagster(*args: str, log: Path) -> subprocess.Popen:
    """A Dagster command of this venv on the repo's workspace, in a process group of its own (as a service runs)."""
    command = [str(Path(sys.executable).parent / args[0]), *args[1:]]
    with log.open("ab") as out:
        return subprocess.Popen(
            command, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=os.environ.copy()
        )


def _launch(tags: dict, log: Path) -> None:
    launched = _dagster(
        "dagster", "job", "launch", "-w", "workspace.yaml", "-j", JOB_NAME, "--tags", json.dumps(tags), log=log
    )
    assert launched.wait(timeout=TIMEOUT) == 0, log.read_text()[-3000:]


def _kill_group(process: subprocess.Popen) -> None:
    os.killpg(process.pid, signal.SIGKILL)
    process.wait(timeout=60)


def _lock_waiters(dsn: str, schema: str) -> list[int]:
    """Backends waiting for a lock on a query of the tenant schema: a run's day blocked on the held table lock."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND position(%s in query) > 0",
            (schema,),
        ).fetchall()
    return [pid for (pid,) in rows]


def _rows_per_day(dsn: str, schema: str) -> dict[dt.date, int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            f'SELECT usage_start, count(*) FROM "{schema}".reporting_ocpusagelineitem_daily_summary GROUP BY 1'
        ).fetchall()
    return dict(rows)


@pytest.fixture(name="monitored_home")
def monitored_home_fixture(dagster_home):
    """The repo's dagster.yaml with run monitoring polling every second instead of every 30 s."""
    config = Path(dagster_home["DAGSTER_HOME"]) / "dagster.yaml"
    text = config.read_text()
    assert "  poll_interval_seconds: 30\n" in text
    config.write_text(text.replace("  poll_interval_seconds: 30\n", "  poll_interval_seconds: 1\n"))
    return dagster_home


def test_a_run_whose_daemon_was_killed_ends_failed_after_a_restart_and_a_rerun_converges(monitored_home, dsn, tmp_path):
    env = monitored_home
    schema = env["OCP_ASSETS_SCHEMA"]
    identity = build_cluster(Path(env["OCP_ASSETS_DATA_ROOT"]), "cluster-a", DAYS)
    db = SummaryDatabase(dsn=dsn, schema_name=schema, registry_schema=env["OCP_ASSETS_REGISTRY_SCHEMA"])
    with db.connect() as conn:
        db.registry.ensure(conn)
        db.register_cluster(
            conn,
            cluster_id="cluster-a",
            source=identity.source_uuid,
            account=identity.account,
            cluster_alias="cluster-a",
            data_root=env["OCP_ASSETS_DATA_ROOT"],
        )
    tags = {RANGE_START_TAG: f"cluster-a|{DAYS[0]}", RANGE_END_TAG: f"cluster-a|{DAYS[-1]}"}
    log = tmp_path / "dagster.log"
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions(CLUSTERS_PARTITIONS_NAME, ["cluster-a"])

        def only_run(*statuses: dg.DagsterRunStatus) -> dg.DagsterRun | None:
            runs = instance.get_runs()
            return runs[0] if len(runs) == 1 and runs[0].status in statuses else None

        # The summary table is locked, so the run's days wait inside PostgreSQL: the run is STARTED, mid-run.
        with psycopg.connect(dsn) as holder:
            holder.execute(f'LOCK TABLE "{schema}".reporting_ocpusagelineitem_daily_summary IN ACCESS EXCLUSIVE MODE')
            daemon = _dagster("dagster-daemon", "run", "-w", "workspace.yaml", log=log)
            try:
                _launch(tags, log)
                run = _wait("the run to start", lambda: only_run(dg.DagsterRunStatus.STARTED))
                _wait("a day of the run blocked on the summary table", lambda: _lock_waiters(dsn, schema))
                _kill_group(daemon)  # the daemon, its code server, the run worker and its step: all at once
            finally:
                if daemon.poll() is None:
                    _kill_group(daemon)
            holder.rollback()
        # Nobody is left to report it: the run stays STARTED until a daemon's run monitoring finds its worker gone.
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
        _wait("the killed run's blocked query to end", lambda: not _lock_waiters(dsn, schema))
        assert _rows_per_day(dsn, schema) == {}  # the killed days committed nothing

        daemon = _dagster("dagster-daemon", "run", "-w", "workspace.yaml", log=log)
        try:
            failed = _wait("the killed run to be marked failed", lambda: only_run(dg.DagsterRunStatus.FAILURE))
            assert failed.run_id == run.run_id
            messages = [e.message or "" for e in instance.all_logs(run.run_id)]
            assert any("Detected run worker status" in m and "is gone" in m for m in messages), messages[-5:]

            # The same range again converges: every day written once.
            _launch(tags, log)
            rerun = _wait(
                "the re-run to finish",
                lambda: [
                    r
                    for r in instance.get_runs()
                    if r.run_id != run.run_id and r.status in (dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE)
                ],
            )[0]
            assert rerun.status == dg.DagsterRunStatus.SUCCESS, log.read_text()[-3000:]
        finally:
            _kill_group(daemon)
    assert _rows_per_day(dsn, schema) == dict.fromkeys(DAYS, ROWS_PER_DAY)
