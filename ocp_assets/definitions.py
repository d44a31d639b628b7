"""The Dagster code location of ocp_assets: `dagster dev -m ocp_assets.definitions` (workspace.yaml loads it)."""

import os

import dagster as dg

# Private: Dagster's public multiprocess executor offers only spawn and forkserver. Both pay the imports of dagster,
# pyarrow, pandas and pandera again for each run (about 3 s on two cores, docs/dagster.md "Executor"); a forked
# step process inherits them and starts in about 0.1 s.
from dagster._core.execution.retries import RetryMode
from dagster._core.executor.multiprocess import MultiprocessExecutor

from ocp_assets.defs.assets import koku_parquet_specs, summary_assets
from ocp_assets.defs.resources import (
    DATA_ROOT_ENV,
    DSN_ENV,
    REGISTRY_SCHEMA,
    KokuDataLake,
    SummaryDatabase,
    SummaryEngine,
    s3_resource_from_environment,
)
from ocp_assets.defs.sensors import koku_parquet_sensor, summary_job

SCHEMA_ENV = "OCP_ASSETS_SCHEMA"  # optional: one tenant schema for every cluster (default: the cluster's account)
REGISTRY_SCHEMA_ENV = "OCP_ASSETS_REGISTRY_SCHEMA"  # optional: where the cluster registry lives (default ocp_assets)
SNAPSHOT_ROOT_ENV = "OCP_ASSETS_SNAPSHOT_ROOT"  # optional: keep each stage's tables as Parquet there
EXECUTOR_ENV = "OCP_ASSETS_EXECUTOR"  # multiprocess (default, forked step) | forkserver | in_process
WORKERS_ENV = "OCP_ASSETS_WORKERS"  # cluster-days computed at once in a run (default 2; 1 with in_process)
DEFAULT_WORKERS = 2
# What the forkserver imports before forking step processes (OCP_ASSETS_EXECUTOR=forkserver only).
PRELOAD_MODULES = ["ocp_assets.defs.preload", "dagster._core.executor.multiprocess"]


@dg.executor(name="multiprocess_fork", requirements=dg.multiple_process_executor_requirements())
def fork_multiprocess_executor(_init_context) -> MultiprocessExecutor:
    """Dagster's multiprocess executor with the step process forked from the run worker (one step per run here).

    The run worker imports the engine (pyarrow compute, pandas, pandera) and sets up pandera here, before it forks:
    the step starts warm and shares those pages with its parent instead of holding its own copy. The code server,
    which loads this module too, never creates an executor and stays without them.
    """
    import gc

    from ocp_assets.core import pipeline  # noqa: F401
    from ocp_assets.core.validation import warm_up

    warm_up()
    gc.freeze()  # the forked step's collections then leave the inherited heap (and its pages) alone
    return MultiprocessExecutor(retries=RetryMode.ENABLED, max_concurrent=DEFAULT_WORKERS, start_method="fork")


def make_executor(kind: str) -> dg.ExecutorDefinition:
    """The run executor (docs/dagster.md "Executor" has the measurements behind the default)."""
    if kind == "multiprocess":
        return fork_multiprocess_executor
    if kind == "in_process":
        return dg.in_process_executor
    if kind == "forkserver":
        return dg.multiprocess_executor.configured(
            {"max_concurrent": DEFAULT_WORKERS, "start_method": {"forkserver": {"preload_modules": PRELOAD_MODULES}}}
        )
    raise ValueError(f"{EXECUTOR_ENV}={kind!r}: expected multiprocess, forkserver or in_process")


EXECUTOR_KIND = os.environ.get(EXECUTOR_ENV, "multiprocess")
WORKERS = int(os.environ.get(WORKERS_ENV, "1" if EXECUTOR_KIND == "in_process" else str(DEFAULT_WORKERS)))

# One S3 resource: the UI lists it (endpoint, region, profile and where each comes from) and koku_lake reaches S3
# through it.
s3 = s3_resource_from_environment()

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
        "koku_lake": KokuDataLake(data_root=dg.EnvVar(DATA_ROOT_ENV), s3=s3),
        "s3": s3,
        "summary_engine": SummaryEngine(workers=WORKERS, snapshot_root=os.environ.get(SNAPSHOT_ROOT_ENV, "")),
    },
    executor=make_executor(EXECUTOR_KIND),
)
