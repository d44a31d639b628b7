"""`python -m ocp_assets.ui`: the Dagster UI (webserver and daemon) over a data root, with its instance in PostgreSQL.

Dagster's runs and events go to their own database (default ``dagster``, created if missing) on the server of
``OCP_ASSETS_DSN``; koku's tables stay in that DSN's database. ``DAGSTER_HOME`` gets the repository's dagster.yaml.
"""

import argparse
import os
import shutil
import sys
from pathlib import Path

import psycopg
from psycopg import sql

from ocp_assets.defs.partitions import START_DATE_ENV
from ocp_assets.defs.resources import DATA_ROOT_ENV, DSN_ENV, dagster_instance_env

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def ensure_database(dsn: str, database: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (database,)).fetchone():
            conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))


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
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)
    dsn = os.environ.get(DSN_ENV, DEFAULT_DSN)
    try:
        ensure_database(dsn, args.database)
    except psycopg.Error as exc:
        print(
            f"error: cannot reach PostgreSQL for Dagster's database ({str(exc).strip().splitlines()[0]}); "
            f"set {DSN_ENV}",
            file=sys.stderr,
        )
        return 2
    home = Path(args.home).resolve()
    home.mkdir(parents=True, exist_ok=True)
    shutil.copy(REPO / "dagster.yaml", home / "dagster.yaml")
    data_root = args.data_root if "://" in args.data_root else str(Path(args.data_root).resolve())
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        DSN_ENV: dsn,
        DATA_ROOT_ENV: data_root,
        **dagster_instance_env(dsn, args.database),
    }
    if args.start_date:
        env[START_DATE_ENV] = args.start_date
    dagster = str(Path(sys.executable).parent / "dagster")
    print(
        f"Dagster UI on http://127.0.0.1:{args.port} (data {data_root}, DAGSTER_HOME {home}); Ctrl-C stops it",
        flush=True,
    )
    os.chdir(home)  # Dagster warns about the repository's dagster.yaml when started next to it
    os.execvpe(
        dagster, [dagster, "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1", "-p", str(args.port)], env
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
