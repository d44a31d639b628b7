"""Read one cluster-day of koku-layout Parquet (D3): only that month's files, only row groups that hold the day.

Per file: the footer is checked (readable, columns present with usable types, no NULL or implausible
interval_start) before any data is read, and row groups whose interval_start statistics miss the day are skipped;
a writer that kept no statistics costs one read of its interval_start column. Text that is not UTF-8 is found in the
day's rows. Errors name the file, column and row.

A run's days share what was read of each footer (``FileFooter``, kept in the data root's ``FileCache`` while the
file keeps its size and modification time): each day still lists its month's files, but opens only those whose
row groups hold the day, so a month costs each footer once (plus one more open of each file a day reads), not
once per day (decision R1 in docs/decisions.md).
"""

import datetime as dt
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.fs as pafs
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
    folder_month,
    folder_month_days,
    month_prefix,
    month_start,
    next_month_start,
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


# interval_start outside these is no usage hour of a cluster but a zero or sentinel value (Go's zero time 0001-01-01,
# the Unix epoch, 9999-12-31); the later bound is also the end of timestamp[ns], which the checks' pandas frames use.
EARLIEST_START = dt.datetime(1970, 1, 2)
LATEST_START = dt.datetime(2262, 4, 11)


@dataclass(frozen=True)
class StartBounds:
    """The interval_start values a file may hold: [low, high), and how to say so in an error."""

    low: dt.datetime
    high: dt.datetime
    why: str


def plausible_starts(key: str) -> StartBounds:
    """A file in a year=/month= folder holds its month's rows; the neighbouring months' are tolerated (koku ignores
    them, days_with_usage warns), anything further away is bad input. Elsewhere only the global bounds apply."""
    month = folder_month(key)
    if month is None or not EARLIEST_START.year < month[0] < LATEST_START.year:
        return StartBounds(EARLIEST_START, LATEST_START, "the dates koku's usage can have")
    first = dt.date(*month, 1)
    low = month_start(first - dt.timedelta(days=1))
    high = next_month_start(next_month_start(first))
    why = f"the month of its folder ({month[0]:04d}-{month[1]:02d}) and the months either side"
    return StartBounds(dt.datetime.combine(low, dt.time()), dt.datetime.combine(high, dt.time()), why)


def open_parquet(root: DataRoot, path: str, shown: str) -> pq.ParquetFile:
    try:
        # INT96 timestamps (old writers) read in ms: in ns a year-1 or year-9999 value would wrap around silently.
        parquet = pq.ParquetFile(root.fs.open_input_file(path), coerce_int96_timestamp_unit="ms")
        parquet.schema_arrow  # noqa: B018 (a footer that cannot be turned into a schema fails here)
    except (pa.ArrowException, OSError) as exc:
        raise InputDataError(f"not a readable Parquet file ({exc})", file=shown) from None
    return parquet


def _statistics_range(stats, num_rows: int) -> tuple[dt.datetime, dt.datetime] | None:
    """(min, max) interval_start of a row group from its footer statistics; None when they cannot vouch for every
    row (missing, no NULL count, NULLs present, or a value Python's datetime cannot hold)."""
    if stats is None or not stats.has_null_count or stats.null_count or not stats.has_min_max:
        return None
    try:
        low, high = _as_datetime(stats.min), _as_datetime(stats.max)
    except (ValueError, OverflowError, TypeError):
        return None
    return (low, high) if isinstance(low, dt.datetime) and isinstance(high, dt.datetime) else None


