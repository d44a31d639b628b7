"""A source's cost model, as koku stores it, resolved into rates and the VM files' call parameters (contract 8.2, 8.3).

``resolve_rates`` is pure: given the source's cost model row, its price lists (with their priorities and rate rows)
and the first day of a month piece, it returns what koku's ``CostModelDBAccessor(price_list_effective_on=day)``
gives: tiered rates per (metric, cost type), tag rate parameter sets per metric, the distribution settings.
``load_cost_model`` is the plain SELECT of koku's five tables; ``vm_calls`` plans the VM files' calls of a piece.
"""

import datetime as dt
import decimal
import json
from dataclasses import dataclass, field
from decimal import Decimal

import psycopg
from psycopg import sql

from ocp_assets.core.layout import days_in_month

INFRASTRUCTURE, SUPPLEMENTARY = "Infrastructure", "Supplementary"
VM_HOUR, VM_CORE_HOUR, VM_CORE_MONTH = "vm_cost_per_hour", "vm_core_cost_per_hour", "vm_core_cost_per_month"


@dataclass(frozen=True)
class RateRow:
    """One ``cost_model_rate`` row."""

    metric: str
    cost_type: str
    default_rate: Decimal | None
    tag_key: str = ""


@dataclass(frozen=True)
class PriceList:
    """One price list mapped to the cost model: validity, priority, its ``rates`` JSON and its rate rows."""

    uuid: str
    effective_start_date: dt.date
    effective_end_date: dt.date
    priority: int
    rates: list = field(default_factory=list)
    rate_rows: tuple[RateRow, ...] = ()


@dataclass(frozen=True)
class CostModel:
    uuid: str
    distribution_info: dict = field(default_factory=dict)
    price_lists: tuple[PriceList, ...] = ()


@dataclass(frozen=True)
class ResolvedRates:
    tiered: dict[tuple[str, str], float] = field(default_factory=dict)  # (metric, cost type) -> value
    tag_rates: dict[str, list[dict]] = field(default_factory=dict)  # metric -> koku's tag parameter sets
    distribution: str = "cpu"
    gpu_unallocated: bool = False

    def of_cost_type(self, cost_type: str) -> dict[str, float]:
        """koku's infrastructure_rates / supplementary_rates: metric -> value."""
        return {metric: value for (metric, kind), value in self.tiered.items() if kind == cost_type}


def effective_price_list(model: CostModel, day: dt.date) -> PriceList | None:
    """The mapped list valid on `day` with the lowest priority (disabled lists count too, as in koku). [decision]
    Equal priorities: the lowest uuid text, where koku's ORDER BY priority leaves the choice to PostgreSQL."""
    valid = [p for p in model.price_lists if p.effective_start_date <= day <= p.effective_end_date]
    return min(valid, key=lambda p: (p.priority, p.uuid)) if valid else None


def _tag_parameter_sets(rates: list) -> dict[str, list[dict]]:
    """koku's metric_to_tag_params_map: one set per rate with tag_rates (8.2 step 3)."""
    sets: dict[str, list[dict]] = {}
    for rate in rates or []:
        tag = rate.get("tag_rates")
        if not tag:
            continue
        params: dict = {"rate_type": rate["cost_type"], "tag_key": tag.get("tag_key")}
        values = {}
        for tag_value in tag.get("tag_values") or []:
            if tag_value.get("default"):
                params["default_rate"] = float(tag_value.get("value"))
            else:
                values[tag_value.get("tag_value")] = float(tag_value.get("value"))
        if values:
            params["value_rates"] = values
        sets.setdefault(rate.get("metric", {}).get("name"), []).append(params)
    return sets


def resolve_rates(model: CostModel | None, day: dt.date) -> ResolvedRates:
    """The rates of the month piece starting on `day` (8.2): none without a model or a valid price list."""
    if model is None:
        return ResolvedRates()
    info = model.distribution_info or {}
    distribution, gpu_unallocated = info.get("distribution_type", "cpu"), bool(info.get("gpu_unallocated"))
    chosen = effective_price_list(model, day)
    if chosen is None:
        return ResolvedRates(distribution=distribution, gpu_unallocated=gpu_unallocated)
    tiered: dict[tuple[str, str], float] = {}
    for row in chosen.rate_rows:
        if row.tag_key:
            continue
        value = float(row.default_rate) if row.default_rate is not None else 0.0
        tiered[(row.metric, row.cost_type)] = tiered.get((row.metric, row.cost_type), 0.0) + value
    return ResolvedRates(tiered, _tag_parameter_sets(chosen.rates), distribution, gpu_unallocated)


