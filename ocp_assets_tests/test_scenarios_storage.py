"""Scenarios 2, 7, 8, 13, 16, 19 (contract 5): Storage rows, shared volumes, month days, split files, month boundary."""

import datetime as dt

import pytest

from ocp_assets_tests.scenario_support import (  # noqa: F401 (run_fixture is the fixture `run`)
    INFRASTRUCTURE_USAGE_COST,
    approx,
    nise_cache_dir,
    nise_csvs,
    report_periods,
    run_fixture,
    run_scenario,
    scenario_ids,
)

pytestmark = pytest.mark.slow


# --- scenario 2: one PVC bound to a pod ---------------------------------------------------------------------

S02_DAY = dt.date(2026, 11, 10)  # November: 30 days


def test_s02_pvc_bound_to_a_pod(run):
    s = run(name="s02", yamls=["s02_pvc_bound_to_pod.yml"], days=[S02_DAY], enabled_keys=["tier", "app"])
    assert len(s.rows) == 3  # Pod, Storage, unallocated
    row = s.volume(persistentvolumeclaim="data-db-0")
    assert row["namespace"] == "db" and row["persistentvolume"] == "pv-db" and row["storageclass"] == "gp3-csi"
    assert row["node"] == "worker-1" and row["resource_id"] == "i-w1"  # the node where db-0 ran
    assert row["usage_start"] == row["usage_end"] == S02_DAY
    assert row["persistentvolumeclaim_capacity_gigabyte"] == approx(10)  # the claim size
    # GiB x 3600 s x 24 hourly rows / (86400 x 30 days in November)
    assert row["persistentvolumeclaim_capacity_gigabyte_months"] == approx(10 * 3600 * 24 / (86400 * 30))
    assert row["volume_request_storage_gigabyte_months"] == approx(20 * 3600 * 24 / (86400 * 30))  # PV request 20
    assert row["persistentvolumeclaim_usage_gigabyte_months"] == approx(2.5 * 3600 * 24 / (86400 * 30))
    assert row["volume_labels"] == {"tier": "gold", "app": "db"}  # PV then PVC labels
    assert row["all_labels"] == row["volume_labels"]
    assert row["pod_labels"] is None
    assert row["pod_usage_cpu_core_hours"] is None and row["pod_request_memory_gigabyte_hours"] is None
    assert row["node_capacity_cpu_core_hours"] is None and row["cluster_capacity_cpu_core_hours"] is None
    assert row["infrastructure_usage_cost"] == INFRASTRUCTURE_USAGE_COST
    assert row["cost_category_id"] is None
    pod = s.pod(namespace="db")
    assert pod["pod_labels"] == {}  # volume labels never reach Pod rows
    assert pod["pod_usage_memory_gigabyte_hours"] == approx(24 * 1.5)
    assert pod["persistentvolumeclaim"] is None


# --- scenario 7: shared volumes -----------------------------------------------------------------------------

S07_DAY = dt.date(2026, 10, 9)  # October: 31 days
MONTH = 86400 * 31


def check_s07_rows(s) -> None:
    """Hand-derived Storage rows of s07_shared_volumes.yml (one day of 31: MONTH = 86400 x 31)."""
    assert len(s.storage()) == 2 + 2 + 1
    # pv-shared: pa on node-a and pb on node-b claim it; node count 2
    on_a = s.volume(persistentvolume="pv-shared", node="node-a")
    on_b = s.volume(persistentvolume="pv-shared", node="node-b")
    assert (on_a["resource_id"], on_b["resource_id"]) == ("i-a", "i-b")
    # capacity is not divided by the PV's node count
    assert on_a["persistentvolumeclaim_capacity_gigabyte"] == approx(10)
    assert on_a["persistentvolumeclaim_capacity_gigabyte_months"] == approx(10 * 3600 * 24 / MONTH)
    assert on_b["persistentvolumeclaim_capacity_gigabyte_months"] == approx(10 * 3600 * 24 / MONTH)
    # request and usage are halved on each row
    assert on_a["volume_request_storage_gigabyte_months"] == approx(40 * 3600 * 24 / 2 / MONTH)
    assert on_b["volume_request_storage_gigabyte_months"] == approx(40 * 3600 * 24 / 2 / MONTH)
    assert on_a["persistentvolumeclaim_usage_gigabyte_months"] == approx(4 * 3600 * 24 / 2 / MONTH)  # pa used 4 GiB
    assert on_b["persistentvolumeclaim_usage_gigabyte_months"] == approx(6 * 3600 * 24 / 2 / MONTH)  # pb used 6 GiB
    # pv-mover: its only claimant, mover, ran on node-a and node-b -> one row per node (fan-out)
    movers = s.storage(persistentvolume="pv-mover")
    assert sorted(r["node"] for r in movers) == ["node-a", "node-b"]
    for row in movers:
        assert row["persistentvolumeclaim_capacity_gigabyte_months"] == approx(6 * 3600 * 24 / MONTH)  # full on each
        assert row["volume_request_storage_gigabyte_months"] == approx(12 * 3600 * 24 / 2 / MONTH)
        assert row["persistentvolumeclaim_usage_gigabyte_months"] == approx(3 * 3600 * 24 / 2 / MONTH)
    # pv-s: p1 and p2, both on node-a, share claim c-s; pod is not a group key, so one row sums both
    shared = s.volume(persistentvolume="pv-s")
    assert shared["node"] == "node-a" and shared["persistentvolumeclaim"] == "c-s"
    assert shared["persistentvolumeclaim_capacity_gigabyte"] == approx(max(4, 6))
    assert shared["persistentvolumeclaim_capacity_gigabyte_months"] == approx((4 + 6) * 3600 * 24 / MONTH)
    assert shared["volume_request_storage_gigabyte_months"] == approx((20 + 20) * 3600 * 24 / 1 / MONTH)  # 1 node
    assert shared["persistentvolumeclaim_usage_gigabyte_months"] == approx((1 + 2) * 3600 * 24 / MONTH)


