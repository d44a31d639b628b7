"""koku's parameter dict of one cost-model file call (contract 8.3), parsed and checked.

koku renders its files with jinjasql; a PARAMS.json holds the same dict as JSON. Numbers that the SQL casts to
DECIMAL(33,15) (``hourly_rate``, ``rate``) are kept as Decimal when given as text or parsed with Decimal, so a
28-digit Python Decimal survives the trip; floats are read as koku's psycopg literal (their ``repr``).
"""

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation, localcontext
from typing import Any

from ocp_assets.core.errors import ConfigurationError

# PostgreSQL's numeric rounding (half away from zero) to numeric(33,15)'s scale; 18 integer digits at most.
DECIMAL_15 = Decimal("1e-15")
NUMERIC_33_15_LIMIT = Decimal(10) ** 18

BASE_KEYS = ("start_date", "end_date", "year", "month", "schema", "source_uuid")
REQUIRED_KEYS = {
    "hourly_cost_virtual_machine.sql": (*BASE_KEYS, "report_period_id", "rate_type", "hourly_rate"),
    "hourly_vm_core.sql": (*BASE_KEYS, "report_period_id", "rate_type", "hourly_rate"),
    "monthly_vm_core.sql": (*BASE_KEYS, "report_period_id", "rate_type", "rate", "cost_type"),
    "populate_vm_tmp_table_with_vm_report.sql": (*BASE_KEYS, "uuid"),
    "populate_vm_tmp_table.sql": (*BASE_KEYS, "uuid"),
    "hourly_cost_vm_tag_based.sql": (*BASE_KEYS, "report_period_id", "rate_type", "tag_key"),
    "hourly_vm_core_tag_based.sql": (*BASE_KEYS, "report_period_id", "rate_type", "tag_key"),
    "monthly_vm_core_tag_based.sql": (*BASE_KEYS, "report_period_id", "rate_type", "tag_key", "amortized_denominator"),
    "monthly_cost_gpu.sql": (
        *BASE_KEYS,
        "report_period_id",
        "rate_type",
        "tag_key",
        "amortized_denominator",
        "cluster_id",
    ),
    "monthly_project_tag_based.sql": (
        *BASE_KEYS,
        "report_period_id",
        "rate_type",
        "tag_key",
        "amortized_denominator",
        "cluster_id",
    ),
    "distribute_unallocated_gpu_cost.sql": (*BASE_KEYS, "cost_model_rate_type"),
}
# The tag files (8.2 step 3): koku's templates test ``default_rate is defined`` / ``value_rates is defined``, so an
# absent key and a present one are different calls; CallParams keeps None / {} for "absent".
TAG_FILES = tuple(name for name, keys in REQUIRED_KEYS.items() if "tag_key" in keys)


@dataclass(frozen=True)
class CallParams:
    """One call's parameters with their SQL meaning: dates, the year/month of the line items read, the rates."""

    file: str
    start_date: dt.date
    end_date: dt.date
    year: str
    month: str
    schema: str
    source_uuid: str
    report_period_id: int | None = None
    rate_type: str | None = None
    hourly_rate: Decimal | None = None
    rate: Decimal | None = None
    cost_type: str | None = None
    use_fractional_hours: bool = True
    uuid: str | None = None
    # Tag calls (8.2, 8.3): the label or vendor key, the default and per-value rates, the month's days.
    tag_key: str | None = None
    default_rate: Decimal | None = None
    value_rates: dict[str, Decimal] = field(default_factory=dict)
    amortized_denominator: int | None = None
    cluster_id: str | None = None
    cluster_alias: str | None = None
    cost_model_rate_type: str | None = None

    def decimal_rate(self, name: str) -> float:
        """The rate parameter `name` as the SQL uses it (``sql_decimal``)."""
        return sql_decimal(getattr(self, name), f"{name} of {self.file}")

    def days(self) -> int:
        """``amortized_denominator`` of a file that divides by it (parse_params requires it of those files; a
        CallParams built by hand may lack it)."""
        if self.amortized_denominator is None:
            raise ConfigurationError(f"{self.file} needs parameter amortized_denominator")
        return self.amortized_denominator

    def tag(self) -> str:
        """``tag_key`` of a tag file (parse_params requires it of those files; a CallParams built by hand may lack
        it)."""
        if self.tag_key is None:
            raise ConfigurationError(f"{self.file} needs parameter tag_key")
        return self.tag_key


def round_numeric_33_15(value: Decimal) -> Decimal:
    """`value` as numeric(33,15) stores it: rounded half away from zero to 15 decimals (any size of value: the
    context is widened, the default 28 digits would refuse a rate of 1e13)."""
    with localcontext() as wide:
        wide.prec = max(1, value.adjusted() + 1) + 15 + 2
        return value.quantize(DECIMAL_15, rounding=ROUND_HALF_UP)


def as_numeric_33_15(value: Decimal, what: str) -> Decimal:
    """CAST(value AS DECIMAL(33,15)): rounded half away from zero; beyond 18 integer digits koku's SQL fails."""
    rounded = round_numeric_33_15(value)
    if abs(rounded) >= NUMERIC_33_15_LIMIT:
        raise ConfigurationError(f"{what} {value} does not fit numeric(33,15)").with_hint(
            "koku's CAST(... AS DECIMAL(33, 15)) fails on it (numeric field overflow); use a smaller rate"
        )
    return rounded


