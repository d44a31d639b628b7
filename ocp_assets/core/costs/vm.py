"""koku's VM cost files and VM tmp table (contract 8.4, 8.7), computed from the VM line items and summary rows.

Each function takes the call's parameters, the month's VM line items (``inputs.read_vm_usage``; the monthly VM-core
tag file also the daily ones) and the summary's VM rows (``inputs.read_summary_vm_rows``) and returns the rows
koku's file inserts (C3). The tiered files (a, c, e of 8.4) and their tag twins (b, d, f) share the joins; the tag
files differ in the tag filter, the per-row rate and how they group and label their rows. The line items are
aggregated with pyarrow; the few summary rows of VMs are grouped in Python, keyed by their jsonb text exactly as
PostgreSQL groups jsonb. ``max`` follows SQL: NULLs ignored, text compared by code point (koku's databases use
C collation for this; ours too).
"""

import datetime as dt
import json
from collections.abc import Callable, Iterable

import pyarrow as pa
import pyarrow.compute as pc

from ocp_assets.core.costs.params import CallParams, sql_decimal
from ocp_assets.core.costs.rows import WHERE_AND_WHEN, cost_schema
from ocp_assets.core.errors import ConfigurationError

COST_SCHEMA = cost_schema(
    *WHERE_AND_WHEN, "resource_id", "pod_labels", "all_labels", "source_uuid", "cost_model_rate_type",
    "cost_model_cpu_cost", "monthly_cost_type", "cost_category_id",
)  # fmt: skip
TMP_SCHEMA = pa.schema(
    [
        ("vm_name", pa.string()),
        ("node", pa.string()),
        ("pvc_name", pa.string()),
        ("cpu_request", pa.float64()),
        ("mem_request", pa.float64()),
    ]
)
# The summary row's columns every VM cost row copies (its GROUP BY besides the file's own keys).
COMMON_KEYS = (
    "usage_start",
    "usage_end",
    "source_uuid",
    "cluster_id",
    "cluster_alias",
    "namespace",
    "data_source",
    "cost_category_id",
)
ACCRUED_RATE_TYPES = ("Infrastructure", "Supplementary")
TAG_COST_TYPE = "Tag"  # monthly_cost_type of every tag file's rows
SECONDS_PER_HOUR = 3600
GIB = 2.0**-30


def sql_max(values: Iterable):
    """SQL's max: NULLs ignored, NULL when nothing is left."""
    present = [v for v in values if v is not None]
    return max(present) if present else None


def _usage_rows(
    summary: pa.Table, params: CallParams, *, in_range: bool, rate_filter: bool, monthly_filter: bool = True
) -> list[dict]:
    """The summary rows the VM files read (8.4): the call's period, Pod usage rows with CPU usage and request;
    optionally within the range, not accrued usage-cost rows, and with no monthly cost type."""
    mask = pc.and_(
        pc.equal(summary["report_period_id"], params.report_period_id),
        pc.and_(pc.is_valid(summary["pod_usage_cpu_core_hours"]), pc.is_valid(summary["pod_request_cpu_core_hours"])),
    )
    mask = pc.and_(mask, pc.equal(summary["data_source"], "Pod"))
    if monthly_filter:
        mask = pc.and_(mask, pc.is_null(summary["monthly_cost_type"]))
    if in_range:
        start, end = pa.scalar(params.start_date, pa.date32()), pa.scalar(params.end_date, pa.date32())
        mask = pc.and_(
            mask, pc.and_(pc.greater_equal(summary["usage_start"], start), pc.less_equal(summary["usage_start"], end))
        )
    if rate_filter:
        rate_type = summary["cost_model_rate_type"]
        not_accrued = pc.invert(pc.is_in(rate_type, pa.array(ACCRUED_RATE_TYPES)))
        mask = pc.and_(mask, pc.or_(pc.is_null(rate_type), not_accrued))
    return summary.filter(pc.fill_null(mask, False)).to_pylist()


