"""One cluster-day from koku Parquet to committed summary rows: the code path shared by the CLI and the Dagster assets."""

import datetime as dt
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
import pyarrow as pa
import pyarrow.compute as pc

from ocp_assets.core.errors import ConfigurationError, OcpAssetsError
from ocp_assets.core.pgschema import require_schema
from ocp_assets.core.reader import DayInputs, read_cluster_day
from ocp_assets.core.storage import DataRoot
from ocp_assets.core.summary import (
    MEASURE_COLUMNS,
    MergedChunks,
    SummaryContext,
    aggregate_usage,
    dedupe_labels,
    merge_labels,
    node_inventory,
    unallocated_rows,
)
from ocp_assets.core.writer import (
    KokuSettings,
    WriteResult,
    lock_cluster_day,
    node_roles,
    read_settings,
    replace_summary_rows,
    report_period,
    touch_report_period,
    upsert_cluster_nodes,
)

WRITE_CHECK_REL_TOL = 1e-9  # D6: numeric(33,15) rounding stays far below this


@dataclass(frozen=True)
class ClusterDay:
    """Which cluster (koku source) and day to summarise, and how koku names it."""

    account: str
    source: str
    cluster_id: str
    cluster_alias: str
    day: dt.date


@dataclass
class DayOutcome:
    cluster_day: ClusterDay
    rows: pa.Table  # the rows written, as computed (float64 measures)
    write: WriteResult
    rows_by_kind: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)


class WriteVerificationError(OcpAssetsError):
    """Rows read back from PostgreSQL differ from the rows computed; the transaction is rolled back."""


@contextmanager
def connect(dsn: str) -> Iterator[psycopg.Connection]:
    try:
        conn = psycopg.connect(dsn, autocommit=True)
    except psycopg.OperationalError as exc:
        raise ConfigurationError(f"cannot connect to PostgreSQL ({exc})".strip()) from None
    try:
        yield conn
    finally:
        conn.close()


def rows_by_kind(rows: pa.Table) -> dict[str, int]:
    """Counts per kind of row; unallocated rows are the Pod rows without pod_labels (3.7)."""
    is_pod = pc.equal(rows["data_source"], "Pod")
    unallocated = pc.sum(pc.and_(is_pod, pc.is_null(rows["pod_labels"]))).as_py() or 0
    return {
        "Pod": (pc.sum(is_pod).as_py() or 0) - unallocated,
        "Storage": pc.sum(pc.equal(rows["data_source"], "Storage")).as_py() or 0,
        "unallocated": unallocated,
    }


def verify_write(rows: pa.Table, write: WriteResult) -> None:
    """The write check: per measure, the total in PostgreSQL equals the total computed (D6 tolerance)."""
    if write.rows_written != rows.num_rows:
        raise WriteVerificationError(f"{write.rows_written} rows inserted, {rows.num_rows} computed")
    for column in MEASURE_COLUMNS:
        computed = pc.sum(rows[column]).as_py() or 0.0
        stored = write.totals_read_back[column]
        if not math.isclose(computed, stored, rel_tol=WRITE_CHECK_REL_TOL, abs_tol=1e-9):
            raise WriteVerificationError(f"{column}: PostgreSQL holds {stored!r}, computed {computed!r}")


def publish_summary(
    conn: psycopg.Connection,
    schema: str,
    cluster_day: ClusterDay,
    merged: MergedChunks,
    node_capacity: pa.Table,
    inventory: pa.Table,
    settings: KokuSettings,
) -> DayOutcome:
    """Aggregate the merged chunks and replace the cluster-day's rows, all in one transaction (D5)."""
    started = time.perf_counter()
    with conn.transaction():
        lock_cluster_day(conn, schema, cluster_day.source, cluster_day.day)
        period = report_period(
            conn, schema, cluster_id=cluster_day.cluster_id, cluster_alias=cluster_day.cluster_alias,
            source=cluster_day.source, day=cluster_day.day,
        )
        ctx = SummaryContext(
            source=cluster_day.source, cluster_id=cluster_day.cluster_id, cluster_alias=cluster_day.cluster_alias,
            day=cluster_day.day, report_period_id=period, enabled_keys=settings.enabled_keys,
            cost_categories=settings.cost_categories,
        )
        usage = aggregate_usage(merged, node_capacity, ctx)
        upsert_cluster_nodes(
            conn, schema, cluster_id=cluster_day.cluster_id, cluster_alias=cluster_day.cluster_alias,
            source=cluster_day.source, inventory=inventory,
        )
        nodes = pc.unique(merged.pod["node"]).to_pylist()
        rows = pa.concat_tables([usage, unallocated_rows(usage, node_roles(conn, schema, nodes), ctx)])
        computed = time.perf_counter()
        write = replace_summary_rows(conn, schema, cluster_day.source, cluster_day.day, rows)
        verify_write(rows, write)
        touch_report_period(conn, schema, period)
    finished = time.perf_counter()
    return DayOutcome(
        cluster_day=cluster_day,
        rows=rows,
        write=write,
        rows_by_kind=rows_by_kind(rows),
        seconds={"aggregate": computed - started, "write": finished - computed},
    )


def summarize_day(conn: psycopg.Connection, schema: str, root: DataRoot, cluster_day: ClusterDay) -> DayOutcome:
    """Read, label, aggregate and write one cluster-day; on any error nothing of that day changes."""
    require_schema(conn, schema)
    settings = read_settings(conn, schema)
    started = time.perf_counter()
    inputs: DayInputs = read_cluster_day(root, cluster_day.account, cluster_day.source, cluster_day.day)
    read = time.perf_counter()
    labels = dedupe_labels(inputs, settings.enabled_keys)
    merged = merge_labels(inputs.pod_daily, inputs.storage_daily, labels, settings.enabled_keys)
    inventory = node_inventory(inputs.pod_daily.table, labels.node)
    labelled = time.perf_counter()
    outcome = publish_summary(conn, schema, cluster_day, merged, inputs.node_capacity, inventory, settings)
    outcome.seconds = {"read": read - started, "labels": labelled - read, **outcome.seconds}
    return outcome


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    if end < start:
        raise ConfigurationError(f"end {end} is before start {start}")
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
