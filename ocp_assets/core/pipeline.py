"""One cluster-day from koku's Parquet to committed summary rows, stage by stage, every check on the way.

This is the one code path of the Dagster assets and of ``ocp-assets summarize``. A cluster-day runs two branches
(``outcomes.BRANCHES``), each always in order from koku's Parquet up to the last stage asked for, so a summary is
never computed from intermediate tables older than the Parquet; the first failed check stops its branch. One
function per stage, the same verbs in both branches:

    summarize_cluster_day
      usage summary  usage_branch: read_usage -> read_labels -> merge_usage_labels -> summarize_usage
      GPU summary    gpu_branch:   read_gpu -> summarize_gpu
    summarize_usage / summarize_gpu: shared rows -> aggregate -> write and check (transaction.commit_or_rehearse)

Each summary is replaced in a transaction of its own (decision G3): a failed branch is rolled back and keeps its
previous rows, the other branch's result stands (``DayResult.failures`` says which failed). A cluster-day without
any koku usage (or GPU usage) is summarised as empty: its previous rows are removed, as koku's delete-then-insert
does. What a run records is ``core/day.py``'s; the SQL is ``core/writer.py``'s.

``run_days`` spreads several cluster-days over worker processes (forked: they inherit the imports), each with
its own PostgreSQL connection; results come back in the order asked.
"""

import datetime as dt
import multiprocessing
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from ocp_assets.core import consistency, gpu_summary, warning_checks
from ocp_assets.core import outcomes as O
from ocp_assets.core import validation as V
from ocp_assets.core.consistency import distinct_count
from ocp_assets.core.database import connect, one_row
from ocp_assets.core.day import CheckFailedError, DayOutcome, DayResult, DayRun, DayTask
from ocp_assets.core.errors import InputDataError, OcpAssetsError
from ocp_assets.core.gpu_summary import read_gpu_usage
from ocp_assets.core.identity import ClusterDay
from ocp_assets.core.layout import NAMESPACE_LABELS, NODE_LABELS
from ocp_assets.core.outcomes import NO_DATA, CheckOutcome
from ocp_assets.core.pgschema import (
    GPU_SUMMARY_TABLE,
    ensure_month_partition,
    ensure_tenant_tables,
    gpu_table_exists,
    missing_gpu_table_reason,
    require_schema,
)
from ocp_assets.core.reader import (
    ClusterData,
    DayTable,
    look_for_cluster_data,
    read_label_rows,
    read_pod_usage,
    read_storage_usage,
)
from ocp_assets.core.storage import DataRoot, FileCache, S3Settings, open_data_root
from ocp_assets.core.summary import (
    LabelTables,
    MergedChunks,
    SummaryContext,
    aggregate_usage,
    dedupe_entity_labels,
    merge_labels,
    node_inventory,
    rows_by_kind,
    summary_facts,
    unallocated_rows,
)
from ocp_assets.core.tagmapping import apply_tag_mapping
from ocp_assets.core.transaction import Replaced, commit_or_rehearse, gpu_day_key, usage_day_key
from ocp_assets.core.validation import input_error_outcome, validate_rows
from ocp_assets.core.writer import (
    KokuSettings,
    SharedRows,
    delete_gpu_rows,
    delete_summary_rows,
    node_roles,
    prepare_shared_rows,
    read_settings,
    replace_gpu_rows,
    replace_summary_rows,
    touch_report_period,
)

NO_GPU_DATA = "no GPU data for this day"
# The label inputs, node then namespace: (report type, entity, model of the rows read, model of the labels kept).
LABEL_INPUTS = (
    (NODE_LABELS, "node", V.NodeLabelRows, V.NodeLabels),
    (NAMESPACE_LABELS, "namespace", V.NamespaceLabelRows, V.NamespaceLabels),
)


@dataclass(frozen=True)
class Connections:
    """What a worker process needs to open: koku's PostgreSQL, koku's Parquet, and (optional) the snapshot root."""

    dsn: str
    data_root: str
    snapshot_root: str | None = None
    create_tables: bool = True  # koku's tables created where missing (Dagster); the CLI requires `db init` instead
    s3: S3Settings | None = None  # how to reach s3:// roots (Dagster: from its S3 resource); None: the environment


