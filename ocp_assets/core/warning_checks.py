"""The warning tier of the validation suite: data that is legal but suspicious, as pure functions (no dagster).

A warning never stops a summary: the rows are written, koku accepts them, and the warning asks a person to look
(a node that reports more usage than capacity, a day with far fewer rows than the days before it: a lost upload,
a cluster half reporting). Each function returns a ``CheckOutcome`` whose ``passed`` is False when it warns, with
the rows behind the warning as a list of records (shown as a table). Which checks are warnings:
``outcomes.WARNING_CHECKS``.
"""

import datetime as dt
import statistics

import psycopg
import pyarrow as pa
from psycopg import sql

from ocp_assets.core.consistency import (
    UNALLOCATED_MEASURES,
    close,
    column_total,
    node_capacity_hours,
    pod_rows,
    unallocated_rows,
)
from ocp_assets.core.outcomes import CheckOutcome, percent
from ocp_assets.core.pgschema import SUMMARY_TABLE

# A day warns when it has fewer rows than this share of the median of its cluster's recent days.
THIN_DAY_SHARE = 0.5
RECENT_DAYS = 7  # the calendar days before the day that make its history (those with rows in PostgreSQL)
MAX_LISTED = 50
USAGE_MEASURES = (
    ("cpu", "pod_usage_cpu_core_hours", "core-hours"),
    ("memory", "pod_usage_memory_gigabyte_hours", "GiB-hours"),
)


def _over(usage: float, capacity: float) -> bool:
    return usage > capacity and not close(usage, capacity)


def usage_within_capacity(summary: pa.Table, node_capacity: pa.Table) -> CheckOutcome:
    """Pod usage (CPU and memory) of the cluster-day, and of each node, is at most its capacity.

    koku takes the figures as reported: a node whose pods used more than the node has means a wrong capacity or
    doubled usage in the operator's report. The cluster's utilisation is recorded either way.
    """
    capacity = node_capacity_hours(node_capacity)
    pods = pod_rows(summary)
    used: dict[str, list[float]] = {}
    for row in pods.select(["node", *(column for _, column, _ in USAGE_MEASURES)]).to_pylist():
        acc = used.setdefault(row["node"], [0.0, 0.0])
        for i, (_, column, _) in enumerate(USAGE_MEASURES):
            acc[i] += row[column] or 0.0
    over: list[dict] = []
    metadata: dict[str, object] = {"nodes": len(capacity)}
    for i, (measure, column, unit) in enumerate(USAGE_MEASURES):
        total, whole = column_total(pods[column]), sum(c[i] for c in capacity.values())
        metadata[f"cluster_{measure}"] = {
            "usage": total,
            "capacity": whole,
            "utilisation_percent": percent(total, whole),
        }
        if _over(total, whole):
            over.append(_over_row("cluster", None, measure, unit, total, whole))
        for node in sorted(used):
            node_capacity_of = capacity.get(node, (0.0, 0.0))[i]
            if _over(used[node][i], node_capacity_of):
                over.append(_over_row("node", node, measure, unit, used[node][i], node_capacity_of))
    if over:
        metadata["over_capacity"] = over[:MAX_LISTED]
        first = over[0]
        where = "the cluster" if first["scope"] == "cluster" else f"node {first['node']}"
        return CheckOutcome(
            False,
            f"{len(over)} usage figure(s) above capacity, e.g. {where}: {first['measure']} {first['usage']:,.2f} of "
            f"{first['capacity']:,.2f} {first['unit']}",
            metadata,
        )
    return CheckOutcome(
        True, f"CPU and memory usage within capacity on the cluster and its {len(used)} node(s)", metadata
    )


def _over_row(scope: str, node: str | None, measure: str, unit: str, usage: float, capacity: float) -> dict:
    return {
        "scope": scope,
        "node": node,
        "measure": measure,
        "unit": unit,
        "usage": usage,
        "capacity": capacity,
        "utilisation_percent": percent(usage, capacity),
    }


def unallocated_not_negative(summary: pa.Table) -> CheckOutcome:
    """No unallocated row is negative: its node's pods used (or requested) more than the node's capacity.

    The blocking check ``unallocated_is_capacity_minus_pods`` proves the figure is computed as koku does; a
    negative one is legal there (koku does not clamp it) but shows the report's capacity is too small.
    """
    rows = unallocated_rows(summary)
    measures = [column for column, _ in UNALLOCATED_MEASURES]
    negative = [
        {"node": row["node"], "namespace": row["namespace"], "measure": column, "value": row[column]}
        for row in rows.select(["node", "namespace", *measures]).to_pylist()
        for column in measures
        if (row[column] or 0.0) < 0 and not close(row[column], 0.0)
    ]
    metadata: dict[str, object] = {"unallocated_rows": rows.num_rows}
    if negative:
        nodes = sorted({r["node"] for r in negative})
        metadata.update({"negative_rows": len(nodes), "negative_values": negative[:MAX_LISTED]})
        first = negative[0]
        return CheckOutcome(
            False,
            f"{len(nodes)} of {rows.num_rows} unallocated row(s) negative, e.g. node {first['node']}: "
            f"{first['measure']} {first['value']:,.2f}",
            metadata,
        )
    return CheckOutcome(True, f"all {rows.num_rows} unallocated row(s) are zero or more", metadata)


def recent_day_rows(conn: psycopg.Connection, schema: str, source: str, day: dt.date) -> dict[dt.date, int]:
    """Summary rows per day that PostgreSQL holds for the source over the RECENT_DAYS days before `day`."""
    found = conn.execute(
        sql.SQL(
            "SELECT usage_start, count(*) FROM {}.{} WHERE source_uuid = %s AND usage_start >= %s AND usage_start < %s"
            " GROUP BY 1 ORDER BY 1"
        ).format(sql.Identifier(schema), sql.Identifier(SUMMARY_TABLE)),
        (source, day - dt.timedelta(days=RECENT_DAYS), day),
    ).fetchall()
    return dict(found)


def rows_like_recent_days(day: dt.date, rows: int, recent: dict[dt.date, int]) -> CheckOutcome:
    """The day has at least THIN_DAY_SHARE of the median row count of its cluster's recent days.

    The recent days are those of the RECENT_DAYS before it that have rows in PostgreSQL (a day without any, e.g.
    before the cluster reported, is no reference); without one the check passes, saying so. Days summarised
    later than this one, or at the same time, are not seen: a backfill judges each day by what is written.
    """
    history = {d: n for d, n in sorted(recent.items()) if d < day and n > 0}
    metadata: dict[str, object] = {"rows": rows, "recent_days": len(history)}
    if not history:
        return CheckOutcome(
            True, f"no earlier day of this cluster in PostgreSQL within {RECENT_DAYS} days to compare", metadata
        )
    median = statistics.median(history.values())
    threshold = THIN_DAY_SHARE * median
    metadata.update({"median_rows": median, "threshold_rows": threshold})
    compared = f"{rows:,} rows against a median of {median:,.1f} over the {len(history)} earlier day(s)"
    if rows < threshold:
        metadata["days"] = [{"day": str(d), "rows": n} for d, n in history.items()] + [
            {"day": f"{day} (this day)", "rows": rows}
        ]
        return CheckOutcome(False, f"far fewer rows than recent days: {compared} (< {THIN_DAY_SHARE:.0%})", metadata)
    return CheckOutcome(True, compared, metadata)
