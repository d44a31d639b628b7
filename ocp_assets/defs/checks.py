"""Asset-check names (constants used everywhere), their specs, and the conversion of core outcomes to results.

Every check runs inside the step of the asset it checks (``check_specs=`` on the asset): a standalone
@asset_check would be one more process per partition under the multiprocess executor. All are blocking:
a failed schema check stops the partition before anything downstream (or PostgreSQL) is touched, and a
failed summary check rolls the cluster-day's transaction back. The check functions are pure and live in
``ocp_assets.core.validation`` (pandera models) and ``ocp_assets.core.consistency`` (koku invariants).
"""

import json
from collections.abc import Mapping

import dagster as dg

from ocp_assets.core.consistency import CheckOutcome
from ocp_assets.core.validation import ValidationReport, failure_cases_markdown

# ------------------------------------------------------------------ input validation (pandera), per asset
POD_USAGE_SCHEMA = "pod_usage_schema"
NODE_CAPACITY_SCHEMA = "node_capacity_schema"
STORAGE_USAGE_SCHEMA = "storage_usage_schema"
NODE_LABELS_SCHEMA = "node_labels_schema"
NAMESPACE_LABELS_SCHEMA = "namespace_labels_schema"
POD_USAGE_LABELLED_SCHEMA = "pod_usage_labelled_schema"
STORAGE_USAGE_LABELLED_SCHEMA = "storage_usage_labelled_schema"
NODE_INVENTORY_SCHEMA = "node_inventory_schema"
SUMMARY_SCHEMA = "summary_schema"
# ------------------------------------------------------------------ koku invariants (the IQE suite)
LABEL_PRECEDENCE = "label_precedence"
USAGE_CONSERVED = "usage_conserved"
UNALLOCATED_IS_CAPACITY_MINUS_PODS = "unallocated_is_capacity_minus_pods"
CLUSTER_CAPACITY_IS_NODE_SUM = "cluster_capacity_is_node_sum"
NO_DUPLICATE_KEYS = "no_duplicate_keys"
LABEL_KEYS_ALLOWED = "label_keys_allowed"
STORAGE_MONTHS_FORMULA = "storage_months_formula"
ROWS_IN_POSTGRESQL = "rows_in_postgresql"

DESCRIPTIONS = {
    POD_USAGE_SCHEMA: "pod_daily rows readable and valid: types, non-negative seconds/bytes, pod_labels JSON objects",
    NODE_CAPACITY_SCHEMA: "node capacity of the day: one row per node, non-negative seconds",
    STORAGE_USAGE_SCHEMA: "storage_daily rows readable and valid: non-negative bytes, PV/PVC labels JSON objects",
    NODE_LABELS_SCHEMA: "node_labels rows readable, label JSON objects; one deduplicated map per node",
    NAMESPACE_LABELS_SCHEMA: "namespace_labels rows readable, label JSON objects; one deduplicated map per namespace",
    POD_USAGE_LABELLED_SCHEMA: "labelled pod rows: node set, merged label map present",
    STORAGE_USAGE_LABELLED_SCHEMA: "labelled storage rows: merged volume labels present, node count >= 1",
    NODE_INVENTORY_SCHEMA: "node inventory rows (reporting_ocp_nodes candidates) valid",
    SUMMARY_SCHEMA: "summary rows valid before the write: data_source in (Pod, Storage), one day, JSON labels",
    LABEL_PRECEDENCE: "on a sample of pod rows, merged labels = node, then namespace, then pod (later wins)",
    USAGE_CONSERVED: "usage/request/limit/effective totals of raw pod rows (node != '') = totals of summary Pod rows",
    UNALLOCATED_IS_CAPACITY_MINUS_PODS: "per node, the unallocated row = node capacity − Σ pod rows (not clamped)",
    CLUSTER_CAPACITY_IS_NODE_SUM: "cluster capacity on every Pod row = Σ node capacities of the day",
    NO_DUPLICATE_KEYS: "no two summary rows share a group key",
    LABEL_KEYS_ALLOWED: "only enabled label keys plus vm_kubevirt_io_name appear in the summary",
    STORAGE_MONTHS_FORMULA: "storage gigabyte-months = byte-seconds / (86400 × days in month) × 2^-30 (÷ node count)",
    ROWS_IN_POSTGRESQL: "rows read back from PostgreSQL = rows computed (count per data_source and per-measure totals)",
}


def spec(name: str, asset: str) -> dg.AssetCheckSpec:
    return dg.AssetCheckSpec(name=name, asset=asset, description=DESCRIPTIONS[name], blocking=True)


def _partition_metadata(outcome: CheckOutcome | ValidationReport) -> dict[str, object]:
    if isinstance(outcome, ValidationReport):
        return {"passed": outcome.ok, "message": outcome.message, "rows": outcome.rows, "failures": outcome.failures}
    return {"passed": outcome.passed, "message": outcome.description, **outcome.metadata}


def _passed(outcome: CheckOutcome | ValidationReport) -> bool:
    return outcome.ok if isinstance(outcome, ValidationReport) else outcome.passed


def _message(outcome: CheckOutcome | ValidationReport) -> str:
    return outcome.message if isinstance(outcome, ValidationReport) else outcome.description


def result(name: str, asset: str, outcomes: Mapping[str, CheckOutcome | ValidationReport]) -> dg.AssetCheckResult:
    """One result for the step's partitions (one, or a range): passed only if every partition passed.

    A single partition's numbers go to the metadata as they are; a range gets one entry per partition.
    Pandera failure cases (first 20) appear as a markdown table and as JSON.
    """
    failed = {p: o for p, o in outcomes.items() if not _passed(o)}
    metadata: dict[str, object] = {"partitions": len(outcomes), "failed_partitions": sorted(failed)}
    if len(outcomes) == 1:
        (outcome,) = outcomes.values()
        for key, value in _partition_metadata(outcome).items():
            metadata[key] = _metadata_value(value)
    else:
        metadata["by_partition"] = dg.MetadataValue.json(
            {p: json.loads(json.dumps(_partition_metadata(o), default=str)) for p, o in outcomes.items()}
        )
    reports = [(p, o) for p, o in failed.items() if isinstance(o, ValidationReport) and not o.failure_cases.empty]
    if reports:
        partition, report = reports[0]
        metadata["failure_cases"] = dg.MetadataValue.md(f"partition `{partition}`\n\n" + failure_cases_markdown(report))
        metadata["failure_cases_json"] = dg.MetadataValue.json(
            json.loads(report.failure_cases.to_json(orient="records", default_handler=str))
        )
    if failed:
        first, outcome = next(iter(sorted(failed.items())))
        description = f"{len(failed)} of {len(outcomes)} partition(s) failed; {first}: {_message(outcome)}"
    else:
        description = _message(next(iter(outcomes.values()))) if len(outcomes) == 1 else f"passed on {len(outcomes)} partitions"
    return dg.AssetCheckResult(
        asset_key=asset, check_name=name, passed=not failed, metadata=metadata, description=description[:2000]
    )


def not_evaluated(name: str, asset: str, reason: str, partitions: list[str]) -> dg.AssetCheckResult:
    """A check whose inputs could not be produced counts as failed (blocking), with the reason."""
    return dg.AssetCheckResult(
        asset_key=asset, check_name=name, passed=False, description=f"not evaluated: {reason}"[:2000],
        metadata={"partitions": len(partitions), "failed_partitions": sorted(partitions), "reason": reason},
    )


def _metadata_value(value: object) -> object:
    if isinstance(value, (dict, list)):
        return dg.MetadataValue.json(json.loads(json.dumps(value, default=str)))
    return value
