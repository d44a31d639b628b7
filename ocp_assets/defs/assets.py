"""The summary as software-defined assets, partitioned by cluster x day: thin wrappers over ocp_assets.core.

    koku/pod_usage ─┬─> raw_pod_usage + node_capacity ─────────────────────────┐
    koku/storage_usage ──> raw_storage_usage ──┐                              │
    koku/node_labels ─────┬─> node_labels ─────┼─> pod_usage_labelled      ───┼─> daily_summary ──> PostgreSQL
    koku/namespace_labels ┴─> namespace_labels ┘   storage_usage_labelled  ───┤
                                                   node_inventory          ───┘

Every step works on ``context.partition_keys`` (one key from a sensor, a range from a backfill) and passes
``dict[partition_key, pyarrow.Table]`` through the Parquet IO manager. Inputs are validated (pandera) in the
step that reads them; a failed validation yields a failed blocking check and no output, so nothing
downstream runs and PostgreSQL keeps the partition's previous rows. A step is all-or-nothing over its
partitions: the summary of a range is written in one transaction and committed only if every
partition's checks pass.
"""

import datetime as dt
import math
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from dagster_pandera import pandera_schema_to_dagster_type

from ocp_assets.core import consistency
from ocp_assets.core import validation as V
from ocp_assets.core.engine import DayOutcome, publish_summary
from ocp_assets.core.errors import InputDataError, OcpAssetsError
from ocp_assets.core.layout import (
    NAMESPACE_LABELS,
    NODE_LABELS,
    POD_USAGE,
    STORAGE_USAGE,
)
from ocp_assets.core.pgschema import SUMMARY_TABLE
from ocp_assets.core.reader import (
    DayTable,
    locate_value,
    read_label_rows,
    read_pod_usage,
    read_storage_usage,
)
from ocp_assets.core.summary import (
    MEASURE_COLUMNS,
    LabelTables,
    MergedChunks,
    dedupe_entity_labels,
    merge_labels,
    node_inventory,
)
from ocp_assets.core.writer import KokuSettings, read_settings
from ocp_assets.defs import checks as C
from ocp_assets.defs.io import files_of, with_files
from ocp_assets.defs.partitions import cluster_day_partitions, split_key
from ocp_assets.defs.resources import (
    ClusterRecord,
    KokuDataLake,
    SummaryDatabase,
    UnknownClusterError,
)

# backfill_policy on @asset is beta in 1.13; the policy itself is what docs/dagster.md measured.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)

GROUP = "ocp_summary"
KOKU_GROUP = "koku_parquet"
IO_MANAGER_KEY = "parquet_io_manager"

# Asset keys (constants, like the check names).
RAW_POD_USAGE = "raw_pod_usage"
NODE_CAPACITY = "node_capacity"
RAW_STORAGE_USAGE = "raw_storage_usage"
NODE_LABELS_ASSET = "node_labels"
NAMESPACE_LABELS_ASSET = "namespace_labels"
POD_USAGE_LABELLED = "pod_usage_labelled"
STORAGE_USAGE_LABELLED = "storage_usage_labelled"
NODE_INVENTORY = "node_inventory"
DAILY_SUMMARY = "daily_summary"

# A backfill runs ranges of up to this many days of one cluster per run (docs/dagster.md: measurements).
MAX_PARTITIONS_PER_RUN = 31
BACKFILL_POLICY = dg.BackfillPolicy.multi_run(max_partitions_per_run=MAX_PARTITIONS_PER_RUN)
# Transient failures (PostgreSQL restarts, S3 hiccups); bad input never raises, it fails a check instead.
RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
# Which of the three reading steps the executor starts first when only two run at a time (higher first): the
# pod read is the longest and merge_labels waits for it, the label dedupe next, the small storage read last.
PRIORITY_TAG = "dagster/priority"
READ_POD_USAGE_PRIORITY = {PRIORITY_TAG: "2"}
DEDUPE_LABELS_PRIORITY = {PRIORITY_TAG: "1"}

