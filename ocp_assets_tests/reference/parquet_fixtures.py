"""Hand-made koku-layout Parquet for tests (contract 1.4-1.6, D3).

A :class:`KokuParquetBuilder` collects hourly rows for one cluster (source) and writes them the way koku's
post-processor does: the raw hourly tables under ``data/parquet/...`` and the daily roll-ups (1.5) under
``data/parquet/daily/...``, one ``year=YYYY/month=MM`` folder per month, timestamps as naive
``timestamp[ms]``, metrics as double, everything else (label JSON included) as string, in koku's column order.

Example (the contract's section 6 worked example)::

    b = KokuParquetBuilder(tmp_path, account="org1234567", source=SOURCE)
    b.pod(DAY, pod="pod-1", namespace="app", node="worker-1", resource_id="i-i-worker001",
          pod_seconds=86400, cpu=(0.3, 0.5, 1.0), memory_gib=(0.8, 1, 2), node_cpu_cores=4, node_memory_gib=16)
    b.node_labels(DAY, node="worker-1", labels={})
    b.write()

Helpers take nise-like inputs (cores, GiB, pod_seconds applied to every hourly row, uncapped like nise) and
also raw per-hour values (``pod_hour``, ``storage_hour``, ``label_hour``) for anything unusual. Label maps are
dicts (serialised like koku: ``json.dumps``, ASCII-escaped, ``", "``/``": "`` separators) or pre-made strings.

``write(chunks=n)`` splits every report type's hourly rows into n contiguous chunks, each giving its own raw
and daily file, so the ``*_daily`` tables hold several rows per key, as koku's chunked processing does (1.3).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

GIB = 2**30
TS = pa.timestamp("ms")
COMMON = ["report_period_start", "report_period_end", "interval_start", "interval_end"]

POD_METRICS = [
    "pod_usage_cpu_core_seconds",
    "pod_request_cpu_core_seconds",
    "pod_limit_cpu_core_seconds",
    "pod_usage_memory_byte_seconds",
    "pod_request_memory_byte_seconds",
    "pod_limit_memory_byte_seconds",
    "node_capacity_cpu_cores",
    "node_capacity_cpu_core_seconds",
    "node_capacity_memory_bytes",
    "node_capacity_memory_byte_seconds",
]
POD_EFFECTIVE = ["pod_effective_usage_cpu_core_seconds", "pod_effective_usage_memory_byte_seconds"]
POD_RAW = [*COMMON, "pod", "namespace", "node", "resource_id", *POD_METRICS, "pod_labels", *POD_EFFECTIVE, "node_role"]
POD_DAILY_KEYS = ["namespace", "node", "pod", "pod_labels"]
POD_DAILY_SUMS = [
    "pod_usage_cpu_core_seconds",
    "pod_request_cpu_core_seconds",
    "pod_effective_usage_cpu_core_seconds",
    "pod_limit_cpu_core_seconds",
    "pod_usage_memory_byte_seconds",
    "pod_request_memory_byte_seconds",
    "pod_effective_usage_memory_byte_seconds",
    "pod_limit_memory_byte_seconds",
]
POD_DAILY = [
    *POD_DAILY_KEYS,
    "interval_start",
    "report_period_start",
    "report_period_end",
    "resource_id",
    *POD_DAILY_SUMS,
    "node_capacity_cpu_cores",
    "node_capacity_cpu_core_seconds",
    "node_capacity_memory_bytes",
    "node_capacity_memory_byte_seconds",
    "node_role",
]
POD_DAILY_AGG = {
    "report_period_start": "max",
    "report_period_end": "max",
    "resource_id": "max",
    **dict.fromkeys(POD_DAILY_SUMS, "sum"),
    "node_capacity_cpu_cores": "max",
    "node_capacity_cpu_core_seconds": "sum",
    "node_capacity_memory_bytes": "max",
    "node_capacity_memory_byte_seconds": "sum",
    "node_role": "max",
}

STORAGE_METRICS = [
    "persistentvolumeclaim_capacity_bytes",
    "persistentvolumeclaim_capacity_byte_seconds",
    "volume_request_storage_byte_seconds",
    "persistentvolumeclaim_usage_byte_seconds",
]
STORAGE_RAW = [
    *COMMON,
    "namespace",
    "pod",
    "node",
    "persistentvolumeclaim",
    "persistentvolume",
    "storageclass",
    "csi_driver",
    "csi_volume_handle",
    *STORAGE_METRICS,
    "persistentvolume_labels",
    "persistentvolumeclaim_labels",
]
STORAGE_DAILY_KEYS = [
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
]
STORAGE_DAILY = [*STORAGE_DAILY_KEYS, "interval_start", "report_period_start", "report_period_end", *STORAGE_METRICS]
STORAGE_DAILY_AGG = {
    "report_period_start": "max",
    "report_period_end": "max",
    "persistentvolumeclaim_capacity_bytes": "max",
    "persistentvolumeclaim_capacity_byte_seconds": "sum",
    "volume_request_storage_byte_seconds": "sum",
    "persistentvolumeclaim_usage_byte_seconds": "sum",
}

LABEL_TYPES = {"node_labels": "node", "namespace_labels": "namespace"}


def label_json(labels: Mapping[str, str] | str | None) -> str | None:
    """koku's label string: json.dumps of the dict (ASCII-escaped, default separators); strings pass through."""
    if labels is None or isinstance(labels, str):
        return labels
    return json.dumps({str(k): str(v) for k, v in labels.items()})


