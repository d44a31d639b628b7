"""koku's GPU cost files (contract 8.6, 8.8): ``monthly_cost_gpu.sql`` and ``distribute_unallocated_gpu_cost.sql``,
and when koku runs the distribution.

``monthly_cost_gpu`` takes the call's parameters, the month's ``gpu_usage`` daily rows
(``inputs.read_gpu_usage_daily``), its hourly ``node_labels`` rows (``inputs.read_node_labels_raw``) and the
cost-category patterns (``inputs.read_cost_categories``); ``distribute_unallocated_gpu_cost`` the month's
``gpu_usage`` daily rows and the summary's 'GPU unallocated' rows (``inputs.read_gpu_unallocated_rows``). Both
return the rows koku's file inserts (C3). ``gpu_distribution_run`` decides whether and for which month koku runs the
distribution after a piece (8.8, C10).

The arithmetic follows the SQL's types: costs are float8 products (C8) whose rate factor is a numeric quotient of the
rate rounded to DECIMAL(24,9); the negation rows of the distribution are exact numeric. ``max`` follows SQL (NULLs
ignored, text by code point). Each koku behaviour kept on purpose (C7, 8.9) is marked where it happens.
"""

import datetime as dt
import math
import re
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, localcontext

import pyarrow as pa
import pyarrow.compute as pc

from ocp_assets.core.costs.params import DECIMAL_15, CallParams, base_params
from ocp_assets.core.costs.rows import NUMERIC_33_15, WHERE_AND_WHEN, cost_schema
from ocp_assets.core.errors import ConfigurationError, InputDataError
from ocp_assets.core.labels import MalformedLabelJSON, jsonb_text, parse_label_object
from ocp_assets.core.layout import month_end
from ocp_assets.core.summary import cost_category_ids

GPU_DATA_SOURCE = "GPU"
UNALLOCATED_NAMESPACE = "GPU unallocated"
TAG_COST_TYPE = "Tag"
GPU_DISTRIBUTED = "gpu_distributed"
# koku selects GPU nodes with a LIKE on the label text as its post-processor writes it (json.dumps: ": "); each
# "_" of the pattern matches any one character, as in koku.
GPU_PRESENT_LIKE = '%"nvidia_com_gpu_present": "True"%'
COUNT_LABEL = "nvidia_com_gpu_count"
PRODUCT_LABEL = "nvidia_com_gpu_product"
STRATEGY_LABEL = "nvidia_com_mig_strategy"
SECONDS_PER_DAY = 86400.0
SECONDS_PER_HOUR = 3600.0
HOURS_PER_DAY = 24
RATE_SCALE = Decimal("1e-9")  # CAST(rate AS decimal(24,9))
RATE_LIMIT = Decimal("1e15")  # decimal(24,9) holds 15 digits before the point
NUMERIC_LIMIT = Decimal("1e18")  # numeric(33,15) holds 18
NUMERIC_DIGITS = 40  # enough for any numeric(33,15) value, exactly
_NOT_ALPHANUMERIC = re.compile("[^a-zA-Z0-9]+")
# What PostgreSQL's numeric input reads in every version koku runs: a plain decimal with optional exponent (its NaN
# and Infinity are refused here: NaN would give a NaN cost row, Infinity fails the cast).
_PLAIN_NUMBER = re.compile(r"[ \t\n\r\v\f]*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?[ \t\n\r\v\f]*")

