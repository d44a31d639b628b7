"""Resources: koku's PostgreSQL (summary tables + the cluster registry), koku's Parquet, and how a run computes."""

import os
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

import dagster as dg
import psycopg
from pydantic import Field

from ocp_assets.core.engine import connect
from ocp_assets.core.registry import ClusterRecord, Registry
from ocp_assets.core.storage import DataRoot, open_data_root

DSN_ENV = "OCP_ASSETS_DSN"
DATA_ROOT_ENV = "OCP_ASSETS_DATA_ROOT"
REGISTRY_SCHEMA = "ocp_assets"


STORAGE_URL_ENV = "OCP_ASSETS_DAGSTER_STORAGE_URL"
# Dagster writes the events it plans for a run (one per asset and check) in one statement instead of one each.
EVENT_BATCH_ENV = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = "100"


def dagster_instance_env(dsn: str, database: str) -> dict[str, str]:
    """The environment of dagster.yaml: Dagster's runs and events in `database` on `dsn`'s server, one URL."""
    info = psycopg.conninfo.conninfo_to_dict(dsn)
    user = quote(str(info.get("user", "postgres")), safe="")
    password = f":{quote(str(info['password']), safe='')}" if info.get("password") else ""
    host, port = str(info.get("host", "127.0.0.1")), str(info.get("port", 5432))
    if host.startswith("/"):  # a Unix-socket directory goes in the query, as libpq takes it
        url = f"postgresql+psycopg2://{user}{password}@/{quote(database)}?host={quote(host)}&port={port}"
    else:
        url = f"postgresql+psycopg2://{user}{password}@{host}:{port}/{quote(database)}"
    return {STORAGE_URL_ENV: url, EVENT_BATCH_ENV: EVENT_BATCH_SIZE}


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


class KokuDataLake(dg.ConfigurableResource):
    """Where koku's OCP Parquet lives: a local directory or s3://bucket/prefix (endpoint: OCP_ASSETS_S3_ENDPOINT)."""

    data_root: str = Field(description="data root URI (env OCP_ASSETS_DATA_ROOT)")

    def root(self) -> DataRoot:
        return open_data_root(self.data_root)


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
