"""The cost-model SQL port (reference/cost_sql_port.py) alone, on a hand-made month: contract 8.11's numbers and the
8.9 behaviours worked out by hand, without koku's source."""

import datetime as dt
import math
from decimal import Decimal

import pytest

from ocp_assets_tests.reference.cost_port_fixtures import A100, OCT1, OCT2, worked_month
from ocp_assets_tests.reference.cost_sql_port import run_port
from ocp_assets_tests.reference.koku_cost_sql import KokuCostDatabase
from ocp_assets_tests.reference.koku_cost_sql_fixtures import vm_summary_row

SOURCE = "6f0c5b3e-8a0e-4a8c-9a53-2a9f1c0d7e11"
BASE = {"start_date": "2026-10-01", "end_date": "2026-10-31", "year": "2026", "month": "10", "source_uuid": SOURCE,
        "report_period_id": 1, "schema": "ignored"}  # fmt: skip
HOURLY = {"rate_type": "Infrastructure", "use_fractional_hours": True}
MONTHLY = {"rate_type": "Infrastructure", "amortized_denominator": 31, "cluster_id": "cluster-a",
           "cluster_alias": "cluster-a alias", "cost_type": "Tag"}  # fmt: skip


@pytest.fixture(scope="module")
def month_db(dsn, tmp_path_factory):
    """The worked month loaded once; every test runs its calls in a transaction rolled back afterwards."""
    month = worked_month(tmp_path_factory.mktemp("worked"), SOURCE)
    with KokuCostDatabase(dsn) as db:
        month.load(db)
        yield db


@pytest.fixture
def db(month_db):
    with month_db.conn.transaction(force_rollback=True):
        yield month_db


def port(db, file, **extra):
    return run_port(db, file, {**BASE, **extra})


def close(actual, expected) -> bool:
    return actual is not None and math.isclose(float(actual), expected, rel_tol=1e-9)


def by_vm_day(rows, column="cost_model_cpu_cost") -> dict:
    """{(VM, day): value} of VM cost rows (one row each in the worked month)."""
    out = {}
    for row in rows:
        key = (row["pod_labels"]["vm_kubevirt_io_name"], row["usage_start"])
        assert key not in out, f"two rows for {key}"
        out[key] = row[column]
    return out


def assert_costs(actual: dict, expected: dict) -> None:
    assert set(actual) == set(expected)
    for key, value in expected.items():
        assert close(actual[key], value), f"{key}: {actual[key]} != {value}"


# ------------------------------------------------------------------------------------------------ VM files (8.4)
def test_hourly_vm_cost_is_hours_times_rate_per_vm_day(db):
    # rhel9-vm runs 24 h/day, win2k22-vm 12 h/day (8.11): 24 x 0.25 = 6.0 and 12 x 0.25 = 3.0 each day.
    rows = port(db, "hourly_cost_virtual_machine.sql", hourly_rate=0.25, **HOURLY)
    assert_costs(by_vm_day(rows), {("rhel9-vm", OCT1): 6.0, ("rhel9-vm", OCT2): 6.0,
                                   ("win2k22-vm", OCT1): 3.0, ("win2k22-vm", OCT2): 3.0})  # fmt: skip
    rhel9 = next(r for r in rows if r["node"] == "virt-0")
    assert rhel9["resource_id"] == "id-virt-0" and rhel9["pod_labels"] == rhel9["all_labels"]
    assert {r["cost_model_rate_type"] for r in rows} == {"Infrastructure"}
    assert {r["monthly_cost_type"] for r in rows} == {None} and {r["cost_model_memory_cost"] for r in rows} == {None}
    assert {str(r["source_uuid"]) for r in rows} == {SOURCE} and {r["report_period_id"] for r in rows} == {1}


