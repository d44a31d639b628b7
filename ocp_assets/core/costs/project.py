"""koku's cost_model/monthly_project_tag_based.sql (contract 8.5, 8.9.6, C9): a namespace-label tag rate charged for
every day a namespace carries the label, shared by the nodes the namespace ran on that day.

Three pieces, kept apart so the computation is pure:

- ``read_namespace_labels_daily``: the month's ``namespace_labels`` daily Parquet rows, Pandera-validated;
- ``read_namespace_nodes``: the distinct (namespace, day, node) of the source's Pod and Storage usage rows of the
  summary. koku joins its intermediate table (``reporting_ocpusagelineitem_daily_summary_staging``) instead; that
  table holds exactly the rows the summary copied, so the node sets are the same (C9);
- ``monthly_project_tag_based``: the rows koku's file inserts, costs in exact numeric as PostgreSQL computes them.
"""

import datetime as dt
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal, localcontext

import pandas as pd
import pandera.pandas as pa
import psycopg
import pyarrow
import pyarrow.compute as pc
from pandera.typing import Series
from psycopg import sql

from ocp_assets.core.costs.inputs import MonthRows, read_month_rows
from ocp_assets.core.costs.params import CallParams, as_numeric_33_15, round_numeric_33_15
from ocp_assets.core.costs.rows import NUMERIC_33_15, cost_schema
from ocp_assets.core.costs.vm import COST_SCHEMA
from ocp_assets.core.errors import ConfigurationError
from ocp_assets.core.labels import MalformedLabelJSON, jsonb_text, parse_label_object
from ocp_assets.core.layout import NAMESPACE_LABELS, TIMESTAMP_TYPE
from ocp_assets.core.pgschema import SUMMARY_TABLE
from ocp_assets.core.reader import ColumnSpec
from ocp_assets.core.storage import DataRoot
from ocp_assets.core.validation import InputModel

FILE = "monthly_project_tag_based.sql"
NAMESPACE_LABEL_COLUMNS = [
    ColumnSpec("interval_start", TIMESTAMP_TYPE),
    ColumnSpec("namespace", pyarrow.string()),
    ColumnSpec("namespace_labels", pyarrow.string()),
]
NAMESPACE_NODES_SCHEMA = pyarrow.schema(
    [("namespace", pyarrow.string()), ("usage_start", pyarrow.date32()), ("node", pyarrow.string())]
)
# The summary's columns, the cost as numeric(33,15): every step of koku's arithmetic here is numeric, none float8.
PROJECT_COST_SCHEMA = cost_schema(*COST_SCHEMA.names, cost_model_cpu_cost=NUMERIC_33_15)
# koku's file skips the platform's namespaces: NOT LIKE 'kube-%', NOT LIKE 'openshift-%', != 'openshift'.
EXCLUDED_PREFIXES = ("kube-", "openshift-")
EXCLUDED_NAMESPACE = "openshift"
# PostgreSQL's numeric division (select_div_scale in numeric.c): at least 16 significant digits, base-10000 digits.
PG_MIN_SIG_DIGITS, PG_DEC_DIGITS, PG_MAX_DISPLAY_SCALE = 16, 4, 1000


# ------------------------------------------------------------------------------------------------ namespace labels
def _jsonb_objects(series: pd.Series) -> pd.Series:
    """True where a cell is NULL (no labels) or a JSON object. koku's ``::jsonb`` cast fails on a blank or malformed
    cell, so koku's call would fail; other JSON (an array, a string) is no label map, refused as the summary's label
    cells are."""
    verdicts = {}
    for text in pd.unique(series.dropna()):
        try:
            verdicts[text] = bool(text.strip()) and parse_label_object(text) is not None
        except MalformedLabelJSON:
            verdicts[text] = False
    return series.map(lambda value: value is None or verdicts.get(value, True))


class NamespaceLabelRows(InputModel):
    """namespace_labels daily rows as the project file reads them: the namespace and its label JSON."""

    interval_start: Series[pd.Timestamp] = pa.Field(nullable=False)
    namespace: Series[str] = pa.Field(nullable=True)
    namespace_labels: Series[str] = pa.Field(nullable=True)

    @pa.check("namespace_labels", name="NULL or a JSON object (koku's ::jsonb cast fails on a blank or broken one)")
    def _labels(cls, series: pd.Series) -> pd.Series:
        return _jsonb_objects(series)


def read_namespace_labels_daily(root: DataRoot, account: str, source: str, year: str, month: str) -> MonthRows:
    """The month's namespace_labels daily rows (koku reads the source's year/month, D3) with ``usage_start``."""
    return read_month_rows(
        root, account, NAMESPACE_LABELS, source, year, month, NAMESPACE_LABEL_COLUMNS, NamespaceLabelRows, daily=True
    )


