"""Scenarios 9, 10, 11, 17 (contract 5): label precedence, enabled keys, special characters, label sets changing."""

import datetime as dt

import pytest

from ocp_assets_tests.scenario_support import (  # noqa: F401 (run_fixture is the fixture `run`)
    CsvPayload,
    approx,
    hours_of,
    nise_cache_dir,
    nise_csvs,
    parse_timestamp,
    run_fixture,
    run_scenario,
    scenario_ids,
)

pytestmark = pytest.mark.slow


def hour_of(row: dict) -> int:
    return parse_timestamp(row["interval_start"]).hour


# --- scenario 9: label precedence -----------------------------------------------------------------------

S09_DAY = dt.date(2026, 10, 14)


def test_s09_label_precedence_and_enabled_keys(run):
    keys = ["env", "team", "app", "tier", "owner", "shared", "rack"]  # zone, secret, node_role_... stay disabled
    s = run(name="s09", yamls=["s09_label_precedence.yml"], days=[S09_DAY], enabled_keys=keys)
    # Pod rows: node -> namespace -> pod, later wins
    inherited = {
        "rack": "r7",
        "env": "ns-env",
        "team": "ns-team",
    }  # rack from the node, env and team from the namespace
    web = s.pod(namespace="app", pod_labels={**inherited, "shared": "pod", "app": "web"})
    assert web["all_labels"] == web["pod_labels"]
    assert web["pod_usage_cpu_core_hours"] == approx(24 * 0.25)  # one pod per label set
    # vm_kubevirt_io_name is always allowed; 'shared' falls back to the namespace value
    vm = s.pod(namespace="app", pod_labels={**inherited, "shared": "ns", "vm_kubevirt_io_name": "vm-1"})
    assert vm["all_labels"] == vm["pod_labels"]
    assert len(s.pods()) == 2
    # Storage rows: node -> namespace -> PV -> PVC; pod labels are not included
    volume = s.volume(persistentvolumeclaim="data-app")
    assert volume["volume_labels"] == {
        "rack": "r7", "env": "ns-env", "team": "ns-team", "shared": "pvc", "tier": "pv-tier", "owner": "pvc-owner",
    }  # fmt: skip
    assert volume["all_labels"] == volume["volume_labels"]
    assert "app" not in volume["volume_labels"]
    unallocated = s.unallocated_row("worker-1")
    assert unallocated["all_labels"] == {} and unallocated["pod_labels"] is None


# --- scenario 10: no enabled keys -------------------------------------------------------------------------

S10_DAY = dt.date(2026, 10, 15)


def test_s10_no_enabled_keys_keeps_only_the_vm_key(run):
    s = run(name="s10", yamls=["s10_no_enabled_keys.yml"], days=[S10_DAY])
    assert sorted(str(r["pod_labels"]) for r in s.pods()) == ["{'vm_kubevirt_io_name': 'vm-1'}", "{}"]
    vm = s.pod(pod_labels={"vm_kubevirt_io_name": "vm-1"})
    assert vm["all_labels"] == {"vm_kubevirt_io_name": "vm-1"}
    assert vm["pod_usage_cpu_core_hours"] == approx(24 * 0.25)  # the VM pod alone, not merged with web
    plain = s.pod(pod_labels={})
    assert plain["all_labels"] == {}
    volume = s.volume(persistentvolumeclaim="data-app")
    assert volume["volume_labels"] == {"vm_kubevirt_io_name": "vm-1"}  # from the PVC; tier, app, team, env dropped
    assert volume["all_labels"] == {"vm_kubevirt_io_name": "vm-1"}
    assert s.unallocated_row("worker-1")["all_labels"] == {}


# --- scenario 11: special characters ---------------------------------------------------------------------

S11_DAY = dt.date(2026, 10, 16)


def test_s11_special_characters(run, request):
    payload = nise_csvs("s11_special_characters.yml", scenario_ids("s11")[0], nise_cache_dir(request))
    # A label piece with two ':' (nise cannot write one): koku's split(':') fails and drops just that label.
    # A NUL byte in the namespace is removed before escaping (ocp_data_validator), so api'2 stays in 'ns<a>'.
    api_labels = "label_app:api|label_url:http://example.com|label_owner:ops|label_replicas:3|label_nocolon"
    payload.edit("ocp_pod_usage", lambda r: r["pod"] == "api'2", namespace="ns<\x00a>", pod_labels=api_labels)
    keys = ["version", "owner", "app", "team", "team_core", "url", "replicas"]
    s = run(name="s11", csv_payload=payload, days=[S11_DAY], enabled_keys=keys)
    namespace, node = "ns&lt;a&gt;", "node&amp;1"  # html.escape(quote=True) at ingest
    web_labels = {"team": "r&d", "version": "v1.2+build/7", "owner": "zoë", "app": "a&b", "team_core": "yes"}
    web = s.pod(namespace=namespace, pod_labels=web_labels)  # team_label_core -> team_core
    assert web["node"] == node
    assert web["resource_id"] == "i-n&amp;1"
    # 'url' and the piece without ':' are dropped; 3 stays the string "3"; team r&d shows the namespace labels
    # joined the cleaned namespace
    api = s.pod(namespace=namespace, pod_labels={"team": "r&d", "app": "api", "owner": "ops", "replicas": "3"})
    assert api["pod_usage_cpu_core_hours"] == approx(24 * 0.25)
    volume = s.volume(persistentvolume="pv&lt;1&gt;")
    assert volume["persistentvolumeclaim"] == "data&amp;1" and volume["namespace"] == namespace
    # the claim's pod 'web"1' is escaped on both sides, so it still finds its node
    assert volume["node"] == node and volume["resource_id"] == "i-n&amp;1"
    assert volume["volume_labels"] == {"team": "r&d"}  # label values are never escaped
    assert volume["persistentvolumeclaim_capacity_gigabyte_months"] == approx(10 * 3600 * 24 / (86400 * 31))
    assert s.unallocated_row(node)["namespace"] == "Worker unallocated"
    assert {r["node"] for r in s.rows} == {node}  # Pod, Storage and unallocated rows alike


