"""End to end on a PostgreSQL-stored Dagster instance: sensor, partitions, multiprocess runs, checks, backfill."""

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import psycopg
from dagster._core.definitions.automation_tick_evaluation_context import (
    build_run_requests_with_backfill_policies,
)
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.definitions.partitions.context import partition_loading_context

from ocp_assets.core import outcomes as O
from ocp_assets_tests.dagster_fixtures import (  # noqa: F401 (fixture)
    DAY,
    REPO,
    build_cluster,
    dagster_home_fixture,
)

SUMMARY_KEYS = list(O.STAGES)
CHECKS = sum(len(names) for names in O.CHECKS_BY_STAGE.values())


def summary_job():
    """The job as the code location defines it (multiprocess executor, forked step), rebuilt in each process."""
    from ocp_assets.definitions import defs
    from ocp_assets.defs.jobs import JOB_NAME

    return defs().resolve_job_def(JOB_NAME)


def _rows(dsn: str, schema: str) -> list[tuple]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            "SELECT source_uuid::text, usage_start, data_source, namespace, node, pod_labels::text, "
            "volume_labels::text,"
            f" pod_usage_cpu_core_hours, node_capacity_cpu_core_hours, persistentvolumeclaim_usage_gigabyte_months"
            f' FROM "{schema}".reporting_ocpusagelineitem_daily_summary ORDER BY 1, 2, 3, 4, 5, 6, 7'
        ).fetchall()


def _execute(instance: dg.DagsterInstance, request: dg.RunRequest) -> dg.JobExecutionResult:
    tags = dict(request.tags)
    if request.partition_key:
        tags["dagster/partition"] = str(request.partition_key)
    return dg.execute_job(dg.reconstructable(summary_job), instance, tags=tags)


def test_sensor_runs_and_backfill_on_a_postgres_instance(dagster_home, dsn):
    from ocp_assets.core.outcomes import DAILY_SUMMARY
    from ocp_assets.definitions import defs
    from ocp_assets.defs.sensors import koku_parquet_sensor

    definitions = defs()  # as Dagster loads it, from the environment dagster_home set
    data = Path(dagster_home["OCP_ASSETS_DATA_ROOT"])
    days = [DAY + dt.timedelta(days=n) for n in range(3)]
    build_cluster(data, "cluster-a", days[:2])
    build_cluster(data, "cluster-b", days[:1])
    schema = dagster_home["OCP_ASSETS_SCHEMA"]

    with dg.DagsterInstance.get() as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        assert type(instance.event_log_storage).__name__ == "PooledPostgresEventLogStorage"
        resources = {k: v for k, v in definitions.resources.items() if k in ("koku_db", "koku_lake", "day_partitions")}

        # Sensor: both clusters become partitions; cluster-a's two days are one range run, cluster-b one partition.
        with dg.build_sensor_context(instance=instance, resources=resources) as context:
            tick = koku_parquet_sensor(context)
        for request in tick.dynamic_partitions_requests:
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        assert len(tick.run_requests) == 2
        started = time.perf_counter()
        results = [_execute(instance, request) for request in tick.run_requests]
        sensor_runs_seconds = time.perf_counter() - started
        assert all(r.success for r in results)
        materialized = instance.get_materialized_partitions(dg.AssetKey(DAILY_SUMMARY))
        assert materialized == {"cluster-a|2026-03-03", "cluster-a|2026-03-04", "cluster-b|2026-03-03"}
        evaluations = [
            e.event_specific_data
            for r in results
            for e in r.all_events
            if e.event_type_value == "ASSET_CHECK_EVALUATION"
        ]
        # One evaluation of every check per partition, each scoped to its partition.
        assert len(evaluations) == 3 * CHECKS and all(e.passed for e in evaluations)
        assert {e.partition for e in evaluations} == materialized
        first_rows = _rows(dsn, schema)
        assert sorted({(r[0][:8], r[1]) for r in first_rows}) == [
            ("208a8e14", days[0]),
            ("208a8e14", days[1]),
            ("c4afdcf7", days[0]),
        ]

        # Late data for a third day; a backfill of cluster-a's three days as the backfill daemon would cut it
        # (its own run-request builder with our BackfillPolicy): one range run, not one run per partition.
        build_cluster(data, "cluster-a", days)
        graph = definitions.resolve_asset_graph()
        wanted = [
            AssetKeyPartitionKey(dg.AssetKey(k), f"cluster-a|{d.isoformat()}") for k in SUMMARY_KEYS for d in days
        ]
        # The daemon wraps this in a partition-loading context; without it the range chunking cannot list
        # the dynamic cluster dimension (it drops the store it is given).
        with partition_loading_context(dynamic_partitions_store=instance):
            requests = build_run_requests_with_backfill_policies(wanted, graph, instance)
        ranges = {
            (r.tags["dagster/asset_partition_range_start"], r.tags["dagster/asset_partition_range_end"])
            for r in requests
        }
        assert ranges == {("cluster-a|2026-03-03", "cluster-a|2026-03-05")}
        started = time.perf_counter()
        backfill = [
            _execute(instance, dg.RunRequest(tags=r.tags))
            for r in {tuple(sorted(r.tags.items())): r for r in requests}.values()
        ]
        backfill_seconds = time.perf_counter() - started
        assert all(r.success for r in backfill)
        after_backfill = _rows(dsn, schema)
        assert len(after_backfill) == len(first_rows) + 7
        assert [r for r in after_backfill if r[1] != days[2]] == first_rows  # same numbers for the days already there

        # Re-running the backfill leaves exactly the same rows (D5).
        assert all(_execute(instance, dg.RunRequest(tags=r.tags)).success for r in requests[:1])
        assert _rows(dsn, schema) == after_backfill
    print(
        f"\nmultiprocess (forked step) on PostgreSQL: sensor runs (2 runs, 3 partitions) {sensor_runs_seconds:.1f} s,"
        f" backfill (1 run, 3 partitions) {backfill_seconds:.1f} s"
    )


