"""koku's OCP line-item vocabulary: report types, columns, Parquet types and object keys (contract 1.1-1.6, D3).

Everything that names a koku column, table or path lives here, so ingest, the reader and the
Dagster layer cannot drift apart.
"""

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

import pyarrow as pa

COMMON_COLUMNS = ("report_period_start", "report_period_end", "interval_start", "interval_end")
TIMESTAMP_COLUMNS = COMMON_COLUMNS
TIMESTAMP_TYPE = pa.timestamp("ms")  # naive, like koku's to_parquet(coerce_timestamps="ms")

POD_USAGE = "pod_usage"
STORAGE_USAGE = "storage_usage"
NODE_LABELS = "node_labels"
NAMESPACE_LABELS = "namespace_labels"
VM_USAGE = "vm_usage"
GPU_USAGE = "gpu_usage"


@dataclass(frozen=True)
class ReportType:
    """One koku OCP report type: its CSV columns (after the common four) and how its daily table is built."""

    name: str
    nise_name: str
    columns: tuple[str, ...]
    numeric: tuple[str, ...]
    labels: tuple[str, ...]
    daily_group_by: tuple[str, ...]
    daily_max: tuple[str, ...]
    daily_sum: tuple[str, ...]
    # Columns koku adds (as all-null strings) when an older operator does not send them (1.2 step 3).
    added_when_missing: tuple[str, ...] = ()
    # Metric columns whose value above ANOMALY_THRESHOLD drops the row (koku's THRESHOLDS; none for VM and GPU).
    anomaly_columns: tuple[str, ...] = ()
    # Columns ingest computes from others after the CSV columns (GPU: the MIG fields of 1.3), never read from a CSV.
    derived_columns: tuple[str, ...] = ()
    # Columns written as int64 in the raw table; their daily max comes out as double (koku's groupby on objects).
    integer: tuple[str, ...] = ()
    # koku's agg-dict order of the daily max and sum columns where it interleaves them (VM, GPU); else max, then sum.
    daily_aggregation_order: tuple[str, ...] = ()

    @property
    def raw_columns(self) -> tuple[str, ...]:
        extra = EFFECTIVE_USAGE_COLUMNS if self.name == POD_USAGE else ()
        return COMMON_COLUMNS + self.columns + extra + self.added_when_missing + self.derived_columns

    @property
    def daily_columns(self) -> tuple[str, ...]:
        aggregated = self.daily_aggregation_order or (*self.daily_max, *self.daily_sum)
        return (*self.daily_group_by, "interval_start", *aggregated, *self.added_when_missing)

    @property
    def raw_table(self) -> str:
        return f"openshift_{self.name}_line_items"

    @property
    def daily_table(self) -> str:
        return f"openshift_{self.name}_line_items_daily"


EFFECTIVE_USAGE_COLUMNS = ("pod_effective_usage_cpu_core_seconds", "pod_effective_usage_memory_byte_seconds")

_POD_METRICS = (
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
)

POD = ReportType(
    name=POD_USAGE,
    nise_name="ocp_pod_usage",
    columns=("pod", "namespace", "node", "resource_id", *_POD_METRICS, "pod_labels"),
    numeric=_POD_METRICS + EFFECTIVE_USAGE_COLUMNS,
    labels=("pod_labels",),
    daily_group_by=("namespace", "node", "pod", "pod_labels"),
    daily_max=("report_period_start", "report_period_end", "resource_id"),
    # Order of the pod_daily columns follows contract 1.5 (sums, then capacity columns, then node_role).
    daily_sum=(
        "pod_usage_cpu_core_seconds",
        "pod_request_cpu_core_seconds",
        "pod_effective_usage_cpu_core_seconds",
        "pod_limit_cpu_core_seconds",
        "pod_usage_memory_byte_seconds",
        "pod_request_memory_byte_seconds",
        "pod_effective_usage_memory_byte_seconds",
        "pod_limit_memory_byte_seconds",
    ),
    added_when_missing=("node_role",),
    # Not node_capacity_cpu_cores in koku's THRESHOLDS; kept as ingest has always checked it (no real value gets near).
    anomaly_columns=_POD_METRICS,
)
# pod_daily interleaves max and sum capacity columns after the usage sums (contract 1.5).
POD_DAILY_CAPACITY = (
    ("node_capacity_cpu_cores", "max"),
    ("node_capacity_cpu_core_seconds", "sum"),
    ("node_capacity_memory_bytes", "max"),
    ("node_capacity_memory_byte_seconds", "sum"),
)