def test_s07_shared_volumes(run):
    s = run(name="s07", yamls=["s07_shared_volumes.yml"], days=[S07_DAY])
    check_s07_rows(s)
    assert len(s.pods(namespace="mv")) == 2  # mover has a Pod row on each node
    sh = s.pod(namespace="sh")
    assert sh["pod_usage_cpu_core_hours"] == approx(24 * (0.25 + 0.25))
    # node-a is declared by three generators: its capacity is still counted once per hour
    assert sh["node_capacity_cpu_core_hours"] == approx(24 * 4)
    assert sh["cluster_capacity_cpu_core_hours"] == approx(24 * (4 + 8))
    unallocated_a = s.unallocated_row("node-a")
    assert unallocated_a["pod_usage_cpu_core_hours"] == approx(24 * 4 - 4 * 24 * 0.25)  # pa, mover, p1, p2
    assert unallocated_a["pod_request_cpu_core_hours"] == approx(24 * 4 - 4 * 24 * 0.5)
    assert s.unallocated_row("node-b")["pod_usage_cpu_core_hours"] == approx(24 * 8 - 2 * 24 * 0.25)  # pb, mover


def test_s16_storage_split_across_files(run, request):
    """Scenario 16 for storage: the s07 payload in three files cut mid-day; storage_daily then holds several
    rows per claim and day, and the volume-node join and node counts must not change."""
    payload = nise_csvs("s07_shared_volumes.yml", scenario_ids("s07")[0], nise_cache_dir(request))
    s = run(name="s16b", csv_payload=payload, days=[S07_DAY],
            split_at=[dt.datetime(2026, 10, 9, 7), dt.datetime(2026, 10, 9, 15)])  # fmt: skip
    check_s07_rows(s)
    assert s.unallocated_row("node-a")["pod_usage_cpu_core_hours"] == approx(24 * 4 - 4 * 24 * 0.25)


# --- scenario 8: days in month -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("yaml_name", "day", "days_in_month"),
    [
        ("s08a_days_in_month_2027.yml", dt.date(2027, 2, 10), 28),
        ("s08b_days_in_month_2028.yml", dt.date(2028, 2, 10), 29),
        ("s08b_days_in_month_2028.yml", dt.date(2028, 3, 10), 31),
        ("s08b_days_in_month_2028.yml", dt.date(2028, 4, 10), 30),
    ],
)
def test_s08_months_divide_by_the_days_of_the_days_month(run, yaml_name, day, days_in_month):
    s = run(name=yaml_name[:3], yamls=[yaml_name], days=[day])
    row = s.volume(day, persistentvolumeclaim="data-app")
    assert row["persistentvolumeclaim_capacity_gigabyte"] == approx(10)
    assert row["persistentvolumeclaim_capacity_gigabyte_months"] == approx(10 * 3600 * 24 / (86400 * days_in_month))
    assert row["volume_request_storage_gigabyte_months"] == approx(15 * 3600 * 24 / (86400 * days_in_month))
    assert row["persistentvolumeclaim_usage_gigabyte_months"] == approx(3 * 3600 * 24 / (86400 * days_in_month))
    assert s.pod(day, namespace="app")["pod_usage_cpu_core_hours"] == approx(24 * 0.25)  # hours do not depend on it
    start, _ = report_periods(s.conn, s.schema)[row["report_period_id"]]
    assert start == dt.datetime(day.year, day.month, 1)


