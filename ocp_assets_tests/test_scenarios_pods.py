"""Scenarios 1, 3, 4, 12, 14, 15, 16 (contract 5): Pod rows, capacity and unallocated rows, nise or hand-made CSV."""

import datetime as dt
from pathlib import Path

import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from ocp_assets_tests.scenario_support import (  # noqa: F401 (run_fixture is the fixture `run`)
    ACCOUNT,
    INFRASTRUCTURE_USAGE_COST,
    SUMMARY,
    CsvPayload,
    approx,
    hours_of,
    nise_cache_dir,
    nise_csvs,
    report_periods,
    run_fixture,
    run_scenario,
    scenario_ids,
)

pytestmark = pytest.mark.slow


# --- scenario 1: the worked example (section 6) -------------------------------------------------------------

S01_DAY = dt.date(2026, 10, 5)


def test_s01_one_pod_one_node_pod_row(run):
    s = run(name="s01", yamls=["s01_one_pod_one_node.yml"], days=[S01_DAY])
    assert len(s.rows) == 2  # one Pod row + one unallocated row
    row = s.pod(namespace="app-namespace")
    assert row["node"] == "worker-node-1"
    assert row["resource_id"] == "i-i-worker001"  # nise prefixes 'i-' to the YAML's i-worker001
    assert row["data_source"] == "Pod"
    assert row["usage_start"] == S01_DAY and row["usage_end"] == S01_DAY
    assert row["pod_labels"] == {} and row["all_labels"] == {}
    # 24 hourly rows x pod_seconds 86400 x cores / 3600
    assert row["pod_usage_cpu_core_hours"] == approx(24 * 86400 * 0.3 / 3600)  # 172.8
    assert row["pod_request_cpu_core_hours"] == approx(24 * 86400 * 0.5 / 3600)  # 288
    assert row["pod_effective_usage_cpu_core_hours"] == approx(24 * 86400 * max(0.3, 0.5) / 3600)  # 288
    assert row["pod_limit_cpu_core_hours"] == approx(24 * 86400 * 1.0 / 3600)  # 576
    assert row["pod_usage_memory_gigabyte_hours"] == approx(24 * 86400 * 0.8 / 3600)  # 460.8
    assert row["pod_request_memory_gigabyte_hours"] == approx(24 * 86400 * 1 / 3600)  # 576
    assert row["pod_effective_usage_memory_gigabyte_hours"] == approx(24 * 86400 * max(0.8, 1) / 3600)  # 576
    assert row["pod_limit_memory_gigabyte_hours"] == approx(24 * 86400 * 2 / 3600)  # 1152
    assert row["node_capacity_cpu_cores"] == approx(4)
    assert row["node_capacity_cpu_core_hours"] == approx(24 * 4 * 3600 / 3600)  # 96
    assert row["node_capacity_memory_gigabytes"] == approx(16)
    assert row["node_capacity_memory_gigabyte_hours"] == approx(24 * 16 * 3600 / 3600)  # 384
    assert row["cluster_capacity_cpu_core_hours"] == approx(96)  # the only node
    assert row["cluster_capacity_memory_gigabyte_hours"] == approx(384)
    assert row["infrastructure_usage_cost"] == INFRASTRUCTURE_USAGE_COST
    # the constant text of PGSQL (TSQL 253), cast to jsonb: numeric scale kept
    assert s.conn.execute(
        f'SELECT DISTINCT infrastructure_usage_cost::text FROM "{s.schema}".{SUMMARY} WHERE namespace = %s',
        ("app-namespace",),
    ).fetchall() == [('{"cpu": 0.000000000, "memory": 0.000000000, "storage": 0.000000000}',)]
    assert row["cost_category_id"] is None  # app-namespace matches no seeded pattern
    assert row["persistentvolumeclaim"] is None and row["volume_labels"] is None
    assert row["persistentvolumeclaim_capacity_gigabyte_months"] is None
    assert row["infrastructure_raw_cost"] is None  # not set by the summary (2.1)
    assert (row["cluster_id"], row["cluster_alias"], str(row["source_uuid"])) == (
        s.cluster_id,
        s.cluster_alias,
        s.source,
    )
    period_start, period_end = report_periods(s.conn, s.schema)[row["report_period_id"]]
    assert (period_start, period_end) == (dt.datetime(2026, 10, 1), dt.datetime(2026, 11, 1))
    assert row["partition_table"].endswith("reporting_ocpusagelineitem_daily_summary_2026_10")


