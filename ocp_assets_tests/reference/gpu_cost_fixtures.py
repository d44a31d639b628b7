"""Hand-made gpu_usage and node_labels Parquet (raw and daily, koku's layout and roll-up), NVIDIA node labels, and
the runner of ocp_assets' GPU cost functions for the GPU cost tests."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ocp_assets.core.costs import gpu, inputs
from ocp_assets.core.costs.params import parse_params
from ocp_assets.core.layout import (
    GPU,
    GPU_USAGE,
    NODE_LABEL,
    NODE_LABELS,
    month_prefix,
    raw_schema,
)
from ocp_assets.core.storage import open_data_root
from ocp_assets_tests.reference.koku_cost_sql_fixtures import koku_daily

ACCOUNT = "org1234567"


def nvidia_labels(
    count: str | None = "8",
    product: str | None = "NVIDIA-A100-SXM4-80GB",
    strategy: str | None = None,
    *,
    present: str = "True",
    **extra: str,
) -> dict:
    """A GPU node's labels as koku stores them (the operator's label_ prefix removed); None leaves a label out."""
    labels = {"kubernetes_io_hostname": "gpu", "nvidia_com_gpu_present": present}
    for key, value in (("nvidia_com_gpu_count", count), ("nvidia_com_gpu_product", product)):
        if value is not None:
            labels[key] = value
    if strategy is not None:
        labels["nvidia_com_mig_strategy"] = strategy
    return {**labels, **extra}


def _common(hour: dt.datetime) -> dict:
    return {
        "report_period_start": dt.datetime(hour.year, hour.month, 1),
        "report_period_end": dt.datetime(hour.year + hour.month // 12, hour.month % 12 + 1, 1),
        "interval_start": hour,
        "interval_end": hour + dt.timedelta(seconds=3599),
    }


class GpuParquet:
    """Hourly gpu_usage and node_labels rows of one source, written as koku's raw and daily files per month."""

    def __init__(self, data_root: str | Path, *, account: str = ACCOUNT, source: str):
        self.root, self.account, self.source = Path(data_root), account, source
        self.gpu_rows: list[dict] = []
        self.label_rows: list[dict] = []

    def gpu_hours(
        self,
        day: dt.date,
        hours: Iterable[int],
        *,
        node: str,
        namespace: str,
        pod: str,
        gpu_uuid: str,
        model: str | None = "H100",
        vendor: str | None = "nvidia",
        memory_mib: float | None = 81920.0,
        seconds: float | None = 3600.0,
        mig: tuple[str, int, int, int] | None = None,
        mig_strategy: str | None = "",
        mig_instance_id: str | None = "",
        cleared: bool = False,
    ) -> None:
        """`mig` = (profile, slice count, max slices, memory MiB), as koku's clean-up derives them (1.3); a dedicated
        GPU has '' for the MIG texts (nise's CSV), a `cleared` one (MIG profile of a model without slice count) NULL."""
        profile, slices, max_slices, mig_memory = mig or ("", None, None, None)
        if cleared:
            profile = mig_strategy = mig_instance_id = None
        for hour in hours:
            self.gpu_rows.append(
                {
                    **_common(dt.datetime.combine(day, dt.time(hour))),
                    "node": node,
                    "namespace": namespace,
                    "pod": pod,
                    "gpu_uuid": gpu_uuid,
                    "gpu_model_name": model,
                    "gpu_vendor_name": vendor,
                    "gpu_memory_capacity_mib": memory_mib,
                    "gpu_pod_uptime": seconds,
                    "mig_instance_id": mig_instance_id,
                    "mig_profile": profile,
                    "mig_strategy": mig_strategy,
                    "mig_slice_count": slices,
                    "mig_memory_capacity_mib": mig_memory,
                    "gpu_max_slices": max_slices,
                }
            )

    def node_label_hours(self, day: dt.date, hours: Iterable[int], *, node: str, labels: Mapping | str) -> None:
        text = labels if isinstance(labels, str) else json.dumps(dict(labels))  # koku's post-processor: json.dumps
        for hour in hours:
            self.label_rows.append(
                {**_common(dt.datetime.combine(day, dt.time(hour))), "node": node, "node_labels": text}
            )

    def write(self) -> None:
        for report_type, name, rows in ((GPU, GPU_USAGE, self.gpu_rows), (NODE_LABEL, NODE_LABELS, self.label_rows)):
            if not rows:
                continue
            table = pa.Table.from_pylist(rows, schema=raw_schema(report_type))
            for year, month in sorted({(r["interval_start"].year, r["interval_start"].month) for r in rows}):
                in_month = table.filter(
                    pc.and_(
                        pc.equal(pc.year(table["interval_start"]), year),
                        pc.equal(pc.month(table["interval_start"]), month),
                    )
                )
                write_month(self.root, self.account, name, self.source, year, month, in_month, daily=False)
                daily = koku_daily(in_month, report_type)
                write_month(self.root, self.account, name, self.source, year, month, daily, daily=True)