def test_hourly_vm_core_cost_is_hours_times_cores_times_rate(db):
    # 24 h x 1.8981 cores x 0.05 = 2.27772 (8.11); win2k22: 12 h x 2 cores x 0.05 = 1.2.
    rows = port(db, "hourly_vm_core.sql", rate_type="Supplementary", hourly_rate=0.05)
    assert_costs(by_vm_day(rows), {("rhel9-vm", OCT1): 2.27772, ("rhel9-vm", OCT2): 2.27772,
                                   ("win2k22-vm", OCT1): 1.2, ("win2k22-vm", OCT2): 1.2})  # fmt: skip
    rhel9 = next(r for r in rows if r["pod_labels"]["vm_kubevirt_io_name"] == "rhel9-vm")
    # Combined labels of the VM's last day in both label columns; its latest node.
    assert rhel9["pod_labels"] == rhel9["all_labels"] == {"vm_kubevirt_io_name": "rhel9-vm", "app": "db"}
    assert (rhel9["node"], rhel9["resource_id"], rhel9["cost_model_rate_type"]) == (
        "virt-0",
        "id-virt-0",
        "Supplementary",
    )


def test_monthly_vm_core_charges_a_days_share_per_core(db):
    # 31 per core-month in a 31-day month: koku passes rate = 31 / 31 = 1; 1.8981 cores -> 1.8981 per day (8.11).
    rows = port(db, "monthly_vm_core.sql", rate_type="Infrastructure", rate=Decimal(31) / Decimal(31),
                cost_type="OCP_VM_CORE")  # fmt: skip
    assert_costs(by_vm_day(rows), {("rhel9-vm", OCT1): 1.8981, ("rhel9-vm", OCT2): 1.8981,
                                   ("win2k22-vm", OCT1): 2.0, ("win2k22-vm", OCT2): 2.0})  # fmt: skip
    assert {r["monthly_cost_type"] for r in rows} == {"OCP_VM_CORE"}


@pytest.mark.parametrize(
    ("rates", "expected"),
    [
        # app=db has a value rate 0.25 (24 h -> 6.0); app=web takes the default 0.1 (12 h -> 1.2).
        ({"value_rates": {"db": 0.25}, "default_rate": 0.1}, {"rhel9-vm": 6.0, "win2k22-vm": 1.2}),
        # Without a default only the priced value is charged.
        ({"value_rates": {"db": 0.25}}, {"rhel9-vm": 6.0}),
        # A default alone charges every VM with the key: 24 x 0.1 = 2.4, 12 x 0.1 = 1.2.
        ({"default_rate": 0.1}, {"rhel9-vm": 2.4, "win2k22-vm": 1.2}),
    ],
    ids=["values+default", "values", "default"],
)
def test_hourly_vm_tag_rate_picks_value_else_default(db, rates, expected):
    rows = port(db, "hourly_cost_vm_tag_based.sql", tag_key="app", **HOURLY, **rates)
    assert_costs(by_vm_day(rows), {(vm, day): cost for vm, cost in expected.items() for day in (OCT1, OCT2)})
    assert {r["monthly_cost_type"] for r in rows} == {"Tag"}


def test_a_tag_key_no_vm_carries_charges_nothing(db):
    assert port(db, "hourly_cost_vm_tag_based.sql", tag_key="team", default_rate=1.0, **HOURLY) == []


@pytest.mark.parametrize(
    ("rates", "expected"),
    [
        # 1.8981 cores x 0.05 x 24 h = 2.27772; win2k22 has no value rate and there is no default.
        ({"value_rates": {"db": 0.05}}, {"rhel9-vm": 2.27772}),
        # default 0.05 for win2k22 too: 2 cores x 0.05 x 12 h = 1.2.
        ({"default_rate": 0.05}, {"rhel9-vm": 2.27772, "win2k22-vm": 1.2}),
    ],
    ids=["values", "default"],
)
def test_hourly_vm_core_tag(db, rates, expected):
    rows = port(db, "hourly_vm_core_tag_based.sql", tag_key="app", rate_type="Infrastructure", **rates)
    assert_costs(by_vm_day(rows), {(vm, day): cost for vm, cost in expected.items() for day in (OCT1, OCT2)})
    # The rows keep their own labels (not combined) and get the VM's latest node.
    assert {r["node"] for r in rows if r["pod_labels"]["vm_kubevirt_io_name"] == "rhel9-vm"} == {"virt-0"}


