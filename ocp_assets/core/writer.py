"""The SQL of a cluster-day: koku's settings in; shared rows, usage summary rows and GPU summary rows out (D4, D5).

Each summary is replaced the same way: its rows are COPYed into a temporary float8 table, the day's previous rows
deleted, the new ones inserted with one INSERT ... SELECT that casts float8 to koku's numeric types, and read back
(counts and totals) for the checks. The transactions and their locks are core/transaction.py's; these functions
run inside them.
"""

import datetime as dt
import io
from dataclasses import dataclass, field
from typing import LiteralString

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
from psycopg import sql

from ocp_assets.core.database import one_row
from ocp_assets.core.gpu_summary import GPU_ROWS_SCHEMA, WRITE_TOTALS, GpuWrite
from ocp_assets.core.identity import ClusterDay
from ocp_assets.core.layout import month_start, next_month_start
from ocp_assets.core.pgschema import GPU_SUMMARY_TABLE, SUMMARY_TABLE, ensure_month_partition
from ocp_assets.core.summary import MEASURE_COLUMNS, SUMMARY_SCHEMA
from ocp_assets.core.transaction import locked_transaction, shared_rows_key

JSON_COLUMNS = ("pod_labels", "volume_labels", "all_labels", "infrastructure_usage_cost")
_PG_TYPES: dict[pa.DataType, LiteralString] = {
    pa.int32(): "integer",
    pa.int64(): "bigint",
    pa.string(): "text",
    pa.date32(): "date",
    pa.float64(): "double precision",
}


def _pg_type(arrow_type: pa.DataType) -> LiteralString:
    # Exact decimals (koku's numeric arithmetic, e.g. a monthly rate / days) travel as numeric, not float8.
    return "numeric" if pa.types.is_decimal(arrow_type) else _PG_TYPES[arrow_type]


@dataclass(frozen=True)
class KokuSettings:
    """What koku's SQL reads from the tenant schema besides the line items."""

    enabled_keys: tuple[str, ...]
    cost_categories: tuple[tuple[str, int], ...]
    # (child key, parent key) of reporting_tagmapping rows whose child is an enabled OCP key (koku's
    # cte_tag_key_mapping); applied to the summary's label maps before the write (core/tagmapping.py).
    tag_mappings: tuple[tuple[str, str], ...] = ()


@dataclass
class WriteResult:
    day: dt.date
    report_period_id: int
    rows_written: int
    rows_deleted: int
    rows_by_data_source: dict[str, int]
    in_month_partition: bool
    # Totals read back from PostgreSQL after the insert, per measure, to prove the write.
    totals_read_back: dict[str, float] = field(default_factory=dict)


def read_settings(conn: psycopg.Connection, schema: str) -> KokuSettings:
    ident = sql.Identifier(schema)
    keys = conn.execute(
        sql.SQL(
            "SELECT key FROM {}.reporting_enabledtagkeys WHERE enabled AND provider_type = 'OCP' ORDER BY key"
        ).format(ident)
    ).fetchall()
    categories = conn.execute(
        sql.SQL("SELECT namespace, cost_category_id FROM {}.reporting_ocp_cost_category_namespace ORDER BY id").format(
            ident
        )
    ).fetchall()
    return KokuSettings(
        tuple(k for (k,) in keys), tuple((p, int(c)) for p, c in categories), read_tag_mappings(conn, schema)
    )


