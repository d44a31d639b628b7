"""Hand-derived VM cost and VM tmp-table rows (contract 8.4, 8.7, 8.9, 8.11; C-1..C-4, C-10, C6) and bad input."""

import datetime as dt
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ocp_assets.core.costs import inputs
from ocp_assets.core.costs.params import parse_params
from ocp_assets.core.errors import ConfigurationError, InputDataError
from ocp_assets.core.layout import VM, VM_USAGE, month_prefix, raw_schema
from ocp_assets.core.storage import open_data_root
from ocp_assets_tests.costs_support import ACCOUNT, SOURCE, ours
from ocp_assets_tests.reference.koku_cost_sql import KokuCostDatabase
from ocp_assets_tests.reference.koku_cost_sql_fixtures import VmParquet, vm_summary_row
from ocp_assets_tests.reference.parquet_fixtures import KokuParquetBuilder

OCT1, OCT2, OCT3 = dt.date(2026, 10, 1), dt.date(2026, 10, 2), dt.date(2026, 10, 3)
BASE = {
    "start_date": "2026-10-01",
    "end_date": "2026-10-02",
    "year": "2026",
    "month": "10",
    "source_uuid": SOURCE,
    "report_period_id": 1,
}
HOURLY = {**BASE, "rate_type": "Infrastructure", "hourly_rate": 0.25, "use_fractional_hours": True}
CORE = {**BASE, "rate_type": "Infrastructure", "hourly_rate": 0.05}
MONTHLY = {**BASE, "rate_type": "Infrastructure", "rate": "1", "cost_type": "OCP_VM_CORE"}  # 31/month, 31 days


def _run(tmp_path, vms: VmParquet, summary, file, params):
    vms.write()
    with KokuCostDatabase() as db:
        db.insert_summary_rows(summary)
        return ours(db, tmp_path, file, params)


def _by(rows, *keys):
    return {tuple(r[k] for k in keys): r for r in rows}


@pytest.fixture
def month(tmp_path):
    """8.11's two VMs on Oct 1-2, plus a VM on two nodes with changing cores (C-2), a VM of one name in two
    namespaces (C-4), a VM last seen on Oct 3 after the range (C-3) and one not summarised on its last day (C-3)."""
    vms = VmParquet(tmp_path, account=ACCOUNT, source=SOURCE)
    summary = []
    for day in (OCT1, OCT2):
        vms.hours(day, range(24), vm="rhel9-vm", cores=1.8981)
        vms.hours(day, range(12), vm="win2k22-vm", cores=2.0)
        summary += [vm_summary_row(day, vm=v, source=SOURCE) for v in ("rhel9-vm", "win2k22-vm")]
    vms.hours(OCT1, range(12), vm="mover", node="virt-0", cores=2.0)
    vms.hours(OCT1, range(12, 24), vm="mover", node="virt-1", cores=4.0)
    summary += [vm_summary_row(OCT1, vm="mover", node=n, source=SOURCE) for n in ("virt-0", "virt-1")]
    for namespace in ("team-a", "team-b"):
        vms.hours(OCT1, range(24), vm="twin", namespace=namespace, cores=1.0)
        summary.append(vm_summary_row(OCT1, vm="twin", namespace=namespace, source=SOURCE))
    vms.hours(OCT1, range(24), vm="late", cores=3.0)
    vms.hours(OCT3, range(6), vm="late", node="virt-2", cores=3.0)
    summary.append(vm_summary_row(OCT1, vm="late", source=SOURCE, labels={"v": "1"}))
    summary.append(vm_summary_row(OCT3, vm="late", node="virt-2", source=SOURCE, labels={"v": "3", "extra": "x"}))
    vms.hours(OCT1, range(24), vm="unsummarised-last", cores=1.0)
    vms.hours(OCT2, range(24), vm="unsummarised-last", cores=1.0)
    summary.append(vm_summary_row(OCT1, vm="unsummarised-last", source=SOURCE))
    return vms, summary


