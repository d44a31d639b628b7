"""koku_parquet_sensor via build_sensor_context: cluster discovery, runs for new data, late data, data before the start
date.
"""

import datetime as dt
import json
import types
import uuid

import dagster as dg
import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from ocp_assets.core.ingest import ClusterIdentity, cluster_record_key
from ocp_assets.core.storage import open_data_root
from ocp_assets.defs.partitions import CLUSTERS_PARTITIONS_NAME, DayPartitions, partition_key
from ocp_assets.defs.resources import KokuDataLake, SummaryDatabase
from ocp_assets.defs.sensors import Cursor, contiguous_ranges, request_span
from ocp_assets_tests.dagster_fixtures import (  # noqa: F401 (fixture)
    DAY,
    build_cluster,
    dagster_env_fixture,
    sensor_tick,
    touch_later,
)
from ocp_assets_tests.reference.parquet_fixtures import KokuParquetBuilder


def _tick(env, *, store_runs: bool = True) -> dg.SensorResult:
    """One evaluation, with the cursor the previous one left (as the daemon keeps it), its runs stored."""
    result = sensor_tick(env, getattr(env, "cursor", None), store_runs=store_runs)
    env.cursor = result.cursor
    return result


def _state(result: dg.SensorResult) -> dict:
    """The cursor without the file changes waiting for their runs (checked by the tests of requests not stored)."""
    return {k: v for k, v in json.loads(result.cursor).items() if k != "pending"}


def _requested(result: dg.SensorResult) -> list[tuple[str, str]]:
    return sorted(request_span(r) for r in result.run_requests)


def _koku_records_source_as(env, source: str, cluster_id: str) -> None:
    """koku's reporting_ocp_clusters row of the source, naming `cluster_id` (added, or its id changed)."""
    with psycopg.connect(env.dsn, autocommit=True) as conn:
        table = f'"{env.schema}".reporting_ocp_clusters'
        if conn.execute(f"UPDATE {table} SET cluster_id = %s WHERE provider_id = %s", (cluster_id, source)).rowcount:
            return
        conn.execute(
            f"INSERT INTO {table} (cluster_id, cluster_alias, provider_id) VALUES (%s, %s, %s)",
            (cluster_id, cluster_id, source),
        )


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
    assert _state(first) == {"start_date": "2026-01-01"}
    assert sorted(json.loads(first.cursor)["pending"]) == ["cluster-a", "cluster-b"]  # stored once the runs exist
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
    _koku_records_source_as(dagster_env, a.source_uuid, "koku-a")

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
    _koku_records_source_as(dagster_env, a.source_uuid, "cluster-a")
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
    assert _state(first) == {"start_date": "2026-01-01"}  # the cursor holds only what the next tick reads
    quiet = _tick(dagster_env)  # nothing new: no run, but the tick still says what is left out and how to get it
    reason = quiet.skip_reason.skip_message
    assert quiet.run_requests == [] and "2 day(s) before the day partitions start" in reason
    assert "OCP_ASSETS_START_DATE to 2025-12-30" in reason

    monkeypatch.setitem(dagster_env.resources, "day_partitions", DayPartitions(start_date="2025-12-01"))
    moved = _tick(dagster_env)

    assert _requested(moved) == [("cluster-old|2025-12-30", "cluster-old|2025-12-31")]
    # The old start stays held until the runs for those days exist, then the next tick lets it go.
    assert _state(moved) == {"start_date": "2025-12-01", "held_starts": {"cluster-old": "2026-01-01"}}
    after = _tick(dagster_env)
    assert after.run_requests == [] and _state(after) == {"start_date": "2025-12-01"}


def test_days_a_moved_back_start_admits_while_a_cluster_is_refused_are_requested_once_corrected(
    dagster_env, monkeypatch
):
    early = [dt.date(2025, 12, 30), dt.date(2025, 12, 31)]
    old = build_cluster(dagster_env.data_root, "cluster-old", [*early, dt.date(2026, 1, 1)])
    first = _tick(dagster_env)
    assert _requested(first) == [("cluster-old|2026-01-01", "cluster-old|2026-01-01")]  # its files are now seen

    # koku records the source under another id, and the start date moves back while the cluster is refused.
    _koku_records_source_as(dagster_env, old.source_uuid, "koku-old")
    monkeypatch.setitem(dagster_env.resources, "day_partitions", DayPartitions(start_date="2025-12-01"))
    refused = _tick(dagster_env)
    assert refused.run_requests == []
    # The cursor keeps the start the refused cluster's days were last requested from.
    assert json.loads(refused.cursor) == {"start_date": "2025-12-01", "held_starts": {"cluster-old": "2026-01-01"}}
    assert json.loads(_tick(dagster_env).cursor)["held_starts"] == {"cluster-old": "2026-01-01"}  # still refused

    _koku_records_source_as(dagster_env, old.source_uuid, "cluster-old")
    corrected = _tick(dagster_env)

    # 2025-12-30 and 2025-12-31 were seen before the start moved back and never requested; 2026-01-01 was requested.
    assert _requested(corrected) == [("cluster-old|2025-12-30", "cluster-old|2025-12-31")]
    after = _tick(dagster_env)
    assert after.run_requests == [] and _state(after) == {"start_date": "2025-12-01"}


