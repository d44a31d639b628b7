"""The Dagster code location of ocp_assets: `dagster dev -m ocp_assets.definitions` (workspace.yaml loads it).

Importing this module reads no setting: Dagster calls ``defs`` (``@dg.definitions``) when it loads the code
location, and only then are the settings read from the environment (``Settings.from_environment``).
``build_definitions`` takes them explicitly (tests, the quickstart).
"""

import dagster as dg

from ocp_assets.defs.assets import koku_parquet_specs, summary_asset
from ocp_assets.defs.costs import cost_asset, cost_automation_sensor
from ocp_assets.defs.jobs import costs_job, summary_job
from ocp_assets.defs.partitions import DayPartitions
from ocp_assets.defs.resources import (
    DATA_ROOT_ENV,
    DSN_ENV,
    KokuDataLake,
    SummaryDatabase,
    SummaryEngine,
    s3_resource,
)
from ocp_assets.defs.sensors import koku_parquet_sensor
from ocp_assets.defs.settings import Settings


def build_definitions(settings: Settings) -> dg.Definitions:
    """The code location built from `settings`: the day window of every asset's partitions (the cost model's months
    are those of the days), the resources' values.

    The executor is the setting's (``executor_for``); either way the one step forks its day workers
    (``SummaryEngine``).
    """
    day_partitions = DayPartitions(start_date=settings.start_date, end_date=settings.end_date)
    partitions = day_partitions.definition()
    # One S3 resource: the UI lists it (endpoint, region, profile and where each comes from) and koku_lake reaches
    # S3 through it.
    s3 = s3_resource(settings.s3_variables)
    return dg.Definitions(
        assets=[
            *koku_parquet_specs(partitions),
            summary_asset(partitions),
            cost_asset(day_partitions.month_definition()),
        ],
        jobs=[summary_job, costs_job],
        sensors=[koku_parquet_sensor, cost_automation_sensor],
        resources={
            "koku_db": SummaryDatabase(
                dsn=dg.EnvVar(DSN_ENV), schema_name=settings.schema_name, registry_schema=settings.registry_schema
            ),
            "koku_lake": KokuDataLake(data_root=dg.EnvVar(DATA_ROOT_ENV), s3=s3),
            "s3": s3,
            "summary_engine": SummaryEngine(workers=settings.workers, snapshot_root=settings.snapshot_root),
            "day_partitions": day_partitions,
        },
        executor=executor_for(settings.executor),
    )


# The engine's heavy modules, imported once by the forkserver so that each step process starts from them.
STEP_PRELOAD_MODULES = ["ocp_assets.definitions", "ocp_assets.core.pipeline"]


def executor_for(name: str) -> dg.ExecutorDefinition:
    """multiprocess (default): Dagster's own multiprocess executor, its step processes started by a forkserver that
    has imported the engine once (Dagster's public start_method setting); in_process: the step in the run worker."""
    if name == "in_process":
        return dg.in_process_executor
    return dg.multiprocess_executor.configured(
        {"start_method": {"forkserver": {"preload_modules": STEP_PRELOAD_MODULES}}}, name="multiprocess"
    )


@dg.definitions
def defs() -> dg.Definitions:
    """What Dagster loads: the code location with the settings of the environment it is loaded in."""
    return build_definitions(Settings.from_environment())