# ------------------------------------------------------------------ koku's Parquet, read by the raw assets
KOKU_DATASETS = {
    POD_USAGE: "pod_usage hourly and daily tables (data/parquet[/daily]/<acct>/OCP/pod_usage/source=<uuid>/...)",
    STORAGE_USAGE: "storage_usage daily table (data/parquet/daily/<acct>/OCP/storage_usage/source=<uuid>/...)",
    NODE_LABELS: "node_labels hourly and daily tables",
    NAMESPACE_LABELS: "namespace_labels hourly and daily tables",
}
koku_parquet_specs = [
    dg.AssetSpec(
        key=["koku", name],
        description=f"koku's OCP Parquet, written by koku's post-processor or `ocp-assets ingest`: {text}",
        group_name=KOKU_GROUP,
        kinds={"parquet", "s3"},
        partitions_def=cluster_day_partitions,
    )
    for name, text in KOKU_DATASETS.items()
]
KOKU_KEY = {name: dg.AssetKey(["koku", name]) for name in KOKU_DATASETS}


def _column_schema(model) -> dict:
    """The pandera model as the asset's column schema in the UI (dagster-pandera builds the TableSchema)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BetaWarning)
        return {"dagster/column_schema": pandera_schema_to_dagster_type(model).metadata["schema"].schema}


def _out(description: str, model, *, required: bool = False) -> dg.AssetOut:
    return dg.AssetOut(
        is_required=required, description=description, io_manager_key=IO_MANAGER_KEY, group_name=GROUP,
        kinds={"pyarrow", "parquet"}, metadata=_column_schema(model),
    )


# ------------------------------------------------------------------ shared step helpers
@dataclass(frozen=True)
class Partition:
    key: str
    cluster: ClusterRecord
    day: dt.date


def step_partitions(context: dg.AssetExecutionContext, db: SummaryDatabase) -> list[Partition]:
    """The step's (cluster, day) partitions with their registry rows."""
    keys = [str(k) for k in context.partition_keys]
    records: dict[str, ClusterRecord] = {}
    out = []
    with db.connect() as conn:
        for key in keys:
            cluster_id, day = split_key(key)
            if cluster_id not in records:
                try:
                    records[cluster_id] = db.cluster(conn, cluster_id)
                except UnknownClusterError as exc:
                    # Not transient: retrying cannot help, so the RetryPolicy is bypassed.
                    raise dg.Failure(description=str(exc), allow_retries=False) from None
            out.append(Partition(key, records[cluster_id], day))
    return out


def settings_by_schema(db: SummaryDatabase, conn: psycopg.Connection, parts: list[Partition]) -> dict[str, KokuSettings]:
    found = {}
    for schema in sorted({p.cluster.schema for p in parts}):
        db.ensure_tenant(conn, schema)
        found[schema] = read_settings(conn, schema)
    return found


def error_report(exc: InputDataError | OcpAssetsError, rows: int = 0) -> V.ValidationReport:
    """An input that cannot even be read, as a failed validation naming file, column and row."""
    cases = pd.DataFrame(
        [{
            "schema_context": "InputDataError",
            "column": getattr(exc, "column", None),
            "check": getattr(exc, "reason", str(exc)),
            "failure_case": getattr(exc, "file", None),
            "index": getattr(exc, "row", None),
        }]
    )
    return V.ValidationReport(False, cases, str(exc), rows, 1)


def combine(reports: dict[str, V.ValidationReport]) -> V.ValidationReport:
    """Several tables validated for one check: failure cases tagged with the table they came from."""
    failed = {name: r for name, r in reports.items() if not r.ok}
    rows = sum(r.rows for r in reports.values())
    if not failed:
        return V.ValidationReport(True, pd.DataFrame(), "; ".join(r.message for r in reports.values()), rows, 0)
    cases = pd.concat([r.failure_cases.assign(table=name) for name, r in failed.items()], ignore_index=True)
    message = "; ".join(f"{name}: {r.message}" for name, r in failed.items())
    return V.ValidationReport(False, cases.head(V.MAX_FAILURE_CASES), message, rows, sum(r.failures for r in failed.values()))


