"""One cluster-day from koku's Parquet to committed summary rows, stage by stage, every check on the way.

This is the one code path of the Dagster assets and of ``ocp-assets summarize``. The stages (``outcomes.STAGES``)
form two branches, the usage summary and the GPU summary (``outcomes.BRANCHES``); each branch always runs in
order from koku's Parquet, up to the last stage asked for in it, so a summary is never computed from
intermediate tables older than the Parquet. Each stage's input is validated (pandera) and each stage's output
checked; the first failed check stops its branch. A cluster-day's usage summary is replaced in one transaction and
its GPU summary in another (decision G3): a failed branch is rolled back and keeps its previous rows, the other
branch's result stands (``DayResult.failures`` says which failed). A cluster-day without any koku usage (or GPU
usage) is summarised as empty: its previous rows (GPU rows) are removed, as koku's delete-then-insert does.

``run_days`` spreads several cluster-days over worker processes (forked: they inherit the imports), each with
its own PostgreSQL connection; results come back in the order asked.
"""

import datetime as dt
import multiprocessing
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from ocp_assets.core import consistency, gpu_summary, warning_checks
from ocp_assets.core import outcomes as O
from ocp_assets.core import validation as V
from ocp_assets.core.consistency import column_total, distinct_count
from ocp_assets.core.engine import (
    ClusterDay,
    DayOutcome,
    connect,
    prepare_shared_rows,
    publish_summary,
)
from ocp_assets.core.errors import InputDataError, OcpAssetsError
from ocp_assets.core.gpu_summary import read_gpu_usage
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
    locate_row,
    locate_value,
    look_for_cluster_data,
    read_label_rows,
    read_pod_usage,
    read_storage_usage,
)
from ocp_assets.core.storage import DataRoot, S3Settings, open_data_root
from ocp_assets.core.summary import (
    LabelTables,
    MergedChunks,
    dedupe_entity_labels,
    merge_labels,
    node_inventory,
)
from ocp_assets.core.writer import (
    KokuSettings,
    delete_summary_rows,
    read_settings,
    touch_report_period,
)

NO_GPU_DATA = "no GPU data for this day"
PREVIEW_ROWS = 5
TOP_NAMESPACES = 10
PREVIEW_COLUMNS = (
    "data_source",
    "namespace",
    "node",
    "pod_usage_cpu_core_hours",
    "pod_request_cpu_core_hours",
    "pod_usage_memory_gigabyte_hours",
    "node_capacity_cpu_core_hours",
    "persistentvolumeclaim_capacity_gigabyte_months",
    "all_labels",
)


@dataclass(frozen=True)
class DayTask:
    """One cluster-day to run: ``key`` is how the caller names it (the Dagster partition key)."""

    key: str
    cluster_day: ClusterDay
    schema: str
    # The last stage to run in each branch (one stage name, or one per branch); in a branch, the earlier stages
    # always run, each feeds the next. A branch none of them names is not run.
    through: str | tuple[str, ...] = O.SUMMARY_STAGES
    snapshot_path: str | None = None  # where the stage tables go below the snapshot root (e.g. cluster=a/day=...)
    # False: a rehearsal. The summary is written and checked inside a transaction that is then rolled back, so
    # its checks are evaluated on the current Parquet and PostgreSQL keeps what it had (checks run on their own).
    # A collection of summary stages: those are committed, the others run are rehearsed.
    commit: bool | frozenset[str] = True
    # The run's one look for the cluster's Parquet (run_days takes it per cluster); None: looked for when a day
    # turns out empty. A day is summarised as empty (its rows removed) only when the cluster's data is there.
    cluster_data: ClusterData | None = None

    @property
    def last_stages(self) -> tuple[str, ...]:
        return O.last_stages((self.through,) if isinstance(self.through, str) else self.through)

    def commits(self, summary_stage: str) -> bool:
        return self.commit if isinstance(self.commit, bool) else summary_stage in self.commit


@dataclass(frozen=True)
class Connections:
    """What a worker process needs to open: koku's PostgreSQL, koku's Parquet, and (optional) the snapshot root."""

    dsn: str
    data_root: str
    snapshot_root: str | None = None
    create_tables: bool = True  # koku's tables created where missing (Dagster); the CLI requires `db init` instead
    s3: S3Settings | None = None  # how to reach s3:// roots (Dagster: from its S3 resource); None: the environment


