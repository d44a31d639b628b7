"""Property tests on generated CSV payloads and nise scenarios: totals, unallocated, unique keys, allowed label keys."""

import datetime as dt
import math
import tempfile
from collections import Counter, defaultdict
from functools import partial
from pathlib import Path

import hypothesis.strategies as st
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from ocp_assets.core.identity import ClusterDay
from ocp_assets.core.ingest import ingest
from ocp_assets.core.pipeline import summarize_day
from ocp_assets.core.storage import open_data_root
from ocp_assets_tests.engine_support import enable_keys
from ocp_assets_tests.scenario_support import (
    ACCOUNT,
    GIB,
    CsvPayload,
    fetch_rows,
    is_unallocated,
    nise_cache_dir,
    nise_csvs,
    parse_timestamp,
    run_scenario,
    scenario_ids,
)

pytestmark = pytest.mark.slow

VM_KEY = "vm_kubevirt_io_name"
# (summary column, CSV column(s), divisor): hours = seconds / 3600, GiB-hours = byte-seconds / 3600 / 2^30.
POD_MEASURES = [
    ("pod_usage_cpu_core_hours", ("pod_usage_cpu_core_seconds",), 3600),
    ("pod_request_cpu_core_hours", ("pod_request_cpu_core_seconds",), 3600),
    ("pod_limit_cpu_core_hours", ("pod_limit_cpu_core_seconds",), 3600),
    ("pod_effective_usage_cpu_core_hours", ("pod_usage_cpu_core_seconds", "pod_request_cpu_core_seconds"), 3600),
    ("pod_usage_memory_gigabyte_hours", ("pod_usage_memory_byte_seconds",), 3600 * GIB),
    ("pod_request_memory_gigabyte_hours", ("pod_request_memory_byte_seconds",), 3600 * GIB),
    ("pod_limit_memory_gigabyte_hours", ("pod_limit_memory_byte_seconds",), 3600 * GIB),
    ("pod_effective_usage_memory_gigabyte_hours", ("pod_usage_memory_byte_seconds", "pod_request_memory_byte_seconds"),
     3600 * GIB),
]  # fmt: skip
UNALLOCATED_MEASURES = [m for m in POD_MEASURES if "limit" not in m[0]]
KEY_COLUMNS = {
    "Pod": ("usage_start", "namespace", "node", "pod_labels"),
    "unallocated": ("usage_start", "node"),
    "Storage": ("usage_start", "namespace", "node", "resource_id", "persistentvolumeclaim", "persistentvolume",
                "storageclass", "volume_labels"),
}  # fmt: skip


def number(text: str) -> float:
    """koku's safe_float: blank -> 0.0."""
    try:
        return float(text)
    except ValueError:
        return 0.0


def close(actual: float | None, expected: float) -> bool:
    return actual is not None and math.isclose(actual, expected, rel_tol=1e-9, abs_tol=1e-9)


def measure_of(row: dict, columns: tuple[str, ...]) -> float:
    # one column: its value; two (effective usage): max(usage, request) of this hourly row (1.3 step 4)
    return max(number(row[c]) for c in columns)


