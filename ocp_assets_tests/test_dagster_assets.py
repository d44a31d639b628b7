"""Dagster assets in process on real PostgreSQL: per-partition truth, any selection, empty and bad days, staleness."""

import datetime as dt

import dagster as dg
import psycopg
import pyarrow as pa
import pytest

from ocp_assets.core import consistency, pipeline
from ocp_assets.core import outcomes as O
from ocp_assets.core import validation as V
from ocp_assets.core.errors import InputDataError
from ocp_assets.core.identity import ClusterDay
from ocp_assets.core.pipeline import DayTask, summarize_cluster_day, summarize_day
from ocp_assets.core.storage import open_data_root
from ocp_assets.defs.assets import partition_events
from ocp_assets.defs.partitions import partition_key
from ocp_assets_tests.dagster_fixtures import (  # noqa: F401 (dagster_env_fixture is the dagster_env fixture)
    DAY,
    build_cluster,
    change_day,
    corrupt_label_cell,
    dagster_env_fixture,
    drop_column,
)

ALL_CHECKS = {name for names in O.CHECKS_BY_STAGE.values() for name in names}
DAYS = [DAY + dt.timedelta(days=n) for n in range(3)]
# build_cluster's pods, by hand: apiserver 0.2 cores x 24 h, web-0 (0.1 + 0.01 n) x 24 h, web-1 (0.2 + 0.01 n) x 24 h,
# batch 0.5 x 12 h; so day n uses 18.0 + 0.48 n core-hours.
CPU_CORE_HOURS = [18.0, 18.48, 18.96]
# capacity: master 4 cores and worker 8 cores over 24 hours.
CPU_CAPACITY_CORE_HOURS = 288.0


def _range_tags(cluster: str, first: dt.date, last: dt.date) -> dict:
    return {
        "dagster/asset_partition_range_start": str(partition_key(cluster, first)),
        "dagster/asset_partition_range_end": str(partition_key(cluster, last)),
    }


def _materializations(result, asset: str = O.DAILY_SUMMARY) -> dict[str, dict]:
    return {
        e.partition: {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == asset
    }


def _evaluations(result) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.check_name, e.partition): e for e in result.get_asset_check_evaluations()}


def _retried(result) -> bool:
    return any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)


def test_one_partition_records_its_own_numbers_and_equals_the_engine(dagster_env, pg):
    identity = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    dagster_env.register(identity)
    key = str(partition_key("cluster-a", DAY))

    result = dagster_env.materialize(partition_key=key)

    assert result.success
    evaluations = _evaluations(result)
    assert {name for name, _ in evaluations} == ALL_CHECKS and {p for _, p in evaluations} == {key}
    assert all(e.passed for e in evaluations.values())
    assert {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()} == set(O.STAGES)
    metadata = _materializations(result)[key]
    # 4 Pod rows (one per pod: their label sets differ), 1 Storage row, 1 unallocated row per node
    assert metadata["dagster/row_count"] == 7 and metadata["unallocated_rows"] == 2 and metadata["rows_deleted"] == 0
    assert metadata["cpu_usage_core_hours"] == pytest.approx(CPU_CORE_HOURS[0])
    assert metadata["cpu_capacity_core_hours"] == pytest.approx(CPU_CAPACITY_CORE_HOURS)
    assert metadata["pods"] == 4 and metadata["nodes"] == 2
    assert {r.data["data_source"] for r in metadata["preview"].records} <= {"Pod", "Storage"}
    assert "█" in metadata["top_namespaces"]
    usage = evaluations[(O.USAGE_CONSERVED, key)]
    assert usage.metadata["raw_rows"].value == "4"
    compared = {r.data["measure"]: r.data for r in usage.metadata["compared"].value.records}  # one row per measure
    assert compared["pod_usage_cpu_core_hours"] == {
        "measure": "pod_usage_cpu_core_hours",
        "raw": pytest.approx(18.0),
        "summary": pytest.approx(18.0),
    }

    # The Dagster path writes exactly what the CLI's code path writes for the same day.
    dagster_rows = dagster_env.summary_rows()
    conn, schema = pg
    summarize_day(
        conn,
        schema,
        open_data_root(str(dagster_env.data_root)),
        ClusterDay(identity.account, identity.source_uuid, "cluster-a", "CLUSTER-A", DAY),
    )
    assert dagster_env.summary_rows() == dagster_rows


