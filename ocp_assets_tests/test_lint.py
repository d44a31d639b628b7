"""The lint gate: ruff's rules and formatter (pyproject.toml settings) find nothing in the code, tests and scripts."""

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


PATHS = ["ocp_assets", "ocp_assets_tests", "scripts"]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=["rules", "format"])
def test_ruff_finds_nothing(command):
    done = subprocess.run(
        [sys.executable, "-m", "ruff", *command, *PATHS],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
