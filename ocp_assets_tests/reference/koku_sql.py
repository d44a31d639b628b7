"""Independent reference of koku's OCP daily summary: a SQL port (PostgreSQL) of contract section 3, with D1/D2.

``reference_summary`` loads koku-layout Parquet (pod raw + daily, storage daily, node/namespace labels daily +
hourly) into a fresh scratch schema shaped like koku's self-hosted line-item tables (contract 1.7: the Parquet
columns plus ``usage_start``, ``source``, ``year``, ``month``), builds ``reporting_ocp_nodes`` the way koku does
before the summary (2.3), runs the summary SQL into a float8 staging table (POD UNION STORAGE, then
UNALLOCATED read back from the staging Pod rows), copies it into a koku-typed summary table (numeric(33,15),
jsonb, uuid) and returns the rows. The scratch schema is dropped afterwards.

This module shares no code with ``ocp_assets``: it is written from the contract only, so the two can
cross-check each other. Choices made where the contract is silent are marked ``[choice]`` below.

Semantics (contract section 0):

* D1 PGSQL: label maps never NULL (``{}``; NULL/blank label strings filter to ``{}``), ``vm_kubevirt_io_name``
  always allowed, node/cluster capacity ``COALESCE(..., 0)``, storage request/usage divided by
  ``coalesce(max(node_count), 1)``.
* D2(a): the cost category is pre-aggregated per namespace (max over matching LIKE patterns) and joined 1:1,
  so sums are not multiplied; unallocated rows get it after aggregation, also as a max, one row.
* D2(b): a (day, node) or (day, namespace) whose *filtered* label sets differ across the daily rows uses the
  filtered set of the latest ``interval_start`` of that day in the hourly label table. [choice] Several
  distinct sets at that hour: the greatest label text, the text being the filtered map with keys sorted by code
  point, ``", "``/``": "`` separators and non-ASCII unescaped (Python's ``json.dumps(sort_keys=True,
  ensure_ascii=False)``), compared by code point (``COLLATE "C"``), not ``jsonb::text`` (which orders keys by
  length first). [choice] No hourly row for that day: the greatest such text among the daily sets. A day with a
  single filtered set uses it as koku does.
* [choice] year/month of a line-item row come from its ``year=``/``month=`` folder (koku's partition values),
  and each month of [start, end] is summarised separately with that month's year/month filter, as koku's
  ``summarize_reports`` splits by month.
* Node roles: ``reporting_ocp_nodes`` is filled before each koku run from that run's range (``runs="month"``:
  one run per month part of the window; ``runs="day"``: one run per day, as a per-day materialiser) and
  accumulates across runs like koku's ``populate_node_table``: a row is inserted when (node, resource_id,
  capacity at 2 decimals, cluster) is new; an existing row whose role *or* architecture is empty gets both
  from the current run (koku's rule; the contract's "only when NULL" resolved this way), so a node without a
  ``kubernetes_io_arch`` label takes the latest run's role. architecture = lower(kubernetes_io_arch) of the
  greatest node_labels text. ``infra`` detection tests each node_labels row's text with LIKE.
* Tag mapping (contract 4.1 step 7): after the summary of each month part, koku's
  ``sql/openshift/ocp_tag_mapping_update_daily_summary.sql`` runs as koku writes it (``TAG_MAPPING_SQL``) over
  that part's dates and report period, with ``reporting_enabledtagkeys`` and ``reporting_tagmapping`` filled from
  ``enabled_keys``, ``tag_keys`` and ``tag_mappings``.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import math
import os
import re
import time
import uuid as uuidlib
from collections.abc import Mapping, Sequence
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
from psycopg import sql

from ocp_assets_tests import shared_postgres

PLATFORM_COST_CATEGORY_ID = 1
DEFAULT_COST_CATEGORY_PATTERNS: list[tuple[str, int]] = [
    ("openshift-%", PLATFORM_COST_CATEGORY_ID),
    ("kube-%", PLATFORM_COST_CATEGORY_ID),
    ("Platform unallocated", PLATFORM_COST_CATEGORY_ID),
    ("openshift", PLATFORM_COST_CATEGORY_ID),
]
INFRASTRUCTURE_USAGE_COST = '{"cpu": 0.000000000, "memory": 0.000000000, "storage": 0.000000000}'

# ------------------------------------------------------------------------------------------------ line-item tables
TS, F8, TXT = "timestamp", "double precision", "text"
_COMMON = [("report_period_start", TS), ("report_period_end", TS), ("interval_start", TS)]
_POD_METRICS = [
    (c, F8)
    for c in (
        "pod_usage_cpu_core_seconds",
        "pod_request_cpu_core_seconds",
        "pod_effective_usage_cpu_core_seconds",
        "pod_limit_cpu_core_seconds",
        "pod_usage_memory_byte_seconds",
        "pod_request_memory_byte_seconds",
        "pod_effective_usage_memory_byte_seconds",
        "pod_limit_memory_byte_seconds",
        "node_capacity_cpu_cores",
        "node_capacity_cpu_core_seconds",
        "node_capacity_memory_bytes",
        "node_capacity_memory_byte_seconds",
    )
]
_POD = [
    *_COMMON,
    ("namespace", TXT),
    ("node", TXT),
    ("pod", TXT),
    ("resource_id", TXT),
    ("pod_labels", TXT),
    ("node_role", TXT),
    *_POD_METRICS,
]
_STORAGE = (
    _COMMON
    + [
        (c, TXT)
        for c in (
            "namespace",
            "node",
            "pod",
            "persistentvolumeclaim",
            "persistentvolume",
            "storageclass",
            "csi_driver",
            "csi_volume_handle",
            "persistentvolume_labels",
            "persistentvolumeclaim_labels",
        )
    ]
    + [
        (c, F8)
        for c in (
            "persistentvolumeclaim_capacity_bytes",
            "persistentvolumeclaim_capacity_byte_seconds",
            "volume_request_storage_byte_seconds",
            "persistentvolumeclaim_usage_byte_seconds",
        )
    ]
)
_NODE_LABELS = [*_COMMON, ("node", TXT), ("node_labels", TXT)]
_NAMESPACE_LABELS = [*_COMMON, ("namespace", TXT), ("namespace_labels", TXT)]

# table name -> (report_type, daily?, columns taken from Parquet)
LINE_ITEM_TABLES: dict[str, tuple[str, bool, list[tuple[str, str]]]] = {
    "openshift_pod_usage_line_items": ("pod_usage", False, _POD),
    "openshift_pod_usage_line_items_daily": ("pod_usage", True, _POD),
    "openshift_storage_usage_line_items_daily": ("storage_usage", True, _STORAGE),
    "openshift_node_labels_line_items": ("node_labels", False, _NODE_LABELS),
    "openshift_node_labels_line_items_daily": ("node_labels", True, _NODE_LABELS),
    "openshift_namespace_labels_line_items": ("namespace_labels", False, _NAMESPACE_LABELS),
    "openshift_namespace_labels_line_items_daily": ("namespace_labels", True, _NAMESPACE_LABELS),
}
_EXTRA = [("usage_start", "date"), ("source", "varchar(64)"), ("year", "varchar(4)"), ("month", "varchar(2)")]

# ------------------------------------------------------------------------------------------------ summary columns
NUMERIC_COLUMNS = [
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
    "persistentvolumeclaim_capacity_gigabyte",
    "persistentvolumeclaim_capacity_gigabyte_months",
    "volume_request_storage_gigabyte_months",
    "persistentvolumeclaim_usage_gigabyte_months",
]
LABEL_COLUMNS = ["pod_labels", "volume_labels", "all_labels"]
# The summary table's columns the summary SQL fills (contract 2.1), in output order. uuid (random) is left out.
SUMMARY_COLUMNS = [
    "report_period_id",
    "cluster_id",
    "cluster_alias",
    "data_source",
    "usage_start",
    "usage_end",
    "namespace",
    "node",
    "resource_id",
    "pod_labels",
    *NUMERIC_COLUMNS[:14],
    "persistentvolumeclaim",
    "persistentvolume",
    "storageclass",
    "volume_labels",
    "all_labels",
    *NUMERIC_COLUMNS[14:],
    "infrastructure_usage_cost",
    "cost_category_id",
    "source_uuid",
]
KEY_COLUMNS = [
    "data_source",
    "usage_start",
    "namespace",
    "node",
    "resource_id",
    "persistentvolumeclaim",
    "persistentvolume",
    "storageclass",
    "pod_labels",
    "volume_labels",
]

_STAGING_DDL = """
CREATE TABLE reporting_ocpusagelineitem_daily_summary_staging (
    id serial,
    uuid varchar(64),
    report_period_id integer, cluster_id varchar(50), cluster_alias varchar(256), data_source varchar(64),
    usage_start date NOT NULL, usage_end date, namespace varchar(253), node varchar(253), resource_id varchar(253),
    pod_labels text,
    {measures},
    persistentvolumeclaim varchar(253), persistentvolume varchar(253), storageclass varchar(253),
    volume_labels text,
    infrastructure_usage_cost text, csi_volume_handle varchar(256), cost_category_id integer,
    source_uuid varchar(64), source varchar(64), year varchar(4), month varchar(2), day varchar(2)
)""".format(measures=",\n    ".join(f"{c} double precision" for c in NUMERIC_COLUMNS))

_SUMMARY_DDL = """
CREATE TABLE reporting_ocpusagelineitem_daily_summary (
    uuid uuid NOT NULL,
    report_period_id integer, cluster_id varchar(50), cluster_alias varchar(256), data_source varchar(64),
    usage_start date NOT NULL, usage_end date, namespace varchar(253), node varchar(253), resource_id varchar(253),
    pod_labels jsonb,
    {measures},
    persistentvolumeclaim varchar(253), persistentvolume varchar(253), storageclass varchar(253),
    volume_labels jsonb, all_labels jsonb, infrastructure_usage_cost jsonb, cost_category_id integer,
    source_uuid uuid,
    PRIMARY KEY (usage_start, uuid)
)""".format(measures=",\n    ".join(f"{c} numeric(33,15)" for c in NUMERIC_COLUMNS))

_AUX_DDL = [
    "CREATE TABLE reporting_enabledtagkeys (uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(), key varchar(512),"
    " enabled boolean NOT NULL DEFAULT true, provider_type varchar(50), UNIQUE (key, provider_type))",
    "CREATE TABLE reporting_tagmapping (id serial PRIMARY KEY,"
    " child_id uuid NOT NULL UNIQUE REFERENCES reporting_enabledtagkeys (uuid),"
    " parent_id uuid NOT NULL REFERENCES reporting_enabledtagkeys (uuid), UNIQUE (parent_id, child_id))",
    "CREATE TABLE reporting_ocp_cost_category_namespace (id serial PRIMARY KEY, namespace text UNIQUE,"
    " system_default boolean DEFAULT false, cost_category_id integer NOT NULL)",
    "CREATE TABLE reporting_ocp_nodes (uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(), node text,"
    " resource_id text, node_capacity_cpu_cores numeric(18,2), cluster_id text, node_role text,"
    " architecture text)",
    # The D2(b) tie-break text: keys sorted by code point, ", "/": " separators, non-ASCII unescaped (what
    # Python's json.dumps(sort_keys=True, ensure_ascii=False) gives); compared with COLLATE "C".
    """CREATE FUNCTION label_sort_text(j jsonb) RETURNS text LANGUAGE sql IMMUTABLE AS $f$
        SELECT '{' || COALESCE(string_agg(to_json(e.key)::text || ': ' || to_json(e.value)::text, ', '
                                          ORDER BY e.key COLLATE "C"), '') || '}'
        FROM jsonb_each_text(j) AS e
    $f$""",
    # koku's filter_json_by_keys: '{}' for NULL/blank input or when nothing matches; values as strings.
    """CREATE FUNCTION filter_json_by_keys(j text, keys text[]) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $f$
        SELECT CASE WHEN j IS NULL OR btrim(j) = '' THEN '{}'::jsonb
               ELSE COALESCE((SELECT jsonb_object_agg(e.key, e.value)
                              FROM jsonb_each_text(j::jsonb) AS e WHERE e.key = ANY(keys)), '{}'::jsonb) END
    $f$""",
]


# ------------------------------------------------------------------------------------------------ SQL
# Common line-item filter of one month window (3.1): source, year, month (zero-padded), usage_start range.
def _f(alias: str) -> str:
    return (
        f"{alias}.source = %(source)s AND {alias}.year = %(year)s AND {alias}.month = %(month)s"
        f" AND {alias}.usage_start >= %(start)s AND {alias}.usage_start <= %(end)s"
    )


_GIB = "power(2::float8, -30)"

# Node roles (2.3): per (node, resource_id) of pod_daily over the run's range; the node-label side filtered in
# WHERE, which makes the LEFT JOIN an inner join (a node without node-label rows gets no row). architecture is
# lower(kubernetes_io_arch) of the greatest node_labels text; it matters only through koku's update rule.
NODES_SQL = f"""
WITH q AS (
    SELECT li.node, li.resource_id, max(li.node_capacity_cpu_cores) AS node_capacity_cpu_cores,
           COALESCE(max(li.node_role),
                    CASE WHEN 'openshift-kube-apiserver' = ANY(array_agg(DISTINCT li.namespace)) THEN 'master'
                         WHEN bool_or(nl.node_labels LIKE '%%"node_role_kubernetes_io": "infra"%%') THEN 'infra'
                         ELSE 'worker' END) AS node_role,
           lower(max(nl.node_labels)::jsonb ->> 'kubernetes_io_arch') AS architecture
    FROM openshift_pod_usage_line_items_daily li
    LEFT JOIN openshift_node_labels_line_items_daily nl ON nl.node = li.node
    WHERE {_f("li")} AND {_f("nl")}
    GROUP BY li.node, li.resource_id
), same AS (
    SELECT n.uuid, q.node_role, q.architecture, (n.uuid IS NOT NULL) AS known, q.node, q.resource_id,
           q.node_capacity_cpu_cores
    FROM q LEFT JOIN reporting_ocp_nodes n
      ON n.node = q.node AND n.resource_id IS NOT DISTINCT FROM q.resource_id
     AND n.node_capacity_cpu_cores IS NOT DISTINCT FROM q.node_capacity_cpu_cores::numeric(18,2)
     AND n.cluster_id = %(cluster_id)s
), upd AS (  -- koku: an existing row missing its role OR its architecture gets both from this run
    UPDATE reporting_ocp_nodes n SET node_role = s.node_role, architecture = s.architecture
    FROM same s WHERE n.uuid = s.uuid AND (COALESCE(n.node_role, '') = '' OR COALESCE(n.architecture, '') = '')
)
INSERT INTO reporting_ocp_nodes (node, resource_id, node_capacity_cpu_cores, cluster_id, node_role, architecture)
SELECT DISTINCT node, resource_id, node_capacity_cpu_cores, %(cluster_id)s, node_role, architecture
FROM same WHERE NOT known
"""


def _labels_ctes(kind: str, key: str) -> str:
    """Daily filtered label sets per (day, key) with the D2(b) rule: one set per (day, key)."""
    return f"""