def read_tag_mappings(conn: psycopg.Connection, schema: str) -> tuple[tuple[str, str], ...]:
    """koku's cte_tag_key_mapping: the child must be an enabled OCP key; the parent may be any key of any provider.

    Read in the cluster-day's connection with the other settings, so a changed mapping applies from the next
    materialization. A schema made before ocp_assets created reporting_tagmapping has no mappings.
    """
    if not one_row(conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{schema}".reporting_tagmapping',)))[0]:
        return ()
    rows = conn.execute(
        sql.SQL(
            "SELECT DISTINCT child.key, parent.key FROM {s}.reporting_enabledtagkeys AS child"
            " JOIN {s}.reporting_tagmapping AS mapping ON child.uuid = mapping.child_id"
            " JOIN {s}.reporting_enabledtagkeys AS parent ON mapping.parent_id = parent.uuid"
            " WHERE child.enabled AND child.provider_type = 'OCP' ORDER BY 1, 2"
        ).format(s=sql.Identifier(schema))
    ).fetchall()
    return tuple((child, parent) for child, parent in rows)


def report_period(
    conn: psycopg.Connection, schema: str, *, cluster_id: str, cluster_alias: str, source: str, day: dt.date
) -> int:
    """The reporting_ocpusagereportperiod id of the day's month, created like koku's create_bill when missing."""
    ident = sql.Identifier(schema)
    start = dt.datetime.combine(month_start(day), dt.time(), tzinfo=dt.UTC)
    end = dt.datetime.combine(next_month_start(day), dt.time(), tzinfo=dt.UTC)
    found = conn.execute(
        sql.SQL(
            "SELECT id FROM {}.reporting_ocpusagereportperiod"
            " WHERE cluster_id = %s AND report_period_start = %s AND provider_id = %s"
        ).format(ident),
        (cluster_id, start, source),
    ).fetchone()
    if found:
        return found[0]
    return one_row(
        conn.execute(
            sql.SQL(
                "INSERT INTO {}.reporting_ocpusagereportperiod"
                " (cluster_id, cluster_alias, report_period_start, report_period_end, provider_id)"
                " VALUES (%s, %s, %s, %s, %s) RETURNING id"
            ).format(ident),
            (cluster_id, cluster_alias, start, end, source),
        )
    )[0]


def upsert_cluster_nodes(
    conn: psycopg.Connection, schema: str, *, cluster_id: str, cluster_alias: str, source: str, inventory: pa.Table
) -> None:
    """reporting_ocp_clusters and reporting_ocp_nodes as koku's populate_openshift_cluster_information_tables leaves
    them.

    A node row is added when (node, resource_id, cores, cluster) is new; an existing one gets role and
    architecture only when one of them is NULL. Cores are compared at the column's two decimals.
    """
    cluster_uuid = _cluster_uuid(conn, schema, cluster_id=cluster_id, cluster_alias=cluster_alias, source=source)
    if inventory.num_rows == 0:
        return
    arrays = (
        inventory["node"].to_pylist(),
        inventory["resource_id"].to_pylist(),
        inventory["node_capacity_cpu_cores"].to_pylist(),
        inventory["node_role"].to_pylist(),
        inventory["architecture"].to_pylist(),
    )
    incoming = sql.SQL(
        "unnest(%s::text[], %s::text[], %s::numeric[], %s::text[], %s::text[]) AS v(node, resource_id, cores, "
        "node_role, architecture)"
    )
    same_node = sql.SQL(
        "n.node = v.node AND n.resource_id IS NOT DISTINCT FROM v.resource_id"
        " AND n.node_capacity_cpu_cores IS NOT DISTINCT FROM round(v.cores, 2) AND n.cluster_id = %s"
    )
    ident = sql.Identifier(schema)
    conn.execute(
        sql.SQL(
            "UPDATE {s}.reporting_ocp_nodes AS n SET node_role = v.node_role, architecture = v.architecture"
            " FROM {incoming} WHERE {same} AND (n.node_role IS NULL OR n.architecture IS NULL)"
        ).format(s=ident, incoming=incoming, same=same_node),
        (*arrays, cluster_uuid),
    )
    conn.execute(
        sql.SQL(
            "INSERT INTO {s}.reporting_ocp_nodes (node, resource_id, node_capacity_cpu_cores, node_role, "
            "architecture, cluster_id)"
            " SELECT v.node, v.resource_id, round(v.cores, 2), v.node_role, v.architecture, %s FROM {incoming}"
            " WHERE NOT EXISTS (SELECT 1 FROM {s}.reporting_ocp_nodes AS n WHERE {same})"
        ).format(s=ident, incoming=incoming, same=same_node),
        (cluster_uuid, *arrays, cluster_uuid),
    )


def _cluster_uuid(conn: psycopg.Connection, schema: str, *, cluster_id: str, cluster_alias: str, source: str) -> str:
    """The source's reporting_ocp_clusters row (created when missing, its alias brought up to date)."""
    ident = sql.Identifier(schema)
    cluster = conn.execute(
        sql.SQL(
            "SELECT uuid, cluster_alias FROM {}.reporting_ocp_clusters WHERE provider_id = %s ORDER BY uuid LIMIT 1"
        ).format(ident),
        (source,),
    ).fetchone()
    if cluster is None:
        return one_row(
            conn.execute(
                sql.SQL(
                    "INSERT INTO {}.reporting_ocp_clusters (cluster_id, cluster_alias, provider_id) VALUES (%s, "
                    "%s, %s) RETURNING uuid"
                ).format(ident),
                (cluster_id, cluster_alias, source),
            )
        )[0]
    if cluster[1] != cluster_alias:
        conn.execute(
            sql.SQL("UPDATE {}.reporting_ocp_clusters SET cluster_alias = %s WHERE uuid = %s").format(ident),
            (cluster_alias, cluster[0]),
        )
    return cluster[0]


@dataclass(frozen=True)
class SharedRows:
    """What the days of one cluster (and month) share: koku's report period, and whether the month partition exists."""

    report_period_id: int
    in_month_partition: bool


def prepare_shared_rows(
    conn: psycopg.Connection, schema: str, cluster_day: ClusterDay, inventory: pa.Table
) -> SharedRows:
    """Report period, cluster and node rows, and the month's partition, each created once however many days run at once.

    They are written in their own short transaction under the source's lock (the partition under the schema's),
    before the day's own transaction: concurrent days of one cluster then neither duplicate them nor hit a unique
    violation, and do not wait for each other's summary. They stay when a day's summary is rolled back, as koku
    creates them at ingest whether or not the summary follows.
    """
    cd = cluster_day
    with locked_transaction(conn, shared_rows_key(schema, cd.source)):
        period = report_period(
            conn, schema, cluster_id=cd.cluster_id, cluster_alias=cd.cluster_alias, source=cd.source, day=cd.day
        )
        upsert_cluster_nodes(
            conn,
            schema,
            cluster_id=cd.cluster_id,
            cluster_alias=cd.cluster_alias,
            source=cd.source,
            inventory=inventory,
        )
    return SharedRows(period, ensure_month_partition(conn, schema, cd.day))


def node_roles(conn: psycopg.Connection, schema: str, nodes: list[str]) -> pa.Table:
    """max(node_role) per (node, resource_id) over reporting_ocp_nodes of every cluster, as koku's cte_node_role."""
    rows = conn.execute(
        sql.SQL(
            "SELECT node, resource_id, max(node_role) FROM {}.reporting_ocp_nodes WHERE node = ANY(%s) GROUP "
            "BY node, resource_id"
        ).format(sql.Identifier(schema)),
        (nodes,),
    ).fetchall()
    return pa.table(
        {
            "node": pa.array([r[0] for r in rows], pa.string()),
            "resource_id": pa.array([r[1] for r in rows], pa.string()),
            "node_role": pa.array([r[2] for r in rows], pa.string()),
        }
    )


# ------------------------------------------------------------------ replacing a summary's rows
def csv_bytes(rows: pa.Table) -> bytes:
    """Rows as COPY's CSV. Valid values quoted, NULLs left empty: PostgreSQL's CSV COPY then tells '' (a dedicated
    GPU's MIG id, an empty label) from NULL."""
    if rows.num_rows == 0:
        return b""
    buffer = io.BytesIO()
    # One chunk: pyarrow 26's write_csv emits NUL bytes for an empty leading chunk (a day with no Pod rows).
    pacsv.write_csv(rows.combine_chunks(), buffer, pacsv.WriteOptions(include_header=False, quoting_style="all_valid"))
    return buffer.getvalue()


def copy_to_staging(conn: psycopg.Connection, staging: str, rows: pa.Table) -> None:
    """COPY rows into the session's temporary float8 table `staging`, created like the rows' schema.

    ON COMMIT DELETE ROWS empties it only at commit: it is truncated first, or a caller replacing two days in one
    transaction would copy the first day's rows into the second.
    """
    table = sql.Identifier(staging)
    columns = sql.SQL(", ").join(
        sql.SQL("{} {}").format(sql.Identifier(f.name), sql.SQL(_pg_type(f.type))) for f in rows.schema
    )
    conn.execute(sql.SQL("CREATE TEMP TABLE IF NOT EXISTS {} ({}) ON COMMIT DELETE ROWS").format(table, columns))
    conn.execute(sql.SQL("TRUNCATE {}").format(table))
    names = sql.SQL(", ").join(sql.Identifier(name) for name in rows.schema.names)
    with conn.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(table, names)) as copy:
        copy.write(csv_bytes(rows))


