"""Pandera models of every table the Dagster assets pass along, and one function that runs them (pure: no dagster).

Each model states types, nullability, non-negative seconds/bytes, the allowed data_source values and that
label cells are JSON objects. ``validate_frame`` runs a model lazily (every failure, not the first) and
returns a report instead of raising, so the caller decides what a failure means (the Dagster assets turn
it into a failed blocking asset check and write nothing for the partition).
``validate_rows`` does the same for a table read from koku's Parquet and names the file, column and row of the
first bad cell; ``input_error_outcome`` turns input that cannot be read at all into such a failed check.
"""

import functools
from typing import Any

import numpy as np
import pandas as pd
import pandera.pandas as pa
import pyarrow as pa_arrow
import pyarrow.compute as pc
from pandera.api.pandas.model_config import BaseConfig
from pandera.errors import SchemaError, SchemaErrors
from pandera.typing import Series

from ocp_assets.core.errors import InputDataError, OcpAssetsError
from ocp_assets.core.labels import MalformedLabelJSON, parse_label_object
from ocp_assets.core.outcomes import CheckOutcome
from ocp_assets.core.reader import DayTable, locate_row, locate_value

ALLOWED_DATA_SOURCES = ("Pod", "Storage")
MAX_FAILURE_CASES = 20


def label_json_mask(series: pd.Series) -> pd.Series:
    """True where a label cell is NULL, blank or a JSON object PostgreSQL's jsonb accepts (what koku's
    filter_json_by_keys accepts).

    Each distinct text is parsed once, so a column of a million cells with a few hundred label sets is cheap.
    """
    bad = set()
    for text in pd.unique(series.dropna()):
        if not isinstance(text, str):
            bad.add(text)
            continue
        if not text.strip():
            continue
        try:
            parse_label_object(text)  # what koku's ::jsonb cast refuses: bad JSON, NaN, \u0000, lone surrogates
        except MalformedLabelJSON:
            bad.add(text)
    if not bad:
        return pd.Series(True, index=series.index)
    return ~series.isin(bad)


def _labels(series: pd.Series) -> pd.Series:
    return label_json_mask(series)


class _ModelConfig(BaseConfig):  # pandera reads only the options set here (vars()), so the base adds none
    strict = False  # extra columns are carried along (e.g. csi_volume_handle) and not judged here
    coerce = False


class InputModel(pa.DataFrameModel):
    """Every input model's base (the summary's and the cost files'): extra columns allowed, types not coerced."""

    Config = _ModelConfig


# Typed as Any so that ``**NON_NEGATIVE`` matches each of pa.Field's keyword types.
NON_NEGATIVE: dict[str, Any] = {"ge": 0}


# koku's varchar(253) for namespace, node, resource_id and volume names
NAME: dict[str, Any] = {"str_length": {"max_value": 253}}


class RawPodUsage(InputModel):
    """pod_daily rows of one cluster-day as the reader returns them."""

    namespace: Series[str] = pa.Field(nullable=False, **NAME)
    node: Series[str] = pa.Field(nullable=True, **NAME)
    pod: Series[str] = pa.Field(nullable=False)
    pod_labels: Series[str] = pa.Field(nullable=True)
    resource_id: Series[str] = pa.Field(nullable=True, **NAME)
    interval_start: Series[pd.Timestamp] = pa.Field(nullable=False)
    pod_usage_cpu_core_seconds: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    pod_request_cpu_core_seconds: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    pod_limit_cpu_core_seconds: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    pod_usage_memory_byte_seconds: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    pod_request_memory_byte_seconds: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    pod_limit_memory_byte_seconds: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    pod_effective_usage_cpu_core_seconds: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    pod_effective_usage_memory_byte_seconds: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    node_capacity_cpu_cores: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    node_capacity_memory_bytes: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    node_role: Series[str] = pa.Field(nullable=True)

    @pa.check("pod_labels", name="label_json_object")
    def _pod_labels(cls, series: pd.Series) -> pd.Series:
        return _labels(series)