def test_hourly_vm_cost_is_hours_times_rate(tmp_path, month):
    rows = _by(
        _run(tmp_path, *month, "hourly_cost_virtual_machine.sql", HOURLY),
        "pod_labels",
        "usage_start",
        "node",
        "namespace",
    )
    cost = {(json.loads(k[0])["vm_kubevirt_io_name"], *k[1:3]): r["cost_model_cpu_cost"] for k, r in rows.items()}
    # C-1 / 8.11: 24 h x 0.25 = 6.0 and 12 h x 0.25 = 3.0 per day.
    assert cost[("rhel9-vm", OCT1, "virt-0")] == cost[("rhel9-vm", OCT2, "virt-0")] == pytest.approx(6.0)
    assert cost[("win2k22-vm", OCT2, "virt-0")] == pytest.approx(3.0)
    # C-2: 12 h on virt-0 + 12 h on virt-1 = 24 h; each node's summary group gets the full day, 6.0.
    assert cost[("mover", OCT1, "virt-0")] == cost[("mover", OCT1, "virt-1")] == pytest.approx(6.0)
    # C-3: summarised on Oct 1 only, its hours that day (24) are charged: 6.0; nothing on Oct 2.
    assert cost[("unsummarised-last", OCT1, "virt-0")] == pytest.approx(6.0)
    assert ("unsummarised-last", OCT2, "virt-0") not in cost
    # C-4 / 8.9.1: "twin" runs 24 h in each of two namespaces: the hours pool to 48 h, 12.0 on each row.
    twins = [r for r in rows.values() if json.loads(r["pod_labels"])["vm_kubevirt_io_name"] == "twin"]
    assert sorted(r["namespace"] for r in twins) == ["team-a", "team-b"]
    assert all(r["cost_model_cpu_cost"] == pytest.approx(12.0) for r in twins)
    sample = rows[next(k for k in rows if "rhel9-vm" in k[0])]
    assert sample["cost_model_rate_type"] == "Infrastructure" and sample["monthly_cost_type"] is None
    assert sample["report_period_id"] == 1 and sample["data_source"] == "Pod" and sample["source_uuid"] == SOURCE
    assert len(rows) == 2 * 2 + 2 + 2 + 1 + 1  # late's Oct 1 row too: 24 h x 0.25


def _core_costs(rows):
    return {(json.loads(r["pod_labels"])["vm_kubevirt_io_name"], r["namespace"], r["usage_start"]): r for r in rows}


def test_hourly_vm_core_cost(tmp_path, month):
    rows = _core_costs(_run(tmp_path, *month, "hourly_vm_core.sql", CORE))
    # 8.11: 24 h x 1.8981 cores x 0.05 = 2.27772 per day.
    assert rows[("rhel9-vm", "vms", OCT1)]["cost_model_cpu_cost"] == pytest.approx(2.27772, rel=1e-12)
    assert rows[("win2k22-vm", "vms", OCT2)]["cost_model_cpu_cost"] == pytest.approx(12 * 2.0 * 0.05)
    # C-2 / 8.9.3: 43200 s at 2 cores and 43200 s at 4 cores: max(s)/3600 x max(c) x rate = 12 x 4 x 0.05 = 2.4,
    # one row (the group has no node) on the VM's latest node.
    mover = rows[("mover", "vms", OCT1)]
    assert mover["cost_model_cpu_cost"] == pytest.approx(2.4) and mover["node"] == "virt-1"
    # C-4: 2 x 86400 s at 1 core pooled: 48 x 1 x 0.05 = 2.4 in each namespace.
    assert rows[("twin", "team-a", OCT1)]["cost_model_cpu_cost"] == pytest.approx(2.4)
    assert rows[("twin", "team-b", OCT1)]["cost_model_cpu_cost"] == pytest.approx(2.4)
    # C-3: last seen Oct 3 (outside the range) on virt-2: Oct 1's row takes that node and Oct 3's labels.
    late = rows[("late", "vms", OCT1)]
    assert late["node"] == "virt-2" and late["cost_model_cpu_cost"] == pytest.approx(24 * 3.0 * 0.05)
    assert json.loads(late["pod_labels"]) == {"vm_kubevirt_io_name": "late", "v": "3", "extra": "x"}
    assert late["all_labels"] == late["pod_labels"]
    # C-3: no summary row on its last day (Oct 2): no core cost at all, not even on Oct 1.
    assert not [k for k in rows if k[0] == "unsummarised-last"]


def test_monthly_vm_core_cost(tmp_path, month):
    rows = _core_costs(_run(tmp_path, *month, "monthly_vm_core.sql", MONTHLY))
    # 8.11: 31/month in a 31-day month = 1 per core-day: 1.8981 per day, whatever the hours (8.9.4: win 12 h -> 2).
    assert rows[("rhel9-vm", "vms", OCT1)]["cost_model_cpu_cost"] == pytest.approx(1.8981)
    assert rows[("win2k22-vm", "vms", OCT1)]["cost_model_cpu_cost"] == pytest.approx(2.0)
    assert rows[("mover", "vms", OCT1)]["cost_model_cpu_cost"] == pytest.approx(4.0)  # the day's largest cores
    assert rows[("rhel9-vm", "vms", OCT1)]["monthly_cost_type"] == "OCP_VM_CORE"