@dataclass(frozen=True)
class UsageInputs:
    """The day's usage rows as read and validated: pod rows with per-node capacity, storage rows."""

    pods: DayTable
    capacity: pa.Table
    storage: DayTable


@dataclass(frozen=True)
class LabelledUsage:
    """The usage rows with their merged label maps, and the node inventory (merged_label_chunks)."""

    chunks: MergedChunks
    inventory: pa.Table


# ------------------------------------------------------------------ one cluster-day
def summarize_cluster_day(
    conn: psycopg.Connection,
    root: DataRoot,
    task: DayTask,
    *,
    snapshot_root: str | None = None,
    create_tables: bool = True,
    s3: S3Settings | None = None,
) -> DayResult:
    """Run one cluster-day through each branch up to ``task.through``; never raises for bad input (it fails a check).

    The usage summary runs first, then the GPU summary, as koku's UI-summary step follows its daily summary. The
    two read different Parquet and write different tables, each in its own transaction: a failed check of one
    leaves the other's write standing (both fail the cluster-day).

    Raises only for what retrying can fix or a person must: lost connections and other transient database
    errors, a missing tenant schema when ``create_tables`` is off.
    """
    day = DayRun(task, snapshot_root, s3)
    gpu_table, settings = _tenant_tables(conn, day, create_tables)
    if day.wanted(O.RAW_POD_USAGE):
        usage_branch(conn, root, day, settings)
    if day.wanted(O.GPU_SUMMARY) and not gpu_table:
        _no_gpu_table(day)
    elif day.wanted(O.RAW_GPU_USAGE):
        try:
            gpu_branch(conn, root, day, settings)
        except (psycopg.Error, OSError) as exc:
            # Infrastructure (retried by Dagster, exit 1 on the command line); the usage summary may already be
            # committed in its own transaction (G3): the caller says so instead of "nothing written".
            # An attribute on psycopg's or the OS's own exception, re-raised as it is so its type still decides the
            # retry; the caller reads it with getattr(exc, "day_result", None).
            exc.day_result = day.result  # ty: ignore[invalid-assignment]
            raise
    return day.result


def _tenant_tables(conn: psycopg.Connection, day: DayRun, create_tables: bool) -> tuple[bool, KokuSettings]:
    """Whether koku's schema has the GPU summary table (created where missing when `create_tables`, when the run
    writes), and koku's settings (label keys, cost categories, tag mappings)."""
    schema = day.task.schema
    writes = any(day.wanted(stage) for stage in O.SUMMARY_STAGES)
    gpu_table = True
    if writes and create_tables:
        gpu_table = ensure_tenant_tables(conn, schema)
    elif writes:
        require_schema(conn, schema)
        gpu_table = gpu_table_exists(conn, schema)
    settings = read_settings(conn, schema) if writes or _has_settings(conn, schema) else KokuSettings((), ())
    return gpu_table, settings


# ------------------------------------------------------------------ the usage summary
def usage_branch(conn: psycopg.Connection, root: DataRoot, day: DayRun, settings: KokuSettings) -> None:
    """raw_pod_usage .. daily_summary, up to the last one wanted; stops at the first failed check."""
    inputs = read_usage(conn, root, day)
    if inputs is None:
        return
    labels = read_labels(root, day, settings.enabled_keys)
    if labels is None:
        return
    labelled = merge_usage_labels(day, inputs, labels, settings.enabled_keys)
    if labelled is None:
        return
    summarize_usage(conn, day, inputs, labelled, settings)


