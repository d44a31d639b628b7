"""Pure-core tests of the summary stages on in-memory tables, expected values derived by hand from contract "
"section 3."""

import datetime as dt
import math

import pyarrow as pa
import pytest

from ocp_assets.core.reader import (
    NAMESPACE_LABEL_COLUMNS,
    NODE_LABEL_COLUMNS,
    POD_DAILY_COLUMNS,
    STORAGE_DAILY_COLUMNS,
    DayTable,
    node_capacity_per_day,
)
from ocp_assets.core.summary import (
    INFRASTRUCTURE_USAGE_COST,
    LabelTables,
    SummaryContext,
    aggregate_usage,
    cost_category_ids,
    dedupe_entity_labels,
    like_to_regex,
    merge_labels,
    node_inventory,
    unallocated_rows,
)

DAY = dt.date(2026, 10, 1)
MIDNIGHT = dt.datetime(2026, 10, 1)
GIB = 2**30
PLATFORM = 1
DEFAULT_PATTERNS = (
    ("openshift-%", PLATFORM),
    ("kube-%", PLATFORM),
    ("Platform unallocated", PLATFORM),
    ("openshift", PLATFORM),
)


def table(specs, rows) -> DayTable:
    schema = pa.schema([(s.name, s.type) for s in specs])
    return DayTable(pa.table({f.name: [r.get(f.name) for r in rows] for f in schema}, schema=schema))


def pod_row(
    pod,
    namespace,
    node,
    *,
    cpu=(0.3, 0.5, 1.0),
    mem=(0.8, 1.0, 2.0),
    hours=24,
    seconds=86400.0,
    labels="{}",
    resource_id="i-1",
    cores=4.0,
    memory_gib=16.0,
    effective=True,
):
    """One pod_daily row summing `hours` hourly rows of `seconds` pod-seconds each (nise's pod_seconds per row)."""
    usage, request, limit = cpu
    musage, mrequest, mlimit = mem
    row = {
        "namespace": namespace,
        "node": node,
        "pod": pod,
        "pod_labels": labels,
        "resource_id": resource_id,
        "interval_start": MIDNIGHT,
        "pod_usage_cpu_core_seconds": hours * seconds * usage,
        "pod_request_cpu_core_seconds": hours * seconds * request,
        "pod_limit_cpu_core_seconds": hours * seconds * limit,
        "pod_usage_memory_byte_seconds": hours * seconds * musage * GIB,
        "pod_request_memory_byte_seconds": hours * seconds * mrequest * GIB,
        "pod_limit_memory_byte_seconds": hours * seconds * mlimit * GIB,
        "node_capacity_cpu_cores": cores,
        "node_capacity_memory_bytes": memory_gib * GIB,
    }
    if effective:
        row["pod_effective_usage_cpu_core_seconds"] = hours * seconds * max(usage, request)
        row["pod_effective_usage_memory_byte_seconds"] = hours * seconds * max(musage, mrequest) * GIB
    return row


def capacity(nodes: dict[str, tuple[float, float]], hours=24, pods_per_node=3) -> pa.Table:
    """Hourly capacity rows repeated on every pod row, as nise writes them; node -> (cores, GiB)."""
    rows = []
    for h in range(hours):
        for node, (cores, gib) in nodes.items():
            for _ in range(pods_per_node):
                rows.append(
                    {
                        "interval_start": MIDNIGHT + dt.timedelta(hours=h),
                        "node": node,
                        "node_capacity_cpu_core_seconds": cores * 3600.0,
                        "node_capacity_memory_byte_seconds": gib * GIB * 3600.0,
                    }
                )
    return node_capacity_per_day(pa.Table.from_pylist(rows))


def labels_table(entity, rows, enabled=()) -> pa.Table:
    specs = NODE_LABEL_COLUMNS if entity == "node" else NAMESPACE_LABEL_COLUMNS
    daily = table(specs, [dict(interval_start=MIDNIGHT, **r) for r in rows])
    return dedupe_entity_labels(daily, table(specs, []), entity, f"{entity}_labels", enabled)