def test_monthly_rate_is_rounded_to_15_decimals_first(tmp_path, month):
    # koku passes Decimal(1000)/31 with 28 digits; the SQL casts it to DECIMAL(33,15): 32.258064516129032 x 2 cores.
    params = {**MONTHLY, "rate": "32.25806451612903225806451613"}
    rows = _core_costs(_run(tmp_path, *month, "monthly_vm_core.sql", params))
    assert rows[("win2k22-vm", "vms", OCT1)]["cost_model_cpu_cost"] == pytest.approx(64.516129032258064, rel=1e-15)


def test_tmp_table_with_vm_report(tmp_path, month):
    vms, summary = month
    # C-10: the month's single latest hour is Oct 3 05:00, when only "late" runs (on virt-2, 3 cores, 4 GiB):
    # cpu 3 x 24 = 72, memory 4 x 24 = 96; its one claim name is '' (no claim); every other VM is absent.
    rows = _run(tmp_path, vms, summary, "populate_vm_tmp_table_with_vm_report.sql", {**BASE, "uuid": "u1"})
    assert rows == [{"vm_name": "late", "node": "virt-2", "pvc_name": "", "cpu_request": 72.0, "mem_request": 96.0}]


def test_tmp_table_with_vm_report_claims(tmp_path):
    vms = VmParquet(tmp_path, account=ACCOUNT, source=SOURCE)
    vms.hours(OCT1, range(24), vm="db", cores=2.0, memory_gib=8.0, claim="db-root")
    vms.hours(OCT1, range(24), vm="db", cores=2.0, memory_gib=8.0, claim="db-data")
    vms.hours(OCT1, range(24), vm="plain", node="virt-1", cores=1.0, memory_gib=2.0)
    rows = _run(tmp_path, vms, [], "populate_vm_tmp_table_with_vm_report.sql", {**BASE, "uuid": "u1"})
    # One row per claim of the VM (8.7): db twice (48 cores-hours, 192 GiB-hours), plain once with ''.
    assert sorted((r["vm_name"], r["node"], r["pvc_name"], r["cpu_request"], r["mem_request"]) for r in rows) == [
        ("db", "virt-0", "db-data", 48.0, 192.0),
        ("db", "virt-0", "db-root", 48.0, 192.0),
        ("plain", "virt-1", "", 24.0, 48.0),
    ]


def test_tmp_table_without_vm_report(tmp_path):
    pods = KokuParquetBuilder(tmp_path, account=ACCOUNT, source=SOURCE)
    for day in (OCT1, OCT2, OCT3):
        for vm in ("db", "plain"):
            pods.pod(
                day,
                pod=f"virt-launcher-{vm}",
                namespace="vms",
                node="virt-0",
                resource_id="id-virt-0",
                labels={"vm_kubevirt_io_name": vm},
            )
    pods.pvc(OCT1, namespace="vms", pod="virt-launcher-db", pvc="db-root", pv="pv-1")
    pods.write()
    summary = [vm_summary_row(d, vm="db", source=SOURCE, cpu_request_hours=float(d.day)) for d in (OCT1, OCT2, OCT3)]
    summary.append(vm_summary_row(OCT2, vm="plain", source=SOURCE, cpu_request_hours=5.0, memory_request_hours=6.0))
    # C6: a second row of "plain" that day on another node with a larger request is the one kept.
    summary.append(vm_summary_row(OCT2, vm="plain", node="virt-9", source=SOURCE, cpu_request_hours=7.0))
    summary.append(vm_summary_row(OCT2, vm="other-source", source="00000000-0000-4000-8000-000000000001"))
    params = {**BASE, "end_date": "2026-10-03", "uuid": "u2"}
    with KokuCostDatabase() as db:
        db.insert_summary_rows(summary)
        rows = ours(db, tmp_path, "populate_vm_tmp_table.sql", params)
    # The range's days with rows are Oct 1-3: the second-to-last, Oct 2, is read. db: request 2 (its Oct 2 row),
    # claim db-root through its launcher pod; plain: no claim (NULL). The other source's VM is not read (C6).
    assert sorted((r["vm_name"], r["node"], r["pvc_name"], r["cpu_request"], r["mem_request"]) for r in rows) == [
        ("db", "virt-0", "db-root", 2.0, 96.0),
        ("plain", "virt-9", None, 7.0, 96.0),
    ]