GPU_COST_SCHEMA = cost_schema(
    *WHERE_AND_WHEN, "resource_id", "all_labels", "source_uuid", "cost_model_rate_type", "cost_model_gpu_cost",
    "monthly_cost_type", "cost_category_id",
)  # fmt: skip
# distributed_cost is what koku stores: numeric(33,15), from a float8 share or the exact negation of a stored cost.
DISTRIBUTED_COST_TYPE = NUMERIC_33_15
DISTRIBUTED_SCHEMA = cost_schema(*WHERE_AND_WHEN, "source_uuid", "cost_model_rate_type", "distributed_cost")
UNALLOCATED_SCHEMA = pa.schema(
    [
        ("report_period_id", pa.int64()),
        ("cluster_id", pa.string()),
        ("cluster_alias", pa.string()),
        ("data_source", pa.string()),
        ("usage_start", pa.date32()),
        ("namespace", pa.string()),
        ("node", pa.string()),
        ("gpu_model", pa.string()),  # all_labels->>'gpu-model'
        ("source_uuid", pa.string()),
        ("cost_model_rate_type", pa.string()),
        ("cost_model_gpu_cost", DISTRIBUTED_COST_TYPE),
    ]
)


# ------------------------------------------------------------------------------------------------ values as koku
def float8_text(value: float) -> str:
    """PostgreSQL's ``float8::varchar``: the shortest digits strictly inside the value's rounding interval (ryu, as
    PostgreSQL 12+ prints; Python's repr also takes a digit string on the interval's edge), fixed notation for
    decimal exponents -4..14, else ``d.ddde+XX``."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    if value == 0:
        return "-0" if math.copysign(1.0, value) < 0 else "0"
    number = _shortest_decimal(value).normalize()
    sign, digits, exponent = number.as_tuple()
    if not isinstance(exponent, int):  # 'n', 'N', 'F' (NaN, sNaN, infinity): returned above
        raise ValueError(f"float8_text: {value!r} is not finite")
    leading = len(digits) - 1 + exponent
    prefix = "-" if sign else ""
    if -4 <= leading < 15:
        return prefix + format(abs(number), "f")
    text = "".join(map(str, digits))
    mantissa = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return f"{prefix}{mantissa}e{'-' if leading < 0 else '+'}{abs(leading):02d}"


def _shortest_decimal(value: float) -> Decimal:
    exact = Decimal(value)
    lower, upper = math.nextafter(value, -math.inf), math.nextafter(value, math.inf)
    below = (exact - Decimal(lower)) / 2 if math.isfinite(lower) else (Decimal(upper) - exact) / 2
    above = (Decimal(upper) - exact) / 2 if math.isfinite(upper) else below
    for precision in range(1, 18):
        candidate = Decimal(format(value, f".{precision - 1}e"))
        if -below < candidate - exact < above:
            return candidate
    return Decimal(format(value, ".16e"))


def float8_to_numeric(value: float | None) -> Decimal | None:
    """A float8 stored in numeric(33,15): PostgreSQL keeps 15 significant digits (``%.15g``), then the scale."""
    if value is None:
        return None
    number = Decimal(format(value, ".15g"))
    if not number.is_finite() or number.copy_abs() >= NUMERIC_LIMIT:
        raise InputDataError(f"a distributed GPU cost of {value} overflows koku's numeric(33,15) column")
    with localcontext(prec=NUMERIC_DIGITS):
        return number.quantize(DECIMAL_15, rounding=ROUND_HALF_UP)


def label_text(labels: dict, key: str) -> str | None:
    """``labels->>key``: a string as it is, JSON null or a missing key as NULL, anything else as its jsonb text."""
    value = labels.get(key)
    if value is None or isinstance(value, str):
        return value
    return jsonb_text(value)


def mig_strategy(labels: dict) -> str | None:
    """``LOWER(TRIM(labels->>'nvidia_com_mig_strategy'))``; TRIM removes spaces only."""
    text = label_text(labels, STRATEGY_LABEL)
    return None if text is None else text.strip(" ").lower()


def gpu_count(labels: dict) -> Decimal | None:
    """``CAST(TRIM(labels->>'nvidia_com_gpu_count') AS DECIMAL(33,15))``; ValueError where koku's cast fails (or
    would read NaN)."""
    text = label_text(labels, COUNT_LABEL)
    if text is None:
        return None
    if not _PLAIN_NUMBER.fullmatch(text):
        raise ValueError(f"{COUNT_LABEL} {text[:40]!r} is not a number (koku casts it to DECIMAL(33,15))")
    with localcontext(prec=NUMERIC_DIGITS):
        count = Decimal(text.strip(" \t\n\r\v\f"))
        count = count.quantize(DECIMAL_15, rounding=ROUND_HALF_UP) if count.copy_abs() < NUMERIC_LIMIT else count
    if count.copy_abs() >= NUMERIC_LIMIT:
        raise ValueError(f"{COUNT_LABEL} {text[:40]!r} overflows koku's DECIMAL(33,15)")
    return count


def count_problems(texts: Sequence[str | None]) -> list[str | None]:
    """Per node label cell: why koku's unallocated GPU rows cannot use it, or None. Only cells koku reads count: the
    GPU-present filter matched and the MIG strategy's formula casts the GPU count (malformed JSON is the label
    check's to report)."""
    present = pc.fill_null(pc.match_like(pa.array(texts, pa.string()), GPU_PRESENT_LIKE), False).to_pylist()
    verdicts: dict[str, str | None] = {}
    problems = []
    for text, matched in zip(texts, present):
        if not matched or text is None:  # a NULL cell never matches (match_like gives NULL, filled False)
            problems.append(None)
            continue
        if text not in verdicts:
            verdicts[text] = _count_problem(text)
        problems.append(verdicts[text])
    return problems


