"""The inputs of the cost-model files (contract C4): a month of line items from Parquet, summary rows from PostgreSQL.

koku's files read their line items by ``source``, ``year`` and ``month`` (the Parquet's year=/month= folder, D3),
not by the call's date range, so a month is read whole. Every input is validated with a Pandera model before it
is used; a bad cell is an InputDataError naming the file, column and 1-based row.
"""

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pandera.pandas as pa
import psycopg
import pyarrow
import pyarrow.compute as pc
from pandera.errors import SchemaErrors
from pandera.typing import Series
from psycopg import sql

from ocp_assets.core.costs.gpu import UNALLOCATED_NAMESPACE, UNALLOCATED_SCHEMA, count_problems
from ocp_assets.core.errors import InputDataError
from ocp_assets.core.labels import MalformedLabelJSON, parse_label_object
from ocp_assets.core.layout import (
    GPU_USAGE,
    NODE_LABELS,
    POD_USAGE,
    STORAGE_USAGE,
    TIMESTAMP_TYPE,
    VM_USAGE,
    month_prefix,
)
from ocp_assets.core.reader import ColumnSpec, open_parquet, present_columns
from ocp_assets.core.storage import DataRoot
from ocp_assets.core.validation import InputModel

STRING, DOUBLE = pyarrow.string(), pyarrow.float64()
VM_LABEL = "vm_kubevirt_io_name"


def _columns(strings: str, doubles: str = "") -> list[ColumnSpec]:
    return [
        ColumnSpec("interval_start", TIMESTAMP_TYPE),
        *(ColumnSpec(name, STRING) for name in strings.split()),
        *(ColumnSpec(name, DOUBLE) for name in doubles.split()),
    ]


# What each file reads of each table (koku's self-hosted line-item tables hold the Parquet columns).
VM_COLUMNS = _columns(
    "vm_name node resource_id vm_persistentvolumeclaim_name",
    "vm_uptime_total_seconds vm_cpu_request_cores vm_memory_request_bytes",
)
POD_DAILY_LABEL_COLUMNS = _columns("pod pod_labels")
STORAGE_DAILY_CLAIM_COLUMNS = _columns("pod persistentvolumeclaim")


def _label_json(series: pd.Series) -> pd.Series:
    """True where a label cell is NULL, blank or a JSON object (what koku's ``::jsonb`` accepts)."""
    verdicts = {}
    for text in pd.unique(series.dropna()):
        try:
            verdicts[text] = not text.strip() or parse_label_object(text) is not None
        except MalformedLabelJSON:
            verdicts[text] = False
    return series.map(lambda value: value is None or verdicts.get(value, True))


class VmUsageRows(InputModel):
    """vm_usage rows (raw or daily) as the VM files read them."""

    interval_start: Series[pd.Timestamp] = pa.Field(nullable=False)
    vm_name: Series[str] = pa.Field(nullable=True)
    node: Series[str] = pa.Field(nullable=True)
    resource_id: Series[str] = pa.Field(nullable=True)
    vm_persistentvolumeclaim_name: Series[str] = pa.Field(nullable=True)
    vm_uptime_total_seconds: Series[float] = pa.Field(nullable=True, ge=0)
    vm_cpu_request_cores: Series[float] = pa.Field(nullable=True, ge=0)
    vm_memory_request_bytes: Series[float] = pa.Field(nullable=True, ge=0)


class PodLabelRows(InputModel):
    """pod_usage daily rows as the VM tmp table reads them: the pod and its label JSON."""

    interval_start: Series[pd.Timestamp] = pa.Field(nullable=False)
    pod: Series[str] = pa.Field(nullable=True)
    pod_labels: Series[str] = pa.Field(nullable=True)

    @pa.check("pod_labels", name="label cells are JSON objects")
    def _labels(cls, series: pd.Series) -> pd.Series:
        return _label_json(series)


class StorageClaimRows(InputModel):
    """storage_usage daily rows as the VM tmp table reads them: the pod and its claim."""

    interval_start: Series[pd.Timestamp] = pa.Field(nullable=False)
    pod: Series[str] = pa.Field(nullable=True)
    persistentvolumeclaim: Series[str] = pa.Field(nullable=True)


