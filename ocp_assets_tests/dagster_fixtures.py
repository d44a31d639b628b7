"""Tiny koku-layout Parquet clusters and Dagster resources for the Dagster tests."""

import dataclasses
import datetime as dt
import os
import uuid
from pathlib import Path

import dagster as dg
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ocp_assets.core.ingest import (
    ClusterIdentity,
    cluster_record_key,
    derive_source_uuid,
)
from ocp_assets.core.storage import open_data_root
from ocp_assets.dagster_instance import dagster_instance_env, write_instance_yaml
from ocp_assets.defs.assets import koku_parquet_specs, summary_asset
from ocp_assets.defs.partitions import CLUSTERS_PARTITIONS_NAME, DayPartitions
from ocp_assets.defs.resources import KokuDataLake, SummaryDatabase, SummaryEngine
from ocp_assets_tests.engine_support import enable_keys
from ocp_assets_tests.reference.parquet_fixtures import KokuParquetBuilder

REPO = Path(__file__).resolve().parents[1]
ACCOUNT = "org1234567"
ENABLED_KEYS = ("app", "team", "tier")
DAY = dt.date(2026, 3, 3)


def build_cluster(
    data_root: Path,
    cluster_id: str,
    days: list[dt.date],
    *,
    account: str = ACCOUNT,
    alias: str | None = None,
    pods_per_node: int = 2,
) -> ClusterIdentity:
    """Write one cluster's pod, storage and label Parquet for the days, and its cluster.json record.

    Two nodes (a master running openshift-kube-apiserver and a worker), pods in two namespaces with labels that
    exercise precedence (pod > namespace > node), a PVC on the worker; numbers vary by day.
    """
    source = derive_source_uuid(cluster_id)
    builder = KokuParquetBuilder(data_root, account=account, source=source)
    for n, day in enumerate(days):
        builder.pod(
            day,
            pod="apiserver-1",
            namespace="openshift-kube-apiserver",
            node="master-1",
            resource_id="i-master-1",
            cpu=(0.2, 0.3, 0.5),
            memory_gib=(1.0, 1.5, 2.0),
            node_cpu_cores=4,
            node_memory_gib=16,
        )
        for i in range(pods_per_node):
            builder.pod(
                day,
                pod=f"web-{i}",
                namespace="shop",
                node="worker-1",
                resource_id="i-worker-1",
                cpu=(0.1 * (i + 1) + 0.01 * n, 0.25, 1.0),
                memory_gib=(0.5, 1.0, 2.0),
                node_cpu_cores=8,
                node_memory_gib=32,
                labels={"app": f"web-{i}", "tier": "front", "extra": "dropped"},
            )
        builder.pod(
            day,
            pod="batch-1",
            namespace="jobs",
            node="worker-1",
            resource_id="i-worker-1",
            cpu=(0.5, 0.4, 1.0),
            memory_gib=(2.0, 1.0, 4.0),
            node_cpu_cores=8,
            node_memory_gib=32,
            labels={"app": "batch"},
            hours=range(6, 18),
        )
        builder.pvc(
            day,
            namespace="shop",
            pod="web-0",
            pvc="data-web-0",
            pv="pv-1",
            capacity_gib=10,
            request_gib=10,
            usage_gib=2.5 + n,
            pv_labels={"tier": "disk"},
            pvc_labels={"app": "db"},
        )
        builder.node_labels(day, node="master-1", labels={"team": "platform", "tier": "control"})
        builder.node_labels(
            day, node="worker-1", labels={"team": "infra-team", "tier": "node", "kubernetes_io_arch": "amd64"}
        )
        builder.namespace_labels(day, namespace="shop", labels={"team": "shop-team"})
        builder.namespace_labels(day, namespace="jobs", labels={"team": "batch-team"})
        builder.namespace_labels(day, namespace="openshift-kube-apiserver", labels={})
    builder.write()
    identity = ClusterIdentity(
        cluster_id=cluster_id, source_uuid=source, account=account, cluster_alias=alias or cluster_id.upper()
    )
    open_data_root(str(data_root)).write_bytes(cluster_record_key(account, source), identity.to_json())
    return identity


def daily_files(data_root: Path, identity: ClusterIdentity, report_type: str) -> list[Path]:
    folder = (
        Path(data_root)
        / "data"
        / "parquet"
        / "daily"
        / identity.account
        / "OCP"
        / report_type
        / f"source={identity.source_uuid}"
    )
    return sorted(folder.rglob("*.parquet"))