def _count_problem(text: str) -> str | None:
    try:
        labels = parse_label_object(text)
    except MalformedLabelJSON:
        return None
    if mig_strategy(labels) not in (None, "mixed", "single"):
        return None
    try:
        gpu_count(labels)
    except ValueError as exc:
        return str(exc)
    return None


def model_name(gpu_model_name: str | None, labels: dict) -> str | None:
    """koku's unallocated model: the GPU rows' model, else the node's product label, every run of characters other
    than ASCII letters and digits made one space (so 'NVIDIA-A100-SXM4-80GB' becomes 'NVIDIA A100 SXM4 80GB')."""
    name = gpu_model_name if gpu_model_name is not None else label_text(labels, PRODUCT_LABEL)
    return None if name is None else _NOT_ALPHANUMERIC.sub(" ", name)


# ------------------------------------------------------------------------------------------------ rates
class _LiteralZero:
    """The template writes the number 0 as the cost (no rate in the call, or an unmatched model of the allocated
    rows without a default): the row costs 0 whatever its usage."""


LITERAL_ZERO = _LiteralZero()


def _rounded_rate(params: CallParams, rate: Decimal) -> Decimal:
    with localcontext(prec=NUMERIC_DIGITS):
        rounded = rate.quantize(RATE_SCALE, rounding=ROUND_HALF_UP) if rate.copy_abs() < RATE_LIMIT else rate
    if rounded.copy_abs() >= RATE_LIMIT:
        raise ConfigurationError(f"GPU rate {rate} overflows koku's decimal(24,9) cast").with_hint(
            f"a rate below 1e15 ({params.file})"
        )
    return rounded


def tag_rate(params: CallParams, model: str | None, *, unmatched) -> Decimal | _LiteralZero | None:
    """The rate koku's template picks for a row of GPU model `model`: ``rate`` when given; else the value rate of the
    model (exact match) or the default; `unmatched` when value rates are given, neither matches nor a default exists
    (8.9.7: LITERAL_ZERO for allocated rows, None (NULL) for unallocated ones); LITERAL_ZERO with no rate at all."""
    if params.rate is not None:
        return _rounded_rate(params, params.rate)
    if params.value_rates:
        if model is not None and model in params.value_rates:
            return _rounded_rate(params, params.value_rates[model])
        if params.default_rate is not None:
            return _rounded_rate(params, params.default_rate)
        return unmatched
    if params.default_rate is not None:
        return _rounded_rate(params, params.default_rate)
    return LITERAL_ZERO


