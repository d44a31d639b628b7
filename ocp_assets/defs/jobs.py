"""The code location's jobs: the cluster-day summary, which the sensor, the quickstart and the benchmarks launch, and
the cluster-month cost model (the automation sensor and the UI launch the cost asset without it; a job names it for
`dagster job launch` and execute_job)."""

import dagster as dg

from ocp_assets.defs.assets import GROUP
from ocp_assets.defs.costs import COSTS_GROUP

JOB_NAME = "summarize_cluster_days"
COSTS_JOB_NAME = "apply_cost_model_by_month"

summary_job = dg.define_asset_job(
    JOB_NAME,
    selection=dg.AssetSelection.groups(GROUP),
    description="The cluster-day summary: read koku's Parquet, deduplicate and merge labels, write koku's PostgreSQL, "
    "run every check.",
)

costs_job = dg.define_asset_job(
    COSTS_JOB_NAME,
    selection=dg.AssetSelection.groups(COSTS_GROUP),
    description="The cost model of cluster-months: koku's deletes and cost files in koku's order, one transaction per "
    "month, every cost check.",
)
