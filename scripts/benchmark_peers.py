"""The benchmark's peers: the same daily summary computed by DuckDB and by the project's SQL port of koku's PGSQL.

DuckDB: one query of this module, written from contract section 3 with decisions D1-D2 (not from ocp_assets' code),
reads the same koku Parquet for the whole range at once, and its rows are written to PostgreSQL with COPY into a
tenant schema of their own (delete the range, COPY, commit), so it does the work ``ocp-assets summarize`` does:
Parquet to committed rows. The benchmark compares its rows with ours (``summaries_differ``), so the peer is honest.

Where the query simplifies (the data nise generates never meets these): node roles are derived over the whole range
at once (koku accumulates them run by run in reporting_ocp_nodes, which gives the same roles while a node's role does
not change); when a node's or namespace's enabled labels change within a day (D2(b)), the tie between several sets
at the latest hour is broken on DuckDB's JSON text, not on the contract's key-sorted ``json.dumps`` text.

The koku SQL port is ``ocp_assets_tests/reference/koku_sql.py``'s ``reference_summary``: COPY the line items into
PostgreSQL tables shaped like koku's self-hosted ones, then koku's SQL; its load and SQL seconds are its own timings.
"""

import time

started = time.perf_counter()  # the peer's process: its imports count from here

import argparse  # noqa: E402
import datetime as dt  # noqa: E402
import io  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from pathlib import Path  # noqa: E402

REPO = Path(__file__).resolve().parents[1]

GIB = "power(2.0, -30)"
INFRASTRUCTURE_USAGE_COST = '{"cpu": 0.000000000, "memory": 0.000000000, "storage": 0.000000000}'
UNALLOCATED_NAMESPACES = ("Platform unallocated", "Worker unallocated", "Network unattributed", "Storage unattributed")
INFRA_NODE_LABEL_TEXT = '"node_role_kubernetes_io": "infra"'
MASTER_NAMESPACE = "openshift-kube-apiserver"

# The summary table's columns the query fills, in its output order (uuid first, made by DuckDB).
OUTPUT_COLUMNS = [
    "uuid",
    "report_period_id",
    "cost_category_id",
    "cluster_id",
    "cluster_alias",
    "data_source",
    "namespace",
    "node",
    "resource_id",
    "usage_start",
    "usage_end",
    "pod_labels",
    "pod_usage_cpu_core_hours",
    "pod_request_cpu_core_hours",
    "pod_effective_usage_cpu_core_hours",
    "pod_limit_cpu_core_hours",
    "pod_usage_memory_gigabyte_hours",
    "pod_request_memory_gigabyte_hours",
    "pod_effective_usage_memory_gigabyte_hours",
    "pod_limit_memory_gigabyte_hours",
    "node_capacity_cpu_cores",
    "node_capacity_cpu_core_hours",
    "node_capacity_memory_gigabytes",
    "node_capacity_memory_gigabyte_hours",
    "cluster_capacity_cpu_core_hours",
    "cluster_capacity_memory_gigabyte_hours",
    "persistentvolumeclaim",
    "persistentvolume",
    "storageclass",
    "volume_labels",
    "all_labels",
    "persistentvolumeclaim_capacity_gigabyte",
    "persistentvolumeclaim_capacity_gigabyte_months",
    "volume_request_storage_gigabyte_months",
    "persistentvolumeclaim_usage_gigabyte_months",
    "infrastructure_usage_cost",
    "source_uuid",
]

# Enabled-key label map of a koku label JSON text ('' or NULL: the empty map), and a map's text with sorted keys
# (the group key: two rows with the same labels must give the same text).
MACROS = """
CREATE OR REPLACE MACRO enabled_labels(j, allowed) AS
    CASE WHEN j IS NULL OR trim(j) = '' THEN MAP {}::MAP(VARCHAR, VARCHAR)
         ELSE map_from_entries(list_filter(map_entries(CAST(CAST(j AS JSON) AS MAP(VARCHAR, VARCHAR))),
                                           lambda e: list_contains(allowed, e.key))) END;
CREATE OR REPLACE MACRO label_text(m) AS CAST(to_json(map_from_entries(list_sort(map_entries(m)))) AS VARCHAR);
"""