def sql_decimal(value: Decimal, what: str = "rate") -> float:
    """A rate as koku's SQL uses it: CAST(rate AS DECIMAL(33,15)), then float8 in a float8 product."""
    return float(as_numeric_33_15(value, what))


def base_params(schema: str, source: str, start: dt.date, end: dt.date, report_period_id: int) -> dict:
    """koku's BaseCostModelParams: the piece, its year/month (the line items' folder), schema, source, period."""
    return {
        "start_date": start.isoformat(),
        "end_date": end.isoformat(),
        "year": start.strftime("%Y"),
        "month": start.strftime("%m"),
        "schema": schema,
        "source_uuid": source,
        "report_period_id": report_period_id,
    }


def _date(file: str, key: str, value: Any) -> dt.date:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        raise _bad(file, key, value, "a date YYYY-MM-DD") from None


def _decimal(file: str, key: str, value: Any) -> Decimal:
    # A float goes to PostgreSQL as its repr (psycopg's literal), so that is the decimal the SQL sees.
    text = repr(value) if isinstance(value, float) else str(value)
    try:
        number = Decimal(text)
    except InvalidOperation:
        raise _bad(file, key, value, "a number") from None
    if not number.is_finite() or isinstance(value, bool):
        raise _bad(file, key, value, "a finite number")
    return number


def _bad(file: str, key: str, value: Any, wanted: str) -> ConfigurationError:
    return ConfigurationError(f"parameter {key!r} of {file} is {value!r}, not {wanted}").with_hint(
        "pass the parameter dict koku renders this file with (docs/operations.md, the cost model)"
    )


def parse_params(file: str, raw: Mapping[str, Any]) -> CallParams:
    """koku's parameter dict for `file` as CallParams; a missing or malformed parameter is a ConfigurationError."""
    if file not in REQUIRED_KEYS:
        raise ConfigurationError(f"unknown koku file {file!r}").with_hint(f"one of {', '.join(sorted(REQUIRED_KEYS))}")
    missing = [key for key in REQUIRED_KEYS[file] if raw.get(key) is None]
    if missing:
        raise ConfigurationError(f"{file} needs parameter(s) {', '.join(missing)}").with_hint(
            "pass the parameter dict koku renders this file with (docs/operations.md, the cost model)"
        )
    start, end = _date(file, "start_date", raw["start_date"]), _date(file, "end_date", raw["end_date"])
    year, month = str(raw["year"]), str(raw["month"])
    if not (year.isdigit() and len(year) == 4):
        raise _bad(file, "year", raw["year"], "a four-digit year")
    if not (month.isdigit() and len(month) == 2 and 1 <= int(month) <= 12):
        raise _bad(file, "month", raw["month"], "a zero-padded month '01'..'12'")
    period = raw.get("report_period_id")
    if period is not None and (isinstance(period, bool) or not str(period).lstrip("-").isdigit()):
        raise _bad(file, "report_period_id", period, "an integer")
    return CallParams(
        file=file,
        start_date=start,
        end_date=end,
        year=year,
        month=month,
        schema=str(raw["schema"]),
        source_uuid=str(raw["source_uuid"]),
        report_period_id=None if period is None else int(period),
        rate_type=None if raw.get("rate_type") is None else str(raw["rate_type"]),
        hourly_rate=None if raw.get("hourly_rate") is None else _decimal(file, "hourly_rate", raw["hourly_rate"]),
        rate=None if raw.get("rate") is None else _decimal(file, "rate", raw["rate"]),
        cost_type=None if raw.get("cost_type") is None else str(raw["cost_type"]),
        use_fractional_hours=bool(raw.get("use_fractional_hours", True)),
        uuid=None if raw.get("uuid") is None else str(raw["uuid"]),
        **_tag_fields(file, raw),
    )


def _tag_fields(file: str, raw: Mapping[str, Any]) -> dict[str, Any]:
    """The tag, GPU, project and distribution calls' own parameters (8.3)."""
    value_rates = raw.get("value_rates") or {}
    if not isinstance(value_rates, Mapping):
        raise _bad(file, "value_rates", value_rates, "an object {tag value: rate}")
    denominator = raw.get("amortized_denominator")
    if denominator is not None and (isinstance(denominator, bool) or not str(denominator).isdigit()):
        raise _bad(file, "amortized_denominator", denominator, "a positive integer (days in the month)")
    if denominator is not None and int(denominator) == 0:
        raise _bad(file, "amortized_denominator", denominator, "a positive integer (days in the month)")
    return {
        "tag_key": None if raw.get("tag_key") is None else str(raw["tag_key"]),
        "default_rate": None
        if raw.get("default_rate") is None
        else _decimal(file, "default_rate", raw["default_rate"]),
        "value_rates": {str(k): _decimal(file, f"value_rates[{k!r}]", v) for k, v in value_rates.items()},
        "amortized_denominator": None if denominator is None else int(denominator),
        "cluster_id": None if raw.get("cluster_id") is None else str(raw["cluster_id"]),
        "cluster_alias": None if raw.get("cluster_alias") is None else str(raw["cluster_alias"]),
        "cost_model_rate_type": (None if raw.get("cost_model_rate_type") is None else str(raw["cost_model_rate_type"])),
    }
