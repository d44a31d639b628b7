"""The independent SQL reference of koku's daily summary (tests' reference package) vs hand-derived contract values."""

import datetime as dt

import pandas as pd
import psycopg
import pytest

from ocp_assets_tests.reference import (
    PLATFORM_COST_CATEGORY_ID,
    SUMMARY_COLUMNS,
    KokuParquetBuilder,
    compare_summaries,
    reference_summary,
)

SOURCE = "6795d5e6-951c-4382-a8d3-390515d7ec2d"
ACCOUNT = "org1234567"
DAY = dt.date(2025, 10, 1)  # October: 31 days
DAY_SECONDS_OCT = 86400 * 31
GIB = 2**30
ZERO_COST = {"cpu": 0.0, "memory": 0.0, "storage": 0.0}


def run(dsn, root, *, start=DAY, end=DAY, enabled_keys=(), **kw):
    return reference_summary(
        dsn,
        root,
        account=ACCOUNT,
        source=SOURCE,
        cluster_id="my-cluster",
        cluster_alias="My Cluster",
        start=start,
        end=end,
        enabled_keys=list(enabled_keys),
        **kw,
    )


def rows(df, **match):
    out = df
    for column, value in match.items():
        out = out[out[column].isna()] if value is None else out[out[column] == value]
    return list(out.to_dict("records"))


def one(df, **match):
    found = rows(df, **match)
    assert len(found) == 1, f"{len(found)} rows for {match}"
    return found[0]


def approx(value):
    return pytest.approx(value, rel=1e-9, abs=1e-12)


# --------------------------------------------------------------------------------------------- section 6
def test_worked_example_one_pod_one_node(dsn, tmp_path):
    b = KokuParquetBuilder(tmp_path, account=ACCOUNT, source=SOURCE)
    # 24 hourly rows, pod_seconds 86400 per row (nise does not cap it), cpu 0.3/0.5/1.0, memory 0.8/1/2 GiB.
    b.pod(
        DAY,
        pod="pod-1",
        namespace="app-namespace",
        node="worker-node-1",
        resource_id="i-i-worker001",
        pod_seconds=86400,
        cpu=(0.3, 0.5, 1.0),
        memory_gib=(0.8, 1, 2),
        node_cpu_cores=4,
        node_memory_gib=16,
    )
    b.node_labels(DAY, node="worker-node-1", labels={})  # nise emits (empty) node labels every hour -> worker
    b.write()

    df = run(dsn, tmp_path)
    assert list(df.columns) == SUMMARY_COLUMNS
    assert len(df) == 2

    pod = one(df, namespace="app-namespace")
    # usage = 24 h x 86400 s x 0.3 / 3600 = 172.8; request 0.5 -> 288; effective max(0.3, 0.5) -> 288; limit 576
    expected = {
        "data_source": "Pod",
        "node": "worker-node-1",
        "resource_id": "i-i-worker001",
        "pod_labels": {},
        "all_labels": {},
        "usage_start": DAY,
        "usage_end": DAY,
        "pod_usage_cpu_core_hours": 24 * 86400 * 0.3 / 3600,  # 172.8
        "pod_request_cpu_core_hours": 24 * 86400 * 0.5 / 3600,  # 288
        "pod_effective_usage_cpu_core_hours": 24 * 86400 * 0.5 / 3600,  # 288
        "pod_limit_cpu_core_hours": 24 * 86400 * 1.0 / 3600,  # 576
        "pod_usage_memory_gigabyte_hours": 24 * 86400 * 0.8 / 3600,  # 460.8
        "pod_request_memory_gigabyte_hours": 24 * 86400 * 1 / 3600,  # 576
        "pod_effective_usage_memory_gigabyte_hours": 576.0,
        "pod_limit_memory_gigabyte_hours": 1152.0,
        "node_capacity_cpu_cores": 4.0,
        "node_capacity_cpu_core_hours": 4 * 24.0,  # 96
        "node_capacity_memory_gigabytes": 16.0,
        "node_capacity_memory_gigabyte_hours": 16 * 24.0,  # 384
        "cluster_capacity_cpu_core_hours": 96.0,
        "cluster_capacity_memory_gigabyte_hours": 384.0,
        "infrastructure_usage_cost": ZERO_COST,
        "cluster_id": "my-cluster",
        "cluster_alias": "My Cluster",
        "report_period_id": 1,
        "source_uuid": SOURCE,
    }
    for column, value in expected.items():
        assert pod[column] == (approx(value) if isinstance(value, float) else value), column
    assert pod["pod_usage_cpu_core_hours"] == approx(172.8)
    assert pod["pod_usage_memory_gigabyte_hours"] == approx(460.8)
    assert pod["persistentvolumeclaim"] is None and pod["volume_labels"] is None
    assert pd.isna(pod["cost_category_id"])

    un = one(df, namespace="Worker unallocated")
    assert un["data_source"] == "Pod" and un["node"] == "worker-node-1" and un["resource_id"] == "i-i-worker001"
    assert un["pod_usage_cpu_core_hours"] == approx(96 - 172.8)  # -76.8, not clamped
    assert un["pod_request_cpu_core_hours"] == approx(96 - 288.0)  # -192
    assert un["pod_effective_usage_cpu_core_hours"] == approx(96 - 288.0)
    assert un["pod_usage_memory_gigabyte_hours"] == approx(384 - 460.8)  # -76.8
    assert un["pod_request_memory_gigabyte_hours"] == approx(384 - 576.0)  # -192
    assert un["pod_effective_usage_memory_gigabyte_hours"] == approx(384 - 576.0)
    assert un["node_capacity_cpu_core_hours"] == approx(96.0)
    assert un["cluster_capacity_memory_gigabyte_hours"] == approx(384.0)
    for column in (
        "pod_limit_cpu_core_hours",
        "pod_limit_memory_gigabyte_hours",
        "persistentvolumeclaim_capacity_gigabyte",
    ):
        assert un[column] != un[column], column  # NaN = NULL
    assert un["pod_labels"] is None and un["volume_labels"] is None and un["all_labels"] == {}
    assert un["infrastructure_usage_cost"] is None

    # The scratch schema is gone.
    with psycopg.connect(dsn) as conn:
        left = conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (df.attrs["schema"],)).fetchone()
    assert left == (0,)