def _entity_labels(kind: str, key: str) -> str:
    """One enabled-label map per (day, node) or (day, namespace) (3.3 with D2(b)): the day's single filtered set, else
    the set of the latest hour in the hourly table (greatest text on a tie), else the greatest daily set."""
    return f"""
{kind}_daily AS (
    SELECT DISTINCT CAST(interval_start AS DATE) AS day, {key}, label_text(enabled_labels({kind}, $keys)) AS labels
    FROM read_parquet(@{kind}_daily@, union_by_name = true)
    WHERE interval_start >= $start AND interval_start < $stop
),
{kind}_sets AS (
    SELECT day, {key}, count(*) AS sets, max(labels) AS greatest FROM {kind}_daily GROUP BY day, {key}
),
{kind}_latest AS (
    SELECT day, {key}, labels FROM (
        SELECT CAST(h.interval_start AS DATE) AS day, h.{key}, label_text(enabled_labels(h.{kind}, $keys)) AS labels,
               h.interval_start
        FROM read_parquet(@{kind}_hourly@, union_by_name = true) h
        JOIN {kind}_sets s ON s.day = CAST(h.interval_start AS DATE) AND s.{key} = h.{key} AND s.sets > 1
        WHERE h.interval_start >= $start AND h.interval_start < $stop
    )
    QUALIFY row_number() OVER (PARTITION BY day, {key} ORDER BY interval_start DESC, labels DESC) = 1
),
{kind} AS (
    SELECT s.day, s.{key},
           CAST(CAST(CASE WHEN s.sets = 1 THEN s.greatest ELSE coalesce(l.labels, s.greatest) END AS JSON)
                AS MAP(VARCHAR, VARCHAR)) AS labels
    FROM {kind}_sets s LEFT JOIN {kind}_latest l ON l.day = s.day AND l.{key} = s.{key}
)"""


def _inputs() -> str:
    return f"""
pod_daily AS (
    SELECT namespace, node, pod, pod_labels, resource_id, node_role, CAST(interval_start AS DATE) AS day,
           pod_usage_cpu_core_seconds, pod_request_cpu_core_seconds, pod_limit_cpu_core_seconds,
           pod_usage_memory_byte_seconds, pod_request_memory_byte_seconds, pod_limit_memory_byte_seconds,
           coalesce(pod_effective_usage_cpu_core_seconds,
                    greatest(pod_usage_cpu_core_seconds, pod_request_cpu_core_seconds)) AS effective_cpu,
           coalesce(pod_effective_usage_memory_byte_seconds,
                    greatest(pod_usage_memory_byte_seconds, pod_request_memory_byte_seconds)) AS effective_memory,
           node_capacity_cpu_cores, node_capacity_memory_bytes
    FROM read_parquet(@pod_daily@, union_by_name = true)
    WHERE interval_start >= $start AND interval_start < $stop
),
node_capacity AS (  -- 3.4: max per (hour, node) removes the per-pod repetition, then the day's sum
    SELECT day, node, sum(cpu) AS cpu_seconds, sum(memory) AS memory_byte_seconds
    FROM (SELECT CAST(interval_start AS DATE) AS day, interval_start, node,
                 max(node_capacity_cpu_core_seconds) AS cpu, max(node_capacity_memory_byte_seconds) AS memory
          FROM read_parquet(@pod_hourly@, union_by_name = true)
          WHERE interval_start >= $start AND interval_start < $stop
          GROUP BY interval_start, node)
    GROUP BY day, node
),
cluster_capacity AS (
    SELECT day, sum(cpu_seconds) AS cpu_seconds, sum(memory_byte_seconds) AS memory_byte_seconds
    FROM node_capacity GROUP BY day
),
storage_daily AS (
    SELECT namespace, pod, persistentvolumeclaim, persistentvolume, storageclass, csi_volume_handle,
           persistentvolume_labels, persistentvolumeclaim_labels, CAST(interval_start AS DATE) AS day,
           persistentvolumeclaim_capacity_bytes, persistentvolumeclaim_capacity_byte_seconds,
           volume_request_storage_byte_seconds, persistentvolumeclaim_usage_byte_seconds
    FROM read_parquet(@storage_daily@, union_by_name = true)
    WHERE interval_start >= $start AND interval_start < $stop
),
categories AS (SELECT * FROM (VALUES @categories@) AS c(pattern, cost_category_id)),
namespace_category AS (  -- D2(a): one category per namespace, the greatest of the LIKE patterns it matches
    SELECT n.namespace, max(c.cost_category_id) AS cost_category_id
    FROM (SELECT namespace FROM pod_daily UNION SELECT namespace FROM storage_daily
          UNION SELECT unnest({list(UNALLOCATED_NAMESPACES[:2])})) n
    JOIN categories c ON like_escape(n.namespace, c.pattern, '\\')
    GROUP BY n.namespace
)"""


