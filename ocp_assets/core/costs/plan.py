"""The steps koku takes for a source's cost model over one month piece, in koku's order (contract 8.2), as data.

A step is one of koku's deletes or one call of a file of section 8 with koku's parameter dict (8.3). koku's
PostgreSQL-only steps between them (usage rates, monthly node/cluster/PVC costs, markup, the other distributions)
stay koku's (D8) and are not planned; their deletes are, because a standalone run replaces what koku's run would
(C3). ``piece_steps`` plans the cost-model pass of a piece; ``distribution_steps`` the GPU distribution koku runs
after it, for the month ``gpu.gpu_distribution_run`` chooses (8.8).
"""

import datetime as dt
from dataclasses import dataclass, field

from ocp_assets.core.costs.gpu import GpuDistributionRun
from ocp_assets.core.costs.rates import (
    INFRASTRUCTURE,
    SUPPLEMENTARY,
    VM_CORE_HOUR,
    VM_CORE_MONTH,
    VM_HOUR,
    ResolvedRates,
    vm_calls,
)
from ocp_assets.core.layout import days_in_month, month_end, month_start

GPU_MONTH, PROJECT_MONTH = "gpu_cost_per_month", "project_per_month"
# koku's OCPUsageLineItemDailySummary.MONTHLY_COST_RATE_MAP order: each monthly cost type's rows are deleted before
# its file runs, whether or not the model has that rate.
MONTHLY_COST_TYPES = ("Node", "Node_Core_Month", "Cluster", "PVC", "OCP_VM", "OCP_VM_CORE")
# The tag files in populate_tag_based_costs' order, with the parameters each adds to a tag parameter set.
TAG_FILES = (
    (VM_HOUR, "hourly_cost_vm_tag_based.sql", ("use_fractional_hours",)),
    (VM_CORE_MONTH, "monthly_vm_core_tag_based.sql", ("amortized_denominator", "cost_type")),
    (VM_CORE_HOUR, "hourly_vm_core_tag_based.sql", ()),
    (GPU_MONTH, "monthly_cost_gpu.sql", ("amortized_denominator", "cost_type", "cluster_id", "cluster_alias")),
    (
        PROJECT_MONTH,
        "monthly_project_tag_based.sql",
        ("amortized_denominator", "cost_type", "cluster_id", "cluster_alias"),
    ),
)


@dataclass(frozen=True)
class Delete:
    """One of koku's deletes of 8.2 on the summary: `kind` is usage, monthly, tag or distributed."""

    kind: str
    params: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    """One call of a koku file with koku's parameter dict."""

    file: str
    params: dict = field(default_factory=dict)


Step = Delete | Call


@dataclass(frozen=True)
class Cluster:
    """What koku passes as cluster_params: the cluster id (no GPU call without it) and alias."""

    cluster_id: str | None
    cluster_alias: str | None


def piece_steps(rates: ResolvedRates, base: dict, cluster: Cluster) -> list[Step]:
    """The cost-model pass of one piece (update_summary_cost_model_costs, legacy path): usage deletes, monthly
    deletes with monthly VM core, tag deletes and the tag files, then the hourly VM files (8.2 "Order")."""
    tiered = vm_calls(rates, base)
    monthly_core = [call for call in tiered if call[0] == "monthly_vm_core.sql"]
    steps: list[Step] = [Delete("usage", {**base, "rate_type": kind}) for kind in (INFRASTRUCTURE, SUPPLEMENTARY)]
    for cost_type in MONTHLY_COST_TYPES:
        steps.append(Delete("monthly", {**base, "cost_type": cost_type}))
        if cost_type == "OCP_VM_CORE":
            steps += [Call(file, params) for file, params in monthly_core]
    # koku deletes the Tag and Node_Core_Hour rows whether or not the model has tag rates.
    steps += [Delete("tag", {**base, "monthly_cost_type": kind}) for kind in ("Tag", "Node_Core_Hour")]
    steps += _tag_calls(rates, base, cluster)
    steps += [Call(file, params) for file, params in tiered if file != "monthly_vm_core.sql"]
    return steps


def _tag_calls(rates: ResolvedRates, base: dict, cluster: Cluster) -> list[Step]:
    start = dt.date.fromisoformat(base["start_date"])
    extra = {
        "use_fractional_hours": True,  # on-prem the VM line-item table always exists
        "amortized_denominator": days_in_month(start),
        "cost_type": "Tag",
        "cluster_id": cluster.cluster_id,
        "cluster_alias": cluster.cluster_alias,
    }
    calls: list[Step] = []
    for metric, file, added in TAG_FILES:
        if metric == GPU_MONTH and not cluster.cluster_id:
            continue  # koku: "No cluster_id found, skipping GPU tag based cost population"
        for tag_params in rates.tag_rates.get(metric, []):
            calls.append(Call(file, {**base, **tag_params, **{key: extra[key] for key in added}}))
    return calls


def month_of(day: dt.date) -> tuple[dt.date, dt.date]:
    return month_start(day), month_end(day)


def distribution_steps(run: GpuDistributionRun, schema: str, source: str, report_period_id: int) -> list[Step]:
    """koku's GPU distribution of one month (``gpu.gpu_distribution_run`` decides which, if any): the month's
    gpu_distributed rows are deleted even when the setting is off; the file runs when it is on."""
    params = run.koku_params(schema, source, report_period_id)
    steps: list[Step] = [Delete("distributed", params)]
    if run.distribute:
        steps.append(Call("distribute_unallocated_gpu_cost.sql", params))
    return steps