class NodeCapacity(InputModel):
    """Per node of the day: capacity seconds summed over hours (max per hour first)."""

    node: Series[str] = pa.Field(nullable=True, unique=True)
    node_capacity_cpu_core_seconds: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    node_capacity_memory_byte_seconds: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)


class RawStorageUsage(InputModel):
    """storage_daily rows of one cluster-day."""

    namespace: Series[str] = pa.Field(nullable=False, **NAME)
    pod: Series[str] = pa.Field(nullable=True)
    persistentvolumeclaim: Series[str] = pa.Field(nullable=True, **NAME)
    persistentvolume: Series[str] = pa.Field(nullable=True, **NAME)
    storageclass: Series[str] = pa.Field(nullable=True, **NAME)
    persistentvolume_labels: Series[str] = pa.Field(nullable=True)
    persistentvolumeclaim_labels: Series[str] = pa.Field(nullable=True)
    interval_start: Series[pd.Timestamp] = pa.Field(nullable=False)
    persistentvolumeclaim_capacity_bytes: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    persistentvolumeclaim_capacity_byte_seconds: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    volume_request_storage_byte_seconds: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    persistentvolumeclaim_usage_byte_seconds: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)

    @pa.check("persistentvolume_labels", "persistentvolumeclaim_labels", name="label_json_object")
    def _volume_labels(cls, series: pd.Series) -> pd.Series:
        return _labels(series)


class NodeLabelRows(InputModel):
    """node_labels rows (daily or hourly) of the day, before deduplication."""

    node: Series[str] = pa.Field(nullable=True)
    node_labels: Series[str] = pa.Field(nullable=True)
    interval_start: Series[pd.Timestamp] = pa.Field(nullable=False)

    @pa.check("node_labels", name="label_json_object")
    def _node_labels(cls, series: pd.Series) -> pd.Series:
        return _labels(series)


class NamespaceLabelRows(InputModel):
    """namespace_labels rows (daily or hourly) of the day, before deduplication."""

    namespace: Series[str] = pa.Field(nullable=True)
    namespace_labels: Series[str] = pa.Field(nullable=True)
    interval_start: Series[pd.Timestamp] = pa.Field(nullable=False)

    @pa.check("namespace_labels", name="label_json_object")
    def _namespace_labels(cls, series: pd.Series) -> pd.Series:
        return _labels(series)


class NodeLabels(InputModel):
    """One enabled-key label map per node of the day (D2(b)), with koku's node-role inputs."""

    node: Series[str] = pa.Field(nullable=False, unique=True)
    node_labels: Series[str] = pa.Field(nullable=False)
    architecture: Series[str] = pa.Field(nullable=True)

    @pa.check("node_labels", name="label_json_object")
    def _node_labels(cls, series: pd.Series) -> pd.Series:
        return _labels(series)


class NamespaceLabels(InputModel):
    """One enabled-key label map per namespace of the day (D2(b))."""

    namespace: Series[str] = pa.Field(nullable=False, unique=True)
    namespace_labels: Series[str] = pa.Field(nullable=False)

    @pa.check("namespace_labels", name="label_json_object")
    def _namespace_labels(cls, series: pd.Series) -> pd.Series:
        return _labels(series)


class PodUsageLabelled(RawPodUsage):
    """Pod rows with node != '' carrying the merged node < namespace < pod label map."""

    node: Series[str] = pa.Field(nullable=False, str_length={"min_value": 1})
    pod_labels: Series[str] = pa.Field(nullable=False)