# --------------------------------------------------------------------------------------------- storage
def test_shared_pvc_on_two_nodes_and_per_node_fan_out(dsn, tmp_path):
    b = KokuParquetBuilder(tmp_path, account=ACCOUNT, source=SOURCE)
    for node in ("node-a", "node-b"):
        b.node_labels(DAY, node=node, labels={})
    # PVC 'data' (pv-data) mounted by p1 on node-a and p2 on node-b; koku's storage rows carry the full PVC each.
    b.pod(DAY, pod="p1", namespace="db", node="node-a", resource_id="i-a", node_cpu_cores=4, node_memory_gib=16)
    b.pod(DAY, pod="p2", namespace="db", node="node-b", resource_id="i-b", node_cpu_cores=8, node_memory_gib=32)
    for pod in ("p1", "p2"):
        b.pvc(DAY, namespace="db", pod=pod, pvc="data", pv="pv-data", capacity_gib=10, request_gib=20, usage_gib=4)
    # p3 moves from node-a (hours 0-11) to node-b (12-23): its one PVC fans out to one Storage row per node.
    b.pod(
        DAY,
        pod="p3",
        namespace="web",
        node="node-a",
        resource_id="i-a",
        hours=range(12),
        node_cpu_cores=4,
        node_memory_gib=16,
    )
    b.pod(
        DAY,
        pod="p3",
        namespace="web",
        node="node-b",
        resource_id="i-b",
        hours=range(12, 24),
        node_cpu_cores=8,
        node_memory_gib=32,
    )
    b.pvc(DAY, namespace="web", pod="p3", pvc="cache", pv="pv-cache", capacity_gib=6, request_gib=6, usage_gib=3)
    b.write()

    df = run(dsn, tmp_path)
    storage = rows(df, data_source="Storage")
    assert sorted((r["persistentvolumeclaim"], r["node"], r["resource_id"]) for r in storage) == [
        ("cache", "node-a", "i-a"),
        ("cache", "node-b", "i-b"),
        ("data", "node-a", "i-a"),
        ("data", "node-b", "i-b"),
    ]
    for node in ("node-a", "node-b"):
        data = one(df, data_source="Storage", persistentvolumeclaim="data", node=node)
        assert data["persistentvolumeclaim_capacity_gigabyte"] == approx(10.0)
        # capacity months: 10 GiB x 3600 s x 24 h / (86400 x 31), not divided by the node count
        assert data["persistentvolumeclaim_capacity_gigabyte_months"] == approx(10 * 3600 * 24 / DAY_SECONDS_OCT)
        # request and usage divided by the 2 nodes that mount pv-data
        assert data["volume_request_storage_gigabyte_months"] == approx(20 * 3600 * 24 / 2 / DAY_SECONDS_OCT)
        assert data["persistentvolumeclaim_usage_gigabyte_months"] == approx(4 * 3600 * 24 / 2 / DAY_SECONDS_OCT)
        assert data["volume_labels"] == {} and data["all_labels"] == {} and data["pod_labels"] is None
        assert data["infrastructure_usage_cost"] == ZERO_COST
        assert data["pod_usage_cpu_core_hours"] != data["pod_usage_cpu_core_hours"]  # NULL
        cache = one(df, data_source="Storage", persistentvolumeclaim="cache", node=node)
        # fan-out: each node's row carries the PVC's full capacity sums; request/usage halved (2 nodes)
        assert cache["persistentvolumeclaim_capacity_gigabyte_months"] == approx(6 * 86400 / DAY_SECONDS_OCT)
        assert cache["volume_request_storage_gigabyte_months"] == approx(6 * 86400 / 2 / DAY_SECONDS_OCT)
        assert cache["persistentvolumeclaim_usage_gigabyte_months"] == approx(3 * 86400 / 2 / DAY_SECONDS_OCT)

    # Cluster capacity = sum of the node capacities, on every Pod row of the day: 4x24 + 8x24 = 288 core-hours.
    pods = rows(df, data_source="Pod")
    assert len(pods) == 2 + 2 + 2  # db@a, db@b, web@a, web@b, 2 unallocated
    for r in pods:
        assert r["cluster_capacity_cpu_core_hours"] == approx(4 * 24 + 8 * 24.0)
        assert r["cluster_capacity_memory_gigabyte_hours"] == approx(16 * 24 + 32 * 24.0)
    web_a = one(df, data_source="Pod", namespace="web", node="node-a")
    assert web_a["pod_usage_cpu_core_hours"] == approx(12 * 0.3)  # 12 hours x 3600 s x 0.3 / 3600
    un_b = one(df, namespace="Worker unallocated", node="node-b")
    # node-b: 192 core-hours - p2 (24 x 0.3) - p3 (12 x 0.3)
    assert un_b["pod_usage_cpu_core_hours"] == approx(8 * 24 - 24 * 0.3 - 12 * 0.3)
    assert un_b["pod_request_cpu_core_hours"] == approx(8 * 24 - 24 * 0.5 - 12 * 0.5)


