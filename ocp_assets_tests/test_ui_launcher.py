"""`make ui`: a few console lines, Dagster's output in a log file, an embedded server left running said so."""

import datetime as dt
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psycopg
import pytest

from ocp_assets import local_postgres, ui
from ocp_assets.core.pgschema import init_schema
from ocp_assets.dagster_console import SHOWN_CHARS, shown
from ocp_assets.defs.partitions import END_DATE_ENV
from ocp_assets_tests.dagster_fixtures import ACCOUNT, DAY, ENABLED_KEYS, build_cluster
from ocp_assets_tests.engine_support import enable_keys
from ocp_assets_tests.test_dagster_ui import RUNS, SENSOR_SELECTOR
from ocp_assets_tests.test_quickstart import _environment, _free_port, _graphql

REPO = Path(__file__).resolve().parents[1]
COLOURED = "\x1b[32m2026-12-07 16:17:38 +0000\x1b[0m - dagster.daemon.SensorDaemon - \x1b[34m{level}\x1b[0m - {text}"
STEP_EVENT = (
    "2026-12-07 16:17:36 +0000 - dagster - DEBUG - __ASSET_JOB - 940562f5-4cae-49ce-a14b-6132f34e6544 - 12698 - "
    'summarize - STEP_OUTPUT - Yielded output "daily_summary_usage_conserved" of type "Any". (Type check passed).'
)


@pytest.mark.parametrize(
    "line",
    [
        STEP_EVENT,
        COLOURED.format(level="DEBUG", text="Checking for new runs"),
        COLOURED.format(level="INFO", text="Sensor koku_parquet_sensor skipped"),
        COLOURED.format(level="WARNING", text="Found a dagster instance configuration value"),
        "**Assets failed since last iteration and their downstream assets:**",  # a backfill summary, not an error
        "- daily_summary: {cluster|2026-10-01}",
        "  Welcome to Dagster!",
        "",
    ],
)
def test_dagster_chatter_goes_to_the_log_file_only(line):
    assert shown(line) is None


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        (COLOURED.format(level="ERROR", text="Sensor failed"), "dagster.daemon.SensorDaemon - ERROR - Sensor failed"),
        (COLOURED.format(level="CRITICAL", text="daemon died"), "- CRITICAL - daemon died"),
        (STEP_EVENT.replace("DEBUG", "ERROR").replace("STEP_OUTPUT", "STEP_FAILURE"), "- ERROR - __ASSET_JOB"),
        ("ERROR:    [Errno 98] error while attempting to bind on address ('127.0.0.1', 3000)", "[Errno 98]"),
        ("Error: Invalid value for '-p' / '--port': 'x' is not a valid integer.", "Error: Invalid value"),
        (
            COLOURED.format(level="INFO", text="Serving dagster-webserver on http://127.0.0.1:3000 in process 1"),
            "Serving dagster-webserver on http://127.0.0.1:3000",
        ),
    ],
)
def test_errors_and_the_address_are_shown_without_colours(line, expected):
    text = shown(line + "\n")
    assert expected in text and "\x1b" not in text and not text.endswith("\n")


def test_a_long_error_line_is_cut():
    text = shown(COLOURED.format(level="ERROR", text="x" * 5000))
    assert len(text) == SHOWN_CHARS and text.endswith("...")


# A stand-in for dagster dev: chatter on stdout and stderr, from itself and from a child process (as step processes
# inherit the webserver's or daemon's console), and one error line.
CHATTY = """
import subprocess, sys
for n in range(300):
    print(f"2026-12-07 16:17:36 +0000 - dagster - DEBUG - step event {n}", file=sys.stderr)
    print(f"2026-12-07 16:17:36 +0000 - dagster - INFO - webserver {n}")
sys.stdout.flush()
step = "import sys; [print('DEBUG from a step process', file=sys.stderr) for _ in range(200)]"
subprocess.run([sys.executable, "-c", step])
print("2026-12-07 16:17:37 +0000 - dagster.daemon - ERROR - the one error", file=sys.stderr)
"""


