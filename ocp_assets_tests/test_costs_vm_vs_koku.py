"""The VM cost files and VM tmp table of ocp_assets.core.costs equal koku's own SQL on the same data and parameters."""

import datetime as dt
import json

import pytest

from ocp_assets_tests.costs_support import (
    OTHER_SOURCE,
    SOURCE,
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


def _mixed_month(tmp_path):
    """Two ordinary VMs, one on two nodes with changing cores, one pooled across namespaces, one last seen after the
    range, one never summarised; summary rows for another source and accrued/monthly rows that must be ignored."""
    vms = VmParquet(tmp_path, account="org1234567", source=SOURCE)
    summary = []
    for day in (OCT1, OCT2):
        vms.hours(day, range(24), vm="rhel9-vm", cores=1.8981, claim="rhel9-root")
        vms.hours(day, range(12), vm="win2k22-vm", cores=2.0)
        summary.append(vm_summary_row(day, vm="rhel9-vm", source=SOURCE, labels={"app": "db"}))
        summary.append(vm_summary_row(day, vm="win2k22-vm", source=SOURCE, labels={"os": "windows"}))
    vms.hours(OCT1, range(12), vm="mover", node="virt-0", cores=2.0, claim="mover-a")
    vms.hours(OCT1, range(12, 24), vm="mover", node="virt-1", cores=4.0, claim="mover-b")
    summary += [vm_summary_row(OCT1, vm="mover", node=n, source=SOURCE, labels={"at": n}) for n in ("virt-0", "virt-1")]
    for namespace in ("team-a", "team-b"):
        vms.hours(OCT1, range(24), vm="twin", namespace=namespace, cores=1.0)
        summary.append(vm_summary_row(OCT1, vm="twin", namespace=namespace, source=SOURCE, cost_category_id=None))
    vms.hours(OCT1, range(24), vm="late", cores=3.0)
    vms.hours(OCT3, range(6), vm="late", node="virt-2", cores=3.0)
    summary.append(vm_summary_row(OCT1, vm="late", source=SOURCE, labels={"v": "1"}))
    summary.append(vm_summary_row(OCT3, vm="late", node="virt-2", source=SOURCE, labels={"v": "3", "extra": "x"}))
    vms.hours(OCT2, range(24), vm="ghost", cores=1.0)
    summary.append(vm_summary_row(OCT1, vm="ghost", source=SOURCE))
    summary.append(vm_summary_row(OCT1, vm="rhel9-vm", source=OTHER_SOURCE, report_period_id=2, node="elsewhere"))
    summary.append(vm_summary_row(OCT1, vm="rhel9-vm", source=SOURCE, cost_model_rate_type="Infrastructure"))
    summary.append(vm_summary_row(OCT1, vm="rhel9-vm", source=SOURCE, monthly_cost_type="OCP_VM_CORE"))
    vms.write()
    return summary


@pytest.mark.parametrize("end", ["2026-10-31", "2026-10-02"])
@pytest.mark.parametrize(("file", "extra"), CALLS, ids=[f"{f}-{e.get('rate_type', '')}" for f, e in CALLS])
def test_vm_file_equals_koku(tmp_path, file, extra, end):
    summary = _mixed_month(tmp_path)
    params = {**BASE, **extra, "end_date": end}
    with KokuCostDatabase() as db:
        db.load_parquet(tmp_path, "org1234567", SOURCE, [(2026, 10)])
        db.insert_summary_rows(summary)
        expected = db.run(file, params)
        actual = ours(db, tmp_path, file, params)
    if file == "populate_vm_tmp_table.sql":
        # koku keeps an arbitrary row of a VM with several rows that day (any source's, C6): compare the others.
        ambiguous = _vms_with_several_rows(summary, dt.date(2026, 10, 1) if end == "2026-10-02" else OCT2)
        expected = [r for r in expected if r["vm_name"] not in ambiguous]
        actual = [r for r in actual if r["vm_name"] not in ambiguous]
    assert expected, "the scenario must give koku rows"
    assert_same_rows(expected, actual, columns_of(file))


def _vms_with_several_rows(summary, day):
    names = [json.loads(r["pod_labels"])["vm_kubevirt_io_name"] for r in summary if r["usage_start"] == day]
    return {name for name in names if names.count(name) > 1}
