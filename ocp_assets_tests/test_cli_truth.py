"""The command line tells the truth: stdout never decides the write, Ctrl-C, refused ranges, errors in their class."""

import datetime as dt
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ocp_assets import summary_commands
from ocp_assets.cli import EXIT_ERROR, EXIT_INFRASTRUCTURE, describe_error, main
from ocp_assets_tests.dagster_fixtures import DAY, build_cluster, daily_files

DAYS = [DAY + dt.timedelta(days=n) for n in range(3)]
# The real command behind a hook: the code runs in the process before `ocp-assets` starts, so that an event (a
# SIGINT, a wait for the reader of stdout to go) happens at a chosen point of the run, not after some time.
RUN_CLI = "\nfrom ocp_assets.cli import main\nsys.exit(main())\n"


@pytest.fixture
def cluster(pg, tmp_path, dsn):
    """Three days of one cluster and the summarize arguments for them."""
    conn, schema = pg
    identity = build_cluster(tmp_path / "data", "truth", DAYS)
    args = ["summarize", "--data-root", str(tmp_path / "data"), "--source", identity.source_uuid]
    return conn, schema, identity, [*args, "--dsn", dsn, "--schema", schema]


def _days_written(conn, schema: str, source: str) -> list[dt.date]:
    return [
        day
        for (day,) in conn.execute(
            f'SELECT DISTINCT usage_start FROM "{schema}".reporting_ocpusagelineitem_daily_summary '
            "WHERE source_uuid = %s ORDER BY 1",
            (source,),
        ).fetchall()
    ]


def _only_progress(stderr: str) -> bool:
    """Nothing said of the pipe: no error, no traceback; progress lines only (a loaded machine may take 10 s)."""
    return all(line.startswith("summarize: ") for line in stderr.splitlines())


def _hooked(hook: str, args: list[str], **popen) -> subprocess.Popen:
    code = "import os, signal, sys\n" + textwrap.dedent(hook) + RUN_CLI
    return subprocess.Popen([sys.executable, "-c", code, *args], text=True, **popen)


# ------------------------------------------------------------------ stdout never decides the write

# Before the second day, wait until nobody reads stdout any more (poll reports POLLERR on a pipe without reader),
# so the rest of the results meet a closed pipe whatever the pipe's buffer could have held. Once the command met the
# closed pipe it writes to /dev/null instead, which never reports POLLERR: no wait then (it waited its 60 s).
WAIT_FOR_READER_TO_GO = """
    import select, stat
    from ocp_assets import summary_commands
    real = summary_commands.run_cluster_day
    calls = []
    def run_cluster_day(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2 and stat.S_ISFIFO(os.fstat(1).st_mode):
            poller = select.poll()
            poller.register(1, select.POLLERR)
            poller.poll(60_000)
        return real(*args, **kwargs)
    summary_commands.run_cluster_day = run_cluster_day
"""


def test_summarize_piped_into_head_writes_every_day_and_says_nothing_of_the_pipe(cluster):
    conn, schema, identity, args = cluster
    command = _hooked(WAIT_FOR_READER_TO_GO, args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    head = subprocess.run(["head", "-1"], stdin=command.stdout, capture_output=True, text=True, check=True)
    command.stdout.close()  # head is its only reader
    _, err = command.communicate(timeout=120)

    assert head.stdout.startswith("cluster truth (source ")  # the first result line
    assert command.returncode == 0 and _only_progress(err), err
    assert _days_written(conn, schema, identity.source_uuid) == DAYS


def test_summarize_into_a_pipe_closed_before_it_starts_writes_every_day(cluster):
    conn, schema, identity, args = cluster
    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "ocp-assets"), *args],
            stdout=write_end,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    finally:
        os.close(write_end)
    assert done.returncode == 0 and _only_progress(done.stderr), done.stderr
    assert _days_written(conn, schema, identity.source_uuid) == DAYS


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
@pytest.mark.parametrize("fails", [False, True], ids=["days-good", "days-bad"])
def test_a_full_stdout_is_one_line_and_changes_nothing_written(cluster, fails):
    conn, schema, identity, args = cluster
    if fails:  # the month's pod file lacks a measure: its days fail, exit 2 as without a full stdout
        path = daily_files(args[2], identity, "pod_usage")[0]
        pq.write_table(pq.read_table(path).drop_columns(["pod_usage_cpu_core_seconds"]), path)
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [str(Path(sys.executable).parent / "ocp-assets"), *args],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
            check=False,
        )
    lost = [line for line in done.stderr.splitlines() if "could not be written to stdout" in line]
    assert lost == [
        "ocp-assets: error: the results could not be written to stdout (No space left on device) — the command did "
        "its work regardless (what it wrote stands, as its exit status says); give stdout room or send it elsewhere "
        "to see them"
    ], done.stderr
    assert "Traceback" not in done.stderr and done.stderr.splitlines()[-1] == lost[0]
    if fails:
        assert done.returncode == EXIT_ERROR, done.stderr  # the failed days' code, not the lost output's
        assert "'pod_usage_cpu_core_seconds'" in done.stderr
    else:
        assert done.returncode == EXIT_INFRASTRUCTURE and len(done.stderr.splitlines()) == 1, done.stderr
    assert _days_written(conn, schema, identity.source_uuid) == ([] if fails else DAYS)


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="no /dev/full")
def test_help_into_a_full_stdout_says_so_and_into_a_closed_pipe_says_nothing():
    command = [str(Path(sys.executable).parent / "ocp-assets"), "--help"]
    with open("/dev/full", "w") as full:
        done = subprocess.run(command, stdout=full, stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    assert done.returncode == EXIT_INFRASTRUCTURE and "could not be written to stdout" in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) == 1

    read_end, write_end = os.pipe()
    os.close(read_end)
    try:
        done = subprocess.run(command, stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60, check=False)
    finally:
        os.close(write_end)
    assert done.returncode == 0 and done.stderr == "", done.stderr


