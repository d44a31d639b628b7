"""`python -m ocp_assets.ui`: the Dagster UI (webserver and daemon) over a data root, with its instance in PostgreSQL.

PostgreSQL is ``OCP_ASSETS_DSN`` when set, else the embedded server under the project's state folder (started here
and stopped when the UI stops; ocp_assets.local_postgres). Dagster's runs and events go to their own database
(default ``dagster``, created if missing) on that server; koku's tables stay in the DSN's database.
``DAGSTER_HOME`` gets ocp_assets' dagster.yaml and a workspace.yaml loading ``ocp_assets.definitions`` (both from the
installed package, never from a repository around it).

The terminal gets a few lines: where the UI is, where Dagster's output goes, the webserver's address once it serves,
errors, and on stop whether the embedded PostgreSQL was left running. Everything Dagster prints (its processes' step
events at DEBUG among it) goes to ``<DAGSTER_HOME>/ui-console.log`` (ocp_assets.dagster_console); ``--verbose``
shows it on the terminal instead. The day partitions end today, or on ``$OCP_ASSETS_END_DATE`` when set.
"""

import argparse
import os
import signal
import subprocess
import sys
import threading
from pathlib import Path

import psycopg

from ocp_assets import local_postgres
from ocp_assets.core.errors import OcpAssetsError
from ocp_assets.dagster_console import console_log, relay
from ocp_assets.dagster_instance import dagster_instance_env, write_instance_yaml
from ocp_assets.defs.partitions import START_DATE_ENV
from ocp_assets.defs.resources import DATA_ROOT_ENV, DSN_ENV
from ocp_assets.redaction import first_line

# The code location `dagster dev` serves, under the name the UI's addresses use.
WORKSPACE_YAML = """load_from:
  - python_module:
      module_name: ocp_assets.definitions
      location_name: ocp_assets
"""
SHUTDOWN_SECONDS = 60  # dagster dev stops its webserver, daemon and code servers within a few seconds
RELAY_DRAIN_SECONDS = 10  # after dagster dev exits, for its last lines to reach the log file


def serve(
    pg: local_postgres.LocalPostgres,
    data_root: str | Path,
    home: str | Path,
    database: str,
    start_date: str | None,
    port: int,
    *,
    verbose: bool = False,
) -> int:
    """Run `dagster dev` until it exits (Ctrl-C); returns its exit code. The caller stops `pg` afterwards."""
    local_postgres.ensure_database(pg.dsn, database)
    home = Path(home).resolve()
    write_instance_yaml(home)
    (home / "workspace.yaml").write_text(WORKSPACE_YAML)
    data_root = str(data_root) if "://" in str(data_root) else str(Path(data_root).resolve())
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        DSN_ENV: pg.dsn,
        DATA_ROOT_ENV: data_root,
        **dagster_instance_env(pg.dsn, database),
    }
    if start_date:
        env[START_DATE_ENV] = start_date
    dagster = str(Path(sys.executable).parent / "dagster")
    print(
        f"Dagster UI on http://127.0.0.1:{port} (data {data_root}, DAGSTER_HOME {home}, PostgreSQL: {pg.describe()});"
        " Ctrl-C stops it",
        flush=True,
    )
    command = [dagster, "dev", "-w", str(home / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(port)]
    log = None if verbose else console_log(home, "ui")
    if log is not None:
        print(f"Dagster's output goes to {log} (errors are shown here too; --verbose shows all of it)", flush=True)
    return run_until_stopped(command, env, home, log)


def run_until_stopped(command: list[str], env: dict[str, str], cwd: Path, log: Path | None) -> int:
    """Run `command` until it exits; Ctrl-C or SIGTERM stop it. Its output goes to `log` through
    dagster_console.relay (errors on stderr too), or to the terminal when `log` is None. Returns its exit code."""
    # A child, not exec: the embedded PostgreSQL must be stopped after dagster dev has shut down.
    quiet = log is not None
    child = subprocess.Popen(
        command,
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE if quiet else None,
        stderr=subprocess.STDOUT if quiet else None,
    )
    relaying = threading.Thread(target=relay, args=(child.stdout, log, sys.stderr), daemon=True) if quiet else None
    if relaying is not None:
        relaying.start()
    try:
        return _wait(child)
    finally:
        if relaying is not None:
            relaying.join(timeout=RELAY_DRAIN_SECONDS)


def _wait(child: subprocess.Popen) -> int:
    terminated = []

    def on_sigterm(signum, frame):
        terminated.append(signum)
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, on_sigterm)
    try:
        return child.wait()
    except KeyboardInterrupt:
        # Ctrl-C reaches dagster dev too (same process group), and once is enough: a second SIGINT would interrupt
        # its own shutdown. A SIGTERM sent to this process alone is passed on as the SIGINT dagster dev expects.
        if terminated:
            child.send_signal(signal.SIGINT)
        try:
            return child.wait(timeout=SHUTDOWN_SECONDS)
        except subprocess.TimeoutExpired:
            child.kill()
            return child.wait()
    finally:
        signal.signal(signal.SIGTERM, previous)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ocp_assets.ui", description=__doc__.splitlines()[0])
    parser.add_argument("--data-root", required=True, help="koku's Parquet: a directory or s3://bucket/prefix")
    parser.add_argument("--home", default="var/dagster-home", help="DAGSTER_HOME (default var/dagster-home)")
    parser.add_argument(
        "--database", default="dagster", help="database for Dagster's runs and events (default dagster)"
    )
    parser.add_argument(
        "--start-date", help=f"first day partition, YYYY-MM-DD (default ${START_DATE_ENV} or 2026-01-01)"
    )
    parser.add_argument(
        "--state-dir",
        type=Path,
        help=f"the embedded PostgreSQL's state folder when {DSN_ENV} is unset (default ${local_postgres.STATE_DIR_ENV}"
        ", else var/ in this directory)",
    )
    parser.add_argument("--port", type=int, default=3000)
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show all of Dagster's output here (default: in DAGSTER_HOME/ui-console.log)",
    )
    args = parser.parse_args(argv)
    try:
        pg = local_postgres.resolve(args.state_dir)
    except (RuntimeError, OSError, psycopg.Error) as exc:
        print(f"error: cannot start the embedded PostgreSQL ({first_line(exc)}); or set {DSN_ENV}", file=sys.stderr)
        return 2
    try:
        return serve(pg, args.data_root, args.home, args.database, args.start_date, args.port, verbose=args.verbose)
    except (psycopg.Error, OcpAssetsError) as exc:
        print(
            f"error: cannot reach PostgreSQL for Dagster's database ({first_line(exc)}); check {DSN_ENV}",
            file=sys.stderr,
        )
        return 2
    finally:
        pg.stop_and_say()


if __name__ == "__main__":
    raise SystemExit(main())