# --- scenario 17: label sets changing within a day (D2(b)) ---------------------------------------------------

S17_DAY = dt.date(2026, 11, 10)


@pytest.mark.parametrize(
    "split_at", [[], [dt.datetime(2026, 11, 10, 10), dt.datetime(2026, 11, 10, 14)]], ids=["one-file", "three-files"]
)  # scenario 16 too: the latest hour is found across files
def test_s17_label_sets_changing_within_a_day(run, request, split_at):
    payload = nise_csvs("s02_pvc_bound_to_pod.yml", scenario_ids("s02")[0], nise_cache_dir(request))
    node_labels = {range(6): "label_env:blue|label_zone:z1", range(6, 12): "label_env:blue|label_zone:z2",
                   range(12, 24): "label_env:green|label_zone:z2"}  # fmt: skip
    for hours, labels in node_labels.items():
        payload.edit("ocp_node_label", lambda r, h=hours: hour_of(r) in h, node_labels=labels)
    payload.edit("ocp_namespace_label", lambda r: hour_of(r) < 16, namespace_labels="label_team:a")
    payload.edit("ocp_namespace_label", lambda r: hour_of(r) >= 16, namespace_labels="label_team:b")
    # the pod's own labels change too: pod rows are grouped by label set, so this one splits (koku behaviour)
    payload.edit("ocp_pod_usage", lambda r: hour_of(r) < 8, pod_labels="label_app:v1")
    payload.edit("ocp_pod_usage", lambda r: hour_of(r) >= 8, pod_labels="label_app:v2")
    s = run(
        name="s17", csv_payload=payload, split_at=split_at, days=[S17_DAY], enabled_keys=["env", "team", "app", "tier"]
    )
    # node and namespace use the set of the day's latest hour: env green, team b; zone is not enabled
    early = s.pod(pod_labels={"env": "green", "team": "b", "app": "v1"})
    late = s.pod(pod_labels={"env": "green", "team": "b", "app": "v2"})
    assert len(s.pods()) == 2  # no extra rows for blue or team a
    assert early["pod_usage_cpu_core_hours"] == approx(8 * 0.25)  # 8 hours
    assert early["pod_request_memory_gigabyte_hours"] == approx(8 * 1)
    assert late["pod_usage_cpu_core_hours"] == approx(16 * 0.25)  # 16 hours
    assert late["pod_effective_usage_memory_gigabyte_hours"] == approx(16 * max(1.5, 1))
    volume = s.volume()  # one Storage row, not one per label set
    assert volume["volume_labels"] == {"env": "green", "team": "b", "tier": "gold", "app": "db"}
    assert volume["persistentvolumeclaim_capacity_gigabyte_months"] == approx(10 * 3600 * 24 / (86400 * 30))
    assert volume["persistentvolumeclaim_usage_gigabyte_months"] == approx(2.5 * 3600 * 24 / (86400 * 30))
    unallocated = s.unallocated_row("worker-1")  # sums not duplicated
    assert unallocated["pod_usage_cpu_core_hours"] == approx(24 * 4 - 24 * 0.25)
    assert unallocated["pod_request_cpu_core_hours"] == approx(24 * 4 - 24 * 0.5)


def test_s17_latest_hour_with_an_empty_label_set_wins(run):
    """D2(b): the filtered set of the latest hour counts even when it is empty."""
    payload = CsvPayload()
    for hour in hours_of(S17_DAY):
        payload.pod(hour, pod="p", namespace="app", node="n1", resource_id="i-n1", cpu=(0.25, 0.5, 1),
                    mem_gib=(0.5, 1, 2), node_cores=4, node_mem_gib=16)  # fmt: skip
        payload.node_label(hour, "n1", "label_env:blue" if hour.hour < 12 else "label_zone:z1")  # zone not enabled
        payload.namespace_label(hour, "app", "" if hour.hour < 6 else "label_team:x")
    s = run(name="s17-empty", csv_payload=payload, days=[S17_DAY], enabled_keys=["env", "team"])
    row = s.pod(namespace="app")
    assert row["pod_labels"] == {"team": "x"}  # env blue is not the latest node set: {} is
    assert row["pod_usage_cpu_core_hours"] == approx(24 * 0.25)
    assert len(s.pods()) == 1