def validate_rows(model, rows: DayTable) -> V.ValidationReport:
    """Validate a table read from koku's Parquet; the first bad text cell is located back to its file and row."""
    report = V.validate_frame(model, rows.table)
    if report.ok or not rows.files:
        return report
    for case in report.failure_cases.itertuples(index=False):
        value, column = case.failure_case, case.column
        if isinstance(value, str) and column in rows.table.column_names and pa.types.is_string(rows.table.schema.field(column).type):
            located = locate_value(rows, column, value, str(case.check))
            report.message += f" (first at {located})"
            return report
    shown = ", ".join(rows.files[:3]) + (f" and {len(rows.files) - 3} more" if len(rows.files) > 3 else "")
    report.message += f" (rows of the day from {shown})"
    return report


def day_table(table: pa.Table, lake: KokuDataLake) -> DayTable:
    files, paths = files_of(table)
    return DayTable(table, files, paths, lake.root() if files else None)


def table_metadata(tables: dict[str, pa.Table], started: float, **extra) -> dict:
    rows = sum(t.num_rows for t in tables.values())
    metadata = {"dagster/row_count": rows, "partitions": len(tables), "seconds": round(time.perf_counter() - started, 3)}
    if len(tables) > 1:
        metadata["rows_by_partition"] = dg.MetadataValue.json({k: t.num_rows for k, t in tables.items()})
    metadata.update(extra)
    return metadata


def _files_metadata(tables: dict[str, pa.Table]) -> dict:
    files = sorted({f for t in tables.values() for f in files_of(t)[0]})
    return {"files_read": len(files), "files": dg.MetadataValue.json(files[:50])}


# ------------------------------------------------------------------ raw reads
@dg.multi_asset(
    name="read_pod_usage",
    outs={
        RAW_POD_USAGE: _out("pod_daily rows of the cluster-day, as koku's Parquet holds them (validated)", V.RawPodUsage),
        NODE_CAPACITY: _out("per-node capacity seconds of the day from the hourly pod table (3.4)", V.NodeCapacity),
    },
    deps=[KOKU_KEY[POD_USAGE]],
    check_specs=[C.spec(C.POD_USAGE_SCHEMA, RAW_POD_USAGE), C.spec(C.NODE_CAPACITY_SCHEMA, NODE_CAPACITY)],
    partitions_def=cluster_day_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=RETRY_POLICY,
    group_name=GROUP,
    op_tags=READ_POD_USAGE_PRIORITY,
)
def read_pod_usage_step(context: dg.AssetExecutionContext, koku_db: SummaryDatabase, koku_lake: KokuDataLake) -> Iterator:
    started = time.perf_counter()
    parts = step_partitions(context, koku_db)
    root = koku_lake.root()
    pods, capacity = {}, {}
    pod_reports, capacity_reports = {}, {}
    for p in parts:
        try:
            daily, node_capacity = read_pod_usage(root, p.cluster.account, p.cluster.source, p.day)
        except InputDataError as exc:
            pod_reports[p.key] = error_report(exc)
            capacity_reports[p.key] = error_report(exc)
            continue
        pod_reports[p.key] = validate_rows(V.RawPodUsage, daily)
        capacity_reports[p.key] = V.validate_frame(V.NodeCapacity, node_capacity)
        pods[p.key] = with_files(daily.table, daily.files, daily.paths)
        capacity[p.key] = node_capacity
    pod_check = C.result(C.POD_USAGE_SCHEMA, RAW_POD_USAGE, pod_reports)
    capacity_check = C.result(C.NODE_CAPACITY_SCHEMA, NODE_CAPACITY, capacity_reports)
    if not (pod_check.passed and capacity_check.passed):
        context.log.error(f"pod usage input rejected, nothing written: {pod_check.description}")
        yield pod_check
        yield capacity_check
        return
    # Materializations first, then the checks: each evaluation then targets the materialization just stored.
    yield dg.MaterializeResult(
        asset_key=RAW_POD_USAGE, value=pods, metadata=table_metadata(pods, started, **_files_metadata(pods))
    )
    yield dg.MaterializeResult(
        asset_key=NODE_CAPACITY, value=capacity,
        metadata=table_metadata(capacity, started, nodes=sum(t.num_rows for t in capacity.values())),
    )
    yield pod_check
    yield capacity_check


