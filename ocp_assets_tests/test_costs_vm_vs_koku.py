"""The VM cost files (tiered and tag-based) and VM tmp table of ocp_assets.core.costs equal koku's own SQL on the same
data and parameters."""

import datetime as dt
import json

import pytest

from ocp_assets_tests.costs_support import (
    OTHER_SOURCE,
    SOURCE,
    TAG_SHAPES,
    assert_same_rows,
    columns_of,
    needs_koku,
    ours,
)
from ocp_assets_tests.reference.koku_cost_sql import KokuCostDatabase
from ocp_assets_tests.reference.koku_cost_sql_fixtures import VmParquet, vm_summary_row

pytestmark = needs_koku
OCT1, OCT2, OCT3 = dt.date(2026, 10, 1), dt.date(2026, 10, 2), dt.date(2026, 10, 3)
BASE = {
    "start_date": "2026-10-01",
    "end_date": "2026-10-31",
    "year": "2026",
    "month": "10",
    "source_uuid": SOURCE,
    "report_period_id": 1,
}
CALLS = [
    (
        "hourly_cost_virtual_machine.sql",
        {"rate_type": "Infrastructure", "hourly_rate": 0.25, "use_fractional_hours": True},
    ),
    (
        "hourly_cost_virtual_machine.sql",
        {"rate_type": "Supplementary", "hourly_rate": 0.1, "use_fractional_hours": True},
    ),
    ("hourly_vm_core.sql", {"rate_type": "Infrastructure", "hourly_rate": 0.05}),
    (
        "monthly_vm_core.sql",
        {"rate_type": "Infrastructure", "rate": "1.0322580645161290322580645", "cost_type": "OCP_VM_CORE"},
    ),
    ("populate_vm_tmp_table_with_vm_report.sql", {"uuid": "abc123"}),
    ("populate_vm_tmp_table.sql", {"uuid": "abc123"}),
]
# The tag files on the label "env" (8.2 step 3): per-value rates (one with more than 15 decimals, rounded by the
# SQL's CAST) and a default, in koku's three shapes, for both cost types.
HOURLY_TAG_RATES = ({"prod": 0.3, "dev": 0.1234567890123456}, 0.07)
MONTHLY_TAG_RATES = ({"prod": 31.0, "dev": 46.5}, 15.5)
TAG_FILES = [
    ("hourly_cost_vm_tag_based.sql", HOURLY_TAG_RATES, {"use_fractional_hours": True}),
    ("hourly_vm_core_tag_based.sql", HOURLY_TAG_RATES, {}),
    ("monthly_vm_core_tag_based.sql", MONTHLY_TAG_RATES, {"amortized_denominator": 31, "cost_type": "Tag"}),
]
TAG_CALLS = [
    pytest.param(
        file,
        {"rate_type": rate_type, "tag_key": "env", **extra, **shape(*rates)},
        id=f"{file}-{rate_type}-{name}",
    )
    for file, rates, extra in TAG_FILES
    for rate_type in ("Infrastructure", "Supplementary")
    for name, shape in TAG_SHAPES.items()
]