cte_{kind}_all AS (
    SELECT l.usage_start, l.{key}, filter_json_by_keys(l.{kind}, k.keys) AS labels
    FROM openshift_{kind}_line_items_daily l CROSS JOIN cte_keys k
    WHERE {_f("l")}
    GROUP BY 1, 2, 3
),
cte_{kind}_sets AS (
    SELECT DISTINCT ON (usage_start, {key}) usage_start, {key},
           count(*) OVER (PARTITION BY usage_start, {key}) AS n_sets, labels AS greatest_set
    FROM cte_{kind}_all
    ORDER BY usage_start, {key}, label_sort_text(labels) COLLATE "C" DESC
),
cte_{kind}_latest AS (
    SELECT DISTINCT ON (h.usage_start, h.{key}) h.usage_start, h.{key}, h.labels
    FROM (SELECT l.usage_start, l.{key}, l.interval_start, filter_json_by_keys(l.{kind}, k.keys) AS labels
          FROM openshift_{kind}_line_items l CROSS JOIN cte_keys k
          WHERE {_f("l")}) h
    ORDER BY h.usage_start, h.{key}, h.interval_start DESC, label_sort_text(h.labels) COLLATE "C" DESC
),
cte_{kind} AS (
    SELECT s.usage_start, s.{key},
           CASE WHEN s.n_sets = 1 THEN s.greatest_set ELSE COALESCE(h.labels, s.greatest_set) END AS labels
    FROM cte_{kind}_sets s
    LEFT JOIN cte_{kind}_latest h ON h.usage_start = s.usage_start AND h.{key} = s.{key}
)"""


SUMMARY_SQL = f"""
INSERT INTO reporting_ocpusagelineitem_daily_summary_staging (
    report_period_id, cluster_id, cluster_alias, data_source, usage_start, usage_end, namespace, node,
    resource_id, pod_labels, {", ".join(NUMERIC_COLUMNS)},
    persistentvolumeclaim, persistentvolume, storageclass, volume_labels, infrastructure_usage_cost,
    csi_volume_handle, cost_category_id, source_uuid, source, year, month, day)