@dg.asset(
    name=RAW_STORAGE_USAGE,
    description="storage_daily rows of the cluster-day (none when the cluster sends no storage report)",
    deps=[KOKU_KEY[STORAGE_USAGE]],
    check_specs=[C.spec(C.STORAGE_USAGE_SCHEMA, RAW_STORAGE_USAGE)],
    partitions_def=cluster_day_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=RETRY_POLICY,
    group_name=GROUP,
    io_manager_key=IO_MANAGER_KEY,
    kinds={"pyarrow", "parquet"},
    metadata=_column_schema(V.RawStorageUsage),
    output_required=False,
)
def raw_storage_usage(context: dg.AssetExecutionContext, koku_db: SummaryDatabase, koku_lake: KokuDataLake) -> Iterator:
    started = time.perf_counter()
    parts = step_partitions(context, koku_db)
    root = koku_lake.root()
    tables, reports = {}, {}
    for p in parts:
        try:
            rows = read_storage_usage(root, p.cluster.account, p.cluster.source, p.day)
        except InputDataError as exc:
            reports[p.key] = error_report(exc)
            continue
        reports[p.key] = validate_rows(V.RawStorageUsage, rows)
        tables[p.key] = with_files(rows.table, rows.files, rows.paths)
    check = C.result(C.STORAGE_USAGE_SCHEMA, RAW_STORAGE_USAGE, reports)
    if not check.passed:
        context.log.error(f"storage usage input rejected, nothing written: {check.description}")
        yield check
        return
    yield dg.MaterializeResult(value=tables, metadata=table_metadata(tables, started, **_files_metadata(tables)))
    yield check