def test_s01_one_pod_one_node_unallocated_row(run):
    s = run(name="s01", yamls=["s01_one_pod_one_node.yml"], days=[S01_DAY])
    row = s.unallocated_row("worker-node-1")
    assert row["namespace"] == "Worker unallocated"  # empty node-label rows still give the worker role
    assert row["data_source"] == "Pod"
    assert row["resource_id"] == "i-i-worker001"
    # capacity hours - pod sums, not clamped (section 6)
    assert row["pod_usage_cpu_core_hours"] == approx(96 - 172.8)  # -76.8
    assert row["pod_request_cpu_core_hours"] == approx(96 - 288)  # -192
    assert row["pod_effective_usage_cpu_core_hours"] == approx(96 - 288)  # -192
    assert row["pod_usage_memory_gigabyte_hours"] == approx(384 - 460.8)  # -76.8
    assert row["pod_request_memory_gigabyte_hours"] == approx(384 - 576)  # -192
    assert row["pod_effective_usage_memory_gigabyte_hours"] == approx(384 - 576)  # -192
    assert row["pod_limit_cpu_core_hours"] is None and row["pod_limit_memory_gigabyte_hours"] is None
    assert row["pod_labels"] is None and row["volume_labels"] is None
    assert row["all_labels"] == {}
    assert row["infrastructure_usage_cost"] is None
    assert row["node_capacity_cpu_cores"] == approx(4) and row["node_capacity_cpu_core_hours"] == approx(96)
    assert row["node_capacity_memory_gigabytes"] == approx(16) and row["node_capacity_memory_gigabyte_hours"] == approx(
        384
    )
    assert row["cluster_capacity_cpu_core_hours"] == approx(96)
    assert row["cluster_capacity_memory_gigabyte_hours"] == approx(384)
    assert row["cost_category_id"] is None  # 'Worker unallocated' matches no pattern
    assert row["usage_start"] == row["usage_end"] == S01_DAY


# --- scenario 3: several namespaces on one node ------------------------------------------------------------

S03_DAY = dt.date(2026, 10, 7)


def test_s03_one_row_per_namespace_and_label_set(run):
    s = run(name="s03", yamls=["s03_namespaces_one_node.yml"], days=[S03_DAY], enabled_keys=["app"])
    assert len(s.pods()) == 3 and len(s.unallocated()) == 1
    web = s.pod(namespace="alpha", pod_labels={"app": "web"})  # a1 + a2 merge: same namespace, node, labels
    assert web["pod_usage_cpu_core_hours"] == approx(24 * (0.2 + 0.6))  # 19.2
    assert web["pod_request_cpu_core_hours"] == approx(24 * (0.5 + 0.5))  # 24
    assert web["pod_effective_usage_cpu_core_hours"] == approx(24 * (max(0.2, 0.5) + max(0.6, 0.5)))  # 26.4
    assert web["pod_limit_cpu_core_hours"] == approx(24 * (1 + 1))
    assert web["pod_usage_memory_gigabyte_hours"] == approx(24 * (1 + 3))  # 96
    assert web["pod_effective_usage_memory_gigabyte_hours"] == approx(24 * (max(1, 2) + max(3, 2)))  # 120
    batch = s.pod(namespace="alpha", pod_labels={"app": "batch"})
    assert batch["pod_usage_cpu_core_hours"] == approx(24 * 1.0)
    assert batch["pod_request_cpu_core_hours"] == approx(24 * 0.25)
    assert batch["pod_request_memory_gigabyte_hours"] == approx(24 * 1)
    beta = s.pod(namespace="beta")
    assert beta["pod_labels"] == {"app": "web"}
    assert beta["pod_usage_cpu_core_hours"] == approx(24 * 0.1)
    assert beta["pod_limit_memory_gigabyte_hours"] == approx(24 * 1)
    unallocated = s.unallocated_row("worker-1")
    assert unallocated["pod_usage_cpu_core_hours"] == approx(8 * 24 - 24 * (0.2 + 0.6 + 1.0 + 0.1))  # 146.4
    assert unallocated["pod_request_cpu_core_hours"] == approx(8 * 24 - 24 * (0.5 + 0.5 + 0.25 + 0.1))  # 159.6
    assert unallocated["pod_effective_usage_cpu_core_hours"] == approx(8 * 24 - 24 * (0.5 + 0.6 + 1.0 + 0.1))  # 139.2
    assert unallocated["pod_usage_memory_gigabyte_hours"] == approx(32 * 24 - 24 * (1 + 3 + 0.5 + 0.25))  # 654
    assert unallocated["pod_request_memory_gigabyte_hours"] == approx(32 * 24 - 24 * (2 + 2 + 1 + 0.5))  # 636
    assert unallocated["pod_effective_usage_memory_gigabyte_hours"] == approx(32 * 24 - 24 * (2 + 3 + 1 + 0.5))  # 612