_STORAGE_METRICS = (
    "persistentvolumeclaim_capacity_bytes",
    "persistentvolumeclaim_capacity_byte_seconds",
    "volume_request_storage_byte_seconds",
    "persistentvolumeclaim_usage_byte_seconds",
)

STORAGE = ReportType(
    name=STORAGE_USAGE,
    nise_name="ocp_storage_usage",
    columns=(
        "namespace",
        "pod",
        "node",
        "persistentvolumeclaim",
        "persistentvolume",
        "storageclass",
        "csi_driver",
        "csi_volume_handle",
        *_STORAGE_METRICS,
        "persistentvolume_labels",
        "persistentvolumeclaim_labels",
    ),
    numeric=_STORAGE_METRICS,
    labels=("persistentvolume_labels", "persistentvolumeclaim_labels"),
    daily_group_by=(
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
    ),
    daily_max=("report_period_start", "report_period_end", "persistentvolumeclaim_capacity_bytes"),
    daily_sum=(
        "persistentvolumeclaim_capacity_byte_seconds",
        "volume_request_storage_byte_seconds",
        "persistentvolumeclaim_usage_byte_seconds",
    ),
    anomaly_columns=_STORAGE_METRICS,
)

NODE_LABEL = ReportType(
    name=NODE_LABELS,
    nise_name="ocp_node_label",
    columns=("node", "node_labels"),
    numeric=(),
    labels=("node_labels",),
    daily_group_by=("node", "node_labels"),
    daily_max=("report_period_start", "report_period_end"),
    daily_sum=(),
)

NAMESPACE_LABEL = ReportType(
    name=NAMESPACE_LABELS,
    nise_name="ocp_namespace_label",
    columns=("namespace", "namespace_labels"),
    numeric=(),
    labels=("namespace_labels",),
    daily_group_by=("namespace", "namespace_labels"),
    daily_max=("report_period_start", "report_period_end"),
    daily_sum=(),
)

# The VM report's metric columns (nise ocp_generator OCP_VM_COLUMNS, koku VM_USAGE_COLUMNS), in CSV order.
_VM_METRICS = (
    "vm_uptime_total_seconds",
    "vm_cpu_limit_cores",
    "vm_cpu_limit_core_seconds",
    "vm_cpu_request_cores",
    "vm_cpu_request_core_seconds",
    "vm_cpu_request_sockets",
    "vm_cpu_request_socket_seconds",
    "vm_cpu_request_threads",
    "vm_cpu_request_thread_seconds",
    "vm_cpu_usage_total_seconds",
    "vm_memory_limit_bytes",
    "vm_memory_limit_byte_seconds",
    "vm_memory_request_bytes",
    "vm_memory_request_byte_seconds",
    "vm_memory_usage_byte_seconds",
)
# koku VM_AGG (masu/util/ocp/common.py): per-second totals are summed over the day, sizes and names take the max.
_VM_DAILY_AGGREGATION = (
    ("report_period_start", "max"),
    ("report_period_end", "max"),
    ("resource_id", "max"),
    ("vm_instance_type", "max"),
    ("vm_os", "max"),
    ("vm_guest_os_arch", "max"),
    ("vm_guest_os_name", "max"),
    ("vm_guest_os_version", "max"),
    ("vm_uptime_total_seconds", "sum"),
    ("vm_cpu_limit_cores", "max"),
    ("vm_cpu_limit_core_seconds", "sum"),
    ("vm_cpu_request_cores", "max"),
    ("vm_cpu_request_core_seconds", "sum"),
    ("vm_cpu_request_sockets", "max"),
    ("vm_cpu_request_socket_seconds", "sum"),
    ("vm_cpu_request_threads", "max"),
    ("vm_cpu_request_thread_seconds", "sum"),
    ("vm_cpu_usage_total_seconds", "sum"),
    ("vm_memory_limit_bytes", "max"),
    ("vm_memory_limit_byte_seconds", "sum"),
    ("vm_memory_request_bytes", "max"),
    ("vm_memory_request_byte_seconds", "sum"),
    ("vm_memory_usage_byte_seconds", "sum"),
    ("vm_device", "max"),
    ("vm_volume_mode", "max"),
    ("vm_persistentvolumeclaim_name", "max"),
    ("vm_disk_allocated_size_byte_seconds", "sum"),
)