@dg.multi_asset(
    name="dedupe_labels",
    outs={
        NODE_LABELS_ASSET: _out("one enabled-key label map per node of the day (D2(b)), with koku's node-role inputs", V.NodeLabels),
        NAMESPACE_LABELS_ASSET: _out("one enabled-key label map per namespace of the day (D2(b))", V.NamespaceLabels),
    },
    deps=[KOKU_KEY[NODE_LABELS], KOKU_KEY[NAMESPACE_LABELS]],
    check_specs=[C.spec(C.NODE_LABELS_SCHEMA, NODE_LABELS_ASSET), C.spec(C.NAMESPACE_LABELS_SCHEMA, NAMESPACE_LABELS_ASSET)],
    partitions_def=cluster_day_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=RETRY_POLICY,
    group_name=GROUP,
    op_tags=DEDUPE_LABELS_PRIORITY,
)
def dedupe_labels_step(context: dg.AssetExecutionContext, koku_db: SummaryDatabase, koku_lake: KokuDataLake) -> Iterator:
    started = time.perf_counter()
    parts = step_partitions(context, koku_db)
    with koku_db.connect() as conn:
        settings = settings_by_schema(koku_db, conn, parts)
    root = koku_lake.root()
    kinds = (
        (NODE_LABELS, NODE_LABELS_ASSET, "node", "node_labels", V.NodeLabelRows, V.NodeLabels),
        (NAMESPACE_LABELS, NAMESPACE_LABELS_ASSET, "namespace", "namespace_labels", V.NamespaceLabelRows, V.NamespaceLabels),
    )
    tables: dict[str, dict[str, pa.Table]] = {asset: {} for _, asset, *_ in kinds}
    reports: dict[str, dict[str, V.ValidationReport]] = {asset: {} for _, asset, *_ in kinds}
    for p in parts:
        keys = settings[p.cluster.schema].enabled_keys
        for report_type, asset, entity, column, row_model, table_model in kinds:
            try:
                daily, hourly = read_label_rows(root, p.cluster.account, p.cluster.source, p.day, report_type)
            except InputDataError as exc:
                reports[asset][p.key] = error_report(exc)
                continue
            report = combine({"daily": validate_rows(row_model, daily), "hourly": validate_rows(row_model, hourly)})
            if report.ok:
                try:
                    deduped = dedupe_entity_labels(daily, hourly, entity, column, keys)
                except InputDataError as exc:
                    report = error_report(exc, len(daily) + len(hourly))
                else:
                    report = combine({"rows": report, "deduplicated": V.validate_frame(table_model, deduped)})
                    tables[asset][p.key] = deduped
            reports[asset][p.key] = report
    results = {asset: C.result(name, asset, reports[asset]) for name, asset in (
        (C.NODE_LABELS_SCHEMA, NODE_LABELS_ASSET), (C.NAMESPACE_LABELS_SCHEMA, NAMESPACE_LABELS_ASSET))}
    if not all(r.passed for r in results.values()):
        context.log.error("label input rejected, nothing written: " + "; ".join(r.description or "" for r in results.values() if not r.passed))
        yield from results.values()
        return
    for asset in results:
        yield dg.MaterializeResult(asset_key=asset, value=tables[asset], metadata=table_metadata(tables[asset], started))
    yield from results.values()