# --------------------------------------------------------------------------------------------- D2(a), categories
def _category_scenario(root):
    b = KokuParquetBuilder(root, account=ACCOUNT, source=SOURCE)
    for node in ("master-0", "worker-0"):
        b.node_labels(DAY, node=node, labels={})
    b.pod(DAY, pod="apiserver", namespace="openshift-kube-apiserver", node="master-0", resource_id="i-m")
    b.pod(DAY, pod="prometheus", namespace="openshift-monitoring", node="worker-0", resource_id="i-w")
    b.pvc(
        DAY,
        namespace="openshift-monitoring",
        pod="prometheus",
        pvc="prom-db",
        pv="pv-prom",
        capacity_gib=10,
        request_gib=20,
        usage_gib=5,
    )
    b.pod(DAY, pod="app", namespace="app", node="worker-0", resource_id="i-w")
    b.pod(DAY, pod="o", namespace="openshift", node="worker-0", resource_id="i-w")
    b.write()


def test_namespace_matching_two_patterns_is_not_double_counted(dsn, tmp_path):
    _category_scenario(tmp_path)
    patterns = [
        ("openshift-%", 1),
        ("kube-%", 1),
        ("Platform unallocated", 1),
        ("openshift", 1),
        ("%-monitoring", 7),
        ("% unallocated", 9),
    ]
    df = run(dsn, tmp_path, cost_category_patterns=patterns)

    # Every pod: pod_seconds 3600, cpu 0.3/0.5/1.0, memory 0.8/1/2 GiB, 24 h -> usage 7.2 core-h, request 12.
    prom = one(df, data_source="Pod", namespace="openshift-monitoring")
    assert prom["cost_category_id"] == 7  # max(1 from 'openshift-%', 7 from '%-monitoring')
    assert prom["pod_usage_cpu_core_hours"] == approx(24 * 0.3)  # 7.2, not 2 x 7.2 (D2a)
    assert prom["pod_request_memory_gigabyte_hours"] == approx(24 * 1.0)
    pvc = one(df, data_source="Storage", namespace="openshift-monitoring")
    assert pvc["cost_category_id"] == 7
    assert pvc["persistentvolumeclaim_capacity_gigabyte_months"] == approx(10 * 86400 / DAY_SECONDS_OCT)  # not x2
    assert pvc["volume_request_storage_gigabyte_months"] == approx(20 * 86400 / DAY_SECONDS_OCT)  # 1 node
    assert one(df, namespace="openshift-kube-apiserver")["cost_category_id"] == 1
    assert one(df, namespace="openshift")["cost_category_id"] == 1
    assert pd.isna(one(df, namespace="app")["cost_category_id"])

    # Unallocated rows: one each, max category ('Platform unallocated' matches 1 and 9; 'Worker ...' only 9).
    platform = one(df, namespace="Platform unallocated")  # master-0 runs openshift-kube-apiserver
    assert platform["node"] == "master-0" and platform["cost_category_id"] == 9
    assert platform["pod_usage_cpu_core_hours"] == approx(96 - 7.2)
    worker = one(df, namespace="Worker unallocated")
    assert worker["node"] == "worker-0" and worker["cost_category_id"] == 9
    assert worker["pod_usage_cpu_core_hours"] == approx(96 - 3 * 7.2)  # prometheus, app, openshift
    assert worker["pod_request_cpu_core_hours"] == approx(96 - 3 * 12.0)
    assert worker["pod_usage_memory_gigabyte_hours"] == approx(16 * 24 - 3 * 0.8 * 24)

    # koku's seeded defaults: openshift-% / kube-% / openshift / 'Platform unallocated' -> Platform, others NULL.
    df = run(dsn, tmp_path)
    assert one(df, data_source="Pod", namespace="openshift-monitoring")["cost_category_id"] == PLATFORM_COST_CATEGORY_ID
    assert one(df, namespace="Platform unallocated")["cost_category_id"] == PLATFORM_COST_CATEGORY_ID
    assert pd.isna(one(df, namespace="Worker unallocated")["cost_category_id"])
    assert pd.isna(one(df, namespace="app")["cost_category_id"])
    # no patterns at all
    df = run(dsn, tmp_path, cost_category_patterns=[])
    assert df["cost_category_id"].isna().all()


