"""Tag mapping (contract 4.1 step 7): child label keys renamed to their parent as koku's UPDATE does, vs hand values
and the SQL reference."""

import datetime as dt

import pyarrow as pa
import pytest
from psycopg import sql

from ocp_assets.core.tagmapping import apply_tag_mapping, map_label_keys
from ocp_assets_tests.engine_support import engine_rows, koku_settings_for_reference, map_tag_keys
from ocp_assets_tests.reference.koku_sql import compare_summaries, reference_summary
from ocp_assets_tests.scenario_support import (  # noqa: F401 (run_fixture is the fixture `run`)
    ACCOUNT,
    CsvPayload,
    ScenarioRun,
    approx,
    hours_of,
    run_fixture,
)

pytestmark = pytest.mark.slow

DAY = dt.date(2026, 10, 14)
NODE = "n1"
NAMESPACE = "shop"
# Every pod: cpu usage 0.25 of a core for 24 one-hour rows -> 6 core-hours on its summary row.
POD_CPU_HOURS = 24 * 0.25


def payload_with(pods: dict[str, str], volumes: tuple[tuple[str, str, str, str], ...] = ()) -> CsvPayload:
    """One node, one namespace (label env=prod), the pods (name -> nise label string) and their volumes, all day.

    volumes: (pod, pvc, PV labels, PVC labels).
    """
    payload = CsvPayload()
    for hour in hours_of(DAY):
        payload.node_label(hour, NODE, "")
        payload.namespace_label(hour, NAMESPACE, "label_env:prod")
        for pod, labels in pods.items():
            payload.pod(hour, pod=pod, namespace=NAMESPACE, node=NODE, resource_id="i-1", cpu=(0.25, 0.5, 1.0),
                        mem_gib=(0.5, 1.0, 2.0), node_cores=4, node_mem_gib=16, labels=labels)  # fmt: skip
        for pod, pvc, pv_labels, pvc_labels in volumes:
            payload.storage(hour, namespace=NAMESPACE, pod=pod, pvc=pvc, pv=f"pv-{pvc}", capacity_gib=10,
                            request_gib=10, usage_gib=2, pv_labels=pv_labels, pvc_labels=pvc_labels)  # fmt: skip
    return payload


def mapped_with(mappings, **options):
    return lambda conn, schema: map_tag_keys(conn, schema, mappings, **options)


def enabled_ocp_keys(s: ScenarioRun) -> list[str]:
    return [
        key
        for (key,) in s.conn.execute(
            sql.SQL(
                "SELECT key FROM {}.reporting_enabledtagkeys WHERE enabled AND provider_type = 'OCP' ORDER BY key"
            ).format(sql.Identifier(s.schema))
        ).fetchall()
    ]


def assert_engine_equals_reference(s: ScenarioRun) -> None:
    """The rows in PostgreSQL = the SQL reference's, koku's mapping UPDATE included, for the same settings."""
    expected = reference_summary(
        None,
        s.data_root,
        account=ACCOUNT,
        source=s.source,
        cluster_id=s.cluster_id,
        cluster_alias=s.cluster_alias,
        start=min(s.days),
        end=max(s.days),
        enabled_keys=enabled_ocp_keys(s),
        runs="day",
        **koku_settings_for_reference(s.conn, s.schema),
    )
    assert compare_summaries(expected, engine_rows(s.conn, s.schema, s.source)) == []


# --- label maps, one at a time (koku's CASE on one map) ----------------------------------------------------------


def test_one_map_child_only_parent_only_both_present():
    mapping = {"app_name": "app", "team_name": "team"}
    assert map_label_keys({"app_name": "web", "env": "prod"}, mapping) == {"app": "web", "env": "prod"}
    # both present: the parent's value stays; every child key goes, even team_name whose parent is absent
    assert map_label_keys({"app": "api", "app_name": "web", "team_name": "t1"}, mapping) == {"app": "api"}
    # two children of one parent: the child last in jsonb order (length, then bytes) wins: application > app_name
    two = {"app_name": "x", "application": "y"}
    assert map_label_keys(two, {"app_name": "app", "application": "app"}) == {"app": "y"}
    assert map_label_keys({"b": "1", "ab": "2"}, {"b": "P", "ab": "P"}) == {"P": "2"}
    # a key both child and parent (koku's API refuses it): everything dropped, jsonb_object_agg of nothing is NULL
    assert map_label_keys({"a": "1", "b": "2"}, {"a": "b", "b": "c"}) is None


def summary_rows(pod_labels, volume_labels, all_labels) -> pa.Table:
    return pa.table(
        {
            "pod_labels": pa.array(pod_labels, pa.string()),
            "volume_labels": pa.array(volume_labels, pa.string()),
            "all_labels": pa.array(all_labels, pa.string()),
        }
    )


