"""Rate resolution from koku's cost model tables (contract 8.2; C-5, C-11) and the VM calls planned from it (8.3)."""

import datetime as dt
import json
import uuid
from decimal import Decimal

import pytest

from ocp_assets.core.costs.rates import (
    ResolvedRates,
    amortized_monthly_rate,
    load_cost_model,
    resolve_rates,
    vm_calls,
)
from ocp_assets.core.errors import ConfigurationError
from ocp_assets_tests.costs_support import SOURCE
from ocp_assets_tests.reference.koku_cost_sql import KokuCostDatabase

OCT1 = dt.date(2026, 10, 1)
TAG_RATES = [
    {  # values only
        "metric": {"name": "vm_cost_per_hour"},
        "cost_type": "Infrastructure",
        "tag_rates": {"tag_key": "app", "tag_values": [{"tag_value": "db", "value": "0.5", "default": False}]},
    },
    {  # values and a default
        "metric": {"name": "vm_cost_per_hour"},
        "cost_type": "Supplementary",
        "tag_rates": {
            "tag_key": "tier",
            "tag_values": [
                {"tag_value": "gold", "value": "2", "default": False},
                {"tag_value": "bronze", "value": "0.25", "default": True},
            ],
        },
    },
    {  # a default only
        "metric": {"name": "project_per_month"},
        "cost_type": "Infrastructure",
        "tag_rates": {"tag_key": "env", "tag_values": [{"tag_value": "any", "value": "310", "default": True}]},
    },
]


def _store(db, lists, distribution_info=None, source=SOURCE):
    """A cost model mapped to `source` with `lists`: (start, end, priority, rate rows, rates JSON)."""
    model = str(uuid.uuid4())
    db.conn.execute(
        "INSERT INTO cost_model (uuid, name, description, source_type, distribution_info)"
        " VALUES (%s, 'm', '', 'OCP', %s)",
        (model, json.dumps(distribution_info or {})),
    )
    db.conn.execute("INSERT INTO cost_model_map (provider_uuid, cost_model_id) VALUES (%s, %s)", (source, model))
    for start, end, priority, rows, rates in lists:
        price_list = str(uuid.uuid4())
        db.conn.execute(
            "INSERT INTO price_list (uuid, name, description, currency, effective_start_date, effective_end_date,"
            " rates) VALUES (%s, 'p', '', 'USD', %s, %s, %s)",
            (price_list, start, end, json.dumps(rates)),
        )
        db.conn.execute(
            "INSERT INTO price_list_cost_model_map (price_list_id, cost_model_id, priority) VALUES (%s, %s, %s)",
            (price_list, model, priority),
        )
        for n, (metric, cost_type, value, tag_key) in enumerate(rows):
            db.conn.execute(
                "INSERT INTO cost_model_rate (uuid, price_list_id, custom_name, metric, metric_type, cost_type,"
                " default_rate, tag_key) VALUES (gen_random_uuid(), %s, %s, %s, 'cpu', %s, %s, %s)",
                (price_list, f"r{n}", metric, cost_type, value, tag_key),
            )


def _resolved(lists, day=OCT1, distribution_info=None):
    with KokuCostDatabase() as db:
        _store(db, lists, distribution_info)
        _store(
            db,
            [(dt.date(2026, 1, 1), dt.date(2026, 12, 31), 0, [("vm_cost_per_hour", "Infrastructure", 9, "")], [])],
            source=str(uuid.uuid4()),
        )  # another source's model is never read
        return resolve_rates(load_cost_model(db.conn, db.schema, SOURCE), day)


YEAR = (dt.date(2026, 1, 1), dt.date(2026, 12, 31))


def test_tiered_rates_summed_null_as_zero_tag_rows_skipped():
    rows = [
        ("vm_cost_per_hour", "Infrastructure", Decimal("0.25"), ""),
        ("vm_cost_per_hour", "Infrastructure", Decimal("0.05"), ""),  # same (metric, cost type): 0.25 + 0.05
        ("vm_core_cost_per_hour", "Supplementary", None, ""),  # NULL default_rate: 0
        ("vm_cost_per_hour", "Infrastructure", Decimal("7"), "app"),  # a tag rate row: not tiered
    ]
    rates = _resolved([(*YEAR, 0, rows, TAG_RATES)])
    assert rates.tiered == {
        ("vm_cost_per_hour", "Infrastructure"): pytest.approx(0.30),
        ("vm_core_cost_per_hour", "Supplementary"): 0.0,
    }
    assert rates.distribution == "cpu" and rates.gpu_unallocated is False


def test_tag_parameter_sets_values_default_and_both():
    rates = _resolved([(*YEAR, 0, [], TAG_RATES)])
    assert rates.tag_rates == {
        "vm_cost_per_hour": [
            {"rate_type": "Infrastructure", "tag_key": "app", "value_rates": {"db": 0.5}},
            {"rate_type": "Supplementary", "tag_key": "tier", "default_rate": 0.25, "value_rates": {"gold": 2.0}},
        ],
        "project_per_month": [{"rate_type": "Infrastructure", "tag_key": "env", "default_rate": 310.0}],
    }


def test_distribution_info_read():
    rates = _resolved([(*YEAR, 0, [], [])], distribution_info={"distribution_type": "memory", "gpu_unallocated": True})
    assert (rates.distribution, rates.gpu_unallocated) == ("memory", True)