def test_node_roles(dsn, tmp_path):
    b = KokuParquetBuilder(tmp_path, account=ACCOUNT, source=SOURCE)
    b.pod(DAY, pod="api", namespace="openshift-kube-apiserver", node="master-0", resource_id="i-m")
    b.node_labels(DAY, node="master-0", labels={"node_role_kubernetes_io": "master"})
    b.pod(DAY, pod="router", namespace="openshift-ingress", node="infra-0", resource_id="i-i")
    b.node_labels(DAY, node="infra-0", labels={"node_role_kubernetes_io": "infra"})  # text match, key not enabled
    b.pod(DAY, pod="app", namespace="app", node="worker-0", resource_id="i-w")
    b.node_labels(DAY, node="worker-0", labels={"node_role_kubernetes_io": "worker"})
    b.pod(DAY, pod="app2", namespace="app", node="orphan-0", resource_id="i-o")  # no node-label rows at all
    b.pod(DAY, pod="app3", namespace="app", node="sent-0", resource_id="i-s", node_role="master")  # operator role
    b.node_labels(DAY, node="sent-0", labels={})
    b.write()

    df = run(dsn, tmp_path)
    un = {
        r["node"]: r["namespace"]
        for r in rows(df, data_source="Pod")
        if r["pod_limit_cpu_core_hours"] != r["pod_limit_cpu_core_hours"]
    }
    assert un == {
        "master-0": "Platform unallocated",
        "infra-0": "Platform unallocated",
        "worker-0": "Worker unallocated",
        "orphan-0": None,
        "sent-0": "Platform unallocated",
    }
    orphan = one(df, node="orphan-0", namespace=None)
    assert orphan["pod_usage_cpu_core_hours"] == approx(96 - 7.2)
    assert pd.isna(orphan["cost_category_id"])  # NULL namespace matches no pattern