def write_month(root: Path, account: str, name: str, source: str, year: int, month: int, table, *, daily: bool):
    folder = Path(root) / month_prefix(account, name, source, year, month, daily=daily)
    folder.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, folder / "part-0.parquet")


def relabel_nodes(data_root: Path, account: str, source: str, year: int, month: int, labels: Mapping[str, Mapping]):
    """Replace the node_labels JSON of the given nodes in the raw and daily files of a month (nise writes no NVIDIA
    labels), keeping every other row."""
    for daily in (False, True):
        folder = Path(data_root) / month_prefix(account, NODE_LABELS, source, year, month, daily=daily)
        for path in sorted(folder.glob("*.parquet")):
            table = pq.read_table(path)
            texts = [
                json.dumps(dict(labels[node])) if node in labels else text
                for node, text in zip(table["node"].to_pylist(), table["node_labels"].to_pylist())
            ]
            index = table.schema.get_field_index("node_labels")
            pq.write_table(table.set_column(index, "node_labels", pa.array(texts, pa.string())), path)


def unallocated_row(
    day: dt.date,
    node: str,
    model: str | None,
    cost,
    *,
    source: str,
    rate_type: str = "Infrastructure",
    data_source: str = "GPU",
    report_period_id: int = 1,
    cluster_id: str = "cluster-a",
) -> dict:
    """A 'GPU unallocated' summary row as monthly_cost_gpu leaves it (for the distribution)."""
    return {
        "report_period_id": report_period_id,
        "cluster_id": cluster_id,
        "cluster_alias": f"{cluster_id} alias",
        "data_source": data_source,
        "usage_start": day,
        "usage_end": day,
        "namespace": gpu.UNALLOCATED_NAMESPACE,
        "node": node,
        "all_labels": {"gpu-model": model, "max-slices-per-gpu": "1"},
        "source_uuid": source,
        "cost_model_rate_type": rate_type,
        "cost_model_gpu_cost": cost,
        "monthly_cost_type": "Tag",
    }


def unallocated_table(rows: list[dict]) -> pa.Table:
    """Rows of unallocated_row as read_gpu_unallocated_rows returns them."""
    flat = [{**r, "gpu_model": r["all_labels"]["gpu-model"]} for r in rows]
    return pa.Table.from_pylist(
        [{name: r.get(name) for name in gpu.UNALLOCATED_SCHEMA.names} for r in flat], schema=gpu.UNALLOCATED_SCHEMA
    )


def ours(conn, schema: str, data_root, file: str, raw_params: Mapping, *, account: str = ACCOUNT) -> list[dict]:
    """ocp_assets' rows for one GPU call: Parquet from `data_root`, cost categories and summary rows from PostgreSQL."""
    params = parse_params(file, {**raw_params, "schema": schema})
    root = open_data_root(str(data_root))
    gpu_daily = inputs.read_gpu_usage_daily(root, account, params.source_uuid, params.year, params.month).table
    if file == "monthly_cost_gpu.sql":
        labels = inputs.read_node_labels_raw(root, account, params.source_uuid, params.year, params.month).table
        categories = inputs.read_cost_categories(conn, schema)
        return gpu.monthly_cost_gpu(params, gpu_daily, labels, categories).to_pylist()
    unallocated = inputs.read_gpu_unallocated_rows(conn, schema, params.source_uuid, params.start_date, params.end_date)
    return gpu.distribute_unallocated_gpu_cost(params, gpu_daily, unallocated).to_pylist()