# ------------------------------------------------------------------ labels merged into usage rows
@dg.multi_asset(
    name="merge_labels",
    outs={
        POD_USAGE_LABELLED: _out("pod rows with node != '' and pod_labels = node < namespace < pod (3.5)", V.PodUsageLabelled),
        STORAGE_USAGE_LABELLED: _out("storage rows fanned out per volume node, volume_labels = node < namespace < PV < PVC (3.6)", V.StorageUsageLabelled),
        NODE_INVENTORY: _out("reporting_ocp_nodes candidates of the day (node, resource_id, cores, role, architecture)", V.NodeInventory),
    },
    ins={
        RAW_POD_USAGE: dg.AssetIn(),
        RAW_STORAGE_USAGE: dg.AssetIn(),
        NODE_LABELS_ASSET: dg.AssetIn(),
        NAMESPACE_LABELS_ASSET: dg.AssetIn(),
    },
    check_specs=[
        C.spec(C.POD_USAGE_LABELLED_SCHEMA, POD_USAGE_LABELLED),
        C.spec(C.LABEL_PRECEDENCE, POD_USAGE_LABELLED),
        C.spec(C.STORAGE_USAGE_LABELLED_SCHEMA, STORAGE_USAGE_LABELLED),
        C.spec(C.NODE_INVENTORY_SCHEMA, NODE_INVENTORY),
    ],
    partitions_def=cluster_day_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=RETRY_POLICY,
    group_name=GROUP,
)
def merge_labels_step(
    context: dg.AssetExecutionContext,
    koku_db: SummaryDatabase,
    koku_lake: KokuDataLake,
    raw_pod_usage: dict,
    raw_storage_usage: dict,
    node_labels: dict,
    namespace_labels: dict,
) -> Iterator:
    started = time.perf_counter()
    parts = step_partitions(context, koku_db)
    with koku_db.connect() as conn:
        settings = settings_by_schema(koku_db, conn, parts)
    outputs: dict[str, dict[str, pa.Table]] = {POD_USAGE_LABELLED: {}, STORAGE_USAGE_LABELLED: {}, NODE_INVENTORY: {}}
    reports: dict[str, dict] = {name: {} for name in (C.POD_USAGE_LABELLED_SCHEMA, C.LABEL_PRECEDENCE, C.STORAGE_USAGE_LABELLED_SCHEMA, C.NODE_INVENTORY_SCHEMA)}
    for p in parts:
        keys = settings[p.cluster.schema].enabled_keys
        pods = day_table(raw_pod_usage[p.key], koku_lake)
        try:
            merged = merge_labels(
                pods, day_table(raw_storage_usage[p.key], koku_lake),
                LabelTables(node=node_labels[p.key], namespace=namespace_labels[p.key]), keys,
            )
        except InputDataError as exc:
            for by_partition in reports.values():
                by_partition[p.key] = error_report(exc)
            continue
        inventory = node_inventory(pods.table, node_labels[p.key])
        storage = merged.storage if merged.storage is not None else pa.table({})
        outputs[POD_USAGE_LABELLED][p.key] = merged.pod
        outputs[STORAGE_USAGE_LABELLED][p.key] = storage
        outputs[NODE_INVENTORY][p.key] = inventory
        reports[C.POD_USAGE_LABELLED_SCHEMA][p.key] = V.validate_frame(V.PodUsageLabelled, merged.pod)
        reports[C.LABEL_PRECEDENCE][p.key] = consistency.label_precedence(
            pods.table, merged.pod, node_labels[p.key], namespace_labels[p.key], keys
        )
        reports[C.STORAGE_USAGE_LABELLED_SCHEMA][p.key] = (
            V.validate_frame(V.StorageUsageLabelled, storage) if storage.num_columns else V.ValidationReport(True, pd.DataFrame(), "no storage rows")
        )
        reports[C.NODE_INVENTORY_SCHEMA][p.key] = V.validate_frame(V.NodeInventory, inventory)
    asset_of = {
        C.POD_USAGE_LABELLED_SCHEMA: POD_USAGE_LABELLED, C.LABEL_PRECEDENCE: POD_USAGE_LABELLED,
        C.STORAGE_USAGE_LABELLED_SCHEMA: STORAGE_USAGE_LABELLED, C.NODE_INVENTORY_SCHEMA: NODE_INVENTORY,
    }
    results = {name: C.result(name, asset_of[name], reports[name]) for name in reports}
    if not all(r.passed for r in results.values()):
        context.log.error("labelled rows rejected, nothing written")
        yield from results.values()
        return
    for asset, tables in outputs.items():
        yield dg.MaterializeResult(asset_key=asset, value=tables, metadata=table_metadata(tables, started))
    yield from results.values()


# ------------------------------------------------------------------ the summary in PostgreSQL
SUMMARY_CHECKS = (
    C.SUMMARY_SCHEMA,
    C.USAGE_CONSERVED,
    C.UNALLOCATED_IS_CAPACITY_MINUS_PODS,
    C.CLUSTER_CAPACITY_IS_NODE_SUM,
    C.NO_DUPLICATE_KEYS,
    C.LABEL_KEYS_ALLOWED,
    C.STORAGE_MONTHS_FORMULA,
    C.ROWS_IN_POSTGRESQL,
)
PREVIEW_COLUMNS = ("data_source", "namespace", "node", "pod_usage_cpu_core_hours", "pod_request_cpu_core_hours",
                   "pod_usage_memory_gigabyte_hours", "node_capacity_cpu_core_hours",
                   "persistentvolumeclaim_capacity_gigabyte_months", "all_labels")


class _RolledBack(Exception):
    pass