# --------------------------------------------------------------------------------------------- D2(b), labels
def test_label_set_changing_within_a_day_uses_latest_hour(dsn, tmp_path):
    b = KokuParquetBuilder(tmp_path, account=ACCOUNT, source=SOURCE)
    # node-a: enabled 'env' changes blue -> green at 12:00 (and non-enabled 'junk' churns)
    b.node_labels(DAY, node="node-a", labels={"env": "blue", "junk": "1"}, hours=range(12))
    b.node_labels(DAY, node="node-a", labels={"env": "green", "junk": "2"}, hours=range(12, 24))
    # namespace app: only a non-enabled key changes -> one filtered set, no D2(b) at all
    b.namespace_labels(DAY, namespace="app", labels={"team": "x", "junk": "1"}, hours=range(16))
    b.namespace_labels(DAY, namespace="app", labels={"team": "x", "junk": "2"}, hours=range(16, 24))
    # namespace svc: a -> b -> a: the latest hour (23) says a
    b.namespace_labels(DAY, namespace="svc", labels={"team": "a"}, hours=range(8))
    b.namespace_labels(DAY, namespace="svc", labels={"team": "b"}, hours=range(8, 16))
    b.namespace_labels(DAY, namespace="svc", labels={"team": "a"}, hours=range(16, 24))
    # namespace tie: two different sets at the latest hour -> the greatest JSON text, {"team": "q"}
    b.namespace_labels(DAY, namespace="tie", labels={"team": "p"}, hours=range(24))
    b.namespace_labels(DAY, namespace="tie", labels={"team": "q"}, hours=[23])
    # a tie where the key order matters: greatest by sorted-key text '{"ab": "x"}' > '{"aa": "2", "b": "1"}'
    # (jsonb::text would give '{"b": "1", "aa": "2"}' and pick the other set)
    b.namespace_labels(DAY, namespace="tie2", labels={"b": "1", "aa": "2"}, hours=[22, 23])
    b.namespace_labels(DAY, namespace="tie2", labels={"ab": "x"}, hours=[23])
    for ns in ("app", "svc", "tie", "tie2"):
        b.pod(DAY, pod=f"{ns}-pod", namespace=ns, node="node-a", resource_id="i-a")
    b.pvc(DAY, namespace="app", pod="app-pod", pvc="vol", pv="pv-vol", capacity_gib=10, request_gib=10, usage_gib=1)
    b.write()

    df = run(dsn, tmp_path, enabled_keys=["env", "team", "aa", "ab", "b"])
    pods = rows(df, data_source="Pod")
    assert len(pods) == 4 + 1  # one row per namespace (not one per label set) + unallocated
    app = one(df, data_source="Pod", namespace="app")
    assert app["pod_labels"] == {"env": "green", "team": "x"} == app["all_labels"]
    assert app["pod_usage_cpu_core_hours"] == approx(24 * 0.3)  # 7.2, not doubled by two node label sets
    assert one(df, data_source="Pod", namespace="svc")["pod_labels"] == {"env": "green", "team": "a"}
    assert one(df, data_source="Pod", namespace="tie")["pod_labels"] == {"env": "green", "team": "q"}
    assert one(df, data_source="Pod", namespace="tie2")["pod_labels"] == {"env": "green", "ab": "x"}
    vol = one(df, data_source="Storage")
    assert vol["volume_labels"] == {"env": "green", "team": "x"}
    assert vol["persistentvolumeclaim_capacity_gigabyte_months"] == approx(10 * 86400 / DAY_SECONDS_OCT)
    un = one(df, namespace="Worker unallocated")
    assert un["pod_usage_cpu_core_hours"] == approx(96 - 4 * 7.2)