def test_range_run_records_each_partition_with_its_own_figures_and_rerun_is_idempotent(dagster_env):
    identity = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    dagster_env.register(identity)

    first = dagster_env.materialize(tags=_range_tags("cluster-a", DAYS[0], DAYS[-1]))

    assert first.success
    by_partition = _materializations(first)
    assert sorted(by_partition) == [f"cluster-a|{d.isoformat()}" for d in DAYS]
    for day, expected in zip(DAYS, CPU_CORE_HOURS):
        metadata = by_partition[f"cluster-a|{day.isoformat()}"]
        assert metadata["dagster/row_count"] == 7  # this partition's rows, not the run's 21
        assert metadata["cpu_usage_core_hours"] == pytest.approx(expected)
    assert len(first.get_asset_check_evaluations()) == 3 * len(ALL_CHECKS)
    snapshot = open_data_root(str(dagster_env.snapshot_root))
    assert (
        snapshot.fs.get_file_info(
            snapshot.path(f"{O.RAW_POD_USAGE}/pod_usage/cluster=cluster-a/day={DAYS[1]}.parquet")
        ).size
        > 0
    )
    rows = dagster_env.summary_rows()
    assert sorted({r[1] for r in rows}) == DAYS

    again = dagster_env.materialize(tags=_range_tags("cluster-a", DAYS[0], DAYS[-1]))
    assert again.success
    assert dagster_env.summary_rows() == rows
    assert {m["rows_deleted"] for m in _materializations(again).values()} == {7}


def test_changed_parquet_then_daily_summary_alone_writes_the_new_figures(dagster_env):
    """The asset page's route: Materialize on daily_summary only, after the day's Parquet changed."""
    identity = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    dagster_env.register(identity)
    key = str(partition_key("cluster-a", DAY))
    assert dagster_env.materialize(partition_key=key).success

    change_day(dagster_env.data_root, identity, "pod_usage", "pod_usage_cpu_core_seconds", DAY, lambda v: 2 * v)
    result = dagster_env.materialize(partition_key=key, selection=[O.DAILY_SUMMARY])

    assert result.success
    assert {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()} == {O.DAILY_SUMMARY}
    assert {name for name, _ in _evaluations(result)} == set(O.CHECKS_BY_STAGE[O.DAILY_SUMMARY])
    assert _materializations(result)[key]["cpu_usage_core_hours"] == pytest.approx(2 * CPU_CORE_HOURS[0])
    pod_cpu = sum(r[7] for r in dagster_env.summary_rows() if r[2] == "Pod" and r[5] is not None)
    assert float(pod_cpu) == pytest.approx(2 * CPU_CORE_HOURS[0])


def test_selecting_only_an_early_stage_reads_and_checks_but_writes_nothing(dagster_env):
    identity = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    dagster_env.register(identity)

    result = dagster_env.materialize(partition_key=str(partition_key("cluster-a", DAY)), selection=[O.RAW_POD_USAGE])

    assert result.success
    assert {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()} == {O.RAW_POD_USAGE}
    assert {name for name, _ in _evaluations(result)} == {O.POD_USAGE_SCHEMA}
    assert dagster_env.summary_rows() == []


def test_checks_executed_alone_are_evaluated_on_a_rehearsal_that_changes_nothing(dagster_env):
    """A check's Execute (all) button: the checks without their asset and without a partition. Every materialized
    cluster-day's write is rehearsed and rolled back, so the checks judge the current Parquet and nothing changes."""
    identity = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    dagster_env.register(identity)
    key = str(partition_key("cluster-a", DAY))
    assert dagster_env.materialize(partition_key=key).success
    before = dagster_env.summary_rows()
    change_day(dagster_env.data_root, identity, "pod_usage", "pod_usage_cpu_core_seconds", DAY, lambda v: 2 * v)

    result = dagster_env.materialize(selection=dg.AssetSelection.checks_for_assets(O.DAILY_SUMMARY))

    assert result.success
    assert not result.get_asset_materialization_events()
    evaluations = _evaluations(result)
    assert set(evaluations) == {(name, key) for name in O.CHECKS_BY_STAGE[O.DAILY_SUMMARY]}
    assert all(e.passed for e in evaluations.values())
    assert dagster_env.summary_rows() == before