def read_usage(conn: psycopg.Connection, root: DataRoot, day: DayRun) -> UsageInputs | None:
    """raw_pod_usage, raw_storage_usage: the day's pod rows and per-node capacity, then its storage rows, validated.

    A day with neither is summarised as empty (its previous rows removed) when the cluster's Parquet is there.
    """
    cd = day.task.cluster_day
    read = day.read(O.POD_USAGE_SCHEMA, lambda: read_pod_usage(root, cd.account, cd.source, cd.day))
    if read is None:
        return None
    pods, capacity = read
    pod_report = {
        "pod rows": validate_rows(V.RawPodUsage, pods),
        "node capacity": V.validate_frame(V.NodeCapacity, capacity),
    }
    if not day.check(O.POD_USAGE_SCHEMA, O.combine(pod_report)):
        return None
    # Read before judging the day empty; a storage file that cannot be read fails its own check, after the pods'.
    try:
        storage: DayTable | InputDataError = read_storage_usage(root, cd.account, cd.source, cd.day)
    except InputDataError as exc:
        storage = exc
    if len(pods) == 0 and isinstance(storage, DayTable) and len(storage) == 0:
        _remove_usage_day(conn, root, day)
        return None
    pod_facts = {
        "rows": len(pods),
        "pods": distinct_count(pods.table, "namespace", "pod"),
        "namespaces": distinct_count(pods.table, "namespace"),
        "nodes": capacity.num_rows,
        "files": pods.files,
    }
    if not day.done(O.RAW_POD_USAGE, pod_facts, {"pod_usage": pods.table, "node_capacity": capacity}):
        return None
    if isinstance(storage, InputDataError):
        day.reject(O.STORAGE_USAGE_SCHEMA, storage)
        return None
    if not day.check(O.STORAGE_USAGE_SCHEMA, validate_rows(V.RawStorageUsage, storage)):
        return None
    storage_facts = {
        "rows": len(storage),
        "persistentvolumeclaims": distinct_count(storage.table, "namespace", "persistentvolumeclaim"),
        "files": storage.files,
    }
    if not day.done(O.RAW_STORAGE_USAGE, storage_facts, {"storage_usage": storage.table}):
        return None
    return UsageInputs(pods, capacity, storage)


def _remove_usage_day(conn: psycopg.Connection, root: DataRoot, day: DayRun) -> None:
    """A day without pod or storage rows: its previous usage rows removed (when it is proven empty)."""
    if day.emptiness_unproven(root, O.POD_USAGE_SCHEMA):
        return
    task, cd = day.task, day.task.cluster_day
    deleted = None
    if day.commits(O.DAILY_SUMMARY):
        key = usage_day_key(task.schema, cd.source, cd.day)
        deleted = _remove_rows(conn, key, lambda: delete_summary_rows(conn, task.schema, cd.source, cd.day))
    day.result.no_data = True
    day.empty_branch(O.USAGE_STAGES, NO_DATA, deleted)


def read_labels(root: DataRoot, day: DayRun, keys: tuple[str, ...]) -> LabelTables | None:
    """deduplicated_labels: one enabled-key label set per node and per namespace."""
    deduplicated: dict[str, pa.Table | None] = {}
    reports: dict[str, CheckOutcome] = {}
    files: list[str] = []
    for report_type, entity, row_model, table_model in LABEL_INPUTS:
        deduplicated[entity], reports[entity] = _entity_labels(
            root, day, report_type, entity, (row_model, table_model), keys, files
        )
    if not day.check(O.LABELS_SCHEMA, O.combine(reports)):
        return None
    labels = LabelTables(node=deduplicated["node"], namespace=deduplicated["namespace"])
    facts = {"nodes": labels.node.num_rows, "namespaces": labels.namespace.num_rows, "files": files}
    tables = {"node_labels": labels.node, "namespace_labels": labels.namespace}
    return labels if day.done(O.DEDUPLICATED_LABELS, facts, tables) else None


def _entity_labels(
    root: DataRoot, day: DayRun, report_type, entity: str, models: tuple, keys: tuple[str, ...], files: list[str]
) -> tuple[pa.Table | None, CheckOutcome]:
    """One entity's label rows (daily and hourly) read and validated, then deduplicated; the report on them."""
    cd = day.task.cluster_day
    row_model, table_model = models
    try:
        daily, hourly = read_label_rows(root, cd.account, cd.source, cd.day, report_type)
        files += daily.files + hourly.files
        rows_report = O.combine(
            {
                f"{entity} label rows (daily)": validate_rows(row_model, daily),
                f"{entity} label rows (hourly)": validate_rows(row_model, hourly),
            }
        )
        if not rows_report.passed:
            return None, rows_report
        labels = dedupe_entity_labels(daily, hourly, entity, report_type, keys)
    except InputDataError as exc:
        day.fail(O.LABELS_SCHEMA, exc)
        return None, input_error_outcome(exc)
    labels_report = V.validate_frame(table_model, labels)
    return labels, O.combine({f"{entity} label rows": rows_report, f"{entity} labels": labels_report})