@dataclass
class MonthRows:
    """A month of one table's rows and where each came from (file, 1-based row), to name a bad cell."""

    table: pyarrow.Table
    files: list[str] = field(default_factory=list)
    file_index: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    file_row: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))

    def locate(self, position: int, column: str | None, reason: str) -> InputDataError:
        if not self.files:
            return InputDataError(reason, column=column)
        file = self.files[int(self.file_index[position])]
        return InputDataError(reason, file=file, column=column, row=int(self.file_row[position]))


def _read_file(root: DataRoot, path: str, shown: str, columns: list[ColumnSpec]) -> pyarrow.Table:
    parquet = open_parquet(root, path, shown)
    present = present_columns(parquet, columns, shown)
    try:
        table = parquet.read(columns=present)
    except (pyarrow.ArrowException, OSError) as exc:
        raise InputDataError(f"cannot read Parquet data ({exc})", file=shown) from None
    arrays = []
    for spec in columns:
        if spec.name not in present:
            arrays.append(pyarrow.nulls(table.num_rows, spec.type))
            continue
        column = table[spec.name]
        if pyarrow.types.is_dictionary(column.type):
            column = pc.cast(column, column.type.value_type)
        arrays.append(pc.cast(column, spec.type, safe=False) if column.type != spec.type else column)
    return pyarrow.Table.from_arrays(arrays, schema=pyarrow.schema([(c.name, c.type) for c in columns]))


def read_month_rows(
    root: DataRoot,
    account: str,
    report_type: str,
    source: str,
    year: str,
    month: str,
    columns: list[ColumnSpec],
    model: type[InputModel],
    *,
    daily: bool,
) -> MonthRows:
    """Every row of one table's year=/month= folder, validated with `model`, plus ``usage_start`` (date of
    interval_start, as koku's self-hosted writer sets it)."""
    prefix = month_prefix(account, report_type, source, int(year), int(month), daily=daily)
    pieces, files, index, rows = [], [], [], []
    for info in root.list_files(prefix):
        shown = root.display(root.key_of(info.path))
        piece = _read_file(root, info.path, shown, columns)
        index.append(np.full(piece.num_rows, len(files), dtype=np.int64))
        rows.append(np.arange(1, piece.num_rows + 1, dtype=np.int64))
        pieces.append(piece)
        files.append(shown)
    schema = pyarrow.schema([(c.name, c.type) for c in columns])
    table = pyarrow.concat_tables(pieces) if pieces else schema.empty_table()
    found = MonthRows(table, files, np.concatenate(index or [[]]), np.concatenate(rows or [[]]))
    _validate(found, model)
    usage_start = pc.cast(pc.floor_temporal(table["interval_start"], unit="day"), pyarrow.date32())
    found.table = table.append_column("usage_start", usage_start)
    return found


def _validate(rows: MonthRows, model: type[InputModel]) -> None:
    frame = rows.table.to_pandas(coerce_temporal_nanoseconds=True)
    try:
        model.validate(frame, lazy=True)
    except SchemaErrors as exc:
        cases = exc.failure_cases
        located = cases[cases["index"].notna()]
        if located.empty:
            raise InputDataError(f"does not fit {model.__name__}: {cases.iloc[0]['check']}") from None
        first = located.sort_values("index").iloc[0]
        value = first["failure_case"]
        raise rows.locate(int(first["index"]), first["column"], f"{first['check']} (value {value!r})") from None


def read_vm_usage(root: DataRoot, account: str, source: str, year: str, month: str, *, daily: bool) -> MonthRows:
    return read_month_rows(root, account, VM_USAGE, source, year, month, VM_COLUMNS, VmUsageRows, daily=daily)


def read_pod_labels_daily(root: DataRoot, account: str, source: str, year: str, month: str) -> MonthRows:
    return read_month_rows(
        root, account, POD_USAGE, source, year, month, POD_DAILY_LABEL_COLUMNS, PodLabelRows, daily=True
    )


def read_storage_claims_daily(root: DataRoot, account: str, source: str, year: str, month: str) -> MonthRows:
    return read_month_rows(
        root, account, STORAGE_USAGE, source, year, month, STORAGE_DAILY_CLAIM_COLUMNS, StorageClaimRows, daily=True
    )


def vm_report_exists(root: DataRoot, account: str, source: str) -> bool:
    """Whether the source has vm_usage daily files in any month (koku's test for its VM-report tmp-table file)."""
    prefix = month_prefix(account, VM_USAGE, source, 2000, 1, daily=True).rsplit("/year=", 1)[0]
    return bool(root.list_files(prefix, partition_keys=("year", "month")))