def _mixed_month(tmp_path):
    """Two ordinary VMs, one on two nodes with changing cores, one pooled across namespaces, one last seen after the
    range, one never summarised; summary rows for another source and accrued/monthly rows that must be ignored.
    Label "env": prod, dev, a value without a rate (test), absent, and JSON null."""
    vms = VmParquet(tmp_path, account="org1234567", source=SOURCE)
    summary = []
    for day in (OCT1, OCT2):
        vms.hours(day, range(24), vm="rhel9-vm", cores=1.8981, claim="rhel9-root")
        vms.hours(day, range(12), vm="win2k22-vm", cores=2.0)
        summary.append(vm_summary_row(day, vm="rhel9-vm", source=SOURCE, labels={"app": "db", "env": "prod"}))
        summary.append(vm_summary_row(day, vm="win2k22-vm", source=SOURCE, labels={"os": "windows", "env": "dev"}))
    vms.hours(OCT1, range(12), vm="mover", node="virt-0", cores=2.0, claim="mover-a")
    vms.hours(OCT1, range(12, 24), vm="mover", node="virt-1", cores=4.0, claim="mover-b")
    for node, env in (("virt-0", "prod"), ("virt-1", "test")):
        summary.append(vm_summary_row(OCT1, vm="mover", node=node, source=SOURCE, labels={"at": node, "env": env}))
    for namespace, labels in (("team-a", {"env": "prod"}), ("team-b", None)):
        vms.hours(OCT1, range(24), vm="twin", namespace=namespace, cores=1.0)
        summary.append(
            vm_summary_row(OCT1, vm="twin", namespace=namespace, source=SOURCE, labels=labels, cost_category_id=None)
        )
    vms.hours(OCT1, range(24), vm="late", cores=3.0)
    vms.hours(OCT3, range(6), vm="late", node="virt-2", cores=3.0)
    summary.append(vm_summary_row(OCT1, vm="late", source=SOURCE, labels={"v": "1", "env": "dev"}))
    late_last = {"v": "3", "extra": "x", "env": "prod"}
    summary.append(vm_summary_row(OCT3, vm="late", node="virt-2", source=SOURCE, labels=late_last))
    vms.hours(OCT1, range(24), vm="nulled", cores=1.0)
    summary.append(vm_summary_row(OCT1, vm="nulled", source=SOURCE, labels={"env": None}))
    vms.hours(OCT2, range(24), vm="ghost", cores=1.0)
    summary.append(vm_summary_row(OCT1, vm="ghost", source=SOURCE, labels={"env": "prod"}))
    summary.append(vm_summary_row(OCT1, vm="rhel9-vm", source=OTHER_SOURCE, report_period_id=2, node="elsewhere"))
    accrued = {"env": "prod", "accrued": "1"}
    summary.append(
        vm_summary_row(OCT1, vm="rhel9-vm", source=SOURCE, labels=accrued, cost_model_rate_type="Infrastructure")
    )
    # hourly_vm_core_tag_based alone has no monthly_cost_type filter: this row is charged by it (8.4).
    monthly = {"env": "prod", "monthly": "1"}
    summary.append(vm_summary_row(OCT1, vm="rhel9-vm", source=SOURCE, labels=monthly, monthly_cost_type="OCP_VM_CORE"))
    vms.write()
    return summary


def _koku_and_ours(tmp_path, summary, file, params):
    with KokuCostDatabase() as db:
        db.load_parquet(tmp_path, "org1234567", SOURCE, [(2026, 10)])
        db.insert_summary_rows(summary)
        return db.run(file, params), ours(db, tmp_path, file, params)


@pytest.mark.parametrize("end", ["2026-10-31", "2026-10-02"])
@pytest.mark.parametrize(("file", "extra"), CALLS, ids=[f"{f}-{e.get('rate_type', '')}" for f, e in CALLS])
def test_vm_file_equals_koku(tmp_path, file, extra, end):
    summary = _mixed_month(tmp_path)
    expected, actual = _koku_and_ours(tmp_path, summary, file, {**BASE, **extra, "end_date": end})
    if file == "populate_vm_tmp_table.sql":
        # koku keeps an arbitrary row of a VM with several rows that day (any source's, C6): compare the others.
        ambiguous = _vms_with_several_rows(summary, dt.date(2026, 10, 1) if end == "2026-10-02" else OCT2)
        expected = [r for r in expected if r["vm_name"] not in ambiguous]
        actual = [r for r in actual if r["vm_name"] not in ambiguous]
    assert expected, "the scenario must give koku rows"
    assert_same_rows(expected, actual, columns_of(file))


@pytest.mark.parametrize("end", ["2026-10-31", "2026-10-02"])
@pytest.mark.parametrize(("file", "extra"), TAG_CALLS)
def test_vm_tag_file_equals_koku(tmp_path, file, extra, end):
    summary = _mixed_month(tmp_path)
    expected, actual = _koku_and_ours(tmp_path, summary, file, {**BASE, **extra, "end_date": end})
    assert expected, "the scenario must give koku rows"
    assert {r["monthly_cost_type"] for r in expected} == {"Tag"}
    assert_same_rows(expected, actual, columns_of(file))


def _vms_with_several_rows(summary, day):
    names = [json.loads(r["pod_labels"])["vm_kubevirt_io_name"] for r in summary if r["usage_start"] == day]
    return {name for name in names if names.count(name) > 1}
