"""The main command (`make demo`, and with the UI) on the embedded PostgreSQL; a configured DSN wins; start/stop."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import dagster as dg
import psycopg
import pytest

from ocp_assets import local_postgres, quickstart
from ocp_assets.core.generate import cache_root
from ocp_assets.defs.resources import STORAGE_URL_ENV, dagster_instance_env

REPO = Path(__file__).resolve().parents[1]
ROW_LINE = re.compile(r"^  (demo-\S+)\s+(Pod|Storage)\s+([\d,]+)\s", re.MULTILINE)


def _environment() -> dict[str, str]:
    """The user's environment without any ocp_assets or Dagster setting: no DSN, so the embedded server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OCP_ASSETS_", "DAGSTER_"))}
    # nise's payloads are cached where the other tests and `ocp-assets generate` keep them: generated once a machine.
    env["OCP_ASSETS_CACHE"] = str(cache_root())
    return env


def _quickstart(state: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ocp_assets.quickstart", "--state-dir", str(state)],
        cwd=REPO,
        env=_environment(),
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql",
        data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())["data"]


def _quickstart_with_ui(state: Path, log: Path) -> tuple[int, str, list[dict]]:
    """`make demo UI=1`: the command, then the UI until Ctrl-C. Returns its exit code, output and the UI's runs."""
    port = _free_port()
    with log.open("w") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ocp_assets.quickstart", "--state-dir", str(state), "--ui", "--port", str(port)],
            cwd=REPO,
            env=_environment(),
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches
            # A background child of a non-interactive shell inherits SIGINT ignored; Ctrl-C must work here.
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
        try:
            deadline = time.monotonic() + 180
            runs = None
            while runs is None and process.poll() is None and time.monotonic() < deadline:
                try:
                    runs = _graphql(port, "{ runsOrError { ... on Runs { results { runId status } } } }")
                except OSError:
                    time.sleep(1)
            assert runs is not None, f"the UI did not answer; output:\n{log.read_text()[-3000:]}"
            os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
            code = process.wait(timeout=90)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
    return code, log.read_text(), runs["runsOrError"]["results"]


@pytest.mark.slow
def test_main_command_materializes_every_partition_through_dagster_on_embedded_postgres(tmp_path, monkeypatch):
    state = tmp_path / "state"
    first = _quickstart(state)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    out = first.stdout
    assert "embedded PostgreSQL started" in out
    assert "partitions materialized by Dagster: 9/9" in out
    passed, total = map(int, re.search(r"checks passed: (\d+)/(\d+)", out).groups())
    assert passed == total > 0
    assert "top 5 namespaces by CPU" in out and "make ui" in out
    # gpu_vm.yml by hand: a dedicated H100 (80 GiB = 85.9 GB), two MIG slices of an A100, a T4 koku treats as
    # dedicated: rows and GPUs (or slices) per model and mode.
    assert re.search(r"demo-gpu\s+H100\s+dedicated\s+1\s+1\s+85\.9", out), out
    assert re.search(r"demo-gpu\s+A100 SXM4 40GB\s+MIG\s+2\s+2\s", out), out
    # The command stops the server it started; the data directory stays for the next invocation.
    assert not local_postgres.embedded_running(state)

    # A second invocation (`make demo UI=1`) reuses the data directory and the sample, materializes every partition
    # again, then serves the UI over the same instance; Ctrl-C stops the UI and the embedded server.
    code, second, ui_runs = _quickstart_with_ui(state, tmp_path / "second.log")
    assert code == 0, second[-3000:]
    assert second.count("cached in") == len(quickstart.SAMPLE)
    assert "partitions materialized by Dagster: 9/9" in second
    assert "[7/7] the Dagster UI" in second
    assert len(ui_runs) == 2 * len(quickstart.SAMPLE) and {r["status"] for r in ui_runs} == {"SUCCESS"}
    assert not local_postgres.embedded_running(state)

    reported = {(c, s): int(n.replace(",", "")) for c, s, n in ROW_LINE.findall(second)}
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
            assert len(materialized) == 9  # demo-prod 3 days, demo-dev 3, demo-edge 2, demo-gpu 1
            assert {k.split("|")[0] for k in materialized} == {c.cluster_id for c in quickstart.SAMPLE}
            runs = instance.get_runs()
            assert len(runs) == 2 * len(quickstart.SAMPLE)
            assert {r.job_name for r in runs} == {quickstart.JOB_NAME}
            assert all(r.status == dg.DagsterRunStatus.SUCCESS for r in runs)
    assert not local_postgres.embedded_running(state)


def test_configured_dsn_wins_over_the_embedded_server(tmp_path, monkeypatch, dsn):
    monkeypatch.setenv(local_postgres.DSN_ENV, dsn)
    pg = local_postgres.resolve(tmp_path)
    assert (pg.dsn, pg.embedded, pg.started_here) == (dsn, False, False)
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
        # A command using a server started by hand leaves it running when it ends.
        assert local_postgres.start_embedded(tmp_path).stop() is False
        assert local_postgres.embedded_running(tmp_path)
    finally:
        assert local_postgres_cli("stop").returncode == 0
    assert local_postgres_cli("status").returncode == 3
    assert not local_postgres.embedded_running(tmp_path)


def test_embedded_server_stays_up_while_another_command_uses_it(tmp_path):
    """`make demo` next to a running `make ui`: whichever started the server, the last one to end stops it."""
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from ocp_assets import local_postgres as lp;"
            " pg = lp.start_embedded(Path(sys.argv[1])); print(pg.started_here, flush=True);"
            " sys.stdin.readline(); print(pg.stop(), flush=True)",
            str(tmp_path),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "True"  # the other command started it
        mine = local_postgres.start_embedded(tmp_path)
        assert not mine.started_here
        assert mine.stop() is False  # still in use by the other command
        assert local_postgres.embedded_running(tmp_path)
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "True"  # the last one to end stops it
        assert holder.wait(timeout=60) == 0
        assert not local_postgres.embedded_running(tmp_path)
    finally:
        if holder.poll() is None:
            holder.kill()
        local_postgres.stop_embedded(tmp_path)
