"""Independent reference of koku's GPU usage summary: its self-hosted SQL run on PostgreSQL over koku-layout Parquet.

``reference_gpu_summary`` loads the hourly ``gpu_usage`` Parquet of one source (``data/parquet/<account>/OCP/
gpu_usage/source=<uuid>/year=YYYY/month=MM/*.parquet``) into a scratch schema shaped like koku's self-hosted
``openshift_gpu_usage_line_items`` (``reporting/provider/ocp/self_hosted_models.py`` OCPGPUUsageLineItem: the
Parquet columns plus ``usage_start``, ``source``, ``year``, ``month``), fills ``reporting_ocp_cost_category_namespace``
with the given patterns, and runs koku's ``masu/database/self_hosted_sql/openshift/ui_summary/
reporting_ocp_gpu_summary_p_usage_only.sql`` (koku commit 768be825) once per month part of the window, as koku's
``summarize_reports`` splits by month. It returns the rows of ``reporting_ocp_gpu_summary_p`` (koku's types).

Like ``koku_sql`` it shares no code with ``ocp_assets``. The SQL below is koku's, with jinja parameters turned into
psycopg ones and one change, marked ``[D2]``: the GROUP BY takes ``NULLIF(mig_profile, '')`` instead of
``mig_profile``, the decision ocp_assets documents (docs/decisions.md) so that a GPU reported with both '' and NULL
profiles on one day is not counted on two rows. Wherever the input is consistent the two are the same.
"""

from __future__ import annotations

import datetime as dt
import io
import math
import os
import uuid as uuidlib
from collections.abc import Sequence
from decimal import Decimal
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg import sql

from ocp_assets_tests import shared_postgres

# koku's self-hosted line-item table (OCPGPUUsageLineItem, migrations 0343 and 0344), the columns the SQL touches
# and those it carries along.
LINE_ITEM_COLUMNS: list[tuple[str, str]] = [
    ("report_period_start", "timestamp"),
    ("report_period_end", "timestamp"),
    ("interval_start", "timestamp"),
    ("interval_end", "timestamp"),
    ("node", "varchar(253)"),
    ("namespace", "varchar(253)"),
    ("pod", "varchar(253)"),
    ("gpu_uuid", "varchar(256)"),
    ("gpu_model_name", "varchar(256)"),
    ("gpu_vendor_name", "varchar(256)"),
    ("gpu_memory_capacity_mib", "double precision"),
    ("gpu_pod_uptime", "double precision"),
    ("mig_instance_id", "varchar(256)"),
    ("mig_profile", "varchar(64)"),
    ("mig_slice_count", "integer"),
    ("mig_memory_capacity_mib", "double precision"),
    ("mig_strategy", "varchar(10)"),
    ("gpu_max_slices", "integer"),
]
PARTITION_COLUMNS = [
    ("usage_start", "date"),
    ("source", "varchar(64)"),
    ("year", "varchar(4)"),
    ("month", "varchar(2)"),
]

# reporting_ocp_gpu_summary_p as koku's migrations 0340, 0344, 0345 and 0346 leave it (cost columns omitted: the
# usage-only SQL never writes them).
SUMMARY_DDL = """
CREATE TABLE reporting_ocp_gpu_summary_p (
    id uuid NOT NULL,
    cluster_id text NOT NULL,
    cluster_alias text,
    namespace varchar(253),
    node varchar(253),
    usage_start date NOT NULL,
    usage_end date NOT NULL,
    vendor_name varchar(128),
    model_name varchar(128),
    memory_capacity_gb numeric(33,15),
    gpu_count integer,
    cost_category_id integer,
    source_uuid uuid,
    gpu_max_slices integer,
    gpu_mode varchar(32),
    mig_memory_capacity_gb numeric(33,15),
    mig_profile varchar(64),
    mig_slice_count integer,
    mig_strategy varchar(10),
    gpu_uuid varchar(128),
    mig_instance_id varchar(128),
    PRIMARY KEY (usage_start, id)
)
"""
CATEGORY_DDL = """
CREATE TABLE reporting_ocp_cost_category_namespace (
    id serial PRIMARY KEY, namespace text NOT NULL UNIQUE, system_default boolean NOT NULL, cost_category_id integer
)
"""

