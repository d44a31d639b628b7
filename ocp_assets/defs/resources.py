"""Resources: koku's PostgreSQL (summary tables + the cluster registry) and koku's Parquet data lake."""

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import dagster as dg
import psycopg
from psycopg import sql
from pydantic import Field

from ocp_assets.core.engine import ClusterDay, connect
from ocp_assets.core.errors import ConfigurationError
from ocp_assets.core.pgschema import SUMMARY_TABLE, init_schema
from ocp_assets.core.storage import DataRoot, open_data_root

DSN_ENV = "OCP_ASSETS_DSN"
DATA_ROOT_ENV = "OCP_ASSETS_DATA_ROOT"
REGISTRY_SCHEMA = "ocp_assets"
REGISTRY_TABLE = "cluster_registry"
FILE_STATE_TABLE = "parquet_file_state"

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


_REGISTRY_DDL = (
    "CREATE SCHEMA IF NOT EXISTS {s}",
    """CREATE TABLE IF NOT EXISTS {s}.cluster_registry (
        cluster_id text PRIMARY KEY,
        source uuid NOT NULL,
        account text NOT NULL,
        cluster_alias text NOT NULL,
        schema text NOT NULL,
        data_root text NOT NULL,
        discovered_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now())""",
    # What the data sensor has seen of each Parquet file (so late or rewritten files re-run only their days).
    """CREATE TABLE IF NOT EXISTS {s}.parquet_file_state (
        cluster_id text NOT NULL,
        key text NOT NULL,
        size bigint NOT NULL,
        mtime_ns bigint NOT NULL,
        days date[] NOT NULL,
        seen_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (cluster_id, key))""",
)


@dataclass(frozen=True)
class ClusterRecord:
    """One row of the cluster registry: what a cluster partition key stands for."""

    cluster_id: str
    source: str
    account: str
    cluster_alias: str
    schema: str
    data_root: str

    def day(self, day: dt.date) -> ClusterDay:
        return ClusterDay(self.account, self.source, self.cluster_id, self.cluster_alias, day)


class UnknownClusterError(ConfigurationError):
    """A cluster partition key that the registry does not hold (added by hand, or the registry was reset)."""


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

    def tenant_schema(self, account: str) -> str:
        return self.schema_name or account

    # ------------------------------------------------------------ registry
    def ensure_registry(self, conn: psycopg.Connection) -> None:
        ident = sql.Identifier(self.registry_schema)
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('ocp_assets.registry_ddl'))")
            for ddl in _REGISTRY_DDL:
                conn.execute(sql.SQL(ddl).format(s=ident))

    def register_cluster(
        self, conn: psycopg.Connection, *, cluster_id: str, source: str, account: str, cluster_alias: str, data_root: str
    ) -> ClusterRecord:
        """Insert or refresh one registry row; returns the row as stored (the first source of a cluster_id wins)."""
        schema = self.tenant_schema(account)
        conn.execute(
            sql.SQL(
                "INSERT INTO {s}.cluster_registry AS r (cluster_id, source, account, cluster_alias, schema, data_root)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (cluster_id) DO UPDATE SET cluster_alias = EXCLUDED.cluster_alias, updated_at = now()"
                " WHERE r.source = EXCLUDED.source AND r.cluster_alias IS DISTINCT FROM EXCLUDED.cluster_alias"
            ).format(s=sql.Identifier(self.registry_schema)),
            (cluster_id, source, account, cluster_alias, schema, data_root),
        )
        return self.cluster(conn, cluster_id)

    def clusters(self, conn: psycopg.Connection) -> list[ClusterRecord]:
        rows = conn.execute(
            sql.SQL(
                "SELECT cluster_id, source::text, account, cluster_alias, schema, data_root FROM {}.cluster_registry"
                " ORDER BY cluster_id"
            ).format(sql.Identifier(self.registry_schema))
        ).fetchall()
        return [ClusterRecord(*r) for r in rows]

    def cluster(self, conn: psycopg.Connection, cluster_id: str) -> ClusterRecord:
        try:
            row = conn.execute(
                sql.SQL(
                    "SELECT cluster_id, source::text, account, cluster_alias, schema, data_root FROM {}.cluster_registry"
                    " WHERE cluster_id = %s"
                ).format(sql.Identifier(self.registry_schema)),
                (cluster_id,),
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            row = None
        if row is None:
            raise UnknownClusterError(
                f"cluster {cluster_id!r} is not in {self.registry_schema}.{REGISTRY_TABLE}; "
                "let the koku_parquet_sensor discover it (it reads the ingest's cluster.json records)"
            )
        return ClusterRecord(*row)

    def ensure_tenant(self, conn: psycopg.Connection, schema: str) -> None:
        """koku's tables in the tenant schema, created only where missing (D4)."""
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{schema}"."{SUMMARY_TABLE}"',)).fetchone()[0]
        if not exists:
            with conn.transaction():
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"ocp_assets.init/{schema}",))
                init_schema(conn, schema)


class KokuDataLake(dg.ConfigurableResource):
    """Where koku's OCP Parquet lives: a local directory or s3://bucket/prefix (endpoint: OCP_ASSETS_S3_ENDPOINT)."""

    data_root: str = Field(description="data root URI (env OCP_ASSETS_DATA_ROOT)")

    def root(self) -> DataRoot:
        return open_data_root(self.data_root)