class CheckFailedError(OcpAssetsError):
    """A branch of a cluster-day (its usage or its GPU summary) whose checks failed: that summary was not changed
    (PostgreSQL keeps its previous rows); the other branch, committed in its own transaction, may have been written."""


def _branch_of_check(name: str) -> str:
    """The branch a check judges, named by its summary stage (``O.DAILY_SUMMARY`` or ``O.GPU_SUMMARY``)."""
    return O.BRANCH_OF[O.STAGE_OF_CHECK[name]][-1]


@dataclass
class DayResult:
    """What happened to one cluster-day: the stages that completed (with their facts) and every check evaluated.

    Its two branches commit separately: one may have been written while the other failed (``failures``).
    """

    key: str
    cluster_day: ClusterDay
    stages: dict[str, dict] = field(default_factory=dict)
    checks: dict[str, CheckOutcome] = field(default_factory=dict)
    no_data: bool = False
    # Per branch (keyed by its summary stage), the input error that stopped it, naming file, column and row.
    errors: dict[str, OcpAssetsError] = field(default_factory=dict)
    outcome: DayOutcome | None = None  # the rows written (None in a worker's result: they stay in the worker)
    seconds: dict[str, float] = field(default_factory=dict)
    # Why the GPU branch was skipped (koku's schema has no GPU summary table, decision G6); None when it ran.
    gpu_skipped: str | None = None

    @property
    def error(self) -> OcpAssetsError | None:
        """The first input error of the day (the usage branch's, which runs first, else the GPU branch's)."""
        return next(iter(self.errors.values()), None)

    @property
    def passed(self) -> bool:
        """No check failed its branch (a warning does not: ``warnings``)."""
        return not any(O.blocks(n, c) for n, c in self.checks.items())

    @property
    def warnings(self) -> dict[str, CheckOutcome]:
        """The day's warnings: legal but suspicious data, its summary written all the same."""
        return {n: c for n, c in self.checks.items() if O.warns(n, c)}

    def failures(self) -> dict[str, OcpAssetsError]:
        """Every failed branch (keyed by its summary stage, in branch order) and what stopped it: the input error
        naming file, column and row, else its first failed check. A failed branch kept its previous rows."""
        found: dict[str, OcpAssetsError] = {}
        for summary_stage in O.SUMMARY_STAGES:
            failed = [n for n, c in self.checks.items() if O.blocks(n, c) and _branch_of_check(n) == summary_stage]
            if failed:
                found[summary_stage] = self.errors.get(summary_stage) or CheckFailedError(
                    f"check {failed[0]}: {self.checks[failed[0]].description}"
                )
        return found

    @property
    def failed_checks(self) -> list[str]:
        return [name for name, c in self.checks.items() if O.blocks(name, c)]

    def first_failure(self) -> str:
        name = next(iter(self.failed_checks), None)
        return f"{name}: {self.checks[name].description}" if name else ""


# pandera's check names as a person reads them, for the error that names a bad cell's file and row.
READABLE_CHECKS = {
    "label_json_object": "label text is not a JSON object",
    "greater_than_or_equal_to(0)": "negative value",
    "not_nullable": "missing value (NULL)",
    "str_length(None, 253)": "longer than koku's 253 characters",
    "str_length(None, 128)": "longer than koku's 128 characters",
    "str_length(None, 64)": "longer than koku's 64 characters",
    "str_length(None, 10)": "longer than koku's 10 characters",
    "whole_number": "not a whole number",
}


class _RolledBack(Exception):
    """A summary check failed inside the cluster-day's transaction."""


# ------------------------------------------------------------------ helpers turning inputs into check outcomes
def input_error_outcome(exc: OcpAssetsError, rows: int = 0) -> CheckOutcome:
    """Input that cannot even be read, as a failed check naming file, column and row."""
    import pandas as pd

    cases = pd.DataFrame(
        [
            {
                "schema_context": type(exc).__name__,
                "column": getattr(exc, "column", None),
                "check": getattr(exc, "reason", str(exc)),
                "failure_case": getattr(exc, "file", None),
                "index": getattr(exc, "row", None),
            }
        ]
    )
    metadata = {k: v for k in ("file", "column", "row") if (v := getattr(exc, k, None)) is not None}
    return CheckOutcome(False, str(exc), metadata, failure_cases=cases, rows=rows, failures=1)


