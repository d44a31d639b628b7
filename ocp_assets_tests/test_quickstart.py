"""The main command (`make demo`: python -m ocp_assets.quickstart) on the embedded PostgreSQL, and a configured DSN."""

import os
import re
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from ocp_assets import local_postgres, quickstart
from ocp_assets.core.generate import cache_root
from ocp_assets.defs.resources import STORAGE_URL_ENV, dagster_instance_env

REPO = Path(__file__).resolve().parents[1]
TEST_DSN = os.environ.get("OCP_ASSETS_TEST_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
ROW_LINE = re.compile(r"^  (demo-\S+)\s+(Pod|Storage)\s+([\d,]+)\s", re.MULTILINE)


def _quickstart(state: Path) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OCP_ASSETS_", "DAGSTER_"))}
    # nise's payloads are cached where the other tests and `ocp-assets generate` keep them: generated once a machine.
    env["OCP_ASSETS_CACHE"] = str(cache_root())
    return subprocess.run(
        [sys.executable, "-m", "ocp_assets.quickstart", "--state-dir", str(state)],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


@pytest.mark.slow
def test_main_command_materializes_every_partition_through_dagster_on_embedded_postgres(tmp_path, monkeypatch):
    state = tmp_path / "state"
    first = _quickstart(state)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    out = first.stdout
    assert "embedded PostgreSQL started" in out
    assert "partitions materialized by Dagster: 8/8" in out
    passed, total = map(int, re.search(r"checks passed: (\d+)/(\d+)", out).groups())
    assert passed == total > 0
    assert "top 5 namespaces by CPU" in out and "make ui" in out
    # The command stops the server it started; the data directory stays for the next invocation.
    assert not local_postgres.embedded_running(state)

    # A second invocation reuses the data directory and the sample, and materializes every partition again.
    second = _quickstart(state)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert second.stdout.count("cached in") == len(quickstart.SAMPLE)
    assert "partitions materialized by Dagster: 8/8" in second.stdout
    assert not local_postgres.embedded_running(state)

    reported = {(c, s): int(n.replace(",", "")) for c, s, n in ROW_LINE.findall(second.stdout)}
    with local_postgres.start_embedded(state) as pg:
        assert pg.started_here and pg.dsn.startswith("postgresql://") and f"host={state / 'pgdata'}" in pg.dsn
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            counted = conn.execute(
                f'SELECT cluster_id, data_source, count(*) FROM "{quickstart.ACCOUNT}".'
                "reporting_ocpusagelineitem_daily_summary GROUP BY 1, 2"
            ).fetchall()
        assert reported == {(c, s): n for c, s, n in counted}
        assert {c for c, _ in reported} == {c.cluster_id for c in quickstart.SAMPLE}
        assert {s for _, s in reported} == {"Pod", "Storage"}

        # Dagster's own record, in the instance the UI opens: every partition of every sample cluster materialized,
        # by runs of the job that all succeeded (three per invocation: one per cluster).
        env = dagster_instance_env(pg.dsn, quickstart.DAGSTER_DATABASE)
        assert env[STORAGE_URL_ENV].startswith("postgresql+psycopg2://postgres@/dagster?host=")
        for key, value in {**env, "DAGSTER_HOME": str(state / quickstart.HOME_DIR)}.items():
            monkeypatch.setenv(key, value)
        with dg.DagsterInstance.get() as instance:
            materialized = instance.get_materialized_partitions(dg.AssetKey("daily_summary"))
            assert len(materialized) == 8
            assert {k.split("|")[0] for k in materialized} == {c.cluster_id for c in quickstart.SAMPLE}
            runs = instance.get_runs()
            assert len(runs) == 2 * len(quickstart.SAMPLE)
            assert {r.job_name for r in runs} == {quickstart.JOB_NAME}
            assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    assert not local_postgres.embedded_running(state)


def test_configured_dsn_wins_over_the_embedded_server(tmp_path, monkeypatch):
    monkeypatch.setenv(local_postgres.DSN_ENV, TEST_DSN)
    pg = local_postgres.resolve(tmp_path)
    assert (pg.dsn, pg.embedded, pg.started_here) == (TEST_DSN, False, False)
    assert not (tmp_path / local_postgres.PGDATA).exists()
    pg.stop()  # nothing to stop: a configured server is never ours

    monkeypatch.delenv(local_postgres.DSN_ENV)
    monkeypatch.setenv(local_postgres.STATE_DIR_ENV, str(tmp_path / "state"))
    assert local_postgres.state_dir() == (tmp_path / "state").resolve()


def test_embedded_server_by_hand_start_status_stop(tmp_path):
    def local_postgres_cli(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(
            [sys.executable, "-m", "ocp_assets.local_postgres", *args, "--state-dir", str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )

    started = local_postgres_cli("start")
    try:
        assert started.returncode == 0, started.stderr
        dsn = started.stdout.strip()  # the DSN alone on stdout, for export OCP_ASSETS_DSN=$(...)
        with psycopg.connect(dsn) as conn:
            assert conn.execute("SHOW listen_addresses").fetchone() == ("",)  # a Unix socket only
        assert local_postgres_cli("status").returncode == 0
    finally:
        assert local_postgres_cli("stop").returncode == 0
    assert local_postgres_cli("status").returncode == 3
    assert not local_postgres.embedded_running(tmp_path)