@pytest.mark.parametrize("breakage", ["label_json", "missing_column", "negative_seconds"])
def test_corrupted_input_fails_its_check_names_the_cell_and_keeps_the_rows(dagster_env, breakage):
    identity = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    dagster_env.register(identity)
    key = str(partition_key("cluster-a", DAY))
    assert dagster_env.materialize(partition_key=key).success
    before = dagster_env.summary_rows()

    row = None
    if breakage == "label_json":
        path = corrupt_label_cell(dagster_env.data_root, identity, "namespace_labels", bad='{"team": broken')
        check_name, column, row = O.LABELS_SCHEMA, "namespace_labels", 1
    elif breakage == "missing_column":
        path = drop_column(dagster_env.data_root, identity, "pod_usage", "pod_usage_cpu_core_seconds")
        check_name, column = O.POD_USAGE_SCHEMA, "pod_usage_cpu_core_seconds"
    else:
        path, row = change_day(
            dagster_env.data_root, identity, "pod_usage", "pod_request_cpu_core_seconds", DAY, lambda v: -v - 1
        )
        check_name, column = O.POD_USAGE_SCHEMA, "pod_request_cpu_core_seconds"
    result = dagster_env.materialize(partition_key=key)

    assert not result.success and not _retried(result)
    failed = _evaluations(result)[(check_name, key)]
    assert not failed.passed
    assert path.name in failed.description and column in failed.description
    assert failed.metadata["column"].value == column
    if row is not None:
        assert failed.metadata["row"].value == str(row) and f"row {row}" in failed.description
    if breakage != "missing_column":
        assert column in {r.data["column"] for r in failed.metadata["failure_cases"].value.records}
    assert not _materializations(result)
    assert dagster_env.summary_rows() == before


def test_range_with_one_bad_and_one_empty_day(dagster_env):
    """One bad day fails alone (named, rows kept, no retry); a day without data is summarised as empty; the rest are
    written.
    """
    identity = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    dagster_env.register(identity)
    assert dagster_env.materialize(tags=_range_tags("cluster-a", DAYS[0], DAYS[-1])).success
    before = {d: [r for r in dagster_env.summary_rows() if r[1] == d] for d in DAYS}
    # Day 2 loses its data (its rows must go), day 1 gets a negative value (its rows must stay), day 0 changes.
    build_cluster(dagster_env.data_root, "cluster-a", [DAYS[0], DAYS[1]])
    path, row = change_day(
        dagster_env.data_root, identity, "pod_usage", "pod_usage_cpu_core_seconds", DAYS[1], lambda v: -1.0
    )
    change_day(dagster_env.data_root, identity, "pod_usage", "pod_usage_cpu_core_seconds", DAYS[0], lambda v: 2 * v)
    never_had_data = DAYS[-1] + dt.timedelta(days=1)  # a fourth day without koku data, never summarised

    result = dagster_env.materialize(tags=_range_tags("cluster-a", DAYS[0], never_had_data))

    assert not result.success and not _retried(result)
    keys = [f"cluster-a|{d.isoformat()}" for d in [*DAYS, never_had_data]]
    materialized = _materializations(result)
    assert sorted(materialized) == [keys[0], keys[2], keys[3]]
    assert materialized[keys[0]]["cpu_usage_core_hours"] == pytest.approx(2 * CPU_CORE_HOURS[0])
    assert materialized[keys[2]]["status"] == "no koku data for this day" and materialized[keys[2]]["rows_deleted"] == 7
    assert materialized[keys[3]]["rows_deleted"] == 0
    evaluations = _evaluations(result)
    for key in (keys[0], keys[2], keys[3]):
        assert all(evaluations[(name, key)].passed for name in ALL_CHECKS)
    assert "no koku data" in evaluations[(O.USAGE_CONSERVED, keys[2])].description
    bad = evaluations[(O.POD_USAGE_SCHEMA, keys[1])]
    assert not bad.passed and path.name in bad.description and f"row {row}" in bad.description
    assert bad.metadata["column"].value == "pod_usage_cpu_core_seconds"
    after = dagster_env.summary_rows()
    assert [r for r in after if r[1] == DAYS[1]] == before[DAYS[1]]
    assert not [r for r in after if r[1] == DAYS[2]]