def _month_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year, day.month, 1)


def _next_month_start(day: dt.date) -> dt.datetime:
    return dt.datetime(day.year + (day.month == 12), day.month % 12 + 1, 1)


def _arrow_type(column: str, metrics: Iterable[str]) -> pa.DataType:
    if column in COMMON:
        return TS
    if column in metrics:
        return pa.float64()
    return pa.string()


class KokuParquetBuilder:
    """Collect hourly rows of one source and write koku-layout raw + daily Parquet under ``data_root``."""

    def __init__(self, data_root: str | Path, *, account: str = "org1234567", source: str):
        self.data_root = Path(data_root)
        self.account = account
        self.source = str(source)
        self.rows: dict[str, list[dict]] = {
            "pod_usage": [],
            "storage_usage": [],
            "node_labels": [],
            "namespace_labels": [],
        }

    # ---------------------------------------------------------------- low level: one hourly row
    @staticmethod
    def _common(hour: dt.datetime) -> dict:
        return {
            "report_period_start": _month_start(hour),
            "report_period_end": _next_month_start(hour),
            "interval_start": hour,
            "interval_end": hour + dt.timedelta(minutes=59, seconds=59),
        }

    def pod_hour(
        self,
        hour: dt.datetime,
        *,
        pod: str,
        namespace: str,
        node: str,
        resource_id: str,
        usage_cpu_s: float,
        request_cpu_s: float,
        limit_cpu_s: float,
        usage_mem_bs: float,
        request_mem_bs: float,
        limit_mem_bs: float,
        node_cpu_cores: float,
        node_memory_bytes: float,
        labels: Mapping[str, str] | str | None = None,
        effective: bool = True,
        node_role: str | None = None,
    ) -> None:
        """One raw pod row. Effective usage = max(usage, request) of this hourly row (1.3 step 4), or NULL."""
        self.rows["pod_usage"].append(
            {
                **self._common(hour),
                "pod": pod,
                "namespace": namespace,
                "node": node,
                "resource_id": resource_id,
                "pod_usage_cpu_core_seconds": usage_cpu_s,
                "pod_request_cpu_core_seconds": request_cpu_s,
                "pod_limit_cpu_core_seconds": limit_cpu_s,
                "pod_usage_memory_byte_seconds": usage_mem_bs,
                "pod_request_memory_byte_seconds": request_mem_bs,
                "pod_limit_memory_byte_seconds": limit_mem_bs,
                "node_capacity_cpu_cores": node_cpu_cores,
                "node_capacity_cpu_core_seconds": node_cpu_cores * 3600,
                "node_capacity_memory_bytes": node_memory_bytes,
                "node_capacity_memory_byte_seconds": node_memory_bytes * 3600,
                "pod_labels": label_json(labels if labels is not None else {}),
                "pod_effective_usage_cpu_core_seconds": max(usage_cpu_s, request_cpu_s) if effective else None,
                "pod_effective_usage_memory_byte_seconds": max(usage_mem_bs, request_mem_bs) if effective else None,
                "node_role": node_role,
            }
        )

    def storage_hour(
        self,
        hour: dt.datetime,
        *,
        namespace: str,
        pod: str,
        pvc: str,
        pv: str,
        storageclass: str = "gp3",
        node: str = "",
        capacity_bytes: float,
        capacity_byte_s: float,
        request_byte_s: float,
        usage_byte_s: float,
        pv_labels: Mapping[str, str] | str | None = None,
        pvc_labels: Mapping[str, str] | str | None = None,
        csi_driver: str = "",
        csi_volume_handle: str = "",
    ) -> None:
        self.rows["storage_usage"].append(
            {
                **self._common(hour),
                "namespace": namespace,
                "pod": pod,
                "node": node,
                "persistentvolumeclaim": pvc,
                "persistentvolume": pv,
                "storageclass": storageclass,
                "csi_driver": csi_driver,
                "csi_volume_handle": csi_volume_handle,
                "persistentvolumeclaim_capacity_bytes": capacity_bytes,
                "persistentvolumeclaim_capacity_byte_seconds": capacity_byte_s,
                "volume_request_storage_byte_seconds": request_byte_s,
                "persistentvolumeclaim_usage_byte_seconds": usage_byte_s,
                "persistentvolume_labels": label_json(pv_labels if pv_labels is not None else {}),
                "persistentvolumeclaim_labels": label_json(pvc_labels if pvc_labels is not None else {}),
            }
        )

    def label_hour(
        self, report_type: str, hour: dt.datetime, name: str, labels: Mapping[str, str] | str | None
    ) -> None:
        """One node_labels or namespace_labels row (``report_type`` is 'node_labels' or 'namespace_labels')."""
        key = LABEL_TYPES[report_type]
        self.rows[report_type].append({**self._common(hour), key: name, report_type: label_json(labels)})

    # ---------------------------------------------------------------- nise-like helpers (hours of one day)
    @staticmethod
    def hours_of(day: dt.date, hours: Iterable[int] = range(24)) -> list[dt.datetime]:
        return [dt.datetime(day.year, day.month, day.day, h) for h in hours]

    def pod(
        self,
        day: dt.date,
        *,
        pod: str,
        namespace: str,
        node: str,
        resource_id: str,
        pod_seconds: float = 3600,
        cpu: tuple[float, float, float] = (0.3, 0.5, 1.0),
        memory_gib: tuple[float, float, float] = (0.8, 1.0, 2.0),
        node_cpu_cores: float = 4,
        node_memory_gib: float = 16,
        labels: Mapping[str, str] | str | None = None,
        hours: Iterable[int] = range(24),
        effective: bool = True,
        node_role: str | None = None,
    ) -> None:
        """nise-style pod: per hourly row, usage/request/limit = pod_seconds x (usage, request, limit)."""
        u, r, lim = cpu
        mu, mr, ml = memory_gib
        for hour in self.hours_of(day, hours):
            self.pod_hour(
                hour,
                pod=pod,
                namespace=namespace,
                node=node,
                resource_id=resource_id,
                usage_cpu_s=pod_seconds * u,
                request_cpu_s=pod_seconds * r,
                limit_cpu_s=pod_seconds * lim,
                usage_mem_bs=pod_seconds * mu * GIB,
                request_mem_bs=pod_seconds * mr * GIB,
                limit_mem_bs=pod_seconds * ml * GIB,
                node_cpu_cores=node_cpu_cores,
                node_memory_bytes=node_memory_gib * GIB,
                labels=labels,
                effective=effective,
                node_role=node_role,
            )

    def pvc(
        self,
        day: dt.date,
        *,
        namespace: str,
        pod: str,
        pvc: str,
        pv: str,
        storageclass: str = "gp3",
        node: str = "",
        capacity_gib: float = 10,
        request_gib: float = 20,
        usage_gib: float = 5,
        pv_labels: Mapping[str, str] | str | None = None,
        pvc_labels: Mapping[str, str] | str | None = None,
        hours: Iterable[int] = range(24),
        csi_volume_handle: str = "",
    ) -> None:
        """nise-style PVC: per hour capacity x 3600, PV request x 3600, usage x 3600 (GiB -> bytes)."""
        for hour in self.hours_of(day, hours):
            self.storage_hour(
                hour,
                namespace=namespace,
                pod=pod,
                pvc=pvc,
                pv=pv,
                storageclass=storageclass,
                node=node,
                capacity_bytes=capacity_gib * GIB,
                capacity_byte_s=capacity_gib * GIB * 3600,
                request_byte_s=request_gib * GIB * 3600,
                usage_byte_s=usage_gib * GIB * 3600,
                pv_labels=pv_labels,
                pvc_labels=pvc_labels,
                csi_volume_handle=csi_volume_handle,
            )

    def node_labels(
        self, day: dt.date, *, node: str, labels: Mapping[str, str] | str | None, hours: Iterable[int] = range(24)
    ) -> None:
        for hour in self.hours_of(day, hours):
            self.label_hour("node_labels", hour, node, labels)

    def namespace_labels(
        self, day: dt.date, *, namespace: str, labels: Mapping[str, str] | str | None, hours: Iterable[int] = range(24)
    ) -> None:
        for hour in self.hours_of(day, hours):
            self.label_hour("namespace_labels", hour, namespace, labels)

    # ---------------------------------------------------------------- writing
    def _schema(self, report_type: str, daily: bool) -> tuple[list[str], list[str]]:
        if report_type == "pod_usage":
            return (POD_DAILY if daily else POD_RAW), POD_METRICS + POD_EFFECTIVE
        if report_type == "storage_usage":
            return (STORAGE_DAILY if daily else STORAGE_RAW), STORAGE_METRICS
        key = LABEL_TYPES[report_type]
        cols = (
            [key, report_type, "interval_start", "report_period_start", "report_period_end"]
            if daily
            else ([*COMMON, key, report_type])
        )
        return cols, []

    def _table(self, df: pd.DataFrame, report_type: str, daily: bool) -> pa.Table:
        cols, metrics = self._schema(report_type, daily)
        arrays = []
        for c in cols:
            typ = _arrow_type(c, metrics)
            values = df[c].tolist() if c in df.columns else [None] * len(df)
            values = [None if (v is None or (isinstance(v, float) and v != v)) else v for v in values]
            if typ == TS:
                values = [None if v is None else pd.Timestamp(v).to_pydatetime() for v in values]
            elif typ == pa.float64():
                values = [None if v is None else float(v) for v in values]
            arrays.append(pa.array(values, type=typ))
        return pa.Table.from_arrays(arrays, names=cols)

    @staticmethod
    def _daily(df: pd.DataFrame, report_type: str) -> pd.DataFrame:
        """koku's _generate_daily_data (1.5): group keys + interval_start floored to the day, max/sum."""
        df = df.copy()
        df["interval_start"] = pd.to_datetime(df["interval_start"]).dt.floor("D")
        if report_type == "pod_usage":
            keys, agg = POD_DAILY_KEYS, POD_DAILY_AGG
        elif report_type == "storage_usage":
            keys, agg = STORAGE_DAILY_KEYS, STORAGE_DAILY_AGG
        else:
            keys, agg = (
                [LABEL_TYPES[report_type], report_type],
                {"report_period_start": "max", "report_period_end": "max"},
            )
        # pandas sum() of an all-NULL group gives 0; koku's frame would too, but keep NULL effective usage NULL
        # so old-parquet fallbacks can be tested: use min_count=1.
        sums = {c for c, f in agg.items() if f == "sum"}
        grouped = df.groupby([*keys, "interval_start"], dropna=False, sort=True)
        out = grouped.agg({c: f for c, f in agg.items() if c not in sums}) if set(agg) - sums else None
        parts = [out] if out is not None else []
        for c in agg:
            if c in sums:
                parts.append(grouped[c].sum(min_count=1).rename(c))
        return pd.concat(parts, axis=1).reset_index()

    def write(self, *, chunks: int = 1) -> list[Path]:
        """Write every collected report type; returns the files written. Rows are split per (month, chunk)."""
        written: list[Path] = []
        for report_type, rows in self.rows.items():
            if not rows:
                continue
            df = pd.DataFrame(rows)
            df["_month"] = [(t.year, t.month) for t in df["interval_start"]]
            for (year, month), mdf in df.groupby("_month", sort=True):
                mdf = mdf.drop(columns="_month").reset_index(drop=True)
                n = max(1, min(chunks, len(mdf)))
                bounds = [round(i * len(mdf) / n) for i in range(n + 1)]
                for i in range(n):
                    part = mdf.iloc[bounds[i] : bounds[i + 1]]
                    stem = f"{report_type}.{year:04d}-{month:02d}.1.{i}"
                    for daily in (False, True):
                        kind = "parquet/daily" if daily else "parquet"
                        folder = (
                            self.data_root
                            / "data"
                            / kind
                            / self.account
                            / "OCP"
                            / report_type
                            / f"source={self.source}"
                            / f"year={year:04d}"
                            / f"month={month:02d}"
                        )
                        folder.mkdir(parents=True, exist_ok=True)
                        frame = self._daily(part, report_type) if daily else part
                        path = folder / (f"{stem}_daily_0.parquet" if daily else f"{stem}_0.parquet")
                        pq.write_table(self._table(frame, report_type, daily), path)
                        written.append(path)
        return written