@dataclass(frozen=True)
class Target:
    """A summary table of the tenant, its id column, and the SQL type of each column whose text becomes another type."""

    schema: str
    table: str
    id_column: str
    casts: dict[str, LiteralString]  # SQL text: only the module's own type names, never data


def insert_from_staging(conn: psycopg.Connection, staging: str, fields: pa.Schema, into: Target) -> int:
    """INSERT ... SELECT the staged rows (`fields`) into the tenant's table, a new uuid in its id column for each."""
    names = sql.SQL(", ").join(sql.Identifier(name) for name in fields.names)
    projections = sql.SQL(", ").join(
        sql.SQL("{}::{}").format(sql.Identifier(name), sql.SQL(into.casts[name]))
        if name in into.casts
        else sql.Identifier(name)
        for name in fields.names
    )
    target = sql.SQL("{}.{} ({}, {})").format(
        sql.Identifier(into.schema), sql.Identifier(into.table), sql.Identifier(into.id_column), names
    )
    return conn.execute(
        sql.SQL("INSERT INTO {} SELECT gen_random_uuid(), {} FROM {}").format(
            target, projections, sql.Identifier(staging)
        )
    ).rowcount


# The rows koku's cost steps added (infrastructure_raw_cost > 0) are not the usage summary's: they stay (D5).
_USAGE_DAY = (
    "source_uuid = %s AND usage_start = %s AND (infrastructure_raw_cost IS NULL OR infrastructure_raw_cost = 0)"
)
_USAGE_CASTS: dict[str, LiteralString] = {**dict.fromkeys(JSON_COLUMNS, "jsonb"), "source_uuid": "uuid"}


