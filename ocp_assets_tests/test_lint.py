"""The lint gate: ruff's rules and formatter find nothing in the code, tests and scripts; ty none in the package."""

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


def test_ty_finds_nothing():
    # What to check and how strictly is pyproject.toml's [tool.ty]; the interpreter is this one, with the dependencies.
    done = subprocess.run(
        [sys.executable, "-m", "ty", "check", "--python", sys.executable],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
