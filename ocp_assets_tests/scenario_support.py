"""Validation-suite harness (koku's IQE equivalent): a nise YAML or hand-written CSV payload is ingested and
summarised into a real PostgreSQL schema, and the summary rows come back as plain dicts.

Expected values live in the tests, derived by hand from the contract (section 3, 5, 6); nothing here computes
an expected number. The helpers only run the pipeline, edit nise CSVs where nise cannot express a case
(contract 7: zero usage, ':' in label values, label sets changing within a day, files split mid-day) and
select rows.

nise payloads are cached by a hash of the YAML text, the cluster id and the nise version (ocp_assets'
generate cache) under pytest's cache directory, so nise runs once per scenario and re-runs are fast.
"""

from __future__ import annotations

import csv
import datetime as dt
import functools
import itertools
import os
import shutil
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from ocp_assets.core.generate import CACHE_ENV, generate, nise_payload
from ocp_assets.core.identity import ClusterDay
from ocp_assets.core.ingest import derive_source_uuid, ingest
from ocp_assets.core.pipeline import summarize_day
from ocp_assets.core.storage import open_data_root
from ocp_assets_tests.engine_support import enable_keys

SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
ACCOUNT = "org1234567"
SUMMARY = "reporting_ocpusagelineitem_daily_summary"

GIB = 2**30
HOUR = 3600
DAY_SECONDS = 86400
# The constant PGSQL writes on Pod and Storage rows (contract 3.5), as jsonb reads it back.
INFRASTRUCTURE_USAGE_COST = {"cpu": 0, "memory": 0, "storage": 0}
UNALLOCATED_NAMESPACES = ("Platform unallocated", "Worker unallocated")
# D6: numbers compare with a relative tolerance of 1e-9 (numeric(33,15) rounding).
REL = 1e-9


def approx(expected: float):
    """D6 comparison: relative 1e-9; an absolute floor so expected zeros compare too."""
    return pytest.approx(expected, rel=REL, abs=1e-12)


def nise_cache_dir(request: pytest.FixtureRequest) -> Path:
    """$OCP_ASSETS_CACHE if set, else a folder in pytest's cache: nise runs once per YAML, across sessions."""
    if os.environ.get(CACHE_ENV):
        return Path(os.environ[CACHE_ENV])
    return Path(request.config.cache.mkdir("ocp_assets_nise"))


# --- nise-format CSV payloads --------------------------------------------------------------------------

# nise's report types and their columns (contract 1.1), the first column telling a header apart.
NISE_COLUMNS = {
    "ocp_pod_usage": (
        "report_period_start", "report_period_end", "interval_start", "interval_end", "pod", "namespace", "node",
        "resource_id", "pod_usage_cpu_core_seconds", "pod_request_cpu_core_seconds", "pod_limit_cpu_core_seconds",
        "pod_usage_memory_byte_seconds", "pod_request_memory_byte_seconds", "pod_limit_memory_byte_seconds",
        "node_capacity_cpu_cores", "node_capacity_cpu_core_seconds", "node_capacity_memory_bytes",
        "node_capacity_memory_byte_seconds", "pod_labels",
    ),
    "ocp_storage_usage": (
        "report_period_start", "report_period_end", "interval_start", "interval_end", "namespace", "pod", "node",
        "persistentvolumeclaim", "persistentvolume", "storageclass", "csi_driver", "csi_volume_handle",
        "persistentvolumeclaim_capacity_bytes", "persistentvolumeclaim_capacity_byte_seconds",
        "volume_request_storage_byte_seconds", "persistentvolumeclaim_usage_byte_seconds",
        "persistentvolume_labels", "persistentvolumeclaim_labels",
    ),
    "ocp_node_label": (
        "report_period_start", "report_period_end", "interval_start", "interval_end", "node", "node_labels",
    ),
    "ocp_namespace_label": (
        "report_period_start", "report_period_end", "interval_start", "interval_end", "namespace", "namespace_labels",
    ),
}  # fmt: skip
SIGNATURE = {
    "pod_usage_cpu_core_seconds": "ocp_pod_usage",
    "persistentvolumeclaim_capacity_bytes": "ocp_storage_usage",
    "node_labels": "ocp_node_label",
    "namespace_labels": "ocp_namespace_label",
}