def validate_rows(model, rows: DayTable) -> CheckOutcome:
    """Validate a table read from koku's Parquet; the first bad text cell is located back to its file and row."""
    report = V.validate_frame(model, rows.table)
    if report.passed or not rows.files:
        return report
    for case in report.failure_cases.itertuples(index=False):
        value, column, index = case.failure_case, case.column, case.index
        reason = READABLE_CHECKS.get(str(case.check), str(case.check))
        if str(case.check) != "label_json_object":
            shown = repr(value)
            reason += f": {shown[:80]}…" if len(shown) > 80 else f": {shown}"
        if (
            isinstance(value, str)
            and column in rows.table.column_names
            and pa.types.is_string(rows.table.schema.field(column).type)
        ):
            located = locate_value(rows, column, value, reason)
        elif isinstance(index, (int, np.integer)) and 0 <= index < len(rows):
            located = locate_row(rows, int(index), column, reason)
        else:
            continue
        report.description += f" (first at {located})"
        report.metadata.update(
            {"file": located.file, "column": located.column, "row": located.row, "reason": located.reason}
        )
        return report
    if len(rows.files) == 1:
        report.description += f" (in {rows.files[0]})"
        report.metadata["file"] = rows.files[0]
    else:
        report.description += f" (in the day's rows of {len(rows.files)} files: {', '.join(rows.files)})"
        report.metadata["files"] = list(rows.files)
    return report


# ------------------------------------------------------------------ the facts each stage reports
def summary_facts(rows: pa.Table, raw_pods: pa.Table, capacity: pa.Table) -> dict:
    """Totals of the cluster-day as a cost engineer reads them: pod usage without unallocated rows, capacity "
    "per node."""
    pods = consistency.pod_rows(rows)
    unallocated = consistency.unallocated_rows(rows)
    storage = consistency.storage_rows(rows)
    with_node = raw_pods.filter(pc.fill_null(pc.not_equal(raw_pods["node"], ""), False))
    facts = {
        "rows": rows.num_rows,
        "rows_by_data_source": {"Pod": pods.num_rows + unallocated.num_rows, "Storage": storage.num_rows},
        "unallocated_rows": unallocated.num_rows,
        "pods": distinct_count(with_node, "namespace", "pod"),
        "namespaces": distinct_count(pods, "namespace"),
        "nodes": capacity.num_rows,
        "cpu_usage_core_hours": column_total(pods["pod_usage_cpu_core_hours"]),
        "cpu_request_core_hours": column_total(pods["pod_request_cpu_core_hours"]),
        "cpu_limit_core_hours": column_total(pods["pod_limit_cpu_core_hours"]),
        "cpu_effective_usage_core_hours": column_total(pods["pod_effective_usage_cpu_core_hours"]),
        "cpu_capacity_core_hours": column_total(capacity["node_capacity_cpu_core_seconds"]) / consistency.HOUR,
        "memory_usage_gigabyte_hours": column_total(pods["pod_usage_memory_gigabyte_hours"]),
        "memory_request_gigabyte_hours": column_total(pods["pod_request_memory_gigabyte_hours"]),
        "memory_limit_gigabyte_hours": column_total(pods["pod_limit_memory_gigabyte_hours"]),
        "memory_effective_usage_gigabyte_hours": column_total(pods["pod_effective_usage_memory_gigabyte_hours"]),
        "memory_capacity_gigabyte_hours": column_total(capacity["node_capacity_memory_byte_seconds"])
        / consistency.HOUR
        * consistency.GIB,
        "storage_capacity_gigabyte_months": column_total(storage["persistentvolumeclaim_capacity_gigabyte_months"]),
        "storage_request_gigabyte_months": column_total(storage["volume_request_storage_gigabyte_months"]),
        "storage_usage_gigabyte_months": column_total(storage["persistentvolumeclaim_usage_gigabyte_months"]),
    }
    if pods.num_rows:
        by_namespace = (
            pods.group_by("namespace", use_threads=False)
            .aggregate([("pod_usage_cpu_core_hours", "sum"), ("pod_usage_memory_gigabyte_hours", "sum")])
            .sort_by([("pod_usage_cpu_core_hours_sum", "descending"), ("namespace", "ascending")])
        )
        facts["top_namespaces"] = [
            {
                "namespace": r["namespace"],
                "cpu_usage_core_hours": r["pod_usage_cpu_core_hours_sum"] or 0.0,
                "memory_usage_gigabyte_hours": r["pod_usage_memory_gigabyte_hours_sum"] or 0.0,
            }
            for r in by_namespace.slice(0, TOP_NAMESPACES).to_pylist()
        ]
    facts["preview"] = rows.select(list(PREVIEW_COLUMNS)).slice(0, PREVIEW_ROWS).to_pylist()
    return facts


