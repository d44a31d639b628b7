"""Shared helpers of the cost-model tests: run ocp_assets.core.costs and koku's SQL on the same data, compare rows."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from decimal import Decimal

import pyarrow as pa
import pytest

from ocp_assets.core.costs import inputs, vm
from ocp_assets.core.costs.params import parse_params
from ocp_assets.core.storage import open_data_root
from ocp_assets_tests.reference.koku_cost_sql import KokuCostDatabase, koku_git

ACCOUNT = "org1234567"
SOURCE = "6f0c5b3e-8a0e-4a8c-9a53-2a9f1c0d7e11"
OTHER_SOURCE = "1b7e2c4d-0000-4000-8000-00000000beef"

needs_koku = pytest.mark.skipif(koku_git() is None, reason="no koku git copy (OCP_ASSETS_KOKU_GIT)")
# The VM cost files reading the raw vm_usage rows and the summary's VM rows: f(params, vm_raw, summary).
VM_COST_FILES = {
    "hourly_cost_virtual_machine.sql": vm.hourly_cost_virtual_machine,
    "hourly_vm_core.sql": vm.hourly_vm_core,
    "monthly_vm_core.sql": vm.monthly_vm_core,
    "hourly_cost_vm_tag_based.sql": vm.hourly_cost_vm_tag_based,
    "hourly_vm_core_tag_based.sql": vm.hourly_vm_core_tag_based,
}
# ... and those reading the daily rows too: f(params, vm_raw, vm_daily, summary).
VM_DAILY_COST_FILES = {"monthly_vm_core_tag_based.sql": vm.monthly_vm_core_tag_based}
# The three tag-rate shapes of a tag call (8.2 step 3), keyed by a test id: koku passes only the keys a rate has.
TAG_SHAPES = {
    "values": lambda values, default: {"value_rates": values},
    "values+default": lambda values, default: {"value_rates": values, "default_rate": default},
    "default": lambda values, default: {"default_rate": default},
}


def ours(db: KokuCostDatabase, data_root, file: str, raw_params: Mapping) -> list[dict]:
    """ocp_assets' rows for one call: Parquet read from `data_root`, summary rows read from `db`."""
    params = parse_params(file, {**raw_params, "schema": db.schema})
    root = open_data_root(str(data_root))
    vm_raw = inputs.read_vm_usage(root, ACCOUNT, params.source_uuid, params.year, params.month, daily=False).table
    if file in VM_COST_FILES or file in VM_DAILY_COST_FILES:
        summary = inputs.read_summary_vm_rows(db.conn, db.schema, report_period_id=params.report_period_id)
        if file in VM_COST_FILES:
            return VM_COST_FILES[file](params, vm_raw, summary).to_pylist()
        vm_daily = inputs.read_vm_usage(root, ACCOUNT, params.source_uuid, params.year, params.month, daily=True)
        return VM_DAILY_COST_FILES[file](params, vm_raw, vm_daily.table, summary).to_pylist()
    if file == "populate_vm_tmp_table_with_vm_report.sql":
        return vm.vm_tmp_rows_with_report(vm_raw).to_pylist()
    summary = inputs.read_summary_vm_rows(
        db.conn, db.schema, source_uuid=params.source_uuid, start=params.start_date, end=params.end_date
    )
    pods = inputs.read_pod_labels_daily(root, ACCOUNT, params.source_uuid, params.year, params.month).table
    claims = inputs.read_storage_claims_daily(root, ACCOUNT, params.source_uuid, params.year, params.month).table
    return vm.vm_tmp_rows_without_report(params, summary, pods, claims).to_pylist()


def run_ours(data_root, vms, summary: Iterable[Mapping], file: str, raw_params: Mapping) -> list[dict]:
    """Write `vms` (a VmParquet) under `data_root`, put `summary` in a scratch koku schema and return ours()."""
    vms.write()
    with KokuCostDatabase() as db:
        db.insert_summary_rows(summary)
        return ours(db, data_root, file, raw_params)


def _canon(value):
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True)
    if isinstance(value, str) and value.startswith("{"):
        return json.dumps(json.loads(value), sort_keys=True)
    if isinstance(value, Decimal):
        return float(value)
    if value is not None and not isinstance(value, (str, int, float)):
        return str(value)
    return value


def canonical(rows: Iterable[Mapping], columns: list[str]) -> list[tuple]:
    out = [tuple(_canon(row.get(c)) for c in columns) for row in rows]
    return sorted(out, key=lambda r: json.dumps(r, default=str))


def assert_same_rows(expected: Iterable[Mapping], actual: Iterable[Mapping], columns: list[str]) -> None:
    """Row sets equal: text and ids exactly, numbers within relative 1e-9 (D6), NULL only as NULL."""
    exp, act = canonical(expected, columns), canonical(actual, columns)
    assert len(exp) == len(act), f"{len(act)} rows, expected {len(exp)}:\nexpected {exp}\nactual   {act}"
    for e, a in zip(exp, act):
        for column, ev, av in zip(columns, e, a):
            if isinstance(ev, float) and isinstance(av, float):
                assert math.isclose(ev, av, rel_tol=1e-9, abs_tol=1e-12), f"{column}: {av} != {ev} in {a} vs {e}"
            else:
                assert ev == av, f"{column}: {av!r} != {ev!r}\nexpected {e}\nactual   {a}"


COST_COLUMNS = list(vm.COST_SCHEMA.names)
TMP_COLUMNS = list(vm.TMP_SCHEMA.names)


def columns_of(file: str) -> list[str]:
    return TMP_COLUMNS if file.startswith("populate_vm_tmp_table") else COST_COLUMNS


def as_table(rows: list[dict], schema: pa.Schema) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=schema)
