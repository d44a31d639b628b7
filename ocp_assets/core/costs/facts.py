"""What one cluster-month's cost steps came to, in numbers and in a sentence (the CLI's line, Dagster's metadata).

``month_facts`` sums a ``month.MonthCosts``: rows and cost per file and cost type, the VMs, GPU models and
namespaces costed, rows deleted; ``month_status`` says what the month's run did.
"""

import json
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from ocp_assets.core.costs.checks import COST_COLUMNS
from ocp_assets.core.costs.month import MonthCosts

VM_LABEL = "vm_kubevirt_io_name"
GPU_MODEL_LABEL = "gpu-model"


@dataclass
class MonthFacts:
    """The numbers of one month's cost rows: per cost type and file, and what was costed."""

    cost_by_type: dict[str, float] = field(default_factory=dict)
    files: dict[str, dict[str, float]] = field(default_factory=dict)  # file -> rows and cost per cost type
    vms: set[str] = field(default_factory=set)
    gpu_models: set[str] = field(default_factory=set)
    namespaces: set[str] = field(default_factory=set)
    rows: int = 0
    deleted: int = 0


def _label(text: str | None, key: str) -> str | None:
    try:
        value = json.loads(text) if text else None
    except ValueError:
        return None
    return value.get(key) if isinstance(value, dict) else None


def _labels(texts: list[str], key: str) -> set[str]:
    """The values of label `key` in label JSON texts (VM names from pod_labels, GPU models from all_labels)."""
    return {value for text in texts if (value := _label(text, key))}


def _distinct(rows: pa.Table, column: str) -> list:
    return [v for v in pc.unique(rows[column]).to_pylist() if v is not None] if column in rows.column_names else []


def _costs_by_type(rows: pa.Table) -> dict[str, float]:
    """Sum of every cost column present, per cost_model_rate_type."""
    present = [c for c in COST_COLUMNS if c in rows.column_names]
    if not present or rows.num_rows == 0:
        return {}
    summed = rows.group_by("cost_model_rate_type", use_threads=False).aggregate([(c, "sum") for c in present])
    return {
        kind: sum(float(summed[f"{c}_sum"][i].as_py() or 0) for c in present)
        for i, kind in enumerate(summed["cost_model_rate_type"].to_pylist())
        if kind is not None
    }


def month_facts(done: MonthCosts) -> MonthFacts:
    """What one month's steps wrote: rows and cost per file and cost type, VMs, GPU models and namespaces costed."""
    facts = MonthFacts(deleted=sum(step.deleted for step in done.steps))
    for step in done.steps:
        if step.rows is None:
            continue
        name = step.name.removesuffix(".sql")
        per_file = facts.files.setdefault(name, {"rows": 0})
        per_file["rows"] += step.inserted
        facts.rows += step.inserted
        for kind, cost in _costs_by_type(step.rows).items():
            per_file[kind] = per_file.get(kind, 0.0) + cost
            facts.cost_by_type[kind] = facts.cost_by_type.get(kind, 0.0) + cost
        facts.namespaces.update(_distinct(step.rows, "namespace"))
        facts.vms.update(_labels(_distinct(step.rows, "pod_labels"), VM_LABEL))
        facts.gpu_models.update(_labels(_distinct(step.rows, "all_labels"), GPU_MODEL_LABEL))
    return facts


def month_status(done: MonthCosts) -> str:
    """In a sentence: what the month's run did (no report period, no cost model or price list, or costed)."""
    if done.report_period_id is None:
        return (
            f"no report period of source {done.source} for {done.first:%Y-%m}: nothing was summarised that month, "
            "so nothing was costed"
        )
    if done.model_state is not None:
        return f"{done.model_state}: koku's deletes ran, no cost rows were written"
    return "costed"
