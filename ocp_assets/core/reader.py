"""Read one cluster-day of koku-layout Parquet (D3): only that month's files, only row groups that hold the day.

Per file: the footer is checked (readable, columns present with usable types, no NULL interval_start) before
any data is read, and row groups whose interval_start statistics miss the day are skipped, so a day costs
the same whatever else the month holds. Errors name the file, column and row.
"""

import datetime as dt
import re
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from ocp_assets.core.errors import ConfigurationError, InputDataError
from ocp_assets.core.labels import LabelCatalog, MalformedLabelJSON
from ocp_assets.core.layout import (
    GPU_USAGE,
    NAMESPACE_LABELS,
    NODE_LABELS,
    POD_USAGE,
    STORAGE_USAGE,
    TIMESTAMP_TYPE,
    dataset_prefix,
    days_outside_folder,
    month_prefix,
)
from ocp_assets.core.storage import DataRoot, absence

STRING = pa.string()
DOUBLE = pa.float64()


@dataclass(frozen=True)
class ColumnSpec:
    name: str
    type: pa.DataType
    required: bool = True


def _spec(names: str, type_: pa.DataType, required: bool = True) -> list[ColumnSpec]:
    return [ColumnSpec(n, type_, required) for n in names.split()]


POD_DAILY_COLUMNS = (
    *_spec("namespace node pod pod_labels resource_id", STRING),
    ColumnSpec("interval_start", TIMESTAMP_TYPE),
    *_spec(
        "pod_usage_cpu_core_seconds pod_request_cpu_core_seconds pod_limit_cpu_core_seconds"
        " pod_usage_memory_byte_seconds pod_request_memory_byte_seconds pod_limit_memory_byte_seconds"
        " node_capacity_cpu_cores node_capacity_memory_bytes",
        DOUBLE,
    )
    # Older koku Parquet predates effective usage and node_role; PGSQL falls back to greatest(usage, request).
    + _spec("pod_effective_usage_cpu_core_seconds pod_effective_usage_memory_byte_seconds", DOUBLE, required=False)
    + [ColumnSpec("node_role", STRING, required=False)],
)
POD_HOURLY_CAPACITY_COLUMNS = [
    ColumnSpec("interval_start", TIMESTAMP_TYPE),
    *_spec("node", STRING),
    *_spec("node_capacity_cpu_core_seconds node_capacity_memory_byte_seconds", DOUBLE),
]
STORAGE_DAILY_COLUMNS = [
    *_spec("namespace pod persistentvolumeclaim persistentvolume storageclass", STRING),
    ColumnSpec("csi_volume_handle", STRING, required=False),
    *_spec("persistentvolume_labels persistentvolumeclaim_labels", STRING),
    ColumnSpec("interval_start", TIMESTAMP_TYPE),
    *_spec(
        "persistentvolumeclaim_capacity_bytes persistentvolumeclaim_capacity_byte_seconds"
        " volume_request_storage_byte_seconds persistentvolumeclaim_usage_byte_seconds",
        DOUBLE,
    ),
]
NODE_LABEL_COLUMNS = [ColumnSpec("interval_start", TIMESTAMP_TYPE), *_spec("node node_labels", STRING)]
NAMESPACE_LABEL_COLUMNS = [ColumnSpec("interval_start", TIMESTAMP_TYPE), *_spec("namespace namespace_labels", STRING)]

INFRA_NODE_LABEL_TEXT = '"node_role_kubernetes_io": "infra"'
MASTER_NAMESPACE = "openshift-kube-apiserver"


@dataclass
class DayTable:
    """The rows of one table for one day, and the files they came from (to locate bad values)."""

    table: pa.Table
    files: list[str] = field(default_factory=list)  # as shown to people (URI form)
    paths: list[str] = field(default_factory=list)  # the same files as paths on `root`
    root: DataRoot | None = None
    rows_per_file: list[int] = field(default_factory=list)  # the day's rows each file contributed, in order
    day: dt.date | None = None

    def __len__(self) -> int:
        return self.table.num_rows


def _compatible(actual: pa.DataType, wanted: pa.DataType) -> bool:
    if pa.types.is_timestamp(wanted):
        return pa.types.is_timestamp(actual) or pa.types.is_date(actual)
    if pa.types.is_floating(wanted):
        return (
            pa.types.is_floating(actual)
            or pa.types.is_integer(actual)
            or pa.types.is_decimal(actual)
            or pa.types.is_null(actual)
        )
    if pa.types.is_string(wanted):
        return (
            pa.types.is_string(actual)
            or pa.types.is_large_string(actual)
            or pa.types.is_null(actual)
            or (pa.types.is_dictionary(actual) and pa.types.is_string(actual.value_type))
        )
    return actual == wanted