def test_s03_without_enabled_keys_pods_of_a_namespace_merge(run):
    s = run(name="s03", yamls=["s03_namespaces_one_node.yml"], days=[S03_DAY])
    assert len(s.pods()) == 2  # labels filtered to {} no longer split alpha
    alpha = s.pod(namespace="alpha")
    assert alpha["pod_labels"] == {}
    assert alpha["pod_usage_cpu_core_hours"] == approx(24 * (0.2 + 0.6 + 1.0))  # 43.2
    assert alpha["pod_effective_usage_cpu_core_hours"] == approx(24 * (0.5 + 0.6 + 1.0))  # 50.4
    assert alpha["pod_limit_cpu_core_hours"] == approx(24 * (1 + 1 + 2))  # 96


# --- scenario 4: nodes of different sizes -------------------------------------------------------------------

S04_DAY = dt.date(2026, 10, 8)


def test_s04_per_node_capacity_and_cluster_capacity(run):
    s = run(name="s04", yamls=["s04_nodes_of_different_sizes.yml"], days=[S04_DAY])
    cluster_cpu = 24 * (2 + 16 + 4)  # 528 core-hours: sum over the three nodes
    cluster_mem = 24 * (8 + 64 + 16)  # 2112 GiB-hours
    assert len(s.rows) == 6
    assert all(r["cluster_capacity_cpu_core_hours"] == approx(cluster_cpu) for r in s.rows)
    assert all(r["cluster_capacity_memory_gigabyte_hours"] == approx(cluster_mem) for r in s.rows)
    small, big, medium = s.pod(node="small-1"), s.pod(node="big-1"), s.pod(node="medium-1")
    assert (small["node_capacity_cpu_cores"], small["node_capacity_memory_gigabytes"]) == (approx(2), approx(8))
    assert small["node_capacity_cpu_core_hours"] == approx(24 * 2)
    assert small["node_capacity_memory_gigabyte_hours"] == approx(24 * 8)
    assert (big["node_capacity_cpu_cores"], big["node_capacity_memory_gigabytes"]) == (approx(16), approx(64))
    assert big["node_capacity_cpu_core_hours"] == approx(24 * 16)
    assert big["node_capacity_memory_gigabyte_hours"] == approx(24 * 64)
    assert medium["node_capacity_cpu_core_hours"] == approx(24 * 4)
    assert medium["node_capacity_memory_gigabyte_hours"] == approx(24 * 16)
    assert small["resource_id"] == "i-small1" and big["resource_id"] == "i-big1"
    assert big["pod_usage_cpu_core_hours"] == approx(24 * 2)
    assert big["pod_request_memory_gigabyte_hours"] == approx(24 * 16)
    assert s.unallocated_row("small-1")["pod_usage_cpu_core_hours"] == approx(24 * 2 - 24 * 0.75)  # 30
    assert s.unallocated_row("big-1")["pod_request_cpu_core_hours"] == approx(24 * 16 - 24 * 4)  # 288
    assert s.unallocated_row("big-1")["pod_usage_memory_gigabyte_hours"] == approx(24 * 64 - 24 * 20)  # 1056
    assert s.unallocated_row("medium-1")["pod_effective_usage_memory_gigabyte_hours"] == approx(24 * 16 - 24 * 4)  # 288
    assert s.unallocated_row("medium-1")["node_capacity_cpu_core_hours"] == approx(24 * 4)