def ctx(**overrides) -> SummaryContext:
    base = {
        "source": "11111111-1111-1111-1111-111111111111",
        "cluster_id": "c1",
        "cluster_alias": "C1",
        "day": DAY,
        "report_period_id": 7,
        "enabled_keys": (),
        "cost_categories": DEFAULT_PATTERNS,
    }
    base.update(overrides)
    return SummaryContext(**base)


def summarize(pods, storage=None, *, node_labels=(), namespace_labels=(), enabled=(), node_capacity=None, context=None):
    context = context or ctx(enabled_keys=tuple(enabled))
    label_tables = LabelTables(
        labels_table("node", node_labels, enabled), labels_table("namespace", namespace_labels, enabled)
    )
    pod_usage = table(POD_DAILY_COLUMNS, pods)
    storage_usage = table(STORAGE_DAILY_COLUMNS, storage or [])
    merged = merge_labels(pod_usage, storage_usage, label_tables, enabled)
    usage = aggregate_usage(
        merged, node_capacity if node_capacity is not None else capacity({"worker-1": (4, 16)}), context
    )
    return usage.to_pylist(), merged, label_tables, usage


def test_worked_example_pod_row():
    rows, *_ = summarize([pod_row("p1", "app-namespace", "worker-1")])
    [pod] = rows
    # cpu: 24 h x 86400 s x 0.3 cores / 3600 = 172.8 core-hours; request 0.5 -> 288; limit 1.0 -> 576
    assert pod["pod_usage_cpu_core_hours"] == pytest.approx(172.8)
    assert pod["pod_request_cpu_core_hours"] == pytest.approx(288)
    assert pod["pod_effective_usage_cpu_core_hours"] == pytest.approx(288)
    assert pod["pod_limit_cpu_core_hours"] == pytest.approx(576)
    # memory: 24 x 86400 x 0.8 GiB / 3600 = 460.8 GiB-hours; 1 GiB -> 576; 2 GiB -> 1152
    assert pod["pod_usage_memory_gigabyte_hours"] == pytest.approx(460.8)
    assert pod["pod_request_memory_gigabyte_hours"] == pytest.approx(576)
    assert pod["pod_limit_memory_gigabyte_hours"] == pytest.approx(1152)
    # node: 4 cores x 24 h = 96 core-hours; 16 GiB x 24 h = 384 GiB-hours; one node, so cluster = node
    assert (pod["node_capacity_cpu_cores"], pod["node_capacity_cpu_core_hours"]) == (4, pytest.approx(96))
    assert (pod["node_capacity_memory_gigabytes"], pod["node_capacity_memory_gigabyte_hours"]) == (
        16,
        pytest.approx(384),
    )
    assert (pod["cluster_capacity_cpu_core_hours"], pod["cluster_capacity_memory_gigabyte_hours"]) == (
        pytest.approx(96),
        pytest.approx(384),
    )
    assert pod["pod_labels"] == "{}" and pod["all_labels"] == "{}" and pod["volume_labels"] is None
    assert pod["infrastructure_usage_cost"] == INFRASTRUCTURE_USAGE_COST
    assert (pod["data_source"], pod["usage_start"], pod["usage_end"], pod["report_period_id"]) == ("Pod", DAY, DAY, 7)
    assert pod["cost_category_id"] is None


def test_worked_example_unallocated_row_is_negative_and_unclamped():
    _, _, _, usage = summarize([pod_row("p1", "app-namespace", "worker-1")])
    roles = pa.table({"node": ["worker-1"], "resource_id": ["i-1"], "node_role": ["worker"]})
    [row] = unallocated_rows(usage, roles, ctx()).to_pylist()
    assert (row["namespace"], row["data_source"], row["node"], row["resource_id"]) == (
        "Worker unallocated",
        "Pod",
        "worker-1",
        "i-1",
    )
    # 96 - 172.8 = -76.8; 96 - 288 = -192; memory 384 - 460.8 = -76.8; 384 - 576 = -192
    assert row["pod_usage_cpu_core_hours"] == pytest.approx(-76.8)
    assert row["pod_request_cpu_core_hours"] == pytest.approx(-192)
    assert row["pod_effective_usage_cpu_core_hours"] == pytest.approx(-192)
    assert row["pod_usage_memory_gigabyte_hours"] == pytest.approx(-76.8)
    assert row["pod_effective_usage_memory_gigabyte_hours"] == pytest.approx(-192)
    assert row["pod_limit_cpu_core_hours"] is None and row["pod_labels"] is None
    assert row["infrastructure_usage_cost"] is None and row["all_labels"] == "{}"
    assert row["node_capacity_cpu_core_hours"] == pytest.approx(96)
    assert row["cost_category_id"] is None  # 'Worker unallocated' matches no default pattern


