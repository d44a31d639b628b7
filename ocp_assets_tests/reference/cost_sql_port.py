"""Independent reference of koku's on-prem cost-model files: a PostgreSQL port of contract section 8 (8.4-8.9).

``run_port(db, file, params)`` computes, on a :class:`~ocp_assets_tests.reference.koku_cost_sql.KokuCostDatabase`
(koku's line-item tables holding the loaded Parquet, its summary, cost-category and cost-model tables), the rows
one call of koku's file ``file`` inserts for koku's parameter dict ``params`` (8.3), inserts them where koku's file
does (the summary, or ``tmp_virt_<uuid>`` for the two VM tmp-table files) and returns them as dicts.

The SQL is written from the contract's text, not from koku's files, and shares no code with ``ocp_assets`` (it
reads neither ``ocp_assets.core.costs`` nor koku's templates): it is a second reading of the contract that both
can be checked against. Where the contract leaves ocp_assets a decision (C5: one GPU row per namespace with the
largest matching cost category; C6: the VM tmp table's row of a VM is the source's row with the largest CPU
request), the port follows the decision. Choices where the contract is silent are marked ``[choice]``:

* [choice] Text maxima (a VM's latest node and resource_id, combined label values, C6 tie-breaks) compare by code
  point (``COLLATE "C"``), whatever the database's collation.
* [choice] A label "has the key" (the tag filters) when ``->> key`` is not NULL: a key whose JSON value is null
  counts as absent.
* [choice] The GPU node labels are tested as JSON (``->> 'nvidia_com_gpu_present' = 'True'``), whatever the text's
  spacing; a label text that is blank counts as no labels.
* [choice] Rates are the parameter's decimal (a float's ``repr``, as koku's psycopg literal). The VM files round
  them to numeric(33,15) (8.4: "CAST(rate AS DECIMAL(33,15))"); the GPU file's rate is used as given (8.6 names no
  rounding).
* [choice] C6 ties beyond node and namespace: the larger memory request.
* [choice] A combined label (8.4 c, e) whose key has a JSON null value on some row and a string on another takes
  the string ("the greatest value as a string").
* ``use_fractional_hours`` must be true (8.1: on-prem always; the pod-row count is koku's SaaS fallback).
* The GPU distribution's calendar rules (8.8: not the current month, the previous month on day 2) are the caller's:
  like koku's file, the port distributes over the range it is given.

Where koku's own files read differently (test_cost_sql_port_vs_koku shows each): koku's GPU file rounds rates to
decimal(24,9) and finds GPU nodes with a LIKE on the label text; its hourly VM core tag file has no
``monthly_cost_type IS NULL`` filter; its combined labels take JSON null over a string (DESC puts NULLs first); it
copies each GPU row once per matching cost-category pattern (C5); it picks an arbitrary summary row, of any source,
for the VM tmp table without VM report (C6).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import psycopg
from psycopg import sql

from ocp_assets_tests.reference.koku_cost_sql import KokuCostDatabase


# ------------------------------------------------------------------------------------------------ parameters (8.3)
@dataclass(frozen=True)
class PortCall:
    """koku's parameter dict of one call, as the port binds it."""

    file: str
    start_date: dt.date
    end_date: dt.date
    year: str
    month: str
    source_uuid: str
    raw: Mapping[str, Any] = field(repr=False)

    def decimal(self, key: str) -> Decimal | None:
        """A rate parameter as the decimal koku's SQL receives (a float is sent as its repr)."""
        return _as_decimal(self.raw.get(key))

    def bind(self) -> dict[str, Any]:
        """The values every statement may bind (absent ones as NULL)."""
        value_rates = self.raw.get("value_rates") or {}
        return {
            "start_date": self.start_date,
            "end_date": self.end_date,
            "year": self.year,
            "month": self.month,
            "source_uuid": self.source_uuid,  # the line items' text column
            "source_id": uuid.UUID(self.source_uuid),  # the summary's uuid column
            "report_period_id": self.raw.get("report_period_id"),
            "rate_type": self.raw.get("rate_type"),
            "hourly_rate": self.decimal("hourly_rate"),
            "rate": self.decimal("rate"),
            "cost_type": self.raw.get("cost_type"),
            "tag_key": self.raw.get("tag_key"),
            # koku's templates test `default_rate is defined`; a None default is koku's "not defined".
            "has_default": self.raw.get("default_rate") is not None,
            "default_rate": self.decimal("default_rate"),
            "value_rates": json.dumps({str(k): str(_as_decimal(v)) for k, v in value_rates.items()}),
            "amortized_denominator": self.raw.get("amortized_denominator"),
            "cluster_id": self.raw.get("cluster_id"),
            "cluster_alias": self.raw.get("cluster_alias"),
            "cost_model_rate_type": self.raw.get("cost_model_rate_type"),
        }


def _as_decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    return Decimal(repr(value)) if isinstance(value, float) else Decimal(str(value))


