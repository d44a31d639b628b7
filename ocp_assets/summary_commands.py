"""The CLI commands that touch PostgreSQL: `db init` and `summarize` (the same code path as the daily_summary asset)."""

import argparse
import datetime as dt
import os
import sys

import psycopg
from psycopg import sql

from ocp_assets.core.engine import ClusterDay, connect, days_between
from ocp_assets.core.errors import ConfigurationError, OcpAssetsError
from ocp_assets.core.ingest import read_cluster_registry
from ocp_assets.core.pgschema import SUMMARY_TABLE, init_schema
from ocp_assets.core.pipeline import summarize_day
from ocp_assets.core.reader import days_with_pod_usage, months_with_pod_usage_files
from ocp_assets.core.storage import open_data_root

DSN_ENV = "OCP_ASSETS_DSN"


def _dsn(args: argparse.Namespace) -> str:
    dsn = args.dsn or os.environ.get(DSN_ENV)
    if not dsn:
        raise ConfigurationError(f"no database: pass --dsn or set {DSN_ENV}")
    return dsn


def _date(text: str) -> dt.date:
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
    init.set_defaults(run=run_db_init)


def run_db_init(args: argparse.Namespace) -> int:
    with connect(_dsn(args)) as conn:
        created = init_schema(conn, args.schema)
    print(f"schema {args.schema}: " + (f"created {', '.join(created)}" if created else "all tables already present"))
    return 0


def register_summarize(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "summarize", help="compute koku's daily summary for a cluster and date range and write it to PostgreSQL"
    )
    parser.add_argument(
        "--data-root", required=True, help="local directory or s3://bucket/prefix holding koku's Parquet"
    )
    parser.add_argument("--account", help="account segment of the Parquet keys (default: from the cluster registry)")
    parser.add_argument("--source", help="koku source (provider) uuid of the cluster")
    parser.add_argument("--cluster-id", help="OpenShift cluster id")
    parser.add_argument("--cluster-alias", help="cluster name shown by koku (default: the cluster id)")
    parser.add_argument(
        "--all-clusters",
        action="store_true",
        help="every cluster recorded by ingest under the data root, every day it has pod usage",
    )
    parser.add_argument("--start", type=_date, help="first day, YYYY-MM-DD (default: first day with data)")
    parser.add_argument("--end", type=_date, help="last day, inclusive (default: last day with data)")
    parser.add_argument("--dsn", help=f"PostgreSQL URL (default: ${DSN_ENV})")
    parser.add_argument("--schema", help="koku tenant schema (default: the account)")
    parser.set_defaults(run=run_summarize)


def _clusters(args: argparse.Namespace) -> list[tuple[str, str, str, str]]:
    """(account, source, cluster_id, alias) of every cluster the command covers."""
    if args.all_clusters:
        found = read_cluster_registry(open_data_root(args.data_root))
        if not found:
            raise ConfigurationError(f"no cluster recorded under {args.data_root}; ingest data first")
        return [(c.account, c.source_uuid, c.cluster_id, c.cluster_alias or c.cluster_id) for c in found]
    missing = [
        flag
        for flag, value in (("--account", args.account), ("--source", args.source), ("--cluster-id", args.cluster_id))
        if not value
    ]
    if missing:
        raise ConfigurationError(f"{', '.join(missing)} required unless --all-clusters is given")
    return [(args.account, args.source, args.cluster_id, args.cluster_alias or args.cluster_id)]


def _days(args: argparse.Namespace, root, account: str, source: str, summarised: list[dt.date]) -> list[dt.date]:
    """The days to summarise: the range asked for, else every day with pod usage, plus the days PostgreSQL still
    holds rows for in the months the data covers (their files emptied or gone: summarised as empty, so their old
    rows go, as koku's delete-then-insert would)."""
    if args.start and args.end:
        return days_between(args.start, args.end)
    days = days_with_pod_usage(
        root, account, source, warn=lambda message: print(f"ocp-assets: warning: {message}", file=sys.stderr)
    )
    months = {(d.year, d.month) for d in days} | months_with_pod_usage_files(root, account, source)
    days = sorted(set(days) | {d for d in summarised if (d.year, d.month) in months})
    if args.start or args.end:
        return days_between(
            args.start or (days[0] if days else args.end), args.end or (days[-1] if days else args.start)
        )
    return days


def _summarised_days(conn, schema: str, source: str) -> list[dt.date]:
    try:
        rows = conn.execute(
            sql.SQL("SELECT DISTINCT usage_start FROM {}.{} WHERE source_uuid = %s").format(
                sql.Identifier(schema), sql.Identifier(SUMMARY_TABLE)
            ),
            (source,),
        ).fetchall()
    except psycopg.errors.UndefinedTable:
        return []
    return [d for (d,) in rows]


def run_summarize(args: argparse.Namespace) -> int:
    """Every requested cluster-day; one that fails is reported on its own line and the others go on.

    Exit 2 when any failed (each failed day keeps its previous rows), after the rest have been written.
    """
    root = open_data_root(args.data_root)
    failed: list[str] = []
    with connect(_dsn(args)) as conn:
        for account, source, cluster_id, alias in _clusters(args):
            schema = args.schema or account
            try:
                days = _days(args, root, account, source, _summarised_days(conn, schema, source))
                if not days:
                    raise ConfigurationError(
                        f"cluster {cluster_id} (source {source}) has no pod usage under {args.data_root}"
                    )
            except OcpAssetsError as exc:
                print(f"ocp-assets: error: {exc}", file=sys.stderr)
                failed.append(cluster_id)
                continue
            print(f"cluster {cluster_id} (source {source}) -> schema {schema}")
            for day in days:
                try:
                    outcome = summarize_day(conn, schema, root, ClusterDay(account, source, cluster_id, alias, day))
                except OcpAssetsError as exc:
                    print(f"ocp-assets: error: {cluster_id} {day.isoformat()}: {exc}", file=sys.stderr)
                    failed.append(f"{cluster_id} {day.isoformat()}")
                    continue
                if outcome is None:
                    print(f"  {day.isoformat()}  no koku data for this day (its previous rows removed)")
                else:
                    counts = "  ".join(f"{kind} {count}" for kind, count in outcome.rows_by_kind.items())
                    timing = ", ".join(f"{step} {seconds:.2f}s" for step, seconds in outcome.seconds.items())
                    print(f"  {day.isoformat()}  {counts}  (replaced {outcome.write.rows_deleted}; {timing})")
                sys.stdout.flush()
    if failed:
        raise SummarizeFailed(
            f"{len(failed)} failed ({', '.join(failed[:5])}{' …' if len(failed) > 5 else ''}); "
            "their previous rows are kept, the others were written"
        )
    return 0


class SummarizeFailed(OcpAssetsError):
    """Some cluster-days or clusters of a summarize failed; each was reported on its own line."""