WITH cte_keys AS (
    SELECT ARRAY['vm_kubevirt_io_name']::text[]
           || (SELECT array_agg(DISTINCT key::text ORDER BY key::text) FROM reporting_enabledtagkeys
               WHERE enabled AND provider_type = 'OCP') AS keys
),
{_labels_ctes("node_labels", "node")},
{_labels_ctes("namespace_labels", "namespace")},
cte_node_capacity AS (
    SELECT usage_start, node, sum(cpu_s) AS node_capacity_cpu_core_seconds,
           sum(mem_bs) AS node_capacity_memory_byte_seconds
    FROM (SELECT li.usage_start, li.interval_start, li.node, max(li.node_capacity_cpu_core_seconds) AS cpu_s,
                 max(li.node_capacity_memory_byte_seconds) AS mem_bs
          FROM openshift_pod_usage_line_items li
          WHERE {_f("li")}
          GROUP BY li.usage_start, li.interval_start, li.node) h
    GROUP BY usage_start, node
),
cte_cluster_capacity AS (
    SELECT usage_start, sum(node_capacity_cpu_core_seconds) AS cluster_capacity_cpu_core_seconds,
           sum(node_capacity_memory_byte_seconds) AS cluster_capacity_memory_byte_seconds
    FROM cte_node_capacity GROUP BY usage_start
),
cte_namespace_category AS (  -- D2(a): one category per namespace, max over the matching LIKE patterns
    SELECT n.namespace, max(c.cost_category_id) AS cost_category_id
    FROM (SELECT li.namespace FROM openshift_pod_usage_line_items_daily li WHERE {_f("li")}
          UNION SELECT sli.namespace FROM openshift_storage_usage_line_items_daily sli WHERE {_f("sli")}) n
    JOIN reporting_ocp_cost_category_namespace c ON n.namespace LIKE c.namespace
    GROUP BY n.namespace
),
cte_volume_nodes AS (
    SELECT DISTINCT sli.usage_start, sli.persistentvolumeclaim, sli.persistentvolume, sli.pod, sli.namespace,
           li.node, li.resource_id
    FROM openshift_storage_usage_line_items_daily sli
    JOIN openshift_pod_usage_line_items_daily li
      ON li.source = sli.source AND li.namespace = sli.namespace AND li.pod = sli.pod
     AND li.usage_start = sli.usage_start
    WHERE {_f("sli")} AND li.source = %(source)s AND li.year = %(year)s AND li.month = %(month)s
),
cte_shared_volume_node_count AS (
    SELECT usage_start, persistentvolume, count(DISTINCT node) AS node_count
    FROM cte_volume_nodes GROUP BY usage_start, persistentvolume
)
SELECT %(report_period_id)s::integer, %(cluster_id)s::text, %(cluster_alias)s::text,
       'Pod', li.usage_start, li.usage_start,
       li.namespace, li.node, max(li.resource_id),
       (COALESCE(nl.labels, '{{}}'::jsonb) || COALESCE(nsl.labels, '{{}}'::jsonb)
        || filter_json_by_keys(li.pod_labels, k.keys))::text AS pod_labels,
       sum(li.pod_usage_cpu_core_seconds) / 3600,
       sum(li.pod_request_cpu_core_seconds) / 3600,
       sum(COALESCE(li.pod_effective_usage_cpu_core_seconds,
                    greatest(li.pod_usage_cpu_core_seconds, li.pod_request_cpu_core_seconds))) / 3600,
       sum(li.pod_limit_cpu_core_seconds) / 3600,
       sum(li.pod_usage_memory_byte_seconds) / 3600 * {_GIB},
       sum(li.pod_request_memory_byte_seconds) / 3600 * {_GIB},
       sum(COALESCE(li.pod_effective_usage_memory_byte_seconds,
                    greatest(li.pod_usage_memory_byte_seconds, li.pod_request_memory_byte_seconds))) / 3600 * {_GIB},
       sum(li.pod_limit_memory_byte_seconds) / 3600 * {_GIB},
       max(li.node_capacity_cpu_cores),
       COALESCE(max(nc.node_capacity_cpu_core_seconds), 0) / 3600,
       max(li.node_capacity_memory_bytes) * {_GIB},
       COALESCE(max(nc.node_capacity_memory_byte_seconds), 0) / 3600 * {_GIB},
       COALESCE(max(cc.cluster_capacity_cpu_core_seconds), 0) / 3600,
       COALESCE(max(cc.cluster_capacity_memory_byte_seconds), 0) / 3600 * {_GIB},
       NULL::float8, NULL::float8, NULL::float8, NULL::float8,
       NULL::text, NULL::text, NULL::text, NULL::text,
       %(infrastructure_usage_cost)s::text, NULL::text, max(cat.cost_category_id),
       li.source, li.source, %(year)s::text, %(month)s::text, extract(day FROM li.usage_start)::int::text