def summary_checks(outcome: DayOutcome, raw_pods: pa.Table, capacity: pa.Table, storage: pa.Table | None, settings: KokuSettings) -> dict:
    rows = outcome.rows
    write = outcome.write
    return {
        C.SUMMARY_SCHEMA: V.validate_frame(V.SummaryRows, rows),
        C.USAGE_CONSERVED: consistency.usage_conserved(raw_pods, rows),
        C.UNALLOCATED_IS_CAPACITY_MINUS_PODS: consistency.unallocated_is_capacity_minus_pods(rows, capacity),
        C.CLUSTER_CAPACITY_IS_NODE_SUM: consistency.cluster_capacity_is_node_sum(rows, capacity),
        C.NO_DUPLICATE_KEYS: consistency.no_duplicate_keys(rows),
        C.LABEL_KEYS_ALLOWED: consistency.label_keys_allowed(rows, settings.enabled_keys),
        C.STORAGE_MONTHS_FORMULA: consistency.storage_months_formula(storage, rows, outcome.cluster_day.day),
        C.ROWS_IN_POSTGRESQL: consistency.rows_written_match(rows, write.rows_written, write.rows_by_data_source, write.totals_read_back),
    }


def _preview(rows: pa.Table, limit: int = 5) -> str:
    frame = rows.select(list(PREVIEW_COLUMNS)).slice(0, limit).to_pandas()
    header = "| " + " | ".join(frame.columns) + " |"
    lines = [header, "|" + "---|" * len(frame.columns)]
    for row in frame.itertuples(index=False):
        cells = [_cell(v) for v in row]
        lines.append("| " + " | ".join(c.replace("|", "\\|")[:80] for c in cells) + " |")
    return "\n".join(lines)


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6g}" if isinstance(value, float) else str(value)


def _partition_summary(outcome: DayOutcome) -> dict:
    return {
        "rows": outcome.rows.num_rows,
        "rows_by_kind": outcome.rows_by_kind,
        "rows_deleted": outcome.write.rows_deleted,
        "report_period_id": outcome.write.report_period_id,
        "in_month_partition": outcome.write.in_month_partition,
        "seconds": {k: round(v, 3) for k, v in outcome.seconds.items()},
    }


@dg.asset(
    name=DAILY_SUMMARY,
    description="koku's reporting_ocpusagelineitem_daily_summary rows of the cluster-day, replaced in one transaction (D5)",
    ins={
        POD_USAGE_LABELLED: dg.AssetIn(),
        STORAGE_USAGE_LABELLED: dg.AssetIn(),
        NODE_INVENTORY: dg.AssetIn(),
        NODE_CAPACITY: dg.AssetIn(),
        RAW_POD_USAGE: dg.AssetIn(),
    },
    check_specs=[C.spec(name, DAILY_SUMMARY) for name in SUMMARY_CHECKS],
    partitions_def=cluster_day_partitions,
    backfill_policy=BACKFILL_POLICY,
    retry_policy=RETRY_POLICY,
    group_name=GROUP,
    io_manager_key=IO_MANAGER_KEY,
    kinds={"postgres"},
    metadata=_column_schema(V.SummaryRows),
    output_required=False,
)
def daily_summary(
    context: dg.AssetExecutionContext,
    koku_db: SummaryDatabase,
    pod_usage_labelled: dict,
    storage_usage_labelled: dict,
    node_inventory: dict,
    node_capacity: dict,
    raw_pod_usage: dict,
) -> Iterator:
    started = time.perf_counter()
    parts = step_partitions(context, koku_db)
    outcomes: dict[str, DayOutcome] = {}
    results: dict[str, dict] = {name: {} for name in SUMMARY_CHECKS}
    committed: list[str] = []
    with koku_db.connect() as conn:
        settings = settings_by_schema(koku_db, conn, parts)
        for p in parts:
            storage = storage_usage_labelled[p.key]
            storage = storage if storage.num_columns else None
            merged = MergedChunks(pod=pod_usage_labelled[p.key], storage=storage)
            try:
                # publish_summary's transaction nests as a savepoint in this one, so the checks below decide
                # whether the cluster-day's new rows are committed or rolled back (previous rows kept).
                with conn.transaction():
                    outcome = publish_summary(
                        conn, p.cluster.schema, p.cluster.day(p.day), merged, node_capacity[p.key],
                        node_inventory[p.key], settings[p.cluster.schema],
                    )
                    checks = summary_checks(outcome, raw_pod_usage[p.key], node_capacity[p.key], storage, settings[p.cluster.schema])
                    for name, value in checks.items():
                        results[name][p.key] = value
                    if not all(getattr(v, "ok", getattr(v, "passed", False)) for v in checks.values()):
                        raise _RolledBack()
            except _RolledBack:
                continue
            except OcpAssetsError as exc:
                for name in SUMMARY_CHECKS:
                    results[name][p.key] = error_report(exc)
                continue
            outcomes[p.key] = outcome
            committed.append(p.key)
    checks = {name: C.result(name, DAILY_SUMMARY, results[name]) for name in SUMMARY_CHECKS}
    if len(committed) == len(parts):
        yield dg.MaterializeResult(metadata=summary_metadata(parts, outcomes, started))
        yield from checks.values()
        return
    failed = sorted({p.key for p in parts} - set(committed))
    context.log.error(
        f"summary rolled back for {len(failed)} partition(s), PostgreSQL keeps their previous rows: {', '.join(failed)}; "
        f"failed checks: {', '.join(name for name, r in checks.items() if not r.passed)}"
    )
    # Partitions of a range whose checks passed were committed: record exactly those as materialized.
    for key in committed:
        yield dg.AssetMaterialization(
            asset_key=DAILY_SUMMARY, partition=key, metadata=summary_metadata([p for p in parts if p.key == key], {key: outcomes[key]}, started)
        )
    yield from checks.values()