def _as_date(value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    return dt.date.fromisoformat(str(value)[:10])


def port_call(file: str, params: Mapping[str, Any]) -> PortCall:
    """koku's parameter dict of `file` read for the port; a missing base parameter is a KeyError naming it."""
    for key in ("start_date", "end_date", "year", "month", "source_uuid"):
        if params.get(key) is None:
            raise KeyError(f"{file} needs parameter {key!r} (contract 8.3)")
    return PortCall(
        file=file,
        start_date=_as_date(params["start_date"]),
        end_date=_as_date(params["end_date"]),
        year=str(params["year"]),
        month=str(params["month"]),
        source_uuid=str(params["source_uuid"]),
        raw=dict(params),
    )


# ------------------------------------------------------------------------------------------------ shared SQL pieces
# The month's VM line items of the source (8.4: not limited to the range, not keyed by namespace).
VM_LINES = """
vm_lines AS (
    SELECT * FROM {s}.openshift_vm_usage_line_items
    WHERE source = %(source_uuid)s AND year = %(year)s AND month = %(month)s
)"""
# The summary's VM usage rows of the call's period (8.4), with the VM they belong to; `in_range` adds the range and
# leaves out accrued usage-cost rows.
VM_SUMMARY = """
vm_summary AS (
    SELECT lids.*, lids.pod_labels ->> 'vm_kubevirt_io_name' AS vm
    FROM {s}.reporting_ocpusagelineitem_daily_summary AS lids
    WHERE lids.report_period_id = %(report_period_id)s
      AND lids.data_source = 'Pod'
      AND lids.pod_usage_cpu_core_hours IS NOT NULL
      AND lids.pod_request_cpu_core_hours IS NOT NULL
      AND lids.monthly_cost_type IS NULL
      AND lids.pod_labels ->> 'vm_kubevirt_io_name' IS NOT NULL
),
in_range AS (
    SELECT * FROM vm_summary
    WHERE usage_start BETWEEN %(start_date)s::date AND %(end_date)s::date
      AND (cost_model_rate_type IS NULL OR cost_model_rate_type NOT IN ('Infrastructure', 'Supplementary'))
)"""
# Latest VM facts (8.4, files c-f): the VM's last hour of the month, its node and resource_id then (the largest of
# each when it has several rows at that hour) and the day of that hour.
LATEST_PLACE = """
last_hour AS (
    SELECT vm_name, max(interval_start) AS at_hour FROM vm_lines GROUP BY vm_name
),
latest_place AS (
    SELECT l.vm_name,
           max(l.node COLLATE "C") AS node,
           max(l.resource_id COLLATE "C") AS resource_id,
           max(l.interval_start)::date AS last_day
    FROM vm_lines AS l
    JOIN last_hour AS h ON h.vm_name = l.vm_name AND l.interval_start = h.at_hour
    GROUP BY l.vm_name
)"""
# Combined labels (8.4, files c and e): over the VM's usage rows of the day of its last hour (any day of the
# period), the union of pod_labels || all_labels, each key with its greatest value as text.
COMBINED_LABELS = """
last_day_pairs AS (
    SELECT p.vm_name, pair.key, pair.value
    FROM latest_place AS p
    JOIN vm_summary AS v ON v.vm = p.vm_name AND v.usage_start = p.last_day
    CROSS JOIN LATERAL jsonb_each_text(
        coalesce(v.pod_labels, jsonb_build_object()) || coalesce(v.all_labels, jsonb_build_object())
    ) AS pair
),
combined AS (
    SELECT vm_name, jsonb_object_agg(key, value) AS labels
    FROM (SELECT vm_name, key, max(value COLLATE "C") AS value FROM last_day_pairs GROUP BY vm_name, key) AS per_key
    GROUP BY vm_name
)"""
# A tag call's rates (8.2 step 3): value_rates as rows; `tag_rate` is the row's value rate, else the default.
TAG_RATES = """
tag_rates AS (
    SELECT key AS tag_value, CAST(value AS numeric) AS rate
    FROM jsonb_each_text(CAST(%(value_rates)s AS jsonb))
)"""
# The tag filter of 8.4 (b, d, f) on `labels`: with a default the key must be there, else a priced value.
TAG_FILTER = """
CASE WHEN %(has_default)s::boolean THEN {labels} ->> %(tag_key)s IS NOT NULL ELSE t.rate IS NOT NULL END"""
TAG_RATE = "coalesce(t.rate, CAST(%(default_rate)s AS numeric))"
# The columns a VM cost row copies from its summary rows (8.4 "Columns written").
VM_COPIED = "r.cluster_id, r.cluster_alias, r.data_source, r.usage_start, r.usage_end, r.namespace"
VM_GROUP = (
    "r.usage_start, r.usage_end, r.source_uuid, r.cluster_id, r.cluster_alias, r.namespace, r.data_source,"
    " r.cost_category_id"
)
VM_COST_COLUMNS = (
    "report_period_id, cluster_id, cluster_alias, data_source, usage_start, usage_end, namespace, node, resource_id,"
    " pod_labels, all_labels, source_uuid, cost_model_rate_type, cost_model_cpu_cost, monthly_cost_type,"
    " cost_category_id"
)


def _with(*pieces: str) -> str:
    return "WITH " + ",".join(pieces)


# ------------------------------------------------------------------------------------------------ a, b: hourly VM
# Hours of a VM-day: Σ vm_uptime_total_seconds / 3600 of its raw rows that day (all namespaces: 8.9.1).
VM_DAY_HOURS = """
vm_day_hours AS (
    SELECT vm_name, usage_start AS day, sum(vm_uptime_total_seconds) / 3600.0 AS hours
    FROM vm_lines GROUP BY vm_name, usage_start
)"""


def _hourly_vm(tagged: bool) -> str:
    """8.4 a/b: per summary group (node and both label maps) of a VM-day, max(hours) x the rate."""
    rows = "in_range"
    ctes = [VM_LINES, VM_SUMMARY, VM_DAY_HOURS]
    if tagged:
        ctes += [TAG_RATES, _tagged_rows("in_range")]
        rows = "tagged"
    rate = "max(r.tag_rate)" if tagged else "CAST(%(hourly_rate)s AS numeric(33,15))"
    monthly = "'Tag'" if tagged else "NULL"
    return (
        _with(*ctes)
        + f"""
SELECT %(report_period_id)s AS report_period_id, {VM_COPIED}, r.node,
       max(r.resource_id COLLATE "C") AS resource_id, r.pod_labels, r.all_labels, r.source_uuid,
       %(rate_type)s AS cost_model_rate_type,
       max(h.hours) * ({rate})::float8 AS cost_model_cpu_cost,
       {monthly} AS monthly_cost_type, r.cost_category_id
FROM {rows} AS r
JOIN vm_day_hours AS h ON h.vm_name = r.vm AND h.day = r.usage_start
GROUP BY {VM_GROUP}, r.node, r.pod_labels, r.all_labels"""
    )


def _tagged_rows(source: str) -> str:
    """The rows of `source` that pass the tag filter on their pod_labels, with their rate rounded as 8.4 casts it."""
    return f"""
tagged AS (
    SELECT r.*, CAST({TAG_RATE} AS numeric(33,15)) AS tag_rate
    FROM {source} AS r
    LEFT JOIN tag_rates AS t ON t.tag_value = r.pod_labels ->> %(tag_key)s
    WHERE {TAG_FILTER.format(labels="r.pod_labels")}
)"""


# ------------------------------------------------------------------------------------------------ c-f: VM cores
# Per VM-day (8.4 c/d): for each distinct core count, the seconds of the raw rows with it; then the largest of
# the seconds and the largest core count (8.9.3: they need not come from the same pair).
CORE_SECONDS = """
core_pairs AS (
    SELECT vm_name, usage_start AS day, vm_cpu_request_cores AS cores, sum(vm_uptime_total_seconds) AS seconds
    FROM vm_lines GROUP BY vm_name, usage_start, vm_cpu_request_cores
),
day_values AS (
    SELECT vm_name, day, max(seconds) AS seconds, max(cores) AS cores FROM core_pairs GROUP BY vm_name, day
)"""
# Per VM-day (8.4 e): the day's largest core count of the raw rows.
RAW_DAY_CORES = """
day_values AS (
    SELECT vm_name, usage_start AS day, max(vm_cpu_request_cores) AS cores FROM vm_lines GROUP BY vm_name, usage_start
)"""
# Per VM-day (8.4 f): the largest core count of the source's daily VM rows of the month.
DAILY_DAY_CORES = """
day_values AS (
    SELECT vm_name, usage_start AS day, max(vm_cpu_request_cores) AS cores
    FROM {s}.openshift_vm_usage_line_items_daily
    WHERE source = %(source_uuid)s AND year = %(year)s AND month = %(month)s
    GROUP BY vm_name, usage_start
)"""
CORE_COSTS = {
    "hourly_vm_core.sql": "max(v.seconds) / 3600.0 * max(v.cores) * CAST(%(hourly_rate)s AS numeric(33,15))::float8",
    "monthly_vm_core.sql": "max(v.cores) * CAST(%(rate)s AS numeric(33,15))::float8",
    "hourly_vm_core_tag_based.sql": "max(v.cores) * max(r.tag_rate)::float8 * (max(v.seconds) / 3600.0)",
    "monthly_vm_core_tag_based.sql": "max(v.cores) * max(r.tag_rate)::float8 / %(amortized_denominator)s::float8",
}


def _vm_core(file: str) -> str:
    """8.4 c/e (tiered: combined labels, inner joins) and d/f (tag: the rows' labels, latest facts optional)."""
    tagged = file.endswith("_tag_based.sql")
    values = {"monthly_vm_core.sql": RAW_DAY_CORES, "monthly_vm_core_tag_based.sql": DAILY_DAY_CORES}
    ctes = [VM_LINES, VM_SUMMARY, LATEST_PLACE, values.get(file, CORE_SECONDS)]
    if tagged:
        ctes += [TAG_RATES, _tagged_rows("in_range")]
        labels, rows, joins = "r.pod_labels, r.all_labels", "tagged", "LEFT JOIN latest_place AS p ON p.vm_name = r.vm"
        group, monthly = "r.pod_labels, r.all_labels", "'Tag'"
    else:
        ctes.append(COMBINED_LABELS)
        labels, rows, group = "c.labels AS pod_labels, c.labels AS all_labels", "in_range", "c.labels"
        joins = "JOIN latest_place AS p ON p.vm_name = r.vm JOIN combined AS c ON c.vm_name = r.vm"
        monthly = "%(cost_type)s" if file == "monthly_vm_core.sql" else "NULL"
    return (
        _with(*ctes)
        + f"""
SELECT %(report_period_id)s AS report_period_id, {VM_COPIED}, max(p.node) AS node,
       max(p.resource_id) AS resource_id, {labels}, r.source_uuid, %(rate_type)s AS cost_model_rate_type,
       {CORE_COSTS[file]} AS cost_model_cpu_cost, {monthly} AS monthly_cost_type, r.cost_category_id
FROM {rows} AS r
JOIN day_values AS v ON v.vm_name = r.vm AND v.day = r.usage_start
{joins}
GROUP BY {VM_GROUP}, {group}"""
    )


# ------------------------------------------------------------------------------------------------ 8.5 project
PROJECT = """
WITH
tag_rates AS (
    SELECT key AS tag_value, CAST(value AS numeric) AS rate
    FROM jsonb_each_text(CAST(%(value_rates)s AS jsonb))
),
labelled AS (
    SELECT namespace, usage_start AS day, CAST(nullif(btrim(namespace_labels), '') AS jsonb) AS labels
    FROM {s}.openshift_namespace_labels_line_items_daily
    WHERE source = %(source_uuid)s AND year = %(year)s AND month = %(month)s
      AND usage_start BETWEEN %(start_date)s::date AND %(end_date)s::date
      AND NOT starts_with(namespace, 'kube-')
      AND NOT starts_with(namespace, 'openshift-')
      AND namespace <> 'openshift'
),
-- One amount per (namespace, day, label JSON): the daily label rows are not unique (D3).
charged AS (
    SELECT DISTINCT l.namespace, l.day, l.labels,
           CAST(coalesce(t.rate, CAST(%(default_rate)s AS numeric)) AS numeric(33,15))
               / %(amortized_denominator)s::integer AS amount
    FROM labelled AS l
    LEFT JOIN tag_rates AS t ON t.tag_value = l.labels ->> %(tag_key)s
    WHERE CASE WHEN %(has_default)s::boolean THEN l.labels ->> %(tag_key)s IS NOT NULL ELSE t.rate IS NOT NULL END
),
-- C9: the namespace's nodes that day are those of its Pod and Storage usage rows in the summary (NULL included).
usage_nodes AS (
    SELECT DISTINCT namespace, usage_start AS day, node
    FROM {s}.reporting_ocpusagelineitem_daily_summary
    WHERE source_uuid = %(source_id)s
      AND data_source IN ('Pod', 'Storage')
      AND cost_model_rate_type IS NULL
      AND monthly_cost_type IS NULL
      AND usage_start BETWEEN %(start_date)s::date AND %(end_date)s::date
),
shares AS (
    SELECT c.namespace, c.day, c.labels, c.amount, u.node,
           count(u.node) OVER (PARTITION BY c.namespace, c.day) AS node_count
    FROM charged AS c
    LEFT JOIN usage_nodes AS u ON u.namespace = c.namespace AND u.day = c.day
)
SELECT %(report_period_id)s AS report_period_id, %(cluster_id)s AS cluster_id, %(cluster_alias)s AS cluster_alias,
       'Pod' AS data_source, day AS usage_start, day AS usage_end, namespace, node,
       labels AS pod_labels, labels AS all_labels, %(source_id)s AS source_uuid,
       'Tag' AS monthly_cost_type, %(rate_type)s AS cost_model_rate_type,
       -- 8.9.6: split by the non-NULL nodes counted over all the namespace's rows that day, the NULL-node row
       -- included in the payers; no node at all pays the whole amount.
       CASE WHEN node_count = 0 THEN amount ELSE amount / CAST(node_count AS numeric(33,15)) END
           AS cost_model_cpu_cost
FROM shares"""
PROJECT_COLUMNS = (
    "report_period_id, cluster_id, cluster_alias, data_source, usage_start, usage_end, namespace, node, pod_labels,"
    " all_labels, source_uuid, monthly_cost_type, cost_model_rate_type, cost_model_cpu_cost"
)


# ------------------------------------------------------------------------------------------------ 8.6 GPU
# The MIG share of a GPU row: slices / max slices when both are known and max > 0, else the whole GPU.
GPU_FRACTION = """
CASE WHEN g.mig_slice_count IS NOT NULL AND g.gpu_max_slices IS NOT NULL AND g.gpu_max_slices > 0
     THEN g.mig_slice_count::float8 / g.gpu_max_slices::float8 ELSE 1.0::float8 END"""
GPU_ALLOCATED = f"""
WITH
tag_rates AS (
    SELECT key AS tag_value, CAST(value AS numeric) AS rate
    FROM jsonb_each_text(CAST(%(value_rates)s AS jsonb))
)
SELECT %(report_period_id)s AS report_period_id, %(cluster_id)s AS cluster_id, %(cluster_alias)s AS cluster_alias,
       'GPU' AS data_source, g.usage_start, g.usage_start AS usage_end, g.namespace, g.node,
       g.gpu_uuid AS resource_id,
       jsonb_build_object(
           'gpu-model', g.gpu_model_name,
           'gpu-vendor', g.gpu_vendor_name,
           'gpu-memory-mib', g.gpu_memory_capacity_mib::text,
           'mig-profile', g.mig_profile,
           'mig-slice-count', g.mig_slice_count::text,
           'gpu-max-slices', g.gpu_max_slices::text,
           'mig-strategy', g.mig_strategy,
           'mig-memory-mib', g.mig_memory_capacity_mib::text,
           'gpu-mode', CASE WHEN coalesce(g.mig_profile, '') <> '' THEN 'MIG' ELSE 'dedicated' END,
           'gpu-uuid', g.gpu_uuid,
           'mig-instance-id', g.mig_instance_id
       ) AS all_labels,
       CAST(g.source AS uuid) AS source_uuid, %(rate_type)s AS cost_model_rate_type,
       -- 8.9.7: a model with no value rate and no default costs 0 on allocated rows.
       (coalesce(t.rate, CAST(%(default_rate)s AS numeric), 0) / %(amortized_denominator)s::integer)::float8
           * (g.gpu_pod_uptime / 86400.0::float8) * {GPU_FRACTION} AS cost_model_gpu_cost,
       'Tag' AS monthly_cost_type,
       -- C5: the largest cost category among the patterns the namespace matches, one row.
       (SELECT max(cc.cost_category_id) FROM {{s}}.reporting_ocp_cost_category_namespace AS cc
        WHERE g.namespace LIKE cc.namespace) AS cost_category_id
FROM {{s}}.openshift_gpu_usage_line_items_daily AS g
LEFT JOIN tag_rates AS t ON t.tag_value = g.gpu_model_name
WHERE g.source = %(source_uuid)s AND g.year = %(year)s AND g.month = %(month)s
  AND g.usage_start BETWEEN %(start_date)s::date AND %(end_date)s::date
  AND g.gpu_vendor_name = %(tag_key)s"""
GPU_ALLOCATED_COLUMNS = (
    "report_period_id, cluster_id, cluster_alias, data_source, usage_start, usage_end, namespace, node, resource_id,"
    " all_labels, source_uuid, cost_model_rate_type, cost_model_gpu_cost, monthly_cost_type, cost_category_id"
)
GPU_UNALLOCATED = """
WITH
tag_rates AS (
    SELECT key AS tag_value, CAST(value AS numeric) AS rate
    FROM jsonb_each_text(CAST(%(value_rates)s AS jsonb))
),
-- The vendor's GPU use per node, model and day: slice-hours used and the model's slices per GPU (NULL: no rows).
gpu_use AS (
    SELECT node, usage_start AS day, gpu_model_name,
           sum(gpu_pod_uptime * coalesce(mig_slice_count, 1)) / 3600.0 AS used,
           max(coalesce(gpu_max_slices, 1)) AS max_slices
    FROM {s}.openshift_gpu_usage_line_items_daily
    WHERE source = %(source_uuid)s AND year = %(year)s AND month = %(month)s
      AND usage_start BETWEEN %(start_date)s::date AND %(end_date)s::date
      AND gpu_vendor_name = %(tag_key)s
    GROUP BY node, usage_start, gpu_model_name
),
-- Hourly node label rows of GPU nodes, per node, day and label text: their count is the node's hours.
gpu_node_hours AS (
    SELECT node, usage_start AS day, labels_text, CAST(labels_text AS jsonb) AS labels, count(*) AS hours
    FROM (
        SELECT node, usage_start, nullif(btrim(node_labels), '') AS labels_text
        FROM {s}.openshift_node_labels_line_items
        WHERE source = %(source_uuid)s AND year = %(year)s AND month = %(month)s
          AND usage_start BETWEEN %(start_date)s::date AND %(end_date)s::date
    ) AS label_rows
    WHERE CAST(labels_text AS jsonb) ->> 'nvidia_com_gpu_present' = 'True'
    GROUP BY node, usage_start, labels_text
),
groups AS (
    SELECT n.node, n.day, n.hours, u.max_slices, coalesce(u.used, 0) AS used,
           regexp_replace(coalesce(u.gpu_model_name, n.labels ->> 'nvidia_com_gpu_product'), '[^a-zA-Z0-9]+', ' ', 'g')
               AS model,
           CAST(btrim(n.labels ->> 'nvidia_com_gpu_count') AS numeric) AS gpu_count,
           lower(btrim(n.labels ->> 'nvidia_com_mig_strategy')) AS strategy
    FROM gpu_node_hours AS n
    LEFT JOIN gpu_use AS u ON u.node = n.node AND u.day = n.day
),
-- Unused slice-hours by MIG strategy (8.6 step 5; 8.9.8: NULL max slices on an idle node under mixed/none).
unused AS (
    SELECT *,
           CASE WHEN strategy IS NULL OR strategy = 'mixed' THEN hours * gpu_count * max_slices - used
                WHEN strategy = 'single' THEN hours * gpu_count - used
                ELSE 0 END AS slice_hours
    FROM groups
)
SELECT %(report_period_id)s AS report_period_id, %(cluster_id)s AS cluster_id, %(cluster_alias)s AS cluster_alias,
       'GPU' AS data_source, d.day AS usage_start, d.day AS usage_end, 'GPU unallocated' AS namespace, d.node,
       jsonb_build_object('gpu-model', d.model, 'max-slices-per-gpu', d.max_slices::text) AS all_labels,
       %(source_id)s AS source_uuid, %(rate_type)s AS cost_model_rate_type,
       -- 8.9.7: no value rate and no default gives NULL here (the allocated rows get 0).
       (coalesce(t.rate, CAST(%(default_rate)s AS numeric)) / (%(amortized_denominator)s::integer * 24 * d.max_slices))
           ::float8 * d.slice_hours::float8 AS cost_model_gpu_cost,
       'Tag' AS monthly_cost_type
FROM unused AS d
LEFT JOIN tag_rates AS t ON t.tag_value = d.model
WHERE d.slice_hours > 0"""
GPU_UNALLOCATED_COLUMNS = (
    "report_period_id, cluster_id, cluster_alias, data_source, usage_start, usage_end, namespace, node, all_labels,"
    " source_uuid, cost_model_rate_type, cost_model_gpu_cost, monthly_cost_type"
)


# ------------------------------------------------------------------------------------------------ 8.8 distribution
GPU_DISTRIBUTION = """
WITH
unallocated AS (
    SELECT node, all_labels ->> 'gpu-model' AS model, usage_start AS day, cost_model_gpu_cost AS cost,
           report_period_id, cluster_id, cluster_alias
    FROM {s}.reporting_ocpusagelineitem_daily_summary
    WHERE namespace = 'GPU unallocated'
      AND source_uuid = %(source_id)s
      AND usage_start BETWEEN %(start_date)s::date AND %(end_date)s::date
),
namespace_use AS (
    SELECT node, gpu_model_name AS model, namespace, usage_start AS day,
           sum(gpu_pod_uptime * coalesce(mig_slice_count, 1)) AS slice_seconds
    FROM {s}.openshift_gpu_usage_line_items_daily
    WHERE source = %(source_uuid)s AND year = %(year)s AND month = %(month)s
      AND usage_start BETWEEN %(start_date)s::date AND %(end_date)s::date
    GROUP BY node, gpu_model_name, namespace, usage_start
),
shares AS (
    SELECT *, slice_seconds / nullif(sum(slice_seconds) OVER (PARTITION BY node, model, day), 0) AS share
    FROM namespace_use
)
-- 8.9.11: per namespace the largest share over the matching unallocated rows (both cost types, every model).
SELECT max(u.report_period_id) AS report_period_id, max(u.cluster_id) AS cluster_id,
       max(u.cluster_alias) AS cluster_alias, 'GPU' AS data_source, s.day AS usage_start, s.day AS usage_end,
       s.namespace, s.node, %(source_id)s AS source_uuid,
       %(cost_model_rate_type)s AS cost_model_rate_type, max(s.share * u.cost::float8) AS distributed_cost
FROM shares AS s
JOIN unallocated AS u ON u.node = s.node AND u.model = s.model AND u.day = s.day
GROUP BY s.day, s.node, s.namespace
UNION ALL
-- Each GPU unallocated row whose node, model and day had usage is taken back whole.
SELECT r.report_period_id, r.cluster_id, r.cluster_alias, 'GPU', r.usage_start, r.usage_start, r.namespace, r.node,
       %(source_id)s, %(cost_model_rate_type)s, 0 - r.cost_model_gpu_cost
FROM {s}.reporting_ocpusagelineitem_daily_summary AS r
WHERE r.namespace = 'GPU unallocated' AND r.data_source = 'GPU'
  AND r.source_uuid = %(source_id)s
  AND r.usage_start BETWEEN %(start_date)s::date AND %(end_date)s::date
  AND EXISTS (
      SELECT 1 FROM {s}.openshift_gpu_usage_line_items_daily AS g
      WHERE g.source = %(source_uuid)s AND g.node = r.node AND g.usage_start = r.usage_start
        AND g.gpu_model_name = r.all_labels ->> 'gpu-model'
  )"""
GPU_DISTRIBUTION_COLUMNS = (
    "report_period_id, cluster_id, cluster_alias, data_source, usage_start, usage_end, namespace, node, source_uuid,"
    " cost_model_rate_type, distributed_cost"
)


# ------------------------------------------------------------------------------------------------ 8.7 VM tmp table
TMP_WITH_REPORT = """
WITH
month_vm AS (
    SELECT * FROM {s}.openshift_vm_usage_line_items
    WHERE source = %(source_uuid)s AND year = %(year)s AND month = %(month)s
),
-- The VMs running in the month's single latest hour, per VM and node.
running AS (
    SELECT vm_name, node,
           max(vm_cpu_request_cores) * 24 AS cpu_request,
           max(vm_memory_request_bytes) / 1073741824.0::float8 * 24 AS mem_request
    FROM month_vm
    WHERE interval_start = (SELECT max(interval_start) FROM month_vm)
    GROUP BY vm_name, node
),
claims AS (
    SELECT DISTINCT vm_name, vm_persistentvolumeclaim_name AS pvc_name FROM month_vm
)
SELECT r.vm_name, r.node, c.pvc_name, r.cpu_request, r.mem_request
FROM running AS r
JOIN claims AS c ON c.vm_name = r.vm_name"""
TMP_WITHOUT_REPORT = """
WITH
source_days AS (
    SELECT DISTINCT usage_start AS day
    FROM {s}.reporting_ocpusagelineitem_daily_summary
    WHERE source_uuid = %(source_id)s
      AND usage_start BETWEEN %(start_date)s::date AND %(end_date)s::date
      AND pod_request_cpu_core_hours IS NOT NULL
),
-- The second-to-last of those days, or the only one.
chosen_day AS (
    SELECT min(day) AS day FROM (SELECT day FROM source_days ORDER BY day DESC LIMIT 2) AS last_two
),
-- C6: of a VM's rows that day (this source only), the largest CPU request; ties by node, namespace, memory.
ranked AS (
    SELECT lids.pod_labels ->> 'vm_kubevirt_io_name' AS vm_name, lids.node,
           lids.pod_request_cpu_core_hours AS cpu_request, lids.pod_request_memory_gigabyte_hours AS mem_request,
           row_number() OVER (
               PARTITION BY lids.pod_labels ->> 'vm_kubevirt_io_name'
               ORDER BY lids.pod_request_cpu_core_hours DESC, lids.node COLLATE "C" DESC NULLS LAST,
                        lids.namespace COLLATE "C" DESC NULLS LAST,
                        lids.pod_request_memory_gigabyte_hours DESC NULLS LAST
           ) AS place
    FROM {s}.reporting_ocpusagelineitem_daily_summary AS lids
    JOIN chosen_day AS d ON lids.usage_start = d.day
    WHERE lids.source_uuid = %(source_id)s
      AND lids.pod_request_cpu_core_hours IS NOT NULL
      AND lids.pod_labels ->> 'vm_kubevirt_io_name' IS NOT NULL
),
-- The claims of the VM's pods: storage daily rows whose pod is a pod-daily row labelled with the VM.
vm_pods AS (
    SELECT DISTINCT pod, CAST(nullif(btrim(pod_labels), '') AS jsonb) ->> 'vm_kubevirt_io_name' AS vm_name
    FROM {s}.openshift_pod_usage_line_items_daily
    WHERE source = %(source_uuid)s AND year = %(year)s AND month = %(month)s
),
vm_claims AS (
    SELECT DISTINCT p.vm_name, st.persistentvolumeclaim AS pvc_name
    FROM vm_pods AS p
    JOIN {s}.openshift_storage_usage_line_items_daily AS st ON st.pod = p.pod
    WHERE p.vm_name IS NOT NULL
      AND st.source = %(source_uuid)s AND st.year = %(year)s AND st.month = %(month)s
      AND coalesce(st.persistentvolumeclaim, '') <> ''
)
SELECT r.vm_name, r.node, c.pvc_name, r.cpu_request::float8, r.mem_request::float8
FROM ranked AS r
LEFT JOIN vm_claims AS c ON c.vm_name = r.vm_name
WHERE r.place = 1"""
TMP_COLUMNS = "vm_name, node, pvc_name, cpu_request, mem_request"


# ------------------------------------------------------------------------------------------------ running
# file -> its statements in koku's order: (SELECT of the rows, the summary columns it fills).
STATEMENTS: dict[str, list[tuple[str, str]]] = {
    "hourly_cost_virtual_machine.sql": [(_hourly_vm(tagged=False), VM_COST_COLUMNS)],
    "hourly_cost_vm_tag_based.sql": [(_hourly_vm(tagged=True), VM_COST_COLUMNS)],
    **{
        name: [(_vm_core(name), VM_COST_COLUMNS)]
        for name in (
            "hourly_vm_core.sql",
            "monthly_vm_core.sql",
            "hourly_vm_core_tag_based.sql",
            "monthly_vm_core_tag_based.sql",
        )
    },
    "monthly_cost_gpu.sql": [(GPU_ALLOCATED, GPU_ALLOCATED_COLUMNS), (GPU_UNALLOCATED, GPU_UNALLOCATED_COLUMNS)],
    "monthly_project_tag_based.sql": [(PROJECT, PROJECT_COLUMNS)],
    "distribute_unallocated_gpu_cost.sql": [(GPU_DISTRIBUTION, GPU_DISTRIBUTION_COLUMNS)],
}
TMP_STATEMENTS = {
    "populate_vm_tmp_table_with_vm_report.sql": TMP_WITH_REPORT,
    "populate_vm_tmp_table.sql": TMP_WITHOUT_REPORT,
}
FILES = (*STATEMENTS, *TMP_STATEMENTS)
# Parameters a file cannot do without, besides the base ones (8.3).
TAG_KEYS = ("report_period_id", "rate_type", "tag_key")
REQUIRED = {
    "hourly_cost_virtual_machine.sql": ("report_period_id", "rate_type", "hourly_rate", "use_fractional_hours"),
    "hourly_vm_core.sql": ("report_period_id", "rate_type", "hourly_rate"),
    "monthly_vm_core.sql": ("report_period_id", "rate_type", "rate", "cost_type"),
    "hourly_cost_vm_tag_based.sql": (*TAG_KEYS, "use_fractional_hours"),
    "hourly_vm_core_tag_based.sql": TAG_KEYS,
    "monthly_vm_core_tag_based.sql": (*TAG_KEYS, "amortized_denominator"),
    "monthly_cost_gpu.sql": (*TAG_KEYS, "amortized_denominator", "cluster_id"),
    "monthly_project_tag_based.sql": (*TAG_KEYS, "amortized_denominator", "cluster_id"),
    "distribute_unallocated_gpu_cost.sql": ("cost_model_rate_type",),
    "populate_vm_tmp_table_with_vm_report.sql": ("uuid",),
    "populate_vm_tmp_table.sql": ("uuid",),
}


def check_call(call: PortCall) -> None:
    """The file's own parameters are there; the calls the contract does not describe are refused."""
    missing = [key for key in REQUIRED[call.file] if call.raw.get(key) is None]
    if missing:
        raise KeyError(f"{call.file} needs parameter(s) {', '.join(missing)} (contract 8.3)")
    if "use_fractional_hours" in REQUIRED[call.file] and call.raw["use_fractional_hours"] is not True:
        raise ValueError("use_fractional_hours must be true: the pod-row hours are koku's SaaS fallback (8.1)")
    if "tag_key" in REQUIRED[call.file] and call.raw.get("default_rate") is None and not call.raw.get("value_rates"):
        raise ValueError(f"{call.file}: a tag call has a default_rate, value_rates or both (8.2 step 3)")


def run_port(db: KokuCostDatabase, file: str, params: Mapping) -> list[dict]:
    """The rows one call of koku's `file` inserts for koku's `params`, inserted where koku puts them and returned
    (summary rows with every column, or the tmp table's five columns). ``params['schema']`` is ignored: the port
    runs in `db`'s schema."""
    if file not in FILES:
        raise KeyError(f"unknown koku file {file!r}: one of {', '.join(FILES)}")
    call = port_call(file, params)
    check_call(call)
    schema = sql.Identifier(db.schema)
    if file in TMP_STATEMENTS:
        return _fill_tmp_table(db, schema, call)
    inserted: list[dict] = []
    for select, columns in STATEMENTS[file]:
        statement = sql.SQL(
            "INSERT INTO {s}.reporting_ocpusagelineitem_daily_summary (uuid, " + columns + ")\n"
            "SELECT gen_random_uuid(), " + columns + " FROM (" + select + "\n) AS port_rows\nRETURNING *"
        ).format(s=schema)
        inserted += _fetch(db, statement, call.bind())
    return inserted


def _fill_tmp_table(db: KokuCostDatabase, schema: sql.Identifier, call: PortCall) -> list[dict]:
    suffix = str(call.raw["uuid"])
    if not re.fullmatch(r"[A-Za-z0-9_]+", suffix):
        raise ValueError(f"uuid {suffix!r} is not a table-name suffix")
    table = sql.Identifier(f"tmp_virt_{suffix}")
    db.conn.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {s}.{t} (vm_name text, node text, pvc_name text, cpu_request float8,"
            " mem_request float8)"
        ).format(s=schema, t=table)
    )
    statement = sql.SQL(
        "INSERT INTO {s}.{t} (" + TMP_COLUMNS + ")\n" + TMP_STATEMENTS[call.file] + "\nRETURNING " + TMP_COLUMNS
    ).format(s=schema, t=table)
    return _fetch(db, statement, call.bind())


def _fetch(db: KokuCostDatabase, statement: sql.Composed, bound: dict) -> list[dict]:
    with db.conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(statement, bound)
        return cur.fetchall()