# ------------------------------------------------------------------------------------------------ monthly_cost_gpu
def monthly_cost_gpu(
    params: CallParams, gpu_daily: pa.Table, node_labels: pa.Table, cost_categories: Sequence[tuple[str, int]]
) -> pa.Table:
    """koku's cost_model/monthly_cost_gpu.sql (8.6): the allocated rows (one per gpu_usage daily row of the vendor
    ``tag_key`` in the range) and the unallocated rows (namespace 'GPU unallocated', from the hourly node labels of
    NVIDIA nodes), both ``data_source`` GPU, ``monthly_cost_type`` Tag."""
    if params.tag_key is None:
        raise ConfigurationError(f"{params.file} needs parameter tag_key")
    allocated = allocated_gpu_rows(params, gpu_daily, cost_categories)
    unallocated = unallocated_gpu_rows(params, gpu_daily, node_labels)
    return pa.concat_tables([allocated, unallocated])


def _in_range(table: pa.Table, params: CallParams) -> pa.Table:
    start, end = pa.scalar(params.start_date, pa.date32()), pa.scalar(params.end_date, pa.date32())
    days = table["usage_start"]
    return table.filter(pc.fill_null(pc.and_(pc.greater_equal(days, start), pc.less_equal(days, end)), False))


def _vendor_rows(params: CallParams, gpu_daily: pa.Table) -> pa.Table:
    rows = _in_range(gpu_daily, params)
    # CPGSQL compares the vendor exactly (Trino matches a prefix, 8.10).
    return rows.filter(pc.fill_null(pc.equal(rows["gpu_vendor_name"], params.tag_key), False))


def _source_text(params: CallParams) -> str:
    try:
        return str(uuid.UUID(params.source_uuid))
    except ValueError:
        raise ConfigurationError(f"source_uuid {params.source_uuid!r} of {params.file} is not a UUID") from None


def _constant(value, type_: pa.DataType, length: int) -> pa.Array:
    return pa.array([value] * length, type_)


def _per_day_rates(params: CallParams, models: pa.ChunkedArray) -> tuple[pa.Array, pa.Array]:
    """Per row: the rate per day (float8 of the numeric rate / days) and whether the cost is the literal 0."""
    days = Decimal(params.days())
    per_model: dict[str | None, tuple[float | None, bool]] = {}
    for model in pc.unique(models).to_pylist():
        rate = tag_rate(params, model, unmatched=LITERAL_ZERO)  # a Decimal or LITERAL_ZERO, never None
        per_model[model] = (float(rate / days), False) if isinstance(rate, Decimal) else (None, True)
    values = [per_model[m] for m in models.to_pylist()]
    return pa.array([v[0] for v in values], pa.float64()), pa.array([v[1] for v in values], pa.bool_())


def allocated_gpu_rows(params: CallParams, gpu_daily: pa.Table, cost_categories: Sequence[tuple[str, int]]) -> pa.Table:
    """monthly_cost_gpu's first INSERT: per daily row, rate / days x uptime / 86400 x (slices / max slices of a MIG
    row, else 1). The daily rows are not aggregated (D3: koku inserts one row per line-item row)."""
    rows = _vendor_rows(params, gpu_daily)
    length = rows.num_rows
    per_day, zero = _per_day_rates(params, rows["gpu_model_name"])
    slices, max_slices = rows["mig_slice_count"], rows["gpu_max_slices"]
    is_mig = pc.and_(pc.and_(pc.is_valid(slices), pc.is_valid(max_slices)), pc.greater(max_slices, 0))
    factor = pc.if_else(pc.fill_null(is_mig, False), pc.divide(slices, max_slices), 1.0)
    share = pc.multiply(pc.multiply(per_day, pc.divide(rows["gpu_pod_uptime"], SECONDS_PER_DAY)), factor)
    cost = pc.if_else(zero, 0.0, share)  # 8.9.7: a model without rate and default costs 0
    columns = {
        "report_period_id": _constant(params.report_period_id, pa.int64(), length),
        "cluster_id": _constant(params.cluster_id, pa.string(), length),
        "cluster_alias": _constant(params.cluster_alias, pa.string(), length),
        "data_source": _constant(GPU_DATA_SOURCE, pa.string(), length),
        "usage_start": rows["usage_start"],
        "usage_end": rows["usage_start"],
        "namespace": rows["namespace"],
        "node": rows["node"],
        "resource_id": rows["gpu_uuid"],
        "all_labels": pa.array([allocated_labels(r) for r in rows.to_pylist()], pa.string()),
        "source_uuid": _constant(_source_text(params), pa.string(), length),
        "cost_model_rate_type": _constant(params.rate_type, pa.string(), length),
        "cost_model_gpu_cost": cost,
        "monthly_cost_type": _constant(TAG_COST_TYPE, pa.string(), length),
        # C5: koku writes one row per matching pattern; one row with the largest category here.
        "cost_category_id": cost_category_ids(rows["namespace"], cost_categories).cast(pa.int64()),
    }
    return pa.table([columns[f.name] for f in GPU_COST_SCHEMA], schema=GPU_COST_SCHEMA)


