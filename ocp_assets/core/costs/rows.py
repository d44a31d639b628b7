"""The columns of the rows koku's cost files insert into the summary, by name, with one Arrow type each.

Each file inserts a subset (``cost_schema``); the writer casts them to koku's column types. Costs koku computes in
float8 are float64; those it computes in numeric (the project file's amounts, the GPU distribution) are
decimal128(33, 15), koku's numeric(33,15), so they are stored digit for digit.
"""

import pyarrow as pa

NUMERIC_33_15 = pa.decimal128(33, 15)
COST_ROW_TYPES: dict[str, pa.DataType] = {
    "report_period_id": pa.int64(),
    "cluster_id": pa.string(),
    "cluster_alias": pa.string(),
    "data_source": pa.string(),
    "usage_start": pa.date32(),
    "usage_end": pa.date32(),
    "namespace": pa.string(),
    "node": pa.string(),
    "resource_id": pa.string(),
    "pod_labels": pa.string(),
    "all_labels": pa.string(),
    "source_uuid": pa.string(),
    "cost_model_rate_type": pa.string(),
    "cost_model_cpu_cost": pa.float64(),
    "cost_model_gpu_cost": pa.float64(),
    "distributed_cost": NUMERIC_33_15,
    "monthly_cost_type": pa.string(),
    "cost_category_id": pa.int64(),
}
# The columns every file writes about where and when (its own cost column and labels come on top).
WHERE_AND_WHEN = (
    "report_period_id", "cluster_id", "cluster_alias", "data_source", "usage_start", "usage_end", "namespace", "node",
)  # fmt: skip


def cost_schema(*names: str, **types: pa.DataType) -> pa.Schema:
    """The schema of a file's rows: `names` in order, each with COST_ROW_TYPES' type unless `types` gives another."""
    return pa.schema([(name, types.get(name, COST_ROW_TYPES[name])) for name in names])