def merge_usage_labels(
    day: DayRun, inputs: UsageInputs, labels: LabelTables, keys: tuple[str, ...]
) -> LabelledUsage | None:
    """merged_label_chunks: the usage rows with their merged label sets, and the node inventory."""
    merged = day.read(O.MERGED_ROWS_SCHEMA, lambda: merge_labels(inputs.pods, inputs.storage, labels, keys))
    if merged is None:
        return None
    inventory = node_inventory(inputs.pods.table, labels.node)
    storage = merged.storage if merged.storage is not None and merged.storage.num_rows else None
    report = {
        "labelled pod rows": V.validate_frame(V.PodUsageLabelled, merged.pod),
        "labelled storage rows": V.validate_frame(V.StorageUsageLabelled, storage)
        if storage is not None
        else CheckOutcome(True, "no storage rows"),
        "node inventory": V.validate_frame(V.NodeInventory, inventory),
    }
    day.check(O.MERGED_ROWS_SCHEMA, O.combine(report))
    precedence = consistency.label_precedence(inputs.pods.table, merged.pod, labels.node, labels.namespace, keys)
    day.check(O.LABEL_PRECEDENCE, precedence)
    if not day.result.passed:
        return None
    facts = {
        "pod_rows": merged.pod.num_rows,
        "storage_rows": storage.num_rows if storage is not None else 0,
        "inventory_nodes": inventory.num_rows,
        "distinct_pod_label_sets": pc.count_distinct(merged.pod["pod_labels"]).as_py(),
    }
    tables = {"pod_usage": merged.pod, "node_inventory": inventory}
    if storage is not None:
        tables["storage_usage"] = storage
    if not day.done(O.MERGED_LABEL_CHUNKS, facts, tables):
        return None
    return LabelledUsage(MergedChunks(pod=merged.pod, storage=storage), inventory)


def summarize_usage(
    conn: psycopg.Connection, day: DayRun, inputs: UsageInputs, labelled: LabelledUsage, settings: KokuSettings
) -> None:
    """daily_summary: the shared rows, then aggregate and replace the cluster-day's rows; its checks decide commit."""
    task, cd = day.task, day.task.cluster_day
    seconds: dict[str, float] = {}
    try:
        shared = prepare_shared_rows(conn, task.schema, cd, labelled.inventory)
        started = time.perf_counter()
        summarised, rows = aggregate_day(conn, task, labelled, inputs.capacity, shared, settings)
        seconds["aggregate"] = time.perf_counter() - started

        def write() -> DayOutcome:
            began = time.perf_counter()
            written = replace_summary_rows(conn, task.schema, cd.source, cd.day, rows, shared.in_month_partition)
            seconds["write"] = time.perf_counter() - began
            return DayOutcome(cd, rows, written, rows_by_kind(summarised), seconds, summarised)

        def checks(outcome: DayOutcome) -> dict[str, CheckOutcome]:
            recent = warning_checks.recent_day_rows(conn, task.schema, cd.source, cd.day)
            return usage_checks(outcome, inputs.pods.table, inputs.capacity, labelled.chunks.storage, settings, recent)

        key = usage_day_key(task.schema, cd.source, cd.day)
        replaced = commit_or_rehearse(conn, key, write, checks, commit=day.commits(O.DAILY_SUMMARY))
    except (psycopg.DataError, psycopg.IntegrityError) as exc:
        _rejected_by_postgresql(day, O.ROWS_IN_POSTGRESQL, exc)
        return
    except OcpAssetsError as exc:
        day.fail(O.ROWS_IN_POSTGRESQL, exc)
        day.check(O.ROWS_IN_POSTGRESQL, CheckOutcome(False, str(exc)))
        return
    if replaced.committed:
        touch_report_period(conn, task.schema, shared.report_period_id)
        day.result.outcome = replaced.written
    day.finish(O.DAILY_SUMMARY, replaced, lambda done: _usage_facts(done, inputs))