def test_quiet_launch_keeps_everything_in_the_log_and_shows_errors_only(tmp_path, capfd):
    log = tmp_path / "ui-console.log"
    log.write_text("")
    assert ui.run_until_stopped([sys.executable, "-c", CHATTY], dict(os.environ), tmp_path, log) == 0
    out, err = capfd.readouterr()
    assert (out, err) == ("", "2026-12-07 16:17:37 +0000 - dagster.daemon - ERROR - the one error\n")
    lines = log.read_text().splitlines()
    assert len(lines) == 300 + 300 + 200 + 1
    assert lines.count("DEBUG from a step process") == 200


def test_verbose_launch_shows_everything(tmp_path, capfd):
    assert ui.run_until_stopped([sys.executable, "-c", CHATTY], dict(os.environ), tmp_path, None) == 0
    out, err = capfd.readouterr()
    assert len(out.splitlines()) == 300 and len(err.splitlines()) == 300 + 200 + 1


# The embedded server left running: said in one line when the command lets go of it, whatever the reason.


@pytest.fixture(name="state")
def state_fixture():
    """The embedded server's state folder, outside pytest's: another pytest session resets /tmp/pytest-of-<user> to
    mode 0700, which the server's own user (pgserver, when run as root) could then no longer traverse."""
    path = Path(tempfile.mkdtemp(prefix="ocp_assets_ui_"))
    path.chmod(0o755)
    yield path
    local_postgres.stop_embedded(path)
    shutil.rmtree(path, ignore_errors=True)