def test_unallocated_namespace_follows_the_max_role_and_is_null_without_one():
    pods = [
        pod_row("a", "app", "master-1", resource_id="i-m"),
        pod_row("b", "app", "infra-1", resource_id="i-i"),
        pod_row("c", "app", "lonely-1", resource_id="i-l"),
    ]
    nodes = capacity({"master-1": (4, 16), "infra-1": (4, 16), "lonely-1": (4, 16)})
    _, _, _, usage = summarize(pods, node_capacity=nodes)
    roles = pa.table({"node": ["master-1", "infra-1"], "resource_id": ["i-m", "i-i"], "node_role": ["master", "infra"]})
    by_node = {r["node"]: r for r in unallocated_rows(usage, roles, ctx()).to_pylist()}
    assert by_node["master-1"]["namespace"] == "Platform unallocated"
    assert by_node["master-1"]["cost_category_id"] == PLATFORM
    assert by_node["infra-1"]["namespace"] == "Platform unallocated"
    assert by_node["lonely-1"]["namespace"] is None and by_node["lonely-1"]["cost_category_id"] is None


def test_pods_on_an_empty_node_are_not_pod_rows_but_count_in_cluster_capacity():
    pods = [pod_row("p1", "app", "worker-1"), pod_row("p2", "app", "")]
    nodes = capacity({"worker-1": (4, 16), "": (2, 8)})
    rows, *_ = summarize(pods, node_capacity=nodes)
    assert [r["node"] for r in rows] == ["worker-1"]
    # cluster = (4 + 2) cores x 24 h = 144 core-hours; (16 + 8) GiB x 24 h = 576 GiB-hours
    assert rows[0]["cluster_capacity_cpu_core_hours"] == pytest.approx(144)
    assert rows[0]["cluster_capacity_memory_gigabyte_hours"] == pytest.approx(576)


def test_several_nodes_have_their_own_capacity_and_share_the_cluster_total():
    pods = [pod_row("a", "app", "small", cores=2, memory_gib=8), pod_row("b", "app", "big", cores=8, memory_gib=32)]
    rows, *_ = summarize(pods, node_capacity=capacity({"small": (2, 8), "big": (8, 32)}))
    by_node = {r["node"]: r for r in rows}
    assert by_node["small"]["node_capacity_cpu_core_hours"] == pytest.approx(2 * 24)
    assert by_node["big"]["node_capacity_memory_gigabyte_hours"] == pytest.approx(32 * 24)
    for row in rows:
        assert row["cluster_capacity_cpu_core_hours"] == pytest.approx((2 + 8) * 24)
        assert row["cluster_capacity_memory_gigabyte_hours"] == pytest.approx((8 + 32) * 24)


def test_node_without_capacity_rows_gets_zero_capacity_hours():
    rows, *_ = summarize([pod_row("p1", "app", "ghost")], node_capacity=capacity({"worker-1": (4, 16)}))
    assert rows[0]["node_capacity_cpu_core_hours"] == 0 and rows[0]["node_capacity_memory_gigabyte_hours"] == 0
    assert rows[0]["cluster_capacity_cpu_core_hours"] == pytest.approx(96)