# ------------------------------------------------------------------ Ctrl-C

INTERRUPT_ON_IMPORT = """
    import importlib.abc
    class InterruptOnImport(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "{module}":
                os.kill(os.getpid(), signal.SIGINT)
            return None
    sys.meta_path.insert(0, InterruptOnImport())
"""
INTERRUPT_IN_FUNCTION = """
    import {module} as where
    real = where.{function}
    calls = []
    def interrupted(*args, **kwargs):
        calls.append(1)
        if len(calls) == {call}:
            os.kill(os.getpid(), signal.SIGINT)
        return real(*args, **kwargs)
    where.{function} = interrupted
"""
NOTHING_WRITTEN = "ocp-assets: interrupted before anything was written — run the same command again"


@pytest.mark.parametrize(
    "hook",
    [
        INTERRUPT_ON_IMPORT.format(module="ocp_assets.summary_commands"),  # the command's modules loading
        INTERRUPT_ON_IMPORT.format(module="pandera"),
        INTERRUPT_IN_FUNCTION.format(module="psycopg", function="connect", call=1),
        INTERRUPT_IN_FUNCTION.format(module="ocp_assets.summary_commands", function="_summarised_days", call=1),
        INTERRUPT_IN_FUNCTION.format(module="ocp_assets.summary_commands", function="_days", call=1),
    ],
    ids=["importing-the-command", "importing-pandera", "connecting", "reading-summarised-days", "listing-days"],
)
def test_ctrl_c_during_start_up_is_one_line_exit_130_and_nothing_written(cluster, hook):
    conn, schema, identity, args = cluster
    command = _hooked(hook, args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    _out, err = command.communicate(timeout=120)

    assert command.returncode == 130, err
    assert err.splitlines() == [NOTHING_WRITTEN]
    assert _days_written(conn, schema, identity.source_uuid) == []


def test_ctrl_c_after_a_day_says_what_was_written(cluster):
    conn, schema, identity, args = cluster
    hook = INTERRUPT_IN_FUNCTION.format(module="ocp_assets.summary_commands", function="run_cluster_day", call=2)
    command = _hooked(hook, args, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, err = command.communicate(timeout=120)

    assert command.returncode == 130, err
    assert err.splitlines() == [
        "ocp-assets: interrupted (1 cluster-day(s) written before the interrupt) — each summary of a day (usage, "
        "GPU) and each file is written whole or not at all; run the same command again"
    ]
    assert out.splitlines()[1].startswith(f"  {DAYS[0].isoformat()}  Pod ")
    assert _days_written(conn, schema, identity.source_uuid) == DAYS[:1]


# ------------------------------------------------------------------ a reversed range is refused whole


@pytest.mark.parametrize("which", ["source", "all-clusters"])
def test_start_after_end_is_refused_up_front_and_nothing_is_written(cluster, capsys, which):
    conn, schema, identity, args = cluster
    if which == "all-clusters":
        args = ["summarize", "--data-root", args[2], "--all-clusters", *args[5:]]
    code = main([*args, "--start", DAYS[2].isoformat(), "--end", DAYS[0].isoformat()])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == EXIT_ERROR
    assert err == [
        f"ocp-assets: error: --start {DAYS[2]} is after --end {DAYS[0]}; nothing was written — pass a --start on or "
        "before --end"
    ]
    assert _days_written(conn, schema, identity.source_uuid) == []


def test_a_one_day_range_is_not_reversed(cluster, capsys):
    conn, schema, identity, args = cluster
    assert main([*args, "--start", DAYS[1].isoformat(), "--end", DAYS[1].isoformat()]) == 0
    assert _days_written(conn, schema, identity.source_uuid) == [DAYS[1]]


# ------------------------------------------------------------------ each database error in its class


def _real_error(dsn: str, statement: str) -> psycopg.Error:
    with psycopg.connect(dsn, autocommit=True) as conn:
        try:
            conn.execute(statement)
        except psycopg.Error as exc:
            return exc
    raise AssertionError(f"{statement} did not fail")


@pytest.mark.parametrize(
    ("statement", "code", "hint"),
    [
        ("SELECT * FROM no_such_table_here", EXIT_ERROR, "ocp-assets db init --schema SCHEMA"),
        ("SELECT no_such_column FROM pg_class", EXIT_ERROR, "ocp-assets db init --schema SCHEMA"),
        ("SELECT * FROM no_such_schema_here.t", EXIT_ERROR, "ocp-assets db init --schema SCHEMA"),
        ("SELECT '\"'::regclass", EXIT_ERROR, "a name given (--schema) is not one PostgreSQL accepts"),
        ("SELEC 1", EXIT_INFRASTRUCTURE, "this is a bug"),
        ("SELECT 1/0", EXIT_INFRASTRUCTURE, "this is a bug"),
        ("SELECT pg_terminate_backend(pg_backend_pid())", EXIT_INFRASTRUCTURE, "once PostgreSQL is back"),
    ],
    ids=[
        "undefined-table",
        "undefined-column",
        "undefined-schema",
        "invalid-name",
        "syntax",
        "division-by-zero",
        "terminated",
    ],
)
def test_each_database_error_gets_the_hint_and_exit_code_of_its_class(dsn, statement, code, hint):
    exc = _real_error(dsn, statement)
    what, said, exit_code = describe_error(exc)
    assert (exit_code, hint in said) == (code, True), (what, said)
    assert "DSN" not in what + said and ("PostgreSQL is back" in said) == (hint == "once PostgreSQL is back")


def test_a_missing_table_while_summarising_is_configuration_not_a_malformed_dsn(cluster, capsys, monkeypatch):
    args = cluster[3]

    def table_gone(conn, *rest, **kwargs):
        conn.execute("SELECT * FROM no_such_table_here")

    monkeypatch.setattr(summary_commands, "run_cluster_day", table_gone)
    assert main(args) == EXIT_ERROR
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith('ocp-assets: database error (UndefinedTable): relation "no_such_table_here" does not exist')
    assert "malformed" not in line and "PostgreSQL is back" not in line and "db init --schema" in line


@pytest.mark.parametrize(
    ("target", "code", "said"),
    [
        ("postgresql://postgres@127.0.0.1:1/postgres", EXIT_INFRASTRUCTURE, "cannot connect to PostgreSQL"),
        ("postgresql://postgres@no-such-host.invalid/postgres", EXIT_INFRASTRUCTURE, "cannot connect to PostgreSQL"),
        ("postgresql://no_such_role_here@{host}/postgres", EXIT_ERROR, "PostgreSQL refused the connection"),
        ("postgresql://postgres@{host}/no_such_database_here", EXIT_ERROR, "PostgreSQL refused the connection"),
        (
            "postgresql://postgres@{host}/postgres?options=-cno_such_parameter%3D1",
            EXIT_ERROR,
            "PostgreSQL refused the connection",
        ),
    ],
    ids=["refused", "unknown-host", "unknown-role", "unknown-database", "bad-option"],
)
def test_an_unreachable_database_exits_1_and_a_refused_login_2(target, code, said, dsn, capsys):
    host = psycopg.conninfo.conninfo_to_dict(dsn).get("host", "127.0.0.1")
    if host.startswith("/") or host != "127.0.0.1":
        pytest.skip("the test DSN is not the machine's TCP PostgreSQL")
    assert main(["db", "init", "--schema", "x", "--dsn", target.format(host=host)]) == code
    [line] = capsys.readouterr().err.strip().splitlines()
    assert line.startswith(f"ocp-assets: error: {said}"), line
    assert ("run the same command again once it answers" in line) == (code == EXIT_INFRASTRUCTURE), line


# ------------------------------------------------------------------ a duplicate column is said as such


@pytest.mark.parametrize(
    "column",
    ["pod_usage_cpu_core_seconds", "node_role", "interval_start", "namespace"],
    ids=["required-measure", "optional", "interval-start", "required-key"],
)
def test_a_duplicate_column_is_named_as_such_not_as_missing(cluster, capsys, column):
    conn, schema, identity, args = cluster
    path = daily_files(args[2], identity, "pod_usage")[0]
    table = pq.read_table(path)
    if column not in table.column_names:
        table = table.append_column(column, pa.nulls(table.num_rows, pa.string()))
    pq.write_table(table.append_column(column, table[column]), path)

    assert main(args) == EXIT_ERROR
    err = capsys.readouterr().err
    assert f"file {path}" in err or f"{path.name}" in err, err
    assert f"column {column!r}: duplicate column: the file holds it more than once" in err, err
    assert "required column is missing" not in err
    assert _days_written(conn, schema, identity.source_uuid) == []