FROM openshift_pod_usage_line_items_daily li
CROSS JOIN cte_keys k
LEFT JOIN cte_node_labels nl ON nl.usage_start = li.usage_start AND nl.node = li.node
LEFT JOIN cte_namespace_labels nsl ON nsl.usage_start = li.usage_start AND nsl.namespace = li.namespace
LEFT JOIN cte_node_capacity nc ON nc.usage_start = li.usage_start AND nc.node = li.node
LEFT JOIN cte_cluster_capacity cc ON cc.usage_start = li.usage_start
LEFT JOIN cte_namespace_category cat ON cat.namespace = li.namespace
WHERE {_f("li")} AND li.node != ''
GROUP BY li.usage_start, li.namespace, li.node, li.source, 10

UNION

SELECT %(report_period_id)s::integer, %(cluster_id)s::text, %(cluster_alias)s::text,
       'Storage', sli.usage_start, sli.usage_start,
       sli.namespace, vn.node, vn.resource_id, NULL::text,
       NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8,
       NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8, NULL::float8,
       max(sli.persistentvolumeclaim_capacity_bytes) * {_GIB},
       sum(sli.persistentvolumeclaim_capacity_byte_seconds)
           / (86400 * extract(day FROM date_trunc('month', sli.usage_start)
                                       + interval '1 month' - interval '1 day')::int)
           * {_GIB},
       sum(sli.volume_request_storage_byte_seconds) / COALESCE(max(vc.node_count), 1)
           / (86400 * extract(day FROM date_trunc('month', sli.usage_start)
                                       + interval '1 month' - interval '1 day')::int)
           * {_GIB},
       sum(sli.persistentvolumeclaim_usage_byte_seconds) / COALESCE(max(vc.node_count), 1)
           / (86400 * extract(day FROM date_trunc('month', sli.usage_start)
                                       + interval '1 month' - interval '1 day')::int)
           * {_GIB},
       sli.persistentvolumeclaim, sli.persistentvolume, sli.storageclass,
       (COALESCE(nl.labels, '{{}}'::jsonb) || COALESCE(nsl.labels, '{{}}'::jsonb)
        || filter_json_by_keys(sli.persistentvolume_labels, k.keys)
        || filter_json_by_keys(sli.persistentvolumeclaim_labels, k.keys))::text AS volume_labels,
       %(infrastructure_usage_cost)s::text, sli.csi_volume_handle, max(cat.cost_category_id),
       sli.source, sli.source, %(year)s::text, %(month)s::text, extract(day FROM sli.usage_start)::int::text
FROM openshift_storage_usage_line_items_daily sli
CROSS JOIN cte_keys k
LEFT JOIN cte_volume_nodes vn
  ON vn.usage_start = sli.usage_start AND vn.persistentvolumeclaim = sli.persistentvolumeclaim
 AND vn.pod = sli.pod AND vn.namespace = sli.namespace
LEFT JOIN cte_shared_volume_node_count vc
  ON vc.usage_start = sli.usage_start AND vc.persistentvolume = sli.persistentvolume
LEFT JOIN cte_node_labels nl ON nl.node = vn.node AND nl.usage_start = vn.usage_start
LEFT JOIN cte_namespace_labels nsl ON nsl.usage_start = sli.usage_start AND nsl.namespace = sli.namespace
LEFT JOIN cte_namespace_category cat ON cat.namespace = sli.namespace
WHERE {_f("sli")}
GROUP BY sli.namespace, vn.node, vn.resource_id, sli.persistentvolumeclaim, sli.persistentvolume,
         sli.storageclass, sli.csi_volume_handle, sli.usage_start, 32, sli.source
"""

_EXCLUDED_NAMESPACES = "('Platform unallocated', 'Worker unallocated', 'Network unattributed', 'Storage unattributed')"
UNALLOCATED_SQL = f"""
INSERT INTO reporting_ocpusagelineitem_daily_summary_staging (
    report_period_id, cluster_id, cluster_alias, data_source, usage_start, usage_end, namespace, node,
    resource_id, pod_usage_cpu_core_hours, pod_request_cpu_core_hours, pod_effective_usage_cpu_core_hours,
    pod_usage_memory_gigabyte_hours, pod_request_memory_gigabyte_hours, pod_effective_usage_memory_gigabyte_hours,
    node_capacity_cpu_cores, node_capacity_cpu_core_hours, node_capacity_memory_gigabytes,
    node_capacity_memory_gigabyte_hours, cluster_capacity_cpu_core_hours, cluster_capacity_memory_gigabyte_hours,
    cost_category_id, source_uuid, source, year, month, day)