def test_label_precedence_and_enabled_keys(dsn, tmp_path):
    b = KokuParquetBuilder(tmp_path, account=ACCOUNT, source=SOURCE)
    b.node_labels(DAY, node="node-a", labels={"k": "node", "node_only": "n", "secret": "s"})
    b.namespace_labels(DAY, namespace="ns", labels={"k": "ns", "ns_only": "s"})
    b.pod(
        DAY,
        pod="p",
        namespace="ns",
        node="node-a",
        resource_id="i-a",
        labels={"k": "pod", "pod_only": "a+b/c.d é", "vm_kubevirt_io_name": "vm-1", "hidden": "h"},
    )
    b.pvc(
        DAY,
        namespace="ns",
        pod="p",
        pvc="claim",
        pv="vol",
        pv_labels={"k": "pv", "pv_only": "v"},
        pvc_labels={"k": "pvc", "pvc_only": "c"},
    )
    b.write()
    keys = ["k", "node_only", "ns_only", "pod_only", "pv_only", "pvc_only"]

    df = run(dsn, tmp_path, enabled_keys=keys)
    pod = one(df, data_source="Pod", namespace="ns")
    # pod > namespace > node; only enabled keys plus vm_kubevirt_io_name
    assert pod["pod_labels"] == {
        "k": "pod",
        "node_only": "n",
        "ns_only": "s",
        "pod_only": "a+b/c.d é",
        "vm_kubevirt_io_name": "vm-1",
    }
    assert pod["all_labels"] == pod["pod_labels"]
    vol = one(df, data_source="Storage")
    # PVC > PV > namespace > node (of the pod's node); pod labels not included
    assert vol["volume_labels"] == {"k": "pvc", "node_only": "n", "ns_only": "s", "pv_only": "v", "pvc_only": "c"}
    assert vol["all_labels"] == vol["volume_labels"]
    assert one(df, namespace="Worker unallocated")["all_labels"] == {}

    # No enabled key: only vm_kubevirt_io_name survives (PGSQL, D1).
    df = run(dsn, tmp_path, enabled_keys=[])
    assert one(df, data_source="Pod", namespace="ns")["pod_labels"] == {"vm_kubevirt_io_name": "vm-1"}
    assert one(df, data_source="Storage")["volume_labels"] == {}


