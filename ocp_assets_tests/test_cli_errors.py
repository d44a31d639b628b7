"""CLI errors (one line, a hint, traceback only with --verbose, no password), cluster ids, progress, benchmark."""

import datetime as dt
import io
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

from ocp_assets import summary_commands
from ocp_assets.cli import main
from ocp_assets.core.generate import SCENARIO_DIR
from ocp_assets.core.ingest import ClusterIdentity, cluster_record_key
from ocp_assets.core.storage import open_data_root
from ocp_assets.progress import Progress
from ocp_assets_tests.dagster_fixtures import DAY, build_cluster
from ocp_assets_tests.engine_support import engine_rows
from ocp_assets_tests.reference.koku_sql import compare_summaries

PASSWORD = "s3cr3t-pw"


def _error_line(capsys) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert err[0].startswith("ocp-assets: ") and " — " in err[0], err
    return err[0]


def _koku_cluster_rows(conn, schema: str) -> list[tuple]:
    return conn.execute(
        f'SELECT cluster_id, provider_id::text FROM "{schema}".reporting_ocp_clusters ORDER BY cluster_id'
    ).fetchall()


# ------------------------------------------------------------------ one line, a hint, no traceback, no password


def test_db_init_with_a_dsn_that_is_not_a_url_is_one_line_and_exit_2(capsys):
    assert main(["db", "init", "--dsn", "not-a-url", "--schema", "x"]) == 2
    line = _error_line(capsys)
    assert "DSN is malformed" in line and "--dsn postgresql://" in line