# ------------------------------------------------------------------------------------------------ node sets
_NODES_SELECT = """
SELECT DISTINCT namespace, usage_start, node
FROM {schema}.{table}
WHERE source_uuid = %s::uuid AND usage_start >= %s AND usage_start <= %s
  AND cost_model_rate_type IS NULL AND data_source IN ('Pod', 'Storage')
"""


def read_namespace_nodes(
    conn: psycopg.Connection, schema: str, source_uuid: str, start: dt.date, end: dt.date
) -> pyarrow.Table:
    """Distinct (namespace, usage_start, node) of the source's Pod and Storage usage rows (no cost model rate type)
    from `start` to `end`: the rows koku's intermediate table holds (C9). A claimless PVC's Storage row gives a
    NULL node."""
    query = sql.SQL(_NODES_SELECT).format(schema=sql.Identifier(schema), table=sql.Identifier(SUMMARY_TABLE))
    rows = conn.execute(query, (source_uuid, start, end)).fetchall()
    return pyarrow.Table.from_pylist(
        [dict(zip(NAMESPACE_NODES_SCHEMA.names, row)) for row in rows], schema=NAMESPACE_NODES_SCHEMA
    )


# ------------------------------------------------------------------------------------------------ numeric
def _scale(value: Decimal) -> int:
    """numeric's display scale: digits after the point."""
    exponent = value.as_tuple().exponent
    if not isinstance(exponent, int):  # 'n', 'N', 'F': parse_params refuses a rate that is not finite
        raise ValueError(f"numeric scale of {value}: not a finite number")
    return max(0, -exponent)


def _leading_base10000(value: Decimal) -> tuple[int, int]:
    """numeric's weight and first digit in its base-10000 digits; (0, 0) for zero, as numeric.c takes them."""
    if value.is_zero():
        return 0, 0
    weight = value.adjusted() // PG_DEC_DIGITS
    return weight, int(abs(value).scaleb(-PG_DEC_DIGITS * weight))


def pg_numeric_divide(dividend: Decimal, divisor: Decimal) -> Decimal:
    """PostgreSQL's numeric ``dividend / divisor``: the exact quotient rounded half away from zero to the scale
    numeric.c's select_div_scale picks (16 significant digits, at least either operand's scale, at most 1000)."""
    weight1, first1 = _leading_base10000(dividend)
    weight2, first2 = _leading_base10000(divisor)
    quotient_weight = weight1 - weight2 - (1 if first1 <= first2 else 0)
    scale = max(PG_MIN_SIG_DIGITS - quotient_weight * PG_DEC_DIGITS, _scale(dividend), _scale(divisor), 0)
    scale = min(scale, PG_MAX_DISPLAY_SCALE)
    with localcontext() as exact:
        # Truncated well past the kept digits, then rounded once: the same as rounding the exact quotient.
        exact.prec = max(1, dividend.adjusted() - divisor.adjusted() + 2) + scale + 2
        exact.rounding = ROUND_DOWN
        return (dividend / divisor).quantize(Decimal(1).scaleb(-scale), rounding=ROUND_HALF_UP)


def _as_numeric_33_15(value: Decimal, what: str) -> Decimal:
    return as_numeric_33_15(value, f"{what} of {FILE}")


def _daily_amounts(params: CallParams) -> tuple[dict[str, Decimal], Decimal | None]:
    """Per tag value and for the default: CAST(rate AS DECIMAL(33,15)) / amortized_denominator (8.5 step 2)."""
    if params.default_rate is None and not params.value_rates:
        raise ConfigurationError(f"{FILE} needs default_rate or value_rates").with_hint(
            "koku calls it with a tag rate's default value, its other values, or both"
        )
    days = Decimal(params.days())

    def amount(rate: Decimal, what: str) -> Decimal:
        return pg_numeric_divide(_as_numeric_33_15(rate, what), days)

    values = {value: amount(rate, f"value_rates[{value!r}]") for value, rate in params.value_rates.items()}
    default = None if params.default_rate is None else amount(params.default_rate, "default_rate")
    return values, default


# ------------------------------------------------------------------------------------------------ the file
def _tag_text(labels: dict, key: str) -> str | None:
    """``labels::jsonb ->> key``: a string as it is, a number as its numeric text, JSON null as NULL, any other
    value as its jsonb text."""
    value = labels.get(key)
    if value is None or isinstance(value, str):
        return None if value is None else str(value)
    return jsonb_text(value)