def test_dagster_definitions_validate(monkeypatch, tmp_path):
    env = {
        **os.environ,
        "OCP_ASSETS_DSN": "postgresql://unused@127.0.0.1:1/x",
        "OCP_ASSETS_DATA_ROOT": str(tmp_path),
        "DAGSTER_HOME": str(tmp_path),
    }
    done = subprocess.run(
        [str(Path(sys.executable).parent / "dagster"), "definitions", "validate", "-w", str(REPO / "workspace.yaml")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Validation successful" in done.stdout + done.stderr


def test_cli_route_materializes_daily_summary_alone_for_a_partition(dagster_home, dsn):
    """`dagster asset materialize --select daily_summary --partition ...`: no other asset needs materializing first."""
    from ocp_assets.defs.resources import SummaryDatabase

    data = Path(dagster_home["OCP_ASSETS_DATA_ROOT"])
    identity = build_cluster(data, "cluster-cli", [DAY])
    db = SummaryDatabase(
        dsn=dsn,
        schema_name=dagster_home["OCP_ASSETS_SCHEMA"],
        registry_schema=dagster_home["OCP_ASSETS_REGISTRY_SCHEMA"],
    )
    with db.connect() as conn:
        db.registry.ensure(conn)
        db.register_cluster(
            conn,
            cluster_id="cluster-cli",
            source=identity.source_uuid,
            account=identity.account,
            cluster_alias="cluster-cli",
            data_root=str(data),
        )
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("clusters", ["cluster-cli"])

    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "dagster"),
            "asset",
            "materialize",
            "-m",
            "ocp_assets.definitions",
            "--select",
            "daily_summary",
            "--partition",
            f"cluster-cli|{DAY.isoformat()}",
        ],
        cwd=REPO,
        env=os.environ.copy(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert len(_rows(dsn, dagster_home["OCP_ASSETS_SCHEMA"])) == 7
    with dg.DagsterInstance.get() as instance:
        assert instance.get_materialized_partitions(dg.AssetKey("daily_summary")) == {f"cluster-cli|{DAY.isoformat()}"}
