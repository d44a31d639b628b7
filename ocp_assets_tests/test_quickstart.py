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
from ocp_assets.dagster_instance import STORAGE_URL_ENV, dagster_instance_env
from ocp_assets.defs.jobs import COSTS_JOB_NAME

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
    # Usage against capacity, by hand from generate.scale_yaml (3 days of 24 h; pods' usage: cpu_usage x pod_seconds).
    # demo-prod (100k): capacity 3 masters x 8 + 2 infra x 16 + 5 workers x 128 = 696 cores, x 72 h = 50,112
    # core-hours; 3 x 32 + 2 x 64 + 5 x 512 = 2,784 GiB, x 72 = 200,448 GiB-hours. Usage an hour: masters
    # 3 x (1.8 + 0.3 + 0.01) = 6.33 cores, infra 2 x (0.7 + 0.7 + 0.1 + 0.1 + 0.01) = 3.22, worker DNS 5 x 0.01;
    # 1,365 application pods, 273 a worker, in namespaces of max(20, round(240 / (n + 1))) pods cut at a worker's
    # end: 240, 33 | 80, 60, 48, 40, 34, 11 | 27, 24, 22, 10 x 20 | 13 x 20, 13 | 13 x 20, 13. Each takes rounds of
    # web 6, api 6, batch 4, cache 2, db 2 (a round: 6 x 0.05 + 6 x 0.35 + 4 x 1.5 / 2 + 2 x 0.02 + 2 x 0.4 = 6.24
    # cores, 6 x 0.2 + 6 x 0.75 + 4 x 0.5 / 2 + 2 x 1.5 + 2 x 3 = 15.7 GiB): 64 rounds and the partial ones 13 pods
    # (web 6, api 6, batch 1: 3.15 cores) x 3, 8 (1.0), 14 (3.9), 11 (2.05), 7 (0.65), 4 (0.2), 2 (0.1) = 17.35.
    # CPU: (6.33 + 3.22 + 0.05 + 64 x 6.24 + 17.35) x 72 = 426.31 x 72 = 30,694.32 core-hours, 61.3 % of 50,112.
    # Memory: masters 3 x (5.5 + 2.5 + 0.05) = 24.15, infra 2 x (4 + 4 + 0.3 + 0.3 + 0.05) = 17.3, DNS 5 x 0.05,
    # 64 x 15.7 + partial 3 x 5.95 + 2.7 + 6.2 + 4.95 + 1.95 + 0.8 + 0.4 = 1,039.65: 1,081.35 x 72 = 77,857.2, 38.8 %.
    assert re.search(r"demo-prod\s+30,694\.3\s+50,112\.0\s+61\.3%\s+77,857\.2\s+200,448\.0\s+38\.8%", out), out
    # demo-dev (20k, 64-core workers): 184 cores x 72 = 13,248; 257 application pods, namespaces 129 | 120, 8:
    # 6 rounds + web 6, api 3 (1.35) = 38.79, 6 rounds = 37.44, web 6, api 2 = 1.0; with masters, infra and 2 DNS
    # pods: 86.8 x 72 = 6,249.6 core-hours, 47.2 %.
    assert re.search(r"demo-dev\s+6,249\.6\s+13,248\.0\s+47\.2%", out), out
    # The top namespaces by CPU rank by size, none tied: demo-prod app-00000 12 rounds x 6.24 x 72 = 5,391.36;
    # demo-dev app-00000 38.79 x 72 = 2,792.88 and app-00001 37.44 x 72 = 2,695.68; demo-prod app-00002 (4 rounds)
    # 1,797.12 and app-00003 (3 rounds) 1,347.84.
    block = out.split("top 5 namespaces by CPU usage", 1)[1].splitlines()[2:7]
    assert [tuple(line.split()[:3]) for line in block] == [
        ("demo-prod", "app-00000", "5,391.4"),
        ("demo-dev", "app-00000", "2,792.9"),
        ("demo-dev", "app-00001", "2,695.7"),
        ("demo-prod", "app-00002", "1,797.1"),
        ("demo-prod", "app-00003", "1,347.8"),
    ]
    assert "the summary was written): 0" in out  # a realistic sample: no warning
    # gpu_vm.yml by hand: a dedicated H100 (80 GiB = 85.9 GB), two MIG slices of an A100, a T4 koku treats as
    # dedicated: rows and GPUs (or slices) per model and mode.
    assert re.search(r"demo-gpu\s+H100\s+dedicated\s+1\s+1\s+85\.9", out), out
    assert re.search(r"demo-gpu\s+A100 SXM4 40GB\s+MIG\s+2\s+2\s", out), out
    # demo-gpu's sample cost model (quickstart.sample_cost_model) by hand: rhel9-db runs 24 h with 2 cores: hourly VM
    # 24 x 0.25 = 6 plus monthly VM core 2 x 31 / 31 = 2 (Infrastructure), hourly VM core 24 x 2 x 0.05 = 2.4
    # (Supplementary). H100 at 3,100 a month: its dedicated GPU all day 3,100 / 31 = 100, and gpu-0's labels (3 GPUs,
    # mixed strategy, 1 slice per H100) leave 24 x 3 - 24 = 48 GPU-hours unused: 3,100 / (31 x 24) x 48 = 200.
    assert re.search(r"VM\s+rhel9-db\s+Infrastructure\s+8\.00", out), out
    assert re.search(r"VM\s+rhel9-db\s+Supplementary\s+2\.40", out), out
    assert re.search(r"GPU model\s+H100\s+Infrastructure\s+300\.00", out), out
    assert "cluster-month partitions materialized by Dagster: 1/1" in out
    # The command stops the server it started; the data directory stays for the next invocation.
    assert not local_postgres.embedded_running(state)

    # A second invocation (`make demo UI=1`) reuses the data directory and the sample, materializes every partition
    # again, then serves the UI over the same instance; Ctrl-C stops the UI and the embedded server.
    code, second, ui_runs = _quickstart_with_ui(state, tmp_path / "second.log")
    assert code == 0, second[-3000:]
    assert second.count("cached in") == len(quickstart.SAMPLE)
    assert "partitions materialized by Dagster: 9/9" in second
    assert "[8/8] the Dagster UI" in second
    # Per invocation: one summary run per sample cluster, one cost run for demo-gpu's month.
    assert len(ui_runs) == 2 * (len(quickstart.SAMPLE) + 1) and {r["status"] for r in ui_runs} == {"SUCCESS"}
    assert not local_postgres.embedded_running(state)

    reported = {(c, s): int(n.replace(",", "")) for c, s, n in ROW_LINE.findall(second)}
    with local_postgres.start_embedded(state) as pg:
        assert pg.started_here and pg.dsn.startswith("postgresql://") and f"host={state / 'pgdata'}" in pg.dsn
        with psycopg.connect(pg.dsn, autocommit=True) as conn:
            counted = conn.execute(
                f'SELECT cluster_id, data_source, count(*) FROM "{quickstart.ACCOUNT}".'
                "reporting_ocpusagelineitem_daily_summary WHERE cost_model_rate_type IS NULL GROUP BY 1, 2"
            ).fetchall()
        assert reported == {(c, s): n for c, s, n in counted}
        assert {c for c, _ in reported} == {c.cluster_id for c in quickstart.SAMPLE}
        assert {s for _, s in reported} == {"Pod", "Storage"}

        # Dagster's own record, in the instance the UI opens: every partition of every sample cluster materialized,
        # by runs of the jobs that all succeeded (per invocation: one per cluster, one for demo-gpu's costs).
        env = dagster_instance_env(pg.dsn, quickstart.DAGSTER_DATABASE)
        assert env[STORAGE_URL_ENV].startswith("postgresql+psycopg2://postgres@/dagster?host=")
        for key, value in {**env, "DAGSTER_HOME": str(state / quickstart.HOME_DIR)}.items():
            monkeypatch.setenv(key, value)
        with dg.DagsterInstance.get() as instance:
            materialized = instance.get_materialized_partitions(dg.AssetKey("daily_summary"))
            assert len(materialized) == 9  # demo-prod 3 days, demo-dev 3, demo-edge 2, demo-gpu 1
            assert {k.split("|")[0] for k in materialized} == {c.cluster_id for c in quickstart.SAMPLE}
            runs = instance.get_runs()
            assert len(runs) == 2 * (len(quickstart.SAMPLE) + 1)
            assert {r.job_name for r in runs} == {quickstart.JOB_NAME, COSTS_JOB_NAME}
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