def corrupt_label_cell(
    data_root: Path, identity: ClusterIdentity, report_type: str = "node_labels", bad: str = '{"team": "x"'
) -> Path:
    """Break the first label JSON cell of the daily table (the file keeps its size-independent mtime bump)."""
    path = daily_files(data_root, identity, report_type)[0]
    table = pq.read_table(path)
    column = table[report_type].to_pylist()
    column[0] = bad
    table = table.set_column(table.schema.get_field_index(report_type), report_type, pa.array(column, pa.string()))
    pq.write_table(table, path)
    return path


def drop_column(data_root: Path, identity: ClusterIdentity, report_type: str, column: str) -> Path:
    path = daily_files(data_root, identity, report_type)[0]
    pq.write_table(pq.read_table(path).drop_columns([column]), path)
    return path


def negate_first_value(data_root: Path, identity: ClusterIdentity, report_type: str, column: str) -> Path:
    path = daily_files(data_root, identity, report_type)[0]
    table = pq.read_table(path)
    values = table[column].to_pylist()
    values[0] = -abs(values[0]) - 1.0
    pq.write_table(table.set_column(table.schema.get_field_index(column), column, pa.array(values, pa.float64())), path)
    return path


def change_day(
    data_root: Path, identity: ClusterIdentity, report_type: str, column: str, day: dt.date, change
) -> tuple[Path, int]:
    """Apply change(value) to `column` on the day's rows of the daily table; returns the file and the first changed row
    (1-based).
    """
    path = daily_files(data_root, identity, report_type)[0]
    table = pq.read_table(path)
    starts = [t.date() for t in table["interval_start"].to_pylist()]
    values = table[column].to_pylist()
    rows = [i for i, d in enumerate(starts) if d == day]
    for i in rows:
        values[i] = change(values[i])
    pq.write_table(
        table.set_column(
            table.schema.get_field_index(column), column, pa.array(values, table.schema.field(column).type)
        ),
        path,
    )
    return path, rows[0] + 1


def resources(
    dsn: str, schema: str, data_root: Path, snapshot_root: Path, registry_schema: str, workers: int = 2
) -> dict:
    return {
        "koku_db": SummaryDatabase(dsn=dsn, schema_name=schema, registry_schema=registry_schema),
        "koku_lake": KokuDataLake(data_root=str(data_root)),
        "summary_engine": SummaryEngine(workers=workers, snapshot_root=str(snapshot_root)),
        "day_partitions": DayPartitions(),  # from 2026-01-01 (the deployment's default) to today
    }


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


def store_sensor_runs(instance: dg.DagsterInstance, result: dg.SensorResult) -> list[dg.DagsterRun]:
    """Create the runs of a tick's requests as the sensor daemon does (with its run-key and sensor tags), unlaunched."""
    from dagster._core.storage.tags import RUN_KEY_TAG, SENSOR_NAME_TAG

    from ocp_assets.defs.jobs import JOB_NAME
    from ocp_assets.defs.sensors import SENSOR_NAME

    runs = []
    for request in result.run_requests:
        tags = {**request.tags, RUN_KEY_TAG: request.run_key, SENSOR_NAME_TAG: SENSOR_NAME}
        if request.partition_key:
            tags["dagster/partition"] = str(request.partition_key)
        runs.append(instance.add_run(dg.DagsterRun(job_name=JOB_NAME, run_id=str(uuid.uuid4()), tags=tags)))
    return runs


def sensor_tick(env, cursor: str | None = None, *, store_runs: bool = True) -> dg.SensorResult:
    """One evaluation of koku_parquet_sensor as the daemon runs it: its partitions added and (unless store_runs is
    off, as when the daemon dies before creating them) its runs stored."""
    from ocp_assets.defs.sensors import koku_parquet_sensor

    # A context manager, as Dagster requires for resources with nested resources (koku_lake's S3 resource).
    with dg.build_sensor_context(instance=env.instance, resources=env.resources, cursor=cursor) as context:
        result = koku_parquet_sensor(context)
    for request in result.dynamic_partitions_requests:
        env.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    if store_runs:
        store_sensor_runs(env.instance, result)
    return result


def touch_later(path: Path, seconds: int = 5) -> None:
    stat = path.stat()
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns + seconds * 1_000_000_000))


# ---------------------------------------------------------------- pytest fixtures (import them into a test module)