# ------------------------------------------------------------------ one cluster-day
class _Day:
    """The running state of one cluster-day: records checks and stages, writes snapshots."""

    def __init__(self, task: DayTask, snapshot_root: str | None, s3: S3Settings | None = None):
        self.task = task
        self.result = DayResult(task.key, task.cluster_day)
        self.snapshots = open_data_root(snapshot_root, s3) if snapshot_root and task.snapshot_path else None
        self.clock = time.perf_counter()
        self.cluster_data = task.cluster_data

    def emptiness_unproven(self, root: DataRoot, check: str) -> bool:
        """Whether the day, found without rows, may NOT be summarised as empty: none of its cluster's Parquet is
        under the data root (a wrong root, account or prefix reads as "no rows" too). Then `check` fails naming
        the data root, account and source, and the branch keeps its previous rows."""
        if self.cluster_data is None:
            cd = self.task.cluster_day
            self.cluster_data = look_for_cluster_data(root, cd.account, cd.source)
        if self.cluster_data.file is not None:
            return False
        exc = self.cluster_data.error()
        self.fail(check, exc)
        self.check(check, CheckOutcome(False, f"{exc} — {exc.hint}", {"data_root": self.cluster_data.data_root}))
        return True

    def check(self, name: str, outcome: CheckOutcome) -> bool:
        self.result.checks[name] = outcome
        located = outcome.metadata.get("file") and outcome.metadata.get("reason")
        if not outcome.passed and located:
            meta = outcome.metadata
            self.fail(
                name,
                InputDataError(
                    str(meta["reason"]), file=str(meta["file"]), column=meta.get("column"), row=meta.get("row")
                ),
            )
        return outcome.passed

    def fail(self, check: str, error: OcpAssetsError) -> None:
        """Record the input error that stops the branch of ``check`` (its first one)."""
        self.result.errors.setdefault(_branch_of_check(check), error)

    def wanted(self, stage: str) -> bool:
        branch = O.BRANCH_OF[stage]
        return any(last in branch and branch.index(stage) <= branch.index(last) for last in self.task.last_stages)

    def commits(self, summary_stage: str) -> bool:
        """Whether this run writes the summary for good (a run that stops before it never touches its rows)."""
        return self.wanted(summary_stage) and self.task.commits(summary_stage)

    def done(self, stage: str, facts: dict, tables: dict[str, pa.Table] | None = None) -> bool:
        """Record a completed stage; True when the day should go on to the next one."""
        now = time.perf_counter()
        self.result.seconds[stage] = round(now - self.clock, 4)
        self.clock = now
        if self.snapshots is not None and tables:
            snapshot = {}
            for name, table in tables.items():
                key = f"{stage}/{name}/{self.task.snapshot_path}.parquet"
                self.snapshots.write_parquet(key, table)
                snapshot[name] = self.snapshots.display(key)
            facts["snapshot"] = snapshot
        self.result.stages[stage] = facts
        return stage not in self.task.last_stages

    def empty_branch(self, stages: tuple[str, ...], reason: str, rows_deleted: int | None) -> None:
        """A branch without data for the day: every wanted stage of it empty, its checks passed saying why, the rows
        its summary removed (koku's delete-then-insert with nothing to insert)."""
        for stage in stages:
            if not self.wanted(stage):
                break
            facts: dict = {"rows": 0, "no_data": reason}
            if stage in O.SUMMARY_STAGES:
                facts["rows_deleted"] = rows_deleted or 0
            self.result.stages[stage] = facts
            for name in O.CHECKS_BY_STAGE[stage]:
                self.result.checks.setdefault(name, CheckOutcome(True, f"{reason}: nothing to check", {"rows": 0}))


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
    day = _Day(task, snapshot_root, s3)
    writes = any(day.wanted(stage) for stage in O.SUMMARY_STAGES)
    gpu_table = True
    if writes and create_tables:
        gpu_table = ensure_tenant_tables(conn, task.schema)
    elif writes:
        require_schema(conn, task.schema)
        gpu_table = gpu_table_exists(conn, task.schema)
    settings = read_settings(conn, task.schema) if writes or _has_settings(conn, task.schema) else KokuSettings((), ())
    if day.wanted(O.RAW_POD_USAGE):
        _usage_stages(conn, root, day, settings)
    if day.wanted(O.GPU_SUMMARY) and not gpu_table:
        _no_gpu_table(day)
    elif day.wanted(O.RAW_GPU_USAGE):
        try:
            _gpu_stages(conn, root, day, settings)
        except (psycopg.Error, OSError) as exc:
            # Infrastructure (retried by Dagster, exit 1 on the command line); the usage summary may already be
            # committed in its own transaction (G3): the caller says so instead of "nothing written".
            exc.day_result = day.result
            raise
    return day.result