WITH cte_node_role AS (
    SELECT node, resource_id, max(node_role) AS node_role FROM reporting_ocp_nodes GROUP BY node, resource_id
),
cte_unallocated AS (
    SELECT max(s.data_source) AS data_source, max(s.usage_start) AS usage_start, max(s.usage_end) AS usage_end,
           CASE max(nr.node_role) WHEN 'master' THEN 'Platform unallocated'
                                  WHEN 'infra' THEN 'Platform unallocated'
                                  WHEN 'worker' THEN 'Worker unallocated' END AS namespace,
           s.node, max(s.resource_id) AS resource_id,
           max(s.node_capacity_cpu_core_hours) - sum(s.pod_usage_cpu_core_hours) AS u_cpu,
           max(s.node_capacity_cpu_core_hours) - sum(s.pod_request_cpu_core_hours) AS r_cpu,
           max(s.node_capacity_cpu_core_hours) - sum(s.pod_effective_usage_cpu_core_hours) AS e_cpu,
           max(s.node_capacity_memory_gigabyte_hours) - sum(s.pod_usage_memory_gigabyte_hours) AS u_mem,
           max(s.node_capacity_memory_gigabyte_hours) - sum(s.pod_request_memory_gigabyte_hours) AS r_mem,
           max(s.node_capacity_memory_gigabyte_hours) - sum(s.pod_effective_usage_memory_gigabyte_hours) AS e_mem,
           max(s.node_capacity_cpu_cores) AS ncc, max(s.node_capacity_cpu_core_hours) AS ncch,
           max(s.node_capacity_memory_gigabytes) AS nmg, max(s.node_capacity_memory_gigabyte_hours) AS nmgh,
           max(s.cluster_capacity_cpu_core_hours) AS ccch, max(s.cluster_capacity_memory_gigabyte_hours) AS cmgh,
           s.source_uuid
    FROM reporting_ocpusagelineitem_daily_summary_staging s
    LEFT JOIN cte_node_role nr ON nr.node = s.node AND nr.resource_id = s.resource_id
    WHERE s.source = %(source)s AND s.year = %(year)s AND s.month = %(month)s
      AND s.usage_start >= %(start)s AND s.usage_start <= %(end)s
      AND s.namespace NOT IN {_EXCLUDED_NAMESPACES}
      AND s.node IS NOT NULL AND s.data_source = 'Pod'
    GROUP BY s.node, s.usage_start, s.source_uuid
)
SELECT %(report_period_id)s::integer, %(cluster_id)s::text, %(cluster_alias)s::text,
       u.data_source, u.usage_start, u.usage_end,
       u.namespace, u.node, u.resource_id, u.u_cpu, u.r_cpu, u.e_cpu, u.u_mem, u.r_mem, u.e_mem,
       u.ncc, u.ncch, u.nmg, u.nmgh, u.ccch, u.cmgh,
       (SELECT max(c.cost_category_id) FROM reporting_ocp_cost_category_namespace c
         WHERE u.namespace LIKE c.namespace),  -- D2(a): one row, max category
       u.source_uuid, %(source)s, %(year)s::text, %(month)s::text, extract(day FROM u.usage_start)::int::text
FROM cte_unallocated u
"""

FINAL_SQL = f"""
INSERT INTO reporting_ocpusagelineitem_daily_summary (
    uuid, report_period_id, cluster_id, cluster_alias, data_source, usage_start, usage_end, namespace, node,
    resource_id, pod_labels, {", ".join(NUMERIC_COLUMNS)}, persistentvolumeclaim, persistentvolume, storageclass,
    volume_labels, all_labels, infrastructure_usage_cost, cost_category_id, source_uuid)
SELECT gen_random_uuid(), report_period_id, cluster_id, cluster_alias, data_source, usage_start, usage_end,
       namespace, node, resource_id, pod_labels::jsonb,
       {", ".join(f"{c}::numeric(33,15)" for c in NUMERIC_COLUMNS)},
       persistentvolumeclaim, persistentvolume, storageclass, volume_labels::jsonb,
       COALESCE(pod_labels::jsonb, '{{}}'::jsonb) || COALESCE(volume_labels::jsonb, '{{}}'::jsonb),
       infrastructure_usage_cost::jsonb, cost_category_id, source_uuid::uuid
FROM reporting_ocpusagelineitem_daily_summary_staging
WHERE source = %(source)s AND year = %(year)s AND month = %(month)s
  AND usage_start >= %(start)s AND usage_start <= %(end)s
"""

# koku's ocp_tag_mapping_update_daily_summary.sql (koku 768be825), jinja parameters as psycopg ones:
# start_date/end_date -> start/end, report_period_ids -> an array (koku always passes the month's period).
TAG_MAPPING_SQL = """
WITH cte_tag_key_mapping AS (
    SELECT DISTINCT
        enabledtagkeys.key as child_key,
        parent_tags.key as parent_key
    FROM
        reporting_enabledtagkeys AS enabledtagkeys
        INNER JOIN reporting_tagmapping AS tag_mapping ON enabledtagkeys.uuid = tag_mapping.child_id
        INNER JOIN reporting_enabledtagkeys AS parent_tags ON tag_mapping.parent_id = parent_tags.uuid
    WHERE
        enabledtagkeys.enabled
        AND enabledtagkeys.provider_type = 'OCP'
),
cte_labels_to_update as (
    SELECT
        lids.uuid as uuid,
        'pod_labels' AS label_type,
        lids.pod_labels AS labels,
        EXISTS(
            SELECT 1 FROM cte_tag_key_mapping
            WHERE lids.pod_labels ? child_key
            AND lids.pod_labels ? parent_key
        ) as parent_and_child_present
    FROM
        reporting_ocpusagelineitem_daily_summary AS lids
    WHERE lids.usage_start >= DATE(%(start)s)
        AND lids.usage_start <= DATE(%(end)s)
        AND lids.pod_labels IS NOT NULL
        AND lids.pod_labels != '{}'::jsonb
        AND lids.pod_labels ?| ARRAY(SELECT child_key FROM cte_tag_key_mapping)
        AND lids.report_period_id = ANY(%(report_period_ids)s)
    UNION ALL
    SELECT
        lids.uuid as uuid,
        'volume_labels' AS label_type,
        lids.volume_labels AS labels,
        EXISTS(
            SELECT 1 FROM cte_tag_key_mapping
            WHERE lids.volume_labels ? child_key
            AND lids.volume_labels ? parent_key
        ) as parent_and_child_present
    FROM
        reporting_ocpusagelineitem_daily_summary AS lids
    WHERE lids.usage_start >= DATE(%(start)s)
        AND lids.usage_start <= DATE(%(end)s)
        AND lids.volume_labels IS NOT NULL
        AND lids.volume_labels != '{}'::jsonb
        AND lids.volume_labels ?| ARRAY(SELECT child_key FROM cte_tag_key_mapping)
        AND lids.report_period_id = ANY(%(report_period_ids)s)
),
cte_update_labels as (
    SELECT
        uuid,
        label_type,
        CASE
            WHEN parent_and_child_present
            THEN
                (
                    SELECT jsonb_object_agg(
                        COALESCE(NULLIF(tag_map->>key, ''), key),
                        labels->key
                    )
                    FROM jsonb_object_keys(labels) AS key
                    WHERE key NOT IN (SELECT child_key FROM cte_tag_key_mapping)
                )
            ELSE
                (
                    SELECT jsonb_object_agg(
                        COALESCE(tag_map->>key, key),
                        labels->key
                    )
                    FROM jsonb_object_keys(labels) AS key
                )
        END as updated_labels
    FROM cte_labels_to_update
    CROSS JOIN (SELECT jsonb_object_agg(child_key, parent_key) AS tag_map FROM cte_tag_key_mapping) AS mapping
)
UPDATE reporting_ocpusagelineitem_daily_summary AS lids
SET
    pod_labels = CASE WHEN update_data.label_type = 'pod_labels' THEN update_data.updated_labels
                      ELSE lids.pod_labels END,
    volume_labels = CASE WHEN update_data.label_type = 'volume_labels' THEN update_data.updated_labels
                         ELSE lids.volume_labels END,
    all_labels = update_data.updated_labels
