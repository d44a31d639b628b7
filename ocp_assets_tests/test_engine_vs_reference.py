"""Property tests: for random koku-layout inputs and tag mappings the engine writes exactly the SQL reference's rows."""

import datetime as dt
import tempfile

import hypothesis.strategies as st
from hypothesis import HealthCheck, given, settings

from ocp_assets_tests.engine_support import (
    enable_keys,
    engine_rows,
    koku_settings_for_reference,
    map_tag_keys,
    run_engine,
)
from ocp_assets_tests.reference.koku_sql import compare_summaries, reference_summary
from ocp_assets_tests.reference.parquet_fixtures import KokuParquetBuilder

SOURCE = "6b1e7c1e-0c1d-4d3e-9a55-0f6f3b0e2a11"
ACCOUNT = "10001"
NODES = ["worker-a", "worker-b", "infra-a", "master-a", ""]
NAMESPACES = ["app", "team-b", "openshift-monitoring", "kube-system", "openshift-kube-apiserver"]
KEYS = ["app", "env", "team", "vm_kubevirt_io_name"]

label_maps = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(["a", "b", "x/y", "é+1.2"]), max_size=3)


@st.composite
def scenarios(draw):
    first = draw(st.sampled_from([dt.date(2026, 10, 14), dt.date(2026, 10, 31), dt.date(2026, 2, 28)]))
    days = [first + dt.timedelta(days=i) for i in range(draw(st.integers(1, 2)))]
    nodes = ["worker-a", *draw(st.lists(st.sampled_from(NODES[1:]), max_size=3, unique=True))]
    cores = {n: draw(st.sampled_from([2, 4, 8.5])) for n in nodes}
    pods = draw(
        st.lists(
            st.tuples(
                st.sampled_from(NAMESPACES),
                st.sampled_from(nodes),
                label_maps,
                st.sampled_from([3600, 86400, 1234.5]),
                st.sampled_from([(0.3, 0.5, 1.0), (0.9, 0.25, 1.0)]),
                st.sampled_from([range(24), range(0, 12), range(6, 7)]),
            ),
            min_size=1,
            max_size=8,
        )
    )
    # The first pod runs on a real node, so every scenario has Pod rows to compare.
    pods[0] = (pods[0][0], "worker-a", *pods[0][2:])
    pvcs = draw(
        st.lists(
            st.tuples(st.integers(0, 7), st.sampled_from(["pv-1", "pv-2", "pv-3"]), label_maps, label_maps), max_size=4
        )
    )
    node_labels = {
        n: draw(st.lists(label_maps, min_size=1, max_size=2))
        for n in nodes
        if draw(st.booleans()) or n.startswith("infra")
    }
    namespace_labels = {ns: draw(label_maps) for ns in NAMESPACES if draw(st.booleans())}
    enabled = draw(st.lists(st.sampled_from(KEYS[:3]), unique=True))
    chunks = draw(st.sampled_from([1, 2]))
    # Tag mappings koku's API allows: a child has one parent, no key is both; "owner" is never a label, only a parent.
    children = draw(st.lists(st.sampled_from(KEYS[:3]), unique=True, max_size=2))
    parents = [k for k in (*KEYS[:3], "owner") if k not in children]
    mappings = [(child, draw(st.sampled_from(parents))) for child in children]
    return days, cores, pods, pvcs, node_labels, namespace_labels, enabled, chunks, mappings


def build(root, scenario):
    days, cores, pods, pvcs, node_labels, namespace_labels, enabled, chunks, _mappings = scenario
    builder = KokuParquetBuilder(root, account=ACCOUNT, source=SOURCE)
    for day in days:
        for index, (namespace, node, labels, seconds, cpu, hours) in enumerate(pods):
            builder.pod(
                day,
                pod=f"pod-{index}",
                namespace=namespace,
                node=node,
                resource_id=f"i-{node or 'none'}",
                pod_seconds=seconds,
                cpu=cpu,
                node_cpu_cores=cores[node],
                node_memory_gib=cores[node] * 4,
                labels=labels,
                hours=hours,
            )
        for pod_index, pv, pv_labels, pvc_labels in pvcs:
            claimless = pod_index >= len(pods)
            namespace = "" if claimless else pods[pod_index][0]
            builder.pvc(
                day,
                namespace=namespace,
                pod="" if claimless else f"pod-{pod_index}",
                pvc="" if claimless else f"claim-{pod_index}",
                pv=pv,
                pv_labels=pv_labels,
                pvc_labels=pvc_labels,
            )
        for node, label_sets in node_labels.items():
            role = {"node_role_kubernetes_io": "infra"} if node.startswith("infra") else {}
            # Several sets in a day change the enabled labels mid-day (D2(b)): first half, then second half.
            halves = [range(0, 12), range(12, 24)] if len(label_sets) == 2 else [range(24)]
            for labels, hours in zip(label_sets, halves):
                builder.node_labels(day, node=node, labels={**labels, **role}, hours=hours)
        for namespace, labels in namespace_labels.items():
            builder.namespace_labels(day, namespace=namespace, labels=labels)
    builder.write(chunks=chunks)
    return days, enabled


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(scenario=scenarios())
def test_engine_matches_reference_sql(pg, scenario):
    conn, schema = pg
    conn.execute(
        f'TRUNCATE "{schema}".reporting_ocpusagelineitem_daily_summary, "{schema}".reporting_ocp_nodes,'
        f' "{schema}".reporting_tagmapping, "{schema}".reporting_enabledtagkeys'
    )
    with tempfile.TemporaryDirectory() as root:
        days, enabled = build(root, scenario)
        enable_keys(conn, schema, enabled)
        # A mapped key that is not enabled is stored disabled, so the summary's enabled keys stay `enabled`.
        mappings = scenario[-1]
        map_tag_keys(conn, schema, mappings, disabled=tuple({k for pair in mappings for k in pair} - set(enabled)))
        run_engine(conn, schema, root, account=ACCOUNT, source=SOURCE, cluster_id="c1", cluster_alias="C1", days=days)
        actual = engine_rows(conn, schema, SOURCE)
        expected = reference_summary(
            None,
            root,
            account=ACCOUNT,
            source=SOURCE,
            cluster_id="c1",
            cluster_alias="C1",
            start=days[0],
            end=days[-1],
            enabled_keys=enabled,
            runs="day",
            **koku_settings_for_reference(conn, schema),
        )
    assert len(expected) > 0 and len(actual) > 0
    assert compare_summaries(expected, actual) == []