def _integer_text(value: float | None) -> str | None:
    # koku's self-hosted table types the MIG counts integer; the daily Parquet holds them as double.
    return None if value is None else str(int(value))


def _float_text(value: float | None) -> str | None:
    return None if value is None else float8_text(value)


def allocated_labels(row: dict) -> str:
    """The allocated row's all_labels: koku's jsonb_build_object of the GPU's facts (NULLs kept as JSON null)."""
    profile = row["mig_profile"]
    labels = {
        "gpu-model": row["gpu_model_name"],
        "gpu-vendor": row["gpu_vendor_name"],
        "gpu-memory-mib": _float_text(row["gpu_memory_capacity_mib"]),
        "mig-profile": profile,
        "mig-slice-count": _integer_text(row["mig_slice_count"]),
        "gpu-max-slices": _integer_text(row["gpu_max_slices"]),
        "mig-strategy": row["mig_strategy"],
        "mig-memory-mib": _float_text(row["mig_memory_capacity_mib"]),
        "gpu-mode": "MIG" if profile else "dedicated",
        "gpu-uuid": row["gpu_uuid"],
        "mig-instance-id": row["mig_instance_id"],
    }
    return jsonb_text(labels)


def _slice_usage(rows: pa.Table) -> pa.Table:
    """Per (node, model, day) of the vendor's daily rows: used slice-hours Σ uptime x coalesce(slices, 1) / 3600
    and the largest coalesce(max slices, 1)."""
    slice_seconds = pc.multiply(rows["gpu_pod_uptime"], pc.coalesce(rows["mig_slice_count"], 1.0))
    max_slices = pc.coalesce(rows["gpu_max_slices"], 1.0)
    keyed = pa.table(
        {
            "node": rows["node"],
            "gpu_model_name": rows["gpu_model_name"],
            "usage_start": rows["usage_start"],
            "slice_seconds": slice_seconds,
            "max_slices": max_slices,
        }
    )
    options = pc.ScalarAggregateOptions(skip_nulls=True, min_count=1)
    grouped = keyed.group_by(["node", "gpu_model_name", "usage_start"], use_threads=False).aggregate(
        [("slice_seconds", "sum", options), ("max_slices", "max", options)]
    )
    used = pc.divide(grouped["slice_seconds_sum"], SECONDS_PER_HOUR)
    return (
        grouped.select(["node", "gpu_model_name", "usage_start"])
        .append_column("used", used)
        .append_column("max_slices", grouped["max_slices_max"])
    )


def _label_hours(params: CallParams, node_labels: pa.Table) -> pa.Table:
    """The GPU-present hourly label rows of the range, counted per (node, day, label text): koku groups by the
    text, so each label set of a day is its own group (8.9.10)."""
    rows = _in_range(node_labels, params)
    rows = rows.filter(pc.fill_null(pc.match_like(rows["node_labels"], GPU_PRESENT_LIKE), False))
    return rows.group_by(["node", "usage_start", "node_labels"], use_threads=False).aggregate(
        [("interval_start", "count")]
    )