FROM cte_update_labels AS update_data
WHERE lids.uuid = update_data.uuid
AND lids.usage_start >= DATE(%(start)s)
AND lids.usage_start <= DATE(%(end)s)
"""

RESULT_SQL = f"""
SELECT {", ".join(SUMMARY_COLUMNS)} FROM reporting_ocpusagelineitem_daily_summary
ORDER BY usage_start, data_source, namespace NULLS FIRST, node NULLS FIRST, persistentvolumeclaim NULLS FIRST,
         persistentvolume NULLS FIRST, pod_labels::text NULLS FIRST, volume_labels::text NULLS FIRST, resource_id
"""


# ------------------------------------------------------------------------------------------------ loading
def _months(start: dt.date, end: dt.date) -> list[tuple[dt.date, dt.date]]:
    """[start, end] split into per-month (first, last) pairs."""
    out = []
    cur = start
    while cur <= end:
        nxt = dt.date(cur.year + (cur.month == 12), cur.month % 12 + 1, 1)
        last = min(end, nxt - dt.timedelta(days=1))
        out.append((cur, last))
        cur = nxt
    return out


def _month_folder(data_root: Path, account: str, report_type: str, source: str, day: dt.date, daily: bool) -> Path:
    kind = Path("data", "parquet", "daily") if daily else Path("data", "parquet")
    return (
        data_root
        / kind
        / account
        / "OCP"
        / report_type
        / f"source={source}"
        / f"year={day.year:04d}"
        / f"month={day.month:02d}"
    )


def _conform(table: pa.Table, columns: list[tuple[str, str]], start: dt.date, end: dt.date) -> pa.Table:
    """Select/cast the table's columns to the line-item shape, add usage_start, keep rows of [start, end]."""
    n = table.num_rows
    arrays, names = [], []
    for name, pgtype in columns:
        target = pa.timestamp("ms") if pgtype == TS else pa.float64() if pgtype == F8 else pa.string()
        if name in table.column_names:
            col = table.column(name)
            if pa.types.is_timestamp(col.type) and col.type.tz is not None:
                col = col.cast(pa.timestamp(col.type.unit))  # UTC wall clock
            if pa.types.is_dictionary(col.type):
                col = col.cast(col.type.value_type)
            col = col.cast(target)
        else:
            col = pa.nulls(n, target)
        arrays.append(col)
        names.append(name)
    out = pa.Table.from_arrays(arrays, names=names)
    usage_start = pc.cast(pc.floor_temporal(out.column("interval_start"), unit="day"), pa.date32())
    out = out.append_column("usage_start", usage_start)
    mask = pc.and_(
        pc.greater_equal(usage_start, pa.scalar(start, pa.date32())),
        pc.less_equal(usage_start, pa.scalar(end, pa.date32())),
    )
    return out.filter(mask)


def _load(
    conn: psycopg.Connection, data_root: Path, account: str, source: str, start: dt.date, end: dt.date
) -> dict[str, int]:
    """COPY the needed Parquet into the line-item tables; returns rows loaded per table."""
    counts = {}
    for table_name, (report_type, daily, columns) in LINE_ITEM_TABLES.items():
        col_names = [c for c, _ in columns] + [c for c, _ in _EXTRA]
        copy_sql = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv)").format(
            sql.Identifier(table_name), sql.SQL(", ").join(map(sql.Identifier, col_names))
        )
        total = 0
        with conn.cursor() as cur, cur.copy(copy_sql) as copy:
            for first, _last in _months(start, end):
                folder = _month_folder(data_root, account, report_type, source, first, daily)
                if not folder.is_dir():
                    continue
                for path in sorted(folder.glob("*.parquet")):
                    t = _conform(pq.read_table(path), columns, start, end)
                    if t.num_rows == 0:
                        continue
                    n = t.num_rows
                    t = (
                        t.append_column("source", pa.array([source] * n, pa.string()))
                        .append_column("year", pa.array([f"{first.year:04d}"] * n, pa.string()))
                        .append_column("month", pa.array([f"{first.month:02d}"] * n, pa.string()))
                    )
                    buf = io.BytesIO()
                    pacsv.write_csv(
                        t.select(col_names), buf, pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
                    )
                    copy.write(buf.getvalue())
                    total += n
        counts[table_name] = total
    return counts


def _create_schema(conn: psycopg.Connection) -> None:
    with conn.cursor() as cur:
        for table_name, (_rt, _daily, columns) in LINE_ITEM_TABLES.items():
            cols = ", ".join(f"{c} {t}" for c, t in columns + _EXTRA)
            cur.execute(f"CREATE TABLE {table_name} ({cols})")
        for ddl in _AUX_DDL:
            cur.execute(ddl)
        cur.execute(_STAGING_DDL)
        cur.execute(_SUMMARY_DDL)