def test_pods_merge_per_namespace_node_and_filtered_labels():
    pods = [
        pod_row("a", "app", "worker-1", labels='{"app": "web", "pod_template_hash": "1"}', resource_id="i-1"),
        pod_row("b", "app", "worker-1", labels='{"app": "web", "pod_template_hash": "2"}', resource_id="i-2"),
        pod_row("c", "app", "worker-1", labels='{"app": "db"}'),
        pod_row("d", "other", "worker-1"),
    ]
    rows, *_ = summarize(pods, enabled=["app"])
    keys = sorted((r["namespace"], r["pod_labels"]) for r in rows)
    assert keys == [("app", '{"app": "db"}'), ("app", '{"app": "web"}'), ("other", "{}")]
    web = next(r for r in rows if r["pod_labels"] == '{"app": "web"}')
    # a and b differ only in a disabled key, so they merge: 2 x 172.8 core-hours; resource_id is max()
    assert web["pod_usage_cpu_core_hours"] == pytest.approx(2 * 172.8)
    assert web["resource_id"] == "i-2"


def test_effective_usage_falls_back_to_greatest_of_daily_usage_and_request():
    rows, *_ = summarize([pod_row("p1", "app", "worker-1", cpu=(0.7, 0.5, 1.0), mem=(0.5, 1.0, 2.0), effective=False)])
    # no effective column: greatest(24*86400*0.7, 24*86400*0.5)/3600 = 403.2; memory greatest(0.5, 1.0) -> 576
    assert rows[0]["pod_effective_usage_cpu_core_hours"] == pytest.approx(403.2)
    assert rows[0]["pod_effective_usage_memory_gigabyte_hours"] == pytest.approx(576)


def test_label_precedence_pod_over_namespace_over_node():
    rows, *_ = summarize(
        [pod_row("p1", "app", "worker-1", labels='{"k1": "pod"}')],
        node_labels=[{"node": "worker-1", "node_labels": '{"k1": "node", "k2": "node", "k3": "node"}'}],
        namespace_labels=[{"namespace": "app", "namespace_labels": '{"k1": "ns", "k2": "ns"}'}],
        enabled=["k1", "k2", "k3"],
    )
    assert rows[0]["pod_labels"] == '{"k1": "pod", "k2": "ns", "k3": "node"}'
    assert rows[0]["all_labels"] == rows[0]["pod_labels"]


def storage_row(
    pvc,
    pv,
    pod,
    namespace,
    *,
    capacity_gib=10.0,
    request_gib=100.0,
    usage_gib=4.0,
    hours=24,
    pv_labels="{}",
    pvc_labels="{}",
    storageclass="gp3",
    handle="h",
):
    return {
        "namespace": namespace,
        "pod": pod,
        "persistentvolumeclaim": pvc,
        "persistentvolume": pv,
        "storageclass": storageclass,
        "csi_volume_handle": handle,
        "persistentvolume_labels": pv_labels,
        "persistentvolumeclaim_labels": pvc_labels,
        "interval_start": MIDNIGHT,
        "persistentvolumeclaim_capacity_bytes": capacity_gib * GIB,
        "persistentvolumeclaim_capacity_byte_seconds": capacity_gib * GIB * 3600 * hours,
        "volume_request_storage_byte_seconds": request_gib * GIB * 3600 * hours,
        "persistentvolumeclaim_usage_byte_seconds": usage_gib * GIB * 3600 * hours,
    }


OCTOBER_SECONDS = 86400 * 31


def test_storage_row_months_use_days_in_month():
    pods = [pod_row("p1", "app", "worker-1")]
    rows, *_ = summarize(pods, [storage_row("claim", "pv1", "p1", "app")])
    [storage] = [r for r in rows if r["data_source"] == "Storage"]
    assert (storage["node"], storage["resource_id"], storage["persistentvolumeclaim"]) == ("worker-1", "i-1", "claim")
    assert storage["persistentvolumeclaim_capacity_gigabyte"] == pytest.approx(10)
    # 10 GiB x 3600 x 24 / (86400 x 31) = 10/31 GiB-months; request 100/31; usage 4/31
    assert storage["persistentvolumeclaim_capacity_gigabyte_months"] == pytest.approx(10 / 31)
    assert storage["volume_request_storage_gigabyte_months"] == pytest.approx(100 / 31)
    assert storage["persistentvolumeclaim_usage_gigabyte_months"] == pytest.approx(4 / 31)
    assert storage["pod_usage_cpu_core_hours"] is None and storage["pod_labels"] is None
    assert storage["infrastructure_usage_cost"] == INFRASTRUCTURE_USAGE_COST


