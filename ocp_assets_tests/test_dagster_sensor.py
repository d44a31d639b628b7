"""koku_parquet_sensor via build_sensor_context: cluster discovery, runs for new data, late data, data before the start
date.
"""

import datetime as dt
import json

import dagster as dg
import psycopg

from ocp_assets.core.ingest import ClusterIdentity, cluster_record_key
from ocp_assets.core.storage import open_data_root
from ocp_assets.defs import partitions
from ocp_assets.defs.partitions import CLUSTERS_PARTITIONS_NAME, partition_key
from ocp_assets.defs.sensors import (
    RANGE_END_TAG,
    RANGE_START_TAG,
    contiguous_ranges,
    koku_parquet_sensor,
)
from ocp_assets_tests.dagster_fixtures import (  # noqa: F401 (fixture)
    DAY,
    build_cluster,
    dagster_env_fixture,
    touch_later,
)
from ocp_assets_tests.reference.parquet_fixtures import KokuParquetBuilder


def _tick(env) -> dg.SensorResult:
    """One evaluation, with the cursor the previous one left (as the daemon keeps it)."""
    # A context manager, as Dagster requires for resources with nested resources (koku_lake's S3 resource).
    with dg.build_sensor_context(
        instance=env.instance, resources=env.resources, cursor=getattr(env, "cursor", None)
    ) as context:
        result = koku_parquet_sensor(context)
    env.cursor = result.cursor
    for request in result.dynamic_partitions_requests:
        env.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    return result


def _requested(result: dg.SensorResult) -> list[tuple[str, str]]:
    spans = []
    for request in result.run_requests:
        if request.partition_key:
            spans.append((str(request.partition_key), str(request.partition_key)))
        else:
            spans.append((request.tags[RANGE_START_TAG], request.tags[RANGE_END_TAG]))
    return sorted(spans)