# --- scenario 12: effective usage per hourly row (hand-made CSV: usage varies within a day, zero and blank usage) ---

S12_DAY = dt.date(2026, 10, 22)


def s12_payload() -> CsvPayload:
    payload = CsvPayload()
    node = {"node": "n1", "resource_id": "i-n1", "node_cores": 4, "node_mem_gib": 16}
    for hour in hours_of(S12_DAY):
        burst = hour.hour < 12
        payload.pod(hour, pod="p-burst", namespace="app", **node,
                    cpu=(1.0 if burst else 0.1, 0.5, 2), mem_gib=(3 if burst else 1, 2, 4))  # fmt: skip
        payload.pod(hour, pod="p-idle", namespace="idle", **node, cpu=(0, 0.25, 1), mem_gib=(0, 0.5, 1))
        payload.pod(hour, pod="p-blank", namespace="blank", **node, cpu=(None, 0.25, 1), mem_gib=(None, 0.5, 1))
        payload.node_label(hour, "n1", "label_node_role_kubernetes_io:worker")
    return payload


def test_s12_effective_usage_is_summed_per_hour(run):
    s = run(name="s12", csv_payload=s12_payload(), days=[S12_DAY])
    app = s.pod(namespace="app")
    assert app["pod_usage_cpu_core_hours"] == approx(12 * 1.0 + 12 * 0.1)  # 13.2
    assert app["pod_request_cpu_core_hours"] == approx(24 * 0.5)  # 12
    # sum of the hourly max(usage, request) = 12 x 1.0 + 12 x 0.5 = 18, not max(13.2, 12) = 13.2
    assert app["pod_effective_usage_cpu_core_hours"] == approx(12 * max(1.0, 0.5) + 12 * max(0.1, 0.5))
    assert app["pod_usage_memory_gigabyte_hours"] == approx(12 * 3 + 12 * 1)  # 48
    assert app["pod_request_memory_gigabyte_hours"] == approx(24 * 2)  # 48
    # 12 x 3 + 12 x 2 = 60, not max(48, 48) = 48
    assert app["pod_effective_usage_memory_gigabyte_hours"] == approx(12 * max(3, 2) + 12 * max(1, 2))
    idle = s.pod(namespace="idle")  # usage written as 0.0 (nise would replace a 0 by a random value)
    assert idle["pod_usage_cpu_core_hours"] == approx(0)
    assert idle["pod_effective_usage_cpu_core_hours"] == approx(24 * 0.25)  # max(0, request)
    assert idle["pod_usage_memory_gigabyte_hours"] == approx(0)
    assert idle["pod_effective_usage_memory_gigabyte_hours"] == approx(24 * 0.5)
    blank = s.pod(namespace="blank")  # empty usage fields read as 0.0 (D7)
    assert blank["pod_usage_cpu_core_hours"] == approx(0)
    assert blank["pod_effective_usage_cpu_core_hours"] == approx(24 * 0.25)
    assert blank["pod_usage_memory_gigabyte_hours"] == approx(0)
    assert blank["pod_limit_memory_gigabyte_hours"] == approx(24 * 1)
    unallocated = s.unallocated_row("n1")
    assert unallocated["pod_usage_cpu_core_hours"] == approx(24 * 4 - 13.2)  # 82.8
    assert unallocated["pod_request_cpu_core_hours"] == approx(24 * 4 - (12 + 6 + 6))  # 72
    assert unallocated["pod_effective_usage_cpu_core_hours"] == approx(24 * 4 - (18 + 6 + 6))  # 66
    assert unallocated["pod_effective_usage_memory_gigabyte_hours"] == approx(24 * 16 - (60 + 12 + 12))  # 300


