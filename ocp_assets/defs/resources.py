"""Resources: koku's PostgreSQL (summary tables + the cluster registry), koku's Parquet, and how a run computes."""

from collections.abc import Iterator
from contextlib import contextmanager

import dagster as dg
import psycopg
from pydantic import Field

from ocp_assets.core.engine import connect
from ocp_assets.core.registry import ClusterRecord, Registry
from ocp_assets.core.storage import DataRoot, open_data_root

DSN_ENV = "OCP_ASSETS_DSN"
DATA_ROOT_ENV = "OCP_ASSETS_DATA_ROOT"
REGISTRY_SCHEMA = "ocp_assets"


def instance_storage_env(dsn: str, database: str) -> dict[str, str]:
    """dagster.yaml's OCP_ASSETS_DAGSTER_PG_* variables: Dagster's runs and events in `database` on `dsn`'s server."""
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    return {
        "OCP_ASSETS_DAGSTER_PG_HOST": str(info.get("host", "127.0.0.1")),
        "OCP_ASSETS_DAGSTER_PG_PORT": str(info.get("port", 5432)),
        "OCP_ASSETS_DAGSTER_PG_USER": str(info.get("user", "postgres")),
        "OCP_ASSETS_DAGSTER_PG_PASSWORD": str(info.get("password", "")),
        "OCP_ASSETS_DAGSTER_PG_DB": database,
    }


class SummaryDatabase(dg.ConfigurableResource):
    """koku's PostgreSQL: tenant schemas with the summary tables, plus the ocp_assets cluster registry."""

    dsn: str = Field(description="libpq URL of koku's PostgreSQL (env OCP_ASSETS_DSN)")
    schema_name: str = Field(
        default="",
        description="koku tenant schema for every cluster; empty: the cluster's account (as `ocp-assets summarize`)",
    )
    registry_schema: str = Field(default=REGISTRY_SCHEMA, description="schema of the cluster registry tables")

    @contextmanager
    def connect(self) -> Iterator[psycopg.Connection]:
        with connect(self.dsn) as conn:
            yield conn

    @property
    def registry(self) -> Registry:
        return Registry(self.registry_schema)

    def tenant_schema(self, account: str) -> str:
        return self.schema_name or account

    def register_cluster(self, conn: psycopg.Connection, *, cluster_id: str, source: str, account: str,
                         cluster_alias: str, data_root: str) -> ClusterRecord:
        return self.registry.register(conn, cluster_id=cluster_id, source=source, account=account,
                                      cluster_alias=cluster_alias, schema=self.tenant_schema(account), data_root=data_root)


class KokuDataLake(dg.ConfigurableResource):
    """Where koku's OCP Parquet lives: a local directory or s3://bucket/prefix (endpoint: OCP_ASSETS_S3_ENDPOINT)."""

    data_root: str = Field(description="data root URI (env OCP_ASSETS_DATA_ROOT)")

    def root(self) -> DataRoot:
        return open_data_root(self.data_root)


class SummaryEngine(dg.ConfigurableResource):
    """How a run computes its cluster-days: worker processes at once, and where the stage tables are kept."""

    workers: int = Field(default=2, description="cluster-days computed at once, each in its own process (1: in the step)")
    snapshot_root: str = Field(
        default="",
        description="directory or s3://bucket/prefix receiving each stage's tables as Parquet per partition; empty: not kept",
    )