def amortized_monthly_rate(monthly_rate: float, day: dt.date) -> Decimal:
    """koku's get_amortized_monthly_cost_model_rate: Decimal(float) / days in the month, 28 significant digits."""
    with decimal.localcontext(decimal.Context(prec=28)):
        return Decimal(monthly_rate) / days_in_month(day)


def vm_calls(rates: ResolvedRates, base: dict) -> list[tuple[str, dict]]:
    """The VM tiered files koku calls for one piece, in its order (8.2): monthly VM core (Infrastructure if its
    rate is non-zero, else Supplementary; C-5), then the hourly VM files per cost type with such a rate."""
    calls = []
    start = dt.date.fromisoformat(str(base["start_date"]))
    for cost_type in (INFRASTRUCTURE, SUPPLEMENTARY):
        monthly = rates.of_cost_type(cost_type).get(VM_CORE_MONTH)
        if monthly:
            rate = amortized_monthly_rate(monthly, start)
            calls.append(
                ("monthly_vm_core.sql", {**base, "rate_type": cost_type, "rate": rate, "cost_type": "OCP_VM_CORE"})
            )
            break
    for cost_type in (INFRASTRUCTURE, SUPPLEMENTARY):
        hourly = rates.of_cost_type(cost_type)
        if VM_HOUR in hourly:
            params = {"rate_type": cost_type, "hourly_rate": hourly[VM_HOUR], "use_fractional_hours": True}
            calls.append(("hourly_cost_virtual_machine.sql", {**base, **params}))
        if VM_CORE_HOUR in hourly:
            calls.append(("hourly_vm_core.sql", {**base, "rate_type": cost_type, "hourly_rate": hourly[VM_CORE_HOUR]}))
    return calls


# ------------------------------------------------------------------------------------------------ koku's tables
_MODEL_SQL = """
SELECT cm.uuid::text, cm.distribution_info FROM {s}.cost_model cm
JOIN {s}.cost_model_map m ON m.cost_model_id = cm.uuid
WHERE m.provider_uuid = %s::uuid ORDER BY cm.name LIMIT 1
"""
_LISTS_SQL = """
SELECT pl.uuid::text, pl.effective_start_date, pl.effective_end_date, plm.priority, pl.rates
FROM {s}.price_list pl JOIN {s}.price_list_cost_model_map plm ON plm.price_list_id = pl.uuid
WHERE plm.cost_model_id = %s::uuid
"""
_RATES_SQL = """
SELECT price_list_id::text, metric, cost_type, default_rate, tag_key FROM {s}.cost_model_rate
WHERE price_list_id = ANY(%s::uuid[])
"""


def load_cost_model(conn: psycopg.Connection, schema: str, source_uuid: str) -> CostModel | None:
    """The source's cost model (koku: the first by name among those mapped to it) with its price lists."""
    s = sql.Identifier(schema)
    found = conn.execute(sql.SQL(_MODEL_SQL).format(s=s), (source_uuid,)).fetchone()
    if found is None:
        return None
    lists = conn.execute(sql.SQL(_LISTS_SQL).format(s=s), (found[0],)).fetchall()
    rows = conn.execute(sql.SQL(_RATES_SQL).format(s=s), ([row[0] for row in lists],)).fetchall()
    by_list: dict[str, list[RateRow]] = {}
    for list_id, metric, cost_type, default_rate, tag_key in rows:
        by_list.setdefault(list_id, []).append(RateRow(metric, cost_type, default_rate, tag_key or ""))
    price_lists = tuple(
        PriceList(uid, start, end, priority, _json(rates) or [], tuple(by_list.get(uid, ())))
        for uid, start, end, priority, rates in lists
    )
    return CostModel(found[0], _json(found[1]) or {}, price_lists)


def _json(value):
    return json.loads(value) if isinstance(value, str) else value