def test_failed_summary_check_rolls_back_only_its_partition(dagster_env, monkeypatch):
    identity = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    dagster_env.register(identity)
    real = consistency.usage_conserved

    def broken_on_the_second_day(raw, rows):
        outcome = real(raw, rows)
        if rows["usage_start"][0].as_py() == DAYS[1]:
            return O.CheckOutcome(False, "forced failure", outcome.metadata)
        return outcome

    # The worker processes are forked from this one, so they see the patch.
    monkeypatch.setattr(consistency, "usage_conserved", broken_on_the_second_day)
    result = dagster_env.materialize(tags=_range_tags("cluster-a", DAYS[0], DAYS[-1]))

    assert not result.success and not _retried(result)
    assert not _evaluations(result)[(O.USAGE_CONSERVED, "cluster-a|2026-03-04")].passed
    assert sorted(_materializations(result)) == ["cluster-a|2026-03-03", "cluster-a|2026-03-05"]
    assert sorted({r[1] for r in dagster_env.summary_rows()}) == [DAYS[0], DAYS[2]]


def test_a_lost_connection_is_retried_and_the_retry_writes_the_day_once(dagster_env, monkeypatch, tmp_path):
    identity = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    dagster_env.register(identity)
    real = pipeline.summarize_cluster_day
    marker = tmp_path / "failed-once"

    def connection_lost_the_first_time(conn, root, task, **kwargs):
        if not marker.exists():  # a file, not a variable: the worker processes are forked
            marker.touch()
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return real(conn, root, task, **kwargs)

    monkeypatch.setattr(pipeline, "summarize_cluster_day", connection_lost_the_first_time)
    result = dagster_env.materialize(partition_key=str(partition_key("cluster-a", DAY)))

    assert result.success and _retried(result)
    assert len(dagster_env.summary_rows()) == 7


def test_unknown_cluster_fails_at_once_without_retries(dagster_env):
    dagster_env.instance.add_dynamic_partitions("clusters", ["nobody"])
    db = dagster_env.resources["koku_db"]
    with db.connect() as conn:
        db.registry.ensure(conn)

    result = dagster_env.materialize(partition_key=partition_key("nobody", DAY))

    assert not result.success and not _retried(result)
    failures = [e.event_specific_data.error.message for e in result.all_events if e.is_step_failure]
    assert failures and all("'nobody' is not in" in m and "koku_parquet_sensor" in m for m in failures)


def _koku_records_source_under(dagster_env, source: str, cluster_id: str) -> None:
    """koku's reporting_ocp_clusters names the source's cluster `cluster_id` (its provider's row, as koku keeps it)."""
    with psycopg.connect(dagster_env.dsn, autocommit=True) as conn:
        conn.execute(
            f'INSERT INTO "{dagster_env.schema}".reporting_ocp_clusters (cluster_id, cluster_alias, provider_id)'
            " VALUES (%s, %s, %s)",
            (cluster_id, cluster_id, source),
        )


def _row_uuids(dagster_env) -> set[str]:
    with psycopg.connect(dagster_env.dsn, autocommit=True) as conn:
        rows = conn.execute(
            f'SELECT uuid::text FROM "{dagster_env.schema}".reporting_ocpusagelineitem_daily_summary'
        ).fetchall()
    return {u for (u,) in rows}