# ------------------------------------------------------------------------------------------------ public API
def reference_summary(
    dsn: str | None,
    data_root: str | os.PathLike,
    *,
    account: str,
    source: str,
    cluster_id: str,
    cluster_alias: str,
    start: dt.date,
    end: dt.date,
    enabled_keys: Sequence[str],
    cost_category_patterns: Sequence[tuple[str, int]] | None = None,
    report_period_id: int | Mapping[dt.date, int] = 1,
    runs: str = "month",
    keep_schema: bool = False,
    tag_keys: Sequence[tuple[str, str, bool]] = (),
    tag_mappings: Sequence[tuple[tuple[str, str], tuple[str, str]]] = (),
) -> pd.DataFrame:
    """koku's daily summary rows for one source over [start, end] (inclusive), computed in PostgreSQL.

    ``dsn`` None means the tests' PostgreSQL (:func:`ocp_assets_tests.shared_postgres.session_dsn`).
    ``cost_category_patterns`` None means koku's seeded defaults (all -> ``PLATFORM_COST_CATEGORY_ID``); pass ``[]``
    for none. ``report_period_id`` is one id,
    or a mapping month-start date -> id for windows spanning months. ``keep_schema`` leaves the scratch schema
    (named in ``df.attrs['schema']``) for debugging.

    ``tag_keys`` are further ``reporting_enabledtagkeys`` rows as (key, provider_type, enabled): disabled OCP keys
    and other providers' keys. ``tag_mappings`` are ``reporting_tagmapping`` rows as ((child key, provider_type),
    (parent key, provider_type)), each key one of ``enabled_keys`` (OCP) or of ``tag_keys``.

    ``runs`` says how koku is driven, which matters only for node roles (``reporting_ocp_nodes`` is filled before
    each summary run from that run's date range and accumulates: a (node, resource_id, capacity) row is only
    inserted when new, and an existing row's role is only set when NULL):

    * ``"month"`` (default): one koku run per month part of [start, end], as ``summarize_reports`` does for a
      manifest spanning the window; a node's role is computed over that whole part.
    * ``"day"``: one koku run per day, in date order, with the node table accumulating across the days, as a
      per-(cluster, day) materialiser processing the days in order sees it.


    Returns one row per summary row with :data:`SUMMARY_COLUMNS`: labels and infrastructure_usage_cost as dicts
    (or None), numeric(33,15) measures as float (NaN for NULL), cost_category_id as nullable Int64,
    usage_start/usage_end as ``datetime.date``, source_uuid as str.
    """
    dsn = dsn or shared_postgres.session_dsn()
    if end < start:
        raise ValueError(f"end {end} is before start {start}")
    if runs not in ("month", "day"):
        raise ValueError(f"runs must be 'month' or 'day', not {runs!r}")
    patterns = DEFAULT_COST_CATEGORY_PATTERNS if cost_category_patterns is None else list(cost_category_patterns)
    schema = f"ocp_ref_{uuidlib.uuid4().hex[:16]}"
    data_root = Path(data_root)
    timings: dict[str, float] = {}
    t0 = time.perf_counter()
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(schema)))
        try:
            conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(schema)))
            conn.execute("SET TimeZone TO 'UTC'")
            with conn.transaction():
                _create_schema(conn)
                with conn.cursor() as cur:
                    if enabled_keys:
                        cur.executemany(
                            "INSERT INTO reporting_enabledtagkeys (key, enabled, provider_type)"
                            " VALUES (%s, true, 'OCP')",
                            [(k,) for k in dict.fromkeys(enabled_keys)],
                        )
                    _insert_tag_mappings(cur, enabled_keys, tag_keys, tag_mappings)
                    if patterns:
                        cur.executemany(
                            "INSERT INTO reporting_ocp_cost_category_namespace"
                            " (namespace, system_default, cost_category_id) VALUES (%s, false, %s)",
                            [(p, c) for p, c in patterns],
                        )
                counts = _load(conn, data_root, account, source, start, end)
                for table_name in LINE_ITEM_TABLES:
                    conn.execute(f"ANALYZE {table_name}")
            timings["load"] = time.perf_counter() - t0
            windows = (
                _months(start, end)
                if runs == "month"
                else [(d, d) for d in (start + dt.timedelta(days=i) for i in range((end - start).days + 1))]
            )
            for first, last in windows:
                rp = (
                    report_period_id.get(first.replace(day=1))
                    if isinstance(report_period_id, Mapping)
                    else report_period_id
                )
                params = {
                    "source": source,
                    "year": f"{first.year:04d}",
                    "month": f"{first.month:02d}",
                    "start": first,
                    "end": last,
                    "cluster_id": cluster_id,
                    "cluster_alias": cluster_alias,
                    "report_period_id": rp,
                    "infrastructure_usage_cost": INFRASTRUCTURE_USAGE_COST,
                }
                with conn.transaction():
                    conn.execute(NODES_SQL, params)
                    conn.execute(SUMMARY_SQL, params)
                    conn.execute("ANALYZE reporting_ocpusagelineitem_daily_summary_staging")
                    conn.execute(UNALLOCATED_SQL, params)
                    conn.execute(FINAL_SQL, params)
            if tag_mappings:
                # koku maps after all windows of a month part, over that part and its report period (4.1 step 7).
                for first, last in _months(start, end):
                    rp = (
                        report_period_id.get(first.replace(day=1))
                        if isinstance(report_period_id, Mapping)
                        else report_period_id
                    )
                    conn.execute(TAG_MAPPING_SQL, {"start": first, "end": last, "report_period_ids": [rp]})
            timings["summary"] = time.perf_counter() - t0 - timings["load"]
            with conn.cursor() as cur:
                cur.execute(RESULT_SQL)
                rows = cur.fetchall()
        finally:
            if not keep_schema:
                conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))
    df = _to_frame(rows)
    df.attrs.update(schema=schema, loaded_rows=counts, timings=timings)
    return df


def _insert_tag_mappings(
    cur: psycopg.Cursor,
    enabled_keys: Sequence[str],
    tag_keys: Sequence[tuple[str, str, bool]],
    tag_mappings: Sequence[tuple[tuple[str, str], tuple[str, str]]],
) -> None:
    clash = {key for key, provider, enabled in tag_keys if provider == "OCP" and key in enabled_keys and not enabled}
    if clash:
        raise ValueError(f"keys both enabled and disabled: {sorted(clash)}")
    cur.executemany(
        "INSERT INTO reporting_enabledtagkeys (key, provider_type, enabled) VALUES (%s, %s, %s)"
        " ON CONFLICT (key, provider_type) DO NOTHING",
        list(tag_keys),
    )
    for (child, child_provider), (parent, parent_provider) in tag_mappings:
        cur.execute(
            "INSERT INTO reporting_tagmapping (child_id, parent_id)"
            " SELECT c.uuid, p.uuid FROM reporting_enabledtagkeys c, reporting_enabledtagkeys p"
            " WHERE c.key = %s AND c.provider_type = %s AND p.key = %s AND p.provider_type = %s",
            (child, child_provider, parent, parent_provider),
        )
        if cur.rowcount != 1:
            raise ValueError(f"tag mapping {child} -> {parent}: a key is not in enabled_keys or tag_keys")