# ------------------------------------------------------------------------------------------------ summary rows
SUMMARY_SCHEMA = pyarrow.schema(
    [
        ("report_period_id", pyarrow.int64()),
        ("usage_start", pyarrow.date32()),
        ("usage_end", pyarrow.date32()),
        ("source_uuid", STRING),
        ("cluster_id", STRING),
        ("cluster_alias", STRING),
        ("data_source", STRING),
        ("namespace", STRING),
        ("node", STRING),
        ("resource_id", STRING),
        ("pod_labels", STRING),
        ("all_labels", STRING),
        ("vm_name", STRING),
        ("cost_category_id", pyarrow.int64()),
        ("cost_model_rate_type", STRING),
        ("monthly_cost_type", STRING),
        ("pod_usage_cpu_core_hours", DOUBLE),
        ("pod_request_cpu_core_hours", DOUBLE),
        ("pod_request_memory_gigabyte_hours", DOUBLE),
    ]
)
_SUMMARY_SELECT = """
SELECT report_period_id, usage_start, usage_end, source_uuid::text, cluster_id, cluster_alias, data_source,
       namespace, node, resource_id, pod_labels::text, all_labels::text, pod_labels->>'vm_kubevirt_io_name',
       cost_category_id, cost_model_rate_type, monthly_cost_type, pod_usage_cpu_core_hours::float8,
       pod_request_cpu_core_hours::float8, pod_request_memory_gigabyte_hours::float8
FROM {schema}.reporting_ocpusagelineitem_daily_summary
WHERE data_source = 'Pod' AND pod_labels->>'vm_kubevirt_io_name' IS NOT NULL AND {scope}
"""


def read_summary_vm_rows(
    conn: psycopg.Connection,
    schema: str,
    *,
    report_period_id: int | None = None,
    source_uuid: str | None = None,
    start=None,
    end=None,
) -> pyarrow.Table:
    """The summary's Pod rows carrying a VM label, of one report period (the VM cost files) or of one source and
    date range (the VM tmp table, C6). Labels come as jsonb text, costs as float8."""
    if report_period_id is not None:
        scope, args = sql.SQL("report_period_id = %s"), [report_period_id]
    else:
        scope = sql.SQL("source_uuid = %s::uuid AND usage_start >= %s AND usage_start <= %s")
        args = [source_uuid, start, end]
    query = sql.SQL(_SUMMARY_SELECT).format(schema=sql.Identifier(schema), scope=scope)
    rows = conn.execute(query, args).fetchall()
    return pyarrow.Table.from_pylist([dict(zip(SUMMARY_SCHEMA.names, row)) for row in rows], schema=SUMMARY_SCHEMA)


# ------------------------------------------------------------------------------------------------ GPU cost inputs
# What monthly_cost_gpu and the GPU distribution read of gpu_usage daily: the MIG columns are optional (an older
# operator does not send them; koku's table then holds NULL), the MIG counts are read as double (the daily Parquet's
# type) and must be whole numbers, as koku's integer columns hold them.
GPU_DAILY_COLUMNS = [
    *_columns("node namespace gpu_uuid gpu_model_name gpu_vendor_name", "gpu_memory_capacity_mib gpu_pod_uptime"),
    *(ColumnSpec(name, STRING, required=False) for name in ("mig_instance_id", "mig_profile", "mig_strategy")),
    *(
        ColumnSpec(name, DOUBLE, required=False)
        for name in ("mig_slice_count", "gpu_max_slices", "mig_memory_capacity_mib")
    ),
]
GPU_DAILY_DOUBLES = tuple(spec.name for spec in GPU_DAILY_COLUMNS if spec.type == DOUBLE)
NODE_LABEL_COLUMNS = _columns("node node_labels")
INT4_MAX = 2**31 - 1  # koku's IntegerField