class StorageUsageLabelled(InputModel):
    """Storage rows fanned out per volume node, carrying node < namespace < PV < PVC labels."""

    namespace: Series[str] = pa.Field(nullable=False)
    node: Series[str] = pa.Field(nullable=True)
    persistentvolumeclaim: Series[str] = pa.Field(nullable=True)
    persistentvolume: Series[str] = pa.Field(nullable=True)
    volume_labels: Series[str] = pa.Field(nullable=False)
    persistentvolumeclaim_capacity_bytes: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    persistentvolumeclaim_capacity_byte_seconds: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    volume_request_storage_byte_seconds: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    persistentvolumeclaim_usage_byte_seconds: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    node_count: Series[float] = pa.Field(nullable=True, ge=1, coerce=True)

    @pa.check("volume_labels", name="label_json_object")
    def _volume_labels(cls, series: pd.Series) -> pd.Series:
        return _labels(series)


class NodeInventory(InputModel):
    """reporting_ocp_nodes candidates of the day."""

    node: Series[str] = pa.Field(nullable=False)
    resource_id: Series[str] = pa.Field(nullable=True)
    node_capacity_cpu_cores: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    node_role: Series[str] = pa.Field(nullable=True)
    architecture: Series[str] = pa.Field(nullable=True)


def _whole_or_null(series: pd.Series) -> pd.Series:
    return series.isna() | (series == series.round())


class RawGpuUsage(InputModel):
    """Hourly gpu_usage rows of one cluster-day; lengths are those of koku's reporting_ocp_gpu_summary_p columns."""

    namespace: Series[str] = pa.Field(nullable=True, **NAME)
    node: Series[str] = pa.Field(nullable=True, **NAME)
    gpu_uuid: Series[str] = pa.Field(nullable=True, str_length={"max_value": 128})
    gpu_model_name: Series[str] = pa.Field(nullable=True, str_length={"max_value": 128})
    gpu_vendor_name: Series[str] = pa.Field(nullable=True, str_length={"max_value": 128})
    interval_start: Series[pd.Timestamp] = pa.Field(nullable=False)
    gpu_memory_capacity_mib: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    mig_instance_id: Series[str] = pa.Field(nullable=True, str_length={"max_value": 128})
    mig_profile: Series[str] = pa.Field(nullable=True, str_length={"max_value": 64})
    mig_strategy: Series[str] = pa.Field(nullable=True, str_length={"max_value": 10})
    # koku's integer columns: whole numbers that fit PostgreSQL's integer
    mig_slice_count: Series[float] = pa.Field(nullable=True, ge=0, le=2**31 - 1)
    gpu_max_slices: Series[float] = pa.Field(nullable=True, ge=0, le=2**31 - 1)
    mig_memory_capacity_mib: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)

    @pa.check("mig_slice_count", "gpu_max_slices", name="whole_number")
    def _whole(cls, series: pd.Series) -> pd.Series:
        return _whole_or_null(series)


_POD_MEASURES = [
    "pod_usage_cpu_core_hours",
    "pod_request_cpu_core_hours",
    "pod_effective_usage_cpu_core_hours",
    "pod_limit_cpu_core_hours",
    "pod_usage_memory_gigabyte_hours",
    "pod_request_memory_gigabyte_hours",
    "pod_effective_usage_memory_gigabyte_hours",
    "pod_limit_memory_gigabyte_hours",
]