def _by_hand(state: Path, action: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "ocp_assets.local_postgres", action, "--state-dir", str(state)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_server_started_by_hand_meanwhile_is_left_running_and_said(state, capsys):
    pg = local_postgres.start_embedded(state)
    try:
        assert pg.started_here
        assert _by_hand(state, "start").returncode == 0
        assert pg.stop_and_say() is False
        note = capsys.readouterr().out.strip().splitlines()
        assert len(note) == 1 and "left running: it was started by hand" in note[0], note
        assert f"local_postgres stop --state-dir {state}" in note[0]
        assert local_postgres.embedded_running(state)
    finally:
        _by_hand(state, "stop")
    assert not local_postgres.embedded_running(state)


def test_a_server_started_by_hand_before_is_left_running_and_said(state, capsys):
    try:
        assert _by_hand(state, "start").returncode == 0
        pg = local_postgres.start_embedded(state)
        assert not pg.started_here and pg.stop_and_say() is False
        assert "left running: it was started by hand" in capsys.readouterr().out
        assert local_postgres.embedded_running(state)
    finally:
        _by_hand(state, "stop")


def test_a_server_another_command_uses_is_left_running_and_names_it(state, capsys):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from pathlib import Path; from ocp_assets import local_postgres as lp;"
            " pg = lp.start_embedded(Path(sys.argv[1])); print('up', flush=True); sys.stdin.readline(); pg.stop()",
            str(state),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "up"
        assert local_postgres.start_embedded(state).stop_and_say() is False
        note = capsys.readouterr().out
        assert f"left running: process {holder.pid} still uses it and stops it when it ends" in note, note
        holder.stdin.write("\n")
        holder.stdin.flush()
        assert holder.wait(timeout=60) == 0
        assert not local_postgres.embedded_running(state)
    finally:
        if holder.poll() is None:
            holder.kill()
        local_postgres.stop_embedded(state)


def test_a_server_stopped_or_configured_says_nothing(state, capsys, monkeypatch, dsn):
    pg = local_postgres.start_embedded(state)
    assert pg.started_here and pg.stop_and_say() is True
    assert not local_postgres.embedded_running(state)
    monkeypatch.setenv(local_postgres.DSN_ENV, dsn)
    assert local_postgres.resolve(state).stop_and_say() is False
    assert capsys.readouterr().out == ""


def _wait(what: str, probe, process: subprocess.Popen, output: Path, timeout: float):
    """`probe`'s first true value; the bound is for a failure to surface, not a measurement."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.poll() is None, f"the UI ended before {what}:\n{output.read_text()[-3000:]}"
        try:
            value = probe()
        except (OSError, KeyError, TypeError):
            value = None
        if value:
            return value
        time.sleep(1)
    raise AssertionError(f"no {what} after {timeout} s:\n{output.read_text()[-3000:]}")


def _finished_runs(port: int) -> list[dict] | None:
    runs = _graphql(port, RUNS)["runsOrError"]["results"]
    return runs if runs and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs) else None


START_SENSOR = (
    "mutation { startSensor(sensorSelector: {"
    + ", ".join(f'{k}: "{v}"' for k, v in SENSOR_SELECTOR.items())
    + "}) { __typename } }"
)


@pytest.mark.slow
def test_make_ui_prints_a_few_lines_while_its_runs_log_to_a_file_and_says_the_server_stays(tmp_path, state):
    """The sensor's runs (their step events at DEBUG) go to the log file; the terminal gets the UI's address, the log
    file's, the webserver's line, and at Ctrl-C the note that the embedded server started by hand meanwhile stays."""
    data, home = tmp_path / "data", state / "dagster-home"
    days = [DAY, DAY + dt.timedelta(days=1)]
    build_cluster(data, "ui-quiet", days)
    pg = local_postgres.start_embedded(state)  # koku's tables, as `make demo` leaves them
    with psycopg.connect(pg.dsn, autocommit=True) as conn:
        init_schema(conn, ACCOUNT)
        enable_keys(conn, ACCOUNT, ENABLED_KEYS)
    assert pg.stop() is True
    port, output = _free_port(), tmp_path / "console.txt"
    command = [sys.executable, "-m", "ocp_assets.ui", "--data-root", str(data), "--home", str(home)]
    command += ["--state-dir", str(state), "--port", str(port), "--start-date", days[0].isoformat()]
    with output.open("w") as console:
        process = subprocess.Popen(
            command,
            cwd=REPO,
            env={**_environment(), END_DATE_ENV: days[-1].isoformat()},  # the same days whatever today is
            stdout=console,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, as a terminal's Ctrl-C reaches
            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
        )
    try:
        _wait("GraphQL answer", lambda: _graphql(port, "{ version }"), process, output, 180)
        assert _graphql(port, START_SENSOR)["startSensor"]["__typename"] == "Sensor"
        runs = _wait("finished sensor run", lambda: _finished_runs(port), process, output, 240)
        assert {r["status"] for r in runs} == {"SUCCESS"}, output.read_text()
        assert _by_hand(state, "start").returncode == 0  # the user's own psql session, say
        os.killpg(process.pid, signal.SIGINT)  # Ctrl-C
        assert process.wait(timeout=120) == 0, output.read_text()
        lines = output.read_text().splitlines()
        log = home / "ui-console.log"
        assert len(lines) == 4, lines
        assert lines[0].startswith(f"Dagster UI on http://127.0.0.1:{port} ") and lines[0].endswith("Ctrl-C stops it")
        assert lines[1].startswith(f"Dagster's output goes to {log} ")
        assert f"Serving dagster-webserver on http://127.0.0.1:{port}" in lines[2]
        assert lines[3].startswith(f"the embedded PostgreSQL in {state / 'pgdata'} is left running: it was started")
        dagster_output = log.read_text()
        assert " - DEBUG - " in dagster_output and "STEP_START" in dagster_output and "RUN_SUCCESS" in dagster_output
        assert local_postgres.embedded_running(state)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        _by_hand(state, "stop")
    assert not local_postgres.embedded_running(state)