def test_sensor_discovers_clusters_and_requests_exactly_the_new_days(dagster_env):
    days = [DAY + dt.timedelta(days=n) for n in range(3)]
    a = build_cluster(dagster_env.data_root, "cluster-a", days)
    build_cluster(dagster_env.data_root, "cluster-b", [DAY + dt.timedelta(days=10)])

    first = _tick(dagster_env)

    assert [sorted(r.partition_keys) for r in first.dynamic_partitions_requests] == [["cluster-a", "cluster-b"]]
    assert sorted(dagster_env.instance.get_dynamic_partitions(CLUSTERS_PARTITIONS_NAME)) == ["cluster-a", "cluster-b"]
    assert _requested(first) == [
        ("cluster-a|2026-03-03", "cluster-a|2026-03-05"),  # contiguous days of one cluster: one range run
        ("cluster-b|2026-03-13", "cluster-b|2026-03-13"),
    ]
    assert all(r.run_key for r in first.run_requests)
    assert json.loads(first.cursor) == {"start_date": "2026-01-01"}
    db = dagster_env.resources["koku_db"]
    with db.connect() as conn:
        registry = {c.cluster_id: c for c in db.registry.clusters(conn)}
    assert registry["cluster-a"].source == a.source_uuid and registry["cluster-a"].schema == dagster_env.schema
    assert registry["cluster-a"].cluster_alias == "CLUSTER-A"

    second = _tick(dagster_env)
    assert second.run_requests == [] and second.dynamic_partitions_requests == []

    # Late data: a new file with rows of the middle day only re-runs that day.
    late = KokuParquetBuilder(dagster_env.data_root / "late", account=a.account, source=a.source_uuid)
    late.pod(days[1], pod="late-pod", namespace="shop", node="worker-1", resource_id="i-worker-1", hours=range(23, 24))
    late_files = []
    for path in late.write():
        target = dagster_env.data_root / path.relative_to(dagster_env.data_root / "late")
        target = target.with_name("late-" + target.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        path.rename(target)
        late_files.append(target)
    third = _tick(dagster_env)
    assert _requested(third) == [("cluster-a|2026-03-04", "cluster-a|2026-03-04")]
    assert third.run_requests[0].partition_key == partition_key("cluster-a", days[1])

    # Removing those files again re-runs the day they covered, once.
    for path in late_files:
        path.unlink()
    removed = _tick(dagster_env)
    assert _requested(removed) == [("cluster-a|2026-03-04", "cluster-a|2026-03-04")]
    assert removed.run_requests[0].run_key != third.run_requests[0].run_key
    assert _tick(dagster_env).run_requests == []

    # A rewritten file (new mtime) re-runs the days it covers; the run key differs from the first run's.
    pod_folder = (
        dagster_env.data_root
        / "data"
        / "parquet"
        / "daily"
        / a.account
        / "OCP"
        / "pod_usage"
        / f"source={a.source_uuid}"
    )
    (pod_file,) = pod_folder.rglob("pod_usage.2026-03.1.0_daily_0.parquet")
    touch_later(pod_file)
    fourth = _tick(dagster_env)
    assert _requested(fourth) == [("cluster-a|2026-03-03", "cluster-a|2026-03-05")]
    assert fourth.run_requests[0].run_key != first.run_requests[0].run_key


def test_sensor_skips_unusable_cluster_ids_and_keeps_the_first_source(dagster_env):
    build_cluster(dagster_env.data_root, "cluster-a", [DAY])
    root = open_data_root(str(dagster_env.data_root))
    bad = ClusterIdentity("bad|id", "22222222-2222-2222-2222-222222222222", "org1234567", None)
    root.write_bytes(cluster_record_key(bad.account, bad.source_uuid), bad.to_json())
    twin = ClusterIdentity("cluster-a", "33333333-3333-3333-3333-333333333333", "org1234567", "twin")
    root.write_bytes(cluster_record_key(twin.account, twin.source_uuid), twin.to_json())

    result = _tick(dagster_env)

    assert [sorted(r.partition_keys) for r in result.dynamic_partitions_requests] == [["cluster-a"]]
    with psycopg.connect(dagster_env.dsn, autocommit=True) as conn:
        rows = conn.execute(
            f'SELECT cluster_id, source::text, cluster_alias FROM "{dagster_env.registry_schema}".cluster_registry'
        ).fetchall()
    assert rows == [("cluster-a", "208a8e14-00f0-50d7-a8cf-1f609ecb87dd", "CLUSTER-A")]


def test_a_source_recorded_again_under_another_cluster_id_is_not_registered_twice(dagster_env):
    a = build_cluster(dagster_env.data_root, "cluster-a", [DAY])
    _tick(dagster_env)
    root = open_data_root(str(dagster_env.data_root))
    renamed = ClusterIdentity("cluster-renamed", a.source_uuid, a.account, "renamed")
    root.write_bytes(cluster_record_key(a.account, a.source_uuid), renamed.to_json())

    result = _tick(dagster_env)

    assert result.dynamic_partitions_requests == []
    assert dagster_env.instance.get_dynamic_partitions(CLUSTERS_PARTITIONS_NAME) == ["cluster-a"]
    with psycopg.connect(dagster_env.dsn, autocommit=True) as conn:
        rows = conn.execute(
            f'SELECT cluster_id, source::text FROM "{dagster_env.registry_schema}".cluster_registry'
        ).fetchall()
    assert rows == [("cluster-a", a.source_uuid)]


def test_a_cluster_whose_source_koku_records_under_another_id_gets_no_run_until_corrected(dagster_env):
    days = [DAY, DAY + dt.timedelta(days=1)]
    a = build_cluster(dagster_env.data_root, "cluster-a", days)
    with psycopg.connect(dagster_env.dsn, autocommit=True) as conn:
        conn.execute(
            f'INSERT INTO "{dagster_env.schema}".reporting_ocp_clusters (cluster_id, cluster_alias, provider_id)'
            " VALUES ('koku-a', 'koku-a', %s)",
            (a.source_uuid,),
        )

    refused = _tick(dagster_env)

    assert refused.run_requests == []
    assert [sorted(r.partition_keys) for r in refused.dynamic_partitions_requests] == [["cluster-a"]]  # registered
    # A new cluster's tick reports its partitions, not a skip; the next one says why nothing runs.
    again = _tick(dagster_env)
    assert again.run_requests == [] and again.skip_reason.skip_message == (
        f"cluster-a: source {a.source_uuid} is recorded for cluster 'koku-a' in {dagster_env.schema}"
        ".reporting_ocp_clusters, not 'cluster-a'; no run requested for it until its cluster record and the "
        f"registry's row ({dagster_env.registry_schema}.cluster_registry) name 'koku-a', or koku's row names "
        "'cluster-a'"
    )

    # koku's row corrected: every day of its files is requested (none was marked seen while refused).
    with psycopg.connect(dagster_env.dsn, autocommit=True) as conn:
        conn.execute(
            f'UPDATE "{dagster_env.schema}".reporting_ocp_clusters SET cluster_id = %s WHERE provider_id = %s',
            ("cluster-a", a.source_uuid),
        )
    corrected = _tick(dagster_env)
    assert _requested(corrected) == [("cluster-a|2026-03-03", "cluster-a|2026-03-04")]


def test_contiguous_ranges_are_cut_at_gaps_and_at_the_limit():
    days = [DAY + dt.timedelta(days=n) for n in (0, 1, 2, 4, 5, 6, 7, 8)]
    assert contiguous_ranges(days, limit=3) == [
        (days[0], days[2]),
        (days[3], days[5]),
        (days[6], days[7]),
    ]


def test_data_before_the_start_date_is_reported_and_summarised_once_the_start_moves_back(dagster_env, monkeypatch):
    early = [dt.date(2025, 12, 30), dt.date(2025, 12, 31)]
    build_cluster(dagster_env.data_root, "cluster-old", [*early, dt.date(2026, 1, 1)])

    first = _tick(dagster_env)

    assert _requested(first) == [("cluster-old|2026-01-01", "cluster-old|2026-01-01")]
    assert json.loads(first.cursor) == {"start_date": "2026-01-01"}  # the cursor holds only what the next tick reads
    quiet = _tick(dagster_env)  # nothing new: no run, but the tick still says what is left out and how to get it
    reason = quiet.skip_reason.skip_message
    assert quiet.run_requests == [] and "2 day(s) before the day partitions start" in reason
    assert "OCP_ASSETS_START_DATE to 2025-12-30" in reason

    monkeypatch.setattr(partitions, "START_DATE", "2025-12-01")
    moved = _tick(dagster_env)

    assert _requested(moved) == [("cluster-old|2025-12-30", "cluster-old|2025-12-31")]
    assert json.loads(moved.cursor) == {"start_date": "2025-12-01"}
    assert _tick(dagster_env).run_requests == []