def _column_range(
    parquet: pq.ParquetFile, rg: int, offset: int, shown: str, bounds: StartBounds
) -> tuple[dt.datetime, dt.datetime]:
    """(min, max) interval_start of a row group read from its data; a NULL or implausible value is an InputDataError
    naming its row in the file (`offset`: the rows of the row groups before)."""
    try:
        starts = parquet.read_row_group(rg, columns=["interval_start"])["interval_start"]
    except (pa.ArrowException, OSError) as exc:
        raise InputDataError(f"cannot read Parquet data ({exc})", file=shown, column="interval_start") from None
    starts = pc.cast(starts, TIMESTAMP_TYPE, safe=False)
    outside = pc.invert(_in_range(starts, bounds.low, bounds.high))
    bad = pc.indices_nonzero(pc.fill_null(outside, True))
    if len(bad):
        position = bad[0].as_py()
        row = offset + position + 1
        if not starts[position].is_valid:
            raise InputDataError("interval_start is NULL", file=shown, column="interval_start", row=row)
        value = pc.cast(starts.slice(position, 1), pa.string())[0].as_py()
        last = (bounds.high - dt.timedelta(days=1)).date()
        raise InputDataError(
            f"interval_start {value} lies outside {bounds.low.date()} .. {last}, {bounds.why}",
            file=shown,
            column="interval_start",
            row=row,
        )
    bounds_of_group = pc.min_max(starts).as_py()
    return bounds_of_group["min"], bounds_of_group["max"]


def start_ranges(parquet: pq.ParquetFile, shown: str, key: str) -> list[tuple[dt.datetime, dt.datetime] | None]:
    """Per row group, (min, max) of interval_start (None: no rows), after proving no value is NULL or implausible
    (``plausible_starts``): from the footer statistics where they vouch for it, else from the column's data. A bad
    value is an InputDataError naming file, column and row, whatever statistics the writer kept."""
    bounds = plausible_starts(key)
    index = parquet.schema_arrow.get_field_index("interval_start")
    metadata = parquet.metadata
    ranges: list[tuple[dt.datetime, dt.datetime] | None] = []
    offset = 0
    for rg in range(metadata.num_row_groups):
        group = metadata.row_group(rg)
        found = None
        if group.num_rows:
            found = _statistics_range(group.column(index).statistics, group.num_rows)
            if found is None or found[0] < bounds.low or found[1] >= bounds.high:
                found = _column_range(parquet, rg, offset, shown, bounds)
        ranges.append(found)
        offset += group.num_rows
    return ranges


def present_columns(source: pq.ParquetFile | pa.Schema, columns: Sequence[ColumnSpec], shown: str) -> list[str]:
    """The wanted columns the file (or its schema) has; a required one missing or one of an unusable type is an
    InputDataError."""
    # ParquetFile.schema_arrow converts the footer's schema on every access: taken once.
    schema = source.schema_arrow if isinstance(source, pq.ParquetFile) else source
    present = []
    for spec in columns:
        index = schema.get_field_index(spec.name)
        if index < 0:
            if spec.name in schema.names:  # get_field_index is -1 for a name given twice too
                raise InputDataError("duplicate column: the file holds it more than once", file=shown, column=spec.name)
            if spec.required:
                raise InputDataError("required column is missing", file=shown, column=spec.name)
            continue
        actual = schema.field(index).type
        if not _compatible(actual, spec.type):
            raise InputDataError(f"has type {actual}, expected {spec.type}", file=shown, column=spec.name)
        present.append(spec.name)
    return present


@dataclass(frozen=True)
class FileFooter:
    """What a day's reader needs of a Parquet file before reading its rows, taken from its footer: its schema and,
    per row group, the interval_start (min, max) proven plausible (``start_ranges``; None: no rows). Kept for a run
    in its data root's cache, so the run's other days choose their files without opening this one."""

    schema: pa.Schema
    ranges: tuple[tuple[dt.datetime, dt.datetime] | None, ...]
    rows_per_group: tuple[int, ...]
    # The columns found per column list asked for (present_columns; keyed by ``columns_key``), so a day that does
    # not read the file checks it with one lookup; a list whose check fails is not kept (its error is raised again).
    present: dict[str, list[str]] = field(default_factory=dict, compare=False)

    def present_of(self, columns: Sequence[ColumnSpec], key: str, shown: str) -> list[str]:
        found = self.present.get(key)
        if found is None:
            found = self.present[key] = present_columns(self.schema, columns, shown)
        return found

    def days(self) -> list[dt.date]:
        """Every day some row group covers, from its interval_start (min, max)."""
        days: set[dt.date] = set()
        for found in self.ranges:
            if found is None:
                continue
            day, last = found[0].date(), found[1].date()
            while day <= last:
                days.add(day)
                day += dt.timedelta(days=1)
        return sorted(days)

    def describes(self, parquet: pq.ParquetFile) -> bool:
        """Whether an open file still has the row groups and schema this footer was taken from."""
        metadata = parquet.metadata
        groups = tuple(metadata.row_group(rg).num_rows for rg in range(metadata.num_row_groups))
        return groups == self.rows_per_group and parquet.schema_arrow.equals(self.schema)