VM = ReportType(
    name=VM_USAGE,
    nise_name="ocp_vm_usage",
    columns=(
        "node",
        "resource_id",
        "namespace",
        "vm_name",
        "vm_instance_type",
        "vm_os",
        "vm_guest_os_arch",
        "vm_guest_os_name",
        "vm_guest_os_version",
        *_VM_METRICS,
        "vm_device",
        "vm_volume_mode",
        "vm_persistentvolumeclaim_name",
        "vm_disk_allocated_size_byte_seconds",
        "vm_labels",
    ),
    numeric=(*_VM_METRICS, "vm_disk_allocated_size_byte_seconds"),
    labels=("vm_labels",),
    daily_group_by=("namespace", "node", "vm_name", "vm_labels"),
    daily_max=tuple(name for name, how in _VM_DAILY_AGGREGATION if how == "max"),
    daily_sum=tuple(name for name, how in _VM_DAILY_AGGREGATION if how == "sum"),
    daily_aggregation_order=tuple(name for name, _ in _VM_DAILY_AGGREGATION),
)

# The MIG columns an operator sends (newer operators only, so not required to recognise a GPU report) and the
# ones koku derives from mig_profile and the GPU model (1.3 GPU clean-up; GPU_USAGE_NEWV_COLUMNS_AND_TYPES).
GPU_MIG_REPORTED_COLUMNS = ("mig_instance_id", "mig_profile", "mig_strategy")
GPU_MIG_DERIVED_COLUMNS = ("mig_slice_count", "mig_memory_capacity_mib", "gpu_max_slices")
# koku GPU_AGG: uptime is summed over the day, everything else per (node, namespace, pod, gpu, MIG instance) is max.
_GPU_DAILY_AGGREGATION = (
    ("report_period_start", "max"),
    ("report_period_end", "max"),
    ("gpu_model_name", "max"),
    ("gpu_vendor_name", "max"),
    ("gpu_memory_capacity_mib", "max"),
    ("gpu_pod_uptime", "sum"),
    ("mig_profile", "max"),
    ("mig_slice_count", "max"),
    ("gpu_max_slices", "max"),
    ("mig_memory_capacity_mib", "max"),
    ("mig_strategy", "max"),
)

GPU = ReportType(
    name=GPU_USAGE,
    nise_name="ocp_gpu_usage",
    columns=(
        "node",
        "namespace",
        "pod",
        "gpu_uuid",
        "gpu_model_name",
        "gpu_vendor_name",
        "gpu_memory_capacity_mib",
        "gpu_pod_uptime",
        *GPU_MIG_REPORTED_COLUMNS,
    ),
    numeric=("gpu_memory_capacity_mib", "gpu_pod_uptime"),
    labels=(),
    daily_group_by=("node", "namespace", "pod", "gpu_uuid", "mig_instance_id"),
    daily_max=tuple(name for name, how in _GPU_DAILY_AGGREGATION if how == "max"),
    daily_sum=tuple(name for name, how in _GPU_DAILY_AGGREGATION if how == "sum"),
    derived_columns=GPU_MIG_DERIVED_COLUMNS,
    integer=GPU_MIG_DERIVED_COLUMNS,
    daily_aggregation_order=tuple(name for name, _ in _GPU_DAILY_AGGREGATION),
)

# The daily summary reads only these four; the GPU summary reads GPU, and koku's VM cost steps (out of scope, D8)
# read VM.
SUMMARY_REPORT_TYPES = (POD, STORAGE, NODE_LABEL, NAMESPACE_LABEL)

# koku's detect_type tries these in order and takes the first whose required columns the header holds (1.2 step 3).
DETECTION_ORDER = (STORAGE, POD, NODE_LABEL, NAMESPACE_LABEL, VM, GPU)
# Columns koku tolerates missing (added later as empty strings), so they are not required for detection.
OPTIONAL_FOR_DETECTION = {
    STORAGE_USAGE: {"node", "csi_driver", "csi_volume_handle"},
    POD_USAGE: {"node_role"},
    GPU_USAGE: set(GPU_MIG_REPORTED_COLUMNS),
}