def test_a_cluster_id_contradicting_kokus_cluster_table_fails_its_partitions_without_retry(dagster_env):
    """koku records source A under "koku-a"; the registry says "cluster-a". Its partition is not written (koku's
    cluster row would stay "koku-a" under rows of "cluster-a"), the run fails at once naming both ids; in a range
    over clusters, cluster-b's partition is written all the same."""
    a = build_cluster(dagster_env.data_root, "cluster-a", [DAY])
    b = build_cluster(dagster_env.data_root, "cluster-b", [DAY])
    dagster_env.register(a)
    dagster_env.register(b)
    _koku_records_source_under(dagster_env, a.source_uuid, "koku-a")

    alone = dagster_env.materialize(partition_key=str(partition_key("cluster-a", DAY)))

    assert not alone.success and not _retried(alone)
    failures = [e.event_specific_data.error.message for e in alone.all_events if e.is_step_failure]
    expected = (
        f"source {a.source_uuid} is recorded for cluster 'koku-a' in {dagster_env.schema}.reporting_ocp_clusters, "
        "not 'cluster-a': 1 cluster-day(s) of 'cluster-a' not written (cluster-a|2026-03-03)"
    )
    assert failures and all(expected in m and "cluster_registry" in m for m in failures), failures
    assert not alone.get_asset_materialization_events() and dagster_env.summary_rows() == []

    tags = {
        "dagster/asset_partition_range_start": "cluster-a|2026-03-03",
        "dagster/asset_partition_range_end": "cluster-b|2026-03-03",
    }
    both = dagster_env.materialize(tags=tags)

    assert not both.success and not _retried(both)
    assert sorted(_materializations(both)) == ["cluster-b|2026-03-03"]
    assert {r[0] for r in dagster_env.summary_rows()} == {b.source_uuid}
    failures = [e.event_specific_data.error.message for e in both.all_events if e.is_step_failure]
    assert failures and all(expected in m for m in failures), failures
    with psycopg.connect(dagster_env.dsn, autocommit=True) as conn:
        clusters = conn.execute(
            f'SELECT cluster_id, provider_id::text FROM "{dagster_env.schema}".reporting_ocp_clusters ORDER BY 1'
        ).fetchall()
    assert clusters == [("cluster-b", b.source_uuid), ("koku-a", a.source_uuid)]

    # Once koku's row and the registry agree, the partition is written.
    with psycopg.connect(dagster_env.dsn, autocommit=True) as conn:
        conn.execute(
            f'UPDATE "{dagster_env.schema}".reporting_ocp_clusters SET cluster_id = %s WHERE provider_id = %s',
            ("cluster-a", a.source_uuid),
        )
    before = _row_uuids(dagster_env)
    fixed = dagster_env.materialize(partition_key=str(partition_key("cluster-a", DAY)))
    assert fixed.success and len(_row_uuids(dagster_env) - before) > 0


def test_range_over_clusters_for_one_day(dagster_env):
    """The backfill daemon cuts 2 days x 3 clusters into per-day ranges over the cluster dimension; the step takes those
    too.
    """
    a = build_cluster(dagster_env.data_root, "cluster-a", [DAY])
    b = build_cluster(dagster_env.data_root, "cluster-b", [DAY])
    dagster_env.register(a)
    dagster_env.register(b)
    tags = {
        "dagster/asset_partition_range_start": "cluster-a|2026-03-03",
        "dagster/asset_partition_range_end": "cluster-b|2026-03-03",
    }

    result = dagster_env.materialize(tags=tags)

    assert result.success
    assert sorted(_materializations(result)) == ["cluster-a|2026-03-03", "cluster-b|2026-03-03"]
    assert sorted({r[0] for r in dagster_env.summary_rows()}) == sorted([a.source_uuid, b.source_uuid])


def test_partition_events_are_those_of_the_selection(dagster_env, pg):
    """The step's events for one cluster-day, built from the pipeline's result as a plain function call."""
    identity = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    conn, schema = pg
    key = str(partition_key("cluster-a", DAY))
    task = DayTask(key, ClusterDay(identity.account, identity.source_uuid, "cluster-a", "CLUSTER-A", DAY), schema)
    result = summarize_cluster_day(conn, open_data_root(str(dagster_env.data_root)), task)

    events = list(
        partition_events(result, {O.RAW_POD_USAGE, O.DAILY_SUMMARY}, {O.POD_USAGE_SCHEMA, O.ROWS_IN_POSTGRESQL})
    )

    assert [(type(e).__name__, e.asset_key.to_user_string()) for e in events] == [
        ("AssetMaterialization", O.RAW_POD_USAGE),
        ("AssetMaterialization", O.DAILY_SUMMARY),
        ("AssetCheckEvaluation", O.RAW_POD_USAGE),
        ("AssetCheckEvaluation", O.DAILY_SUMMARY),
    ]
    assert {e.partition for e in events} == {key}
    assert events[1].metadata["dagster/row_count"].value == 7