def read_footer(
    root: DataRoot, parquet: pq.ParquetFile, key: str, shown: str, columns: Sequence[ColumnSpec]
) -> tuple[FileFooter, list[str]]:
    """An open file's FileFooter and the wanted columns it has. The columns are checked before interval_start's
    values, so a file lacking one of them is said to lack it (start_ranges needs interval_start)."""
    schema = parquet.schema_arrow
    present = present_columns(schema, columns, shown)
    if root.cache is not None:  # a month's files mostly share one schema: one object for them all
        schema = root.cache.shared(("schema", schema.to_string(show_schema_metadata=False)), schema)
    metadata = parquet.metadata
    footer = FileFooter(
        schema,
        tuple(start_ranges(parquet, shown, key)),
        tuple(metadata.row_group(rg).num_rows for rg in range(metadata.num_row_groups)),
        {columns_key(columns): present},
    )
    return footer, present


def columns_key(columns: Sequence[ColumnSpec]) -> str:
    """A column list as text, to look up what a file has of it (a str keeps its hash; a tuple of specs would hash
    every spec on every lookup); one object for every file's entry."""
    return sys.intern("|".join(f"{spec.name} {spec.type} {spec.required}" for spec in columns))


def surveyed_footer(
    root: DataRoot, info: pafs.FileInfo, columns: Sequence[ColumnSpec], key: str | None = None
) -> tuple[FileFooter, list[str], pq.ParquetFile | None]:
    """A listed file's FileFooter and the wanted columns it has: from the run's cache while the file keeps the size
    and time it had, else read from the file (then returned open too, so its rows are read without opening it
    again). A file that cannot be read is not cached: each day that lists it reads it again and fails the same.
    `key`: ``columns_key(columns)``, when the caller asks for many files."""
    shown = root.display(root.key_of(info.path))
    cached = root.cache.get(info) if root.cache is not None else None
    if cached is not None:
        return cached, cached.present_of(columns, key or columns_key(columns), shown), None
    parquet = open_parquet(root, info.path, shown)
    footer, present = read_footer(root, parquet, root.key_of(info.path), shown, columns)
    if root.cache is not None:
        root.cache.put(info, footer)
    return footer, present, parquet


def read_day_rows(root: DataRoot, prefix: str, columns: Sequence[ColumnSpec], day: dt.date) -> DayTable:
    """Rows of every Parquet file below prefix whose interval_start falls on day, as the canonical column types.

    Every listed file's footer is checked (columns, interval_start) on every day, from the run's cache where it
    holds the file unchanged; only files with a row group on the day are opened for their rows."""
    start = dt.datetime.combine(day, dt.time())
    end = start + dt.timedelta(days=1)
    schema = pa.schema([(c.name, c.type) for c in columns])
    pieces: list[pa.Table] = []
    files: list[str] = []
    paths: list[str] = []
    wanted = columns_key(columns)
    for info in root.list_files(prefix):
        found = _file_on_day(root, info, columns, wanted, (start, end))
        if found is None:
            continue
        parquet, row_groups, present = found
        shown = root.display(root.key_of(info.path))
        piece = _read_day_of_file(parquet, row_groups, present, columns, schema, (start, end), shown)
        if piece.num_rows:
            pieces.append(piece)
            files.append(shown)
            paths.append(info.path)
    table = pa.concat_tables(pieces) if pieces else schema.empty_table()
    return DayTable(table, files, paths, root, [p.num_rows for p in pieces], day)