# Identifier columns koku HTML-escapes at ingest (masu/util/ocp/ocp_data_validator.py FIELDS_TO_VALIDATE).
SANITIZED_COLUMNS = frozenset(
    {
        "namespace",
        "pod",
        "node",
        "persistentvolumeclaim",
        "persistentvolume",
        "storageclass",
        "resource_id",
        "vm_name",
        "gpu_uuid",
        "gpu_model_name",
        "gpu_vendor_name",
        "csi_driver",
        "csi_volume_handle",
        "node_role",
        "vm_instance_type",
        "vm_os",
        "vm_device",
    }
)

# GPU clean-up (koku ocp_post_processor.process_dataframe): the operator's resource name becomes the vendor.
GPU_VENDOR_RENAMES = {"nvidia_com_gpu": "nvidia"}
# koku GPU_MAX_SLICES_BY_MODEL, in its order: a model matches exactly, else the first key it contains.
GPU_MAX_SLICES_BY_MODEL = (
    ("A30", 4),
    ("A100", 7),
    ("H100", 7),
    ("H200", 7),
    ("B200", 7),
    ("RTX PRO 6000", 4),
    ("RTX PRO 5000", 2),
)

ANOMALY_THRESHOLD = 1e18  # rows with any metric above this are dropped (1.3 process_dataframe step 1)


def arrow_type(column: str, report_type: ReportType, *, daily: bool = False) -> pa.DataType:
    if column in TIMESTAMP_COLUMNS:
        return TIMESTAMP_TYPE
    if column in report_type.integer:
        # koku fills these per row into an object column (int64 in Parquet); its daily groupby max gives float64.
        return pa.float64() if daily else pa.int64()
    if column in report_type.numeric:
        return pa.float64()
    return pa.string()


def raw_schema(report_type: ReportType) -> pa.Schema:
    return pa.schema([(c, arrow_type(c, report_type)) for c in report_type.raw_columns])


def daily_schema(report_type: ReportType) -> pa.Schema:
    if report_type is POD:
        cols = (
            *POD.daily_group_by,
            "interval_start",
            *POD.daily_max,
            *POD.daily_sum,
            *tuple(c for c, _ in POD_DAILY_CAPACITY),
            *POD.added_when_missing,
        )
    else:
        cols = report_type.daily_columns
    return pa.schema([(c, arrow_type(c, report_type, daily=True)) for c in cols])


def account_from_schema(schema: str) -> str:
    """koku strips a leading 'acct' from the tenant schema to form the account segment of keys (1.6)."""
    return schema[4:] if schema.startswith("acct") else schema


def dataset_prefix(account: str, report_type: str, source: str, *, daily: bool) -> str:
    """Key prefix of one report type of one source, below the data root, without year/month."""
    kind = "parquet/daily" if daily else "parquet"
    return f"data/{kind}/{account}/OCP/{report_type}/source={source}"


def month_prefix(account: str, report_type: str, source: str, year: int, month: int, *, daily: bool) -> str:
    return f"{dataset_prefix(account, report_type, source, daily=daily)}/year={year:04d}/month={month:02d}"


def folder_month(key: str) -> tuple[int, int] | None:
    """(year, month) of the `year=YYYY/month=MM` folder a file's key lies in, or None (also for a folder naming no
    month a date can have, such as month=13 or year=0000: its files are held to no month)."""
    match = re.search(r"(?:^|/)year=(\d{4})/month=(\d{2})/", key)
    if match is None:
        return None
    year, month = int(match.group(1)), int(match.group(2))
    return (year, month) if year >= dt.MINYEAR and 1 <= month <= 12 else None


def folder_month_days(key: str, days: Iterable[dt.date]) -> list[dt.date]:
    """The days a file whose own days cannot be read stands for: those of `days` in its folder's month, else that
    month's first day ([] outside a month folder). Reading any day of that month reads the file, so each fails
    naming it until it is fixed."""
    month = folder_month(key)
    if month is None:
        return []
    return sorted({d for d in days if (d.year, d.month) == month}) or [dt.date(*month, 1)]


def days_outside_folder(key: str, days: list[dt.date]) -> list[dt.date]:
    """Days of a file that lie outside the month its `year=YYYY/month=MM` folder names (koku, and ocp_assets after
    it, read a day's rows from its own month's folder only, so those rows are never summarised)."""
    month = folder_month(key)
    if month is None:
        return []
    return [d for d in days if (d.year, d.month) != month]


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month_start(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def month_end(day: dt.date) -> dt.date:
    return next_month_start(day) - dt.timedelta(days=1)


def days_in_month(day: dt.date) -> int:
    return month_end(day).day