# koku's reporting_ocp_gpu_summary_p_usage_only.sql (self_hosted_sql), parameters bound by psycopg.
USAGE_ONLY_SQL = [
    """
DELETE FROM reporting_ocp_gpu_summary_p
WHERE usage_start >= %(start_date)s::date
    AND usage_start <= %(end_date)s::date
    AND source_uuid = %(source_uuid)s::uuid
""",
    """
INSERT INTO reporting_ocp_gpu_summary_p (
    id,
    cluster_id,
    cluster_alias,
    usage_start,
    usage_end,
    namespace,
    node,
    vendor_name,
    model_name,
    memory_capacity_gb,
    gpu_count,
    mig_instance_id,
    gpu_uuid,
    gpu_mode,
    mig_profile,
    mig_slice_count,
    gpu_max_slices,
    mig_strategy,
    mig_memory_capacity_gb,
    source_uuid,
    cost_category_id
)
SELECT gen_random_uuid(),
    %(cluster_id)s as cluster_id,
    %(cluster_alias)s as cluster_alias,
    gpu.usage_start,
    gpu.usage_start as usage_end,
    gpu.namespace,
    gpu.node,
    gpu.gpu_vendor_name,
    gpu.gpu_model_name,
    max(gpu.gpu_memory_capacity_mib) * 0.001048576 as memory_capacity_gb,
    count(DISTINCT COALESCE(gpu.mig_instance_id, gpu.gpu_uuid)) as gpu_count,
    max(gpu.mig_instance_id) as mig_instance_id,
    max(gpu.gpu_uuid) as gpu_uuid,
    CASE WHEN max(NULLIF(gpu.mig_profile, '')) IS NOT NULL THEN 'MIG' ELSE 'dedicated' END as gpu_mode,
    max(NULLIF(gpu.mig_profile, '')) as mig_profile,
    max(gpu.mig_slice_count) as mig_slice_count,
    max(gpu.gpu_max_slices) as gpu_max_slices,
    max(gpu.mig_strategy) as mig_strategy,
    max(gpu.mig_memory_capacity_mib) * 0.001048576 as mig_memory_capacity_gb,
    %(source_uuid)s::uuid,
    max(cat_ns.cost_category_id)
FROM openshift_gpu_usage_line_items AS gpu
LEFT JOIN reporting_ocp_cost_category_namespace AS cat_ns
        ON gpu.namespace LIKE cat_ns.namespace
WHERE gpu.source = %(source_uuid)s
    AND gpu.year = %(year)s
    AND lpad(gpu.month, 2, '0') = %(month)s
    AND gpu.usage_start >= date(%(start_date)s)
    AND gpu.usage_start <= date(%(end_date)s)
GROUP BY gpu.namespace, gpu.node, gpu.gpu_vendor_name, gpu.gpu_model_name,
    NULLIF(gpu.mig_profile, ''), -- [D2] koku: gpu.mig_profile
    gpu.usage_start, gpu.mig_instance_id, gpu.gpu_uuid
""",
]

RESULT_COLUMNS = [
    "cluster_id",
    "cluster_alias",
    "usage_start",
    "usage_end",
    "namespace",
    "node",
    "vendor_name",
    "model_name",
    "memory_capacity_gb",
    "gpu_count",
    "mig_instance_id",
    "gpu_uuid",
    "gpu_mode",
    "mig_profile",
    "mig_slice_count",
    "gpu_max_slices",
    "mig_strategy",
    "mig_memory_capacity_gb",
    "source_uuid",
    "cost_category_id",
]
KEY_COLUMNS = [
    "usage_start",
    "namespace",
    "node",
    "vendor_name",
    "model_name",
    "mig_profile",
    "mig_instance_id",
    "gpu_uuid",
]


def _months(start: dt.date, end: dt.date) -> list[tuple[dt.date, dt.date]]:
    out = []
    current = start
    while current <= end:
        following = dt.date(current.year + (current.month == 12), current.month % 12 + 1, 1)
        out.append((current, min(end, following - dt.timedelta(days=1))))
        current = following
    return out


def _month_folder(data_root: Path, account: str, source: str, day: dt.date) -> Path:
    return (
        data_root
        / "data"
        / "parquet"
        / account
        / "OCP"
        / "gpu_usage"
        / f"source={source}"
        / f"year={day.year:04d}"
        / f"month={day.month:02d}"
    )


def _arrow_type(pg_type: str) -> pa.DataType:
    if pg_type == "timestamp":
        return pa.timestamp("ms")
    if pg_type == "double precision":
        return pa.float64()
    if pg_type == "integer":
        return pa.int64()
    return pa.string()


def _line_items(path: Path, source: str, first: dt.date, last: dt.date) -> pa.Table:
    """One Parquet file as line-item rows of [first, last] (missing columns NULL, as koku's older reports)."""
    table = pq.read_table(path)
    arrays = []
    for name, pg_type in LINE_ITEM_COLUMNS:
        target = _arrow_type(pg_type)
        if name in table.column_names:
            column = table[name]
            if pa.types.is_dictionary(column.type):
                column = column.cast(column.type.value_type)
            arrays.append(column.cast(target))
        else:
            arrays.append(pa.nulls(table.num_rows, target))
    rows = pa.Table.from_arrays(arrays, names=[n for n, _ in LINE_ITEM_COLUMNS])
    usage_start = pc.cast(pc.floor_temporal(rows["interval_start"], unit="day"), pa.date32())
    n = rows.num_rows
    rows = (
        rows.append_column("usage_start", usage_start)
        .append_column("source", pa.array([source] * n, pa.string()))
        .append_column("year", pa.array([f"{first.year:04d}"] * n, pa.string()))
        .append_column("month", pa.array([f"{first.month:02d}"] * n, pa.string()))
    )
    keep = pc.and_(
        pc.greater_equal(usage_start, pa.scalar(first, pa.date32())),
        pc.less_equal(usage_start, pa.scalar(last, pa.date32())),
    )
    return rows.filter(keep)


