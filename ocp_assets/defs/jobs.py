"""The code location's jobs: the cluster-day summary, which the sensor, the quickstart and the benchmarks launch."""

import dagster as dg

from ocp_assets.defs.assets import GROUP

JOB_NAME = "summarize_cluster_days"

summary_job = dg.define_asset_job(
    JOB_NAME,
    selection=dg.AssetSelection.groups(GROUP),
    description="The cluster-day summary: read koku's Parquet, deduplicate and merge labels, write koku's PostgreSQL, "
    "run every check.",
)
