"""What one check found for one cluster-day, the names of the checks, and what each stage of the summary is.

The one outcome type of the validation suite: pandera models (``validation.validate_frame``) and koku's
invariants (``consistency``) both return a ``CheckOutcome``; the Dagster layer turns it into a per-partition
asset check evaluation and the CLI into an error message.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pandas is imported where failure cases are built, not on the code location's load path
    import pandas as pd

NO_DATA = "no koku data for this day"

# ------------------------------------------------------------------ the stages of a cluster-day, in order
RAW_POD_USAGE = "raw_pod_usage"
RAW_STORAGE_USAGE = "raw_storage_usage"
DEDUPLICATED_LABELS = "deduplicated_labels"
MERGED_LABEL_CHUNKS = "merged_label_chunks"
DAILY_SUMMARY = "daily_summary"
RAW_GPU_USAGE = "raw_gpu_usage"
GPU_SUMMARY = "gpu_summary"
# Two independent branches, each ending in a koku table: the usage summary and the GPU summary (koku's UI-summary
# step after it, reading only the GPU line items). A run goes through each branch up to its last selected stage.
USAGE_STAGES = (RAW_POD_USAGE, RAW_STORAGE_USAGE, DEDUPLICATED_LABELS, MERGED_LABEL_CHUNKS, DAILY_SUMMARY)
GPU_STAGES = (RAW_GPU_USAGE, GPU_SUMMARY)
BRANCHES = (USAGE_STAGES, GPU_STAGES)
STAGES = USAGE_STAGES + GPU_STAGES
BRANCH_OF = {stage: branch for branch in BRANCHES for stage in branch}
SUMMARY_STAGES = tuple(branch[-1] for branch in BRANCHES)  # the stages that write koku's PostgreSQL

# ------------------------------------------------------------------ input validation (pandera), one per stage
POD_USAGE_SCHEMA = "pod_usage_schema"
STORAGE_USAGE_SCHEMA = "storage_usage_schema"
LABELS_SCHEMA = "labels_schema"
MERGED_ROWS_SCHEMA = "merged_rows_schema"
SUMMARY_SCHEMA = "summary_schema"
# ------------------------------------------------------------------ koku's invariants (the IQE-style suite)
LABEL_PRECEDENCE = "label_precedence"
USAGE_CONSERVED = "usage_conserved"
UNALLOCATED_IS_CAPACITY_MINUS_PODS = "unallocated_is_capacity_minus_pods"
CLUSTER_CAPACITY_IS_NODE_SUM = "cluster_capacity_is_node_sum"
NO_DUPLICATE_KEYS = "no_duplicate_keys"
LABEL_KEYS_ALLOWED = "label_keys_allowed"
STORAGE_MONTHS_FORMULA = "storage_months_formula"
ROWS_IN_POSTGRESQL = "rows_in_postgresql"
# ------------------------------------------------------------- warnings: legal but suspicious (core.warning_checks)
USAGE_WITHIN_CAPACITY = "usage_within_capacity"
UNALLOCATED_NOT_NEGATIVE = "unallocated_not_negative"
ROWS_LIKE_RECENT_DAYS = "rows_like_recent_days"
# A failed warning never stops its summary (the rows are written and the materialization succeeds); Dagster shows it
# as a warning (severity WARN, not blocking) and the CLI prints it on stderr.
WARNING_CHECKS = frozenset({USAGE_WITHIN_CAPACITY, UNALLOCATED_NOT_NEGATIVE, ROWS_LIKE_RECENT_DAYS})
# ------------------------------------------------------------------ the GPU summary's
GPU_USAGE_SCHEMA = "gpu_usage_schema"
GPU_COUNTS_CONSERVED = "gpu_counts_conserved"
GPU_ONE_ROW_PER_KEY = "gpu_one_row_per_key"
GPU_CAPACITY_NOT_NEGATIVE = "gpu_capacity_not_negative"
GPU_ROWS_IN_POSTGRESQL = "gpu_rows_in_postgresql"

# Which stage each check judges, in the order they run.
CHECKS_BY_STAGE: dict[str, tuple[str, ...]] = {
    RAW_POD_USAGE: (POD_USAGE_SCHEMA,),
    RAW_STORAGE_USAGE: (STORAGE_USAGE_SCHEMA,),
    DEDUPLICATED_LABELS: (LABELS_SCHEMA,),
    MERGED_LABEL_CHUNKS: (MERGED_ROWS_SCHEMA, LABEL_PRECEDENCE),
    DAILY_SUMMARY: (
        SUMMARY_SCHEMA,
        USAGE_CONSERVED,
        UNALLOCATED_IS_CAPACITY_MINUS_PODS,
        CLUSTER_CAPACITY_IS_NODE_SUM,
        NO_DUPLICATE_KEYS,
        LABEL_KEYS_ALLOWED,
        STORAGE_MONTHS_FORMULA,
        ROWS_IN_POSTGRESQL,
        USAGE_WITHIN_CAPACITY,
        UNALLOCATED_NOT_NEGATIVE,
        ROWS_LIKE_RECENT_DAYS,
    ),
    RAW_GPU_USAGE: (GPU_USAGE_SCHEMA,),
    GPU_SUMMARY: (GPU_COUNTS_CONSERVED, GPU_ONE_ROW_PER_KEY, GPU_CAPACITY_NOT_NEGATIVE, GPU_ROWS_IN_POSTGRESQL),
}
STAGE_OF_CHECK = {name: stage for stage, names in CHECKS_BY_STAGE.items() for name in names}


def blocks(name: str, outcome: CheckOutcome) -> bool:
    """Whether the outcome of check `name` fails its branch: a failed check that is not a warning."""
    return not outcome.passed and name not in WARNING_CHECKS


def warns(name: str, outcome: CheckOutcome) -> bool:
    """Whether the outcome of check `name` is a warning to show (the summary was written all the same)."""
    return not outcome.passed and name in WARNING_CHECKS


def last_stages(stages: set[str] | frozenset[str] | tuple[str, ...]) -> tuple[str, ...]:
    """The last of the given stages in each branch, in branch order: how far a run goes in each branch."""
    return tuple(max(chosen, key=branch.index) for branch in BRANCHES if (chosen := [s for s in stages if s in branch]))


# What each check verifies, in a cost engineer's words (shown in the UI and the CLI).
CHECK_DESCRIPTIONS = {
    POD_USAGE_SCHEMA: "The day's pod usage files are readable and valid: every column has koku's type, seconds and "
    "bytes are not negative, pod labels are JSON objects, and each node has one capacity.",
    STORAGE_USAGE_SCHEMA: "The day's storage usage files are readable and valid: bytes are not negative and volume "
    "labels are JSON objects.",
    LABELS_SCHEMA: "The day's node and namespace label files are readable, every label is a JSON object, and each "
    "node and namespace ends up with exactly one label set.",
    MERGED_ROWS_SCHEMA: "Every pod row has its node and a merged label set; every storage row is spread over at least "
    "one node; the node inventory is valid.",
    LABEL_PRECEDENCE: "On a sample of pod rows, the merged labels are the node's, overridden by the namespace's, "
    "overridden by the pod's own, exactly as koku merges them.",
    SUMMARY_SCHEMA: "The summary rows are valid before they are written: data source Pod or Storage, one day, "
    "labels as JSON, no negative capacity or storage.",
    USAGE_CONSERVED: "CPU and memory usage, request, limit and effective usage add up to the same totals in the "
    "summary's pod rows as in the raw pod rows: nothing lost or counted twice.",
    UNALLOCATED_IS_CAPACITY_MINUS_PODS: "For every node, the unallocated row equals the node's capacity minus what "
    "its pods used or requested.",
    CLUSTER_CAPACITY_IS_NODE_SUM: "The cluster capacity on every pod row equals the sum of the day's node capacities.",
    NO_DUPLICATE_KEYS: "No two summary rows describe the same namespace, node, labels (or volume).",
    LABEL_KEYS_ALLOWED: "Only label keys enabled in koku (plus vm_kubevirt_io_name and tag-mapping parents) appear "
    "in the summary; no mapped child key is left.",
    STORAGE_MONTHS_FORMULA: "Storage gigabyte-months follow koku's formula: byte-seconds over the seconds of the "
    "day's month, in GiB, shared among the volume's nodes.",
    ROWS_IN_POSTGRESQL: "What PostgreSQL holds for the cluster-day after the write equals what was computed: rows per "
    "data source and every measure's total.",
    USAGE_WITHIN_CAPACITY: "Warning only: the pods' CPU and memory usage stays within capacity, for the cluster "
    "and for each node (more usage than capacity means a wrong capacity or doubled usage in the report). Records the "
    "cluster's utilisation either way.",
    UNALLOCATED_NOT_NEGATIVE: "Warning only: no node's unallocated row is negative (its pods used or requested more "
    "than the node's capacity; koku keeps such a figure as it is).",
    ROWS_LIKE_RECENT_DAYS: "Warning only: the day has at least half the median row count of the cluster's days "
    "in PostgreSQL over the 7 days before it (fewer suggests a lost or partial upload). Passes, saying so, without "
    "such a day.",
    GPU_USAGE_SCHEMA: "The day's GPU usage files are readable and valid: GPU memory and MIG sizes are not negative, "
    "MIG slice counts are whole numbers, and names fit koku's column lengths.",
    GPU_COUNTS_CONSERVED: "Every GPU (or MIG instance) the raw rows show in a namespace is counted once: per "
    "namespace, the summary's GPU count equals the distinct GPUs and MIG instances (per node, model and MIG profile) "
    "of its raw rows.",
    GPU_ONE_ROW_PER_KEY: "No two GPU summary rows describe the same namespace, node, vendor, model, MIG profile, MIG "
    "instance and GPU.",
    GPU_CAPACITY_NOT_NEGATIVE: "GPU memory, MIG memory, GPU counts and MIG slices in the summary are not negative.",
    GPU_ROWS_IN_POSTGRESQL: "What PostgreSQL holds for the cluster-day's GPU summary after the write equals what was "
    "computed: rows, GPU count and memory totals.",
}


@dataclass
class CheckOutcome:
    """One check on one cluster-day: passed or not, why, the numbers compared and (pandera) the failure cases."""

    passed: bool
    description: str
    metadata: dict[str, object] = field(default_factory=dict)
    failure_cases: pd.DataFrame | None = (
        None  # pandera's (schema_context, column, check, failure_case, index), truncated
    )
    rows: int = 0
    failures: int = 0  # every failure case, before truncation


def combine(outcomes: dict[str, CheckOutcome]) -> CheckOutcome:
    """Several tables judged by one check: passed if all passed; failure cases tagged with the table they came from."""
    failed = {name: o for name, o in outcomes.items() if not o.passed}
    rows = sum(o.rows for o in outcomes.values())
    metadata: dict[str, object] = {f"{name}_rows": o.rows for name, o in outcomes.items()}
    if not failed:
        return CheckOutcome(True, "; ".join(o.description for o in outcomes.values()), metadata, rows=rows)
    frames = [
        o.failure_cases.assign(table=name)
        for name, o in failed.items()
        if o.failure_cases is not None and not o.failure_cases.empty
    ]
    if frames:
        import pandas as pd

        cases = pd.concat(frames, ignore_index=True)
    else:
        cases = None
    for o in failed.values():
        metadata.update(o.metadata)
    return CheckOutcome(
        False,
        "; ".join(f"{name}: {o.description}" for name, o in failed.items()),
        metadata,
        failure_cases=cases,
        rows=rows,
        failures=sum(o.failures for o in failed.values()),
    )


def percent(part: float, whole: float) -> float | None:
    """part / whole as a percentage, None without a whole (a cluster without capacity): the utilisation a warning
    check reports and the Dagster metadata shows (here so that the metadata needs no check module)."""
    return round(100.0 * part / whole, 1) if whole else None