def test_rows_selected_per_column_and_a_row_with_both_columns():
    rows = summary_rows(
        ['{"app_name": "web"}', None, None, '{"app_name": "web"}', '{"app_name": "a"}', "{}"],
        [None, '{"app_name": "db", "tier": "gold"}', None, '{"tier": "gold"}', '{"app_name": "b", "x": "1"}', None],
        ['{"app_name": "web"}', '{"app_name": "db", "tier": "gold"}', "{}", "{}", "{}", "{}"],
    )
    mapped = apply_tag_mapping(rows, [("app_name", "app")]).to_pylist()
    # a Pod row and a Storage row: the column and all_labels renamed
    assert mapped[0] == {"pod_labels": '{"app": "web"}', "volume_labels": None, "all_labels": '{"app": "web"}'}
    assert mapped[1] == {
        "pod_labels": None,
        "volume_labels": '{"app": "db", "tier": "gold"}',
        "all_labels": '{"app": "db", "tier": "gold"}',
    }
    # an unallocated row and an empty map are not selected
    assert mapped[2] == {"pod_labels": None, "volume_labels": None, "all_labels": "{}"}
    assert mapped[5] == {"pod_labels": "{}", "volume_labels": None, "all_labels": "{}"}
    # only pod_labels holds a child: koku sets all_labels to the new pod_labels alone
    assert mapped[3] == {
        "pod_labels": '{"app": "web"}',
        "volume_labels": '{"tier": "gold"}',
        "all_labels": '{"app": "web"}',
    }
    # both columns hold a child (koku updates one, unpredictably): both mapped, all_labels = pod, then volume wins
    assert mapped[4] == {
        "pod_labels": '{"app": "a"}',
        "volume_labels": '{"app": "b", "x": "1"}',
        "all_labels": '{"app": "b", "x": "1"}',
    }


def test_no_mapping_leaves_the_rows_as_they_are():
    rows = summary_rows(['{"app_name": "web"}'], [None], ['{"app_name": "web"}'])
    assert apply_tag_mapping(rows, []) is rows


# --- scenarios through the pipeline into PostgreSQL -------------------------------------------------------------

KEYS = ["app", "app_name", "env", "team_name", "tier"]


def test_child_only_parent_only_and_both_present(run):
    payload = payload_with(
        {
            "child-only": "label_app_name:web",
            "parent-only": "label_app:api",
            "both": "label_app:api|label_app_name:web|label_team_name:t1",
            "unmapped": "label_tier:gold",
        }
    )
    mappings = [("app_name", "app"), ("team_name", "team")]
    s = run(name="tm-basic", csv_payload=payload, days=[DAY], enabled_keys=KEYS, before_summary=mapped_with(mappings))
    # child only: renamed; env comes from the namespace and is kept
    child = s.pod(pod_labels={"app": "web", "env": "prod"})
    assert child["all_labels"] == {"app": "web", "env": "prod"}
    assert child["pod_usage_cpu_core_hours"] == approx(POD_CPU_HOURS)
    # parent only and both present give the same map, but stay two rows (koku's UPDATE does not regroup)
    api = s.pods(pod_labels={"app": "api", "env": "prod"})
    assert len(api) == 2
    assert [r["all_labels"] for r in api] == [{"app": "api", "env": "prod"}] * 2
    assert [r["pod_usage_cpu_core_hours"] for r in api] == [approx(POD_CPU_HOURS)] * 2
    # no child key: untouched
    assert s.pod(pod_labels={"tier": "gold", "env": "prod"})["all_labels"] == {"tier": "gold", "env": "prod"}
    assert len(s.pods()) == 4
    assert s.unallocated_row(NODE)["all_labels"] == {}
    assert_engine_equals_reference(s)


def test_mapped_keys_in_volume_labels(run):
    payload = payload_with(
        {"db": "label_app:db-pod"},
        volumes=(("db", "data", "label_app_name:db|label_tier:gold", "label_team_name:t1"),),
    )
    mappings = [("app_name", "app"), ("team_name", "team"), ("tier", "storage_tier")]
    s = run(name="tm-volume", csv_payload=payload, days=[DAY], enabled_keys=KEYS, before_summary=mapped_with(mappings))
    # Storage row: node < namespace < PV < PVC = {env, app_name, tier, team_name}; no parent present -> renamed
    volume = s.volume(persistentvolumeclaim="data")
    expected = {"env": "prod", "app": "db", "storage_tier": "gold", "team": "t1"}
    assert volume["volume_labels"] == expected
    assert volume["all_labels"] == expected
    assert volume["pod_labels"] is None
    assert volume["persistentvolumeclaim_capacity_gigabyte"] == approx(10)
    # the Pod row holds no child key
    assert s.pod(namespace=NAMESPACE)["pod_labels"] == {"app": "db-pod", "env": "prod"}
    assert_engine_equals_reference(s)