def reference_gpu_summary(
    dsn: str | None,
    data_root: str | os.PathLike,
    *,
    account: str,
    source: str,
    cluster_id: str,
    cluster_alias: str,
    start: dt.date,
    end: dt.date,
    cost_category_patterns: Sequence[tuple[str, int]] = (),
) -> list[dict]:
    """koku's reporting_ocp_gpu_summary_p rows for one source over [start, end] (inclusive), sorted by key.

    Numerics come back as float, dates as ``datetime.date``, uuids as text; the row ``id`` is left out.
    """
    dsn = dsn or shared_postgres.session_dsn()
    schema = f"ocp_gpu_ref_{uuidlib.uuid4().hex[:12]}"
    data_root = Path(data_root)
    all_columns = LINE_ITEM_COLUMNS + PARTITION_COLUMNS
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        try:
            conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(schema)))
            conn.execute(
                "CREATE TABLE openshift_gpu_usage_line_items ("
                + ", ".join(f"{name} {pg_type}" for name, pg_type in all_columns)
                + ")"
            )
            conn.execute(SUMMARY_DDL)
            conn.execute(CATEGORY_DDL)
            with conn.cursor() as cur:
                cur.executemany(
                    "INSERT INTO reporting_ocp_cost_category_namespace (namespace, system_default, cost_category_id)"
                    " VALUES (%s, false, %s)",
                    list(cost_category_patterns),
                )
            copy_sql = "COPY openshift_gpu_usage_line_items ({}) FROM STDIN (FORMAT csv)".format(
                ", ".join(name for name, _ in all_columns)
            )
            with conn.cursor() as cur, cur.copy(copy_sql) as copy:
                for first, last in _months(start, end):
                    folder = _month_folder(data_root, account, source, first)
                    for path in sorted(folder.glob("*.parquet")) if folder.is_dir() else ():
                        rows = _line_items(path, source, first, last)
                        if rows.num_rows:
                            buffer = io.BytesIO()
                            options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
                            pacsv.write_csv(rows, buffer, options)
                            copy.write(buffer.getvalue())
            for first, last in _months(start, end):
                params = {
                    "start_date": first,
                    "end_date": last,
                    "source_uuid": source,
                    "year": f"{first.year:04d}",
                    "month": f"{first.month:02d}",
                    "cluster_id": cluster_id,
                    "cluster_alias": cluster_alias,
                }
                # Client-side binding, as koku's jinjasql renders each occurrence of a parameter on its own (one
                # server-side parameter could not be both the ::uuid and the varchar that source is compared with).
                with conn.transaction(), psycopg.ClientCursor(conn) as cur:
                    for statement in USAGE_ONLY_SQL:
                        cur.execute(statement, params)
            result = conn.execute(
                "SELECT {} FROM reporting_ocp_gpu_summary_p".format(", ".join(RESULT_COLUMNS))
            ).fetchall()
        finally:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    return sort_rows([as_plain(dict(zip(RESULT_COLUMNS, row))) for row in result])


def as_plain(row: dict) -> dict:
    """Decimals as float and uuids as text, so rows from either side compare as plain values."""
    return {
        k: float(v) if isinstance(v, Decimal) else str(v) if isinstance(v, uuidlib.UUID) else v for k, v in row.items()
    }


def sort_rows(rows: list[dict]) -> list[dict]:
    return sorted(rows, key=lambda r: tuple((r[k] is not None, str(r[k])) for k in KEY_COLUMNS))


def compare_gpu_summaries(expected: list[dict], actual: list[dict], rel_tol: float = 1e-9) -> list[str]:
    """Every difference between two sets of GPU summary rows, matched on KEY_COLUMNS ([] when they match)."""

    def index(rows: list[dict]) -> dict[tuple, list[dict]]:
        found: dict[tuple, list[dict]] = {}
        for row in rows:
            found.setdefault(tuple(row[k] for k in KEY_COLUMNS), []).append(row)
        return found

    problems = []
    want, got = index(expected), index(actual)
    for key in sorted(set(want) | set(got), key=str):
        if len(want.get(key, [])) != len(got.get(key, [])):
            problems.append(f"{len(got.get(key, []))} row(s), expected {len(want.get(key, []))}: {key}")
            continue
        for e, a in zip(want[key], got[key]):
            for column in RESULT_COLUMNS:
                x, y = e[column], a[column]
                if isinstance(x, float) and isinstance(y, float):
                    same = math.isclose(x, y, rel_tol=rel_tol, abs_tol=1e-12)
                else:
                    same = x == y
                if not same:
                    problems.append(f"{column}: expected {x!r}, actual {y!r} at {key}")
    return problems


def engine_gpu_rows(conn: psycopg.Connection, schema: str, source: str) -> list[dict]:
    """The source's rows of reporting_ocp_gpu_summary_p in `schema`, in the reference's format and order."""
    query = sql.SQL("SELECT {} FROM {}.reporting_ocp_gpu_summary_p WHERE source_uuid = %s").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in RESULT_COLUMNS), sql.Identifier(schema)
    )
    return sort_rows([as_plain(dict(zip(RESULT_COLUMNS, r))) for r in conn.execute(query, (source,)).fetchall()])
