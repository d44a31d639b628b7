"""Dagster on S3: koku Parquet and the stage snapshots in a bucket of a local moto server, sensor included; the
dagster-aws S3 resource's settings and boto3 credentials reaching pyarrow."""

import json
import subprocess
import sys
import uuid

import boto3
import pytest
from dagster_aws.s3 import S3Resource
from moto.server import ThreadedMotoServer

from ocp_assets.core import outcomes as O
from ocp_assets.defs.partitions import partition_key
from ocp_assets.defs.resources import KokuDataLake, SummaryEngine, pyarrow_s3_settings
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
        yield client, name, endpoint
    finally:
        server.stop()


def _sensor_and_assets_on_s3(dagster_env, bucket, lake: KokuDataLake) -> None:
    import dagster as dg

    client, name, _endpoint = bucket
    build_cluster(dagster_env.data_root, "cluster-s3", [DAY])
    for path in dagster_env.data_root.rglob("*"):
        if path.is_file():
            client.upload_file(str(path), name, f"koku/{path.relative_to(dagster_env.data_root)}")
    dagster_env.resources["koku_lake"] = lake
    dagster_env.resources["summary_engine"] = SummaryEngine(workers=2, snapshot_root=f"s3://{name}/snapshots")

    with dg.build_sensor_context(instance=dagster_env.instance, resources=dagster_env.resources) as context:
        tick = koku_parquet_sensor(context)
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


def test_sensor_and_assets_on_s3(dagster_env, bucket):
    """The S3 settings from the environment (endpoint OCP_ASSETS_S3_ENDPOINT, AWS_* keys), no S3 resource given."""
    _sensor_and_assets_on_s3(dagster_env, bucket, KokuDataLake(data_root=f"s3://{bucket[1]}/koku"))


def test_the_s3_resource_alone_reaches_the_bucket(dagster_env, bucket, monkeypatch):
    """Endpoint, region and keys only in the dagster-aws S3 resource: the sensor, the step's day and its snapshot
    writes all reach the bucket through it (nothing in the environment would)."""
    _client, name, endpoint = bucket
    for key in ("OCP_ASSETS_S3_ENDPOINT", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    s3 = S3Resource(
        endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing", aws_secret_access_key="testing"
    )
    _sensor_and_assets_on_s3(dagster_env, bucket, KokuDataLake(data_root=f"s3://{name}/koku", s3=s3))


# ------------------------------------------------------------------ the S3 resource's settings, as pyarrow gets them


@pytest.fixture
def aws_environment(monkeypatch, tmp_path):
    """No AWS setting but those a test sets: no profile files, no instance metadata."""
    for key in ("OCP_ASSETS_S3_ENDPOINT", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_PROFILE", "AWS_REGION"):
        monkeypatch.delenv(key, raising=False)
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "credentials"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "config"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    return monkeypatch, tmp_path


def _pyarrow_options(settings) -> dict:
    from ocp_assets.core.storage import s3_filesystem

    return s3_filesystem(settings).__reduce__()[1][0]  # the options pyarrow was built with


def test_environment_credentials_with_a_session_token_reach_pyarrow(aws_environment):
    env, _ = aws_environment
    env.setenv("AWS_ACCESS_KEY_ID", "AKIATEMPORARY")
    env.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    env.setenv("AWS_SESSION_TOKEN", "the-session-token")
    env.setenv("OCP_ASSETS_S3_ENDPOINT", "http://minio.local:9000")

    settings = pyarrow_s3_settings(S3Resource(region_name="eu-west-1"))

    options = _pyarrow_options(settings)
    assert (options["access_key"], options["secret_key"]) == ("AKIATEMPORARY", "secret")
    assert options["session_token"] == "the-session-token"
    assert (options["endpoint_override"], options["scheme"], options["region"]) == (
        "minio.local:9000",
        "http",
        "eu-west-1",
    )
    assert "secret" not in repr(settings) and "the-session-token" not in repr(settings)


def test_the_resource_wins_over_the_environment_and_a_profile_is_read(aws_environment):
    env, home = aws_environment
    env.setenv("AWS_ACCESS_KEY_ID", "from-environment")
    env.setenv("AWS_SECRET_ACCESS_KEY", "from-environment")
    env.setenv("OCP_ASSETS_S3_ENDPOINT", "http://environment:1")
    (home / "credentials").write_text("[koku]\naws_access_key_id = from-profile\naws_secret_access_key = p\n")
    (home / "config").write_text("[profile koku]\nregion = ap-south-1\n")

    settings = pyarrow_s3_settings(S3Resource(profile_name="koku", endpoint_url="https://s3.example:8443"))

    options = _pyarrow_options(settings)
    assert (options["access_key"], options["region"]) == ("from-profile", "ap-south-1")
    assert (options["endpoint_override"], options["scheme"]) == ("s3.example:8443", "https")


def test_unsigned_and_refreshable_credentials_are_not_frozen(aws_environment):
    env, home = aws_environment
    assert _pyarrow_options(pyarrow_s3_settings(S3Resource(use_unsigned_session=True)))["anonymous"] is True
    # Web identity (IRSA): temporary credentials boto3 would refresh; pyarrow's own SDK chain reads the same token
    # file and refreshes them, so none are handed over (a frozen copy could expire during a long run).
    (home / "token").write_text("a-web-identity-token")
    env.setenv("AWS_WEB_IDENTITY_TOKEN_FILE", str(home / "token"))
    env.setenv("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/koku")
    settings = pyarrow_s3_settings(S3Resource(region_name="us-east-1"))
    assert settings.access_key is None and settings.session_token is None and not settings.anonymous


def test_a_local_data_root_never_looks_for_aws_credentials(monkeypatch):
    import ocp_assets.defs.resources as R

    def looked(*args, **kwargs):
        raise AssertionError("AWS credentials resolved for a local data root")

    monkeypatch.setattr(R, "pyarrow_s3_settings", looked)
    lake = KokuDataLake(data_root="/srv/koku")
    assert lake.s3_settings() is None and lake.s3_settings("/srv/koku", None) is None
    assert lake.root().uri == "/srv/koku"


def test_the_code_location_shows_the_s3_settings_the_environment_gives(tmp_path):
    code = (
        "import json; from ocp_assets.definitions import defs; r = defs().resources; "
        "print(json.dumps([type(r['s3']).__name__, str(r['s3'].endpoint_url.env_var_name), "
        "str(r['s3'].region_name.env_var_name), r['s3'].profile_name, r['koku_lake'].s3 is r['s3']]))"
    )
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "OCP_ASSETS_S3_ENDPOINT": "http://minio:9000"}
    env["AWS_DEFAULT_REGION"] = "eu-central-1"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    # EnvVars, not values: the UI shows which variable each setting comes from; an unset one stays AWS's default.
    assert json.loads(done.stdout) == ["S3Resource", "OCP_ASSETS_S3_ENDPOINT", "AWS_DEFAULT_REGION", None, True]