def test_february_divides_by_28_days():
    february = dt.date(2026, 2, 10)
    rows, *_ = summarize(
        [pod_row("p1", "app", "worker-1")], [storage_row("claim", "pv1", "p1", "app")], context=ctx(day=february)
    )
    [storage] = [r for r in rows if r["data_source"] == "Storage"]
    assert storage["persistentvolumeclaim_capacity_gigabyte_months"] == pytest.approx(10 * 3600 * 24 / (86400 * 28))
    assert storage["usage_start"] == february


def test_volume_shared_by_pods_on_two_nodes_halves_request_and_usage_but_not_capacity():
    pods = [pod_row("p1", "app", "worker-1", resource_id="i-1"), pod_row("p2", "app", "worker-2", resource_id="i-2")]
    storage = [storage_row("claim", "pv1", "p1", "app"), storage_row("claim", "pv1", "p2", "app")]
    rows, *_ = summarize(pods, storage, node_capacity=capacity({"worker-1": (4, 16), "worker-2": (4, 16)}))
    volumes = sorted((r for r in rows if r["data_source"] == "Storage"), key=lambda r: r["node"])
    assert [v["node"] for v in volumes] == ["worker-1", "worker-2"]
    for volume in volumes:
        assert volume["persistentvolumeclaim_capacity_gigabyte_months"] == pytest.approx(10 / 31)
        assert volume["volume_request_storage_gigabyte_months"] == pytest.approx(100 / 31 / 2)
        assert volume["persistentvolumeclaim_usage_gigabyte_months"] == pytest.approx(4 / 31 / 2)


def test_pods_sharing_a_claim_on_one_node_sum_into_one_storage_row():
    pods = [pod_row("p1", "app", "worker-1"), pod_row("p2", "app", "worker-1")]
    storage = [storage_row("claim", "pv1", "p1", "app"), storage_row("claim", "pv1", "p2", "app")]
    rows, *_ = summarize(pods, storage)
    [volume] = [r for r in rows if r["data_source"] == "Storage"]
    # pod is not a group key: capacity months summed over both pods (2 x 10/31), one node so undivided
    assert volume["persistentvolumeclaim_capacity_gigabyte_months"] == pytest.approx(2 * 10 / 31)
    assert volume["volume_request_storage_gigabyte_months"] == pytest.approx(2 * 100 / 31)


def test_pod_on_two_nodes_fans_its_storage_row_out_with_full_capacity_each():
    pods = [pod_row("p1", "app", "worker-1", resource_id="i-1"), pod_row("p1", "app", "worker-2", resource_id="i-2")]
    rows, *_ = summarize(
        pods,
        [storage_row("claim", "pv1", "p1", "app")],
        node_capacity=capacity({"worker-1": (4, 16), "worker-2": (4, 16)}),
    )
    volumes = [r for r in rows if r["data_source"] == "Storage"]
    assert sorted(v["node"] for v in volumes) == ["worker-1", "worker-2"]
    assert all(v["persistentvolumeclaim_capacity_gigabyte_months"] == pytest.approx(10 / 31) for v in volumes)
    assert all(v["volume_request_storage_gigabyte_months"] == pytest.approx(100 / 31 / 2) for v in volumes)


def test_claimless_volume_has_no_node_and_is_not_divided():
    rows, *_ = summarize([pod_row("p1", "app", "worker-1")], [storage_row("", "pv-free", "", "")])
    [volume] = [r for r in rows if r["data_source"] == "Storage"]
    assert volume["node"] is None and volume["resource_id"] is None
    assert volume["volume_request_storage_gigabyte_months"] == pytest.approx(100 / 31)