def replace_summary_rows(
    conn: psycopg.Connection, schema: str, source: str, day: dt.date, rows: pa.Table, in_month_partition: bool
) -> WriteResult:
    """Replace the cluster-day's usage summary rows with `rows` (D5), inside the caller's transaction, and read them
    back; rows carrying infrastructure_raw_cost > 0 are kept, like koku.

    in_month_partition: whether the day's month partition exists (prepare_shared_rows made sure of it).
    """
    if rows.schema != SUMMARY_SCHEMA:
        raise ValueError("summary rows do not have SUMMARY_SCHEMA")
    staging = "ocp_assets_summary_staging"
    copy_to_staging(conn, staging, rows)
    deleted = delete_summary_rows(conn, schema, source, day)
    written = insert_from_staging(conn, staging, SUMMARY_SCHEMA, Target(schema, SUMMARY_TABLE, "uuid", _USAGE_CASTS))
    ident, table = sql.Identifier(schema), sql.Identifier(SUMMARY_TABLE)
    read_back = conn.execute(
        sql.SQL("SELECT data_source, count(*) FROM {}.{} WHERE " + _USAGE_DAY + " GROUP BY data_source").format(
            ident, table
        ),
        (source, day),
    ).fetchall()
    totals = one_row(
        conn.execute(
            sql.SQL("SELECT {} FROM {}.{} WHERE " + _USAGE_DAY).format(_sums(MEASURE_COLUMNS), ident, table),
            (source, day),
        )
    )
    return WriteResult(
        day=day,
        report_period_id=int(pc.max(rows["report_period_id"]).as_py() or 0),
        rows_written=written,
        rows_deleted=deleted,
        rows_by_data_source={str(k): int(v) for k, v in read_back},
        in_month_partition=in_month_partition,
        totals_read_back=dict(zip(MEASURE_COLUMNS, totals)),
    )