def test_monthly_vm_core_tag_divides_the_monthly_rate_by_the_days(db):
    # app=db: 1.8981 cores x 31 / 31 = 1.8981 per day; app=web by default: 2 cores x 62 / 31 = 4.0.
    rows = port(db, "monthly_vm_core_tag_based.sql", tag_key="app", value_rates={"db": 31.0}, default_rate=62.0,
                **MONTHLY)  # fmt: skip
    assert_costs(by_vm_day(rows), {("rhel9-vm", OCT1): 1.8981, ("rhel9-vm", OCT2): 1.8981,
                                   ("win2k22-vm", OCT1): 4.0, ("win2k22-vm", OCT2): 4.0})  # fmt: skip


def test_vm_cost_of_rows_outside_the_range_or_period_is_not_written(db):
    rows = port(db, "hourly_cost_virtual_machine.sql", hourly_rate=0.25, end_date="2026-10-01", **HOURLY)
    assert {r["usage_start"] for r in rows} == {OCT1}
    assert port(db, "hourly_cost_virtual_machine.sql", hourly_rate=0.25, **{**HOURLY, "report_period_id": 2}) == []


def test_vm_core_on_two_nodes_in_a_day_gives_each_group_the_full_day(db):
    # C-2: a second summary row of rhel9-vm on OCT1 on another node with other labels. hourly VM: a row per node,
    # each 24 h x 0.25 = 6.0; hourly VM core: one group (combined labels, namespace) with 2.27772.
    db.insert_summary_rows([vm_summary_row(OCT1, vm="rhel9-vm", node="virt-9", source=SOURCE, labels={"x": "1"})])
    hourly = port(db, "hourly_cost_virtual_machine.sql", hourly_rate=0.25, end_date="2026-10-01", **HOURLY)
    assert sorted((r["node"], float(r["cost_model_cpu_cost"])) for r in hourly if r["node"] != "virt-1") == [
        ("virt-0", 6.0),
        ("virt-9", 6.0),
    ]
    cores = port(db, "hourly_vm_core.sql", rate_type="Infrastructure", hourly_rate=0.05, end_date="2026-10-01")
    (rhel9,) = [r for r in cores if r["pod_labels"]["vm_kubevirt_io_name"] == "rhel9-vm"]
    # The last day is OCT2, whose rows carry app=db only: the OCT1 label x=1 is not in the combined labels.
    assert close(rhel9["cost_model_cpu_cost"], 2.27772) and rhel9["node"] == "virt-0"
    assert rhel9["pod_labels"] == {"vm_kubevirt_io_name": "rhel9-vm", "app": "db"}


# ------------------------------------------------------------------------------------------------ project (8.5)
def _project(rows) -> dict:
    return {(r["namespace"], r["usage_start"], r["node"]): r["cost_model_cpu_cost"] for r in rows}


def test_project_rate_is_split_by_the_namespaces_nodes(db):
    # prod = 310/month -> 10 per day; ml-training on 2 nodes on day 1 (5 each), 3 on day 2 (3.333333333333333 each,
    # exact numeric rounded to 15 decimals); openshift-monitoring and kube-system are excluded.
    rows = port(db, "monthly_project_tag_based.sql", tag_key="env", value_rates={"prod": 310.0}, **MONTHLY)
    third = Decimal("3.333333333333333")
    assert _project(rows) == {
        ("ml-training", OCT1, "gpu-0"): Decimal(5),
        ("ml-training", OCT1, "gpu-1"): Decimal(5),
        ("ml-training", OCT2, "gpu-0"): third,
        ("ml-training", OCT2, "gpu-1"): third,
        ("ml-training", OCT2, "gpu-2"): third,
    }
    row = rows[0]
    assert row["pod_labels"] == row["all_labels"] == {"env": "prod"} and row["data_source"] == "Pod"
    assert (row["cluster_id"], row["cluster_alias"], row["monthly_cost_type"]) == (
        "cluster-a",
        "cluster-a alias",
        "Tag",
    )
    assert row["resource_id"] is None and row["cost_category_id"] is None


