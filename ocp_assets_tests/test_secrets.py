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


@pytest.mark.parametrize("dsn", [f"postgresql://postgres:{PASSWORD}@127.0.0.1:5432/postgres", REFUSED])
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


@pytest.mark.parametrize(
    ("dsn", "secret"),
    [
        ("postgresql://koku:Hunter2pw@db/koku", "Hunter2pw"),
        ("host=db user=koku password='s3 cr3t' dbname=koku", "s3 cr3t"),
        ("host=db password=plainpw dbname=koku", "plainpw"),
        ("postgresql://db/koku?user=koku&password=topsecret&sslmode=require", "topsecret"),
    ],
)
def test_redaction_masks_every_form_of_dsn_password_in_any_text(dsn, secret, monkeypatch):
    from ocp_assets.redaction import known_secrets, redact

    monkeypatch.setenv("OCP_ASSETS_DSN", dsn)
    assert known_secrets([]) == [secret]
    # the DSN itself, and the bare password quoted by some library's message
    for text in (f"cannot use {dsn}", f'invalid token: "{secret}"'):
        assert secret not in redact(text)
