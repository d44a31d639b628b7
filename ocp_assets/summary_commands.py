"""The CLI commands that touch PostgreSQL: `db init` and `summarize` (the same code path as the daily_summary asset)."""

import argparse
import datetime as dt
import os
import sys
import uuid
from dataclasses import dataclass, field

import psycopg
from psycopg import sql

from ocp_assets.core.database import connect
from ocp_assets.core.errors import ConfigurationError, OcpAssetsError
from ocp_assets.core.identity import ClusterDay, days_between
from ocp_assets.core.ingest import BadClusterRecord, cluster_record_key, key_segment_problem, read_cluster_registry
from ocp_assets.core.layout import GPU_USAGE, POD_USAGE
from ocp_assets.core.outcomes import DAILY_SUMMARY, GPU_SUMMARY
from ocp_assets.core.pgschema import GPU_SUMMARY_TABLE, SUMMARY_TABLE, init_schema, koku_tables
from ocp_assets.core.pipeline import DayResult, run_cluster_day
from ocp_assets.core.reader import ClusterData, days_with_usage, look_for_cluster_data, months_with_usage_files
from ocp_assets.core.registry import cluster_contradiction
from ocp_assets.core.storage import DataRoot, absence, open_data_root
from ocp_assets.progress import Progress
from ocp_assets.summary_arguments import DSN_ENV

# The files whose days the CLI summarises: a day with GPU data and no pod data still gets its GPU summary.
SUMMARISED_REPORT_TYPES = (POD_USAGE, GPU_USAGE)


def dsn_of(args: argparse.Namespace) -> str:
    dsn = args.dsn or os.environ.get(DSN_ENV)
    if not dsn:
        raise ConfigurationError("no database given").with_hint(
            f"pass --dsn postgresql://USER@HOST:PORT/DB or set {DSN_ENV}"
        )
    return dsn


def run_db_init(args: argparse.Namespace) -> int:
    """Create what is missing, on request: in a schema that already holds koku's tables this adds koku's newer tables
    too (the GPU summary), which koku's own migration would then find in its way (decision G6): said on stderr."""
    with connect(dsn_of(args)) as conn:
        before = koku_tables(conn, args.schema)
        created = init_schema(conn, args.schema)
    print(f"schema {args.schema}: " + (f"created {', '.join(created)}" if created else "all tables already present"))
    if before and created:
        # Any table added to a schema koku already manages is one of koku's later migrations would create itself.
        dropped = "; ".join(f"DROP TABLE {args.schema}.{table} CASCADE" for table in created)
        print(
            f"ocp-assets: note: {', '.join(created)} added to schema {args.schema}, which already held koku's tables; "
            f"if koku manages this schema, drop them before upgrading koku to the migration that creates them "
            f"({dropped}), then run `ocp-assets summarize` (or a backfill) again for the days you need",
            file=sys.stderr,
        )
    return 0


@dataclass(frozen=True)
class ClusterToSummarise:
    account: str
    source: str
    cluster_id: str
    alias: str
    schema: str


def _clusters(args: argparse.Namespace, root: DataRoot) -> tuple[list[ClusterToSummarise], list[BadClusterRecord]]:
    """Every cluster the command covers, and the cluster records that cannot be used (with --all-clusters: each fails
    only its own cluster). With --source, the ingest's record of that source supplies the account and cluster id
    left out, and a cluster id contradicting it is refused (rows under the wrong id would be koku's rows of another
    cluster), as is a bad record of that source."""
    if args.account is not None and (problem := key_segment_problem(args.account)):
        raise ConfigurationError(f"--account {args.account!r} {problem}").with_hint(
            "pass the account segment of the Parquet keys, e.g. 10001 (data/parquet/10001/OCP/...)"
        )
    bad: list[BadClusterRecord] = []
    recorded = read_cluster_registry(root, bad.append)
    if args.all_clusters:
        if not recorded and not bad:
            raise ConfigurationError(f"no cluster recorded under {args.data_root}").with_hint(
                "ingest or generate data into it first (ocp-assets ingest / generate)"
            )
        found = [(c.account, c.source_uuid, c.cluster_id, c.cluster_alias or c.cluster_id) for c in recorded]
    else:
        if not args.source:
            raise ConfigurationError("--source is required unless --all-clusters is given").with_hint(
                "pass the koku source uuid of the cluster, or --all-clusters"
            )
        source = checked_source(args.source)
        for record in bad:
            if record.source == source and args.account in (None, record.account):
                raise record.with_hint("correct or remove the cluster record, or pass --account and --cluster-id")
        bad = []  # other sources' records are not this command's business
        records = [c for c in recorded if c.source_uuid == source and args.account in (None, c.account)]
        record = records[0] if records else None
        if record is not None and args.cluster_id and args.cluster_id != record.cluster_id:
            raise ConfigurationError(
                f"source {source} is recorded for cluster {record.cluster_id!r} "
                f"({root.display(cluster_record_key(record.account, source))}), not {args.cluster_id!r}"
            ).with_hint(f"pass --cluster-id {record.cluster_id} or leave --cluster-id out")
        account = args.account or (record.account if record else None)
        cluster_id = args.cluster_id or (record.cluster_id if record else None)
        if not account or not cluster_id:
            missing = [flag for flag, value in (("--account", account), ("--cluster-id", cluster_id)) if not value]
            raise ConfigurationError(
                f"{' and '.join(missing)} required: no cluster record of source {source} under {args.data_root}"
            ).with_hint("pass them, or ingest the cluster's data first")
        alias = args.cluster_alias or (record.cluster_alias if record else None) or cluster_id
        found = [(account, source, cluster_id, alias)]
    return [ClusterToSummarise(a, s, c, alias, args.schema or a) for a, s, c, alias in found], bad


