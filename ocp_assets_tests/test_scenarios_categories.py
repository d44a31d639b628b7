"""Scenarios 5, 6, 18 (contract 5): cost categories, node roles and unallocated namespaces, D2(a) several patterns."""

import datetime as dt

import pytest

from ocp_assets_tests.scenario_support import (  # noqa: F401 (run_fixture is the fixture `run`)
    CsvPayload,
    add_cost_category,
    approx,
    hours_of,
    nise_cache_dir,
    nise_csvs,
    node_roles,
    platform_category_id,
    run_fixture,
    run_scenario,
    scenario_ids,
)

pytestmark = pytest.mark.slow


# --- scenario 5: seeded cost-category patterns ------------------------------------------------------------

S05_DAY = dt.date(2026, 10, 12)


def test_s05_cost_categories(run):
    s = run(name="s05", yamls=["s05_cost_categories.yml"], days=[S05_DAY])
    platform = platform_category_id(s.conn, s.schema)
    category = {r["namespace"]: r["cost_category_id"] for r in s.pods()}
    assert category["openshift-monitoring"] == platform  # openshift-%
    assert category["kube-system"] == platform  # kube-%
    assert category["openshift"] == platform  # the exact pattern 'openshift'
    assert category["openshiftfoo"] is None  # 'openshift-%' needs the dash; 'openshift' is exact
    assert category["kube"] is None
    assert category["app"] is None
    platform_row = s.unallocated_row("infra-1")
    assert platform_row["namespace"] == "Platform unallocated"  # infra node label -> infra role
    assert platform_row["cost_category_id"] == platform
    worker_row = s.unallocated_row("worker-1")
    assert worker_row["namespace"] == "Worker unallocated" and worker_row["cost_category_id"] is None
    assert platform_row["pod_usage_cpu_core_hours"] == approx(24 * 8 - 4 * 24 * 0.25)  # 4 pods on infra-1
    assert s.pod(namespace="openshift-monitoring")["pod_usage_cpu_core_hours"] == approx(24 * 0.25)


# --- scenario 6: node roles ------------------------------------------------------------------------------------

S06_DAY = dt.date(2026, 10, 13)


def test_s06_node_roles_and_unallocated_namespaces(run, request):
    payload = nise_csvs("s06_node_roles.yml", scenario_ids("s06")[0], nise_cache_dir(request))
    payload.drop("ocp_node_label", lambda r: r["node"] == "lonely-1")  # no node-label rows: no role
    s = run(name="s06", csv_payload=payload, days=[S06_DAY])
    platform = platform_category_id(s.conn, s.schema)
    namespaces = {r["node"]: (r["namespace"], r["cost_category_id"]) for r in s.unallocated()}
    assert namespaces["master-1"] == ("Platform unallocated", platform)  # runs openshift-kube-apiserver
    assert namespaces["infra-1"] == ("Platform unallocated", platform)  # "node_role_kubernetes_io": "infra"
    assert namespaces["master-infra-1"] == ("Platform unallocated", platform)
    assert namespaces["worker-1"] == ("Worker unallocated", None)
    assert namespaces["lonely-1"] == (None, None)  # no reporting_ocp_nodes row -> NULL namespace
    assert len(s.unallocated()) == 5
    roles = node_roles(s.conn, s.schema)
    assert roles == {"master-1": {"master"}, "infra-1": {"infra"}, "master-infra-1": {"master"}, "worker-1": {"worker"}}
    lonely = s.unallocated_row("lonely-1")
    assert lonely["pod_usage_cpu_core_hours"] == approx(24 * 2 - 24 * 0.75)  # 30
    assert lonely["pod_request_memory_gigabyte_hours"] == approx(24 * 8 - 24 * 1)  # 168
    assert lonely["data_source"] == "Pod" and lonely["all_labels"] == {}
    master = s.unallocated_row("master-1")
    assert master["pod_usage_cpu_core_hours"] == approx(24 * 8 - 24 * 1.5)  # 156
    assert master["pod_effective_usage_memory_gigabyte_hours"] == approx(24 * 32 - 24 * max(5, 4))  # 672
    assert s.pod(node="lonely-1")["pod_usage_cpu_core_hours"] == approx(24 * 0.75)  # its Pod row is unaffected


# --- scenario 18: a namespace matching several patterns (D2(a)) -------------------------------------------------


