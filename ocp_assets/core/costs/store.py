"""The cost steps' SQL: koku's deletes (contract 8.2), inserting a call's rows into the summary, the VM tmp table,
and the reads the plan needs (report period, cluster). These run inside the caller's transaction
(core/costs/month.py, the koku-sql command); the transactions and locks are core/transaction.py's.
"""

import datetime as dt
import hashlib
from typing import LiteralString

import psycopg
import pyarrow as pa
from psycopg import sql

from ocp_assets.core.costs.plan import Delete
from ocp_assets.core.database import one_row
from ocp_assets.core.pgschema import SUMMARY_TABLE
from ocp_assets.core.writer import JSON_COLUMNS, Target, copy_to_staging, insert_from_staging

# Each delete's WHERE beyond the period and the date range (koku's files and accessor methods, 8.2).
_DELETE_FILTERS: dict[str, LiteralString] = {
    # populate_usage_costs: the cost type's rows without a monthly cost type (hourly VM rows, koku's usage rates)
    "usage": (
        "source_uuid = %(source_uuid)s::uuid AND cost_model_rate_type = %(rate_type)s AND monthly_cost_type IS NULL"
    ),
    # delete_monthly_cost.sql without rate_type: every costed row of the monthly cost type
    "monthly": "cost_model_rate_type IS NOT NULL AND monthly_cost_type = %(cost_type)s",
    # _delete_tag_usage_costs
    "tag": "source_uuid = %(source_uuid)s::uuid AND monthly_cost_type = %(monthly_cost_type)s",
    # delete_monthly_cost_model_rate_type.sql
    "distributed": "cost_model_rate_type = %(cost_model_rate_type)s",
}
_COST_CASTS: dict[str, LiteralString] = {**dict.fromkeys(JSON_COLUMNS, "jsonb"), "source_uuid": "uuid"}


def delete(conn: psycopg.Connection, schema: str, step: Delete) -> int:
    """Run one of koku's deletes on the summary; the rows it removed."""
    where = sql.SQL(
        "report_period_id = %(report_period_id)s AND usage_start >= %(start_date)s::date"
        " AND usage_start <= %(end_date)s::date AND " + _DELETE_FILTERS[step.kind]
    )
    query = sql.SQL("DELETE FROM {}.{} WHERE {}").format(sql.Identifier(schema), sql.Identifier(SUMMARY_TABLE), where)
    return conn.execute(query, step.params).rowcount


def insert_cost_rows(conn: psycopg.Connection, schema: str, rows: pa.Table) -> int:
    """Insert a call's rows (summary column names; no uuid) with new uuids, float8 and exact decimals cast to koku's
    numeric columns by PostgreSQL; the number inserted."""
    if rows.num_rows == 0:
        return 0
    # One staging table per column set: a temp table keeps the columns of its first use.
    shape = hashlib.sha1(",".join(f"{f.name}:{f.type}" for f in rows.schema).encode()).hexdigest()[:12]
    staging = f"ocp_assets_cost_staging_{shape}"
    copy_to_staging(conn, staging, rows)
    return insert_from_staging(conn, staging, rows.schema, Target(schema, SUMMARY_TABLE, "uuid", _COST_CASTS))


def vm_tmp_table(uuid: str) -> str:
    """koku's name of the VM tmp table of a call (`tmp_virt_<uuid>`), as PostgreSQL folds koku's unquoted name: lower
    case, so koku's later statements find the table this one creates."""
    return f"tmp_virt_{uuid}".lower()


def ensure_vm_tmp_table(conn: psycopg.Connection, schema: str, uuid: str) -> None:
    """The VM tmp table as koku's create_virtualization_tmp_table.sql makes it, when it is missing (8.7)."""
    table = sql.Identifier(schema, vm_tmp_table(uuid))
    conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {} (vm_name text, node text, pvc_name text, cpu_request float8,"
            " mem_request float8)"
        ).format(table)
    )
    for column in ("vm_name", "pvc_name", "node"):
        index = sql.Identifier(f"idx_tmp_virt_{column}_{uuid}".lower())
        conn.execute(sql.SQL("CREATE INDEX IF NOT EXISTS {} ON {} ({})").format(index, table, sql.Identifier(column)))


def insert_vm_tmp_rows(conn: psycopg.Connection, schema: str, uuid: str, rows: pa.Table) -> int:
    """Append the tmp table rows of a call (koku's file INSERTs; it deletes nothing)."""
    ensure_vm_tmp_table(conn, schema, uuid)
    if rows.num_rows == 0:
        return 0
    names = sql.SQL(", ").join(sql.Identifier(name) for name in rows.schema.names)
    table = sql.Identifier(schema, vm_tmp_table(uuid))
    with conn.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN").format(table, names)) as copy:
        for row in rows.to_pylist():
            copy.write_row(tuple(row.values()))
    return rows.num_rows


def report_period(conn: psycopg.Connection, schema: str, source: str, month: dt.date) -> tuple[int, str, str] | None:
    """koku's report_periods_for_provider_uuid(source, month): the period id, its cluster id and alias, or None."""
    found = conn.execute(
        sql.SQL(
            "SELECT id, cluster_id, cluster_alias FROM {}.reporting_ocpusagereportperiod"
            " WHERE provider_id = %s::uuid AND report_period_start = %s ORDER BY id LIMIT 1"
        ).format(sql.Identifier(schema)),
        (source, dt.datetime.combine(month.replace(day=1), dt.time(), tzinfo=dt.UTC)),
    ).fetchone()
    return None if found is None else (int(found[0]), found[1], found[2])


def has_distributed_rows(conn: psycopg.Connection, schema: str, source: str, first: dt.date, last: dt.date) -> bool:
    """Whether the month already holds gpu_distributed rows of the source (koku's day-2 "finalized" test)."""
    return bool(
        one_row(
            conn.execute(
                sql.SQL(
                    "SELECT EXISTS (SELECT 1 FROM {}.{} WHERE source_uuid = %s::uuid AND usage_start >= %s"
                    " AND usage_start <= %s AND cost_model_rate_type = 'gpu_distributed')"
                ).format(sql.Identifier(schema), sql.Identifier(SUMMARY_TABLE)),
                (source, first, last),
            )
        )[0]
    )
