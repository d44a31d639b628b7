"""No DSN password in any command's output: ocp-assets, the UI launcher (make ui) and the main command (make demo)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

PASSWORD = "S3CR%zzETpw"  # percent-escape that libpq refuses: its message quotes the token
REFUSED = "postgresql://postgres:Hunter2pw@127.0.0.1:1/postgres"  # well formed, nobody listening
BIN = Path(sys.executable).parent


def _run(command: list[str], dsn: str, tmp_path: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "OCP_ASSETS_DSN": dsn, "OCP_ASSETS_STATE_DIR": str(tmp_path / "state")}
    return subprocess.run(command, capture_output=True, text=True, timeout=120, env=env, check=False)


@pytest.mark.parametrize(
    "dsn",
    [
        f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/postgres",
        REFUSED,
        "postgresql://postgres:Hunter2@zzET:pw@127.0.0.1:5432/postgres",  # raw '@' and ':': refused, never split
    ],
    ids=["bad-escape", "refused", "raw-at"],
)
@pytest.mark.parametrize(
    "command",
    [
        [str(BIN / "ocp-assets"), "db", "init"],
        [str(BIN / "ocp-assets"), "--verbose", "db", "init"],
        [str(BIN / "python"), "-m", "ocp_assets.ui", "--data-root", "{tmp}/data"],
        [str(BIN / "python"), "-m", "ocp_assets.quickstart", "--state-dir", "{tmp}/state"],
    ],
    ids=["cli", "cli-verbose", "ui", "quickstart"],
)
def test_a_bad_or_unreachable_dsn_fails_without_showing_its_password(command, dsn, tmp_path):
    (tmp_path / "data").mkdir()
    done = _run([part.format(tmp=tmp_path) for part in command], dsn, tmp_path)
    output = done.stdout + done.stderr
    assert done.returncode != 0, output
    assert "zzET" not in output and "Hunter2" not in output, output
    assert "PostgreSQL" in output or "DSN" in output, output  # it still says what is wrong


# Every form a password can take in a DSN: (DSN, the password's pieces none of which may be shown, exit code). The
# codes by hand: a DSN libpq cannot parse, or would split elsewhere than meant (a raw '@' or '/' in a URL's
# password), is refused as configuration (2) before it is used; a well-formed one meets nobody on port 1:
# unreachable (1).
PIECES = ["Pq7", "Zx9", "Wm4"]
DSN_FORMS = {
    "raw-at-and-colon": ("postgresql://u:Pq7@Zx9:Wm4@127.0.0.1:1/db", 2),
    "raw-slash": ("postgresql://u:Pq7/Zx9Wm4@127.0.0.1:1/db", 2),
    "raw-slash-and-query": ("postgresql://u:Pq7/Zx9?Wm4@127.0.0.1:1/db", 2),
    "raw-question-mark": ("postgresql://u:Pq7?Zx9Wm4@127.0.0.1:1/db", 1),
    "raw-hash": ("postgresql://u:Pq7#Zx9Wm4@127.0.0.1:1/db", 1),
    "raw-space": ("postgresql://u:Pq7 Zx9Wm4@127.0.0.1:1/db", 2),
    "quotes": ("postgresql://u:Pq7'Zx9\"Wm4@127.0.0.1:1/db", 1),
    "unicode": ("postgresql://u:Pq7ÄZx9ßWm4@127.0.0.1:1/db", 1),
    "percent-encoded": ("postgresql://u:Pq7%40Zx9%3AWm4%2F@127.0.0.1:1/db", 1),
    "bad-percent-escape": ("postgresql://u:Pq7%zzZx9Wm4@127.0.0.1:1/db", 2),
    "query-password": ("postgresql://127.0.0.1:1/db?user=u&password=Pq7@Zx9:Wm4", 1),
    "keywords": ("host=127.0.0.1 port=1 user=u password=Pq7@Zx9:Wm4", 1),
    "keywords-quoted": ("host=127.0.0.1 port=1 user=u password='Pq7 Zx9\\'Wm4'", 1),
    "keywords-unquoted-space": ("host=127.0.0.1 port=1 user=u password=Pq7 Zx9Wm4", 2),
}


def _shows_no_piece(output: str) -> None:
    assert not [piece for piece in PIECES if piece in output], output


@pytest.mark.parametrize(("dsn", "code"), list(DSN_FORMS.values()), ids=list(DSN_FORMS))
@pytest.mark.parametrize("route", ["option", "environment"])
def test_no_piece_of_any_form_of_password_is_shown_by_the_command_line(dsn, code, route, tmp_path, capsys, monkeypatch):
    from ocp_assets.cli import main

    args = ["--dsn", dsn] if route == "option" else []
    if route == "environment":
        monkeypatch.setenv("OCP_ASSETS_DSN", dsn)
    for verbose in ([], ["--verbose"]):
        assert main([*verbose, "summarize", "--data-root", str(tmp_path), "--all-clusters", *args]) == code
        done = capsys.readouterr()
        _shows_no_piece(done.out + done.err)
        line = done.err.strip().splitlines()[-1]
        assert line.startswith("ocp-assets: error: ") and "PostgreSQL" in line, line
        if code == 2:  # says how to write the special characters
            assert "percent-encode special characters" in line and "@ as %40" in line, line
        if verbose:
            assert "Traceback (most recent call last)" in done.err
            assert f"{os.sep}ocp_assets{os.sep}cli.py" in done.err  # paths intact, not starred out
        else:
            assert len(done.err.strip().splitlines()) == 1, done.err


@pytest.mark.parametrize(
    "command",
    [["--dns", "{dsn}"], ["db", "init", "--schema", "x", "{dsn}"]],
    ids=["misspelt-option", "stray-argument"],
)
def test_an_argument_argparse_refuses_is_quoted_without_its_password(command):
    """argparse repeats the arguments it does not know: a DSN among them is masked by its structure."""
    dsn = DSN_FORMS["raw-at-and-colon"][0]
    done = subprocess.run(
        [str(BIN / "ocp-assets"), *(part.format(dsn=dsn) for part in command)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    _shows_no_piece(done.stderr)
    assert "postgresql://u:***@127.0.0.1:1/db" in done.stderr, done.stderr


@pytest.mark.parametrize(
    ("password", "elsewhere"),
    [("p", "ocp-assets: error: "), ("ocp", "ocp_assets"), ("a@ss", "PostgreSQL"), ("error", "ocp-assets: error: ")],
)
def test_a_short_password_is_never_searched_for_so_the_same_text_elsewhere_stays_intact(password, elsewhere):
    """The old masking replaced the password's text everywhere: `oc***-assets`, every traceback path garbled."""
    dsn = f"postgresql://u:{password}@127.0.0.1:1/db"
    done = subprocess.run(
        [str(BIN / "ocp-assets"), "--verbose", "db", "init", "--schema", "x", "--dsn", dsn],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "***" not in done.stderr.replace("u:***@", ""), done.stderr  # nothing starred but a DSN's password
    assert elsewhere in done.stderr and done.stderr.strip().splitlines()[-1].startswith("ocp-assets: error: ")
    assert dsn not in done.stderr


@pytest.mark.parametrize(
    ("dsn", "masked"),
    [
        ("postgresql://koku:Hunter2pw@db/koku", "postgresql://koku:***@db/koku"),
        ("postgresql://koku:p@ss:w@rd@db:5432/koku", "postgresql://koku:***@db:5432/koku"),
        ("postgresql://koku:p ss/w?rd@db/koku", "postgresql://koku:***@db/koku"),
        ("postgres://:only-pw@db/koku", "postgres://:***@db/koku"),
        ("host=db user=koku password='s3 cr3t' dbname=koku", "host=db user=koku password=*** dbname=koku"),
        ("host=db user=koku password='it\\'s' dbname=koku", "host=db user=koku password=*** dbname=koku"),
        ("host=db password = plainpw dbname=koku", "host=db password = *** dbname=koku"),
        (
            "postgresql://db/koku?user=koku&password=top@secret&sslmode=require",
            "postgresql://db/koku?user=koku&password=***&sslmode=require",
        ),
    ],
)
def test_redaction_masks_a_dsns_password_by_its_structure_and_leaves_the_rest_intact(dsn, masked, monkeypatch):
    from ocp_assets.redaction import known_dsns, redact

    monkeypatch.setenv("OCP_ASSETS_DSN", dsn)
    assert known_dsns([]) == [dsn]
    around = "File /work/ocp_assets/cli.py, line 3: koku db ss rd top secret plain"
    assert redact(f"{around}: cannot use {dsn} now") == f"{around}: cannot use {masked} now"
    quote = repr(dsn)[0]  # as Python quotes it in a message: the same quotes around the masked DSN
    assert redact(f"{around}: {quote}{dsn}{quote}") == f"{around}: {quote}{masked}{quote}"
    # the bare password quoted by a message is not searched for (libpq's parse errors, which quote DSN tokens, are
    # never shown: test_no_piece_of_any_form_of_password_is_shown_by_the_command_line)
    assert redact(around) == around


def test_a_dsn_on_the_command_line_is_masked_in_any_message(monkeypatch):
    from ocp_assets.redaction import known_dsns, redact

    monkeypatch.delenv("OCP_ASSETS_DSN", raising=False)
    argv = ["summarize", "--dsn=postgresql://u:a b@db/x", "--schema", "postgresql"]
    assert known_dsns(argv) == ["postgresql://u:a b@db/x"]
    assert redact("failed: postgresql://u:a b@db/x", known_dsns(argv)) == "failed: postgresql://u:***@db/x"


@pytest.mark.parametrize(("dsn", "code"), list(DSN_FORMS.values()), ids=list(DSN_FORMS))
def test_dagsters_database_resource_fails_without_a_piece_of_the_password(dsn, code):
    """What a Dagster step logs when koku_db cannot connect: the error's message and traceback."""
    import traceback

    from ocp_assets.core.errors import OcpAssetsError
    from ocp_assets.defs.resources import SummaryDatabase

    with pytest.raises(OcpAssetsError) as failed, SummaryDatabase(dsn=dsn).connect():
        pass
    _shows_no_piece("".join(traceback.format_exception(failed.value)))
    assert "PostgreSQL" in str(failed.value)
