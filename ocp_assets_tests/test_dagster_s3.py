"""Dagster on S3: koku Parquet and the stage snapshots in a bucket of a local moto server, sensor included."""

import uuid

import boto3
import pytest
from moto.server import ThreadedMotoServer

from ocp_assets.core import outcomes as O
from ocp_assets.defs.partitions import partition_key
from ocp_assets.defs.resources import KokuDataLake, SummaryEngine
from ocp_assets.defs.sensors import koku_parquet_sensor
from ocp_assets_tests.dagster_fixtures import DAY, build_cluster, dagster_env_fixture  # noqa: F401 (fixture)

CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


@pytest.fixture
def bucket(monkeypatch):
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    for key, value in {
        "OCP_ASSETS_S3_ENDPOINT": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    client = boto3.client("s3", endpoint_url=endpoint, **CREDENTIALS)
    name = f"ocp-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    try:
        yield client, name
    finally:
        server.stop()


def test_sensor_and_assets_on_s3(dagster_env, bucket):
    import dagster as dg

    client, name = bucket
    build_cluster(dagster_env.data_root, "cluster-s3", [DAY])
    for path in dagster_env.data_root.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), name, f"koku/{path.relative_to(dagster_env.data_root)}")
    dagster_env.resources["koku_lake"] = KokuDataLake(data_root=f"s3://{name}/koku")
    dagster_env.resources["summary_engine"] = SummaryEngine(workers=2, snapshot_root=f"s3://{name}/snapshots")

    tick = koku_parquet_sensor(dg.build_sensor_context(instance=dagster_env.instance, resources=dagster_env.resources))
    assert [list(r.partition_keys) for r in tick.dynamic_partitions_requests] == [["cluster-s3"]]
    assert [str(r.partition_key) for r in tick.run_requests] == ["cluster-s3|2026-03-03"]
    dagster_env.instance.add_dynamic_partitions("clusters", ["cluster-s3"])

    result = dagster_env.materialize(partition_key=partition_key("cluster-s3", DAY))

    assert result.success
    assert {e.partition for e in result.get_asset_materialization_events()} == {"cluster-s3|2026-03-03"}
    keys = {o["Key"] for o in client.list_objects_v2(Bucket=name, Prefix="snapshots/")["Contents"]}
    assert f"snapshots/{O.RAW_POD_USAGE}/pod_usage/cluster=cluster-s3/day=2026-03-03.parquet" in keys
    # pod usage and node capacity, storage usage, node and namespace labels, labelled pods and storage and the node
    # inventory
    assert len(keys) == 8
    assert len(dagster_env.summary_rows()) == 7