def _first_null_row(parquet: pq.ParquetFile, column: str) -> int:
    values = parquet.read(columns=[column])[column]
    return int(np.argmax(values.is_null().to_numpy(zero_copy_only=False))) + 1


def _row_groups_for_day(parquet: pq.ParquetFile, column_index: int, start: dt.datetime, end: dt.datetime) -> list[int]:
    keep = []
    metadata = parquet.metadata
    for rg in range(metadata.num_row_groups):
        stats = metadata.row_group(rg).column(column_index).statistics
        if stats is not None and stats.has_min_max:
            low, high = _naive_utc(stats.min), _naive_utc(stats.max)
            if isinstance(low, dt.datetime) and (high < start or low >= end):
                continue
        keep.append(rg)
    return keep


def read_day_rows(root: DataRoot, prefix: str, columns: list[ColumnSpec], day: dt.date) -> DayTable:
    """Rows of every Parquet file below prefix whose interval_start falls on day, as the canonical column types."""
    start = dt.datetime.combine(day, dt.time())
    end = start + dt.timedelta(days=1)
    schema = pa.schema([(c.name, c.type) for c in columns])
    pieces: list[pa.Table] = []
    files: list[str] = []
    paths: list[str] = []
    for info in root.list_files(prefix):
        shown = root.display(root.key_of(info.path))
        try:
            parquet = pq.ParquetFile(root.fs.open_input_file(info.path))
            file_schema = parquet.schema_arrow
        except (pa.ArrowException, OSError) as exc:
            raise InputDataError(f"not a readable Parquet file ({exc})", file=shown) from None
        present = []
        for spec in columns:
            index = file_schema.get_field_index(spec.name)
            if index < 0:
                if spec.required:
                    raise InputDataError("required column is missing", file=shown, column=spec.name)
                continue
            actual = file_schema.field(index).type
            if not _compatible(actual, spec.type):
                raise InputDataError(f"has type {actual}, expected {spec.type}", file=shown, column=spec.name)
            present.append(spec.name)
        start_index = parquet.schema_arrow.get_field_index("interval_start")
        metadata = parquet.metadata
        nulls = 0
        for rg in range(metadata.num_row_groups):
            stats = metadata.row_group(rg).column(start_index).statistics
            nulls += stats.null_count if stats is not None and stats.has_null_count else 0
        if nulls:
            raise InputDataError(
                "interval_start is NULL",
                file=shown,
                column="interval_start",
                row=_first_null_row(parquet, "interval_start"),
            )
        row_groups = _row_groups_for_day(parquet, start_index, start, end)
        if not row_groups:
            continue
        try:
            table = parquet.read_row_groups(row_groups, columns=present)
        except (pa.ArrowException, OSError) as exc:
            raise InputDataError(f"cannot read Parquet data ({exc})", file=shown) from None
        if table.schema.field("interval_start").type != TIMESTAMP_TYPE:
            # Other units, a time zone (kept as UTC wall time) or dates are normalised to koku's naive ms.
            starts = pc.cast(table["interval_start"], TIMESTAMP_TYPE, safe=False)
            table = table.set_column(table.schema.get_field_index("interval_start"), "interval_start", starts)
        table = table.filter(_in_day(table["interval_start"], start, end))
        if table.num_rows == 0:
            continue
        arrays = []
        for spec in columns:
            if spec.name in present:
                column = table[spec.name]
                if pa.types.is_dictionary(column.type):
                    column = pc.cast(column, column.type.value_type)
                arrays.append(pc.cast(column, spec.type) if column.type != spec.type else column)
            else:
                arrays.append(pa.nulls(table.num_rows, spec.type))
        pieces.append(pa.Table.from_arrays(arrays, schema=schema))
        files.append(shown)
        paths.append(info.path)
    table = pa.concat_tables(pieces) if pieces else schema.empty_table()
    return DayTable(table, files, paths, root, [p.num_rows for p in pieces], day)


def _in_day(starts: pa.ChunkedArray, start: dt.datetime, end: dt.datetime) -> pa.ChunkedArray:
    return pc.and_(
        pc.greater_equal(starts, pa.scalar(start, TIMESTAMP_TYPE)),
        pc.less(starts, pa.scalar(end, TIMESTAMP_TYPE)),
    )