def _vm_day_totals(vm_rows: pa.Table, keys: list[str], aggregations: list[tuple[str, str]]) -> list[dict]:
    """VM line items grouped by `keys` (SQL GROUP BY: NULL keys form their own group)."""
    if vm_rows.num_rows == 0:
        return []
    grouped = vm_rows.group_by(keys, use_threads=False).aggregate(
        [(column, how, pc.ScalarAggregateOptions(skip_nulls=True, min_count=1)) for column, how in aggregations]
    )
    return grouped.to_pylist()


def _latest_facts(vm_rows: pa.Table) -> dict[str, list[dict]]:
    """Per VM: its rows at its last interval_start of the month (node and resource_id there, 8.4)."""
    if vm_rows.num_rows == 0:
        return {}
    last = vm_rows.group_by("vm_name", use_threads=False).aggregate([("interval_start", "max")])
    joined = vm_rows.join(last, keys="vm_name", join_type="inner")
    at_last = joined.filter(pc.equal(joined["interval_start"], joined["interval_start_max"]))
    facts: dict[str, list[dict]] = {}
    for row in at_last.select(["vm_name", "node", "resource_id", "interval_start"]).to_pylist():
        if row["vm_name"] is not None:
            facts.setdefault(row["vm_name"], []).append(row)
    return facts


def _combined_labels(summary_rows: list[dict], last_days: dict[str, dt.date]) -> dict[str, str | None]:
    """Per VM: the union of ``pod_labels || all_labels`` over its summary rows of the day of its last hour, the
    greatest value (as text) per key (8.4 combined labels; koku's DISTINCT ON (key) ORDER BY key, value DESC).

    A JSON null beats every string: ORDER BY ... DESC puts NULLs first in PostgreSQL, so koku keeps null (C2, C7)."""
    pairs: dict[str, dict[str, str | None]] = {}
    for row in summary_rows:
        vm = row["vm_name"]
        if last_days.get(vm) != row["usage_start"]:
            continue
        merged = {**json.loads(row["pod_labels"] or "{}"), **json.loads(row["all_labels"] or "{}")}
        best = pairs.setdefault(vm, {})
        for key, value in merged.items():
            text, held = _jsonb_text(value), best.get(key)
            if text is None or key not in best or (held is not None and text > held):
                best[key] = text
    return {vm: _jsonb_object(labels) for vm, labels in pairs.items()}


def _jsonb_text(value) -> str | None:
    """jsonb_each_text's text of a value: strings as they are, JSON null as NULL, others as JSON text."""
    if value is None or isinstance(value, str):
        return value
    return json.dumps(value, separators=(", ", ": "))


def _jsonb_object(labels: dict[str, str | None]) -> str | None:
    if not labels:
        return None  # jsonb_object_agg over no pairs
    return json.dumps(labels, ensure_ascii=False, sort_keys=True)