def _to_frame(rows: list[tuple]) -> pd.DataFrame:
    df = pd.DataFrame.from_records(rows, columns=SUMMARY_COLUMNS)
    for c in NUMERIC_COLUMNS:
        df[c] = pd.array([np.nan if _is_null(v) else float(v) for v in df[c]], dtype="float64")
    for c in ("cost_category_id", "report_period_id"):
        df[c] = pd.array([None if _is_null(v) else int(v) for v in df[c]], dtype="Int64")
    df["source_uuid"] = [None if v is None else str(v) for v in df["source_uuid"]]
    return df


# ------------------------------------------------------------------------------------------------ comparison
def _is_null(v) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    if isinstance(v, float) and math.isnan(v):
        return True
    return bool(isinstance(v, np.floating) and np.isnan(v))


def _canon_json(v):
    """Dicts and JSON strings -> canonical JSON text (sorted keys, numbers as float)."""
    if _is_null(v):
        return None
    if isinstance(v, (str, bytes)):
        v = json.loads(v)

    def norm(x):
        if isinstance(x, Mapping):
            return {str(k): norm(val) for k, val in x.items()}
        if isinstance(x, (list, tuple)):
            return [norm(i) for i in x]
        if isinstance(x, bool) or x is None or isinstance(x, str):
            return x
        if isinstance(x, (int, float, Decimal, np.integer, np.floating)):
            return float(x)
        return x

    return json.dumps(norm(v), sort_keys=True, ensure_ascii=False)


_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}")


def _canon_date(v):
    if _is_null(v):
        return None
    if isinstance(v, (pd.Timestamp, dt.datetime)):
        return v.date().isoformat()
    if isinstance(v, dt.date):
        return v.isoformat()
    if isinstance(v, np.datetime64):
        return pd.Timestamp(v).date().isoformat()
    s = str(v)
    return s[:10] if _DATE_RE.match(s) else s


def _canon_value(column: str, v):
    if _is_null(v):
        return None
    if column in LABEL_COLUMNS or column == "infrastructure_usage_cost":
        return _canon_json(v)
    if column in ("usage_start", "usage_end"):
        return _canon_date(v)
    if column == "source_uuid":
        return str(v).lower()
    if isinstance(v, (Decimal, np.floating, float)):
        return float(v)
    if isinstance(v, (np.integer, int)) and not isinstance(v, bool):
        return int(v)
    return v if isinstance(v, str) else str(v)


def _values_equal(a, b, rel_tol: float) -> bool:
    if a is None or b is None:
        return a is None and b is None
    if isinstance(a, (int, float)) and isinstance(b, (int, float)) and not isinstance(a, bool):
        return math.isclose(a, b, rel_tol=rel_tol, abs_tol=1e-12)
    return a == b


def _records(df: pd.DataFrame, columns: list[str]) -> list[dict]:
    out = []
    for rec in df.to_dict("records"):
        out.append({c: _canon_value(c, rec.get(c)) for c in columns})
    return out


def _column_problems(exp_cols: list[str], act_cols: list[str]) -> list[str]:
    missing_keys = [
        f"key column {c!r} missing from {'expected' if c not in exp_cols else 'actual'}"
        for c in KEY_COLUMNS
        if c not in exp_cols or c not in act_cols
    ]
    if missing_keys:
        return missing_keys
    return [f"column {c!r} only in expected" for c in exp_cols if c not in act_cols] + [
        f"column {c!r} only in actual" for c in act_cols if c not in exp_cols
    ]


def _rows_by_key(df: pd.DataFrame, columns: list[str], value_columns: list[str]) -> dict[tuple, list[dict]]:
    """Rows grouped by KEY_COLUMNS, each group in a stable order of its values."""
    groups: dict[tuple, list[dict]] = {}
    for rec in _records(df, columns):
        groups.setdefault(tuple(rec[c] for c in KEY_COLUMNS), []).append(rec)
    for recs in groups.values():
        recs.sort(key=lambda r: json.dumps([r[c] for c in value_columns], default=str, sort_keys=True))
    return groups


def _key_text(key: tuple) -> str:
    return ", ".join(f"{c}={v!r}" for c, v in zip(KEY_COLUMNS, key) if v is not None)


def _key_order(key: tuple) -> tuple:
    return tuple("" if v is None else str(v) for v in key)


def _group_problems(key: tuple, e_rows: list[dict], a_rows: list[dict], value_columns: list[str], rel_tol: float):
    """The differences of the rows sharing one key: missing, extra, counts, then value by value."""
    if not a_rows:
        return [f"missing row ({len(e_rows)}x): {_key_text(key)}"]
    if not e_rows:
        return [f"extra row ({len(a_rows)}x): {_key_text(key)}"]
    problems = []
    if len(e_rows) != len(a_rows):
        problems.append(f"row count {len(a_rows)} != expected {len(e_rows)}: {_key_text(key)}")
    for e, a in zip(e_rows, a_rows):
        problems += [
            f"{c}: expected {e[c]!r}, actual {a[c]!r} at {_key_text(key)}"
            for c in value_columns
            if not _values_equal(e[c], a[c], rel_tol)
        ]
    return problems


def compare_summaries(expected: pd.DataFrame, actual: pd.DataFrame, rel_tol: float = 1e-9) -> list[str]:
    """Every difference between two summaries, as readable lines ([] when they match).

    Rows are matched on :data:`KEY_COLUMNS` (labels as canonical JSON). Compared columns are those both frames
    have (a column only one side has is reported once). NULL vs a value is a mismatch; numbers are equal within
    ``rel_tol`` (absolute 1e-12 near zero); JSON columns compare as canonical JSON; dates and UUIDs by text.
    Rows sharing a key are paired in a stable order and count differences are reported.
    """
    exp_cols, act_cols = list(expected.columns), list(actual.columns)
    problems = _column_problems(exp_cols, act_cols)
    if problems and problems[0].startswith("key column"):
        return problems
    columns = [c for c in exp_cols if c in act_cols]
    value_columns = [c for c in columns if c not in KEY_COLUMNS]
    exp, act = _rows_by_key(expected, columns, value_columns), _rows_by_key(actual, columns, value_columns)
    for key in sorted(set(exp) | set(act), key=_key_order):
        problems += _group_problems(key, exp.get(key, []), act.get(key, []), value_columns, rel_tol)
    return problems
