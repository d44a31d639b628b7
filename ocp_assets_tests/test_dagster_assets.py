"""Dagster assets in process against real PostgreSQL: one partition, a range, checks, corrupted input, idempotence."""

import datetime as dt

import dagster as dg
import pyarrow as pa
import pytest

from ocp_assets.core import consistency
from ocp_assets.core import validation as V
from ocp_assets.core.engine import ClusterDay
from ocp_assets.core.pipeline import summarize_day
from ocp_assets.core.storage import open_data_root
from ocp_assets.defs import checks as C
from ocp_assets.defs.assets import DAILY_SUMMARY, raw_storage_usage
from ocp_assets.defs.io import ParquetPartitionIOManager, object_key
from ocp_assets.defs.partitions import partition_key, split_key
from ocp_assets_tests.dagster_fixtures import (  # noqa: F401 (dagster_env_fixture is the dagster_env fixture)
    DAY,
    build_cluster,
    corrupt_label_cell,
    dagster_env_fixture,
    drop_column,
    negate_first_value,
)

ALL_CHECKS = {
    C.POD_USAGE_SCHEMA, C.NODE_CAPACITY_SCHEMA, C.STORAGE_USAGE_SCHEMA, C.NODE_LABELS_SCHEMA, C.NAMESPACE_LABELS_SCHEMA,
    C.POD_USAGE_LABELLED_SCHEMA, C.STORAGE_USAGE_LABELLED_SCHEMA, C.NODE_INVENTORY_SCHEMA, C.LABEL_PRECEDENCE,
    C.SUMMARY_SCHEMA, C.USAGE_CONSERVED, C.UNALLOCATED_IS_CAPACITY_MINUS_PODS, C.CLUSTER_CAPACITY_IS_NODE_SUM,
    C.NO_DUPLICATE_KEYS, C.LABEL_KEYS_ALLOWED, C.STORAGE_MONTHS_FORMULA, C.ROWS_IN_POSTGRESQL,
}
DAYS = [DAY + dt.timedelta(days=n) for n in range(3)]


def _checks(result: dg.ExecuteInProcessResult) -> dict[str, dg.AssetCheckEvaluation]:
    return {e.check_name: e for e in result.get_asset_check_evaluations()}


def test_one_partition_equals_the_engine_and_every_check_passes(dagster_env, pg):
    identity = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    dagster_env.register(identity)

    result = dagster_env.materialize(partition_key=partition_key("cluster-a", DAY))

    assert result.success
    checks = _checks(result)
    assert set(checks) == ALL_CHECKS
    assert all(e.passed for e in checks.values()), {n: e.description for n, e in checks.items() if not e.passed}
    assert checks[C.USAGE_CONSERVED].metadata["raw_rows"].value == 4
    (materialization,) = result.asset_materializations_for_node(DAILY_SUMMARY)
    assert materialization.partition == "cluster-a|2026-03-03"
    metadata = {k: v.value for k, v in materialization.metadata.items()}
    assert metadata["rows_by_kind"] == {"Pod": 4, "Storage": 1, "unallocated": 2}
    assert metadata["dagster/row_count"] == 7 and metadata["rows_deleted"] == 0
    assert metadata["report_period_id"] >= 1 and "| data_source |" in metadata["preview"]

    # The Dagster path writes exactly what the engine's one-call path (the CLI's) writes for the same day.
    dagster_rows = dagster_env.summary_rows()
    conn, schema = pg
    summarize_day(conn, schema, open_data_root(str(dagster_env.data_root)),
                  ClusterDay(identity.account, identity.source_uuid, "cluster-a", "CLUSTER-A", DAY))
    assert dagster_env.summary_rows() == dagster_rows
    assert [r[2] for r in dagster_rows].count("Pod") == 6


def test_range_run_writes_one_object_per_partition_and_rerun_is_idempotent(dagster_env):
    identity = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    dagster_env.register(identity)
    tags = {"dagster/asset_partition_range_start": str(partition_key("cluster-a", DAYS[0])),
            "dagster/asset_partition_range_end": str(partition_key("cluster-a", DAYS[-1]))}

    first = dagster_env.materialize(tags=tags)
    assert first.success
    assert sorted(m.partition for m in first.asset_materializations_for_node(DAILY_SUMMARY)) == [
        f"cluster-a|{d.isoformat()}" for d in DAYS]
    io_root = open_data_root(str(dagster_env.io_root))
    for day in DAYS:
        assert io_root.fs.get_file_info(io_root.path(object_key(["raw_pod_usage"], str(partition_key("cluster-a", day))))).size > 0
    rows = dagster_env.summary_rows()
    assert sorted({r[1] for r in rows}) == DAYS

    again = dagster_env.materialize(tags=tags)
    assert again.success
    assert dagster_env.summary_rows() == rows
    deleted = {k: v.value for k, v in again.asset_materializations_for_node(DAILY_SUMMARY)[0].metadata.items()}
    assert deleted["rows_deleted"] == 21 and deleted["partitions"] == 3