def test_project_claim_without_node_and_namespace_without_usage(db):
    # dev takes the default 31/month -> 1 per day. scratch: one node (gpu-0) and a Storage row without node: both
    # rows get 1 / 1 = 1 (8.9.6, total 2). idle has no usage: one NULL-node row with the whole 1.
    rows = port(db, "monthly_project_tag_based.sql", tag_key="env", value_rates={"prod": 310.0}, default_rate=31.0,
                **MONTHLY)  # fmt: skip
    costs = _project(rows)
    assert costs[("scratch", OCT1, "gpu-0")] == costs[("scratch", OCT1, None)] == costs[("idle", OCT1, None)] == 1
    assert costs[("ml-training", OCT1, "gpu-0")] == 5 and len(costs) == 8


def test_project_default_only(db):
    # 31/month -> 1 per day for every env namespace: ml-training 1/2 and 1/3 per node.
    costs = _project(port(db, "monthly_project_tag_based.sql", tag_key="env", default_rate=31.0, **MONTHLY))
    assert costs[("ml-training", OCT1, "gpu-1")] == Decimal("0.5")
    assert costs[("ml-training", OCT2, "gpu-2")] == Decimal("0.333333333333333")


# ------------------------------------------------------------------------------------------------ GPU (8.6, 8.8)
GPU_RATES = {"tag_key": "nvidia", "value_rates": {A100: 1000.0}}


def test_gpu_allocated_rows_cost_the_days_share_of_uptime(db):
    # 1000/month over 31 days: a GPU used 86400 s costs 1000/31 = 32.258064516129..., 43200 s half that.
    rows = port(db, "monthly_cost_gpu.sql", **GPU_RATES, **MONTHLY)
    allocated = [r for r in rows if r["namespace"] != "GPU unallocated"]
    assert sorted((r["namespace"], r["resource_id"]) for r in allocated) == [
        ("inference", "GPU-5"), ("inference", "GPU-6"), *[("ml-training", f"GPU-{i}") for i in range(5)]]  # fmt: skip
    for row in allocated:
        assert close(row["cost_model_gpu_cost"], 1000 / 31 * (1 if row["namespace"] == "ml-training" else 0.5))
    # C5: ml-training matches ml-% (7) and ml-training (9): one row with 9; inference matches none.
    assert {r["namespace"]: r["cost_category_id"] for r in allocated} == {"ml-training": 9, "inference": None}
    labels = next(r["all_labels"] for r in allocated if r["resource_id"] == "GPU-0")
    assert labels == {"gpu-model": A100, "gpu-vendor": "nvidia", "gpu-memory-mib": "81920", "mig-profile": "",
                      "mig-slice-count": None, "gpu-max-slices": None, "mig-strategy": "", "mig-memory-mib": None,
                      "gpu-mode": "dedicated", "gpu-uuid": "GPU-0", "mig-instance-id": ""}  # fmt: skip
    assert {(r["data_source"], r["monthly_cost_type"], r["usage_end"]) for r in rows} == {("GPU", "Tag", OCT1)}


def test_gpu_unallocated_row_costs_the_unused_slice_hours(db):
    # gpu-0: 8 A100s for 24 h, 5 used 24 h and 2 used 12 h: u = 24 x 8 - (120 + 24) = 48 slice-hours (max slices 1),
    # 1000 / (31 x 24 x 1) x 48 = 64.516129032258 (8.11). gpu-single (strategy single, idle): u = 24 x 2 - 0 = 48 > 0
    # but no GPU rows, so no max slices: NULL cost (8.9.8). gpu-mixed (idle, mixed): u NULL, no row. gpu-lower: its
    # present label is "true", not "True": no row.
    rows = port(db, "monthly_cost_gpu.sql", **GPU_RATES, **MONTHLY)
    unallocated = {r["node"]: r for r in rows if r["namespace"] == "GPU unallocated"}
    assert set(unallocated) == {"gpu-0", "gpu-single"}
    assert close(unallocated["gpu-0"]["cost_model_gpu_cost"], 1000 / (31 * 24) * 48)
    assert close(unallocated["gpu-0"]["cost_model_gpu_cost"], 64.516129032258)
    assert unallocated["gpu-0"]["all_labels"] == {"gpu-model": A100, "max-slices-per-gpu": "1"}
    assert unallocated["gpu-single"]["cost_model_gpu_cost"] is None
    assert unallocated["gpu-single"]["all_labels"] == {"gpu-model": A100, "max-slices-per-gpu": None}
    assert {(r["resource_id"], r["cost_category_id"]) for r in unallocated.values()} == {(None, None)}