@pytest.mark.parametrize(
    "dsn",
    [f"postgresql://user:{PASSWORD}@127.0.0.1:1/db", f"host=127.0.0.1 port=1 user=u password={PASSWORD}"],
    ids=["url", "keywords"],
)
def test_an_unreachable_database_names_no_password_even_with_verbose(capsys, dsn):
    # exit 1 (the database is out of reach, README "Errors"), no longer 2 as if the configuration were wrong
    assert main(["db", "init", "--dsn", dsn, "--schema", "x"]) == 1
    line = _error_line(capsys)
    assert "cannot connect to PostgreSQL" in line and PASSWORD not in line

    assert main(["--verbose", "db", "init", "--dsn", dsn, "--schema", "x"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and PASSWORD not in err
    assert err.strip().splitlines()[-1].startswith("ocp-assets: error: cannot connect to PostgreSQL")


def test_a_password_in_a_database_error_message_is_masked(capsys, monkeypatch):
    def leaks(*args, **kwargs):
        raise psycopg.OperationalError(f"could not use postgresql://u:{PASSWORD}@db/x")

    monkeypatch.setattr(summary_commands, "connect", leaks)
    assert main(["db", "init", "--dsn", f"postgresql://u:{PASSWORD}@db/x", "--schema", "x"]) == 1
    line = _error_line(capsys)
    assert line.startswith("ocp-assets: database error (OperationalError):") and PASSWORD not in line
    assert "postgresql://u:***@db/x" in line


def test_an_unexpected_error_is_one_line_exit_1_and_its_traceback_only_with_verbose(capsys, monkeypatch, dsn):
    def broken(*args, **kwargs):
        raise RuntimeError("something nobody planned for")

    monkeypatch.setattr(summary_commands, "init_schema", broken)
    assert main(["db", "init", "--dsn", dsn, "--schema", "x"]) == 1
    line = _error_line(capsys)
    assert "unexpected error (RuntimeError): something nobody planned for" in line and "--verbose" in line

    # --verbose is accepted after the command too
    assert main(["db", "init", "--dsn", dsn, "--schema", "x", "--verbose"]) == 1
    err = capsys.readouterr().err
    assert "Traceback (most recent call last)" in err and "RuntimeError: something nobody planned for" in err


def test_the_installed_command_prints_no_traceback(tmp_path):
    """Through the console script, as a user runs it: stderr is the one line."""
    done = subprocess.run(
        [str(Path(sys.executable).parent / "ocp-assets"), "db", "init", "--dsn", "not-a-url", "--schema", "x"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.count("\n") == 1 and "Traceback" not in done.stderr, done.stderr


def test_a_broken_yaml_names_the_users_file_and_the_place_before_nise_runs(tmp_path, capsys):
    broken = tmp_path / "mine.yml"
    broken.write_text("generators:\n  - OCPGenerator:\n      start_date: [2026-10-01\n")
    cache = tmp_path / "cache"
    args = ["generate", "--yaml", str(broken), "--out", str(tmp_path / "root"), "--cache-dir", str(cache)]

    assert main(args) == 2

    line = _error_line(capsys)
    assert f"file {broken}: not valid YAML" in line and "line 4, column 1" in line, line
    assert "scenario.yml" not in line
    assert not cache.exists() and not (tmp_path / "root").exists()  # nise never ran, nothing was written


def test_a_yaml_without_generators_is_refused_as_not_a_nise_report(tmp_path, capsys):
    (tmp_path / "other.yml").write_text("name: not nise\n")
    args = ["generate", "--yaml", str(tmp_path / "other.yml"), "--out", str(tmp_path / "root")]
    assert main([*args, "--cache-dir", str(tmp_path / "cache")]) == 2
    assert "no 'generators' list" in _error_line(capsys)


@pytest.mark.slow
def test_a_nise_failure_names_the_users_file_and_shows_nises_output_only_with_verbose(tmp_path, capsys):
    # A label value holding ':' is valid YAML and crashes nise (contract 7).
    text = (SCENARIO_DIR / "smoke.yml").read_text().replace("label_app:shop-web|", "label_app:shop:web|")
    (tmp_path / "crash.yml").write_text(text)
    args = ["generate", "--yaml", str(tmp_path / "crash.yml"), "--out", str(tmp_path / "root")]
    args += ["--cache-dir", str(tmp_path / "cache")]

    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[0].startswith("nise: running on ")  # announced, since nise takes a while
    line = err[-1]
    assert len(err) == 2 and line.startswith(f"ocp-assets: error: file {tmp_path / 'crash.yml'}: nise failed (exit 1)")
    assert "scenario.yml" not in line and "Traceback" not in "\n".join(err)

    assert main(["-v", *args]) == 2
    assert "Traceback" in capsys.readouterr().err  # nise's own output


# ------------------------------------------------------------------ a cluster id contradicting its source


@pytest.fixture
def recorded_cluster(pg, tmp_path):
    """A data root holding cluster "east" (its ingest record names it) and the summarize arguments for it."""
    conn, schema = pg
    identity = build_cluster(tmp_path / "data", "east", [DAY])
    args = ["summarize", "--data-root", str(tmp_path / "data"), "--source", identity.source_uuid]
    return conn, schema, identity, args


def test_summarize_refuses_a_cluster_id_contradicting_the_ingest_record(recorded_cluster, capsys, dsn):
    conn, schema, identity, args = recorded_cluster

    code = main([*args, "--cluster-id", "west", "--dsn", dsn, "--schema", schema])

    line = _error_line(capsys)
    assert code == 2
    assert f"source {identity.source_uuid} is recorded for cluster 'east'" in line and "not 'west'" in line
    assert "pass --cluster-id east" in line
    assert len(engine_rows(conn, schema, identity.source_uuid)) == 0 and _koku_cluster_rows(conn, schema) == []


def test_summarize_takes_account_and_cluster_id_from_the_record_when_left_out(recorded_cluster, capsys, dsn):
    conn, schema, identity, args = recorded_cluster

    assert main([*args, "--dsn", dsn, "--schema", schema]) == 0

    assert "cluster east (source" in capsys.readouterr().out
    assert _koku_cluster_rows(conn, schema) == [("east", identity.source_uuid)]
    assert len(engine_rows(conn, schema, identity.source_uuid)) > 0


def test_summarize_refuses_a_cluster_id_contradicting_kokus_cluster_table(recorded_cluster, capsys, dsn):
    """The data root's record rewritten (or lost): koku's reporting_ocp_clusters still knows the source's cluster."""
    conn, schema, identity, args = recorded_cluster
    assert main([*args, "--dsn", dsn, "--schema", schema]) == 0
    before = engine_rows(conn, schema, identity.source_uuid)
    root = open_data_root(args[2])
    renamed = ClusterIdentity("west", identity.source_uuid, identity.account, "west")
    root.write_bytes(cluster_record_key(identity.account, identity.source_uuid), renamed.to_json())
    capsys.readouterr()

    for command in ([*args, "--dsn", dsn, "--schema", schema], ["summarize", "--data-root", args[2], "--all-clusters"]):
        code = main([*command, "--dsn", dsn, "--schema", schema] if "--all-clusters" in command else command)
        line = _error_line(capsys)
        assert code == 2
        assert f"is recorded for cluster 'east' in {schema}.reporting_ocp_clusters, not 'west'" in line, line

    assert compare_summaries(before, engine_rows(conn, schema, identity.source_uuid), rel_tol=0) == []
    assert _koku_cluster_rows(conn, schema) == [("east", identity.source_uuid)]


def test_summarize_refuses_a_source_that_is_not_a_uuid(capsys, tmp_path, dsn):
    args = ["summarize", "--data-root", str(tmp_path), "--source", "east", "--dsn", dsn]
    assert main(args) == 2
    assert "--source 'east' is not a uuid" in _error_line(capsys)


# ------------------------------------------------------------------ progress


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_progress_in_a_log_is_silent_for_short_work_and_one_line_per_step_for_long_work():
    clock, log = FakeClock(), io.StringIO()
    with Progress("summarize", 3, "days", stream=log, clock=clock) as progress:
        for _ in range(3):
            clock.now += 1
            progress.advance()
    assert log.getvalue() == ""  # three seconds of work: the per-day results say enough

    clock, log = FakeClock(), io.StringIO()
    with Progress("summarize", 40, "days", stream=log, clock=clock) as progress:
        for _ in range(40):
            clock.now += 2
            progress.advance()
    lines = log.getvalue().splitlines()
    # a line per 10 % once 10 s have passed since the last one (the first at 5 days = 12 %), then the end
    assert lines[0] == "summarize: 5/40 days (12%), 0.50 days/s, ETA 01:10"
    assert len(lines) == 8 and lines[-1] == "summarize: 40/40 days (100%), 0.50 days/s, 01:20"


@pytest.fixture
def redraw_every_advance(monkeypatch):
    from ocp_assets import progress

    monkeypatch.setattr(progress, "REDRAW_SECONDS", 0.0)  # no clock in the test: each advance is drawn


def test_progress_on_a_terminal_is_redrawn_in_place_and_erased_by_an_error(redraw_every_advance):
    terminal = Terminal()
    with pytest.raises(RuntimeError), Progress("ingest", 4, "files", stream=terminal) as progress:
        progress.advance(note="a.csv")
        drawn = terminal.getvalue()
        raise RuntimeError("fails")
    # tqdm's bar: done/total, rate and ETA (elapsed<remaining), the note; every redraw starts with \r
    assert drawn.startswith("\ringest:") and "1/4 [" in drawn and " files/s, a.csv]" in drawn, drawn
    assert "\n" not in terminal.getvalue()  # the error line that follows starts on a clean line
    assert terminal.getvalue().rsplit("\r", 2)[-2].strip() == ""  # the bar was overwritten with blanks


def test_progress_on_a_terminal_ends_with_its_final_line_and_keeps_results_above_it(capsys, redraw_every_advance):
    terminal = Terminal()
    with Progress("summarize", 2, "days", stream=terminal) as progress:
        for day in ("2026-10-01", "2026-10-02"):
            progress.echo(f"  {day}  Pod 3")
            progress.advance(note=day)
    assert capsys.readouterr().out == "  2026-10-01  Pod 3\n  2026-10-02  Pod 3\n"
    final = terminal.getvalue().rsplit("\r", 1)[-1]
    assert final.startswith("summarize: 100%") and "2/2 [" in final and final.endswith(", 2026-10-02]\n"), final


def test_tqdm_is_loaded_only_when_progress_is_shown():
    """`ocp-assets --help` and short work in a log never import it (the CLI's start-up time)."""
    code = (
        "import io, sys\n"
        "from ocp_assets.cli import main\n"
        "from ocp_assets.progress import Progress\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "with Progress('x', 3, 'days', stream=io.StringIO()) as progress:\n    progress.advance(3)\n"
        "print('tqdm' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert done.stdout.splitlines()[-1] == "False", done.stdout


def test_summarize_over_many_days_logs_progress_with_rate_and_eta(pg, tmp_path, capsys, dsn, monkeypatch):
    from ocp_assets import progress

    _conn, schema = pg
    days = [DAY + dt.timedelta(days=n) for n in range(4)]
    identity = build_cluster(tmp_path, "many", days)
    monkeypatch.setattr(progress, "LOG_SECONDS", 0.0)  # a log line at every 10 %, however fast the days are

    args = ["summarize", "--data-root", str(tmp_path), "--source", identity.source_uuid, "--dsn", dsn]
    assert main([*args, "--schema", schema]) == 0

    err = capsys.readouterr().err.splitlines()
    assert [line.split(",")[0] for line in err] == [
        "summarize: 1/4 days (25%)",
        "summarize: 2/4 days (50%)",
        "summarize: 3/4 days (75%)",
        "summarize: 4/4 days (100%)",
    ]
    assert all(" days/s" in line for line in err) and "ETA" in err[0]


# ------------------------------------------------------------------ the benchmark is a repository script


def test_the_benchmark_is_a_repository_script_not_part_of_the_installed_package():
    import importlib.util

    repo = Path(__file__).resolve().parents[1]
    assert importlib.util.find_spec("ocp_assets.benchmark") is None
    makefile = (repo / "Makefile").read_text()
    assert makefile.count("$(VENV)/bin/python scripts/benchmark.py --scale") == 2  # make benchmark, -dagster
    done = subprocess.run(
        [sys.executable, str(repo / "scripts" / "benchmark.py"), "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0 and "--dagster" in done.stdout, done.stderr
