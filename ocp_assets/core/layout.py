"""koku's OCP line-item vocabulary: report types, columns, Parquet types and object keys (contract 1.1-1.6, D3).

Everything that names a koku column, table or path lives here, so ingest, the reader and the
Dagster layer cannot drift apart.
"""

import datetime as dt
import re
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

    @property
    def raw_columns(self) -> tuple[str, ...]:
        extra = EFFECTIVE_USAGE_COLUMNS if self.name == POD_USAGE else ()
        return COMMON_COLUMNS + self.columns + extra + self.added_when_missing

    @property
    def daily_columns(self) -> tuple[str, ...]:
        return (*self.daily_group_by, "interval_start", *self.daily_max, *self.daily_sum, *self.added_when_missing)

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

# The summary reads only these four; VM and GPU reports are out of scope (D8).
SUMMARY_REPORT_TYPES = (POD, STORAGE, NODE_LABEL, NAMESPACE_LABEL)
REPORT_TYPES = {rt.name: rt for rt in SUMMARY_REPORT_TYPES}

# koku's detect_type tries these in order and takes the first whose required columns the header holds (1.2 step 3).
DETECTION_ORDER = (STORAGE, POD, NODE_LABEL, NAMESPACE_LABEL)
# Columns koku tolerates missing (added later as empty strings), so they are not required for detection.
OPTIONAL_FOR_DETECTION = {STORAGE_USAGE: {"node", "csi_driver", "csi_volume_handle"}, POD_USAGE: {"node_role"}}

# Identifier columns koku HTML-escapes at ingest (ocp_data_validator line 47), restricted to the summary's report types.
SANITIZED_COLUMNS = frozenset(
    {
        "namespace",
        "pod",
        "node",
        "persistentvolumeclaim",
        "persistentvolume",
        "storageclass",
        "resource_id",
        "csi_driver",
        "csi_volume_handle",
        "node_role",
    }
)

ANOMALY_THRESHOLD = 1e18  # rows with any metric above this are dropped (1.3 process_dataframe step 1)


def arrow_type(column: str, report_type: ReportType) -> pa.DataType:
    if column in TIMESTAMP_COLUMNS:
        return TIMESTAMP_TYPE
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
    return pa.schema([(c, arrow_type(c, report_type)) for c in cols])


def account_from_schema(schema: str) -> str:
    """koku strips a leading 'acct' from the tenant schema to form the account segment of keys (1.6)."""
    return schema[4:] if schema.startswith("acct") else schema


def dataset_prefix(account: str, report_type: str, source: str, *, daily: bool) -> str:
    """Key prefix of one report type of one source, below the data root, without year/month."""
    kind = "parquet/daily" if daily else "parquet"
    return f"data/{kind}/{account}/OCP/{report_type}/source={source}"


def month_prefix(account: str, report_type: str, source: str, year: int, month: int, *, daily: bool) -> str:
    return f"{dataset_prefix(account, report_type, source, daily=daily)}/year={year:04d}/month={month:02d}"


def days_outside_folder(key: str, days: list[dt.date]) -> list[dt.date]:
    """Days of a file that lie outside the month its `year=YYYY/month=MM` folder names (koku, and ocp_assets after
    it, read a day's rows from its own month's folder only, so those rows are never summarised)."""
    match = re.search(r"/year=(\d{4})/month=(\d{2})/", key)
    if not match:
        return []
    year, month = int(match.group(1)), int(match.group(2))
    return [d for d in days if (d.year, d.month) != (year, month)]


def month_start(day: dt.date) -> dt.date:
    return day.replace(day=1)


def next_month_start(day: dt.date) -> dt.date:
    return (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)


def days_in_month(day: dt.date) -> int:
    return (next_month_start(day) - dt.timedelta(days=1)).day