def unallocated_gpu_rows(params: CallParams, gpu_daily: pa.Table, node_labels: pa.Table) -> pa.Table:
    """monthly_cost_gpu's second INSERT: per GPU-present node label set of a day and per GPU model of the node's
    vendor rows that day (or one row from the product label when it has none), the unutilised slice-hours u > 0
    priced at rate / (days x 24 x max slices)."""
    hours = _label_hours(params, node_labels)
    usage = _slice_usage(_vendor_rows(params, gpu_daily))
    joined = hours.join(usage, keys=["node", "usage_start"], join_type="left outer")
    days, source = params.days(), _source_text(params)
    parsed: dict[str, dict] = {}
    out = []
    for row in joined.to_pylist():
        labels = parsed.get(row["node_labels"])
        if labels is None:
            labels = parsed[row["node_labels"]] = _labels_of(row["node_labels"])
        max_slices = None if row["max_slices"] is None else int(row["max_slices"])
        unused = _unutilised(row["interval_start_count"], labels, max_slices, row["used"])
        if unused is None or not unused > 0:
            continue
        model = model_name(row["gpu_model_name"], labels)
        out.append(
            {
                "report_period_id": params.report_period_id,
                "cluster_id": params.cluster_id,
                "cluster_alias": params.cluster_alias,
                "data_source": GPU_DATA_SOURCE,
                "usage_start": row["usage_start"],
                "usage_end": row["usage_start"],
                "namespace": UNALLOCATED_NAMESPACE,
                "node": row["node"],
                "all_labels": jsonb_text(
                    {"gpu-model": model, "max-slices-per-gpu": None if max_slices is None else str(max_slices)}
                ),
                "source_uuid": source,
                "cost_model_rate_type": params.rate_type,
                "cost_model_gpu_cost": _unallocated_cost(params, model, days, max_slices, unused),
                "monthly_cost_type": TAG_COST_TYPE,
            }
        )
    return pa.Table.from_pylist(out, schema=GPU_COST_SCHEMA)


def _labels_of(text: str) -> dict:
    try:
        return parse_label_object(text)
    except MalformedLabelJSON as exc:
        raise InputDataError(str(exc), column="node_labels") from None


def _unutilised(hours: int, labels: dict, max_slices: int | None, used: float | None) -> float | None:
    """u of 8.6 step 5 (numeric capacity minus float8 usage, so float8); None where koku's is NULL."""
    strategy = mig_strategy(labels)
    if strategy not in (None, "mixed", "single"):
        return 0.0  # koku's ELSE 0: never a row
    try:
        count = gpu_count(labels)
    except ValueError as exc:
        raise InputDataError(str(exc), column="node_labels") from None
    if count is None:
        return None
    capacity = Decimal(hours) * count
    if strategy != "single":
        # 8.9.8: an idle node (no GPU rows: max slices NULL) with no or mixed strategy gets no row.
        if max_slices is None:
            return None
        capacity *= max_slices
    # 8.9.9: every model of the node uses the node's one GPU count.
    return float(capacity) - (used or 0.0)


def _unallocated_cost(params: CallParams, model: str | None, days: int, max_slices: int | None, unused: float):
    rate = tag_rate(params, model, unmatched=None)  # 8.9.7: no rate and no default -> NULL cost here
    if isinstance(rate, _LiteralZero):
        return 0.0
    if rate is None or max_slices is None:
        return None  # 8.9.8: single strategy on an idle node divides by a NULL max slices
    if max_slices == 0:
        raise InputDataError("gpu_max_slices 0 (koku divides by it)", column="gpu_max_slices")
    return float(rate / Decimal(days * HOURS_PER_DAY * max_slices)) * unused