class SummaryRows(InputModel):
    """Rows of reporting_ocpusagelineitem_daily_summary as computed, before they are written."""

    report_period_id: Series[int] = pa.Field(nullable=False, coerce=True)
    cost_category_id: Series[float] = pa.Field(nullable=True, coerce=True)
    cluster_id: Series[str] = pa.Field(nullable=False, str_length={"min_value": 1, "max_value": 50})
    cluster_alias: Series[str] = pa.Field(nullable=True)
    data_source: Series[str] = pa.Field(nullable=False, isin=list(ALLOWED_DATA_SOURCES))
    usage_start: Series[pd.Timestamp] = pa.Field(nullable=False)
    usage_end: Series[pd.Timestamp] = pa.Field(nullable=False)
    namespace: Series[str] = pa.Field(nullable=True)
    node: Series[str] = pa.Field(nullable=True)
    pod_labels: Series[str] = pa.Field(nullable=True)
    volume_labels: Series[str] = pa.Field(nullable=True)
    all_labels: Series[str] = pa.Field(nullable=False)
    source_uuid: Series[str] = pa.Field(nullable=False)
    # Pod measures may be negative on unallocated rows (capacity minus pod sums, not clamped: D2).
    node_capacity_cpu_cores: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    node_capacity_cpu_core_hours: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    node_capacity_memory_gigabytes: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    node_capacity_memory_gigabyte_hours: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    cluster_capacity_cpu_core_hours: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    cluster_capacity_memory_gigabyte_hours: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    persistentvolumeclaim_capacity_gigabyte: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    persistentvolumeclaim_capacity_gigabyte_months: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    volume_request_storage_gigabyte_months: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)
    persistentvolumeclaim_usage_gigabyte_months: Series[float] = pa.Field(nullable=True, **NON_NEGATIVE)

    @pa.check("pod_labels", "volume_labels", "all_labels", name="label_json_object")
    def _labels(cls, series: pd.Series) -> pd.Series:
        return _labels(series)

    @pa.dataframe_check(name="usage_start_equals_usage_end")
    def _one_day(cls, df: pd.DataFrame) -> pd.Series:
        return df["usage_start"] == df["usage_end"]

    @pa.dataframe_check(name="pod_rows_have_no_storage_measures")
    def _pod_rows(cls, df: pd.DataFrame) -> pd.Series:
        is_pod = df["data_source"] == "Pod"
        return ~is_pod | df["persistentvolumeclaim_capacity_gigabyte_months"].isna()

    @pa.dataframe_check(name="storage_rows_have_no_pod_measures")
    def _storage_rows(cls, df: pd.DataFrame) -> pd.Series:
        is_storage = df["data_source"] == "Storage"
        return ~is_storage | df[_POD_MEASURES].isna().all(axis=1)


def to_frame(table: pa_arrow.Table) -> pd.DataFrame:
    """Arrow to pandas the way the models expect: timestamps and dates as datetime64[ns], strings as objects."""
    return table.to_pandas(date_as_object=False, coerce_temporal_nanoseconds=True)


ARROW_STRING_TYPES = (pa_arrow.string(), pa_arrow.large_string())


@functools.cache
def arrow_schema(model: type[pa.DataFrameModel], arrow_strings: frozenset[str]) -> pa.DataFrameSchema:
    """The model's schema for a frame converted from an Arrow table whose columns ``arrow_strings`` are strings.

    Arrow's string columns convert to Python str or None, so pandera's element-by-element str check (with a
    failure-case table and message built even when it passes) cannot fail on them and is dropped; every other
    check of the model (nullability, uniqueness, lengths, allowed values, JSON labels, frame checks) runs.
    """
    schema = model.to_schema()
    unchecked = {
        name: {"dtype": None}
        for name, column in schema.columns.items()
        if name in arrow_strings and str(column.dtype) == "str" and not column.coerce
    }
    return schema.update_columns(unchecked) if unchecked else schema


def validate_frame(model: type[pa.DataFrameModel], df: pd.DataFrame | pa_arrow.Table) -> CheckOutcome:
    """Run model on df with lazy=True; never raises for invalid data.

    An Arrow table is converted here and validated in place (the frame is ours), with the str type checks that
    its Arrow schema already guarantees left out (``arrow_schema``): the same failures, found faster.
    """
    inplace = isinstance(df, pa_arrow.Table)
    arrow_cases = arrow_failure_cases(model, df) if inplace else None
    if inplace:
        schema = arrow_schema(model, frozenset(f.name for f in df.schema if f.type in ARROW_STRING_TYPES))
        df = to_frame(df)
    else:
        schema = model.to_schema()
    pandera_cases = None
    try:
        schema.validate(df, lazy=True, inplace=inplace)
    except SchemaErrors as exc:
        pandera_cases = exc.failure_cases
    except SchemaError as exc:  # a failure pandera cannot collect lazily
        cases = pd.DataFrame(
            [
                {
                    "schema_context": "DataFrameSchema",
                    "column": None,
                    "check": str(exc.check),
                    "failure_case": str(exc),
                    "index": None,
                }
            ]
        )
        return CheckOutcome(False, f"{model.__name__}: {exc}", failure_cases=cases, rows=len(df), failures=1)
    found = [c for c in (arrow_cases, pandera_cases) if c is not None]
    if found:
        cases = pd.concat(found, ignore_index=True)
        return CheckOutcome(
            False,
            _summary(model, cases),
            failure_cases=cases.head(MAX_FAILURE_CASES).reset_index(drop=True),
            rows=len(df),
            failures=len(cases),
        )
    return CheckOutcome(True, f"{model.__name__}: {len(df)} rows valid", rows=len(df))