# ---------------------------------------------------------------- the pure check functions, called directly
def _summary(rows: list[dict]) -> pa.Table:
    base = {
        "data_source": "Pod",
        "namespace": "ns",
        "node": "n1",
        "resource_id": "r",
        "pod_labels": "{}",
        "volume_labels": None,
        "all_labels": "{}",
        "persistentvolumeclaim": None,
        "persistentvolume": None,
        "storageclass": None,
    }
    return pa.Table.from_pylist([{**base, **r} for r in rows])


def test_consistency_functions_catch_broken_invariants():
    summary = _summary(
        [
            {"pod_labels": '{"app": "a"}', "all_labels": '{"app": "a"}', "pod_usage_cpu_core_hours": 1.0},
            {
                "pod_labels": '{"app": "a"}',
                "all_labels": '{"app": "a", "secret": "x"}',
                "pod_usage_cpu_core_hours": 2.0,
            },
        ]
    )
    duplicates = consistency.no_duplicate_keys(summary)
    assert not duplicates.passed and duplicates.metadata["duplicate_Pod_keys"] == 1
    keys = consistency.label_keys_allowed(summary, ("app",))
    assert not keys.passed and keys.metadata["not_allowed"] == ["secret"]
    assert consistency.label_keys_allowed(summary, ("app", "secret")).passed

    capacity = pa.table(
        {
            "node": ["n1", "n2"],
            "node_capacity_cpu_core_seconds": [3600.0 * 4, 3600.0 * 2],
            "node_capacity_memory_byte_seconds": [0.0, 0.0],
        }
    )
    pods = _summary([{"cluster_capacity_cpu_core_hours": 6.0, "cluster_capacity_memory_gigabyte_hours": 0.0}])
    assert consistency.cluster_capacity_is_node_sum(pods, capacity).passed
    wrong = _summary([{"cluster_capacity_cpu_core_hours": 4.0, "cluster_capacity_memory_gigabyte_hours": 0.0}])
    outcome = consistency.cluster_capacity_is_node_sum(wrong, capacity)
    assert not outcome.passed and outcome.metadata["expected_cpu_core_hours"] == 6.0

    storage = pa.table(
        {
            "persistentvolumeclaim_capacity_byte_seconds": [86400.0 * 2**30 * 30],
            "node_count": [2],
            "volume_request_storage_byte_seconds": [86400.0 * 2**30 * 30],
            "persistentvolumeclaim_usage_byte_seconds": [0.0],
        }
    )
    rows = _summary(
        [
            {
                "data_source": "Storage",
                "pod_labels": None,
                "persistentvolumeclaim_capacity_gigabyte_months": 1.0,
                "volume_request_storage_gigabyte_months": 0.5,
                "persistentvolumeclaim_usage_gigabyte_months": 0.0,
            }
        ]
    )
    assert consistency.storage_months_formula(storage, rows, dt.date(2026, 4, 1)).passed  # April: 30 days
    assert not consistency.storage_months_formula(storage, rows, dt.date(2026, 3, 1)).passed  # March: 31 days


def test_validate_frame_reports_every_failure_without_raising():
    table = pa.table(
        {
            "node": ["n1", "n1"],
            "node_capacity_cpu_core_seconds": [-1.0, 2.0],
            "node_capacity_memory_byte_seconds": [1.0, None],
        }
    )
    report = V.validate_frame(V.NodeCapacity, table)
    assert not report.passed and report.failures == 3  # duplicate node twice, one negative value
    assert set(report.failure_cases["column"]) == {"node", "node_capacity_cpu_core_seconds"}
    assert "NodeCapacity" in report.description and "| failure_case |" in V.failure_cases_markdown(report)
    good = V.validate_frame(V.NodeCapacity, table.slice(1))
    assert good.passed and good.failure_cases is None


def _raising_on(day: dt.date, error: Exception, marker=None):
    """summarize_cluster_day raising `error` for `day` (once, when a marker file is given), running the others."""
    real = pipeline.summarize_cluster_day

    def summarize(conn, root, task, **kwargs):
        if task.cluster_day.day == day and (marker is None or not marker.exists()):
            if marker is not None:
                marker.touch()  # a file, not a variable: the worker processes are forked
            raise error
        return real(conn, root, task, **kwargs)

    return summarize