def _refuse_contradicted_clusters(conn: psycopg.Connection, clusters: list[ClusterToSummarise]) -> None:
    """koku's reporting_ocp_clusters names one cluster id per source; summarising the source under another id would
    write its rows under that id and leave the cluster and report-period rows of the first one stale."""
    for cluster in clusters:
        contradiction = cluster_contradiction(conn, cluster.schema, cluster.source, cluster.cluster_id)
        if contradiction is not None:
            known, what = contradiction
            raise ConfigurationError(f"{what}; nothing was written").with_hint(
                f"pass --cluster-id {known}, or correct the cluster record of the data root"
            )


def checked_source(text: str) -> str:
    try:
        return str(uuid.UUID(text))
    except ValueError:
        raise ConfigurationError(f"--source {text!r} is not a uuid").with_hint(
            "pass koku's source (provider) uuid, e.g. 6d7c1b1e-6a63-4c1c-9a57-3f1f1e0e0a01"
        ) from None


def _days(args: argparse.Namespace, root, account: str, source: str, summarised: list[dt.date]) -> list[dt.date]:
    """The days to summarise: the range asked for, else every day with pod usage, plus the days PostgreSQL still
    holds rows for in the months the data covers (their files emptied or gone: summarised as empty, so their old
    rows go, as koku's delete-then-insert would)."""
    if args.start and args.end:
        return days_between(args.start, args.end)
    days = days_with_usage(
        root,
        account,
        source,
        warn=lambda message: print(f"ocp-assets: warning: {message}", file=sys.stderr),
        report_types=SUMMARISED_REPORT_TYPES,
    )
    months = {(d.year, d.month) for d in days} | months_with_usage_files(root, account, source, SUMMARISED_REPORT_TYPES)
    days = sorted(set(days) | {d for d in summarised if (d.year, d.month) in months})
    if args.start or args.end:
        return days_between(
            args.start or (days[0] if days else args.end), args.end or (days[-1] if days else args.start)
        )
    return days


def _summarised_days(conn, cluster: ClusterToSummarise) -> list[dt.date]:
    """Days PostgreSQL holds usage or GPU summary rows for, for the source."""
    days: set[dt.date] = set()
    for table in (SUMMARY_TABLE, GPU_SUMMARY_TABLE):
        try:
            with conn.transaction():  # a missing table must not abort the caller's transaction
                rows = conn.execute(
                    sql.SQL("SELECT DISTINCT usage_start FROM {}.{} WHERE source_uuid = %s").format(
                        sql.Identifier(cluster.schema), sql.Identifier(table)
                    ),
                    (cluster.source,),
                ).fetchall()
        except psycopg.errors.UndefinedTable:
            continue
        days.update(d for (d,) in rows)
    return sorted(days)