def _sums(columns: tuple[str, ...]) -> sql.Composable:
    return sql.SQL(", ").join(sql.SQL("coalesce(sum({}), 0)::float8").format(sql.Identifier(c)) for c in columns)


def delete_summary_rows(conn: psycopg.Connection, schema: str, source: str, day: dt.date) -> int:
    """koku's delete of a cluster-day's usage summary (D5): rows carrying infrastructure_raw_cost > 0 stay."""
    return conn.execute(
        sql.SQL("DELETE FROM {}.{} WHERE " + _USAGE_DAY).format(sql.Identifier(schema), sql.Identifier(SUMMARY_TABLE)),
        (source, day),
    ).rowcount


def replace_gpu_rows(conn: psycopg.Connection, schema: str, source: str, day: dt.date, rows: pa.Table) -> GpuWrite:
    """Replace the cluster-day's GPU summary rows with `rows`, inside the caller's transaction, and read them back.

    The float8 measures become numeric(33,15) in the INSERT ... SELECT, as koku's float8 x numeric products do.
    """
    if rows.schema != GPU_ROWS_SCHEMA:
        raise ValueError("GPU summary rows do not have GPU_ROWS_SCHEMA")
    staging = "ocp_assets_gpu_summary_staging"
    copy_to_staging(conn, staging, rows)
    deleted = delete_gpu_rows(conn, schema, source, day)
    written = insert_from_staging(
        conn, staging, GPU_ROWS_SCHEMA, Target(schema, GPU_SUMMARY_TABLE, "id", {"source_uuid": "uuid"})
    )
    read_back = one_row(
        conn.execute(
            sql.SQL("SELECT count(*), {} FROM {}.{} WHERE source_uuid = %s AND usage_start = %s").format(
                _sums(WRITE_TOTALS), sql.Identifier(schema), sql.Identifier(GPU_SUMMARY_TABLE)
            ),
            (source, day),
        )
    )
    return GpuWrite(written, deleted, int(read_back[0]), dict(zip(WRITE_TOTALS, (float(v) for v in read_back[1:]))))


def delete_gpu_rows(conn: psycopg.Connection, schema: str, source: str, day: dt.date) -> int:
    """koku's DELETE of the GPU summary's window (by source_uuid and usage_start), for one day."""
    return conn.execute(
        sql.SQL("DELETE FROM {}.{} WHERE source_uuid = %s AND usage_start = %s").format(
            sql.Identifier(schema), sql.Identifier(GPU_SUMMARY_TABLE)
        ),
        (source, day),
    ).rowcount


def touch_report_period(conn: psycopg.Connection, schema: str, report_period_id: int) -> None:
    # koku stamps the period after summarising; its UI reads these to show freshness.
    conn.execute(
        sql.SQL(
            "UPDATE {}.reporting_ocpusagereportperiod SET summary_data_updated_datetime = now(),"
            " summary_data_creation_datetime = coalesce(summary_data_creation_datetime, now()) WHERE id = %s"
        ).format(sql.Identifier(schema)),
        (report_period_id,),
    )