_POD_ROWS = f"""
pods AS (
    SELECT p.*, label_text(map_concat(coalesce(nl.labels, MAP {{}}), coalesce(nsl.labels, MAP {{}}),
                                      enabled_labels(p.pod_labels, $keys))) AS merged_labels
    FROM pod_daily p
    LEFT JOIN node_labels nl ON nl.day = p.day AND nl.node = p.node
    LEFT JOIN namespace_labels nsl ON nsl.day = p.day AND nsl.namespace = p.namespace
    WHERE p.node <> ''
),
pod_rows AS (  -- 3.5
    SELECT p.day, p.namespace, p.node, max(p.resource_id) AS resource_id, p.merged_labels AS pod_labels,
           sum(p.pod_usage_cpu_core_seconds) / 3600 AS pod_usage_cpu_core_hours,
           sum(p.pod_request_cpu_core_seconds) / 3600 AS pod_request_cpu_core_hours,
           sum(p.effective_cpu) / 3600 AS pod_effective_usage_cpu_core_hours,
           sum(p.pod_limit_cpu_core_seconds) / 3600 AS pod_limit_cpu_core_hours,
           sum(p.pod_usage_memory_byte_seconds) / 3600 * {GIB} AS pod_usage_memory_gigabyte_hours,
           sum(p.pod_request_memory_byte_seconds) / 3600 * {GIB} AS pod_request_memory_gigabyte_hours,
           sum(p.effective_memory) / 3600 * {GIB} AS pod_effective_usage_memory_gigabyte_hours,
           sum(p.pod_limit_memory_byte_seconds) / 3600 * {GIB} AS pod_limit_memory_gigabyte_hours,
           max(p.node_capacity_cpu_cores) AS node_capacity_cpu_cores,
           coalesce(max(nc.cpu_seconds), 0) / 3600 AS node_capacity_cpu_core_hours,
           max(p.node_capacity_memory_bytes) * {GIB} AS node_capacity_memory_gigabytes,
           coalesce(max(nc.memory_byte_seconds), 0) / 3600 * {GIB} AS node_capacity_memory_gigabyte_hours,
           coalesce(max(cc.cpu_seconds), 0) / 3600 AS cluster_capacity_cpu_core_hours,
           coalesce(max(cc.memory_byte_seconds), 0) / 3600 * {GIB} AS cluster_capacity_memory_gigabyte_hours
    FROM pods p
    LEFT JOIN node_capacity nc ON nc.day = p.day AND nc.node = p.node
    LEFT JOIN cluster_capacity cc ON cc.day = p.day
    GROUP BY p.day, p.namespace, p.node, p.merged_labels
)"""