class GpuUsageDailyRows(InputModel):
    """gpu_usage daily rows as the GPU cost files read them."""

    interval_start: Series[pd.Timestamp] = pa.Field(nullable=False)
    node: Series[str] = pa.Field(nullable=True)
    namespace: Series[str] = pa.Field(nullable=True)
    gpu_uuid: Series[str] = pa.Field(nullable=True)
    gpu_model_name: Series[str] = pa.Field(nullable=True)
    gpu_vendor_name: Series[str] = pa.Field(nullable=True)
    gpu_memory_capacity_mib: Series[float] = pa.Field(nullable=True, ge=0)
    gpu_pod_uptime: Series[float] = pa.Field(nullable=True, ge=0)
    mig_instance_id: Series[str] = pa.Field(nullable=True)
    mig_profile: Series[str] = pa.Field(nullable=True)
    mig_strategy: Series[str] = pa.Field(nullable=True)
    mig_slice_count: Series[float] = pa.Field(nullable=True, ge=0, le=INT4_MAX)
    # koku derives it from the model (1 to 7) or leaves it NULL; the unallocated cost divides by it.
    gpu_max_slices: Series[float] = pa.Field(nullable=True, ge=1, le=INT4_MAX)
    mig_memory_capacity_mib: Series[float] = pa.Field(nullable=True, ge=0)

    @pa.check("mig_slice_count", "gpu_max_slices", name="whole numbers (koku's integer columns)")
    def _whole(cls, series: pd.Series) -> pd.Series:
        return series.isna() | (series % 1 == 0)


class NodeLabelRows(InputModel):
    """Hourly node_labels rows as monthly_cost_gpu reads them: the node and its label JSON."""

    interval_start: Series[pd.Timestamp] = pa.Field(nullable=False)
    node: Series[str] = pa.Field(nullable=True)
    node_labels: Series[str] = pa.Field(nullable=True)

    @pa.check("node_labels", name="label cells are JSON objects")
    def _labels(cls, series: pd.Series) -> pd.Series:
        return _label_json(series)

    @pa.check("node_labels", name="GPU nodes' nvidia_com_gpu_count is a number (koku casts it to DECIMAL(33,15))")
    def _gpu_count(cls, series: pd.Series) -> pd.Series:
        texts = [value if isinstance(value, str) else None for value in series]
        return pd.Series([problem is None for problem in count_problems(texts)], index=series.index)


def _nan_as_null(rows: MonthRows, columns: tuple[str, ...]) -> MonthRows:
    # koku loads the Parquet into PostgreSQL with pandas' to_sql, which writes NaN as NULL.
    for name in columns:
        column = rows.table[name]
        index = rows.table.schema.get_field_index(name)
        rows.table = rows.table.set_column(index, name, pc.if_else(pc.is_nan(column), None, column))
    return rows


def read_gpu_usage_daily(root: DataRoot, account: str, source: str, year: str, month: str) -> MonthRows:
    rows = read_month_rows(
        root, account, GPU_USAGE, source, year, month, GPU_DAILY_COLUMNS, GpuUsageDailyRows, daily=True
    )
    return _nan_as_null(rows, GPU_DAILY_DOUBLES)


def read_node_labels_raw(root: DataRoot, account: str, source: str, year: str, month: str) -> MonthRows:
    return read_month_rows(
        root, account, NODE_LABELS, source, year, month, NODE_LABEL_COLUMNS, NodeLabelRows, daily=False
    )


def read_cost_categories(conn: psycopg.Connection, schema: str) -> list[tuple[str, int]]:
    """(namespace LIKE pattern, cost_category_id) of ``reporting_ocp_cost_category_namespace``."""
    query = sql.SQL("SELECT namespace, cost_category_id FROM {}.reporting_ocp_cost_category_namespace ORDER BY id")
    return [(pattern, int(category)) for pattern, category in conn.execute(query.format(sql.Identifier(schema)))]


_UNALLOCATED_SELECT = """
SELECT report_period_id, cluster_id, cluster_alias, data_source, usage_start, namespace, node,
       all_labels->>'gpu-model', source_uuid::text, cost_model_rate_type, cost_model_gpu_cost
FROM {schema}.reporting_ocpusagelineitem_daily_summary
WHERE namespace = %s AND source_uuid = %s::uuid AND usage_start >= %s AND usage_start <= %s
"""


def read_gpu_unallocated_rows(conn: psycopg.Connection, schema: str, source_uuid: str, start, end) -> pyarrow.Table:
    """The summary's 'GPU unallocated' rows of the source in [start, end], of every data source and cost type (the
    distribution reads them all; its negation keeps the GPU ones); costs as exact numeric."""
    query = sql.SQL(_UNALLOCATED_SELECT).format(schema=sql.Identifier(schema))
    rows = conn.execute(query, (UNALLOCATED_NAMESPACE, source_uuid, start, end)).fetchall()
    names = UNALLOCATED_SCHEMA.names
    return pyarrow.Table.from_pylist([dict(zip(names, row)) for row in rows], schema=UNALLOCATED_SCHEMA)