def check_invariants(payload: CsvPayload, rows: list[dict], enabled: list[str]) -> None:
    """The four properties, each derived from the CSV input independently of the engine."""
    pod_input = payload.rows["ocp_pod_usage"]
    days = sorted({parse_timestamp(r["interval_start"]).date() for r in pod_input})
    assert days and {r["usage_start"] for r in rows} <= set(days)
    allowed = set(enabled) | {VM_KEY}
    for day in days:
        day_input = [r for r in pod_input if parse_timestamp(r["interval_start"]).date() == day]
        day_rows = [r for r in rows if r["usage_start"] == day]
        pod_rows = [r for r in day_rows if r["data_source"] == "Pod" and not is_unallocated(r)]
        unallocated = [r for r in day_rows if is_unallocated(r)]
        if any(r["node"] != "" for r in day_input):
            assert pod_rows and unallocated, day

        # 1. Pod totals equal the raw totals of the rows that have a node
        for column, csv_columns, divisor in POD_MEASURES:
            raw = sum(measure_of(r, csv_columns) for r in day_input if r["node"] != "") / divisor
            assert close(sum(r[column] for r in pod_rows), raw), (day, column)

        # 2. unallocated = node capacity - Pod sums, per node-day; one unallocated row per node with Pod rows
        capacity_per_hour: dict[tuple[str, str], float] = defaultdict(float)
        for r in day_input:
            key = (r["node"], r["interval_start"])
            capacity_per_hour[key] = max(capacity_per_hour[key], number(r["node_capacity_cpu_core_seconds"]))
        node_capacity: dict[str, float] = defaultdict(float)
        for (node, _), seconds in capacity_per_hour.items():
            node_capacity[node] += seconds / 3600
        assert sorted(r["node"] for r in unallocated) == sorted({r["node"] for r in pod_rows}), day
        for row in unallocated:
            node = row["node"]
            assert close(row["node_capacity_cpu_core_hours"], node_capacity[node]), (day, node)
            on_node = [r for r in pod_rows if r["node"] == node]
            for column, _, _ in UNALLOCATED_MEASURES:
                expected = row[f"node_capacity_{'cpu_core' if 'cpu' in column else 'memory_gigabyte'}_hours"] - sum(
                    r[column] for r in on_node
                )
                assert close(row[column], expected), (day, node, column)
        # cluster capacity: every node, the empty one too (3.4)
        for row in pod_rows + unallocated:
            assert close(row["cluster_capacity_cpu_core_hours"], sum(node_capacity.values())), (day, row["node"])

    # 3. no duplicate summary keys
    for kind, columns in KEY_COLUMNS.items():
        selected = [r for r in rows if kind == ("unallocated" if is_unallocated(r) else r["data_source"])]
        keys = Counter(tuple(str(r[c]) for c in columns) for r in selected)
        assert not [k for k, n in keys.items() if n > 1], kind

    # 4. label keys within the enabled keys and vm_kubevirt_io_name; maps never NULL on Pod and Storage rows (D1)
    for row in rows:
        for column in ("pod_labels", "volume_labels", "all_labels"):
            assert set(row[column] or {}) <= allowed, (column, row[column])
        assert row["all_labels"] is not None
        if row["data_source"] == "Pod" and not is_unallocated(row):
            assert row["pod_labels"] is not None
        if row["data_source"] == "Storage":
            assert row["volume_labels"] is not None


# --- generated hand-made payloads ---------------------------------------------------------------------------

NODES = ["n1", "n2", "n3", ""]
NAMESPACES = ["app", "db", "openshift-monitoring", "kube-system", "openshift-kube-apiserver"]
KEYS = ["app", "env", "team", "tier"]
label_strings = st.dictionaries(st.sampled_from([*KEYS, "zone", VM_KEY]), st.sampled_from(["a", "b", "v1.2+x/y", "é"]),
                                max_size=3).map(lambda d: "|".join(f"label_{k}:{v}" for k, v in d.items()))  # fmt: skip
hour_sets = st.sampled_from([range(48), range(24), range(12, 36), range(30, 31), range(0, 48, 5)])