def _usage_stages(conn: psycopg.Connection, root: DataRoot, day: "_Day", settings: KokuSettings) -> None:
    """raw_pod_usage .. daily_summary, up to the last one wanted; stops at the first failed check."""
    task = day.task
    cd = task.cluster_day
    keys = settings.enabled_keys

    # raw_pod_usage: the day's pod_daily rows and per-node capacity
    try:
        pods, capacity = read_pod_usage(root, cd.account, cd.source, cd.day)
    except InputDataError as exc:
        day.fail(O.POD_USAGE_SCHEMA, exc)
        day.check(O.POD_USAGE_SCHEMA, input_error_outcome(exc))
        return
    if not day.check(
        O.POD_USAGE_SCHEMA,
        O.combine(
            {
                "pod rows": validate_rows(V.RawPodUsage, pods),
                "node capacity": V.validate_frame(V.NodeCapacity, capacity),
            }
        ),
    ):
        return
    # raw_storage_usage, read before judging the day empty
    try:
        storage = read_storage_usage(root, cd.account, cd.source, cd.day)
    except InputDataError as exc:
        storage = None
        storage_error = exc
    if len(pods) == 0 and storage is not None and len(storage) == 0:
        if day.emptiness_unproven(root, O.POD_USAGE_SCHEMA):
            return
        rows_deleted = (
            delete_summary_rows(conn, task.schema, cd.source, cd.day) if day.commits(O.DAILY_SUMMARY) else None
        )
        day.result.no_data = True
        day.empty_branch(O.USAGE_STAGES, NO_DATA, rows_deleted)
        return
    if not day.done(
        O.RAW_POD_USAGE,
        {
            "rows": len(pods),
            "pods": distinct_count(pods.table, "namespace", "pod"),
            "namespaces": distinct_count(pods.table, "namespace"),
            "nodes": capacity.num_rows,
            "files": pods.files,
        },
        {"pod_usage": pods.table, "node_capacity": capacity},
    ):
        return
    if storage is None:
        day.fail(O.STORAGE_USAGE_SCHEMA, storage_error)
        day.check(O.STORAGE_USAGE_SCHEMA, input_error_outcome(storage_error))
        return
    if not day.check(O.STORAGE_USAGE_SCHEMA, validate_rows(V.RawStorageUsage, storage)):
        return
    if not day.done(
        O.RAW_STORAGE_USAGE,
        {
            "rows": len(storage),
            "persistentvolumeclaims": distinct_count(storage.table, "namespace", "persistentvolumeclaim"),
            "files": storage.files,
        },
        {"storage_usage": storage.table},
    ):
        return

    # deduplicated_labels: one enabled-key label set per node and per namespace
    deduplicated: dict[str, pa.Table] = {}
    reports: dict[str, CheckOutcome] = {}
    label_files: list[str] = []
    for report_type, entity, row_model, table_model in (
        (NODE_LABELS, "node", V.NodeLabelRows, V.NodeLabels),
        (NAMESPACE_LABELS, "namespace", V.NamespaceLabelRows, V.NamespaceLabels),
    ):
        try:
            daily, hourly = read_label_rows(root, cd.account, cd.source, cd.day, report_type)
            label_files += daily.files + hourly.files
            report = O.combine(
                {
                    f"{entity} label rows (daily)": validate_rows(row_model, daily),
                    f"{entity} label rows (hourly)": validate_rows(row_model, hourly),
                }
            )
            if report.passed:
                deduplicated[entity] = dedupe_entity_labels(daily, hourly, entity, report_type, keys)
                report = O.combine(
                    {
                        f"{entity} label rows": report,
                        f"{entity} labels": V.validate_frame(table_model, deduplicated[entity]),
                    }
                )
        except InputDataError as exc:
            day.fail(O.LABELS_SCHEMA, exc)
            report = input_error_outcome(exc)
        reports[entity] = report
    if not day.check(O.LABELS_SCHEMA, O.combine(reports)):
        return
    labels = LabelTables(node=deduplicated["node"], namespace=deduplicated["namespace"])
    if not day.done(
        O.DEDUPLICATED_LABELS,
        {
            "nodes": labels.node.num_rows,
            "namespaces": labels.namespace.num_rows,
            "files": label_files,
        },
        {"node_labels": labels.node, "namespace_labels": labels.namespace},
    ):
        return

    # merged_label_chunks: usage rows with their merged label sets, and the node inventory
    try:
        merged = merge_labels(pods, storage, labels, keys)
    except InputDataError as exc:
        day.fail(O.MERGED_ROWS_SCHEMA, exc)
        day.check(O.MERGED_ROWS_SCHEMA, input_error_outcome(exc))
        return
    inventory = node_inventory(pods.table, labels.node)
    merged_storage = merged.storage if merged.storage is not None and merged.storage.num_rows else None
    day.check(
        O.MERGED_ROWS_SCHEMA,
        O.combine(
            {
                "labelled pod rows": V.validate_frame(V.PodUsageLabelled, merged.pod),
                "labelled storage rows": V.validate_frame(V.StorageUsageLabelled, merged_storage)
                if merged_storage is not None
                else CheckOutcome(True, "no storage rows"),
                "node inventory": V.validate_frame(V.NodeInventory, inventory),
            }
        ),
    )
    day.check(
        O.LABEL_PRECEDENCE, consistency.label_precedence(pods.table, merged.pod, labels.node, labels.namespace, keys)
    )
    if not day.result.passed:
        return
    tables = {"pod_usage": merged.pod, "node_inventory": inventory}
    if merged_storage is not None:
        tables["storage_usage"] = merged_storage
    if not day.done(
        O.MERGED_LABEL_CHUNKS,
        {
            "pod_rows": merged.pod.num_rows,
            "storage_rows": merged_storage.num_rows if merged_storage is not None else 0,
            "inventory_nodes": inventory.num_rows,
            "distinct_pod_label_sets": pc.count_distinct(merged.pod["pod_labels"]).as_py(),
        },
        tables,
    ):
        return

    # daily_summary: aggregate and replace the cluster-day's rows; its checks decide commit or rollback
    chunks = MergedChunks(pod=merged.pod, storage=merged_storage)
    try:
        shared = prepare_shared_rows(conn, task.schema, cd, inventory)
        with conn.transaction():
            outcome = publish_summary(conn, task.schema, cd, chunks, capacity, shared, settings)
            recent = warning_checks.recent_day_rows(conn, task.schema, cd.source, cd.day)
            for name, check in summary_checks(outcome, pods.table, capacity, merged_storage, settings, recent).items():
                day.check(name, check)
            if not day.result.passed or not day.commits(O.DAILY_SUMMARY):
                raise _RolledBack()
    except _RolledBack:
        if day.result.passed:  # a rehearsal: checked, then rolled back on purpose
            facts = summary_facts(outcome.rows, pods.table, capacity)
            facts["rehearsal"] = "written and checked, then rolled back: PostgreSQL keeps its previous rows"
            day.done(O.DAILY_SUMMARY, facts)
        return
    except (psycopg.DataError, psycopg.IntegrityError) as exc:
        _rejected_by_postgresql(day, O.ROWS_IN_POSTGRESQL, exc)
        return
    except OcpAssetsError as exc:
        day.fail(O.ROWS_IN_POSTGRESQL, exc)
        day.check(O.ROWS_IN_POSTGRESQL, CheckOutcome(False, str(exc)))
        return
    touch_report_period(conn, task.schema, shared.report_period_id)
    day.result.outcome = outcome
    facts = summary_facts(outcome.rows, pods.table, capacity)
    facts.update({"rows_deleted": outcome.write.rows_deleted, "report_period_id": outcome.write.report_period_id})
    day.done(O.DAILY_SUMMARY, facts)