def run_summarize(args: argparse.Namespace) -> int:
    """Every requested cluster-day; each failure is reported on its own line and the others go on.

    A cluster-day's usage summary and its GPU summary are committed separately (decision G3): a failed branch keeps
    its previous rows while the other's rows are written, and both are said, on the day's line and in the final
    error. Exit 2 when anything failed, after the rest have been written. A cluster id that contradicts the one
    recorded for its source is refused before anything is written.
    """
    if args.start and args.end and args.start > args.end:  # refused whole: no cluster's days are "the others"
        raise ConfigurationError(f"--start {args.start} is after --end {args.end}; nothing was written").with_hint(
            "pass a --start on or before --end"
        )
    # One footer cache for the command: finding the days and summarising them read each file's footer once.
    root = open_data_root(args.data_root).with_file_cache()
    if not root.exists():
        raise ConfigurationError(absence(root.uri)).with_hint("check --data-root (a directory, or s3://BUCKET/PREFIX)")
    with connect(dsn_of(args)) as conn:
        run = _SummarizeRun(args, conn, root)
        plan = run.plan()
        args.writing_started = True
        with Progress("summarize", sum(len(days) for _, days, _ in plan), "days") as progress:
            for cluster, days, cluster_data in plan:
                progress.echo(f"cluster {cluster.cluster_id} (source {cluster.source}) -> schema {cluster.schema}")
                for day in days:
                    run.summarize_day(cluster, day, cluster_data, progress)
    if run.failed:
        failed = run.failed
        raise SummarizeFailed(
            f"{len(failed)} failed ({', '.join(failed[:5])}{' …' if len(failed) > 5 else ''}); "
            + ("every other cluster-day was written" if plan else "nothing was written")
        ).with_hint("the lines above name each failure; fix it and run the same command again")
    return 0


Planned = tuple[ClusterToSummarise, list[dt.date], ClusterData]


@dataclass
class _SummarizeRun:
    """One `summarize` command: its clusters' plan, then each cluster-day, with what failed and was written."""

    args: argparse.Namespace
    conn: psycopg.Connection
    root: DataRoot
    failed: list[str] = field(default_factory=list)
    written: int = 0
    gpu_skipped: set[str] = field(default_factory=set)  # schemas whose missing GPU table was said (once, G6)

    def plan(self) -> list[Planned]:
        """The clusters and their days; with --all-clusters a cluster that cannot be summarised fails alone."""
        clusters, bad_records = _clusters(self.args, self.root)
        for record in bad_records:
            print(f"ocp-assets: error: {record} — that cluster is not summarised", file=sys.stderr)
            self.failed.append(f"{record.file}: not summarised")
        _refuse_contradicted_clusters(self.conn, clusters)
        plan: list[Planned] = []
        for cluster in clusters:
            try:
                plan.append(self._planned(cluster))
            except OcpAssetsError as exc:
                if not self.args.all_clusters:
                    raise  # the command's one cluster: its error is the command's one line
                print(f"ocp-assets: error: {exc}" + (f" — {exc.hint}" if exc.hint else ""), file=sys.stderr)
                self.failed.append(f"{cluster.cluster_id}: nothing written")
        return plan

    def _planned(self, cluster: ClusterToSummarise) -> Planned:
        # Its files must be there before any of its days may be summarised as empty (rows removed).
        cluster_data = look_for_cluster_data(self.root, cluster.account, cluster.source)
        if cluster_data.file is None:
            raise cluster_data.error()
        days = _days(self.args, self.root, cluster.account, cluster.source, _summarised_days(self.conn, cluster))
        if not days:
            raise ConfigurationError(
                f"cluster {cluster.cluster_id} (source {cluster.source}) has no pod or GPU usage under "
                f"{self.args.data_root}"
            )
        return cluster, days, cluster_data

    def summarize_day(self, cluster: ClusterToSummarise, day: dt.date, data: ClusterData, progress: Progress) -> None:
        task = ClusterDay(cluster.account, cluster.source, cluster.cluster_id, cluster.alias, day)
        name = f"{cluster.cluster_id} {day.isoformat()}"
        try:
            result = run_cluster_day(self.conn, cluster.schema, self.root, task, data)
        except OcpAssetsError as exc:  # before either branch wrote (a schema or table missing)
            progress.echo(f"ocp-assets: error: {name}: {exc}", sys.stderr)
            self.failed.append(f"{name}: nothing written")
            progress.advance(note=name)
            return
        except (psycopg.Error, OSError, KeyboardInterrupt) as exc:
            self._say_written_before(exc, name)
            raise
        progress.echo(f"  {day.isoformat()}  {_day_line(result)}")
        self.written += 1
        self._report_day(cluster, name, result, progress)
        progress.advance(note=name)

    def _say_written_before(self, exc: BaseException, name: str) -> None:
        """Infrastructure stops the command (cli.py says so in one line), after saying what this run wrote; the
        usage summary of this very day may be among it (committed before the GPU branch failed)."""
        partial = getattr(exc, "day_result", None)
        this_day = [s for s in _branch_outcomes(partial) if "written" in s] if partial else []
        if self.written or this_day:  # said on the error's own line (cli.describe_error)
            stop = "interrupt" if isinstance(exc, KeyboardInterrupt) else "error"
            said = f"{self.written} cluster-day(s) written before the {stop}" + (
                f", and {name}'s {', '.join(this_day)} (its GPU summary not)" if this_day else ""
            )
            # An attribute on psycopg's or Python's own exception, re-raised as it is; cli.py reads it with
            # getattr(exc, "written_before", "").
            exc.written_before = said  # ty: ignore[missing-attribute]

    def _report_day(self, cluster: ClusterToSummarise, name: str, result: DayResult, progress: Progress) -> None:
        """The day's warnings (written all the same: a person should look), the GPU skip once, its failures."""
        for check, warning in result.warnings.items():
            progress.echo(f"ocp-assets: warning: {name}: {check}: {warning.description}", sys.stderr)
        if result.gpu_skipped and cluster.schema not in self.gpu_skipped:
            self.gpu_skipped.add(cluster.schema)
            progress.echo(f"ocp-assets: warning: {result.gpu_skipped} (for every day of this run)", sys.stderr)
        failures = result.failures()
        for summary_stage, exc in failures.items():
            progress.echo(f"ocp-assets: error: {name}: {_failure_line(result, summary_stage, exc)}", sys.stderr)
        if failures:
            self.failed.append(f"{name}: {'; '.join(_branch_outcomes(result))}")