def node_capacity_per_day(hourly: pa.Table) -> pa.Table:
    """Node capacity for the day (3.4): max per (hour, node) removes the per-pod repetition, then sum over hours."""
    per_hour = hourly.group_by(["interval_start", "node"]).aggregate(
        [("node_capacity_cpu_core_seconds", "max"), ("node_capacity_memory_byte_seconds", "max")]
    )
    per_day = per_hour.group_by("node").aggregate(
        [("node_capacity_cpu_core_seconds_max", "sum"), ("node_capacity_memory_byte_seconds_max", "sum")]
    )
    return per_day.rename_columns(["node", "node_capacity_cpu_core_seconds", "node_capacity_memory_byte_seconds"])


def _prefix(account: str, report_type: str, source: str, day: dt.date, *, daily: bool) -> str:
    return month_prefix(account, report_type, source, day.year, day.month, daily=daily)


def read_pod_usage(root: DataRoot, account: str, source: str, day: dt.date) -> tuple[DayTable, pa.Table]:
    """The day's pod_daily rows and per-node capacity (from the hourly table); both empty for a day without pod rows."""
    pod_daily = read_day_rows(root, _prefix(account, POD_USAGE, source, day, daily=True), POD_DAILY_COLUMNS, day)
    hourly = read_day_rows(
        root, _prefix(account, POD_USAGE, source, day, daily=False), POD_HOURLY_CAPACITY_COLUMNS, day
    )
    for column in ("node_capacity_cpu_core_seconds", "node_capacity_memory_byte_seconds"):
        # Judged here, on the hourly rows, so a bad value is named by its file and row (the per-node sums are not).
        values = hourly.table[column]
        bad = pc.invert(pc.fill_null(pc.and_(pc.is_finite(values), pc.greater_equal(values, 0.0)), True))
        first = pc.indices_nonzero(bad)
        if len(first):
            index = first[0].as_py()
            raise locate_row(hourly, index, column, f"negative or not finite capacity: {values[index].as_py()!r}")
    return pod_daily, node_capacity_per_day(hourly.table)


def read_storage_usage(root: DataRoot, account: str, source: str, day: dt.date) -> DayTable:
    """The day's storage_daily rows; none when the cluster sends no storage report (PGSQL then adds no Storage rows)."""
    return read_day_rows(root, _prefix(account, STORAGE_USAGE, source, day, daily=True), STORAGE_DAILY_COLUMNS, day)


def read_label_rows(
    root: DataRoot, account: str, source: str, day: dt.date, report_type: str
) -> tuple[DayTable, DayTable]:
    """The day's daily and hourly rows of node_labels or namespace_labels."""
    columns = NODE_LABEL_COLUMNS if report_type == NODE_LABELS else NAMESPACE_LABEL_COLUMNS
    return (
        read_day_rows(root, _prefix(account, report_type, source, day, daily=True), columns, day),
        read_day_rows(root, _prefix(account, report_type, source, day, daily=False), columns, day),
    )


def filter_labels_located(catalog: LabelCatalog, rows: DayTable, column: str) -> np.ndarray:
    """catalog.filter_column, but a malformed value becomes an InputDataError naming its file and row."""
    try:
        return catalog.filter_column(rows.table[column])
    except MalformedLabelJSON as exc:
        raise locate_value(rows, column, exc.value, str(exc)) from None


def locate_value(rows: DayTable, column: str, value: str, reason: str) -> InputDataError:
    """The error for a bad cell, with the file and 1-based row where the value first occurs.

    Files are re-read only on this error path, to turn a value back into a position a person can open.
    """
    for shown, path in zip(rows.files, rows.paths):
        table = pq.read_table(rows.root.fs.open_input_file(path), columns=[column])
        position = pc.index(table[column], pa.scalar(value, STRING)).as_py()
        if position >= 0:
            return InputDataError(reason, file=shown, column=column, row=position + 1)
    return InputDataError(reason, file=rows.files[0] if rows.files else None, column=column)