# ------------------------------------------------------------------------------------------------ distribution
def distribute_unallocated_gpu_cost(params: CallParams, gpu_daily: pa.Table, unallocated: pa.Table) -> pa.Table:
    """koku's distribute_cost/distribute_unallocated_gpu_cost.sql (8.8): per (day, node, namespace) using GPUs the
    largest share of the node's 'GPU unallocated' costs of the same model and day, then per 'GPU unallocated' GPU
    row whose (node, model, day) has usage its negation; ``cost_model_rate_type`` gpu_distributed."""
    source = _source_text(params)
    unallocated = _unallocated_of(params, unallocated, source)
    positive = _distributed_shares(params, _in_range(gpu_daily, params), unallocated, source)
    negations = _negations(params, gpu_daily, unallocated, source)
    return pa.Table.from_pylist(positive + negations, schema=DISTRIBUTED_SCHEMA)


def _unallocated_of(params: CallParams, unallocated: pa.Table, source: str) -> list[dict]:
    rows = []
    for row in _in_range(unallocated, params).to_pylist():
        if row["namespace"] == UNALLOCATED_NAMESPACE and _same_uuid(row["source_uuid"], source):
            rows.append(row)
    return rows


def _same_uuid(text: str | None, source: str) -> bool:
    try:
        return text is not None and str(uuid.UUID(text)) == source
    except ValueError:
        return False


def _namespace_slices(gpu_rows: pa.Table) -> list[dict]:
    """Σ uptime x coalesce(slices, 1) per (model, namespace, node, day) of every vendor's rows in the range."""
    keyed = pa.table(
        {
            "gpu_model_name": gpu_rows["gpu_model_name"],
            "namespace": gpu_rows["namespace"],
            "node": gpu_rows["node"],
            "usage_start": gpu_rows["usage_start"],
            "slice_seconds": pc.multiply(gpu_rows["gpu_pod_uptime"], pc.coalesce(gpu_rows["mig_slice_count"], 1.0)),
        }
    )
    options = pc.ScalarAggregateOptions(skip_nulls=True, min_count=1)
    keys = ["gpu_model_name", "namespace", "node", "usage_start"]
    return keyed.group_by(keys, use_threads=False).aggregate([("slice_seconds", "sum", options)]).to_pylist()