@st.composite
def payloads(draw):
    first = draw(st.sampled_from([dt.date(2026, 10, 14), dt.date(2026, 10, 31), dt.date(2027, 2, 28)]))
    start = dt.datetime.combine(first, dt.time())
    nodes = ["n1", *draw(st.lists(st.sampled_from(NODES[1:]), max_size=3, unique=True))]
    size = {n: (draw(st.sampled_from([1, 2, 8.5])), draw(st.sampled_from([2, 16, 24.5]))) for n in nodes}
    payload = CsvPayload()
    pod = st.tuples(
        st.sampled_from(NAMESPACES),
        st.sampled_from(nodes),
        hour_sets,
        st.sampled_from([3600, 1800, 86400]),
        st.tuples(
            st.sampled_from([None, 0, 0.1, 1.5]),
            st.sampled_from([0.1, 2]),
            st.sampled_from([0, 0.25, 1]),
            st.sampled_from([None, 0.5, 3]),
        ),
        label_strings,
        label_strings,
        st.integers(0, 47),
    )
    # pod-0 runs all 48 hours, so both days have pod rows (the engine refuses a day without any); on node ''
    # now and then, so a day may have Storage rows but no Pod row
    first_pod = draw(pod)
    pods = [(*first_pod[:2], range(48), *first_pod[3:]), *draw(st.lists(pod, max_size=5))]  # fmt: skip
    # pod names repeat now and then: the same pod on two nodes fans its storage out (3.6)
    names = [f"pod-{draw(st.integers(0, index))}" for index in range(len(pods))]
    for index, (namespace, node, hours, seconds, (u1, u2, request, mem), labels, later, cut) in enumerate(pods):
        cores, memory = size[node]
        for h in hours:
            payload.pod(start + dt.timedelta(hours=h), pod=names[index], namespace=namespace, node=node,
                        resource_id=f"i-{node or 'none'}", cpu=(u1 if h % 2 else u2, request, 2),
                        mem_gib=(mem, 1, 4), node_cores=cores, node_mem_gib=memory, pod_seconds=seconds,
                        labels=labels if h < cut else later)  # fmt: skip
    for index, pv, capacity, usage, pv_labels, pvc_labels in draw(st.lists(
        st.tuples(st.integers(0, 7), st.sampled_from(["pv-1", "pv-2"]), st.sampled_from([1, 10]),
                  st.sampled_from([None, 0.5]), label_strings, label_strings), max_size=4)):  # fmt: skip
        claimed = index < len(pods)  # else a claimless PV
        namespace = pods[index][0] if claimed else ""
        for h in pods[index][2] if claimed else range(48):
            payload.storage(start + dt.timedelta(hours=h), namespace=namespace, pod=names[index] if claimed else "",
                            pvc=f"claim-{index}" if claimed else "", pv=pv, capacity_gib=capacity,
                            request_gib=capacity * 2 if claimed else None, usage_gib=usage, csi_volume_handle=f"h-{pv}",
                            pv_labels=pv_labels, pvc_labels=pvc_labels)  # fmt: skip
    for node in nodes:
        if draw(st.booleans()):
            role = draw(st.sampled_from(["", "label_node_role_kubernetes_io:infra|"]))
            first_set, second_set, cut = draw(label_strings), draw(label_strings), draw(st.integers(0, 47))
            for h in range(48):
                payload.node_label(start + dt.timedelta(hours=h), node, role + (first_set if h < cut else second_set))
    for namespace in NAMESPACES:
        if draw(st.booleans()):
            first_set, second_set, cut = draw(label_strings), draw(label_strings), draw(st.integers(0, 47))
            for h in range(48):
                payload.namespace_label(start + dt.timedelta(hours=h), namespace, first_set if h < cut else second_set)
    enabled = draw(st.lists(st.sampled_from(KEYS), unique=True))
    # the days with pod rows (the engine refuses a day without any, as koku starts at the first pod day)
    days = sorted({parse_timestamp(r["interval_start"]).date() for r in payload.rows["ocp_pod_usage"]})
    return payload, enabled, days


@settings(max_examples=60, deadline=None, phases=[Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])  # fmt: skip
@given(case=payloads())
def test_properties_on_generated_payloads(pg, case):
    payload, enabled, days = case
    conn, schema = pg
    conn.execute(f'TRUNCATE "{schema}".reporting_ocpusagelineitem_daily_summary, "{schema}".reporting_ocp_nodes,'
                 f' "{schema}".reporting_tagmapping, "{schema}".reporting_enabledtagkeys')  # fmt: skip
    cluster_id, source = scenario_ids("properties")
    enable_keys(conn, schema, enabled)
    with tempfile.TemporaryDirectory() as work:
        root = open_data_root(str(Path(work) / "root"))
        ingest(payload.write(Path(work) / "payload"), root, account=ACCOUNT, source_uuid=source, cluster_id=cluster_id)
        for day in days:
            summarize_day(conn, schema, root, ClusterDay(ACCOUNT, source, cluster_id, "properties", day))
    check_invariants(payload, fetch_rows(conn, schema, source), enabled)


# --- the nise scenarios --------------------------------------------------------------------------------------

NISE_CASES = [
    ("s03", "s03_namespaces_one_node.yml", [dt.date(2026, 10, 7)], ["app"]),
    ("s04", "s04_nodes_of_different_sizes.yml", [dt.date(2026, 10, 8)], []),
    ("s05", "s05_cost_categories.yml", [dt.date(2026, 10, 12)], []),
    ("s07", "s07_shared_volumes.yml", [dt.date(2026, 10, 9)], []),
    ("s09", "s09_label_precedence.yml", [dt.date(2026, 10, 14)], ["env", "team", "app", "shared"]),
    ("s14", "s14_empty_node.yml", [dt.date(2026, 10, 20)], []),
    ("s15", "s15_node_mid_window.yml", [dt.date(2026, 10, 21), dt.date(2026, 10, 22)], []),
    ("s19", "s19_month_boundary.yml", [dt.date(2026, 10, 31), dt.date(2026, 11, 1)], []),
]


@pytest.mark.parametrize(("name", "yaml_name", "days", "enabled"), NISE_CASES, ids=[c[0] for c in NISE_CASES])
def test_properties_on_nise_scenarios(pg, tmp_path, request, name, yaml_name, days, enabled):
    cache = nise_cache_dir(request)
    s = partial(run_scenario, pg, tmp_path, cache)(name=name, yamls=[yaml_name], days=days, enabled_keys=enabled)
    check_invariants(nise_csvs(yaml_name, s.cluster_id, cache), s.rows, enabled)