BRANCH_NAMES = {DAILY_SUMMARY: "usage summary", GPU_SUMMARY: "GPU summary"}
KEPT = {DAILY_SUMMARY: "its previous rows kept", GPU_SUMMARY: "its previous GPU rows kept"}


def _branch_outcomes(result: DayResult) -> list[str]:
    """What each branch of the cluster-day did to PostgreSQL, e.g. ["usage summary written", "GPU summary failed,
    its previous GPU rows kept"]: the two are committed separately, so one can stand while the other failed."""
    failures = result.failures()
    said = []
    for summary_stage, branch in BRANCH_NAMES.items():
        facts = result.stages.get(summary_stage)
        if summary_stage in failures:
            said.append(f"{branch} failed, {KEPT[summary_stage]}")
        elif facts is None:
            continue  # not run
        elif facts.get("no_data"):
            data = "pod or storage" if summary_stage == DAILY_SUMMARY else "GPU"
            removed = facts.get("rows_deleted")
            said.append(f"no {data} data" + (f" ({branch}: its previous {removed} rows removed)" if removed else ""))
        else:
            said.append(f"{branch} written")
    return said


def _failure_line(result: DayResult, summary_stage: str, exc: OcpAssetsError) -> str:
    """One branch's failure as the CLI's one-line error: `<what> — <what happened to PostgreSQL>; <hint>`."""
    others = [said for said in _branch_outcomes(result) if not said.startswith(BRANCH_NAMES[summary_stage])]
    kept = f"{BRANCH_NAMES[summary_stage]} not written, {KEPT[summary_stage]}"
    return f"{exc} — {'; '.join([kept, *others])}" + (f"; {exc.hint}" if exc.hint else "")


def _day_line(result: DayResult) -> str:
    """One line per cluster-day: usage rows per data_source (or that there was no pod or storage data), GPU rows;
    a branch that failed is said as such (its error line follows), the other branch's rows are shown."""
    outcome = result.outcome
    gpu = result.stages.get(GPU_SUMMARY, {})
    failures = result.failures()
    if not failures and outcome is None and not gpu.get("rows"):
        return "no koku data for this day (its previous rows removed)"
    if DAILY_SUMMARY in failures:
        usage = f"usage summary failed ({KEPT[DAILY_SUMMARY]})"
    elif outcome is None:
        usage = "no pod or storage data (its previous rows removed)"
    else:
        counts = "  ".join(f"{kind} {count}" for kind, count in outcome.rows_by_kind.items())
        timing = ", ".join(f"{step} {seconds:.2f}s" for step, seconds in outcome.seconds.items())
        usage = f"{counts}  (replaced {outcome.write.rows_deleted}; {timing})"
    if GPU_SUMMARY in failures:
        return f"{usage}  GPU summary failed ({KEPT[GPU_SUMMARY]})"
    if gpu.get("rows"):
        return f"{usage}  GPU {gpu['rows']} (replaced {gpu.get('rows_deleted', 0)})"
    if gpu.get("rows_deleted"):
        return f"{usage}  GPU 0 (no GPU data: its previous {gpu['rows_deleted']} rows removed)"
    return usage


class SummarizeFailed(OcpAssetsError):
    """Some cluster-days or clusters of a summarize failed; each was reported on its own line."""