def locate_row(rows: DayTable, index: int, column: str | None, reason: str) -> InputDataError:
    """The error for row ``index`` of the day's combined rows, named by its file and 1-based row in that file.

    The combined rows are each file's rows of the day, in file order; the file is re-read (its interval_start
    column only) on this error path to turn the position back into the file's own row number.
    """
    offset = 0
    for shown, path, count in zip(rows.files, rows.paths, rows.rows_per_file):
        if index < offset + count and rows.root is not None and rows.day is not None:
            starts = pq.read_table(rows.root.fs.open_input_file(path), columns=["interval_start"])["interval_start"]
            starts = pc.cast(starts, TIMESTAMP_TYPE, safe=False)
            start = dt.datetime.combine(rows.day, dt.time())
            positions = pc.indices_nonzero(_in_day(starts, start, start + dt.timedelta(days=1)))
            return InputDataError(reason, file=shown, column=column, row=positions[index - offset].as_py() + 1)
        offset += count
    return InputDataError(reason, file=rows.files[0] if rows.files else None, column=column)


def _naive_utc(value):
    """A footer statistic as koku's naive UTC wall time (a time-zone-aware column's values are converted to UTC)."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _as_date(value) -> dt.date:
    value = _naive_utc(value)
    return value.date() if isinstance(value, dt.datetime) else value


def file_days(root: DataRoot, path: str) -> list[dt.date]:
    """Days a Parquet file covers, from the interval_start min/max of each row group's footer (no data pages read).

    A file that cannot tell (unreadable, no interval_start, or one typed as anything but a timestamp or date) is an
    InputDataError naming it, never a library traceback.
    """
    shown = root.display(root.key_of(path))
    try:
        parquet = pq.ParquetFile(root.fs.open_input_file(path))
    except (pa.ArrowException, OSError) as exc:
        raise InputDataError(f"not a readable Parquet file ({exc})", file=shown) from None
    index = parquet.schema_arrow.get_field_index("interval_start")
    if index < 0:
        raise InputDataError("required column is missing", file=shown, column="interval_start")
    if not _compatible(parquet.schema_arrow.field(index).type, TIMESTAMP_TYPE):
        raise InputDataError(
            f"has type {parquet.schema_arrow.field(index).type}, expected {TIMESTAMP_TYPE}",
            file=shown,
            column="interval_start",
        )
    days: set[dt.date] = set()
    for rg in range(parquet.metadata.num_row_groups):
        stats = parquet.metadata.row_group(rg).column(index).statistics
        if parquet.metadata.row_group(rg).num_rows == 0:
            continue
        if stats is not None and stats.has_min_max:
            low, high = stats.min, stats.max
        else:
            # A writer that keeps no statistics: read this row group's interval_start instead of losing its days.
            starts = parquet.read_row_group(rg, columns=["interval_start"])["interval_start"]
            bounds = pc.min_max(starts).as_py()
            if bounds["min"] is None:
                continue
            low, high = bounds["min"], bounds["max"]
        day, last = _as_date(low), _as_date(high)
        while day <= last:
            days.add(day)
            day += dt.timedelta(days=1)
    return sorted(days)


# koku's partition folders below a dataset prefix (data/parquet[/daily]/<acct>/OCP/<type>/source=<uuid>).
MONTH_PARTITIONS = ("year", "month")
# Where a cluster's Parquet is looked for, most likely first: any one file proves its data is under the data root.
EVIDENCE_DATASETS = tuple(
    (report_type, daily)
    for report_type in (POD_USAGE, GPU_USAGE, STORAGE_USAGE, NODE_LABELS, NAMESPACE_LABELS)
    for daily in (True, False)
)


def dataset_files(root: DataRoot, prefix: str, stray=None) -> list:
    """Every file of one dataset (`prefix` is the folder above year=/month=), read as koku's Hive tables are: the
    month folders' own files, nothing deeper or hidden. `stray(key, why)` hears of what is not read
    (``DataRoot.list_files``)."""
    return root.list_files(prefix, partition_keys=MONTH_PARTITIONS, stray=stray)


class NoClusterDataError(ConfigurationError):
    """A data root holding none of a cluster's Parquet: a mistyped, empty or unmounted data root, a wrong account or
    S3 prefix. None of its days may be summarised as empty (their rows removed) on such evidence."""


@dataclass(frozen=True)
class ClusterData:
    """One look for a cluster's Parquet under a data root: the evidence a day needs before it is summarised as empty.

    An empty day removes its previous rows (koku's delete-then-insert), so "no rows for this day" must mean the day's
    files are gone, not that the data root is the wrong one: the cluster's other files have to be there. Taken once
    per cluster per run (not per day); picklable, so worker processes get it with their day.
    """

    data_root: str
    account: str
    source: str
    file: str | None  # one of the cluster's files, as shown to people; None when there is none
    root_exists: bool = True

    def error(self) -> NoClusterDataError:
        """Why no day of the cluster may be summarised as empty (only meaningful when `file` is None)."""
        if not self.root_exists:
            return NoClusterDataError(
                f"{absence(self.data_root)} (looked for account {self.account}, source {self.source}); nothing removed"
            ).with_hint("check --data-root (Dagster: OCP_ASSETS_DATA_ROOT) and the S3 bucket and prefix")
        looked = f"{self.data_root.rstrip('/')}/" + dataset_prefix(self.account, "*", self.source, daily=False)
        return NoClusterDataError(
            f"no Parquet of source {self.source} (account {self.account}) under data root {self.data_root} "
            f"(looked under {looked} and data/parquet/daily/…); no day summarised as empty, nothing removed"
        ).with_hint(
            "check --data-root, --account and the S3 prefix (Dagster: OCP_ASSETS_DATA_ROOT and the cluster record)"
        )


def look_for_cluster_data(root: DataRoot, account: str, source: str) -> ClusterData:
    """Find one of the cluster's Parquet files (pod usage first: usually one listing) and read a few bytes of it, so
    the data is known to be present and readable, not only listed."""
    for report_type, daily in EVIDENCE_DATASETS:
        files = dataset_files(root, dataset_prefix(account, report_type, source, daily=daily))
        if files:
            with root.fs.open_input_file(files[0].path) as handle:
                handle.read(4)
            return ClusterData(root.uri, account, source, root.display(root.key_of(files[0].path)))
    return ClusterData(root.uri, account, source, None, root.exists())


def _usage_prefix(account: str, source: str, report_type: str) -> str:
    """The folder above the year=/month= folders of the files a summary reads: pod usage's daily files, GPU usage's
    hourly ones (koku's GPU summary SQL reads the hourly table)."""
    return dataset_prefix(account, report_type, source, daily=report_type != GPU_USAGE)


def days_with_usage(
    root: DataRoot, account: str, source: str, warn=None, report_types: tuple[str, ...] = (POD_USAGE,)
) -> list[dt.date]:
    """Every day some file of the source covers (pod_daily by default), from footer statistics only (no data pages
    read). `report_types` (POD_USAGE, GPU_USAGE) widens it: a day with GPU data and no pod data is summarised too.

    A file whose footer cannot be read does not stop the others: its days are unknown, so it counts for the first
    day of its month (when no other file names a day there), and reading that month's days fails naming it, in its
    own summary only (an unreadable GPU file fails the GPU summaries, the usage summaries are written).

    `warn` (a callable) hears of such files, of files holding rows dated outside their folder's month (those rows
    are not read) and of files and folders that are not read because they are out of place.
    """
    days: set[dt.date] = set()
    unreadable_months: set[dt.date] = set()
    say = warn if warn is not None else (lambda message: None)
    for report_type in report_types:
        prefix = _usage_prefix(account, source, report_type)
        for info in dataset_files(root, prefix, stray=lambda key, why: say(f"{root.display(key)}: not read ({why})")):
            shown = root.display(root.key_of(info.path))
            try:
                covered = file_days(root, info.path)
            except InputDataError as exc:
                month = _folder_month(root.key_of(info.path))
                say(
                    f"{exc}; which days it holds is unknown, so the {report_type} days of its month fail until it "
                    "is fixed"
                )
                if month is not None:
                    unreadable_months.add(month)
                continue
            outside = days_outside_folder(root.key_of(info.path), covered)
            if outside:
                say(
                    f"{shown}: rows dated {outside[0]} .. {outside[-1]} lie outside "
                    "the month of their folder and are not summarised (koku reads a month's rows from its own folder)"
                )
            days.update(d for d in covered if d not in outside)
    days.update(m for m in unreadable_months if not any((d.year, d.month) == (m.year, m.month) for d in days))
    return sorted(days)


def _folder_month(key: str) -> dt.date | None:
    """The first day of the month a key's year=YYYY/month=MM folder names."""
    found = re.search(r"/year=(\d{4})/month=(\d{2})/", "/" + key)
    return dt.date(int(found.group(1)), int(found.group(2)), 1) if found else None


def months_with_usage_files(
    root: DataRoot, account: str, source: str, report_types: tuple[str, ...] = (POD_USAGE,)
) -> set[tuple[int, int]]:
    """(year, month) of every month folder holding a file of the source (pod_daily by default), whatever rows the
    files hold."""
    months = set()
    for report_type in report_types:
        for info in dataset_files(root, _usage_prefix(account, source, report_type)):
            month = _folder_month(root.key_of(info.path))
            if month is not None:
                months.add((month.year, month.month))
    return months