_STORAGE_ROWS = f"""
volume_nodes AS (  -- 3.6: the nodes the claim's pod ran on that day
    SELECT DISTINCT s.day, s.persistentvolumeclaim, s.persistentvolume, s.pod, s.namespace, p.node, p.resource_id
    FROM storage_daily s JOIN pod_daily p ON p.namespace = s.namespace AND p.pod = s.pod AND p.day = s.day
),
volume_node_count AS (
    SELECT day, persistentvolume, count(DISTINCT node) AS node_count FROM volume_nodes GROUP BY day, persistentvolume
),
storage_rows AS (
    SELECT s.day, s.namespace, vn.node, vn.resource_id, s.persistentvolumeclaim, s.persistentvolume, s.storageclass,
           s.csi_volume_handle,
           label_text(map_concat(coalesce(nl.labels, MAP {{}}), coalesce(nsl.labels, MAP {{}}),
                                 enabled_labels(s.persistentvolume_labels, $keys),
                                 enabled_labels(s.persistentvolumeclaim_labels, $keys))) AS volume_labels,
           max(s.persistentvolumeclaim_capacity_bytes) * {GIB} AS persistentvolumeclaim_capacity_gigabyte,
           sum(s.persistentvolumeclaim_capacity_byte_seconds) / (86400 * day(last_day(s.day))) * {GIB}
               AS persistentvolumeclaim_capacity_gigabyte_months,
           sum(s.volume_request_storage_byte_seconds) / coalesce(max(vc.node_count), 1)
               / (86400 * day(last_day(s.day))) * {GIB} AS volume_request_storage_gigabyte_months,
           sum(s.persistentvolumeclaim_usage_byte_seconds) / coalesce(max(vc.node_count), 1)
               / (86400 * day(last_day(s.day))) * {GIB} AS persistentvolumeclaim_usage_gigabyte_months
    FROM storage_daily s
    LEFT JOIN volume_nodes vn ON vn.day = s.day AND vn.persistentvolumeclaim = s.persistentvolumeclaim
                             AND vn.pod = s.pod AND vn.namespace = s.namespace
    LEFT JOIN volume_node_count vc ON vc.day = s.day AND vc.persistentvolume = s.persistentvolume
    LEFT JOIN node_labels nl ON nl.day = s.day AND nl.node = vn.node
    LEFT JOIN namespace_labels nsl ON nsl.day = s.day AND nsl.namespace = s.namespace
    GROUP BY s.day, s.namespace, vn.node, vn.resource_id, s.persistentvolumeclaim, s.persistentvolume, s.storageclass,
             s.csi_volume_handle, 9
)"""

_UNALLOCATED_ROWS = f"""
node_label_flags AS (
    SELECT node, bool_or(contains(coalesce(node_labels, ''), '{INFRA_NODE_LABEL_TEXT}')) AS infra
    FROM read_parquet(@node_labels_daily@, union_by_name = true)
    WHERE interval_start >= $start AND interval_start < $stop
    GROUP BY node
),
node_roles AS (  -- 2.3: koku's reporting_ocp_nodes; a node without node-label rows has no role
    SELECT p.node, p.resource_id,
           coalesce(max(p.node_role), CASE WHEN bool_or(p.namespace = '{MASTER_NAMESPACE}') THEN 'master'
                                           WHEN bool_or(f.infra) THEN 'infra' ELSE 'worker' END) AS node_role
    FROM pod_daily p JOIN node_label_flags f ON f.node = p.node
    GROUP BY p.node, p.resource_id
),
unallocated_rows AS (  -- 3.7: node capacity minus the node's Pod rows, not clamped
    SELECT u.day, u.node, max(u.resource_id) AS resource_id,
           CASE max(r.node_role) WHEN 'master' THEN 'Platform unallocated' WHEN 'infra' THEN 'Platform unallocated'
                                 WHEN 'worker' THEN 'Worker unallocated' END AS namespace,
           max(u.node_capacity_cpu_core_hours) - sum(u.pod_usage_cpu_core_hours) AS pod_usage_cpu_core_hours,
           max(u.node_capacity_cpu_core_hours) - sum(u.pod_request_cpu_core_hours) AS pod_request_cpu_core_hours,
           max(u.node_capacity_cpu_core_hours) - sum(u.pod_effective_usage_cpu_core_hours)
               AS pod_effective_usage_cpu_core_hours,
           max(u.node_capacity_memory_gigabyte_hours) - sum(u.pod_usage_memory_gigabyte_hours)
               AS pod_usage_memory_gigabyte_hours,
           max(u.node_capacity_memory_gigabyte_hours) - sum(u.pod_request_memory_gigabyte_hours)
               AS pod_request_memory_gigabyte_hours,
           max(u.node_capacity_memory_gigabyte_hours) - sum(u.pod_effective_usage_memory_gigabyte_hours)
               AS pod_effective_usage_memory_gigabyte_hours,
           max(u.node_capacity_cpu_cores) AS node_capacity_cpu_cores,
           max(u.node_capacity_cpu_core_hours) AS node_capacity_cpu_core_hours,
           max(u.node_capacity_memory_gigabytes) AS node_capacity_memory_gigabytes,
           max(u.node_capacity_memory_gigabyte_hours) AS node_capacity_memory_gigabyte_hours,
           max(u.cluster_capacity_cpu_core_hours) AS cluster_capacity_cpu_core_hours,
           max(u.cluster_capacity_memory_gigabyte_hours) AS cluster_capacity_memory_gigabyte_hours
    FROM pod_rows u LEFT JOIN node_roles r ON r.node = u.node AND r.resource_id = u.resource_id
    WHERE u.namespace NOT IN {UNALLOCATED_NAMESPACES!r} AND u.node IS NOT NULL
    GROUP BY u.day, u.node
)"""