def aggregate_day(
    conn: psycopg.Connection,
    task: DayTask,
    labelled: LabelledUsage,
    capacity: pa.Table,
    shared: SharedRows,
    settings: KokuSettings,
) -> tuple[pa.Table, pa.Table]:
    """The cluster-day's usage summary rows: as aggregated (koku's group keys, unallocated rows per node), and as
    written (koku's tag-mapping UPDATE, 4.1 step 7, applied before the write: same result, one write)."""
    cd = task.cluster_day
    ctx = SummaryContext(
        source=cd.source,
        cluster_id=cd.cluster_id,
        cluster_alias=cd.cluster_alias,
        day=cd.day,
        report_period_id=shared.report_period_id,
        enabled_keys=settings.enabled_keys,
        cost_categories=settings.cost_categories,
    )
    usage = aggregate_usage(labelled.chunks, capacity, ctx)
    roles = node_roles(conn, task.schema, pc.unique(labelled.chunks.pod["node"]).to_pylist())
    summarised = pa.concat_tables([usage, unallocated_rows(usage, roles, ctx)])
    return summarised, apply_tag_mapping(summarised, settings.tag_mappings)


def usage_checks(
    outcome: DayOutcome,
    raw_pods: pa.Table,
    capacity: pa.Table,
    storage: pa.Table | None,
    settings: KokuSettings,
    recent_rows: dict[dt.date, int] | None = None,
) -> dict[str, CheckOutcome]:
    """The usage summary's checks, blocking ones first, then the warnings (``O.WARNING_CHECKS``); `recent_rows`:
    the cluster's rows per day in PostgreSQL over the days before this one (``warning_checks.recent_day_rows``)."""
    # The summary's invariants are checked on the rows as aggregated; the tag mapping only renames label keys
    # (core/tagmapping.py), so the label-key and PostgreSQL checks look at the rows written.
    rows, written, write = outcome.summarised_rows, outcome.rows, outcome.write
    day = outcome.cluster_day.day
    return {
        O.SUMMARY_SCHEMA: V.validate_frame(V.SummaryRows, rows),
        O.USAGE_CONSERVED: consistency.usage_conserved(raw_pods, rows),
        O.UNALLOCATED_IS_CAPACITY_MINUS_PODS: consistency.unallocated_is_capacity_minus_pods(rows, capacity),
        O.CLUSTER_CAPACITY_IS_NODE_SUM: consistency.cluster_capacity_is_node_sum(rows, capacity),
        O.NO_DUPLICATE_KEYS: consistency.no_duplicate_keys(rows),
        O.LABEL_KEYS_ALLOWED: consistency.label_keys_allowed(written, settings.enabled_keys, settings.tag_mappings),
        O.STORAGE_MONTHS_FORMULA: consistency.storage_months_formula(storage, rows, day),
        O.ROWS_IN_POSTGRESQL: consistency.rows_written_match(
            written, write.rows_written, write.rows_by_data_source, write.totals_read_back
        ),
        O.USAGE_WITHIN_CAPACITY: warning_checks.usage_within_capacity(rows, capacity),
        O.UNALLOCATED_NOT_NEGATIVE: warning_checks.unallocated_not_negative(rows),
        O.ROWS_LIKE_RECENT_DAYS: warning_checks.rows_like_recent_days(day, written.num_rows, recent_rows or {}),
    }


def _usage_facts(replaced: Replaced[DayOutcome], inputs: UsageInputs) -> dict:
    outcome = replaced.written
    facts = summary_facts(outcome.rows, inputs.pods.table, inputs.capacity)
    if replaced.committed:
        facts.update({"rows_deleted": outcome.write.rows_deleted, "report_period_id": outcome.write.report_period_id})
    return facts


# ------------------------------------------------------------------ the GPU summary
def gpu_branch(conn: psycopg.Connection, root: DataRoot, day: DayRun, settings: KokuSettings) -> None:
    """raw_gpu_usage, then gpu_summary: koku's usage-only GPU summary of the cluster-day, in its own transaction."""
    gpu = read_gpu(conn, root, day)
    if gpu is None:
        return
    summarize_gpu(conn, day, gpu, settings)


def read_gpu(conn: psycopg.Connection, root: DataRoot, day: DayRun) -> DayTable | None:
    """raw_gpu_usage: the day's hourly GPU rows, validated.

    A day without GPU rows is summarised as empty: its previous GPU rows are removed (koku's DELETE of the window
    runs before its INSERT finds nothing).
    """
    cd = day.task.cluster_day
    gpu = day.read(O.GPU_USAGE_SCHEMA, lambda: read_gpu_usage(root, cd.account, cd.source, cd.day))
    if gpu is None or not day.check(O.GPU_USAGE_SCHEMA, validate_rows(V.RawGpuUsage, gpu)):
        return None
    if gpu.table.num_rows == 0:
        if not day.emptiness_unproven(root, O.GPU_USAGE_SCHEMA):
            _remove_gpu_day(conn, day)
        return None
    if not day.done(O.RAW_GPU_USAGE, gpu_summary.raw_facts(gpu), {"gpu_usage": gpu.table}):
        return None
    return gpu


