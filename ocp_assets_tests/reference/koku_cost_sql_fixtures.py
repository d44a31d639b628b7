"""Hand-made vm_usage Parquet (raw and daily, koku's layout and VM_AGG roll-up) and VM summary rows for cost tests."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ocp_assets.core.layout import VM, VM_USAGE, ReportType, daily_schema, month_prefix, raw_schema

GIB = 2**30


class VmParquet:
    """Collects hourly VM rows of one source and writes koku's raw and daily vm_usage files per month."""

    def __init__(self, data_root: str | Path, *, account: str, source: str):
        self.root, self.account, self.source = Path(data_root), account, source
        self.rows: list[dict] = []

    def hours(
        self,
        day: dt.date,
        hours,
        *,
        vm: str,
        namespace: str = "vms",
        node: str = "virt-0",
        cores=2.0,
        memory_gib=4.0,
        claim: str = "",
        seconds: float = 3600.0,
        resource_id: str | None = None,
    ) -> None:
        for hour in hours:
            start = dt.datetime.combine(day, dt.time(hour))
            self.rows.append(
                {
                    "report_period_start": dt.datetime(day.year, day.month, 1),
                    "report_period_end": dt.datetime(day.year + day.month // 12, day.month % 12 + 1, 1),
                    "interval_start": start,
                    "interval_end": start + dt.timedelta(seconds=3599),
                    "node": node,
                    "resource_id": resource_id or f"id-{node}",
                    "namespace": namespace,
                    "vm_name": vm,
                    "vm_uptime_total_seconds": seconds,
                    "vm_cpu_request_cores": cores,
                    "vm_cpu_request_core_seconds": cores * seconds,
                    "vm_memory_request_bytes": memory_gib * GIB,
                    "vm_memory_request_byte_seconds": memory_gib * GIB * seconds,
                    "vm_persistentvolumeclaim_name": claim,
                    "vm_labels": json.dumps({"vm_kubevirt_io_name": vm}),
                }
            )

    def write(self) -> None:
        schema = raw_schema(VM)
        table = pa.Table.from_pylist(
            [
                {name: row.get(name, "" if schema.field(name).type == pa.string() else None) for name in schema.names}
                for row in self.rows
            ],
            schema=schema,
        )
        months = sorted({(r["interval_start"].year, r["interval_start"].month) for r in self.rows})
        for year, month in months:
            in_month = table.filter(
                pc.and_(
                    pc.equal(pc.year(table["interval_start"]), year), pc.equal(pc.month(table["interval_start"]), month)
                )
            )
            self._write(month_prefix(self.account, VM_USAGE, self.source, year, month, daily=False), in_month)
            self._write(
                month_prefix(self.account, VM_USAGE, self.source, year, month, daily=True), koku_daily(in_month, VM)
            )

    def _write(self, prefix: str, table: pa.Table) -> None:
        folder = self.root / prefix
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, folder / "part-0.parquet")


def koku_daily(raw: pa.Table, report_type: ReportType) -> pa.Table:
    """koku's daily roll-up (1.5): per day and the type's group keys, its maxes and sums (MIG counts as double)."""
    day = pc.cast(pc.cast(pc.floor_temporal(raw["interval_start"], unit="day"), pa.date32()), pa.timestamp("ms"))
    keyed = raw.append_column("day", day)
    aggregations = [(c, "max") for c in report_type.daily_max] + [(c, "sum") for c in report_type.daily_sum]
    grouped = keyed.group_by([*report_type.daily_group_by, "day"], use_threads=False).aggregate(aggregations)
    schema = daily_schema(report_type)
    arrays = []
    for name in schema.names:
        if name == "interval_start":
            arrays.append(grouped["day"])
        elif name in report_type.daily_group_by:
            arrays.append(grouped[name])
        else:
            how = "max" if name in report_type.daily_max else "sum"
            arrays.append(pc.cast(grouped[f"{name}_{how}"], schema.field(name).type))
    return pa.Table.from_arrays(arrays, schema=schema)


def vm_summary_row(
    day: dt.date,
    *,
    vm: str,
    namespace: str = "vms",
    node: str = "virt-0",
    source: str,
    report_period_id: int = 1,
    labels: Mapping | None = None,
    cpu_request_hours: float = 48.0,
    memory_request_hours: float = 96.0,
    cluster_id: str = "cluster-a",
    **extra,
) -> dict:
    """One summary Pod row of a VM's launcher pod, as the daily summary leaves it."""
    pod_labels = {"vm_kubevirt_io_name": vm, **(labels or {})}
    row = {
        "report_period_id": report_period_id,
        "cluster_id": cluster_id,
        "cluster_alias": f"{cluster_id} alias",
        "data_source": "Pod",
        "usage_start": day,
        "usage_end": day,
        "namespace": namespace,
        "node": node,
        "resource_id": f"id-{node}",
        "pod_labels": json.dumps(pod_labels),
        "all_labels": json.dumps(pod_labels),
        "pod_usage_cpu_core_hours": 1.0,
        "pod_request_cpu_core_hours": cpu_request_hours,
        "pod_request_memory_gigabyte_hours": memory_request_hours,
        "source_uuid": source,
    }
    row.update(extra)
    return row