# --------------------------------------------------------------------------------------------- other koku behaviours
def test_koku_details_chunks_empty_node_claimless_pv_effective_usage_february(dsn, tmp_path):
    feb = dt.date(2024, 2, 10)  # leap February: 29 days
    feb_seconds = 86400 * 29

    def scenario(root, chunks, old=False):
        b = KokuParquetBuilder(root, account=ACCOUNT, source=SOURCE)
        b.node_labels(feb, node="node-a", labels={})
        # effective usage per hour: 12 h with usage 1.0 > request 0.5, 12 h with usage 0.2 < request 0.5
        b.pod(feb, pod="burst", namespace="eff", node="node-a", resource_id="i-a", cpu=(1.0, 0.5, 2.0), hours=range(12))
        b.pod(
            feb,
            pod="burst",
            namespace="eff",
            node="node-a",
            resource_id="i-a",
            cpu=(0.2, 0.5, 2.0),
            hours=range(12, 24),
        )
        if old:  # the same pod in old Parquet without effective usage: greatest() of each daily row's sums
            b.pod(
                feb,
                pod="old",
                namespace="old",
                node="node-a",
                resource_id="i-a",
                cpu=(1.0, 0.5, 2.0),
                hours=range(12),
                effective=False,
            )
            b.pod(
                feb,
                pod="old",
                namespace="old",
                node="node-a",
                resource_id="i-a",
                cpu=(0.2, 0.5, 2.0),
                hours=range(12, 24),
                effective=False,
            )
        # a pod with node '' (2 cores): no Pod row, but its capacity counts for the cluster
        b.pod(feb, pod="ghost", namespace="eff", node="", resource_id="", node_cpu_cores=2, node_memory_gib=8)
        # a claimless PV: no pod match -> node/resource_id NULL, request and usage undivided
        b.pvc(feb, namespace="", pod="", pvc="", pv="pv-free", capacity_gib=0, request_gib=50, usage_gib=0)
        b.pvc(feb, namespace="eff", pod="burst", pvc="c", pv="pv-c", capacity_gib=10, request_gib=20, usage_gib=5)
        b.write(chunks=chunks)

    scenario(tmp_path / "one", 1)
    scenario(tmp_path / "chunked", 5)
    scenario(tmp_path / "old", 1, old=True)
    df = run(dsn, tmp_path / "one", start=feb, end=feb)
    chunked = run(dsn, tmp_path / "chunked", start=feb, end=feb)
    assert (
        chunked.attrs["loaded_rows"]["openshift_pod_usage_line_items_daily"]
        > df.attrs["loaded_rows"]["openshift_pod_usage_line_items_daily"]
    )  # several daily rows per pod-day
    assert compare_summaries(df, chunked) == []  # sums unchanged

    burst = one(df, data_source="Pod", namespace="eff")
    assert burst["pod_usage_cpu_core_hours"] == approx(12 * 1.0 + 12 * 0.2)  # 14.4
    assert burst["pod_effective_usage_cpu_core_hours"] == approx(12 * 1.0 + 12 * 0.5)  # 18, hourly max
    old = one(run(dsn, tmp_path / "old", start=feb, end=feb), data_source="Pod", namespace="old")
    assert old["pod_effective_usage_cpu_core_hours"] == approx(max(12 * 1.0 + 12 * 0.2, 24 * 0.5))  # 14.4
    assert rows(df, node="") == []
    assert burst["cluster_capacity_cpu_core_hours"] == approx(4 * 24 + 2 * 24.0)  # node-a + node ''
    assert burst["node_capacity_cpu_core_hours"] == approx(96.0)

    free = one(df, data_source="Storage", persistentvolume="pv-free")
    assert free["node"] is None and free["resource_id"] is None and free["namespace"] == ""
    assert free["volume_request_storage_gigabyte_months"] == approx(50 * 86400 / feb_seconds)  # / coalesce(,1)
    claim = one(df, data_source="Storage", persistentvolume="pv-c")
    assert claim["node"] == "node-a"
    assert claim["persistentvolumeclaim_capacity_gigabyte_months"] == approx(10 * 86400 / feb_seconds)  # 29 days
    assert claim["persistentvolumeclaim_usage_gigabyte_months"] == approx(5 * 86400 / feb_seconds)


def test_window_across_a_month_boundary(dsn, tmp_path):
    oct31, nov1 = dt.date(2025, 10, 31), dt.date(2025, 11, 1)
    b = KokuParquetBuilder(tmp_path, account=ACCOUNT, source=SOURCE)
    for day in (dt.date(2025, 10, 30), oct31, nov1, dt.date(2025, 11, 2)):
        b.node_labels(day, node="node-a", labels={})
        b.pod(day, pod="p", namespace="ns", node="node-a", resource_id="i-a")
        b.pvc(day, namespace="ns", pod="p", pvc="c", pv="pv", capacity_gib=30, request_gib=30, usage_gib=30)
    b.write()

    df = run(
        dsn, tmp_path, start=oct31, end=nov1, report_period_id={dt.date(2025, 10, 1): 11, dt.date(2025, 11, 1): 12}
    )
    assert sorted(set(df["usage_start"])) == [oct31, nov1]  # only the window
    oct_row = one(df, data_source="Storage", usage_start=oct31)
    nov_row = one(df, data_source="Storage", usage_start=nov1)
    assert oct_row["persistentvolumeclaim_capacity_gigabyte_months"] == approx(30 / 31)
    assert nov_row["persistentvolumeclaim_capacity_gigabyte_months"] == approx(30 / 30)
    assert (oct_row["report_period_id"], nov_row["report_period_id"]) == (11, 12)
    assert len(rows(df, namespace="Worker unallocated")) == 2