def _remove_gpu_day(conn: psycopg.Connection, day: DayRun) -> None:
    task, cd = day.task, day.task.cluster_day
    deleted = None
    if day.commits(O.GPU_SUMMARY):
        key = gpu_day_key(task.schema, cd.source, cd.day)
        deleted = _remove_rows(conn, key, lambda: delete_gpu_rows(conn, task.schema, cd.source, cd.day))
    day.empty_branch(O.GPU_STAGES, NO_GPU_DATA, deleted)


def summarize_gpu(conn: psycopg.Connection, day: DayRun, gpu: DayTable, settings: KokuSettings) -> None:
    """gpu_summary: the month's partition, then aggregate and replace the cluster-day's GPU rows; its checks decide
    commit."""
    task, cd = day.task, day.task.cluster_day
    context = gpu_summary.GpuContext(cd.source, cd.cluster_id, cd.cluster_alias, cd.day, settings.cost_categories)
    rows = gpu_summary.compute_gpu_summary(gpu.table, context)
    try:
        ensure_month_partition(conn, task.schema, cd.day, GPU_SUMMARY_TABLE)
        replaced = commit_or_rehearse(
            conn,
            gpu_day_key(task.schema, cd.source, cd.day),
            lambda: replace_gpu_rows(conn, task.schema, cd.source, cd.day, rows),
            lambda write: gpu_summary.summary_checks(gpu.table, rows, write),
            commit=day.commits(O.GPU_SUMMARY),
        )
    except (psycopg.DataError, psycopg.IntegrityError) as exc:
        _rejected_by_postgresql(day, O.GPU_ROWS_IN_POSTGRESQL, exc)
        return
    day.finish(
        O.GPU_SUMMARY, replaced, lambda done: gpu_summary.summary_facts(rows, done.written if done.committed else None)
    )


def _no_gpu_table(day: DayRun) -> None:
    """A koku schema without the GPU summary table (koku before migration 0340): the GPU branch is not run (its Parquet
    is not read, nothing is written or materialized) and its checks pass, saying why (decision G6)."""
    reason = missing_gpu_table_reason(day.task.schema)
    day.result.gpu_skipped = reason
    for stage in O.GPU_STAGES:
        for name in O.CHECKS_BY_STAGE[stage]:
            day.result.checks.setdefault(name, CheckOutcome(True, reason, {"skipped": reason}))


# ------------------------------------------------------------------ shared by both branches
def _remove_rows(conn: psycopg.Connection, key: str, delete) -> int:
    """A summary's rows removed for a day without data, in its own transaction: nothing to insert, nothing to check."""
    return commit_or_rehearse(conn, key, delete, lambda _deleted: {}, commit=True).written