# koku's summary columns are numeric(33,15): magnitudes below 10**18. A single input value too large for them is
# named here by file, column and row; without the bound PostgreSQL rejects the cluster-day's rows with "numeric
# field overflow" and no location. A sum of many values each within the bound can still overflow: that day fails its
# rows_in_postgresql check in one line (no retry, previous rows kept), without a location.
NUMERIC_LIMIT = 1e18
# What an input measure is divided by on its way into a summary column (contract 3.5-3.6: seconds to hours, bytes
# to GiB); the smallest divisor of a unit bounds the inputs that are sure to fit. Daily byte-seconds of a large
# node exceed 1e18 legitimately, so one bound for every column would refuse real data.
_SMALLEST_DIVISOR_BY_SUFFIX = (("_byte_seconds", 3600 * 2**30), ("_core_seconds", 3600), ("_bytes", 2**30))


def storable_limit(column: str) -> float:
    """The magnitude from which a value of `column` can no longer be stored in koku's numeric(33,15) columns."""
    for suffix, divisor in _SMALLEST_DIVISOR_BY_SUFFIX:
        if column.endswith(suffix):
            return NUMERIC_LIMIT * divisor
    return NUMERIC_LIMIT


def arrow_failure_cases(model: type[pa.DataFrameModel], table: pa_arrow.Table) -> pd.DataFrame | None:
    """What pandas cannot see once the table is converted: NaN and ±inf in a measure (pandas takes NaN for a
    missing value, and a bound check lets inf through; PostgreSQL would store NaN or refuse inf), magnitudes
    numeric(33,15) cannot hold, and NUL
    characters in text (PostgreSQL's text and jsonb cannot hold them). One failure case per bad cell, with its row."""
    columns = model.to_schema().columns
    cases = []
    for name in columns:
        if name not in table.column_names:
            continue
        column = table[name]
        if pa_arrow.types.is_floating(column.type):
            bad, check = pc.invert(pc.fill_null(pc.is_finite(column), True)), "finite (no NaN or infinity)"
            if not pc.any(bad).as_py():
                limit = storable_limit(name)
                bad = pc.fill_null(pc.greater_equal(pc.abs(column), limit), False)
                check = f"below {limit:.3g} (larger cannot be stored in koku's numeric(33,15) columns)"
        elif pa_arrow.types.is_string(column.type) or pa_arrow.types.is_large_string(column.type):
            bad, check = pc.fill_null(pc.match_substring(column, "\x00"), False), "no NUL character"
        else:
            continue
        rows = pc.indices_nonzero(bad).to_pylist()
        if rows:
            values = pc.take(column, pa_arrow.array(rows[:MAX_FAILURE_CASES])).to_pylist()
            cases += [
                {"schema_context": "Column", "column": name, "check": check, "failure_case": value, "index": row}
                for value, row in zip(values, rows)
            ]
    return pd.DataFrame(cases) if cases else None