_POD_MEASURES = [
    c
    for c in OUTPUT_COLUMNS
    if c.startswith(("pod_usage", "pod_request", "pod_effective", "pod_limit", "node_", "cluster_capacity"))
]
_STORAGE_MEASURES = [c for c in OUTPUT_COLUMNS if c.startswith(("persistentvolumeclaim_", "volume_request"))]


def _select(part: str, data_source: str, **columns: str) -> str:
    """One part's rows in OUTPUT_COLUMNS order: its own columns, the run's constants, NULL for the rest."""
    constants = {
        "uuid": "uuid()",
        "report_period_id": "$report_period_id",
        "cluster_id": "$cluster_id",
        "cluster_alias": "$cluster_alias",
        "data_source": f"'{data_source}'",
        "usage_start": "day",
        "usage_end": "day",
        "source_uuid": "$source",
    }
    values = [columns.get(c) or constants.get(c) or "NULL" for c in OUTPUT_COLUMNS]
    return f"SELECT {', '.join(f'{v} AS {c}' for v, c in zip(values, OUTPUT_COLUMNS))} FROM {part}"


def _own(*names: str) -> dict[str, str]:
    return {n: n for n in names}


_COST = f"'{INFRASTRUCTURE_USAGE_COST}'"
_CATEGORY = "(SELECT cost_category_id FROM namespace_category c WHERE c.namespace = {}.namespace)"
SUMMARY_QUERY = (
    "WITH "
    + ",".join(
        [
            _inputs(),
            _entity_labels("node_labels", "node"),
            _entity_labels("namespace_labels", "namespace"),
            _POD_ROWS,
            _STORAGE_ROWS,
            _UNALLOCATED_ROWS,
        ]
    )
    + "\n"
    + "\nUNION ALL\n".join(
        [
            _select(
                "pod_rows",
                "Pod",
                **_own("namespace", "node", "resource_id", "pod_labels", *_POD_MEASURES),
                all_labels="pod_labels",
                infrastructure_usage_cost=_COST,
                cost_category_id=_CATEGORY.format("pod_rows"),
            ),
            _select(
                "storage_rows",
                "Storage",
                **_own("namespace", "node", "resource_id", "persistentvolumeclaim", "persistentvolume"),
                **_own("storageclass", "volume_labels", *_STORAGE_MEASURES),
                all_labels="volume_labels",
                infrastructure_usage_cost=_COST,
                cost_category_id=_CATEGORY.format("storage_rows"),
            ),
            _select(
                "unallocated_rows",
                "Pod",
                **_own("namespace", "node", "resource_id"),
                **{c: c for c in _POD_MEASURES if "limit" not in c},
                all_labels="'{}'",
                cost_category_id=_CATEGORY.format("unallocated_rows"),
            ),
        ]
    )
)


def month_globs(
    data_root: Path, account: str, source: str, report_type: str, start: dt.date, end: dt.date, daily: bool
) -> str:
    """The Parquet files of the months of [start, end] (koku's layout, contract 1.6), as DuckDB's file list."""
    base = data_root / "data" / "parquet" / ("daily" if daily else "") / account / "OCP" / report_type
    months = sorted({(d.year, d.month) for d in _days(start, end)})
    files = [
        str(f)
        for year, month in months
        for f in sorted((base / f"source={source}" / f"year={year:04d}" / f"month={month:02d}").glob("*.parquet"))
    ]
    return "[" + ", ".join("'" + f.replace("'", "''") + "'" for f in files) + "]"


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