def test_s12_anomalous_rows_are_dropped_at_ingest(run):
    """1.3 step 1: an hourly row with a metric above 1e18 is dropped whole, its node capacity with it."""
    payload = CsvPayload()
    for hour in hours_of(S12_DAY):
        payload.pod(hour, pod="p-steady", namespace="app", node="n1", resource_id="i-n1", cpu=(0.5, 0.25, 1),
                    mem_gib=(1, 1, 2), node_cores=4, node_mem_gib=16)  # fmt: skip
        spike = 1.4e15 if hour.hour == 23 else 0.5  # x 3600 s = 5.04e18 core-seconds in the last hour
        payload.pod(hour, pod="p-spike", namespace="spike", node="n2", resource_id="i-n2", cpu=(spike, 0.25, 1),
                    mem_gib=(1, 1, 2), node_cores=2, node_mem_gib=8)  # fmt: skip
        for node in ("n1", "n2"):
            payload.node_label(hour, node, "")
    s = run(name="s12-anomaly", csv_payload=payload, days=[S12_DAY])
    spike = s.pod(namespace="spike")
    assert spike["pod_usage_cpu_core_hours"] == approx(23 * 0.5)  # 11.5: hour 23 is gone
    assert spike["pod_request_cpu_core_hours"] == approx(23 * 0.25)  # its request too
    assert spike["pod_limit_memory_gigabyte_hours"] == approx(23 * 2)
    assert spike["node_capacity_cpu_core_hours"] == approx(23 * 2)  # n2 reported 23 hours
    assert spike["cluster_capacity_cpu_core_hours"] == approx(24 * 4 + 23 * 2)  # 142
    assert s.unallocated_row("n2")["pod_usage_cpu_core_hours"] == approx(23 * 2 - 23 * 0.5)  # 34.5
    assert s.pod(namespace="app")["pod_usage_cpu_core_hours"] == approx(24 * 0.5)


def test_s04_node_resized_within_a_day(run):
    """Capacity hours sum each hour's capacity; node_capacity_cpu_cores is the day's max (3.4, 3.5)."""
    payload = CsvPayload()
    for hour in hours_of(S12_DAY):
        cores, memory = (4, 16) if hour.hour < 12 else (8, 32)
        payload.pod(hour, pod="p", namespace="app", node="n3", resource_id="i-n3", cpu=(1, 0.5, 2),
                    mem_gib=(2, 1, 4), node_cores=cores, node_mem_gib=memory)  # fmt: skip
        payload.node_label(hour, "n3", "label_node_role_kubernetes_io:worker")
    s = run(name="s04-resized", csv_payload=payload, days=[S12_DAY])
    row = s.pod(namespace="app")
    assert row["node_capacity_cpu_cores"] == approx(max(4, 8))
    assert row["node_capacity_memory_gigabytes"] == approx(max(16, 32))
    assert row["node_capacity_cpu_core_hours"] == approx(12 * 4 + 12 * 8)  # 144
    assert row["node_capacity_memory_gigabyte_hours"] == approx(12 * 16 + 12 * 32)  # 576
    assert row["cluster_capacity_cpu_core_hours"] == approx(144)
    unallocated = s.unallocated_row("n3")
    assert unallocated["pod_usage_cpu_core_hours"] == approx(144 - 24 * 1)  # 120
    assert unallocated["pod_request_memory_gigabyte_hours"] == approx(576 - 24 * 1)  # 552


# --- scenario 14: empty node ------------------------------------------------------------------------------------

