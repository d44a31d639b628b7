"""S3 data root (contract 1.6, D3): ingest to s3://bucket/prefix on a local moto server matches the local result."""

import uuid

import boto3
import pytest
from moto.server import ThreadedMotoServer

from ocp_assets.cli import main
from ocp_assets.core.errors import InputDataError
from ocp_assets.core.ingest import ingest, read_cluster_registry
from ocp_assets.core.storage import S3Settings, open_data_root
from ocp_assets_tests.fixtures_ingest import (
    POD_HEADER,
    all_bytes,
    four_report_payload,
    write_payload,
)

SOURCE = "6d7c1b1e-6a63-4c1c-9a57-3f1f1e0e0a01"
PREFIX = "koku/warehouse"
CREDENTIALS = {"aws_access_key_id": "testing", "aws_secret_access_key": "testing", "region_name": "us-east-1"}


@pytest.fixture(scope="module")
def s3_endpoint():
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)  # port 0: any free port
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def bucket(s3_endpoint, monkeypatch):
    """A fresh bucket, with the environment ocp_assets reads to reach it."""
    monkeypatch.setenv("OCP_ASSETS_S3_ENDPOINT", s3_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", CREDENTIALS["aws_access_key_id"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", CREDENTIALS["aws_secret_access_key"])
    monkeypatch.setenv("AWS_DEFAULT_REGION", CREDENTIALS["region_name"])
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    client = boto3.client("s3", endpoint_url=s3_endpoint, **CREDENTIALS)
    name = f"ocp-{uuid.uuid4().hex[:12]}"
    client.create_bucket(Bucket=name)
    return client, name


def s3_objects(client, bucket: str) -> dict[str, bytes]:
    """Every object below PREFIX, by key relative to it."""
    objects = {}
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{PREFIX}/"):
        for item in page.get("Contents", []):
            body = client.get_object(Bucket=bucket, Key=item["Key"])["Body"].read()
            objects[item["Key"][len(PREFIX) + 1 :]] = body
    return objects


def test_s3_round_trip_equals_local(bucket, tmp_path):
    client, name = bucket
    payload = four_report_payload(tmp_path / "payload", days=("2026-10-31", "2026-11-01"))
    local = open_data_root(str(tmp_path / "local"))
    remote = open_data_root(f"s3://{name}/{PREFIX}")

    local_result = ingest(payload, local, source_uuid=SOURCE, cluster_alias="east")
    remote_result = ingest(payload, remote, source_uuid=SOURCE, cluster_alias="east")

    expected = all_bytes(tmp_path / "local")
    assert len(expected) == 17  # 4 report types x 2 days x (raw, daily) + cluster.json
    assert s3_objects(client, name) == expected
    assert sorted(remote_result.keys_written) == sorted(local_result.keys_written)
    assert read_cluster_registry(remote) == read_cluster_registry(local) == remote_result.clusters

    ingest(payload, remote, source_uuid=SOURCE)  # again: same keys, same bytes
    assert s3_objects(client, name) == expected


def test_failed_ingest_writes_nothing_to_s3(bucket, tmp_path):
    client, name = bucket
    rows = [{"report_period_start": "x"}]
    payload = write_payload(tmp_path / "payload", [(POD_HEADER, rows)])
    with pytest.raises(InputDataError):
        ingest(payload, open_data_root(f"s3://{name}/{PREFIX}"), source_uuid=SOURCE)
    assert s3_objects(client, name) == {}


def test_cli_ingest_to_s3(bucket, tmp_path):
    client, name = bucket
    payload = four_report_payload(tmp_path / "payload")
    assert main(["ingest", str(payload), "--out", f"s3://{name}/{PREFIX}", "--source", SOURCE]) == 0
    assert f"data/parquet/10001/OCP/clusters/source={SOURCE}/cluster.json" in s3_objects(client, name)


def test_explicit_s3_settings_reach_the_bucket_without_the_environment(bucket, tmp_path, monkeypatch, s3_endpoint):
    """The pure interface the Dagster resource uses: endpoint and credentials passed in, none from the environment."""
    client, name = bucket
    for key in ("OCP_ASSETS_S3_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.delenv(key)
    settings = S3Settings(endpoint_url=s3_endpoint, region="us-east-1", access_key="testing", secret_key="testing")
    payload = four_report_payload(tmp_path / "payload")

    ingest(payload, open_data_root(f"s3://{name}/{PREFIX}", settings), source_uuid=SOURCE)

    assert f"data/parquet/10001/OCP/clusters/source={SOURCE}/cluster.json" in s3_objects(client, name)
    with pytest.raises(OSError):  # the same root without them: no endpoint, no credentials
        read_cluster_registry(open_data_root(f"s3://{name}/{PREFIX}"))