@pytest.mark.parametrize("breakage", ["label_json", "missing_column", "negative_seconds"])
def test_corrupted_input_fails_the_blocking_check_and_keeps_the_rows(dagster_env, breakage):
    identity = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    dagster_env.register(identity)
    key = partition_key("cluster-a", DAY)
    assert dagster_env.materialize(partition_key=key).success
    before = dagster_env.summary_rows()

    if breakage == "label_json":
        path = corrupt_label_cell(dagster_env.data_root, identity, "namespace_labels", bad='{"team": broken')
        check_name, column = C.NAMESPACE_LABELS_SCHEMA, "namespace_labels"
    elif breakage == "missing_column":
        path = drop_column(dagster_env.data_root, identity, "pod_usage", "pod_usage_cpu_core_seconds")
        check_name, column = C.POD_USAGE_SCHEMA, "pod_usage_cpu_core_seconds"
    else:
        path = negate_first_value(dagster_env.data_root, identity, "pod_usage", "pod_request_cpu_core_seconds")
        check_name, column = C.POD_USAGE_SCHEMA, "pod_request_cpu_core_seconds"
    result = dagster_env.materialize(partition_key=key)

    assert not result.success
    failed = _checks(result)[check_name]
    assert not failed.passed
    assert str(path.name) in failed.description and column in failed.description
    assert failed.metadata["failed_partitions"].value == ["cluster-a|2026-03-03"]
    assert "failure_cases" in failed.metadata and column in failed.metadata["failure_cases"].value
    assert not result.asset_materializations_for_node(DAILY_SUMMARY)
    skipped = {e.step_key for e in result.all_events if e.event_type_value == "STEP_SKIPPED"}
    assert skipped or not [e for e in result.all_events if e.step_key == "daily_summary" and e.is_step_start]
    assert dagster_env.summary_rows() == before


def test_raw_storage_usage_invoked_directly_with_build_asset_context(dagster_env):
    identity = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    dagster_env.register(identity)
    key = partition_key("cluster-a", DAY)
    with dg.build_asset_context(partition_key=str(key), instance=dagster_env.instance) as context:
        events = list(raw_storage_usage(context, koku_db=dagster_env.resources["koku_db"],
                                        koku_lake=dagster_env.resources["koku_lake"]))
    result, check = events
    assert isinstance(result, dg.MaterializeResult) and isinstance(check, dg.AssetCheckResult)
    assert check.passed and check.check_name == C.STORAGE_USAGE_SCHEMA
    table = result.value[str(key)]
    assert table.num_rows == 1 and table["persistentvolumeclaim"].to_pylist() == ["data-web-0"]


def test_io_manager_round_trip_one_object_per_partition(tmp_path):
    manager = ParquetPartitionIOManager(root_uri=str(tmp_path))
    keys = [str(partition_key("c/1", DAY)), str(partition_key("c/1", DAY + dt.timedelta(days=1)))]
    tables = {k: pa.table({"x": [i, i]}) for i, k in enumerate(keys)}
    out = dg.build_output_context(asset_key=dg.AssetKey(["a"]), partition_key=None)
    manager.handle_output(out, None)  # a value-less output (the summary) writes nothing
    root = open_data_root(str(tmp_path))
    for key, table in tables.items():
        root.write_parquet(object_key(["a"], key), table)
    assert object_key(["a"], keys[0]) == "a/cluster=c%2F1/day=2026-03-03.parquet"
    assert split_key(keys[1]) == ("c/1", DAY + dt.timedelta(days=1))
    context = dg.build_input_context(asset_key=dg.AssetKey(["a"]), asset_partition_key_range=dg.PartitionKeyRange(keys[0], keys[0]))
    loaded = manager.load_input(context)
    assert loaded[keys[0]].equals(tables[keys[0]])


# ---------------------------------------------------------------- the pure check functions, called directly
def _summary(rows: list[dict]) -> pa.Table:
    base = {"data_source": "Pod", "namespace": "ns", "node": "n1", "resource_id": "r", "pod_labels": "{}", "volume_labels": None,
            "all_labels": "{}", "persistentvolumeclaim": None, "persistentvolume": None, "storageclass": None}
    return pa.Table.from_pylist([{**base, **r} for r in rows])