def duckdb_summary(
    data_root: Path,
    *,
    account: str,
    source: str,
    cluster_id: str,
    start: dt.date,
    end: dt.date,
    enabled_keys: list[str],
    categories: list[tuple[str, int]],
    report_period_id: int,
    threads: int | None = None,
):
    """The summary rows of [start, end] as an Arrow table in OUTPUT_COLUMNS order (the query above)."""
    import duckdb

    conn = duckdb.connect()
    if threads:
        conn.execute(f"SET threads = {int(threads)}")
    conn.execute(MACROS)
    inputs = (("pod", "pod_usage"), ("node_labels", "node_labels"), ("namespace_labels", "namespace_labels"))
    files = {
        f"{kind}_{'daily' if daily else 'hourly'}": month_globs(data_root, account, source, type_, start, end, daily)
        for kind, type_ in inputs
        for daily in (True, False)
    }
    files["storage_daily"] = month_globs(data_root, account, source, "storage_usage", start, end, True)
    values = ", ".join(f"('{pattern.replace(chr(39), chr(39) * 2)}', {int(c)})" for pattern, c in categories)
    files["categories"] = values or "(NULL, NULL)"
    query = SUMMARY_QUERY
    for name, text in files.items():
        query = query.replace(f"@{name}@", text)
    parameters = {
        "start": dt.datetime.combine(start, dt.time()),
        "stop": dt.datetime.combine(end + dt.timedelta(days=1), dt.time()),
        "keys": ["vm_kubevirt_io_name", *sorted(set(enabled_keys))],  # D1: always allowed
        "report_period_id": report_period_id,
        "cluster_id": cluster_id,
        "cluster_alias": cluster_id,
        "source": source,
    }
    try:
        relation = conn.sql(query, params=parameters)
        return (getattr(relation, "to_arrow_table", None) or relation.arrow)()  # DuckDB 2 / 1.x
    finally:
        conn.close()


def copy_rows(conn, schema: str, source: str, start: dt.date, end: dt.date, rows) -> int:
    """Replace the source's rows of [start, end] in the tenant's summary table by `rows`, with COPY, and commit."""
    import pyarrow.csv as pacsv
    from psycopg import sql

    buffer = io.BytesIO()
    if rows.num_rows:
        pacsv.write_csv(rows, buffer, pacsv.WriteOptions(include_header=False, quoting_style="all_valid"))
    table = sql.SQL("{}.reporting_ocpusagelineitem_daily_summary").format(sql.Identifier(schema))
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "DELETE FROM {} WHERE source_uuid = %s AND usage_start BETWEEN %s AND %s"
                " AND (infrastructure_raw_cost IS NULL OR infrastructure_raw_cost = 0)"
            ).format(table),
            (source, start, end),
        )
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in OUTPUT_COLUMNS)
        with conn.cursor().copy(sql.SQL("COPY {} ({}) FROM STDIN (FORMAT csv)").format(table, columns)) as copy:
            copy.write(buffer.getvalue())
    return rows.num_rows


def summaries_differ(conn, schema_a: str, schema_b: str, source: str, start: dt.date, end: dt.date) -> list[str]:
    """Every difference between two schemas' summary rows of the source over [start, end] (the contract's D6: numbers
    within a relative 1e-9, labels as JSON; report_period_id and uuid left out), by the reference's comparison."""
    from ocp_assets_tests.reference.koku_sql import SUMMARY_COLUMNS, compare_summaries

    columns = [c for c in SUMMARY_COLUMNS if c != "report_period_id"]
    return compare_summaries(*(summary_frame(conn, s, columns, source, start, end) for s in (schema_a, schema_b)))


def summary_frame(conn, schema: str, columns: list[str], source: str, start: dt.date, end: dt.date):
    import pandas as pd
    from psycopg import sql

    rows = conn.execute(
        sql.SQL(
            "SELECT {} FROM {}.reporting_ocpusagelineitem_daily_summary"
            " WHERE source_uuid = %s AND usage_start BETWEEN %s AND %s"
        ).format(sql.SQL(", ").join(map(sql.Identifier, columns)), sql.Identifier(schema)),
        (source, start, end),
    ).fetchall()
    return pd.DataFrame.from_records(rows, columns=columns)


