"""The Dagster code location of ocp_assets: `dagster dev -m ocp_assets.definitions` (workspace.yaml loads it)."""

import os

import dagster as dg

from ocp_assets.defs.assets import IO_MANAGER_KEY, koku_parquet_specs, summary_assets
from ocp_assets.defs.io import IO_ROOT_ENV, ParquetPartitionIOManager
from ocp_assets.defs.resources import (
    DATA_ROOT_ENV,
    DSN_ENV,
    REGISTRY_SCHEMA,
    KokuDataLake,
    SummaryDatabase,
)
from ocp_assets.defs.sensors import koku_parquet_sensor, summary_job

SCHEMA_ENV = "OCP_ASSETS_SCHEMA"  # optional: one tenant schema for every cluster (default: the cluster's account)
REGISTRY_SCHEMA_ENV = "OCP_ASSETS_REGISTRY_SCHEMA"  # optional: where the cluster registry lives (default ocp_assets)
MAX_CONCURRENT_ENV = "OCP_ASSETS_MAX_CONCURRENT"

EXECUTOR_ENV = "OCP_ASSETS_EXECUTOR"  # forkserver (default) | spawn | in_process
# What the forkserver imports before forking step processes: this module plus Dagster's storage and pandera's backends.
# Dagster puts its own first preload (dagster._core.executor.multiprocess) in front unless the list names it: listed
# after ours, it is imported by ours, first, with the collector off (see ocp_assets/defs/preload.py).
PRELOAD_MODULES = ["ocp_assets.defs.preload", "dagster._core.executor.multiprocess"]


def make_executor(kind: str) -> dg.ExecutorDefinition:
    """The run executor. Default: multiprocess with a forkserver that has already imported this module (and so
    dagster, pyarrow, pandas and pandera), Dagster's PostgreSQL storage and pandera's backends (ocp_assets.defs.preload),
    so each step process starts warm. Measured per single-partition run of the tiny test cluster on two cores
    (docs/dagster.md, 2026-11-28): ~11 s forkserver, ~31 s spawn, ~6.5 s in_process (one process, steps in sequence:
    fastest here, but one crash ends the whole run)."""
    max_concurrent = int(os.environ.get(MAX_CONCURRENT_ENV, "2"))
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "spawn":
        return dg.multiprocess_executor.configured({"max_concurrent": max_concurrent, "start_method": {"spawn": {}}})
    if kind != "forkserver":
        raise ValueError(f"{EXECUTOR_ENV}={kind!r}: expected forkserver, spawn or in_process")
    return dg.multiprocess_executor.configured(
        {"max_concurrent": max_concurrent, "start_method": {"forkserver": {"preload_modules": PRELOAD_MODULES}}}
    )


executor = make_executor(os.environ.get(EXECUTOR_ENV, "forkserver"))


def _io_root() -> str | dg.EnvVar:
    if os.environ.get(IO_ROOT_ENV):
        return dg.EnvVar(IO_ROOT_ENV)
    return os.path.join(os.path.abspath(os.environ.get("DAGSTER_HOME", "var/dagster")), "io")


defs = dg.Definitions(
    assets=[*koku_parquet_specs, *summary_assets],
    jobs=[summary_job],
    sensors=[koku_parquet_sensor],
    resources={
        "koku_db": SummaryDatabase(
            dsn=dg.EnvVar(DSN_ENV),
            schema_name=os.environ.get(SCHEMA_ENV, ""),
            registry_schema=os.environ.get(REGISTRY_SCHEMA_ENV, REGISTRY_SCHEMA),
        ),
        "koku_lake": KokuDataLake(data_root=dg.EnvVar(DATA_ROOT_ENV)),
        IO_MANAGER_KEY: ParquetPartitionIOManager(root_uri=_io_root()),
    },
    executor=executor,
)