@pytest.fixture(name="limited_env")
def limited_env_fixture(dsn, tmp_path):
    """A fresh database and a login role that owns the registry schema but may not read every tenant schema."""
    suffix = uuid.uuid4().hex[:10]
    database, role = f"ocp_sens_{suffix}", f"ocp_sens_{suffix}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}"')
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
    instance = dg.DagsterInstance.ephemeral()
    try:
        with psycopg.connect(make_conninfo(dsn, dbname=database), autocommit=True) as conn:
            conn.execute(f'REVOKE ALL ON DATABASE "{database}" FROM PUBLIC')
            conn.execute(f'GRANT CONNECT ON DATABASE "{database}" TO "{role}"')
            conn.execute(f'CREATE SCHEMA ocp_reg AUTHORIZATION "{role}"')
            for schema in ("org_noschema", "org_notable", "org_ok"):
                conn.execute(f'CREATE SCHEMA "{schema}"')
                conn.execute(
                    f'CREATE TABLE "{schema}".reporting_ocp_clusters (uuid uuid DEFAULT gen_random_uuid(), '
                    "cluster_id text, cluster_alias text, provider_id uuid)"
                )
            # org_noschema: no USAGE on the schema; org_notable: USAGE but no SELECT on the table; org_ok: both.
            conn.execute(f'GRANT USAGE ON SCHEMA org_notable, org_ok TO "{role}"')
            conn.execute(f'GRANT SELECT ON org_ok.reporting_ocp_clusters TO "{role}"')
            limited_dsn = make_conninfo(dsn, dbname=database, user=role)
            env = types.SimpleNamespace(
                admin=conn,
                role=role,
                instance=instance,
                data_root=tmp_path / "data",
                resources={
                    "koku_db": SummaryDatabase(dsn=limited_dsn, schema_name="", registry_schema="ocp_reg"),
                    "koku_lake": KokuDataLake(data_root=str(tmp_path / "data")),
                    "day_partitions": DayPartitions(),
                },
            )
            yield env
    finally:
        instance.dispose()
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            admin.execute(f'DROP ROLE IF EXISTS "{role}"')


def test_a_tenant_schema_the_role_may_not_read_skips_its_cluster_only(limited_env):
    # The tenant schema of a cluster is its account (schema_name ""); a-, b- come before c- in the tick's order.
    build_cluster(limited_env.data_root, "a-noschema", [DAY], account="org_noschema")
    build_cluster(limited_env.data_root, "b-notable", [DAY], account="org_notable")
    build_cluster(limited_env.data_root, "c-ok", [DAY + dt.timedelta(days=1)], account="org_ok")

    first = _tick(limited_env)

    # The clusters before c-ok failed their query on the same connection; c-ok is still requested and registered.
    assert _requested(first) == [("c-ok|2026-03-04", "c-ok|2026-03-04")]
    assert [sorted(r.partition_keys) for r in first.dynamic_partitions_requests] == [
        ["a-noschema", "b-notable", "c-ok"]
    ]
    quiet = _tick(limited_env)
    assert quiet.run_requests == [] and quiet.skip_reason.skip_message == (
        "a-noschema: cannot read org_noschema.reporting_ocp_clusters (permission denied for schema org_noschema); "
        "no run requested for it until the sensor's database role may read that table; "
        "b-notable: cannot read org_notable.reporting_ocp_clusters (permission denied for table "
        "reporting_ocp_clusters); no run requested for it until the sensor's database role may read that table"
    )

    limited_env.admin.execute(f'GRANT USAGE ON SCHEMA org_noschema TO "{limited_env.role}"')
    limited_env.admin.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA org_noschema, org_notable TO "{limited_env.role}"')
    granted = _tick(limited_env)

    # Their files were not marked seen while skipped: their days are requested now, c-ok's are not again.
    assert _requested(granted) == [
        ("a-noschema|2026-03-03", "a-noschema|2026-03-03"),
        ("b-notable|2026-03-03", "b-notable|2026-03-03"),
    ]


def test_a_first_tick_that_stops_early_leaves_the_empty_cursor_it_read():
    """A first tick (no cursor yet) that cannot read the cluster records returns the cursor it read, which has no
    start date: it is written as null and read back as the same empty cursor, not an AttributeError."""
    empty = Cursor.read(None)
    assert empty.start is None
    assert json.loads(empty.dumps()) == {"start_date": None}
    assert Cursor.read(empty.dumps()) == empty