def _step_failures(result) -> list[str]:
    return [e.event_specific_data.error.message for e in result.all_events if e.is_step_failure]


BAD_CELL = InputDataError(
    "negative value", file="pod_usage.2026-03.1.0_daily_0.parquet", column="pod_usage_cpu_core_seconds", row=3
)


@pytest.mark.parametrize("failing", [0, 1, 2], ids=["first-day", "middle-day", "last-day"])
@pytest.mark.parametrize("error", [BAD_CELL, ValueError("unexpected")], ids=["bad-input", "unexpected"])
def test_a_day_that_raises_fails_once_red_and_every_day_written_is_recorded(dagster_env, monkeypatch, failing, error):
    """A day whose error escapes the engine fails alone, without retry, its checks red naming the error; the days
    the workers committed (before or after it) are recorded as materialized with their own figures."""
    identity = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    dagster_env.register(identity)
    assert dagster_env.materialize(tags=_range_tags("cluster-a", DAYS[0], DAYS[-1])).success
    before = {d: [r for r in dagster_env.summary_rows() if r[1] == d] for d in DAYS}
    for day in DAYS:  # new figures for every day: the written ones show them, the failed one keeps the old
        change_day(dagster_env.data_root, identity, "pod_usage", "pod_usage_cpu_core_seconds", day, lambda v: 2 * v)
    monkeypatch.setattr(pipeline, "summarize_cluster_day", _raising_on(DAYS[failing], error))

    result = dagster_env.materialize(tags=_range_tags("cluster-a", DAYS[0], DAYS[-1]))

    assert not result.success and not _retried(result)
    keys = [f"cluster-a|{d.isoformat()}" for d in DAYS]
    written = [k for n, k in enumerate(keys) if n != failing]
    materialized = _materializations(result)
    assert sorted(materialized) == written
    for n, key in enumerate(keys):
        if n != failing:
            assert materialized[key]["cpu_usage_core_hours"] == pytest.approx(2 * CPU_CORE_HOURS[n])
    evaluations = _evaluations(result)
    red = {name for (name, key), e in evaluations.items() if key == keys[failing] and not e.passed}
    assert red == {O.POD_USAGE_SCHEMA, O.GPU_USAGE_SCHEMA}  # the first check of each branch: neither was written
    named = str(error)
    assert all(named in evaluations[(name, keys[failing])].description for name in red)
    if isinstance(error, InputDataError):
        assert evaluations[(O.POD_USAGE_SCHEMA, keys[failing])].metadata["column"].value == "pod_usage_cpu_core_seconds"
    (failure,) = _step_failures(result)
    assert f"{keys[failing]}: not written" in failure and named in failure
    after = dagster_env.summary_rows()
    assert [r for r in after if r[1] == DAYS[failing]] == before[DAYS[failing]]
    for n in range(3):
        if n != failing:
            assert [r for r in after if r[1] == DAYS[n]] != before[DAYS[n]] and len(
                [r for r in after if r[1] == DAYS[n]]
            ) == 7


def test_a_transient_error_on_one_day_of_a_range_is_retried_after_the_others_are_recorded(
    dagster_env, monkeypatch, tmp_path
):
    identity = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    dagster_env.register(identity)
    lost = psycopg.OperationalError("server closed the connection unexpectedly")
    monkeypatch.setattr(pipeline, "summarize_cluster_day", _raising_on(DAYS[0], lost, tmp_path / "failed-once"))

    result = dagster_env.materialize(tags=_range_tags("cluster-a", DAYS[0], DAYS[-1]))

    assert result.success and _retried(result)
    recorded = [e.partition for e in result.get_asset_materialization_events() if e.asset_key.path == [O.DAILY_SUMMARY]]
    # The first attempt recorded the two days it wrote; the retry wrote and recorded all three.
    assert sorted(recorded) == sorted(
        [f"cluster-a|{d.isoformat()}" for d in DAYS] + [f"cluster-a|{d.isoformat()}" for d in DAYS[1:]]
    )
    assert len(dagster_env.summary_rows()) == 3 * 7