# --- scenario 13: claimless PV and a PVC whose pod has no usage rows --------------------------------------

S13_DAY = dt.date(2026, 10, 19)


def test_s13_storage_without_a_pod_match(run):
    s = run(name="s13", yamls=["s13_storage_without_pod.yml"], days=[S13_DAY], enabled_keys=["tier", "team"])
    free = s.volume(persistentvolume="pv-free")
    assert free["namespace"] == "" and free["persistentvolumeclaim"] == ""  # nise leaves them empty; '' stays ''
    assert free["node"] is None and free["resource_id"] is None
    assert free["storageclass"] == "standard"
    assert free["persistentvolumeclaim_capacity_gigabyte"] == approx(5)  # a claimless row's capacity = PV request
    assert free["persistentvolumeclaim_capacity_gigabyte_months"] == approx(5 * 3600 * 24 / (86400 * 31))
    assert free["volume_request_storage_gigabyte_months"] == approx(0)  # empty field -> 0.0 (D7)
    assert free["persistentvolumeclaim_usage_gigabyte_months"] == approx(0)
    assert free["volume_labels"] == {"tier": "free"}
    ghost = s.volume(persistentvolumeclaim="c-ghost")
    assert ghost["namespace"] == "app" and ghost["persistentvolume"] == "pv-ghost"
    assert ghost["node"] is None and ghost["resource_id"] is None  # ghost-0 has no pod usage rows
    assert ghost["persistentvolumeclaim_capacity_gigabyte_months"] == approx(8 * 3600 * 24 / (86400 * 31))
    # no node count: coalesce(node_count, 1) leaves request and usage undivided (D1)
    assert ghost["volume_request_storage_gigabyte_months"] == approx(16 * 3600 * 24 / 1 / (86400 * 31))
    assert ghost["persistentvolumeclaim_usage_gigabyte_months"] == approx(2 * 3600 * 24 / 1 / (86400 * 31))
    assert ghost["volume_labels"] == {"team": "storage", "tier": "ghost"}  # namespace labels still join on namespace
    assert ghost["all_labels"] == ghost["volume_labels"]
    assert len(s.storage()) == 2 and len(s.pods()) == 1


# --- scenario 19: month boundary ------------------------------------------------------------------------

S19_DAYS = [dt.date(2026, 10, 31), dt.date(2026, 11, 1)]


def test_s19_window_across_a_month_boundary(run):
    s = run(name="s19", yamls=["s19_month_boundary.yml"], days=S19_DAYS)
    october, november = (s.volume(day, persistentvolumeclaim="data-app") for day in S19_DAYS)
    assert october["partition_table"].endswith("reporting_ocpusagelineitem_daily_summary_2026_10")
    assert november["partition_table"].endswith("reporting_ocpusagelineitem_daily_summary_2026_11")
    assert october["persistentvolumeclaim_capacity_gigabyte_months"] == approx(10 * 3600 * 24 / (86400 * 31))
    assert november["persistentvolumeclaim_capacity_gigabyte_months"] == approx(10 * 3600 * 24 / (86400 * 30))
    assert october["volume_request_storage_gigabyte_months"] == approx(15 * 3600 * 24 / (86400 * 31))
    assert november["persistentvolumeclaim_usage_gigabyte_months"] == approx(3 * 3600 * 24 / (86400 * 30))
    periods = report_periods(s.conn, s.schema)
    assert periods[october["report_period_id"]] == (dt.datetime(2026, 10, 1), dt.datetime(2026, 11, 1))
    assert periods[november["report_period_id"]] == (dt.datetime(2026, 11, 1), dt.datetime(2026, 12, 1))
    for day in S19_DAYS:
        assert {r["report_period_id"] for r in s.on(day)} == {s.volume(day)["report_period_id"]}
        assert all(r["partition_table"].endswith(f"_{day.year}_{day.month:02d}") for r in s.on(day))
        assert s.pod(day, namespace="app")["pod_usage_cpu_core_hours"] == approx(24 * 0.25)
        assert s.unallocated_row("worker-1", day)["pod_request_cpu_core_hours"] == approx(24 * 4 - 24 * 0.5)