def test_gpu_model_without_rate_costs_zero_allocated_and_null_unallocated(db):
    # 8.9.7: only a T4 is priced, no default: the A100 rows cost 0, the unallocated A100 row NULL.
    rows = port(db, "monthly_cost_gpu.sql", tag_key="nvidia", value_rates={"Tesla T4": 5.0}, **MONTHLY)
    assert {float(r["cost_model_gpu_cost"]) for r in rows if r["namespace"] != "GPU unallocated"} == {0.0}
    assert {r["cost_model_gpu_cost"] for r in rows if r["namespace"] == "GPU unallocated"} == {None}
    # Another vendor: no allocated rows, and no GPU rows of it on gpu-0 (no max slices: no row); the label rows
    # alone still give the idle single-strategy node its NULL-cost row.
    other = port(db, "monthly_cost_gpu.sql", tag_key="amd", default_rate=5.0, **MONTHLY)
    assert [(r["namespace"], r["node"], r["cost_model_gpu_cost"]) for r in other] == [
        ("GPU unallocated", "gpu-single", None)
    ]


def test_gpu_distribution_shares_the_unallocated_cost_by_slice_hours(db):
    # ml-training used 5 x 86400 slice-seconds, inference 2 x 43200: shares 5/6 and 1/6 of 64.516129032258
    # = 53.763440860215 and 10.752688172043; the unallocated row is taken back (-64.516129032258).
    port(db, "monthly_cost_gpu.sql", **GPU_RATES, **MONTHLY)
    rows = port(db, "distribute_unallocated_gpu_cost.sql", cost_model_rate_type="gpu_distributed")
    costs = {(r["namespace"], r["node"]): r["distributed_cost"] for r in rows}
    unused = 1000 / (31 * 24) * 48
    assert set(costs) == {("ml-training", "gpu-0"), ("inference", "gpu-0"), ("GPU unallocated", "gpu-0")}
    assert close(costs[("ml-training", "gpu-0")], unused * 5 / 6) and close(costs[("inference", "gpu-0")], unused / 6)
    assert close(costs[("GPU unallocated", "gpu-0")], -unused)
    assert {(r["data_source"], r["cost_model_rate_type"], r["cluster_id"]) for r in rows} == {
        ("GPU", "gpu_distributed", "cluster-a")
    }
    assert {r["pod_labels"] is None and r["monthly_cost_type"] is None for r in rows} == {True}


def test_gpu_distribution_with_both_cost_types(db):
    # 8.9.11: Infrastructure 1000 and Supplementary 500 per month: namespaces get the larger share (of 64.516...),
    # both unallocated costs are taken back, and gpu-single's NULL cost has no usage to be distributed to.
    port(db, "monthly_cost_gpu.sql", **GPU_RATES, **MONTHLY)
    port(db, "monthly_cost_gpu.sql", **{**GPU_RATES, "value_rates": {A100: 500.0}}, **{**MONTHLY,
         "rate_type": "Supplementary"})  # fmt: skip
    rows = port(db, "distribute_unallocated_gpu_cost.sql", cost_model_rate_type="gpu_distributed")
    unused = 1000 / (31 * 24) * 48
    assert close(next(r["distributed_cost"] for r in rows if r["namespace"] == "inference"), unused / 6)
    taken_back = sorted(float(r["distributed_cost"]) for r in rows if r["namespace"] == "GPU unallocated")
    assert len(taken_back) == 2 and close(taken_back[0], -unused) and close(taken_back[1], -unused / 2)