def test_mapped_keys_in_pod_labels_and_volume_labels_of_one_pod(run):
    payload = payload_with(
        {"db": "label_app_name:db|label_app:pod-app"},
        volumes=(("db", "data", "label_app_name:pv-db", "label_tier:gold"),),
    )
    s = run(
        name="tm-both-columns",
        csv_payload=payload,
        days=[DAY],
        enabled_keys=KEYS,
        before_summary=mapped_with([("app_name", "app")]),
    )
    # Pod row: child and parent present -> the parent's value stays, the child goes
    pod = s.pod(namespace=NAMESPACE)
    assert pod["pod_labels"] == pod["all_labels"] == {"app": "pod-app", "env": "prod"}
    assert pod["volume_labels"] is None
    # its Storage row, mapped on its own: only the child there -> renamed
    volume = s.volume(persistentvolumeclaim="data")
    assert volume["volume_labels"] == volume["all_labels"] == {"app": "pv-db", "env": "prod", "tier": "gold"}
    assert volume["pod_labels"] is None
    assert_engine_equals_reference(s)


def test_disabled_child_is_not_mapped_and_disabled_parent_still_receives(run):
    payload = payload_with(
        {
            "old": "label_application:legacy|label_tier:gold",
            "owned": "label_owner:o1|label_team:t1",
        }
    )
    # application is disabled: koku's mapping skips it, and the summary has already dropped the key.
    # team (a parent) is disabled: its own label is dropped by the summary, owner is then renamed to it.
    mappings = [("application", "app"), ("owner", "team")]
    s = run(
        name="tm-disabled",
        csv_payload=payload,
        days=[DAY],
        enabled_keys=["app", "tier", "owner", "env"],
        before_summary=mapped_with(mappings, disabled=("application", "team")),
    )
    assert s.pod(pod_labels={"tier": "gold", "env": "prod"})["all_labels"] == {"tier": "gold", "env": "prod"}
    assert s.pod(pod_labels={"team": "o1", "env": "prod"})["all_labels"] == {"team": "o1", "env": "prod"}
    assert len(s.pods()) == 2
    assert_engine_equals_reference(s)


def test_parent_key_of_another_provider(run):
    payload = payload_with({"web": "label_app_name:web"})
    s = run(
        name="tm-aws-parent",
        csv_payload=payload,
        days=[DAY],
        enabled_keys=KEYS,
        before_summary=mapped_with([("app_name", "Application")], parent_provider="AWS"),
    )
    # koku filters only the child on provider_type = 'OCP'; an AWS parent key is used as it is spelled
    assert s.pod(namespace=NAMESPACE)["pod_labels"] == {"Application": "web", "env": "prod"}
    assert_engine_equals_reference(s)


def test_changed_mapping_applies_from_the_next_materialization(run):
    payload = payload_with({"web": "label_app_name:web"})
    s = run(name="tm-changes", csv_payload=payload, days=[DAY], enabled_keys=KEYS, before_summary=mapped_with([]))
    assert s.pod(namespace=NAMESPACE)["pod_labels"] == {"app_name": "web", "env": "prod"}

    map_tag_keys(s.conn, s.schema, [("app_name", "app")])
    s.summarize()
    assert s.pod(namespace=NAMESPACE)["pod_labels"] == {"app": "web", "env": "prod"}
    assert_engine_equals_reference(s)

    ident = sql.Identifier(s.schema)
    s.conn.execute(sql.SQL("DELETE FROM {}.reporting_tagmapping").format(ident))
    map_tag_keys(s.conn, s.schema, [("app_name", "tier")])
    s.summarize()
    assert s.pod(namespace=NAMESPACE)["pod_labels"] == {"tier": "web", "env": "prod"}
    assert_engine_equals_reference(s)

    # mapping removed: the next materialization recomputes from the Parquet, so the child key is back
    s.conn.execute(sql.SQL("DELETE FROM {}.reporting_tagmapping").format(ident))
    s.summarize()
    assert s.pod(namespace=NAMESPACE)["all_labels"] == {"app_name": "web", "env": "prod"}
    assert_engine_equals_reference(s)


# --- a nise dataset with tag mappings configured ---------------------------------------------------------------

S09_DAY = dt.date(2026, 10, 14)


def test_nise_label_precedence_with_tag_mappings(run):
    keys = ["env", "team", "app", "tier", "owner", "shared"]
    # team -> env: both present wherever the namespace's labels reach; owner -> app; tier -> storage_tier
    mappings = [("team", "env"), ("owner", "app"), ("tier", "storage_tier")]
    s = run(
        name="tm-s09",
        yamls=["s09_label_precedence.yml"],
        days=[S09_DAY],
        enabled_keys=keys,
        before_summary=mapped_with(mappings),
    )
    # web: {env: ns-env, team: ns-team, shared: pod, app: web} -> env and team present -> team dropped
    web = s.pod(pod_labels={"env": "ns-env", "shared": "pod", "app": "web"})
    assert web["all_labels"] == web["pod_labels"]
    assert s.pod(pod_labels={"env": "ns-env", "shared": "ns", "vm_kubevirt_io_name": "vm-1"})
    # the volume: {env, team, shared: pvc, tier, owner}; env and team both present -> every child goes, so owner
    # and tier are dropped instead of becoming app and storage_tier
    volume = s.volume(persistentvolumeclaim="data-app")
    assert volume["volume_labels"] == volume["all_labels"] == {"env": "ns-env", "shared": "pvc"}
    assert_engine_equals_reference(s)