def _label_rows(params: CallParams, namespace_labels: pyarrow.Table) -> pyarrow.Table:
    """The distinct (namespace, label text, day) of the range, outside the platform's namespaces (8.5 step 1)."""
    namespace = namespace_labels["namespace"]
    platform = pc.or_(
        pc.or_(pc.starts_with(namespace, EXCLUDED_PREFIXES[0]), pc.starts_with(namespace, EXCLUDED_PREFIXES[1])),
        pc.equal(namespace, EXCLUDED_NAMESPACE),
    )
    day = namespace_labels["usage_start"]
    in_range = pc.and_(
        pc.greater_equal(day, pyarrow.scalar(params.start_date, pyarrow.date32())),
        pc.less_equal(day, pyarrow.scalar(params.end_date, pyarrow.date32())),
    )
    # A NULL namespace fails NOT LIKE (NULL), a NULL label cell has no key: neither row is read.
    keep = pc.and_(pc.and_(pc.invert(platform), in_range), pc.is_valid(namespace_labels["namespace_labels"]))
    kept = namespace_labels.filter(pc.fill_null(keep, False))
    return kept.group_by(["namespace", "namespace_labels", "usage_start"], use_threads=False).aggregate([])


def _charged_labels(params: CallParams, texts: list[str]) -> dict[str, tuple[str, Decimal]]:
    """Per label text that passes the tag filter: its jsonb text (koku groups by the jsonb value) and daily amount.

    With a default_rate a row needs the key (any value, the default where no value rate matches); without one, a
    value of value_rates (8.5 step 1, koku's CASE without ELSE then never meets a NULL)."""
    value_amounts, default_amount = _daily_amounts(params)
    tag_key = params.tag()
    charged = {}
    for text in texts:
        labels = parse_label_object(text)
        value = _tag_text(labels, tag_key)
        if value is None:
            continue
        amount = value_amounts.get(value, default_amount)
        if amount is not None:
            charged[text] = (jsonb_text(labels), amount)
    return charged


def _nodes_by_namespace_day(namespace_nodes: pyarrow.Table) -> dict[tuple, list[str | None]]:
    """Per (namespace, day): its distinct nodes, NULL included (koku's GROUP BY node)."""
    nodes: dict[tuple, dict[str | None, None]] = {}
    for row in namespace_nodes.select(["namespace", "usage_start", "node"]).to_pylist():
        nodes.setdefault((row["namespace"], row["usage_start"]), {})[row["node"]] = None
    return {key: list(found) for key, found in nodes.items()}


def monthly_project_tag_based(
    params: CallParams, namespace_labels: pyarrow.Table, namespace_nodes: pyarrow.Table
) -> pyarrow.Table:
    """koku's cost_model/monthly_project_tag_based.sql: one row per (namespace, label JSON, node, day) of the range,
    the label's daily amount divided by the namespace's count of non-NULL node rows that day.

    `namespace_labels`: ``read_namespace_labels_daily(...).table`` (namespace, namespace_labels, usage_start) of the
    call's source, year and month; `namespace_nodes`: ``read_namespace_nodes`` of the source over (at least) the
    call's range. Costs are numeric(33,15) Decimals, computed as PostgreSQL's numeric does.
    """
    distinct = _label_rows(params, namespace_labels).to_pylist()
    charged = _charged_labels(params, sorted({row["namespace_labels"] for row in distinct}))
    # One group per (namespace, day, label jsonb): texts that differ only in spacing or key order are one group.
    groups: dict[tuple, dict[str, Decimal]] = {}
    for row in distinct:
        if row["namespace_labels"] in charged:
            labels, amount = charged[row["namespace_labels"]]
            groups.setdefault((row["namespace"], row["usage_start"]), {})[labels] = amount
    nodes = _nodes_by_namespace_day(namespace_nodes)
    out = []
    for (namespace, day), label_sets in groups.items():
        # LEFT JOIN: a namespace without usage rows that day keeps one row, node NULL (8.9.6: it pays the full amount).
        day_nodes = nodes.get((namespace, day), [None])
        # 8.9.6: koku's count(node) runs over all the namespace's rows of the day, so it counts each non-NULL node
        # once per label set; a NULL-node row (a claimless PVC) is not counted but still gets a share.
        node_count = len(label_sets) * sum(node is not None for node in day_nodes)
        for labels, amount in label_sets.items():
            cost = amount if node_count < 1 else pg_numeric_divide(amount, round_numeric_33_15(Decimal(node_count)))
            for node in day_nodes:
                out.append(_cost_row(params, namespace, day, node, labels, cost))
    return pyarrow.Table.from_pylist(out, schema=PROJECT_COST_SCHEMA)


def _cost_row(params: CallParams, namespace: str, day: dt.date, node, labels: str, cost: Decimal) -> dict:
    return {
        "report_period_id": params.report_period_id,
        "cluster_id": params.cluster_id,
        "cluster_alias": params.cluster_alias,
        "data_source": "Pod",
        "usage_start": day,
        "usage_end": day,
        "namespace": namespace,
        "node": node,
        "resource_id": None,
        "pod_labels": labels,
        "all_labels": labels,
        "source_uuid": params.source_uuid,
        "cost_model_rate_type": params.rate_type,
        # numeric(33,15) column: PostgreSQL rounds the quotient half away from zero to 15 decimals when it stores it.
        "cost_model_cpu_cost": round_numeric_33_15(cost),
        "monthly_cost_type": "Tag",
        "cost_category_id": None,
    }