# ------------------------------------------------------------------------------------------------ VM tmp (8.7)
def test_vm_tmp_table_with_vm_report_lists_the_vms_of_the_last_hour(db):
    # The month's last hour is OCT2 23:00: only rhel9-vm runs then (win2k22-vm stops at 11:00).
    # 1.8981 cores x 24 = 45.5544; 4 GiB x 24 = 96.
    rows = port(db, "populate_vm_tmp_table_with_vm_report.sql", uuid="hand1")
    assert [(r["vm_name"], r["node"], r["pvc_name"]) for r in rows] == [("rhel9-vm", "virt-0", "rhel9-root")]
    assert close(rows[0]["cpu_request"], 45.5544) and close(rows[0]["mem_request"], 96.0)
    assert db.conn.execute("SELECT count(*) FROM tmp_virt_hand1").fetchone() == (1,)


def test_vm_tmp_table_without_vm_report_uses_the_second_to_last_day(db):
    # The source's days are OCT1 and OCT2: the second-to-last is OCT1. rhel9-vm's launcher pod has claim rhel9-root
    # in the pod/storage daily tables; win2k22-vm has none (NULL).
    rows = port(db, "populate_vm_tmp_table.sql", uuid="hand2")
    assert sorted((r["vm_name"], r["node"], r["pvc_name"], r["cpu_request"], r["mem_request"]) for r in rows) == [
        ("rhel9-vm", "virt-0", "rhel9-root", 45.0, 90.0),
        ("win2k22-vm", "virt-1", None, 24.0, 192.0),
    ]


def test_vm_tmp_table_without_vm_report_keeps_the_largest_cpu_request_of_the_source(db):
    # C6: on OCT1 rhel9-vm gets a second row of 50 CPU hours on virt-7 and one of 99 in another source: the source's
    # largest (50 on virt-7) is kept. A single day in the range is the day itself.
    other = "1b7e2c4d-0000-4000-8000-00000000beef"
    db.insert_summary_rows([
        vm_summary_row(OCT1, vm="rhel9-vm", node="virt-7", source=SOURCE, cpu_request_hours=50.0),
        vm_summary_row(OCT1, vm="rhel9-vm", node="virt-8", source=other, cpu_request_hours=99.0),
    ])  # fmt: skip
    rows = port(db, "populate_vm_tmp_table.sql", uuid="hand3", end_date="2026-10-01")
    assert {(r["vm_name"], r["node"], r["cpu_request"]) for r in rows} == {
        ("rhel9-vm", "virt-7", 50.0),
        ("win2k22-vm", "virt-1", 24.0),
    }


# ------------------------------------------------------------------------------------------------ parameters
@pytest.mark.parametrize(
    ("file", "params", "error"),
    [
        ("hourly_cost_virtual_machine.sql", {"rate_type": "Infrastructure", "hourly_rate": 0.25}, KeyError),
        ("hourly_cost_virtual_machine.sql", {**HOURLY, "hourly_rate": 0.25, "use_fractional_hours": False}, ValueError),
        ("hourly_vm_core_tag_based.sql", {"rate_type": "Infrastructure", "tag_key": "app"}, ValueError),
        ("monthly_vm_core.sql", {"rate_type": "Infrastructure", "cost_type": "OCP_VM_CORE"}, KeyError),
        ("no_such_file.sql", {}, KeyError),
    ],
)
def test_a_call_the_contract_does_not_describe_is_refused_before_any_sql(file, params, error):
    with pytest.raises(error):
        run_port(None, file, {**BASE, **params})  # type: ignore[arg-type]


def test_params_take_dates_and_keep_absent_default_apart_from_zero(db):
    # koku may pass dates as date objects; a default_rate of 0 is a default (rows with the key, cost 0).
    rows = port(db, "hourly_cost_vm_tag_based.sql", tag_key="app", default_rate=0.0, start_date=OCT1,
                end_date=dt.date(2026, 10, 31), **HOURLY)  # fmt: skip
    assert len(rows) == 4 and {float(r["cost_model_cpu_cost"]) for r in rows} == {0.0}