# --------------------------------------------------------------------------------------------- compare_summaries
def test_compare_summaries_reports_every_difference(dsn, tmp_path):
    _category_scenario(tmp_path)
    expected = run(dsn, tmp_path)
    assert compare_summaries(expected, expected.copy()) == []

    actual = expected.copy()
    i_prom = actual.index[(actual["namespace"] == "openshift-monitoring") & (actual["data_source"] == "Pod")][0]
    actual.loc[i_prom, "pod_usage_cpu_core_hours"] *= 1 + 1e-12  # within tolerance
    assert compare_summaries(expected, actual) == []
    actual.loc[i_prom, "pod_usage_cpu_core_hours"] *= 1 + 1e-6
    actual.loc[i_prom, "cost_category_id"] = None  # NULL vs value
    i_un = actual.index[actual["namespace"] == "Worker unallocated"][0]
    actual = actual.drop(index=i_un)
    problems = compare_summaries(expected, actual)
    assert len(problems) == 3, problems
    assert any(p.startswith("pod_usage_cpu_core_hours: expected 7.2") for p in problems)
    assert any(p.startswith("cost_category_id: expected 1, actual None") for p in problems)
    assert any(p.startswith("missing row (1x)") and "Worker unallocated" in p for p in problems)

    # labels are part of the key; JSON text and dicts compare equal
    relabelled = expected.copy()
    relabelled["pod_labels"] = [
        None if v is None else ('{"x": "1"}' if v == {} else v) for v in relabelled["pod_labels"]
    ]
    problems = compare_summaries(expected, relabelled)
    assert sum(p.startswith("missing row") for p in problems) == sum(p.startswith("extra row") for p in problems) > 0
    as_text = expected.copy()
    as_text["pod_labels"] = [None if v is None else "{}" for v in as_text["pod_labels"]]
    as_text["usage_start"] = as_text["usage_start"].astype(str)
    assert compare_summaries(expected, as_text) == []


def test_node_roles_depend_on_how_koku_runs_are_cut(dsn, tmp_path):
    day1, day2 = dt.date(2025, 10, 1), dt.date(2025, 10, 2)
    for name, node_labels in (("no-arch", {}), ("arch", {"kubernetes_io_arch": "AMD64"})):
        root = tmp_path / name
        b = KokuParquetBuilder(root, account=ACCOUNT, source=SOURCE)
        for day in (day1, day2):
            b.node_labels(day, node="node-x", labels=node_labels)
            b.pod(day, pod="app", namespace="app", node="node-x", resource_id="i-x")
        b.pod(day2, pod="api", namespace="openshift-kube-apiserver", node="node-x", resource_id="i-x")
        b.write()

        def unallocated(runs, root=root):
            df = run(dsn, root, start=day1, end=day2, runs=runs)
            return [
                r["namespace"]
                for r in sorted(rows(df, node="node-x"), key=lambda r: r["usage_start"])
                if r["namespace"] not in ("app", "openshift-kube-apiserver")
            ]

        # One koku run over both days: the role is computed once over the range -> master on both days.
        assert unallocated("month") == ["Platform unallocated", "Platform unallocated"], name
        # One run per day, reporting_ocp_nodes accumulating: day 1 inserts (node-x, worker). On day 2 koku
        # overwrites role and architecture only when either is missing, so the role follows the arch label.
        expected_day2 = "Platform unallocated" if name == "no-arch" else "Worker unallocated"
        assert unallocated("day") == ["Worker unallocated", expected_day2], name

    with pytest.raises(ValueError, match="runs"):
        run(dsn, tmp_path, runs="week")