@pytest.mark.parametrize(
    ("lists", "expected"),
    [
        # C-11: no list valid on Oct 1 (one ends Sep 30, one starts Oct 2): no rates at all.
        (
            [
                (dt.date(2026, 1, 1), dt.date(2026, 9, 30), 0, [("vm_cost_per_hour", "Infrastructure", 1, "")], []),
                (dt.date(2026, 10, 2), dt.date(2026, 12, 31), 0, [("vm_cost_per_hour", "Infrastructure", 2, "")], []),
            ],
            {},
        ),
        # Valid from the day itself to the day itself: it counts.
        (
            [(OCT1, OCT1, 5, [("vm_cost_per_hour", "Infrastructure", 3, "")], [])],
            {("vm_cost_per_hour", "Infrastructure"): 3.0},
        ),
        # Two valid lists: the lower priority number wins, whatever the insert order.
        (
            [
                (*YEAR, 2, [("vm_cost_per_hour", "Infrastructure", 4, "")], []),
                (*YEAR, 1, [("vm_cost_per_hour", "Infrastructure", 5, "")], []),
            ],
            {("vm_cost_per_hour", "Infrastructure"): 5.0},
        ),
    ],
    ids=["none-valid", "one-day", "priority"],
)
def test_effective_price_list(lists, expected):
    assert _resolved(lists).tiered == expected


def test_no_cost_model_no_rates():
    with KokuCostDatabase() as db:
        assert load_cost_model(db.conn, db.schema, SOURCE) is None
    assert resolve_rates(None, OCT1).tiered == {} and resolve_rates(None, OCT1).tag_rates == {}


def test_amortized_monthly_rate_is_kokus_decimal():
    # Decimal(1000.0) / 31 at 28 significant digits; the float 0.1 is taken with its full binary expansion.
    assert amortized_monthly_rate(1000.0, OCT1) == Decimal("32.25806451612903225806451613")
    assert amortized_monthly_rate(31.0, OCT1) == Decimal(1)
    assert (
        amortized_monthly_rate(0.1, dt.date(2026, 2, 1))
        == Decimal("0.1000000000000000055511151231257827021181583404541015625") / 28
    )


BASE = {
    "start_date": "2026-10-01",
    "end_date": "2026-10-31",
    "year": "2026",
    "month": "10",
    "schema": "s",
    "source_uuid": SOURCE,
    "report_period_id": 1,
}


@pytest.mark.parametrize(
    ("tiered", "expected_monthly"),
    [
        (
            {("vm_core_cost_per_month", "Infrastructure"): 31.0, ("vm_core_cost_per_month", "Supplementary"): 62.0},
            ("Infrastructure", Decimal(1)),
        ),  # C-5: both cost types: only Infrastructure is charged
        (
            {("vm_core_cost_per_month", "Infrastructure"): 0.0, ("vm_core_cost_per_month", "Supplementary"): 62.0},
            ("Supplementary", Decimal(2)),
        ),  # a zero Infrastructure rate falls through to Supplementary
        ({("vm_core_cost_per_month", "Infrastructure"): 0.0}, None),  # nothing non-zero: no call
    ],
    ids=["both", "infra-zero", "none"],
)
def test_monthly_vm_core_call_one_cost_type(tiered, expected_monthly):
    monthly = [p for f, p in vm_calls(ResolvedRates(tiered), BASE) if f == "monthly_vm_core.sql"]
    if expected_monthly is None:
        assert monthly == []
    else:
        assert [(p["rate_type"], p["rate"], p["cost_type"]) for p in monthly] == [(*expected_monthly, "OCP_VM_CORE")]


def test_hourly_calls_per_cost_type_with_a_rate():
    tiered = {
        ("vm_cost_per_hour", "Infrastructure"): 0.25,
        ("vm_cost_per_hour", "Supplementary"): 0.0,
        ("vm_core_cost_per_hour", "Supplementary"): 0.05,
    }
    calls = [(f, p["rate_type"], p["hourly_rate"]) for f, p in vm_calls(ResolvedRates(tiered), BASE)]
    # A stored zero rate still runs (koku filters the metric by presence), giving zero costs.
    assert calls == [
        ("hourly_cost_virtual_machine.sql", "Infrastructure", 0.25),
        ("hourly_cost_virtual_machine.sql", "Supplementary", 0.0),
        ("hourly_vm_core.sql", "Supplementary", 0.05),
    ]


def test_a_rate_is_rounded_as_numeric_33_15_whatever_its_size():
    """CAST(rate AS DECIMAL(33,15)) takes 18 integer digits: 1e13 and 1e17 stay (Decimal's default 28-digit context
    refused them), 0.1234567890123455 rounds half away from zero, 1e18 is koku's numeric field overflow."""
    from ocp_assets.core.costs.params import sql_decimal

    assert sql_decimal(Decimal("1e13")) == 1e13
    assert sql_decimal(Decimal("99999999999999999.9999999999999994")) == 99999999999999999.999999999999999
    assert sql_decimal(Decimal("0.1234567890123455")) == 0.123456789012346
    with pytest.raises(ConfigurationError, match="does not fit numeric"):
        sql_decimal(Decimal("1e18"), "hourly_rate of hourly_cost_virtual_machine.sql")