def _file_on_day(
    root: DataRoot,
    info: pafs.FileInfo,
    columns: Sequence[ColumnSpec],
    wanted: str,
    day: tuple[dt.datetime, dt.datetime],
) -> tuple[pq.ParquetFile, list[int], list[str]] | None:
    """A listed file open for reading, its row groups that meet the day [start, end) and the wanted columns it has
    (`wanted`: their ``columns_key``); None when none does (then a file the run's cache knew is not opened)."""
    footer, present, parquet = surveyed_footer(root, info, columns, wanted)
    if not _groups_on(footer, *day):
        return None
    if parquet is None:
        key = root.key_of(info.path)
        parquet = open_parquet(root, info.path, root.display(key))
        if not footer.describes(parquet):  # changed since it was cached, though its size and time did not say so
            footer, present = read_footer(root, parquet, key, root.display(key), columns)
            if root.cache is not None:
                root.cache.put(info, footer)
    row_groups = _groups_on(footer, *day)
    return (parquet, row_groups, present) if row_groups else None


def _groups_on(footer: FileFooter, start: dt.datetime, end: dt.datetime) -> list[int]:
    """The row groups whose interval_start range meets [start, end)."""
    return [rg for rg, found in enumerate(footer.ranges) if found is not None and found[0] < end and found[1] >= start]


def _read_day_of_file(
    parquet: pq.ParquetFile,
    row_groups: list[int],
    present: list[str],
    columns: Sequence[ColumnSpec],
    schema: pa.Schema,
    day: tuple[dt.datetime, dt.datetime],
    shown: str,
) -> pa.Table:
    """The day's rows of some row groups of one file, as `schema`; text that is not UTF-8 is an InputDataError."""
    try:
        table = parquet.read_row_groups(row_groups, columns=present)
    except (pa.ArrowException, OSError) as exc:
        raise InputDataError(f"cannot read Parquet data ({exc})", file=shown) from None
    # Other units, a time zone (kept as UTC wall time) or dates are normalised to koku's naive ms.
    starts = pc.cast(table["interval_start"], TIMESTAMP_TYPE, safe=False)
    in_day = _in_range(starts, *day)
    table = table.set_column(table.schema.get_field_index("interval_start"), "interval_start", starts).filter(in_day)
    arrays = []
    for spec in columns:
        if spec.name not in present:
            arrays.append(pa.nulls(table.num_rows, spec.type))
            continue
        column = table[spec.name]
        if pa.types.is_dictionary(column.type):
            column = pc.cast(column, column.type.value_type)
        column = pc.cast(column, spec.type) if column.type != spec.type else column
        if spec.type == STRING:
            bad = _first_invalid_utf8(column)
            if bad is not None:
                row = _file_row(parquet, row_groups, pc.indices_nonzero(in_day)[bad].as_py())
                raise InputDataError("text is not valid UTF-8", file=shown, column=spec.name, row=row)
        arrays.append(column)
    return pa.Table.from_arrays(arrays, schema=schema)


def _first_invalid_utf8(column: pa.ChunkedArray) -> int | None:
    """Position of the first value that is not UTF-8 (Parquet can mark any bytes as text; Arrow checks only when
    asked, and Python fails on it far from the file), or None. A bisection of full validations."""
    offset = 0
    for chunk in column.chunks:
        if not _valid_utf8(chunk):
            low, high = 0, len(chunk)  # the first bad value lies in [low, high)
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if _valid_utf8(chunk.slice(low, middle - low)) else (low, middle)
            return offset + low
        offset += len(chunk)
    return None


def _valid_utf8(values: pa.Array) -> bool:
    try:
        values.validate(full=True)
    except pa.ArrowInvalid:
        return False
    return True


