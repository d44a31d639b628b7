"""The cost checks as plain functions on hand-built month results: what passes and what fails, with the figures."""

import datetime as dt
from decimal import Decimal

import pyarrow as pa

from ocp_assets.core.costs import checks
from ocp_assets.core.costs.month import MonthCosts, StepDone
from ocp_assets.core.costs.rows import cost_schema

OCT = dt.date(2026, 10, 1)
HOURLY = cost_schema("cost_model_rate_type", "monthly_cost_type", "cost_model_cpu_cost")
DISTRIBUTED = cost_schema("usage_start", "node", "namespace", "cost_model_rate_type", "distributed_cost")


def _month(*steps: StepDone, read_back: dict | None = None) -> MonthCosts:
    return MonthCosts("src", OCT, dt.date(2026, 10, 31), 1, list(steps), read_back or {})


def _hourly(*costs: float, rate_type="Infrastructure", monthly=None) -> StepDone:
    rows = pa.table({"cost_model_rate_type": [rate_type] * len(costs), "monthly_cost_type": [monthly] * len(costs),
                     "cost_model_cpu_cost": list(costs)}, schema=HOURLY)  # fmt: skip
    return StepDone("hourly_cost_virtual_machine.sql", {}, rows=rows)


def test_rows_in_postgresql_passes_when_each_class_holds_what_was_computed():
    # Two hourly rows (6.0 + 3.0) and one Tag row (2.5): PostgreSQL holds the same per class.
    month = _month(
        _hourly(6.0, 3.0),
        _hourly(2.5, monthly="Tag"),
        read_back={"hourly rows": 2, "hourly cost_model_cpu_cost": 9.0, "tag rows": 1, "tag cost_model_cpu_cost": 2.5},
    )
    assert checks.rows_in_postgresql(month).passed


def test_rows_in_postgresql_fails_on_a_missing_row_and_names_the_class():
    month = _month(_hourly(6.0, 3.0), read_back={"hourly rows": 1, "hourly cost_model_cpu_cost": 6.0})
    outcome = checks.rows_in_postgresql(month)
    assert not outcome.passed
    assert outcome.metadata["differences"] == {
        "hourly rows": {"computed": 2, "postgresql": 1},
        "hourly cost_model_cpu_cost": {"computed": 9.0, "postgresql": 6.0},
    }


def test_rows_in_postgresql_fails_on_rows_nothing_computed():
    # koku's own usage-rate rows the deletes should have removed: 1 row PostgreSQL holds that no step wrote.
    assert not checks.rows_in_postgresql(_month(read_back={"hourly rows": 1})).passed


def _distribution(rows: list[tuple]) -> StepDone:
    table = pa.table(
        {
            "usage_start": [OCT] * len(rows),
            "node": ["gpu-0"] * len(rows),
            "namespace": [ns for ns, _ in rows],
            "cost_model_rate_type": ["gpu_distributed"] * len(rows),
            "distributed_cost": [Decimal(str(cost)) for _, cost in rows],
        },
        schema=DISTRIBUTED,
    )
    return StepDone("distribute_unallocated_gpu_cost.sql", {}, rows=table)


def test_the_distribution_hands_out_between_the_largest_unallocated_cost_and_their_sum():
    # Unallocated 60 (Infrastructure) and 40 (Supplementary) negated; namespaces get the larger: 45 + 15 = 60.
    balanced = [("a", 45), ("b", 15), ("GPU unallocated", -60), ("GPU unallocated", -40)]
    assert checks.gpu_distribution(_month(_distribution(balanced))).passed
    # 45 + 30 = 75 lies between 60 and 100 (two models): still within the bounds.
    assert checks.gpu_distribution(_month(_distribution([("a", 45), ("b", 30), *balanced[2:]]))).passed
    # 30 is less than the largest cost replaced; 120 more than both together; 5 where nothing was unallocated.
    for wrong in ([("a", 30), *balanced[2:]], [("a", 120), *balanced[2:]], [("a", 5)]):
        outcome = checks.gpu_distribution(_month(_distribution(wrong)))
        assert not outcome.passed and outcome.failures == 1