def test_s18_namespace_matching_several_patterns_is_not_double_counted(run):
    extra = {}

    def categories(conn, schema):
        extra["team"] = add_cost_category(conn, schema, "Team", ["openshift-mon%", "Platform%"])
        extra["ops"] = add_cost_category(conn, schema, "Ops", ["openshift-monitoring"])

    s = run(name="s18", yamls=["s05_cost_categories.yml"], days=[S05_DAY], before_summary=categories)
    platform = platform_category_id(s.conn, s.schema)
    monitoring = s.pod(namespace="openshift-monitoring")  # matches openshift-%, openshift-mon%, openshift-monitoring
    assert monitoring["cost_category_id"] == max(platform, extra["team"], extra["ops"])
    assert monitoring["pod_usage_cpu_core_hours"] == approx(24 * 0.25)  # not x3
    assert monitoring["pod_request_cpu_core_hours"] == approx(24 * 0.5)
    assert monitoring["pod_limit_memory_gigabyte_hours"] == approx(24 * 2)
    assert s.pod(namespace="kube-system")["cost_category_id"] == platform  # one match
    assert len(s.pods()) == 6
    platform_rows = s.unallocated(namespace="Platform unallocated")  # matches 'Platform unallocated' and 'Platform%'
    assert len(platform_rows) == 1
    assert platform_rows[0]["cost_category_id"] == max(platform, extra["team"])
    assert platform_rows[0]["pod_usage_cpu_core_hours"] == approx(24 * 8 - 4 * 24 * 0.25)  # 168, not x2
    assert platform_rows[0]["node_capacity_cpu_core_hours"] == approx(24 * 8)
    assert s.unallocated_row("worker-1")["cost_category_id"] is None


def test_s06_node_roles_are_shared_by_the_clusters_of_a_tenant(run, request, tmp_path):
    """cte_node_role reads reporting_ocp_nodes of every cluster, joined on node and resource_id (2.3, 3.7)."""
    cache = nise_cache_dir(request)
    # cluster A: the unedited YAML, so lonely-1 has (empty) node-label rows and gets the worker role
    first = run(name="s06", yamls=["s06_node_roles.yml"], days=[S06_DAY])
    assert first.unallocated_row("lonely-1")["namespace"] == "Worker unallocated"
    # cluster B, same schema and day: lonely-1 (same resource_id) without node-label rows
    payload = nise_csvs("s06_node_roles.yml", scenario_ids("s06")[0], cache)
    payload.drop("ocp_node_label", lambda r: r["node"] == "lonely-1")
    second = run_scenario((first.conn, first.schema), tmp_path / "b", cache, name="s06-b", csv_payload=payload,
                          days=[S06_DAY])  # fmt: skip
    assert second.unallocated_row("lonely-1")["namespace"] == "Worker unallocated"  # A's row gives the role
    assert second.unallocated_row("master-1")["namespace"] == "Platform unallocated"
    assert first.unallocated_row("lonely-1")["pod_usage_cpu_core_hours"] == approx(24 * 2 - 24 * 0.75)
    assert second.unallocated_row("lonely-1")["pod_usage_cpu_core_hours"] == approx(24 * 2 - 24 * 0.75)


def test_s05_patterns_follow_postgresql_like(run):
    """User patterns with '_' (any one character) and '\\_' (a literal underscore); LIKE is case-sensitive."""
    payload = CsvPayload()
    namespaces = ["app-a", "apq-b", "ap-c", "App-a", "lit_x1", "litax1"]
    for hour in hours_of(S05_DAY):
        for namespace in namespaces:
            payload.pod(hour, pod=f"p-{namespace}", namespace=namespace, node="n1", resource_id="i-n1",
                        cpu=(0.25, 0.5, 1), mem_gib=(0.5, 1, 2), node_cores=8, node_mem_gib=32)  # fmt: skip
        payload.node_label(hour, "n1", "")
    ids = {}

    def categories(conn, schema):
        ids["any"] = add_cost_category(conn, schema, "Any", ["ap_-%"])
        ids["literal"] = add_cost_category(conn, schema, "Literal", ["lit\\_x%"])

    s = run(name="s05-like", csv_payload=payload, days=[S05_DAY], before_summary=categories)
    category = {r["namespace"]: r["cost_category_id"] for r in s.pods()}
    assert category == {
        "app-a": ids["any"],  # 'p' matches '_'
        "apq-b": ids["any"],
        "ap-c": None,  # '_' needs exactly one character before '-'
        "App-a": None,  # case-sensitive
        "lit_x1": ids["literal"],
        "litax1": None,  # the escaped underscore is literal
    }