def test_tmp_table_single_day_uses_that_day(tmp_path):
    summary = [vm_summary_row(OCT3, vm="solo", source=SOURCE, cpu_request_hours=3.0)]
    params = {**BASE, "end_date": "2026-10-31", "uuid": "u3"}
    with KokuCostDatabase() as db:
        db.insert_summary_rows(summary)
        rows = ours(db, tmp_path, "populate_vm_tmp_table.sql", params)
    assert [(r["vm_name"], r["cpu_request"], r["pvc_name"]) for r in rows] == [("solo", 3.0, None)]


# ------------------------------------------------------------------------------------------------ bad input
def _vm_file(tmp_path, **changes) -> str:
    schema = raw_schema(VM)
    row = dict.fromkeys(schema.names)
    row.update(interval_start=dt.datetime(2026, 10, 1, 3), vm_name="v", vm_uptime_total_seconds=3600.0)
    rows = [dict(row), {**row, **changes}]
    folder = tmp_path / month_prefix(ACCOUNT, VM_USAGE, SOURCE, 2026, 10, daily=False)
    folder.mkdir(parents=True)
    pq.write_table(pa.Table.from_pylist(rows, schema=schema), folder / "bad.parquet")
    return str(folder / "bad.parquet")


@pytest.mark.parametrize(
    ("column", "value"),
    [("vm_uptime_total_seconds", -1.0), ("vm_cpu_request_cores", -2.0), ("interval_start", None)],
)
def test_bad_vm_cell_names_file_column_and_row(tmp_path, column, value):
    path = _vm_file(tmp_path, **{column: value})
    with pytest.raises(InputDataError) as caught:
        inputs.read_vm_usage(open_data_root(str(tmp_path)), ACCOUNT, SOURCE, "2026", "10", daily=False)
    assert caught.value.file.endswith(path.split(str(tmp_path))[1]) and caught.value.column == column
    assert caught.value.row == 2


def test_missing_vm_column_is_named(tmp_path):
    folder = tmp_path / month_prefix(ACCOUNT, VM_USAGE, SOURCE, 2026, 10, daily=False)
    folder.mkdir(parents=True)
    pq.write_table(
        pa.table({"interval_start": pa.array([dt.datetime(2026, 10, 1)], pa.timestamp("ms"))}), folder / "x.parquet"
    )
    with pytest.raises(InputDataError) as caught:
        inputs.read_vm_usage(open_data_root(str(tmp_path)), ACCOUNT, SOURCE, "2026", "10", daily=False)
    assert caught.value.column == "vm_name" and "missing" in caught.value.reason


@pytest.mark.parametrize(
    ("file", "params", "word"),
    [
        ("hourly_vm_core.sql", {**BASE, "rate_type": "Infrastructure"}, "hourly_rate"),
        ("monthly_vm_core.sql", {**MONTHLY, "rate": "abc"}, "rate"),
        ("hourly_cost_virtual_machine.sql", {**HOURLY, "month": "13"}, "month"),
        ("hourly_cost_virtual_machine.sql", {**HOURLY, "start_date": "yesterday"}, "start_date"),
        ("no_such_file.sql", BASE, "no_such_file"),
    ],
)
def test_bad_parameters_are_configuration_errors(file, params, word):
    with pytest.raises(ConfigurationError, match=word):
        parse_params(file, {**params, "schema": "org1"})


@pytest.mark.parametrize("file", ["hourly_vm_core.sql", "monthly_vm_core.sql"])
def test_a_json_null_label_on_the_last_day_wins_over_a_string(tmp_path, file):
    """Combined labels take koku's DISTINCT ON (key) ORDER BY key, value DESC: PostgreSQL sorts NULL first in
    descending order, so a key that is JSON null on one of the VM's last-day rows is written as null (C2, C7)."""
    vms = VmParquet(tmp_path, account=ACCOUNT, source=SOURCE)
    vms.hours(OCT1, range(24), vm="v", node="virt-0", cores=1.0)
    summary = [
        vm_summary_row(OCT1, vm="v", node="virt-0", source=SOURCE, labels={"app": "zeta"}),
        vm_summary_row(OCT1, vm="v", node="virt-1", source=SOURCE, labels={"app": None}),
    ]
    params = CORE if file == "hourly_vm_core.sql" else MONTHLY
    rows = _run(tmp_path, vms, summary, file, params)
    assert rows and all(json.loads(r["pod_labels"])["app"] is None for r in rows)
