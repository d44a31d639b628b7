"""The checks of a cluster-month's cost steps, judged inside its transaction on what PostgreSQL holds after them.

- ``cost_rows_in_postgresql``: every class of rows the steps replace (koku's deletes of 8.2) holds, for the
  piece, exactly the rows the calls computed: count and each cost column's total.
- ``vm_cost_is_hours_times_rate``: every hourly VM cost row (tiered) is the VM's hours that day, counted afresh from
  the VM line items, times the call's rate.
- ``gpu_distribution_replaces_unallocated``: per node and day, the cost distributed to namespaces lies between the
  largest unallocated GPU cost it replaces and their sum (one share per GPU model, the larger cost type's: 8.9.11;
  the negation rows carry no model), and nothing is distributed to a node-day without unallocated cost.
"""

import json
import math
from collections import defaultdict
from typing import LiteralString

import psycopg
import pyarrow as pa
from psycopg import sql

from ocp_assets.core.costs.params import parse_params
from ocp_assets.core.database import one_row
from ocp_assets.core.layout import month_end
from ocp_assets.core.outcomes import CheckOutcome
from ocp_assets.core.pgschema import SUMMARY_TABLE

COST_ROWS_IN_POSTGRESQL = "cost_rows_in_postgresql"
VM_COST_IS_HOURS_TIMES_RATE = "vm_cost_is_hours_times_rate"
GPU_DISTRIBUTION_REPLACES_UNALLOCATED = "gpu_distribution_replaces_unallocated"
COST_CHECKS = (COST_ROWS_IN_POSTGRESQL, VM_COST_IS_HOURS_TIMES_RATE, GPU_DISTRIBUTION_REPLACES_UNALLOCATED)
COST_CHECK_DESCRIPTIONS = {
    COST_ROWS_IN_POSTGRESQL: "What PostgreSQL holds after the month's cost steps equals what the steps computed: "
    "rows and the total of each cost column, for every kind of cost row they replace.",
    VM_COST_IS_HOURS_TIMES_RATE: "Every hourly VM cost equals the VM's running hours that day, counted again from "
    "the VM report, times the hourly rate.",
    GPU_DISTRIBUTION_REPLACES_UNALLOCATED: "For every GPU node and day, the unallocated GPU cost handed to namespaces "
    "is at least the largest unallocated cost it replaces and at most their sum, and nothing is handed out where there "
    "was none.",
}
COST_COLUMNS = ("cost_model_cpu_cost", "cost_model_memory_cost", "cost_model_gpu_cost", "distributed_cost")
# The kinds of row the steps own, as SQL over the summary (each matches one delete of plan.piece_steps).
ROW_CLASSES: dict[str, LiteralString] = {
    "hourly": "cost_model_rate_type IN ('Infrastructure', 'Supplementary') AND monthly_cost_type IS NULL",
    "monthly": "cost_model_rate_type IS NOT NULL AND monthly_cost_type IN ('Node', 'Node_Core_Month', 'Cluster',"
    " 'PVC', 'OCP_VM', 'OCP_VM_CORE')",
    "tag": "monthly_cost_type IN ('Tag', 'Node_Core_Hour')",
    "distributed": "cost_model_rate_type = 'gpu_distributed'",
}


def _class_of(rate_type: str | None, monthly: str | None) -> str | None:
    """The row class (ROW_CLASSES) of rows with this cost_model_rate_type and monthly_cost_type."""
    if rate_type == "gpu_distributed":
        return "distributed"
    if monthly in ("Tag", "Node_Core_Hour"):
        return "tag"
    if monthly is not None:
        return "monthly"
    return "hourly" if rate_type in ("Infrastructure", "Supplementary") else None


def _computed_totals(done) -> dict[str, float]:
    """Per row class: the rows the steps computed and the total of each cost column (grouped by the two columns
    that decide the class, summed by Arrow)."""
    totals: dict[str, float] = defaultdict(float)
    for step in done.steps:
        if step.rows is None or step.rows.num_rows == 0:
            continue
        rows = step.rows
        present = [c for c in COST_COLUMNS if c in rows.column_names]
        keys = [c for c in ("cost_model_rate_type", "monthly_cost_type") if c in rows.column_names]
        grouped = rows.group_by(keys, use_threads=False).aggregate([([], "count_all"), *((c, "sum") for c in present)])
        for group in grouped.to_pylist():
            kind = _class_of(group.get("cost_model_rate_type"), group.get("monthly_cost_type"))
            totals[f"{kind} rows"] += group["count_all"]
            for column in present:
                totals[f"{kind} {column}"] += float(group[f"{column}_sum"] or 0)
    return dict(totals)