def test_consistency_functions_catch_broken_invariants():
    summary = _summary([
        {"pod_labels": '{"app": "a"}', "all_labels": '{"app": "a"}', "pod_usage_cpu_core_hours": 1.0},
        {"pod_labels": '{"app": "a"}', "all_labels": '{"app": "a", "secret": "x"}', "pod_usage_cpu_core_hours": 2.0},
    ])
    duplicates = consistency.no_duplicate_keys(summary)
    assert not duplicates.passed and duplicates.metadata["duplicate_Pod_keys"] == 1
    keys = consistency.label_keys_allowed(summary, ("app",))
    assert not keys.passed and keys.metadata["not_allowed"] == ["secret"]
    assert consistency.label_keys_allowed(summary, ("app", "secret")).passed

    capacity = pa.table({"node": ["n1", "n2"], "node_capacity_cpu_core_seconds": [3600.0 * 4, 3600.0 * 2],
                         "node_capacity_memory_byte_seconds": [0.0, 0.0]})
    pods = _summary([{"cluster_capacity_cpu_core_hours": 6.0, "cluster_capacity_memory_gigabyte_hours": 0.0}])
    assert consistency.cluster_capacity_is_node_sum(pods, capacity).passed
    wrong = _summary([{"cluster_capacity_cpu_core_hours": 4.0, "cluster_capacity_memory_gigabyte_hours": 0.0}])
    outcome = consistency.cluster_capacity_is_node_sum(wrong, capacity)
    assert not outcome.passed and outcome.metadata["expected_cpu_core_hours"] == 6.0

    storage = pa.table({"persistentvolumeclaim_capacity_byte_seconds": [86400.0 * 2**30 * 30], "node_count": [2],
                        "volume_request_storage_byte_seconds": [86400.0 * 2**30 * 30], "persistentvolumeclaim_usage_byte_seconds": [0.0]})
    rows = _summary([{"data_source": "Storage", "pod_labels": None, "persistentvolumeclaim_capacity_gigabyte_months": 1.0,
                      "volume_request_storage_gigabyte_months": 0.5, "persistentvolumeclaim_usage_gigabyte_months": 0.0}])
    assert consistency.storage_months_formula(storage, rows, dt.date(2026, 4, 1)).passed  # April: 30 days
    assert not consistency.storage_months_formula(storage, rows, dt.date(2026, 3, 1)).passed  # March: 31 days


def test_validate_frame_reports_every_failure_without_raising():
    table = pa.table({
        "node": ["n1", "n1"], "node_capacity_cpu_core_seconds": [-1.0, 2.0], "node_capacity_memory_byte_seconds": [1.0, None],
    })
    report = V.validate_frame(V.NodeCapacity, table)
    assert not report.ok and report.failures == 3  # duplicate node twice, one negative value
    assert set(report.failure_cases["column"]) == {"node", "node_capacity_cpu_core_seconds"}
    assert "NodeCapacity" in report.message and "| failure_case |" in V.failure_cases_markdown(report).replace(" failure_case ", " failure_case ")
    good = V.validate_frame(V.NodeCapacity, table.slice(1))
    assert good.ok and good.failure_cases.empty


def test_unknown_cluster_fails_at_once_without_retries(dagster_env):
    dagster_env.instance.add_dynamic_partitions("clusters", ["nobody"])
    db = dagster_env.resources["koku_db"]
    with db.connect() as conn:
        db.ensure_registry(conn)

    result = dagster_env.materialize(partition_key=partition_key("nobody", DAY))

    assert not result.success
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    failures = [e.event_specific_data.error.message for e in result.all_events if e.is_step_failure]
    assert failures and all("'nobody' is not in" in m and "koku_parquet_sensor" in m for m in failures)


def test_range_over_clusters_for_one_day(dagster_env):
    """The backfill daemon cuts 2 days x 3 clusters into per-day ranges over the cluster dimension; steps take those too."""
    a = build_cluster(dagster_env.data_root, "cluster-a", [DAY])
    b = build_cluster(dagster_env.data_root, "cluster-b", [DAY])
    dagster_env.register(a)
    dagster_env.register(b)
    tags = {"dagster/asset_partition_range_start": "cluster-a|2026-03-03", "dagster/asset_partition_range_end": "cluster-b|2026-03-03"}

    result = dagster_env.materialize(tags=tags)

    assert result.success
    assert sorted(m.partition for m in result.asset_materializations_for_node(DAILY_SUMMARY)) == [
        "cluster-a|2026-03-03", "cluster-b|2026-03-03"]
    assert sorted({r[0] for r in dagster_env.summary_rows()}) == sorted([a.source_uuid, b.source_uuid])


def test_failed_summary_check_rolls_back_only_its_partition(dagster_env, monkeypatch):
    identity = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    dagster_env.register(identity)
    real = consistency.usage_conserved

    def broken_on_the_second_day(raw, rows):
        outcome = real(raw, rows)
        if rows["usage_start"][0].as_py() == DAYS[1]:
            return consistency.CheckOutcome(False, "forced failure", outcome.metadata)
        return outcome

    monkeypatch.setattr(consistency, "usage_conserved", broken_on_the_second_day)
    tags = {"dagster/asset_partition_range_start": str(partition_key("cluster-a", DAYS[0])),
            "dagster/asset_partition_range_end": str(partition_key("cluster-a", DAYS[-1]))}

    result = dagster_env.materialize(tags=tags)

    assert not result.success
    check = _checks(result)[C.USAGE_CONSERVED]
    assert not check.passed and check.metadata["failed_partitions"].value == ["cluster-a|2026-03-04"]
    assert sorted(m.partition for m in result.asset_materializations_for_node(DAILY_SUMMARY)) == [
        "cluster-a|2026-03-03", "cluster-a|2026-03-05"]
    assert sorted({r[1] for r in dagster_env.summary_rows()}) == [DAYS[0], DAYS[2]]