def _gpu_stages(conn: psycopg.Connection, root: DataRoot, day: "_Day", settings: KokuSettings) -> None:
    """raw_gpu_usage, then gpu_summary: koku's usage-only GPU summary of the cluster-day, in its own transaction.

    A day without GPU rows is summarised as empty: its previous GPU rows are removed (koku's DELETE of the window
    runs before its INSERT finds nothing).
    """
    task = day.task
    cd = task.cluster_day
    try:
        gpu = read_gpu_usage(root, cd.account, cd.source, cd.day)
    except InputDataError as exc:
        day.fail(O.GPU_USAGE_SCHEMA, exc)
        day.check(O.GPU_USAGE_SCHEMA, input_error_outcome(exc))
        return
    if not day.check(O.GPU_USAGE_SCHEMA, validate_rows(V.RawGpuUsage, gpu)):
        return
    if gpu.table.num_rows == 0:
        if not day.emptiness_unproven(root, O.GPU_USAGE_SCHEMA):
            _no_gpu_data(conn, day)
        return
    if not day.done(O.RAW_GPU_USAGE, gpu_summary.raw_facts(gpu), {"gpu_usage": gpu.table}):
        return

    context = gpu_summary.GpuContext(cd.source, cd.cluster_id, cd.cluster_alias, cd.day, settings.cost_categories)
    rows = gpu_summary.compute_gpu_summary(gpu.table, context)
    commit = day.commits(O.GPU_SUMMARY)
    try:
        ensure_month_partition(conn, task.schema, cd.day, GPU_SUMMARY_TABLE)
        with conn.transaction():
            write = gpu_summary.replace_gpu_rows(conn, task.schema, cd.source, cd.day, rows)
            checks = gpu_summary.summary_checks(gpu.table, rows, write)
            for name, outcome in checks.items():
                day.check(name, outcome)
            if not all(c.passed for c in checks.values()) or not commit:
                raise _RolledBack()
    except _RolledBack:
        if all(c.passed for c in checks.values()):  # a rehearsal: checked, then rolled back on purpose
            facts = gpu_summary.summary_facts(rows, None)
            facts["rehearsal"] = "written and checked, then rolled back: PostgreSQL keeps its previous rows"
            day.done(O.GPU_SUMMARY, facts)
        return
    except (psycopg.DataError, psycopg.IntegrityError) as exc:
        _rejected_by_postgresql(day, O.GPU_ROWS_IN_POSTGRESQL, exc)
        return
    day.done(O.GPU_SUMMARY, gpu_summary.summary_facts(rows, write))