def read_back(conn: psycopg.Connection, schema: str, done) -> dict[str, float]:
    """Per row class: rows and cost totals PostgreSQL holds for the source in the piece (distributed: its month)."""
    found: dict[str, float] = {}
    if done.report_period_id is None:
        return found
    sums = sql.SQL(", ").join(sql.SQL("coalesce(sum({}), 0)::float8").format(sql.Identifier(c)) for c in COST_COLUMNS)
    for kind, where in ROW_CLASSES.items():
        query = sql.SQL(
            "SELECT count(*), {} FROM {}.{} WHERE source_uuid = %s::uuid AND report_period_id = %s"
            " AND usage_start >= %s AND usage_start <= %s AND " + where
        ).format(sums, sql.Identifier(schema), sql.Identifier(SUMMARY_TABLE))
        first, last = (
            (done.first.replace(day=1), month_end(done.first)) if kind == "distributed" else (done.first, done.last)
        )
        values = one_row(conn.execute(query, (done.source, done.report_period_id, first, last)))
        found[f"{kind} rows"] = float(values[0])
        found.update({f"{kind} {column}": float(v) for column, v in zip(COST_COLUMNS, values[1:])})
    return found


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-9)


def rows_in_postgresql(done) -> CheckOutcome:
    computed = _computed_totals(done)
    differences = {
        key: {"computed": computed.get(key, 0.0), "postgresql": held}
        for key, held in done.read_back.items()
        if not _close(computed.get(key, 0.0), held)
    }
    description = COST_CHECK_DESCRIPTIONS[COST_ROWS_IN_POSTGRESQL]
    metadata = {"read_back": done.read_back}
    if differences:
        return CheckOutcome(False, f"{description} Differs: {differences}", {**metadata, "differences": differences})
    return CheckOutcome(
        True, description, metadata, rows=int(sum(v for k, v in computed.items() if k.endswith("rows")))
    )


def _vm_hours(vm_raw: pa.Table) -> dict[tuple[str, object], float]:
    if vm_raw.num_rows == 0:
        return {}
    grouped = vm_raw.group_by(["vm_name", "usage_start"], use_threads=False).aggregate(
        [("vm_uptime_total_seconds", "sum")]
    )
    return {
        (vm, day): (seconds or 0.0) / 3600
        for vm, day, seconds in zip(
            *(grouped[c].to_pylist() for c in ("vm_name", "usage_start", "vm_uptime_total_seconds_sum"))
        )
    }


def vm_hours_times_rate(done, given) -> CheckOutcome:
    """Independent of the file's own aggregation: hours summed per VM and day from the raw VM rows."""
    wrong, checked = [], 0
    for step in done.steps:
        if step.name != "hourly_cost_virtual_machine.sql" or step.rows is None or step.rows.num_rows == 0:
            continue
        params = parse_params(step.name, {**step.params})
        hours = _vm_hours(given.vm_raw(params))
        rate = params.decimal_rate("hourly_rate")
        for row in step.rows.to_pylist():
            vm = json.loads(row["pod_labels"] or "{}").get("vm_kubevirt_io_name")
            expected = hours.get((vm, row["usage_start"]), 0.0) * rate
            checked += 1
            if row["cost_model_cpu_cost"] is None or not _close(row["cost_model_cpu_cost"], expected):
                wrong.append(
                    {"vm": vm, "day": str(row["usage_start"]), "cost": row["cost_model_cpu_cost"], "expected": expected}
                )
    description = COST_CHECK_DESCRIPTIONS[VM_COST_IS_HOURS_TIMES_RATE]
    if wrong:
        return CheckOutcome(
            False,
            f"{description} {len(wrong)} rows differ",
            {"differences": wrong[:20]},
            rows=checked,
            failures=len(wrong),
        )
    return CheckOutcome(True, description, {"vm_cost_rows": checked}, rows=checked)


def gpu_distribution(done) -> CheckOutcome:
    positive: dict[tuple, float] = defaultdict(float)
    negated: dict[tuple, list[float]] = defaultdict(list)
    for step in done.steps:
        if step.name != "distribute_unallocated_gpu_cost.sql" or step.rows is None:
            continue
        for row in step.rows.to_pylist():
            key = (str(row["usage_start"]), row["node"])
            if row["namespace"] == "GPU unallocated":
                negated[key].append(-float(row["distributed_cost"] or 0))
            else:
                positive[key] += float(row["distributed_cost"] or 0)
    wrong = []
    for (day, node), amount in positive.items():
        replaced = negated.get((day, node), [0.0])
        low, high = max(replaced), sum(value for value in replaced if value > 0)
        if not (amount >= low - 1e-9 * abs(low) - 1e-9 and amount <= high + 1e-9 * abs(high) + 1e-9):
            wrong.append({"day": day, "node": node, "distributed": amount, "largest": low, "sum": high})
    description = COST_CHECK_DESCRIPTIONS[GPU_DISTRIBUTION_REPLACES_UNALLOCATED]
    if wrong:
        return CheckOutcome(
            False, f"{description} {len(wrong)} node-days differ", {"differences": wrong[:20]}, failures=len(wrong)
        )
    return CheckOutcome(True, description, {"node_days": len(positive)}, rows=len(positive))


def judge_month(conn: psycopg.Connection, schema: str, done, given) -> dict[str, CheckOutcome]:
    return {
        COST_ROWS_IN_POSTGRESQL: rows_in_postgresql(done),
        VM_COST_IS_HOURS_TIMES_RATE: vm_hours_times_rate(done, given),
        GPU_DISTRIBUTION_REPLACES_UNALLOCATED: gpu_distribution(done),
    }