# ------------------------------------------------------------------ the peers' processes (benchmark.py starts them)
def _settings(conn, schema: str) -> tuple[list[str], list[tuple[str, int]]]:
    """The enabled OCP label keys and the cost category patterns of the tenant schema, as koku's SQL reads them."""
    from psycopg import sql

    keys = conn.execute(
        sql.SQL("SELECT key FROM {}.reporting_enabledtagkeys WHERE enabled AND provider_type = 'OCP'").format(
            sql.Identifier(schema)
        )
    ).fetchall()
    categories = conn.execute(
        sql.SQL("SELECT namespace, cost_category_id FROM {}.reporting_ocp_cost_category_namespace").format(
            sql.Identifier(schema)
        )
    ).fetchall()
    return [k for (k,) in keys], [(p, c) for p, c in categories]


def run_duckdb(args: argparse.Namespace, started: float) -> dict:
    """One DuckDB run: settings from the schema, the query over the range, the rows COPYed and committed."""
    import duckdb  # noqa: F401 (imported here so that its import is timed as the peer's)
    import psycopg
    import pyarrow  # noqa: F401

    imported = time.perf_counter()
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        keys, categories = _settings(conn, args.schema)
        rows = duckdb_summary(
            Path(args.data_root),
            account=args.account,
            source=args.source,
            cluster_id=args.cluster_id,
            start=args.start,
            end=args.end,
            enabled_keys=keys,
            categories=categories,
            report_period_id=args.report_period_id,
            threads=args.threads,
        )
        computed = time.perf_counter()
        copy_rows(conn, args.schema, args.source, args.start, args.end, rows)
        written = time.perf_counter()
    return {"imports": imported - started, "query": computed - imported, "write": written - computed,
            "rows": rows.num_rows}  # fmt: skip


def run_koku_sql(args: argparse.Namespace, started: float) -> dict:
    """One run of the project's SQL port of koku's PGSQL: line items loaded into PostgreSQL, then koku's SQL."""
    sys.path.insert(0, str(REPO))
    import psycopg

    from ocp_assets_tests.reference.koku_sql import reference_summary

    imported = time.perf_counter()
    with psycopg.connect(args.dsn, autocommit=True) as conn:
        keys, categories = _settings(conn, args.schema)
    frame = reference_summary(
        args.dsn,
        args.data_root,
        account=args.account,
        source=args.source,
        cluster_id=args.cluster_id,
        cluster_alias=args.cluster_id,
        start=args.start,
        end=args.end,
        enabled_keys=keys,
        cost_category_patterns=categories,
    )
    result = {"imports": imported - started, "load": frame.attrs["timings"]["load"],
              "sql": frame.attrs["timings"]["summary"], "rows": len(frame)}  # fmt: skip
    if args.compare_with:  # after the timings: the port's rows against ours in the schema named
        from ocp_assets_tests.reference.koku_sql import compare_summaries

        with psycopg.connect(args.dsn, autocommit=True) as conn:
            columns = [c for c in frame.columns if c != "report_period_id"]
            ours = summary_frame(conn, args.compare_with, columns, args.source, args.start, args.end)
        result["differences"] = compare_summaries(frame[columns], ours)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one run of a peer (started by scripts/benchmark.py)")
    parser.add_argument("peer", choices=("duckdb", "koku-sql"))
    parser.add_argument("--data-root", required=True)
    parser.add_argument("--dsn", required=True)
    parser.add_argument("--schema", required=True, help="the tenant schema the settings are read from (and, for "
                        "DuckDB, the rows written to)")  # fmt: skip
    parser.add_argument("--account", required=True)
    parser.add_argument("--source", required=True)
    parser.add_argument("--cluster-id", required=True)
    parser.add_argument("--start", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--end", type=dt.date.fromisoformat, required=True)
    parser.add_argument("--report-period-id", type=int)
    parser.add_argument("--threads", type=int, help="DuckDB's threads (default: DuckDB's, every core)")
    parser.add_argument("--compare-with", metavar="SCHEMA", help="koku-sql: compare its rows with this schema's")
    args = parser.parse_args(argv)
    result = (run_duckdb if args.peer == "duckdb" else run_koku_sql)(args, started)
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