S14_DAY = dt.date(2026, 10, 20)


def test_s14_pods_on_an_empty_node_are_not_summarised_but_count_in_cluster_capacity(run):
    s = run(name="s14", yamls=["s14_empty_node.yml"], days=[S14_DAY])
    assert [r["namespace"] for r in s.pods()] == ["app"]  # e-pod (namespace lost, node '') is not a Pod row
    assert not [r for r in s.rows if r["node"] in ("", None)]
    assert [r["node"] for r in s.unallocated()] == ["worker-1"]  # no unallocated row for ''
    row = s.pod(namespace="app")
    assert row["node_capacity_cpu_core_hours"] == approx(24 * 4)
    assert row["cluster_capacity_cpu_core_hours"] == approx(24 * (4 + 2))  # 144: the '' node counts
    assert row["cluster_capacity_memory_gigabyte_hours"] == approx(24 * (16 + 8))  # 576
    assert row["pod_usage_cpu_core_hours"] == approx(24 * 0.25)
    unallocated = s.unallocated_row("worker-1")
    assert unallocated["pod_usage_cpu_core_hours"] == approx(24 * 4 - 24 * 0.25)  # 90: e-pod not subtracted
    assert unallocated["pod_request_memory_gigabyte_hours"] == approx(24 * 16 - 24 * 1)  # 360
    assert unallocated["cluster_capacity_cpu_core_hours"] == approx(24 * (4 + 2))


def test_s14_day_with_pods_only_on_the_empty_node(run):
    payload = CsvPayload()
    for hour in hours_of(S14_DAY):
        payload.pod(hour, pod="e-pod", namespace="lost", node="", resource_id="i-e1", cpu=(1.5, 1, 2),
                    mem_gib=(3, 2, 4), node_cores=2, node_mem_gib=8)  # fmt: skip
        payload.storage(hour, namespace="lost", pod="e-pod", pvc="data-e", pv="pv-e", capacity_gib=10,
                        request_gib=20, usage_gib=4, csi_volume_handle="vol-e")  # fmt: skip
    s = run(name="s14b", csv_payload=payload, days=[S14_DAY])
    assert s.pods() == [] and s.unallocated() == []  # node '' gives no Pod row and no unallocated row
    row = s.volume(persistentvolumeclaim="data-e")
    # cte_volume_nodes does not filter node != '' (3.1): the claim's pod ran on '', one distinct node
    assert row["node"] == "" and row["resource_id"] == "i-e1"
    assert row["persistentvolumeclaim_capacity_gigabyte_months"] == approx(10 * 3600 * 24 / (86400 * 31))
    assert row["volume_request_storage_gigabyte_months"] == approx(20 * 3600 * 24 / 1 / (86400 * 31))
    assert row["persistentvolumeclaim_usage_gigabyte_months"] == approx(4 * 3600 * 24 / 1 / (86400 * 31))


# --- scenarios 15 and 16: nodes appearing mid-window; the same data split into files crossing days -----------

S15_DAYS = [dt.date(2026, 10, 21), dt.date(2026, 10, 22)]