def koku_timestamp(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S +0000 UTC")


def parse_timestamp(text: str) -> dt.datetime:
    return dt.datetime.strptime(text, "%Y-%m-%d %H:%M:%S +0000 UTC")


def hours_of(day: dt.date, hours: Iterable[int] = range(24)) -> list[dt.datetime]:
    return [dt.datetime.combine(day, dt.time(hour)) for hour in hours]


def _number(value: float | None) -> str:
    # csv.DictWriter writes repr-like text as nise does; None is nise's empty field.
    return "" if value is None else repr(value)


@dataclass
class CsvPayload:
    """nise CSV rows (every value text) by nise report type; edited in Python, then written as bare CSVs."""

    rows: dict[str, list[dict[str, str]]] = field(default_factory=lambda: {t: [] for t in NISE_COLUMNS})

    @classmethod
    def from_nise_dir(cls, payload_dir: Path) -> CsvPayload:
        payload = cls()
        for path in sorted(payload_dir.rglob("*.csv")):
            with path.open(newline="", encoding="utf-8") as handle:
                reader = csv.DictReader(handle)
                kinds = [SIGNATURE[c] for c in reader.fieldnames or () if c in SIGNATURE]
                if not kinds:
                    continue  # VM and GPU files: out of scope (D8)
                payload.rows[kinds[0]].extend(reader)
        return payload

    # hand-made rows, nise's formulas (contract 1.1) -------------------------------------------------------
    @staticmethod
    def _common(hour: dt.datetime) -> dict[str, str]:
        month = hour.replace(day=1, hour=0)
        next_month = (month + dt.timedelta(days=32)).replace(day=1)
        return {
            "report_period_start": koku_timestamp(month),
            "report_period_end": koku_timestamp(next_month),
            "interval_start": koku_timestamp(hour),
            "interval_end": koku_timestamp(hour + dt.timedelta(minutes=59, seconds=59)),
        }

    def pod(
        self,
        hour: dt.datetime,
        *,
        pod: str,
        namespace: str,
        node: str,
        resource_id: str,
        cpu: tuple,
        mem_gib: tuple,
        node_cores: float,
        node_mem_gib: float,
        pod_seconds: float = HOUR,
        labels: str = "",
    ) -> None:
        """One hourly pod row; cpu and mem_gib are (usage, request, limit), a usage of None writes an empty field."""
        usage, request, limit = cpu
        mem_usage, mem_request, mem_limit = mem_gib
        self.rows["ocp_pod_usage"].append({
            **self._common(hour), "pod": pod, "namespace": namespace, "node": node, "resource_id": resource_id,
            "pod_usage_cpu_core_seconds": _number(None if usage is None else pod_seconds * usage),
            "pod_request_cpu_core_seconds": _number(pod_seconds * request),
            "pod_limit_cpu_core_seconds": _number(pod_seconds * limit),
            "pod_usage_memory_byte_seconds": _number(None if mem_usage is None else pod_seconds * mem_usage * GIB),
            "pod_request_memory_byte_seconds": _number(pod_seconds * mem_request * GIB),
            "pod_limit_memory_byte_seconds": _number(pod_seconds * mem_limit * GIB),
            "node_capacity_cpu_cores": _number(node_cores),
            "node_capacity_cpu_core_seconds": _number(node_cores * HOUR),
            "node_capacity_memory_bytes": _number(node_mem_gib * GIB),
            "node_capacity_memory_byte_seconds": _number(node_mem_gib * GIB * HOUR),
            "pod_labels": labels,
        })  # fmt: skip

    def storage(
        self,
        hour: dt.datetime,
        *,
        namespace: str,
        pod: str,
        pvc: str,
        pv: str,
        capacity_gib: float,
        request_gib: float | None,
        usage_gib: float | None,
        node: str = "",
        storageclass: str = "gp3",
        csi_driver: str = "ebs.csi.aws.com",
        csi_volume_handle: str = "",
        pv_labels: str = "",
        pvc_labels: str = "",
    ) -> None:
        self.rows["ocp_storage_usage"].append({
            **self._common(hour), "namespace": namespace, "pod": pod, "node": node, "persistentvolumeclaim": pvc,
            "persistentvolume": pv, "storageclass": storageclass, "csi_driver": csi_driver,
            "csi_volume_handle": csi_volume_handle,
            "persistentvolumeclaim_capacity_bytes": _number(capacity_gib * GIB),
            "persistentvolumeclaim_capacity_byte_seconds": _number(capacity_gib * GIB * HOUR),
            "volume_request_storage_byte_seconds": _number(None if request_gib is None else request_gib * GIB * HOUR),
            "persistentvolumeclaim_usage_byte_seconds": _number(None if usage_gib is None else usage_gib * GIB * HOUR),
            "persistentvolume_labels": pv_labels, "persistentvolumeclaim_labels": pvc_labels,
        })  # fmt: skip

    def node_label(self, hour: dt.datetime, node: str, labels: str) -> None:
        self.rows["ocp_node_label"].append({**self._common(hour), "node": node, "node_labels": labels})

    def namespace_label(self, hour: dt.datetime, namespace: str, labels: str) -> None:
        self.rows["ocp_namespace_label"].append(
            {**self._common(hour), "namespace": namespace, "namespace_labels": labels}
        )

    # editing ----------------------------------------------------------------------------------------------
    def edit(self, report_type: str, where: Callable[[dict], bool], **changes: str) -> int:
        """Set columns on every row matching `where`; returns how many rows changed (0 is an error)."""
        changed = 0
        for row in self.rows[report_type]:
            if where(row):
                row.update(changes)
                changed += 1
        assert changed, f"edit of {report_type} matched no row"
        return changed

    def drop(self, report_type: str, where: Callable[[dict], bool]) -> int:
        before = len(self.rows[report_type])
        self.rows[report_type] = [row for row in self.rows[report_type] if not where(row)]
        assert before > len(self.rows[report_type]), f"drop from {report_type} matched no row"
        return before - len(self.rows[report_type])

    def write(self, directory: Path, *, split_at: Sequence[dt.datetime] = ()) -> Path:
        """One CSV per report type, or one per interval between the `split_at` instants (files crossing days)."""
        directory.mkdir(parents=True, exist_ok=True)
        bounds = [dt.datetime.min, *sorted(split_at), dt.datetime.max]
        for report_type, rows in self.rows.items():
            for part, (low, high) in enumerate(itertools.pairwise(bounds)):
                chunk = [r for r in rows if low <= parse_timestamp(r["interval_start"]) < high]
                if not chunk:
                    continue
                with (directory / f"{report_type}-{part}.csv").open("w", newline="", encoding="utf-8") as handle:
                    writer = csv.DictWriter(handle, fieldnames=NISE_COLUMNS[report_type])
                    writer.writeheader()
                    writer.writerows(chunk)
        return directory


def nise_csvs(yaml_name: str, cluster_id: str, cache_dir: Path) -> CsvPayload:
    """The rows nise writes for a scenario YAML (cached payload)."""
    path = SCENARIO_DIR / yaml_name
    payload_dir, _ = nise_payload(path.read_text(encoding="utf-8"), cluster_id, cache_dir, yaml_name=str(path))
    return CsvPayload.from_nise_dir(payload_dir)


# --- running a scenario --------------------------------------------------------------------------------


def fetch_rows(conn: psycopg.Connection, schema: str, source: str) -> list[dict]:
    """Every summary row of the source, numerics as float, with the partition holding it; in a stable order."""
    query = sql.SQL(
        "SELECT s.*, s.tableoid::regclass::text AS partition_table FROM {}.{} s WHERE source_uuid = %s"
        " ORDER BY usage_start, data_source, namespace NULLS FIRST, node NULLS FIRST, persistentvolumeclaim "
        "NULLS FIRST,"
        " persistentvolume NULLS FIRST, pod_labels::text NULLS FIRST, volume_labels::text NULLS FIRST, resource_id"
    ).format(sql.Identifier(schema), sql.Identifier(SUMMARY))
    with conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        rows = cur.execute(query, (source,)).fetchall()
    return [{k: float(v) if isinstance(v, Decimal) else v for k, v in row.items()} for row in rows]


def is_unallocated(row: dict) -> bool:
    """3.7: the unallocated part writes data_source 'Pod' with a role namespace, or NULL without a role."""
    return row["data_source"] == "Pod" and (row["namespace"] in UNALLOCATED_NAMESPACES or row["namespace"] is None)


def _matches(row: dict, filters: dict) -> bool:
    return all(row[k] == v for k, v in filters.items())


@dataclass
class ScenarioRun:
    conn: psycopg.Connection
    schema: str
    source: str
    cluster_id: str
    cluster_alias: str
    data_root: Path
    days: list[dt.date]
    rows: list[dict]

    def summarize(self) -> list[dict]:
        """Materialise every day again and return the rows."""
        root = open_data_root(str(self.data_root))
        for day in self.days:
            summarize_day(self.conn, self.schema, root,
                          ClusterDay(ACCOUNT, self.source, self.cluster_id, self.cluster_alias, day))  # fmt: skip
        self.rows = fetch_rows(self.conn, self.schema, self.source)
        return self.rows

    def on(self, day: dt.date | None) -> list[dict]:
        return [r for r in self.rows if day is None or r["usage_start"] == day]

    def pods(self, day: dt.date | None = None, **filters) -> list[dict]:
        """Pod rows (not unallocated) matching the filters."""
        return [r for r in self.on(day) if r["data_source"] == "Pod" and not is_unallocated(r) and _matches(r, filters)]

    def storage(self, day: dt.date | None = None, **filters) -> list[dict]:
        return [r for r in self.on(day) if r["data_source"] == "Storage" and _matches(r, filters)]

    def unallocated(self, day: dt.date | None = None, **filters) -> list[dict]:
        return [r for r in self.on(day) if is_unallocated(r) and _matches(r, filters)]

    @staticmethod
    def one(rows: list[dict]) -> dict:
        assert len(rows) == 1, f"expected exactly one row, got {len(rows)}: {rows}"
        return rows[0]

    def pod(self, day: dt.date | None = None, **filters) -> dict:
        return self.one(self.pods(day, **filters))

    def volume(self, day: dt.date | None = None, **filters) -> dict:
        return self.one(self.storage(day, **filters))

    def unallocated_row(self, node: str, day: dt.date | None = None) -> dict:
        return self.one(self.unallocated(day, node=node))


def scenario_ids(name: str) -> tuple[str, str]:
    cluster_id = f"iqe-{name}"
    return cluster_id, derive_source_uuid(cluster_id)


def run_scenario(
    pg: tuple[psycopg.Connection, str],
    tmp_path: Path,
    cache_dir: Path,
    *,
    name: str,
    days: Sequence[dt.date],
    yamls: Sequence[str] = (),
    csv_payload: CsvPayload | None = None,
    split_at: Sequence[dt.datetime] = (),
    enabled_keys: Iterable[str] = (),
    before_summary: Callable[[psycopg.Connection, str], None] | None = None,
) -> ScenarioRun:
    """Ingest the scenario's payload (nise YAMLs through `generate`, or an edited/hand-made CSV payload), enable
    the label keys, summarise every day and return the rows."""
    conn, schema = pg
    cluster_id, source = scenario_ids(name)
    alias = f"IQE {name}"
    data_root = tmp_path / "data-root"
    root = open_data_root(str(data_root))
    for yaml_name in yamls:
        generate(root, yaml_path=SCENARIO_DIR / yaml_name, cluster_id=cluster_id, account=ACCOUNT,
                 source_uuid=source, cluster_alias=alias, cache_dir=cache_dir)  # fmt: skip
    if csv_payload is not None:
        payload_dir = csv_payload.write(tmp_path / f"payload-{uuid.uuid4().hex[:8]}", split_at=split_at)
        ingest(payload_dir, root, account=ACCOUNT, source_uuid=source, cluster_id=cluster_id, cluster_alias=alias)
        shutil.rmtree(payload_dir)
    enable_keys(conn, schema, list(enabled_keys))
    if before_summary is not None:
        before_summary(conn, schema)
    run = ScenarioRun(conn, schema, source, cluster_id, alias, data_root, list(days), [])
    run.summarize()
    return run


# --- koku settings in the tenant schema ---------------------------------------------------------------


def platform_category_id(conn: psycopg.Connection, schema: str) -> int:
    return conn.execute(
        sql.SQL("SELECT id FROM {}.reporting_ocp_cost_category WHERE name = 'Platform'").format(sql.Identifier(schema))
    ).fetchone()[0]


def add_cost_category(conn: psycopg.Connection, schema: str, name: str, patterns: Iterable[str]) -> int:
    ident = sql.Identifier(schema)
    category = conn.execute(
        sql.SQL(
            "INSERT INTO {}.reporting_ocp_cost_category (name, description, source_type, system_default)"
            " VALUES (%s, %s, 'OCP', false) RETURNING id"
        ).format(ident),
        (name, f"test category {name}"),
    ).fetchone()[0]
    for pattern in patterns:
        conn.execute(
            sql.SQL(
                "INSERT INTO {}.reporting_ocp_cost_category_namespace (namespace, system_default, cost_category_id)"
                " VALUES (%s, false, %s)"
            ).format(ident),
            (pattern, category),
        )
    return category


def node_roles(conn: psycopg.Connection, schema: str) -> dict[str, set[str | None]]:
    found: dict[str, set[str | None]] = {}
    for node, role in conn.execute(
        sql.SQL("SELECT node, node_role FROM {}.reporting_ocp_nodes").format(sql.Identifier(schema))
    ).fetchall():
        found.setdefault(node, set()).add(role)
    return found


def report_periods(conn: psycopg.Connection, schema: str) -> dict[int, tuple[dt.datetime, dt.datetime]]:
    rows = conn.execute(
        sql.SQL(
            "SELECT id, report_period_start AT TIME ZONE 'UTC', report_period_end AT TIME ZONE 'UTC'"
            " FROM {}.reporting_ocpusagereportperiod"
        ).format(sql.Identifier(schema))
    ).fetchall()
    return {r[0]: (r[1], r[2]) for r in rows}


@pytest.fixture(name="run")
def run_fixture(pg, tmp_path, request) -> Callable[..., ScenarioRun]:
    """`run(name=..., yamls=..., days=...)`: the scenario summarised into the test's fresh schema."""
    return functools.partial(run_scenario, pg, tmp_path, nise_cache_dir(request))
