"""Hand-made months for the cost-model port's tests: koku-layout Parquet of every report type the cost files read
(VM, GPU, pod, storage, node and namespace labels) and the summary rows they are read with."""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterable, Mapping
from decimal import Decimal
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ocp_assets.core.generate import CACHE_ENV, SCENARIO_DIR, generate
from ocp_assets.core.layout import GPU, GPU_USAGE, month_prefix, raw_schema
from ocp_assets.core.storage import open_data_root
from ocp_assets_tests.reference.koku_cost_sql import KokuCostDatabase
from ocp_assets_tests.reference.koku_cost_sql_fixtures import VmParquet, koku_daily, vm_summary_row
from ocp_assets_tests.reference.koku_sql import reference_summary
from ocp_assets_tests.reference.parquet_fixtures import KokuParquetBuilder
from ocp_assets_tests.scenario_support import nise_cache_dir

ACCOUNT = "org1234567"
OCT1, OCT2, OCT3 = dt.date(2026, 10, 1), dt.date(2026, 10, 2), dt.date(2026, 10, 3)
OTHER_SOURCE = "1b7e2c4d-0000-4000-8000-00000000beef"
A100 = "NVIDIA A100 SXM4 80GB"
A100_40 = "NVIDIA A100 SXM4 40GB"
T4 = "Tesla T4"
DAY_SECONDS = 86400.0