@dataclasses.dataclass
class DagsterEnv:
    dsn: str
    schema: str
    registry_schema: str
    data_root: Path
    snapshot_root: Path
    resources: dict
    instance: dg.DagsterInstance

    def register(self, identity: ClusterIdentity) -> None:
        db = self.resources["koku_db"]
        with db.connect() as conn:
            db.registry.ensure(conn)
            db.register_cluster(
                conn,
                cluster_id=identity.cluster_id,
                source=identity.source_uuid,
                account=identity.account,
                cluster_alias=identity.cluster_alias,
                data_root=str(self.data_root),
            )
        self.instance.add_dynamic_partitions(CLUSTERS_PARTITIONS_NAME, [identity.cluster_id])

    def materialize(self, partition_key=None, tags=None, selection=None) -> dg.ExecuteInProcessResult:
        partitions = self.resources["day_partitions"].definition()
        return dg.materialize(
            [*koku_parquet_specs(partitions), summary_asset(partitions)],
            partition_key=partition_key,
            tags=tags,
            resources=self.resources,
            instance=self.instance,
            raise_on_error=False,
            selection=selection,
        )

    def summary_rows(self, source: str | None = None) -> list[tuple]:
        with psycopg.connect(self.dsn, autocommit=True) as conn:
            return conn.execute(
                "SELECT source_uuid::text, usage_start, data_source, namespace, node, pod_labels::text, "
                "volume_labels::text,"
                f" pod_usage_cpu_core_hours, pod_request_memory_gigabyte_hours, node_capacity_cpu_core_hours,"
                f" persistentvolumeclaim_usage_gigabyte_months, cost_category_id"
                f' FROM "{self.schema}".reporting_ocpusagelineitem_daily_summary'
                f" WHERE %s::text IS NULL OR source_uuid::text = %s ORDER BY 1, 2, 3, 4, 5, 6, 7",
                (source, source),
            ).fetchall()


@pytest.fixture(name="dagster_home")
def dagster_home_fixture(pg, dsn, tmp_path, monkeypatch):
    """DAGSTER_HOME with ocp_assets' dagster.yaml, its storage in a PostgreSQL database made for this test."""
    conn, schema = pg
    enable_keys(conn, schema, ENABLED_KEYS)
    database = unique_name("ocp_dagster")
    registry = unique_name("ocp_reg")
    conn.execute(f'CREATE DATABASE "{database}"')
    home = tmp_path / "home"
    home.mkdir()
    write_instance_yaml(home)
    env = {
        "DAGSTER_HOME": str(home),
        **dagster_instance_env(dsn, database),
        "OCP_ASSETS_DSN": dsn,
        "OCP_ASSETS_DATA_ROOT": str(tmp_path / "data"),
        "OCP_ASSETS_SNAPSHOT_ROOT": str(tmp_path / "snapshots"),
        "OCP_ASSETS_SCHEMA": schema,
        "OCP_ASSETS_REGISTRY_SCHEMA": registry,
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    try:
        yield env
    finally:
        _stop_forkserver()
        conn.execute(f'DROP SCHEMA IF EXISTS "{registry}" CASCADE')
        conn.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')


def _stop_forkserver() -> None:
    """End the multiprocess executor's forkserver of this pytest process, if a test started one.

    It is one per process and keeps the environment of the test that started it (DAGSTER_HOME, the storage URL):
    the next test's step processes, forked from it, would open that test's dropped database. Private, the standard
    library's only way to end it (CPython's own tests call it); a run in a test's process starts a new one.
    """
    import multiprocessing.forkserver

    multiprocessing.forkserver._forkserver._stop()


@pytest.fixture(name="dagster_env")
def dagster_env_fixture(pg, dsn, tmp_path):
    """koku tables in a fresh schema with enabled keys, a private registry schema, an ephemeral instance."""
    conn, schema = pg
    enable_keys(conn, schema, ENABLED_KEYS)
    registry = unique_name("ocp_reg")
    env = DagsterEnv(
        dsn,
        schema,
        registry,
        tmp_path / "data",
        tmp_path / "snapshots",
        resources(dsn, schema, tmp_path / "data", tmp_path / "snapshots", registry),
        dg.DagsterInstance.ephemeral(),
    )
    try:
        yield env
    finally:
        conn.execute(f'DROP SCHEMA IF EXISTS "{registry}" CASCADE')
        env.instance.dispose()