def _summary(model: type[pa.DataFrameModel], cases: pd.DataFrame) -> str:
    parts = []
    grouped = cases.fillna({"column": "<table>"}).groupby(["column", "check"], sort=True, dropna=False).size()
    for (column, check), count in zip(grouped.index, grouped.to_numpy()):
        parts.append(f"{column}: {check} ({count} failing)")
    return f"{model.__name__}: {len(cases)} failure case(s): " + "; ".join(parts)


def failure_cases_markdown(report: CheckOutcome) -> str:
    """The failure cases as a markdown table (for asset-check metadata)."""
    if report.failure_cases is None or report.failure_cases.empty:
        return ""
    frame = report.failure_cases.copy()
    for column in frame.columns:
        frame[column] = frame[column].map(lambda v: "" if v is None else str(v)[:120])
    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * len(frame.columns)
    lines = [
        "| " + " | ".join(s.replace("|", "\\|").replace("\n", " ") for s in row) + " |"
        for row in frame.itertuples(index=False)
    ]
    return "\n".join([header, rule, *lines])


# ------------------------------------------------------------------ inputs read from koku's Parquet
# pandera's check names as a person reads them, for the error that names a bad cell's file and row.
READABLE_CHECKS = {
    "label_json_object": "label text is not a JSON object",
    "greater_than_or_equal_to(0)": "negative value",
    "not_nullable": "missing value (NULL)",
    "str_length(None, 253)": "longer than koku's 253 characters",
    "str_length(None, 128)": "longer than koku's 128 characters",
    "str_length(None, 64)": "longer than koku's 64 characters",
    "str_length(None, 10)": "longer than koku's 10 characters",
    "whole_number": "not a whole number",
}


def input_error_outcome(exc: OcpAssetsError, rows: int = 0) -> CheckOutcome:
    """Input that cannot even be read, as a failed check naming file, column and row."""
    cases = pd.DataFrame(
        [
            {
                "schema_context": type(exc).__name__,
                "column": getattr(exc, "column", None),
                "check": getattr(exc, "reason", str(exc)),
                "failure_case": getattr(exc, "file", None),
                "index": getattr(exc, "row", None),
            }
        ]
    )
    metadata = {k: v for k in ("file", "column", "row") if (v := getattr(exc, k, None)) is not None}
    return CheckOutcome(False, str(exc), metadata, failure_cases=cases, rows=rows, failures=1)


def validate_rows(model: type[pa.DataFrameModel], rows: DayTable) -> CheckOutcome:
    """Validate a table read from koku's Parquet; the first bad text cell is located back to its file and row."""
    report = validate_frame(model, rows.table)
    if report.passed or not rows.files:
        return report
    cases = report.failure_cases if report.failure_cases is not None else pd.DataFrame()
    for case in cases.itertuples(index=False):
        located = _locate_case(rows, case)
        if located is None:
            continue
        report.description += f" (first at {located})"
        report.metadata.update(
            {"file": located.file, "column": located.column, "row": located.row, "reason": located.reason}
        )
        return report
    if len(rows.files) == 1:
        report.description += f" (in {rows.files[0]})"
        report.metadata["file"] = rows.files[0]
    else:
        report.description += f" (in the day's rows of {len(rows.files)} files: {', '.join(rows.files)})"
        report.metadata["files"] = list(rows.files)
    return report


def _locate_case(rows: DayTable, case) -> InputDataError | None:
    """The file, column and row of one failure case: by its text value, else by its row index; None when neither."""
    value, column, index = case.failure_case, case.column, case.index
    reason = READABLE_CHECKS.get(str(case.check), str(case.check))
    if str(case.check) != "label_json_object":
        shown = repr(value)
        reason += f": {shown[:80]}…" if len(shown) > 80 else f": {shown}"
    if (
        isinstance(value, str)
        and column in rows.table.column_names
        and pa_arrow.types.is_string(rows.table.schema.field(column).type)
    ):
        return locate_value(rows, column, value, reason)
    if isinstance(index, (int, np.integer)) and 0 <= index < len(rows):
        return locate_row(rows, int(index), column, reason)
    return None