class GpuParquet:
    """Hourly gpu_usage rows of one source, written as koku's raw and daily files (1.5: GPU_AGG roll-up)."""

    def __init__(self, data_root: str | Path, *, account: str, source: str):
        self.root, self.account, self.source = Path(data_root), account, source
        self.rows: list[dict] = []

    def hours(
        self,
        day: dt.date,
        hours: Iterable[int],
        *,
        node: str,
        namespace: str,
        pod: str,
        gpu_uuid: str,
        model: str = A100,
        vendor: str = "nvidia",
        memory_mib: float = 81920.0,
        mig: Mapping | None = None,
    ) -> None:
        """One row per hour, a full hour of uptime each; `mig` sets the MIG columns (profile, instance id,
        strategy, slice_count, memory_mib, max_slices), else the GPU is dedicated (MIG text '', numbers NULL)."""
        mig = mig or {}
        for hour in hours:
            start = dt.datetime.combine(day, dt.time(hour))
            self.rows.append(
                {
                    "report_period_start": dt.datetime(day.year, day.month, 1),
                    "report_period_end": dt.datetime(day.year + day.month // 12, day.month % 12 + 1, 1),
                    "interval_start": start,
                    "interval_end": start + dt.timedelta(seconds=3599),
                    "node": node,
                    "namespace": namespace,
                    "pod": pod,
                    "gpu_uuid": gpu_uuid,
                    "gpu_model_name": model,
                    "gpu_vendor_name": vendor,
                    "gpu_memory_capacity_mib": memory_mib,
                    "gpu_pod_uptime": 3600.0,
                    "mig_instance_id": mig.get("instance_id", ""),
                    "mig_profile": mig.get("profile", ""),
                    "mig_strategy": mig.get("strategy", ""),
                    "mig_slice_count": mig.get("slice_count"),
                    "mig_memory_capacity_mib": mig.get("memory_mib"),
                    "gpu_max_slices": mig.get("max_slices"),
                }
            )

    def write(self) -> None:
        table = pa.Table.from_pylist(self.rows, schema=raw_schema(GPU))
        months = sorted({(r["interval_start"].year, r["interval_start"].month) for r in self.rows})
        for year, month in months:
            starts = table["interval_start"]
            in_month = table.filter(pc.and_(pc.equal(pc.year(starts), year), pc.equal(pc.month(starts), month)))
            for daily in (False, True):
                folder = self.root / month_prefix(self.account, GPU_USAGE, self.source, year, month, daily=daily)
                folder.mkdir(parents=True, exist_ok=True)
                pq.write_table(koku_daily(in_month, GPU) if daily else in_month, folder / "part-0.parquet")


def usage_row(day: dt.date, *, namespace: str, node: str | None, source: str, data_source: str = "Pod", **extra):
    """A summary usage row of a namespace on a node (the project file reads its node; C9)."""
    row = {
        "report_period_id": 1,
        "cluster_id": "cluster-a",
        "cluster_alias": "cluster-a alias",
        "data_source": data_source,
        "usage_start": day,
        "usage_end": day,
        "namespace": namespace,
        "node": node,
        "pod_labels": json.dumps({"app": namespace}) if data_source == "Pod" else None,
        "pod_usage_cpu_core_hours": 1.0 if data_source == "Pod" else None,
        "pod_request_cpu_core_hours": 2.0 if data_source == "Pod" else None,
        "source_uuid": source,
    }
    row.update(extra)
    return row


class CostMonth:
    """One source's month: VM, GPU and label/usage Parquet under `root`, summary rows, cost categories."""

    def __init__(self, root: str | Path, source: str):
        self.root, self.source = Path(root), source
        self.vm = VmParquet(root, account=ACCOUNT, source=source)
        self.gpu = GpuParquet(root, account=ACCOUNT, source=source)
        self.items = KokuParquetBuilder(root, account=ACCOUNT, source=source)
        self.summary: list[dict] = []
        self.categories: list[tuple[str, int]] = []

    def vm_row(self, day: dt.date, **kwargs) -> None:
        self.summary.append(vm_summary_row(day, **{"source": self.source, **kwargs}))

    def usage(self, day: dt.date, namespace: str, nodes: Iterable[str | None], data_source: str = "Pod") -> None:
        for node in nodes:
            self.summary.append(usage_row(day, namespace=namespace, node=node, source=self.source,
                                          data_source=data_source))  # fmt: skip

    def write(self) -> None:
        if self.vm.rows:
            self.vm.write()
        if self.gpu.rows:
            self.gpu.write()
        self.items.write()

    def load(self, db: KokuCostDatabase, months: Iterable[tuple[int, int]] = ((2026, 10),)) -> None:
        """This month's Parquet, summary rows and cost-category patterns into `db`."""
        db.load_parquet(self.root, ACCOUNT, self.source, list(months))
        db.insert_summary_rows(self.summary)
        for pattern, category in self.categories:
            db.conn.execute(
                "INSERT INTO reporting_ocp_cost_category_namespace (namespace, cost_category_id) VALUES (%s, %s)",
                (pattern, category),
            )


# ------------------------------------------------------------------------------------------------ the months
def gpu_node_labels(count: str, product: str, strategy: str | None = None, present: str = "True") -> dict:
    """NVIDIA's GPU-feature-discovery node labels (koku keeps them without the label_ prefix); nise writes none."""
    labels = {
        "nvidia_com_gpu_present": present,
        "nvidia_com_gpu_count": count,
        "nvidia_com_gpu_product": product,
    }
    if strategy is not None:
        labels["nvidia_com_mig_strategy"] = strategy
    return labels


def worked_month(root: str | Path, source: str) -> CostMonth:
    """The contract's 8.11 numbers on two days of October 2026 (31 days), small enough to check by hand.

    VMs: rhel9-vm 24 h/day at 1.8981 cores (app=db, claim rhel9-root, virt-0), win2k22-vm 12 h/day at 2 cores
    (app=web, no claim, virt-1). Projects (env label): ml-training (prod) on gpu-0/gpu-1 on day 1 and gpu-0..2 on
    day 2; scratch (dev, day 1) on gpu-0 plus a claim without node; idle (dev, day 1) without usage; openshift-
    monitoring and kube-system (prod) excluded. GPUs on day 1: gpu-0 (8 A100s, no MIG strategy) with 5 dedicated
    GPUs of ml-training all day and 2 of inference for 12 h; gpu-single (strategy single) and gpu-mixed (mixed),
    both idle; gpu-lower whose present label is "true". Cost categories ml-% -> 7, ml-training -> 9 (C5)."""
    month = CostMonth(root, source)
    _worked_vms(month)
    _worked_projects(month)
    _worked_gpus(month)
    month.write()
    return month


def rich_month(root: str | Path, source: str) -> CostMonth:
    """The worked month plus the cases where koku's files differ from a plain reading (8.9): a VM moving node with
    changing cores, one name in two namespaces, a VM last seen after OCT2, one summarised on another day only,
    other sources' and accrued rows; MIG slices of two models on one node whose labels change at noon, a used
    single-strategy node, another vendor; a namespace whose labels change within a day; overlapping categories."""
    month = CostMonth(root, source)
    _worked_vms(month)
    _worked_projects(month)
    _worked_gpus(month)
    _edge_vms(month)
    _edge_gpus(month)
    _edge_projects(month)
    month.write()
    return month


def _worked_vms(month: CostMonth) -> None:
    for day in (OCT1, OCT2):
        month.vm.hours(day, range(24), vm="rhel9-vm", node="virt-0", cores=1.8981, memory_gib=4.0, claim="rhel9-root")
        month.vm.hours(day, range(12), vm="win2k22-vm", node="virt-1", cores=2.0, memory_gib=8.0)
        month.vm_row(day, vm="rhel9-vm", node="virt-0", labels={"app": "db"}, cpu_request_hours=45.0,
                     memory_request_hours=90.0)  # fmt: skip
        month.vm_row(day, vm="win2k22-vm", node="virt-1", labels={"app": "web"}, cpu_request_hours=24.0,
                     memory_request_hours=192.0)  # fmt: skip
    # The launcher pod and its claim, as the pod and storage daily tables hold them (tmp table without VM report).
    month.items.pod(OCT1, pod="virt-launcher-rhel9", namespace="vms", node="virt-0", resource_id="id-virt-0",
                    labels={"vm_kubevirt_io_name": "rhel9-vm"})  # fmt: skip
    month.items.pvc(OCT1, namespace="vms", pod="virt-launcher-rhel9", pvc="rhel9-root", pv="pv-rhel9", node="virt-0")


def _edge_vms(month: CostMonth) -> None:
    vm, row = month.vm.hours, month.vm_row
    vm(OCT1, range(12), vm="mover", node="virt-0", cores=2.0, claim="mover-a")
    vm(OCT1, range(12, 24), vm="mover", node="virt-1", cores=4.0, claim="mover-b")
    for node in ("virt-0", "virt-1"):
        row(OCT1, vm="mover", node=node, labels={"at": node, "app": "batch"})
    for namespace in ("team-a", "team-b"):
        vm(OCT1, range(24), vm="twin", namespace=namespace, cores=1.0)
        row(OCT1, vm="twin", namespace=namespace, labels={"app": "db"}, cost_category_id=None)
    vm(OCT1, range(24), vm="late", cores=3.0)
    vm(OCT3, range(6), vm="late", node="virt-2", cores=3.0)
    row(OCT1, vm="late", labels={"v": "1", "app": "web"})
    row(OCT3, vm="late", node="virt-2", labels={"v": "3", "extra": "x", "app": "web"})
    vm(OCT2, range(24), vm="ghost", cores=1.0)
    row(OCT1, vm="ghost", labels={"app": "db"})
    row(OCT1, vm="rhel9-vm", source=OTHER_SOURCE, report_period_id=2, node="elsewhere")
    row(OCT1, vm="rhel9-vm", labels={"app": "db"}, cost_model_rate_type="Infrastructure")
    # The pods of mover in the pod/storage daily tables: two claims.
    for claim in ("mover-a", "mover-b"):
        month.items.pvc(OCT1, namespace="vms", pod="virt-launcher-mover", pvc=claim, pv=f"pv-{claim}", node="virt-0")
    month.items.pod(OCT1, pod="virt-launcher-mover", namespace="vms", node="virt-0", resource_id="id-virt-0",
                    labels={"vm_kubevirt_io_name": "mover"})  # fmt: skip


def _worked_projects(month: CostMonth) -> None:
    for day in (OCT1, OCT2):
        month.items.namespace_labels(day, namespace="ml-training", labels={"env": "prod"})
        month.items.namespace_labels(day, namespace="openshift-monitoring", labels={"env": "prod"})
        month.items.namespace_labels(day, namespace="kube-system", labels={"env": "prod"})
    month.items.namespace_labels(OCT1, namespace="scratch", labels={"env": "dev"})
    month.items.namespace_labels(OCT1, namespace="idle", labels={"env": "dev"})
    month.usage(OCT1, "ml-training", ["gpu-0", "gpu-1"])
    month.usage(OCT2, "ml-training", ["gpu-0", "gpu-1", "gpu-2"])
    month.usage(OCT1, "openshift-monitoring", ["gpu-0"])
    month.usage(OCT1, "scratch", ["gpu-0"])
    month.usage(OCT1, "scratch", [None], data_source="Storage")


def _worked_gpus(month: CostMonth) -> None:
    month.items.node_labels(OCT1, node="gpu-0", labels=gpu_node_labels("8", "NVIDIA-A100-SXM4-80GB"))
    month.items.node_labels(OCT1, node="gpu-single", labels=gpu_node_labels("2", "NVIDIA-A100-SXM4-80GB", "single"))
    month.items.node_labels(OCT1, node="gpu-mixed", labels=gpu_node_labels("2", "NVIDIA-A100-SXM4-80GB", "mixed"))
    month.items.node_labels(OCT1, node="gpu-lower", labels=gpu_node_labels("2", "Tesla-T4", present="true"))
    for index in range(5):
        month.gpu.hours(OCT1, range(24), node="gpu-0", namespace="ml-training", pod="trainer", gpu_uuid=f"GPU-{index}")
    for index in (5, 6):
        month.gpu.hours(OCT1, range(12), node="gpu-0", namespace="inference", pod="server", gpu_uuid=f"GPU-{index}")
    month.categories += [("ml-%", 7), ("ml-training", 9)]


def _edge_gpus(month: CostMonth) -> None:
    labels = gpu_node_labels("2", "NVIDIA-A100-SXM4-40GB", "mixed")
    month.items.node_labels(OCT1, node="gpu-mig", labels=labels, hours=range(12))
    month.items.node_labels(
        OCT1, node="gpu-mig", labels={**labels, "nvidia_com_gpu_memory": "40960"}, hours=range(12, 24)
    )
    a100 = {"model": A100_40, "memory_mib": 40960.0}
    slices = [("1g.5gb", 1, 5120, "inference", range(24)), ("3g.20gb", 3, 20480, "ml-training", range(12))]
    for profile, count, memory, namespace, hours in slices:
        mig = {"profile": profile, "instance_id": f"MIG-{profile}", "strategy": "mixed", "slice_count": count,
               "memory_mib": memory, "max_slices": 7}  # fmt: skip
        month.gpu.hours(OCT1, hours, node="gpu-mig", namespace=namespace, pod=f"mig-{count}", gpu_uuid="GPU-m0",
                        mig=mig, **a100)  # fmt: skip
    # A whole MIG-capable GPU (max 7 slices, no slice count: 1 slice-hour per hour, 8.9.9) and a T4 beside it.
    month.gpu.hours(OCT1, range(24), node="gpu-mig", namespace="batch", pod="whole", gpu_uuid="GPU-m1",
                    mig={"max_slices": 7}, **a100)  # fmt: skip
    month.gpu.hours(OCT1, range(6), node="gpu-mig", namespace="batch", pod="t4", gpu_uuid="GPU-t4", model=T4,
                    memory_mib=15360.0)  # fmt: skip
    month.items.node_labels(OCT1, node="gpu-used-single", labels=gpu_node_labels("1", "Tesla-T4", " Single "))
    month.gpu.hours(OCT1, range(10), node="gpu-used-single", namespace="batch", pod="t4b", gpu_uuid="GPU-t4b",
                    model=T4, memory_mib=15360.0)  # fmt: skip
    month.gpu.hours(OCT1, range(24), node="gpu-0", namespace="inference", pod="amd", gpu_uuid="GPU-amd",
                    model="MI300X", vendor="amd")  # fmt: skip
    month.categories += [("openshift-%", 1), ("inf%", 4), ("inference", 5)]


def _edge_projects(month: CostMonth) -> None:
    month.items.namespace_labels(OCT1, namespace="shifting", labels={"env": "prod"}, hours=range(12))
    month.items.namespace_labels(OCT1, namespace="shifting", labels={"env": "prod", "tier": "gold"},
                                 hours=range(12, 24))  # fmt: skip
    month.items.namespace_labels(OCT1, namespace="unlabelled", labels={"team": "x"})
    month.items.namespace_labels(OCT1, namespace="openshift", labels={"env": "prod"})
    month.usage(OCT1, "shifting", ["gpu-0", "gpu-1"])
    month.usage(OCT1, "unlabelled", ["gpu-0"])
    month.usage(OCT1, "openshift", ["gpu-0"])
    # Rows the project file must not count: another source's, and a cost row of the namespace.
    month.summary.append(usage_row(OCT1, namespace="shifting", node="gpu-9", source=OTHER_SOURCE))
    month.summary.append(usage_row(OCT1, namespace="shifting", node="gpu-8", source=month.source,
                                   cost_model_rate_type="Infrastructure"))  # fmt: skip


def add_nvidia_labels(data_root: str | Path, source: str, node: str, labels: Mapping[str, str]) -> None:
    """Rewrite the source's node_labels Parquet (raw and daily) so `node` carries NVIDIA's GPU labels besides its
    own: nise writes ``label_nvidia_com_gpu_present:true`` only (lower case, no count, product or strategy)."""
    for path in Path(data_root).glob(f"data/parquet/**/{ACCOUNT}/OCP/node_labels/source={source}/**/*.parquet"):
        table = pq.read_table(path, partitioning=None)
        texts = []
        for name, text in zip(table["node"].to_pylist(), table["node_labels"].to_pylist()):
            merged = {**json.loads(text or "{}"), **labels} if name == node else None
            texts.append(json.dumps(merged) if merged is not None else text)
        column = table.schema.get_field_index("node_labels")
        pq.write_table(table.set_column(column, "node_labels", pa.array(texts, pa.string())), path)


NISE_DAY = dt.date(2026, 10, 31)  # gpu_vm.yml's one day
NISE_CLUSTER, NISE_ALIAS = "cost-port", "cost port cluster"
# gpu-0 of gpu_vm.yml has an H100, an A100 (two MIG slices) and a T4: three GPUs, MIG strategy mixed.
NISE_GPU_LABELS = gpu_node_labels("3", "NVIDIA-H100-80GB-HBM3", "mixed")


def nise_month(data_root: str | Path, source: str, cache_dir: str | Path) -> list[dict]:
    """nise's gpu_vm.yml ingested under `data_root` (GPU, VM, pods, claims, labels of 2026-10-31) with NVIDIA's node
    labels added on gpu-0; returns the daily summary's rows for it (the independent reference summary, koku_sql)."""
    generate(open_data_root(str(data_root)), yaml_path=SCENARIO_DIR / "gpu_vm.yml", cluster_id=NISE_CLUSTER,
             account=ACCOUNT, source_uuid=source, cluster_alias=NISE_ALIAS, cache_dir=cache_dir)  # fmt: skip
    add_nvidia_labels(data_root, source, "gpu-0", NISE_GPU_LABELS)
    summary = reference_summary(None, data_root, account=ACCOUNT, source=source, cluster_id=NISE_CLUSTER,
                                cluster_alias=NISE_ALIAS, start=NISE_DAY, end=NISE_DAY,
                                enabled_keys=["app"])  # fmt: skip
    return [
        {k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()}
        for row in summary.to_dict("records")
    ]


def nise_cache(request, tmp_path_factory) -> Path:
    """nise's payload cache: $OCP_ASSETS_CACHE or pytest's cache, else (no cache plugin) a folder of this session."""
    if os.environ.get(CACHE_ENV) or getattr(request.config, "cache", None) is not None:
        return nise_cache_dir(request)
    return tmp_path_factory.mktemp("nise-cache")


# ------------------------------------------------------------------------------------------------ the calls
BASE = {"start_date": "2026-10-01", "end_date": "2026-10-31", "year": "2026", "month": "10", "report_period_id": 1,
        "schema": "set-by-the-database"}  # fmt: skip
COST_TYPES = ("Infrastructure", "Supplementary")
MONTHLY = {"amortized_denominator": 31, "cluster_id": "cluster-a", "cluster_alias": "cluster-a alias",
           "cost_type": "Tag"}  # fmt: skip


def tag_variants(tag_key: str, values: Mapping[str, float], default: float) -> list[tuple[str, dict]]:
    """koku's three shapes of a tag parameter set (8.2 step 3) for both cost types."""
    shapes = {
        "values": {"value_rates": dict(values)},
        "values+default": {"value_rates": dict(values), "default_rate": default},
        "default": {"default_rate": default},
    }
    return [
        (f"{name}-{rate_type}", {"tag_key": tag_key, "rate_type": rate_type, **shape})
        for name, shape in shapes.items()
        for rate_type in COST_TYPES
    ]


def file_calls(vm_key: str, project: tuple, gpu: tuple) -> list[tuple[str, str, dict]]:
    """(id, file, parameters) of every summary-inserting file and VM tmp table and their variants: both cost types,
    the three tag-rate shapes; `vm_key` is the VM tag key, `project` and `gpu` (tag key, value rates, default)."""
    hourly = {"use_fractional_hours": True}
    out = [
        ("hourly_cost_virtual_machine.sql", "Infrastructure",
         {"rate_type": "Infrastructure", "hourly_rate": 0.25, **hourly}),
        ("hourly_cost_virtual_machine.sql", "Supplementary",
         {"rate_type": "Supplementary", "hourly_rate": 0.1, **hourly}),
        ("hourly_vm_core.sql", "Infrastructure", {"rate_type": "Infrastructure", "hourly_rate": 0.05}),
        ("hourly_vm_core.sql", "Supplementary", {"rate_type": "Supplementary", "hourly_rate": 0.02}),
        ("monthly_vm_core.sql", "Infrastructure",
         {"rate_type": "Infrastructure", "rate": Decimal(32) / Decimal(31), "cost_type": "OCP_VM_CORE"}),
        ("monthly_vm_core.sql", "Supplementary",
         {"rate_type": "Supplementary", "rate": Decimal(20) / Decimal(31), "cost_type": "OCP_VM_CORE"}),
        ("populate_vm_tmp_table_with_vm_report.sql", "", {"uuid": "k1"}),
        ("populate_vm_tmp_table.sql", "", {"uuid": "k2"}),
    ]  # fmt: skip
    out = [(f"{file}-{name}", file, params) for file, name, params in out]
    tagged = [
        ("hourly_cost_vm_tag_based.sql", tag_variants(vm_key, {"db": 0.25, "batch": 0.5}, 0.1), hourly),
        ("hourly_vm_core_tag_based.sql", tag_variants(vm_key, {"db": 0.05}, 0.02), {}),
        ("monthly_vm_core_tag_based.sql", tag_variants(vm_key, {"db": 31.0, "web": 62.0}, 15.5), MONTHLY),
        ("monthly_project_tag_based.sql", tag_variants(*project), MONTHLY),
        ("monthly_cost_gpu.sql", tag_variants(*gpu), MONTHLY),
    ]
    for file, variants, extra in tagged:
        out += [(f"{file}-{name}", file, {**params, **extra}) for name, params in variants]
    return out


HAND_CALLS = file_calls("app", ("env", {"prod": 310.0}, 31.0), ("nvidia", {A100: 1000.0, A100_40: 700.0}, 200.0))
NISE_CALLS = file_calls(
    "app", ("team", {"ml": 310.0}, 31.0), ("nvidia", {"H100": 3000.0, "A100 SXM4 40GB": 1000.0}, 100.0)
)
