"""Writing a cost model into koku's tables as koku's API stores it (contract 8.2): the demo's sample model, tests.

A model is its ``rates`` list in koku's JSON shape (tiered rates and tag rates), its ``distribution_info``, and one
price list holding the same rates, valid over a date range and mapped to the model; each tiered rate is also a
``cost_model_rate`` row (koku reads the tiered rates from those rows and the tag rates from the price list's JSON).
"""

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from decimal import Decimal

import psycopg
from psycopg import sql


@dataclass(frozen=True)
class TieredRate:
    metric: str  # e.g. vm_cost_per_hour
    cost_type: str  # Infrastructure or Supplementary
    value: str  # koku's text

    def as_koku(self) -> dict:
        return {
            "metric": {"name": self.metric},
            "cost_type": self.cost_type,
            "tiered_rates": [{"unit": "USD", "value": self.value, "usage": {"unit": "USD"}}],
        }


@dataclass(frozen=True)
class TagRate:
    metric: str  # e.g. gpu_cost_per_month
    cost_type: str
    tag_key: str  # a label key; for GPU rates the vendor as stored (nvidia)
    values: dict[str, str] = field(default_factory=dict)  # tag value -> rate text
    default: str | None = None  # the rate of any other value

    def as_koku(self) -> dict:
        tag_values = [
            {"tag_value": value, "value": rate, "unit": "USD", "default": False, "description": ""}
            for value, rate in self.values.items()
        ]
        if self.default is not None:
            tag_values.append(
                {"tag_value": "default", "value": self.default, "unit": "USD", "default": True, "description": ""}
            )
        return {
            "metric": {"name": self.metric},
            "cost_type": self.cost_type,
            "tag_rates": {"tag_key": self.tag_key, "tag_values": tag_values},
        }


@dataclass(frozen=True)
class CostModelSpec:
    name: str
    rates: tuple[TieredRate | TagRate, ...]
    distribution_info: dict = field(default_factory=dict)
    valid_from: dt.date = dt.date(2000, 1, 1)
    valid_to: dt.date = dt.date(2099, 12, 31)


def assigned_model(conn: psycopg.Connection, schema: str, source: str) -> str | None:
    """The uuid of the cost model assigned to `source`, or None."""
    found = conn.execute(
        sql.SQL("SELECT cost_model_id::text FROM {}.cost_model_map WHERE provider_uuid = %s::uuid").format(
            sql.Identifier(schema)
        ),
        (source,),
    ).fetchone()
    return None if found is None else found[0]


def store_cost_model(conn: psycopg.Connection, schema: str, source: str, spec: CostModelSpec) -> str:
    """Store `spec` as the cost model of `source` (which must have none) with one price list; its uuid."""
    model, price_list = str(uuid.uuid4()), str(uuid.uuid4())
    rates = json.dumps([rate.as_koku() for rate in spec.rates])
    s = sql.Identifier(schema)
    with conn.transaction():
        conn.execute(
            sql.SQL(
                "INSERT INTO {}.cost_model (uuid, name, description, source_type, rates, distribution_info)"
                " VALUES (%s, %s, '', 'OCP', %s, %s)"
            ).format(s),
            (model, spec.name, rates, json.dumps(spec.distribution_info)),
        )
        conn.execute(
            sql.SQL("INSERT INTO {}.cost_model_map (provider_uuid, cost_model_id) VALUES (%s, %s)").format(s),
            (source, model),
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO {}.price_list (uuid, name, description, currency, effective_start_date,"
                " effective_end_date, rates) VALUES (%s, %s, '', 'USD', %s, %s, %s)"
            ).format(s),
            (price_list, spec.name, spec.valid_from, spec.valid_to, rates),
        )
        conn.execute(
            sql.SQL(
                "INSERT INTO {}.price_list_cost_model_map (price_list_id, cost_model_id, priority) VALUES (%s, %s, 1)"
            ).format(s),
            (price_list, model),
        )
        for rate in spec.rates:
            if isinstance(rate, TieredRate):
                conn.execute(
                    sql.SQL(
                        "INSERT INTO {}.cost_model_rate (uuid, price_list_id, custom_name, metric, metric_type,"
                        " cost_type, default_rate) VALUES (%s, %s, %s, %s, 'cpu', %s, %s)"
                    ).format(s),
                    (str(uuid.uuid4()), price_list, f"{rate.metric} {rate.cost_type}"[:50], rate.metric,
                     rate.cost_type, Decimal(rate.value)),
                )  # fmt: skip
    return model