def check_s15_rows(s) -> None:
    """Hand-derived rows of s15_node_mid_window.yml (node-a both days, node-b on day 2, node-c 6 hours of day 2)."""
    day1, day2 = S15_DAYS
    assert len(s.on(day1)) == 2 and len(s.on(day2)) == 6
    assert [r["node"] for r in s.unallocated(day1)] == ["node-a"]
    assert s.pod(day1, node="node-a")["cluster_capacity_cpu_core_hours"] == approx(24 * 4)  # node-a only
    assert s.unallocated_row("node-a", day1)["cluster_capacity_memory_gigabyte_hours"] == approx(24 * 16)
    assert s.unallocated_row("node-a", day1)["pod_usage_cpu_core_hours"] == approx(24 * 4 - 24 * 0.25)  # 90
    cluster_cpu, cluster_mem = 24 * 4 + 24 * 8 + 6 * 2, 24 * 16 + 24 * 32 + 6 * 8  # 300, 1200
    assert all(r["cluster_capacity_cpu_core_hours"] == approx(cluster_cpu) for r in s.on(day2))
    assert all(r["cluster_capacity_memory_gigabyte_hours"] == approx(cluster_mem) for r in s.on(day2))
    pa, pb, pc_ = s.pod(day2, node="node-a"), s.pod(day2, node="node-b"), s.pod(day2, node="node-c")
    assert pa["pod_usage_cpu_core_hours"] == approx(24 * 0.25)
    assert pb["pod_usage_cpu_core_hours"] == approx(24 * 1.5)  # 36
    assert pb["pod_usage_memory_gigabyte_hours"] == approx(24 * 6)  # 144
    assert pc_["pod_usage_cpu_core_hours"] == approx(6 * 0.75)  # 4.5: 6 hourly rows
    assert pc_["pod_request_cpu_core_hours"] == approx(6 * 0.5)
    assert pc_["pod_limit_memory_gigabyte_hours"] == approx(6 * 2)
    assert pc_["node_capacity_cpu_core_hours"] == approx(6 * 2)  # 12: only the hours it reports
    assert pc_["node_capacity_memory_gigabyte_hours"] == approx(6 * 8)
    assert pc_["node_capacity_cpu_cores"] == approx(2)
    b, c = s.unallocated_row("node-b", day2), s.unallocated_row("node-c", day2)
    assert b["pod_usage_cpu_core_hours"] == approx(24 * 8 - 24 * 1.5)  # 156
    assert b["pod_request_cpu_core_hours"] == approx(24 * 8 - 24 * 1)  # 168
    assert b["pod_effective_usage_memory_gigabyte_hours"] == approx(24 * 32 - 24 * 6)  # 624
    assert c["pod_usage_cpu_core_hours"] == approx(6 * 2 - 6 * 0.75)  # 7.5
    assert c["pod_request_memory_gigabyte_hours"] == approx(6 * 8 - 6 * 1)  # 42
    assert c["pod_effective_usage_cpu_core_hours"] == approx(6 * 2 - 6 * 0.75)  # 7.5


def test_s15_node_appearing_mid_window(run):
    check_s15_rows(run(name="s15", yamls=["s15_node_mid_window.yml"], days=S15_DAYS))


def pod_daily_rows_per_pod_day(data_root: Path, source: str) -> dict[tuple[str, dt.date], int]:
    folder = data_root / f"data/parquet/daily/{ACCOUNT}/OCP/pod_usage/source={source}"
    counts: dict[tuple[str, dt.date], int] = {}
    for path in folder.rglob("*.parquet"):
        table = pq.read_table(path, columns=["pod", "interval_start"])
        for pod, start in zip(table["pod"].to_pylist(), pc.cast(table["interval_start"], "date32").to_pylist()):
            counts[(pod, start)] = counts.get((pod, start), 0) + 1
    return counts


def test_s16_files_crossing_days_do_not_change_sums(run, request):
    _, source = scenario_ids("s16")
    # The CSVs do not name the cluster, so scenario 15's cached nise payload serves (no second nise run).
    payload = nise_csvs("s15_node_mid_window.yml", scenario_ids("s15")[0], nise_cache_dir(request))
    # Four files per report type: cuts at 10:00 on day 1, and at 13:00 and 20:00 on day 2 (inside node-c's hours).
    cuts = [dt.datetime(2026, 10, 21, 10), dt.datetime(2026, 10, 22, 13), dt.datetime(2026, 10, 22, 20)]
    s = run(name="s16", csv_payload=payload, split_at=cuts, days=S15_DAYS)
    counts = pod_daily_rows_per_pod_day(s.data_root, source)
    assert counts[("pa", S15_DAYS[0])] == 2 and counts[("pa", S15_DAYS[1])] == 3  # the daily table is not unique
    assert counts[("pc", S15_DAYS[1])] == 2
    check_s15_rows(s)
