"""The arguments of `ocp-assets db init` and `ocp-assets summarize`, without their work's imports.

Building the parser (every command, `--help` too) imports only this; the commands themselves live in
``ocp_assets.summary_commands`` (pyarrow, pandas, pandera, psycopg: about a second), imported when one runs.
"""

import argparse
import datetime as dt
from collections.abc import Callable

DSN_ENV = "OCP_ASSETS_DSN"


def deferred_command(module: str, name: str) -> Callable[[argparse.Namespace], int]:
    """The command `name` of `module`, imported when it runs."""

    def run(args: argparse.Namespace) -> int:
        import importlib

        return getattr(importlib.import_module(module), name)(args)

    return run


def _deferred(name: str) -> Callable[[argparse.Namespace], int]:
    """The command `name` of ocp_assets.summary_commands, imported when it runs."""
    return deferred_command("ocp_assets.summary_commands", name)


def iso_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a YYYY-MM-DD date") from None


def register_db(subparsers: argparse._SubParsersAction) -> None:
    db = subparsers.add_parser("db", help="manage koku's PostgreSQL tables")
    actions = db.add_subparsers(dest="db_command", required=True)
    init = actions.add_parser("init", help="create koku's summary and auxiliary tables where missing")
    init.add_argument("--dsn", help=f"PostgreSQL URL (default: ${DSN_ENV})")
    init.add_argument("--schema", required=True, help="koku tenant schema, e.g. org1234567")
    init.set_defaults(run=_deferred("run_db_init"))


def register_summarize(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "summarize", help="compute koku's daily summary for a cluster and date range and write it to PostgreSQL"
    )
    parser.add_argument(
        "--data-root", required=True, help="local directory or s3://bucket/prefix holding koku's Parquet"
    )
    parser.add_argument("--account", help="account segment of the Parquet keys (default: the source's cluster record)")
    parser.add_argument("--source", help="koku source (provider) uuid of the cluster")
    parser.add_argument(
        "--cluster-id", help="OpenShift cluster id (default: the source's cluster record; a different one is refused)"
    )
    parser.add_argument("--cluster-alias", help="cluster name shown by koku (default: the cluster id)")
    parser.add_argument(
        "--all-clusters",
        action="store_true",
        help="every cluster recorded by ingest under the data root, every day it has pod usage",
    )
    parser.add_argument("--start", type=iso_date, help="first day, YYYY-MM-DD (default: first day with data)")
    parser.add_argument("--end", type=iso_date, help="last day, inclusive (default: last day with data)")
    parser.add_argument("--dsn", help=f"PostgreSQL URL (default: ${DSN_ENV})")
    parser.add_argument("--schema", help="koku tenant schema (default: the account)")
    # writing_started: Ctrl-C before the first day is "nothing was written" (cli.main)
    parser.set_defaults(run=_deferred("run_summarize"), writing_started=False)