def _no_gpu_table(day: "_Day") -> None:
    """A koku schema without the GPU summary table (koku before migration 0340): the GPU branch is not run (its Parquet
    is not read, nothing is written or materialized) and its checks pass, saying why (decision G6)."""
    reason = missing_gpu_table_reason(day.task.schema)
    day.result.gpu_skipped = reason
    for stage in O.GPU_STAGES:
        for name in O.CHECKS_BY_STAGE[stage]:
            day.result.checks.setdefault(name, CheckOutcome(True, reason, {"skipped": reason}))


def _no_gpu_data(conn: psycopg.Connection, day: "_Day") -> None:
    task, cd = day.task, day.task.cluster_day
    deleted = gpu_summary.delete_gpu_rows(conn, task.schema, cd.source, cd.day) if day.commits(O.GPU_SUMMARY) else None
    day.empty_branch(O.GPU_STAGES, NO_GPU_DATA, deleted)


def _rejected_by_postgresql(day: "_Day", check: str, exc: psycopg.Error) -> None:
    # Deterministic: the same rows would be rejected again, so this fails the check instead of being retried.
    day.check(
        check,
        CheckOutcome(False, f"PostgreSQL rejected the rows: {_first_line(exc)}", {"sqlstate": exc.sqlstate or ""}),
    )


def _first_line(exc: Exception) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _has_settings(conn: psycopg.Connection, schema: str) -> bool:
    return bool(
        conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{schema}".reporting_enabledtagkeys',)).fetchone()[0]
    )


def summary_checks(
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


# ------------------------------------------------------------------ several cluster-days, in parallel
def _run_task(task: DayTask, where: Connections) -> DayResult:
    with connect(where.dsn) as conn:
        result = summarize_cluster_day(
            conn,
            open_data_root(where.data_root, where.s3),
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
        for task in tasks:
            yield _run_task(task, where)
        return
    pool = ProcessPoolExecutor(max_workers=min(workers, len(tasks)), mp_context=multiprocessing.get_context("fork"))
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