def test_volume_label_precedence_pvc_over_pv_over_namespace_over_node():
    rows, *_ = summarize(
        [pod_row("p1", "app", "worker-1", labels='{"k1": "pod"}')],
        [storage_row("claim", "pv1", "p1", "app", pv_labels='{"k1": "pv", "k2": "pv"}', pvc_labels='{"k1": "pvc"}')],
        node_labels=[{"node": "worker-1", "node_labels": '{"k1": "node", "k2": "node", "k3": "node", "k4": "node"}'}],
        namespace_labels=[{"namespace": "app", "namespace_labels": '{"k1": "ns", "k2": "ns", "k3": "ns"}'}],
        enabled=["k1", "k2", "k3", "k4"],
    )
    [volume] = [r for r in rows if r["data_source"] == "Storage"]
    assert volume["volume_labels"] == '{"k1": "pvc", "k2": "pv", "k3": "ns", "k4": "node"}'
    assert volume["all_labels"] == volume["volume_labels"]


def test_like_patterns_follow_postgresql_semantics():
    assert like_to_regex("openshift-%").fullmatch("openshift-monitoring")
    assert not like_to_regex("openshift-%").fullmatch("openshift")
    assert like_to_regex("kube-_").fullmatch("kube-x") and not like_to_regex("kube-_").fullmatch("kube-xy")
    assert like_to_regex(r"a\%b").fullmatch("a%b") and not like_to_regex(r"a\%b").fullmatch("axb")
    assert not like_to_regex("Openshift").fullmatch("openshift")  # LIKE is case-sensitive


def test_namespace_matching_two_patterns_gets_the_max_category_once():
    ids = cost_category_ids(pa.array(["openshift-x", "app", None]), [("openshift-%", 1), ("%-x", 5)])
    assert ids.to_pylist() == [5, None, None]
    pods = [pod_row("p1", "openshift-x", "worker-1")]
    rows, *_ = summarize(pods, context=ctx(cost_categories=(("openshift-%", 1), ("%-x", 5))))
    # D2(a): one row, sums not multiplied by the two matches
    assert len(rows) == 1 and rows[0]["cost_category_id"] == 5
    assert rows[0]["pod_usage_cpu_core_hours"] == pytest.approx(172.8)


def test_node_roles_from_pods_and_labels():
    pods = table(
        POD_DAILY_COLUMNS,
        [
            pod_row("api", "openshift-kube-apiserver", "m1", resource_id="i-m"),
            pod_row("x", "app", "i1", resource_id="i-i"),
            pod_row("y", "app", "w1", resource_id="i-w"),
            pod_row("z", "app", "nolabels", resource_id="i-n"),
        ],
    ).table
    node_labels = labels_table(
        "node",
        [
            {"node": "m1", "node_labels": "{}"},
            {"node": "i1", "node_labels": '{"node_role_kubernetes_io": "infra", "kubernetes_io_arch": "AMD64"}'},
            {"node": "w1", "node_labels": '{"kubernetes_io_arch": "arm64"}'},
        ],
    )
    inventory = {r["node"]: r for r in node_inventory(pods, node_labels).to_pylist()}
    assert set(inventory) == {"m1", "i1", "w1"}  # a node without node-label rows gets no entry (inner join)
    assert (inventory["m1"]["node_role"], inventory["i1"]["node_role"], inventory["w1"]["node_role"]) == (
        "master",
        "infra",
        "worker",
    )
    assert inventory["i1"]["architecture"] == "amd64" and inventory["w1"]["architecture"] == "arm64"
    assert inventory["w1"]["node_capacity_cpu_cores"] == 4 and inventory["w1"]["resource_id"] == "i-w"


def test_operator_node_role_wins_over_derived_role():
    row = pod_row("api", "openshift-kube-apiserver", "n1")
    row["node_role"] = "infra"
    inventory = node_inventory(
        table(POD_DAILY_COLUMNS, [row]).table, labels_table("node", [{"node": "n1", "node_labels": "{}"}])
    )
    assert inventory["node_role"].to_pylist() == ["infra"]


def test_measures_are_finite_floats():
    _, _, _, usage = summarize([pod_row("p1", "app", "worker-1")], [storage_row("claim", "pv1", "p1", "app")])
    for row in usage.to_pylist():
        for key, value in row.items():
            if isinstance(value, float):
                assert math.isfinite(value), key