def _rejected_by_postgresql(day: DayRun, check: str, exc: psycopg.Error) -> None:
    # Deterministic: the same rows would be rejected again, so this fails the check instead of being retried.
    day.check(
        check,
        CheckOutcome(False, f"PostgreSQL rejected the rows: {_first_line(exc)}", {"sqlstate": exc.sqlstate or ""}),
    )


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _has_settings(conn: psycopg.Connection, schema: str) -> bool:
    return bool(
        one_row(conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{schema}".reporting_enabledtagkeys',)))[0]
    )


# ------------------------------------------------------------------ several cluster-days, in parallel
# A worker process's cache of the footers its run has read (set when the run's pool starts the worker).
_worker_files: FileCache | None = None


def _start_worker() -> None:
    global _worker_files
    _worker_files = FileCache()


def _run_task(task: DayTask, where: Connections, files: FileCache | None = None) -> DayResult:
    """One cluster-day in this process; `files`: the run's footer cache (a worker's own when None)."""
    cache = files if files is not None else _worker_files
    root = open_data_root(where.data_root, where.s3)
    with connect(where.dsn) as conn:
        result = summarize_cluster_day(
            conn,
            root.with_file_cache(cache) if cache is not None else root,
            task,
            snapshot_root=where.snapshot_root,
            create_tables=where.create_tables,
            s3=where.s3,
        )
    result.outcome = None  # the rows are large and already in PostgreSQL; the facts carry what callers show
    # The day's tables are gone: hand their memory back to the system, not only to Arrow's allocator, so a month
    # run's process stays at one day's size (measured: docs/benchmarks.md, memory).
    pa.default_memory_pool().release_unused()
    return result


def run_days(tasks: Iterable[DayTask], where: Connections, workers: int = 1) -> Iterator[DayResult]:
    """Results of the tasks in order; with workers > 1, computed by that many forked worker processes at once.

    Fork (not spawn or forkserver): the workers start in milliseconds with every module already imported.
    A worker's transient error (e.g. PostgreSQL restarting) is raised here, and the days not yet started are
    cancelled; the caller may retry the lot, since every cluster-day is replaced idempotently.
    """
    tasks = with_cluster_data(list(tasks), open_data_root(where.data_root, where.s3))
    if workers <= 1 or len(tasks) <= 1:
        files = FileCache()  # the run's days share what was read of each footer (core/reader.py)
        for task in tasks:
            yield _run_task(task, where, files)
        return
    # Each worker keeps its own footer cache for the run's days it is given (the pool ends with the run).
    pool = ProcessPoolExecutor(
        max_workers=min(workers, len(tasks)), mp_context=multiprocessing.get_context("fork"), initializer=_start_worker
    )
    try:
        futures = [pool.submit(_run_task, task, where) for task in tasks]
        for future in futures:
            yield future.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def with_cluster_data(tasks: list[DayTask], root: DataRoot) -> list[DayTask]:
    """The tasks, each with the run's look for its cluster's Parquet: one per cluster, not one per day."""
    looks: dict[tuple[str, str], ClusterData] = {}
    out = []
    for task in tasks:
        cd = task.cluster_day
        if task.cluster_data is None and (cd.account, cd.source) not in looks:
            looks[cd.account, cd.source] = look_for_cluster_data(root, cd.account, cd.source)
        out.append(task if task.cluster_data else replace(task, cluster_data=looks[cd.account, cd.source]))
    return out


def run_cluster_day(
    conn: psycopg.Connection,
    schema: str,
    root: DataRoot,
    cluster_day: ClusterDay,
    cluster_data: ClusterData | None = None,
) -> DayResult:
    """The CLI's cluster-day: every stage and check of both branches, in the caller's connection. A failed check does
    not raise: each branch is committed on its own, so ``result.failures()`` says which branch failed (and kept its
    previous rows) while the other's rows stand. The result holds the usage rows written (``outcome``) and each
    stage's facts (the GPU summary's too). `cluster_data`: the caller's look for the cluster's Parquet (else taken
    when the day turns out empty)."""
    task = DayTask(cluster_day.day.isoformat(), cluster_day, schema, cluster_data=cluster_data)
    result = summarize_cluster_day(conn, root, task, create_tables=False)
    pa.default_memory_pool().release_unused()  # as _run_task: a month's process stays at one day's size
    if result.outcome is not None:
        # Where the day's time went, as the CLI and the engine benchmark print it: each stage includes its checks.
        stage = result.seconds
        written = result.outcome.seconds
        result.outcome.seconds = {
            "read": stage.get(O.RAW_POD_USAGE, 0.0) + stage.get(O.RAW_STORAGE_USAGE, 0.0),
            "labels": stage.get(O.DEDUPLICATED_LABELS, 0.0) + stage.get(O.MERGED_LABEL_CHUNKS, 0.0),
            **written,
            "checks": max(0.0, stage.get(O.DAILY_SUMMARY, 0.0) - sum(written.values())),
        }
    return result


def summarize_day(conn: psycopg.Connection, schema: str, root: DataRoot, cluster_day: ClusterDay) -> DayOutcome | None:
    """``run_cluster_day``'s usage rows written, or None for a day without pod or storage data (its previous rows
    were removed). Raises the first branch's failure when a check of either branch failed (the usage branch's first;
    a branch that passed was committed all the same)."""
    result = run_cluster_day(conn, schema, root, cluster_day)
    for failure in result.failures().values():
        if isinstance(failure, CheckFailedError):
            raise CheckFailedError(f"{cluster_day.cluster_id} {cluster_day.day.isoformat()}: {failure}")
        raise failure
    return result.outcome
