"""A PostgreSQL server of a test's own (initdb on a free port), for faults the shared server must not suffer."""

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

PG_BIN = Path("/usr/lib/postgresql/15/bin")


def as_postgres(*command: str) -> None:
    """The server's own tools refuse root: run them as the postgres user, as the machine's PostgreSQL runs."""
    prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run([*prefix, *command], check=True, capture_output=True, timeout=120)


@dataclass(frozen=True)
class PrivateServer:
    dsn: str
    ctl: list[str]  # pg_ctl with this server's data directory and options; append "start", "stop", "restart"
    home: Path  # a folder the postgres user owns, outside pytest's private (0700, root's) temporary tree


@contextmanager
def private_postgres() -> Iterator[PrivateServer]:
    if not (PG_BIN / "initdb").exists():
        raise RuntimeError(f"{PG_BIN}/initdb is missing: the machine's PostgreSQL 15 server package provides it")
    home = Path(tempfile.mkdtemp(prefix="ocp_assets_private_pg_"))
    if os.geteuid() == 0:
        subprocess.run(["chown", "postgres", str(home)], check=True)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = home / "data"
    as_postgres(str(PG_BIN / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres", "--no-sync")
    options = f"-p {port} -k {home} -c listen_addresses=127.0.0.1 -c fsync=off"
    ctl = [str(PG_BIN / "pg_ctl"), "-D", str(data), "-o", options, "-l", str(home / "log"), "-w"]
    as_postgres(*ctl, "start")
    try:
        yield PrivateServer(f"postgresql://postgres@127.0.0.1:{port}/postgres", ctl, home)
    finally:
        as_postgres(*ctl, "-m", "immediate", "stop")
        shutil.rmtree(home, ignore_errors=True)