def _file_row(parquet: pq.ParquetFile, row_groups: list[int], position: int) -> int:
    """The 1-based row in the file of row `position` of the row groups `row_groups` read together."""
    starts = np.cumsum([0] + [parquet.metadata.row_group(rg).num_rows for rg in range(parquet.metadata.num_row_groups)])
    for rg in row_groups:
        size = int(starts[rg + 1] - starts[rg])
        if position < size:
            return int(starts[rg]) + position + 1
        position -= size
    raise IndexError(position)


def _in_range(starts: pa.ChunkedArray, start: dt.datetime, end: dt.datetime) -> pa.ChunkedArray:
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
        if rows.root is None:  # a table built in memory: no file to re-read
            break
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
            positions = pc.indices_nonzero(_in_range(starts, start, start + dt.timedelta(days=1)))
            return InputDataError(reason, file=shown, column=column, row=positions[index - offset].as_py() + 1)
        offset += count
    return InputDataError(reason, file=rows.files[0] if rows.files else None, column=column)


def _naive_utc(value):
    """A footer statistic as koku's naive UTC wall time (a time-zone-aware column's values are converted to UTC)."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def _as_datetime(value) -> dt.datetime:
    """A footer statistic (datetime, aware datetime or date) as a naive UTC datetime."""
    value = _naive_utc(value)
    return value if isinstance(value, dt.datetime) else dt.datetime.combine(value, dt.time())


def file_days(root: DataRoot, path: str) -> list[dt.date]:
    """Days a Parquet file covers, from the interval_start min/max of each row group's footer (data pages are read
    only where a writer kept no statistics).

    A file that cannot tell is an InputDataError naming it, never a library traceback or a long loop: unreadable,
    no interval_start, one typed as anything but a timestamp or date, or a NULL or implausible value (named by its
    row; ``plausible_starts``), so the days listed lie within its folder's month and the months either side.
    """
    key = root.key_of(path)
    shown = root.display(key)
    footer, _ = read_footer(root, open_parquet(root, path, shown), key, shown, INTERVAL_START_ONLY)
    return footer.days()


INTERVAL_START_ONLY = (ColumnSpec("interval_start", TIMESTAMP_TYPE),)


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
    unreadable: list[str] = []  # keys of files whose days are unknown
    say = warn if warn is not None else (lambda message: None)
    for report_type in report_types:
        prefix = _usage_prefix(account, source, report_type)
        for info in dataset_files(root, prefix, stray=lambda key, why: say(f"{root.display(key)}: not read ({why})")):
            shown = root.display(root.key_of(info.path))
            try:
                # Through the run's cache (when the root has one): the run's days then choose these files unopened.
                covered = surveyed_footer(root, info, INTERVAL_START_ONLY)[0].days()
            except InputDataError as exc:
                say(
                    f"{exc}; which days it holds is unknown, so the {report_type} days of its month fail until it "
                    "is fixed"
                )
                unreadable.append(root.key_of(info.path))
                continue
            outside = days_outside_folder(root.key_of(info.path), covered)
            if outside:
                say(
                    f"{shown}: rows dated {outside[0]} .. {outside[-1]} lie outside "
                    "the month of their folder and are not summarised (koku reads a month's rows from its own folder)"
                )
            days.update(d for d in covered if d not in outside)
    for key in unreadable:
        days.update(folder_month_days(key, days))
    return sorted(days)


def months_with_usage_files(
    root: DataRoot, account: str, source: str, report_types: tuple[str, ...] = (POD_USAGE,)
) -> set[tuple[int, int]]:
    """(year, month) of every month folder holding a file of the source (pod_daily by default), whatever rows the
    files hold."""
    months = set()
    for report_type in report_types:
        for info in dataset_files(root, _usage_prefix(account, source, report_type)):
            month = folder_month(root.key_of(info.path))
            if month is not None:
                months.add(month)
    return months
