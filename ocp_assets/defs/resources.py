"""Resources: koku's PostgreSQL (summary tables + the cluster registry), koku's Parquet (with dagster-aws's S3
resource for S3), and how a run computes."""

import os
from collections.abc import Generator, Mapping
from contextlib import contextmanager
from dataclasses import replace

import dagster as dg
import psycopg
from dagster_aws.s3 import S3Resource
from pydantic import Field

from ocp_assets.core.database import connect
from ocp_assets.core.registry import ClusterRecord, Registry
from ocp_assets.core.storage import DataRoot, S3Settings, open_data_root

DSN_ENV = "OCP_ASSETS_DSN"
DATA_ROOT_ENV = "OCP_ASSETS_DATA_ROOT"
REGISTRY_SCHEMA = "ocp_assets"


class SummaryDatabase(dg.ConfigurableResource):
    """koku's PostgreSQL: tenant schemas with the summary tables, plus the ocp_assets cluster registry."""

    dsn: str = Field(description="libpq URL of koku's PostgreSQL (env OCP_ASSETS_DSN)")
    schema_name: str = Field(
        default="",
        description="koku tenant schema for every cluster; empty: the cluster's account (as `ocp-assets summarize`)",
    )
    registry_schema: str = Field(default=REGISTRY_SCHEMA, description="schema of the cluster registry tables")

    @contextmanager
    def connect(self) -> Generator[psycopg.Connection, None, None]:
        with connect(self.dsn) as conn:
            yield conn

    @property
    def registry(self) -> Registry:
        return Registry(self.registry_schema)

    def tenant_schema(self, account: str) -> str:
        return self.schema_name or account

    def register_cluster(
        self,
        conn: psycopg.Connection,
        *,
        cluster_id: str,
        source: str,
        account: str,
        cluster_alias: str,
        data_root: str,
    ) -> ClusterRecord:
        return self.registry.register(
            conn,
            cluster_id=cluster_id,
            source=source,
            account=account,
            cluster_alias=cluster_alias,
            schema=self.tenant_schema(account),
            data_root=data_root,
        )


def s3_resource(variables: Mapping[str, str]) -> S3Resource:
    """dagster-aws's S3 resource, each field given as a dg.EnvVar of the variable named for it (the UI shows where
    the value comes from, and each process resolves it when the resource is built).

    Only variables that are set are named (``Settings.s3_variables``): Dagster fails a code location on an unset
    one, and an unset endpoint, region or profile means "AWS's default" here. Credentials are never put in the
    config: boto3's session finds them (environment, profile, web identity, instance metadata).
    """
    return S3Resource(**{field_name: dg.EnvVar(variable) for field_name, variable in variables.items()})


def pyarrow_s3_settings(s3: S3Resource) -> S3Settings:
    """pyarrow's S3 settings from the S3 resource: its endpoint and region, and its boto3 session's credentials.

    Static credentials (keys in the resource or the environment, with AWS_SESSION_TOKEN if any; a profile's keys)
    are handed over as they are. Temporary ones that boto3 would refresh (web identity for IRSA, an instance or
    container role) are left to pyarrow's own AWS SDK chain, which reads the same sources and refreshes them during
    a long run, where a frozen copy could expire; with a profile configured they are frozen, since pyarrow's
    chain would not know the profile (a run must then finish within their lifetime, at least 10 minutes).
    """
    import boto3  # dagster-aws's dependency; imported here, when a run or tick opens S3, not at load
    from botocore.credentials import RefreshableCredentials

    environment = S3Settings.from_environment()
    session = boto3.session.Session(
        profile_name=s3.profile_name,
        region_name=s3.region_name,
        aws_access_key_id=s3.aws_access_key_id,
        aws_secret_access_key=s3.aws_secret_access_key,
        aws_session_token=s3.aws_session_token,
    )
    base = S3Settings(
        endpoint_url=s3.endpoint_url or environment.endpoint_url,
        region=session.region_name or environment.region,
        anonymous=s3.use_unsigned_session,
    )
    if s3.use_unsigned_session:
        return base
    credentials = session.get_credentials()
    if credentials is None or (isinstance(credentials, RefreshableCredentials) and not s3.profile_name):
        return base
    frozen = credentials.get_frozen_credentials()
    return replace(base, access_key=frozen.access_key, secret_key=frozen.secret_key, session_token=frozen.token)


class KokuDataLake(dg.ConfigurableResource):
    """Where koku's OCP Parquet lives: a local directory or s3://bucket/prefix, reached through the S3 resource."""

    data_root: str = Field(description="data root URI (env OCP_ASSETS_DATA_ROOT)")
    s3: S3Resource | None = Field(
        default=None,
        description="dagster-aws S3 resource for s3:// roots: endpoint, region, profile (and optional keys); "
        "none: AWS's defaults",
    )

    def s3_settings(self, *uris: str | None) -> S3Settings | None:
        """pyarrow's S3 settings when one of the URIs (default: the data root) is on S3; None otherwise, so a local
        data root never looks for AWS credentials."""
        if not any(uri and uri.startswith("s3://") for uri in (uris or (self.data_root,))):
            return None
        return pyarrow_s3_settings(self.s3 if self.s3 is not None else S3Resource())

    def root(self) -> DataRoot:
        return open_data_root(self.data_root, self.s3_settings())


class SummaryEngine(dg.ConfigurableResource):
    """How a run computes its cluster-days: worker processes at once, and where the stage tables are kept."""

    workers: int = Field(
        default=2, description="at most this many cluster-days at once, each in its own process (1: in the step)"
    )
    snapshot_root: str = Field(
        default="",
        description=(
            "directory or s3://bucket/prefix receiving each stage's tables as Parquet per partition; empty: not kept"
        ),
    )

    def workers_now(self, instance: dg.DagsterInstance, days: int) -> int:
        """Worker processes for this run: the cores the other runs in progress leave, at most `workers`.

        Measured (docs/dagster.md): with two month runs at once on two cores, day workers add ~0.5 GB of memory
        and no speed, since each run already has a core; a run alone uses both.
        """
        cores = os.cpu_count() or 1
        # Runs launched together (a sensor tick, a backfill) start a moment apart: count the queued ones too.
        active = instance.get_runs_count(
            dg.RunsFilter(
                statuses=[dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]
            )
        )
        free_cores = max(1, cores // max(1, min(active, cores)))
        return max(1, min(self.workers, free_cores, days))