def summary_metadata(parts: list[Partition], outcomes: dict[str, DayOutcome], started: float) -> dict:
    all_rows = [o.rows for o in outcomes.values()]
    totals = {c: float(sum(pc.sum(r[c]).as_py() or 0.0 for r in all_rows)) for c in MEASURE_COLUMNS}
    kinds: dict[str, int] = {}
    for o in outcomes.values():
        for kind, count in o.rows_by_kind.items():
            kinds[kind] = kinds.get(kind, 0) + count
    schemas = sorted({p.cluster.schema for p in parts})
    metadata: dict = {
        "dagster/row_count": sum(r.num_rows for r in all_rows),
        "table": ", ".join(f"{s}.{SUMMARY_TABLE}" for s in schemas),
        "partitions": len(outcomes),
        "rows_by_kind": dg.MetadataValue.json(kinds),
        "rows_deleted": sum(o.write.rows_deleted for o in outcomes.values()),
        "report_period_ids": dg.MetadataValue.json(sorted({o.write.report_period_id for o in outcomes.values()})),
        "totals": dg.MetadataValue.json(totals),
        "seconds": round(time.perf_counter() - started, 3),
        "engine_seconds": dg.MetadataValue.json(
            {k: round(sum(o.seconds.get(k, 0.0) for o in outcomes.values()), 3) for k in ("aggregate", "write")}
        ),
    }
    if len(outcomes) == 1:
        (outcome,) = outcomes.values()
        metadata.update({
            "cluster_id": outcome.cluster_day.cluster_id,
            "source_uuid": outcome.cluster_day.source,
            "usage_start": outcome.cluster_day.day.isoformat(),
            "report_period_id": outcome.write.report_period_id,
            "in_month_partition": outcome.write.in_month_partition,
        })
    else:
        metadata["by_partition"] = dg.MetadataValue.json({k: _partition_summary(o) for k, o in outcomes.items()})
    first_key = next(iter(outcomes))
    metadata["preview"] = dg.MetadataValue.md(f"first rows of `{first_key}`\n\n" + _preview(outcomes[first_key].rows))
    return metadata


summary_assets = [read_pod_usage_step, raw_storage_usage, dedupe_labels_step, merge_labels_step, daily_summary]