def _group(rows: Iterable[tuple[tuple, dict]], aggregate: Callable[[list[dict]], dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for key, row in rows:
        groups.setdefault(key, []).append(row)
    return [aggregate(members) for members in groups.values()]


def _per_hour(seconds: float | None) -> float | None:
    return None if seconds is None else seconds / SECONDS_PER_HOUR


def _cost_table(rows: list[dict]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=COST_SCHEMA)


def _cost_row(row: dict, params: CallParams, **values) -> dict:
    out = {key: row[key] for key in COMMON_KEYS}
    out.update(report_period_id=params.report_period_id, cost_model_rate_type=params.rate_type)
    out.update(monthly_cost_type=None)
    out.update(values)
    return out


def _times(*factors: float | None) -> float | None:
    """A float8 product, left to right as koku's SQL writes it; NULL when a factor is NULL."""
    present = [factor for factor in factors if factor is not None]
    if len(present) < len(factors):
        return None
    product = present[0]
    for factor in present[1:]:
        product *= factor
    return product


def _tag_priced(rows: list[dict], params: CallParams) -> list[dict]:
    """The tag files' filter and rate (8.4 b, d, f), the rate added to each row kept. With a default_rate koku keeps
    the rows whose ``pod_labels->>tag_key`` is not NULL (so a JSON null value counts as absent) and charges the
    value's rate, else the default; without one it keeps only the rows whose value has a rate."""
    if params.default_rate is None and not params.value_rates:
        # koku's template would render a filter "AND (" with nothing after it: its call fails.
        raise ConfigurationError(f"{params.file} needs default_rate or value_rates").with_hint(
            "a tag rate has a default value, per-value rates, or both"
        )
    default = None if params.default_rate is None else sql_decimal(params.default_rate)
    by_value = {value: sql_decimal(rate) for value, rate in params.value_rates.items()}
    priced = []
    for row in rows:
        value = _jsonb_text(json.loads(row["pod_labels"] or "{}").get(params.tag_key))
        rate = None if value is None else by_value.get(value, default)
        if rate is not None:
            priced.append({**row, "rate": rate})
    return priced


def _require_fractional_hours(params: CallParams) -> None:
    if not params.use_fractional_hours:
        raise ConfigurationError("use_fractional_hours false (koku's SaaS fallback) is not supported").with_hint(
            "on-prem koku always passes true"
        )


# ------------------------------------------------------------------------------------------------ VM hours (a, b)
def _hours_by_day(vm_raw: pa.Table) -> dict[tuple, float | None]:
    """Per (VM, day): Σ vm_uptime_total_seconds / 3600 of its raw rows, all namespaces pooled (8.9.1)."""
    seconds = _vm_day_totals(vm_raw, ["vm_name", "usage_start"], [("vm_uptime_total_seconds", "sum")])
    return {(r["vm_name"], r["usage_start"]): _per_hour(r["vm_uptime_total_seconds_sum"]) for r in seconds}


def _hourly_vm_rows(params: CallParams, vm_raw: pa.Table, rows: list[dict], monthly_cost_type: str | None) -> pa.Table:
    """Files a and b: per summary group (node, labels) of a VM-day, max(the VM's hours that day) x the group's
    rate (each row carries its ``rate``; in b it depends on pod_labels, a group key)."""
    hours = _hours_by_day(vm_raw)
    keyed = []
    for row in rows:
        day_key = (row["vm_name"], row["usage_start"])
        if day_key in hours:
            key = (*(row[k] for k in COMMON_KEYS), row["node"], row["pod_labels"], row["all_labels"])
            keyed.append((key, {**row, "hours": hours[day_key]}))

    def aggregate(members: list[dict]) -> dict:
        first = members[0]
        return _cost_row(
            first,
            params,
            node=first["node"],
            resource_id=sql_max(m["resource_id"] for m in members),
            pod_labels=first["pod_labels"],
            all_labels=first["all_labels"],
            cost_model_cpu_cost=_times(sql_max(m["hours"] for m in members), first["rate"]),
            monthly_cost_type=monthly_cost_type,
        )

    return _cost_table(_group(keyed, aggregate))


def hourly_cost_virtual_machine(params: CallParams, vm_raw: pa.Table, summary: pa.Table) -> pa.Table:
    """koku's cost_model/hourly_cost_virtual_machine.sql: per summary group (node, labels) of a VM-day, the VM's
    hours that day (Σ vm_uptime_total_seconds / 3600 of its raw rows, all namespaces: 8.9.1) x the hourly rate."""
    _require_fractional_hours(params)
    rate = params.decimal_rate("hourly_rate")
    rows = [{**row, "rate": rate} for row in _usage_rows(summary, params, in_range=True, rate_filter=True)]
    return _hourly_vm_rows(params, vm_raw, rows, None)


def hourly_cost_vm_tag_based(params: CallParams, vm_raw: pa.Table, summary: pa.Table) -> pa.Table:
    """koku's cost_model/hourly_cost_vm_tag_based.sql: hourly_cost_virtual_machine on the rows the tag filter
    keeps, each group at its tag value's rate (else the default_rate), monthly_cost_type 'Tag'."""
    _require_fractional_hours(params)
    rows = _tag_priced(_usage_rows(summary, params, in_range=True, rate_filter=True), params)
    return _hourly_vm_rows(params, vm_raw, rows, TAG_COST_TYPE)


# ------------------------------------------------------------------------------------------------ VM cores (c-f)
def _vm_core_members(rows: list[dict], day_values: dict, facts: dict, labels: dict | None = None) -> list:
    """(group key, member) pairs of the VM-core files' joins (8.4 c-f): a summary usage row joined (inner) to the
    VM's line-item values of its day and to the VM's latest facts. With `labels` (c, e: the VM's combined labels)
    the labels replace the row's and the facts and labels joins are inner; without (d, f) the row keeps its own
    labels and the facts are a LEFT JOIN (no facts: NULL node and resource_id)."""
    keyed = []
    for row in rows:
        vm = row["vm_name"]
        values = day_values.get((vm, row["usage_start"]))
        if values is None:
            continue
        member = {**row, "values": values, "latest": facts.get(vm, [])}
        if labels is not None:
            if vm not in facts or vm not in labels:
                continue
            member.update(pod_labels=labels[vm], all_labels=labels[vm])
        keyed.append(((*(row[k] for k in COMMON_KEYS), member["pod_labels"], member["all_labels"]), member))
    return keyed


def _combined_label_members(params: CallParams, vm_raw: pa.Table, summary: pa.Table, day_values: dict) -> list:
    """Files c and e: the range's usage rows with the VM's latest facts and combined labels (8.4)."""
    facts = _latest_facts(vm_raw)
    last_days = {vm: rows[0]["interval_start"].date() for vm, rows in facts.items()}
    labels = _combined_labels(_usage_rows(summary, params, in_range=False, rate_filter=False), last_days)
    rows = _usage_rows(summary, params, in_range=True, rate_filter=True)
    return _vm_core_members(rows, day_values, facts, labels)


def _tag_members(
    params: CallParams, vm_raw: pa.Table, summary: pa.Table, day_values: dict, *, monthly_filter: bool
) -> list:
    """Files d and f: the range's usage rows the tag filter keeps, with their rate and the VM's latest facts."""
    rows = _usage_rows(summary, params, in_range=True, rate_filter=True, monthly_filter=monthly_filter)
    return _vm_core_members(_tag_priced(rows, params), day_values, _latest_facts(vm_raw))


def _vm_core_row(members: list[dict], params: CallParams, cost, monthly_cost_type: str | None) -> dict:
    first = members[0]
    latest = [fact for m in members for fact in m["latest"]]
    return _cost_row(
        first,
        params,
        node=sql_max(f["node"] for f in latest),
        resource_id=sql_max(f["resource_id"] for f in latest),
        pod_labels=first["pod_labels"],
        all_labels=first["all_labels"],
        cost_model_cpu_cost=cost,
        monthly_cost_type=monthly_cost_type,
    )


def _cores_by_day(vm_rows: pa.Table) -> dict:
    """Per (VM, day): its (cores, Σ uptime seconds) pairs, one per distinct vm_cpu_request_cores (koku's
    vm_usage_summary groups by the core count too, 8.9.3)."""
    by_day: dict[tuple, list[tuple]] = {}
    totals = _vm_day_totals(
        vm_rows, ["vm_cpu_request_cores", "usage_start", "vm_name"], [("vm_uptime_total_seconds", "sum")]
    )
    for r in totals:
        by_day.setdefault((r["vm_name"], r["usage_start"]), []).append(
            (r["vm_cpu_request_cores"], r["vm_uptime_total_seconds_sum"])
        )
    return by_day


def _max_cores(members: list[dict]) -> float | None:
    return sql_max(c for m in members for c, _ in m["values"])


def hourly_vm_core(params: CallParams, vm_raw: pa.Table, summary: pa.Table) -> pa.Table:
    """koku's cost_model/hourly_vm_core.sql: per (namespace, VM combined labels) and day, max(seconds) / 3600 x
    max(cores) x the hourly rate, over the day's (cores, seconds) pairs; the VM's latest node on every row."""
    rate = params.decimal_rate("hourly_rate")

    def aggregate(members: list[dict]) -> dict:
        seconds = sql_max(s for m in members for _, s in m["values"])
        return _vm_core_row(members, params, _times(_per_hour(seconds), _max_cores(members), rate), None)

    return _cost_table(_group(_combined_label_members(params, vm_raw, summary, _cores_by_day(vm_raw)), aggregate))


def hourly_vm_core_tag_based(params: CallParams, vm_raw: pa.Table, summary: pa.Table) -> pa.Table:
    """koku's cost_model/hourly_vm_core_tag_based.sql: per summary group (namespace, the rows' own labels) of a
    VM-day the tag filter keeps, max(cores) x the tag value's rate (else the default) x max(hours) over the day's
    (cores, Σ seconds / 3600) pairs; the VM's latest node and resource_id (LEFT JOIN), monthly_cost_type 'Tag'.

    koku's file alone lacks the ``monthly_cost_type IS NULL`` filter of the VM files: reproduced, so a Pod row with
    a monthly cost type, CPU usage and request and no accrued rate type is charged too (8.4)."""

    def aggregate(members: list[dict]) -> dict:
        hours = sql_max(_per_hour(s) for m in members for _, s in m["values"])
        return _vm_core_row(members, params, _times(_max_cores(members), members[0]["rate"], hours), TAG_COST_TYPE)

    # koku's WHERE has no "monthly_cost_type IS NULL" here (every other VM file has it): reproduced.
    members = _tag_members(params, vm_raw, summary, _cores_by_day(vm_raw), monthly_filter=False)
    return _cost_table(_group(members, aggregate))


def monthly_vm_core(params: CallParams, vm_raw: pa.Table, summary: pa.Table) -> pa.Table:
    """koku's cost_model/monthly_vm_core.sql: per (namespace, VM combined labels) and day, the day's largest core
    count x the amortized monthly rate rounded to DECIMAL(33,15) (8.9.4: a full day's share for any presence)."""
    rate = params.decimal_rate("rate")

    def aggregate(members: list[dict]) -> dict:
        return _vm_core_row(members, params, _times(_max_cores(members), rate), params.cost_type)

    return _cost_table(_group(_combined_label_members(params, vm_raw, summary, _cores_by_day(vm_raw)), aggregate))


def monthly_vm_core_tag_based(params: CallParams, vm_raw: pa.Table, vm_daily: pa.Table, summary: pa.Table) -> pa.Table:
    """koku's cost_model/monthly_vm_core_tag_based.sql: per summary group (namespace, the rows' own labels) of a
    VM-day the tag filter keeps, (max(cores) x CAST(monthly rate AS DECIMAL(33,15))) / amortized_denominator, the
    cores from the **daily** vm_usage rows of that day (8.9.4: a full day's share for any presence); the VM's
    latest node and resource_id from the raw rows (LEFT JOIN), monthly_cost_type 'Tag'. The product is float8
    (the cores are), so is the quotient."""

    days = params.days()

    def aggregate(members: list[dict]) -> dict:
        cost = _times(_max_cores(members), members[0]["rate"])
        return _vm_core_row(members, params, None if cost is None else cost / days, TAG_COST_TYPE)

    members = _tag_members(params, vm_raw, summary, _cores_by_day(vm_daily), monthly_filter=True)
    return _cost_table(_group(members, aggregate))


# ------------------------------------------------------------------------------------------------ VM tmp table
def vm_tmp_rows_with_report(vm_raw: pa.Table) -> pa.Table:
    """koku's populate_vm_tmp_table_with_vm_report.sql (8.7): the VMs running in the month's single latest hour,
    per (VM, node) 24 x their largest cores and GiB, one row per distinct claim name of the VM's month rows
    (NULL and '' included, as koku groups them)."""
    if vm_raw.num_rows == 0:
        return TMP_SCHEMA.empty_table()
    latest_hour = pc.max(vm_raw["interval_start"])
    at_latest = vm_raw.filter(pc.equal(vm_raw["interval_start"], latest_hour))
    latest = _vm_day_totals(
        at_latest, ["vm_name", "node"], [("vm_cpu_request_cores", "max"), ("vm_memory_request_bytes", "max")]
    )
    claims: dict[str, list] = {}
    for r in vm_raw.group_by(["vm_name", "vm_persistentvolumeclaim_name"], use_threads=False).aggregate([]).to_pylist():
        claims.setdefault(r["vm_name"], []).append(r["vm_persistentvolumeclaim_name"])
    rows = []
    for r in latest:
        cores, memory = r["vm_cpu_request_cores_max"], r["vm_memory_request_bytes_max"]
        for claim in claims.get(r["vm_name"], []) if r["vm_name"] is not None else []:
            rows.append(
                {
                    "vm_name": r["vm_name"],
                    "node": r["node"],
                    "pvc_name": claim,
                    "cpu_request": None if cores is None else cores * 24,
                    "mem_request": None if memory is None else memory * GIB * 24,
                }
            )
    return pa.Table.from_pylist(rows, schema=TMP_SCHEMA)


def _second_to_last_day(rows: list[dict]) -> dt.date | None:
    days = sorted({r["usage_start"] for r in rows if r["pod_request_cpu_core_hours"] is not None}, reverse=True)
    return days[1] if len(days) > 1 else (days[0] if days else None)


def _vm_claims(pod_daily: pa.Table, storage_daily: pa.Table) -> dict[str, set[str]]:
    """Per VM name: the non-empty claims of storage daily rows whose pod is a pod-daily row labelled with it."""
    vm_of_pod: dict[str, set[str]] = {}
    for r in pod_daily.select(["pod", "pod_labels"]).to_pylist():
        labels = json.loads(r["pod_labels"]) if (r["pod_labels"] or "").strip() else {}
        vm = _jsonb_text(labels.get("vm_kubevirt_io_name"))  # None where the label is absent or JSON null
        if vm is not None and r["pod"] is not None:
            vm_of_pod.setdefault(r["pod"], set()).add(vm)
    claims: dict[str, set[str]] = {}
    for r in storage_daily.select(["pod", "persistentvolumeclaim"]).to_pylist():
        if r["persistentvolumeclaim"] and r["pod"] in vm_of_pod:
            for vm in vm_of_pod[r["pod"]]:
                claims.setdefault(vm, set()).add(r["persistentvolumeclaim"])
    return claims


def vm_tmp_rows_without_report(
    params: CallParams, summary: pa.Table, pod_daily: pa.Table, storage_daily: pa.Table
) -> pa.Table:
    """koku's populate_vm_tmp_table.sql (8.7): from the source's summary rows of the second-to-last day of the
    range (`summary`: ``read_summary_vm_rows`` by source and range), one row per VM and claim (NULL claim when none).

    C6: of a VM's rows that day the one with the largest CPU request is kept (ties: largest node, then namespace,
    then memory request), where koku keeps an arbitrary one (and reads other sources' rows too)."""
    rows = [r for r in summary.to_pylist() if params.start_date <= r["usage_start"] <= params.end_date]
    rows = [r for r in rows if r["source_uuid"] == params.source_uuid]
    day = _second_to_last_day(rows)
    chosen: dict[str, dict] = {}
    for r in rows:
        if r["usage_start"] != day or r["pod_request_cpu_core_hours"] is None:
            continue
        rank = (
            r["pod_request_cpu_core_hours"],
            r["node"] or "",
            r["namespace"] or "",
            r["pod_request_memory_gigabyte_hours"] or 0.0,
        )
        if r["vm_name"] not in chosen or rank > chosen[r["vm_name"]]["rank"]:
            chosen[r["vm_name"]] = {**r, "rank": rank}
    claims = _vm_claims(pod_daily, storage_daily)
    out = []
    for vm, r in chosen.items():
        for claim in sorted(claims.get(vm, ())) or [None]:
            out.append(
                {
                    "vm_name": vm,
                    "node": r["node"],
                    "pvc_name": claim,
                    "cpu_request": r["pod_request_cpu_core_hours"],
                    "mem_request": r["pod_request_memory_gigabyte_hours"],
                }
            )
    return pa.Table.from_pylist(out, schema=TMP_SCHEMA)