def _sql_sum(values: Iterable[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return math.fsum(present) if present else None


def _sql_max(values: Iterable):
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _distributed_shares(params: CallParams, gpu_rows: pa.Table, unallocated: list[dict], source: str) -> list[dict]:
    namespaces = _namespace_slices(gpu_rows)
    totals: dict[tuple, list] = {}
    for row in namespaces:
        totals.setdefault((row["node"], row["gpu_model_name"], row["usage_start"]), []).append(row["slice_seconds_sum"])
    costs: dict[tuple, list[dict]] = {}
    for row in unallocated:
        costs.setdefault((row["node"], row["gpu_model"], row["usage_start"]), []).append(row)
    groups: dict[tuple, list[tuple[dict, float | None]]] = {}
    for row in namespaces:
        key = (row["node"], row["gpu_model_name"], row["usage_start"])
        if None in key or key not in costs:
            continue  # SQL's join: NULL never equals
        total = _sql_sum(totals[key])
        for cost_row in costs[key]:
            share = _share(row["slice_seconds_sum"], total, cost_row["cost_model_gpu_cost"])
            # 8.9.11: grouped without model or cost type, so a namespace gets the largest share, not their sum.
            groups.setdefault((row["usage_start"], row["node"], row["namespace"]), []).append((cost_row, share))
    return [_share_row(params, key, members, source) for key, members in groups.items()]


def _share(slices: float | None, total: float | None, cost: Decimal | None) -> float | None:
    if slices is None or total is None or total == 0 or cost is None:
        return None  # NULLIF(total, 0) and NULL costs give NULL
    return slices / total * float(cost)


def _share_row(params: CallParams, key: tuple, members: list[tuple[dict, float | None]], source: str) -> dict:
    day, node, namespace = key
    return {
        "report_period_id": _sql_max(m["report_period_id"] for m, _ in members),
        "cluster_id": _sql_max(m["cluster_id"] for m, _ in members),
        "cluster_alias": _sql_max(m["cluster_alias"] for m, _ in members),
        "data_source": GPU_DATA_SOURCE,
        "usage_start": day,
        "usage_end": day,
        "namespace": namespace,
        "node": node,
        "source_uuid": source,
        "cost_model_rate_type": params.cost_model_rate_type,
        "distributed_cost": float8_to_numeric(_sql_max(share for _, share in members)),
    }


def _negations(params: CallParams, gpu_daily: pa.Table, unallocated: list[dict], source: str) -> list[dict]:
    """The 'GPU unallocated' GPU rows whose (node, model, day) has a gpu_usage row of the source (koku's EXISTS
    reads no range, vendor or year/month), each with 0 - its cost: both cost types (8.9.11), NULL stays NULL."""
    used = {
        (r["node"], r["gpu_model_name"], r["usage_start"])
        for r in gpu_daily.select(["node", "gpu_model_name", "usage_start"]).to_pylist()
    }
    out = []
    for row in unallocated:
        key = (row["node"], row["gpu_model"], row["usage_start"])
        if row["data_source"] != GPU_DATA_SOURCE or None in key or key not in used:
            continue  # NULL never equals in koku's EXISTS
        cost = row["cost_model_gpu_cost"]
        out.append(
            {
                "report_period_id": row["report_period_id"],
                "cluster_id": row["cluster_id"],
                "cluster_alias": row["cluster_alias"],
                "data_source": GPU_DATA_SOURCE,
                "usage_start": row["usage_start"],
                "usage_end": row["usage_start"],
                "namespace": row["namespace"],
                "node": row["node"],
                "source_uuid": source,
                "cost_model_rate_type": params.cost_model_rate_type,
                "distributed_cost": None if cost is None else -cost,
            }
        )
    return out


# ------------------------------------------------------------------------------------------------ when it runs
@dataclass(frozen=True)
class GpuDistributionRun:
    """The month koku's GPU distribution handles after a piece: koku deletes its gpu_distributed rows, then, when
    `distribute` (the cost model's ``distribution_info.gpu_unallocated``), runs the file for it."""

    start_date: dt.date
    end_date: dt.date
    distribute: bool

    def koku_params(self, schema: str, source_uuid: str, report_period_id: int) -> dict:
        """koku's parameter dict of the distribution call for this month (8.3)."""
        params = base_params(schema, source_uuid, self.start_date, self.end_date, report_period_id)
        return {**params, "cost_model_rate_type": GPU_DISTRIBUTED}


def previous_month(today: dt.date) -> tuple[dt.date, dt.date]:
    """First and last day of the month before `today`'s (the range koku checks for gpu_distributed rows on day 2)."""
    last = today.replace(day=1) - dt.timedelta(days=1)
    return last.replace(day=1), last


def gpu_distribution_run(
    piece_start: dt.date,
    piece_end: dt.date,
    today: dt.date,
    *,
    gpu_unallocated: bool,
    previous_month_distributed: bool,
) -> GpuDistributionRun | None:
    """koku's choice for the piece [piece_start, piece_end] (populate_distributed_cost_sql, 8.8; `today` is C10's
    clock): a piece of another month than today's distributes its whole month (first day of the start's month to
    last day of the end's); a piece of today's month distributes nothing, except on day 2, when the previous month
    is distributed unless it already has gpu_distributed rows (`previous_month_distributed`, read for
    ``previous_month(today)``; koku then skips even the delete). None: koku does nothing."""
    if (piece_start.year, piece_start.month) == (today.year, today.month):
        if today.day != 2 or previous_month_distributed:
            return None
        first, last = previous_month(today)
    else:
        first, last = piece_start.replace(day=1), month_end(piece_end)
    return GpuDistributionRun(first, last, bool(gpu_unallocated))
