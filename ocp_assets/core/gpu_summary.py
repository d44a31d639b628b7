"""koku's GPU usage summary of one cluster-day (``reporting_ocp_gpu_summary_p``): read, compute, check, facts.

The semantics are koku's self-hosted ``ui_summary/reporting_ocp_gpu_summary_p_usage_only.sql`` (D1): it reads the
hourly ``openshift_gpu_usage_line_items`` of the source's month folder, one output row per (namespace, node,
vendor, model, MIG profile, day, MIG instance, GPU uuid), with

* ``memory_capacity_gb`` / ``mig_memory_capacity_gb`` = max(MiB) x 0.001048576 (MiB to GB, 2^20 / 10^9),
* ``gpu_count`` = count(DISTINCT coalesce(mig_instance_id, gpu_uuid)),
* ``gpu_mode`` = 'MIG' when the row has a non-empty MIG profile, else 'dedicated',
* ``cost_category_id`` = max over the cost-category namespace LIKE patterns the namespace matches.

One deliberate difference: koku groups on the raw ``mig_profile`` but writes ``NULLIF(mig_profile, '')``, so a GPU
reported with both '' and NULL profiles on one day would give two identical-looking rows and count twice; here the
group key is the NULLIF'd profile (D2's no double counting), which is the same wherever the input is consistent.

Everything is computed on whole Arrow columns (pyarrow compute); the rows are written by ``writer.replace_gpu_rows``
in the GPU summary's own transaction (``transaction.commit_or_rehearse``), as the usage summary's are.
"""

import datetime as dt
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from ocp_assets.core import outcomes as O
from ocp_assets.core.consistency import close, column_total, distinct_count, duplicate_keys
from ocp_assets.core.layout import GPU_USAGE, month_prefix
from ocp_assets.core.outcomes import CheckOutcome
from ocp_assets.core.reader import DOUBLE, STRING, ColumnSpec, DayTable, read_day_rows
from ocp_assets.core.storage import DataRoot
from ocp_assets.core.summary import constant_column, cost_category_ids

MIB_TO_GB = 0.001048576  # koku's factor: 2^20 bytes per MiB / 10^9 bytes per GB
MODE_MIG = "MIG"
MODE_DEDICATED = "dedicated"
MAX_EXAMPLES = 10

# The hourly gpu_usage Parquet columns the summary reads. The MIG columns are optional: an older operator does not
# send them (koku adds them empty), and a cluster without MIG GPUs may carry them as all-NULL columns. The MIG counts
# are read as double (koku's Trino tables type them so, its Parquet may hold int64 or double) and validated whole.
GPU_USAGE_COLUMNS = [
    ColumnSpec("interval_start", pa.timestamp("ms")),
    *[ColumnSpec(name, STRING) for name in ("namespace", "node", "gpu_uuid", "gpu_model_name", "gpu_vendor_name")],
    ColumnSpec("pod", STRING, required=False),
    ColumnSpec("gpu_memory_capacity_mib", DOUBLE),
    *[ColumnSpec(name, STRING, required=False) for name in ("mig_instance_id", "mig_profile", "mig_strategy")],
    *[
        ColumnSpec(name, DOUBLE, required=False)
        for name in ("mig_slice_count", "gpu_max_slices", "mig_memory_capacity_mib")
    ],
]

# The SQL's GROUP BY (usage_start is the cluster-day itself), with the MIG profile NULLIF'd (see the module text).
GROUP_KEYS = ("namespace", "node", "gpu_vendor_name", "gpu_model_name", "mig_profile", "mig_instance_id", "gpu_uuid")
# The same key in the summary's own column names: what makes a row unique.
ROW_KEY = (
    "usage_start",
    "namespace",
    "node",
    "vendor_name",
    "model_name",
    "mig_profile",
    "mig_instance_id",
    "gpu_uuid",
)

# The computed rows, in the order and types of the temporary table they are copied into (koku's column names).
GPU_ROWS_SCHEMA = pa.schema(
    [
        ("cluster_id", pa.string()),
        ("cluster_alias", pa.string()),
        ("usage_start", pa.date32()),
        ("usage_end", pa.date32()),
        ("namespace", pa.string()),
        ("node", pa.string()),
        ("vendor_name", pa.string()),
        ("model_name", pa.string()),
        ("memory_capacity_gb", pa.float64()),
        ("gpu_count", pa.int32()),
        ("mig_instance_id", pa.string()),
        ("gpu_uuid", pa.string()),
        ("gpu_mode", pa.string()),
        ("mig_profile", pa.string()),
        ("mig_slice_count", pa.int32()),
        ("gpu_max_slices", pa.int32()),
        ("mig_strategy", pa.string()),
        ("mig_memory_capacity_gb", pa.float64()),
        ("source_uuid", pa.string()),
        ("cost_category_id", pa.int32()),
    ]
)
# The measures whose totals prove the write (read back from PostgreSQL after the insert).
WRITE_TOTALS = ("gpu_count", "memory_capacity_gb", "mig_memory_capacity_gb")
NOT_NEGATIVE = ("memory_capacity_gb", "mig_memory_capacity_gb", "gpu_count", "mig_slice_count", "gpu_max_slices")


@dataclass(frozen=True)
class GpuContext:
    """What the SQL takes as parameters and from the tenant schema: the cluster, the day, the cost categories."""

    source: str
    cluster_id: str
    cluster_alias: str
    day: dt.date
    cost_categories: tuple[tuple[str, int], ...] = ()


@dataclass
class GpuWrite:
    """What PostgreSQL holds after replacing the cluster-day's GPU rows."""

    rows_written: int
    rows_deleted: int
    rows_read_back: int = 0
    totals_read_back: dict[str, float] = field(default_factory=dict)


# ------------------------------------------------------------------ read
def read_gpu_usage(root: DataRoot, account: str, source: str, day: dt.date) -> DayTable:
    """The day's hourly gpu_usage rows from its month folder; none when the cluster sends no GPU report."""
    prefix = month_prefix(account, GPU_USAGE, source, day.year, day.month, daily=False)
    return read_day_rows(root, prefix, GPU_USAGE_COLUMNS, day)


# ------------------------------------------------------------------ compute
def _nullif_empty(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.if_else(pc.equal(column, ""), pa.scalar(None, pa.string()), column)


def compute_gpu_summary(gpu: pa.Table, ctx: GpuContext) -> pa.Table:
    """The cluster-day's reporting_ocp_gpu_summary_p rows (GPU_ROWS_SCHEMA), sorted by their key."""
    columns = _gpu_summary_columns(_gpus_per_group(_gpu_rows_to_group(gpu)), ctx)
    return pa.Table.from_pydict(
        {name: pa.chunked_array([columns[name]], GPU_ROWS_SCHEMA.field(name).type) for name in GPU_ROWS_SCHEMA.names},
        schema=GPU_ROWS_SCHEMA,
    )


def _gpu_rows_to_group(gpu: pa.Table) -> pa.Table:
    """The raw GPU rows' columns the summary uses; an empty MIG profile is none, a GPU is its MIG instance or UUID."""
    return pa.table(
        {
            "namespace": gpu["namespace"],
            "node": gpu["node"],
            "gpu_vendor_name": gpu["gpu_vendor_name"],
            "gpu_model_name": gpu["gpu_model_name"],
            "mig_profile": _nullif_empty(gpu["mig_profile"]),
            "mig_instance_id": gpu["mig_instance_id"],
            "gpu_uuid": gpu["gpu_uuid"],
            "gpu_memory_capacity_mib": gpu["gpu_memory_capacity_mib"],
            "gpu_identity": pc.coalesce(gpu["mig_instance_id"], gpu["gpu_uuid"]),
            "mig_slice_count": gpu["mig_slice_count"],
            "gpu_max_slices": gpu["gpu_max_slices"],
            "mig_strategy": gpu["mig_strategy"],
            "mig_memory_capacity_mib": gpu["mig_memory_capacity_mib"],
        }
    )


def _gpus_per_group(prepared: pa.Table) -> pa.Table:
    """One row per GROUP_KEYS: capacities and slices at their maximum, the distinct GPUs counted; sorted by key."""
    grouped = prepared.group_by(list(GROUP_KEYS), use_threads=False).aggregate(
        [
            ("gpu_memory_capacity_mib", "max"),
            ("gpu_identity", "count_distinct", pc.CountOptions(mode="only_valid")),
            ("mig_slice_count", "max"),
            ("gpu_max_slices", "max"),
            ("mig_strategy", "max"),
            ("mig_memory_capacity_mib", "max"),
        ]
    )
    return grouped.sort_by([(k, "ascending") for k in GROUP_KEYS])


def _gpu_summary_columns(grouped: pa.Table, ctx: GpuContext) -> dict[str, pa.Array | pa.ChunkedArray]:
    """The summary's columns: the cluster-day's identity, the group's key, GB from MiB, the GPU mode."""
    n = grouped.num_rows
    profile = grouped["mig_profile"]
    return {
        "cluster_id": constant_column(ctx.cluster_id, pa.string(), n),
        "cluster_alias": constant_column(ctx.cluster_alias, pa.string(), n),
        "usage_start": constant_column(ctx.day, pa.date32(), n),
        "usage_end": constant_column(ctx.day, pa.date32(), n),
        "namespace": grouped["namespace"],
        "node": grouped["node"],
        "vendor_name": grouped["gpu_vendor_name"],
        "model_name": grouped["gpu_model_name"],
        "memory_capacity_gb": pc.multiply(grouped["gpu_memory_capacity_mib_max"], MIB_TO_GB),
        "gpu_count": pc.cast(grouped["gpu_identity_count_distinct"], pa.int32()),
        "mig_instance_id": grouped["mig_instance_id"],
        "gpu_uuid": grouped["gpu_uuid"],
        "gpu_mode": pc.if_else(pc.is_valid(profile), MODE_MIG, MODE_DEDICATED),
        "mig_profile": profile,
        # Whole numbers (the input model checked them), so the cast to koku's integer loses nothing.
        "mig_slice_count": pc.cast(grouped["mig_slice_count_max"], pa.int32()),
        "gpu_max_slices": pc.cast(grouped["gpu_max_slices_max"], pa.int32()),
        "mig_strategy": grouped["mig_strategy_max"],
        "mig_memory_capacity_gb": pc.multiply(grouped["mig_memory_capacity_mib_max"], MIB_TO_GB),
        "source_uuid": constant_column(ctx.source, pa.string(), n),
        "cost_category_id": cost_category_ids(grouped["namespace"], ctx.cost_categories)
        if n
        else pa.array([], pa.int32()),
    }


# ------------------------------------------------------------------ checks (recomputed independently of the above)
def counts_conserved(raw: pa.Table, rows: pa.Table) -> CheckOutcome:
    """Per namespace: sum of gpu_count == the distinct GPUs and MIG instances of its raw rows.

    A GPU is what koku's GROUP BY tells apart (node, vendor, model, MIG profile, MIG instance, GPU uuid) and counts
    when coalesce(mig_instance_id, gpu_uuid) is set. Counted from the raw rows with plain Python sets, not the
    engine's group-by: a lost row, a row counted twice (e.g. by a cost-category join) or a wrong count fails here.
    """
    seen: dict[object, set] = {}
    columns = ("node", "gpu_vendor_name", "gpu_model_name", "mig_profile", "mig_instance_id", "gpu_uuid")
    for namespace, *gpu in zip(raw["namespace"].to_pylist(), *(raw[c].to_pylist() for c in columns)):
        node, vendor, model, profile, mig_instance, gpu_uuid = gpu
        if gpu_uuid is None and mig_instance is None:
            continue  # coalesce(mig_instance_id, gpu_uuid) is NULL: koku's count(DISTINCT ...) skips it
        seen.setdefault(namespace, set()).add((node, vendor, model, profile or None, mig_instance, gpu_uuid))
    counted: dict[object, int] = {}
    for namespace, count in zip(rows["namespace"].to_pylist(), rows["gpu_count"].to_pylist()):
        counted[namespace] = counted.get(namespace, 0) + (count or 0)
    differing = [
        {"namespace": ns, "raw_gpus": len(seen.get(ns, ())), "summary_gpu_count": counted.get(ns, 0)}
        for ns in sorted(set(seen) | set(counted), key=lambda v: "" if v is None else str(v))
        if len(seen.get(ns, ())) != counted.get(ns, 0)
    ]
    raw_total, summary_total = sum(len(v) for v in seen.values()), sum(counted.values())
    metadata: dict[str, object] = {"raw_gpus": raw_total, "summary_gpu_count": summary_total, "namespaces": len(seen)}
    if differing:
        metadata["differing_namespaces"] = differing[:MAX_EXAMPLES]
        return CheckOutcome(
            False,
            f"{len(differing)} namespace(s) whose GPU count differs from their raw GPUs "
            f"(first: {differing[0]['namespace']!r}: {differing[0]['summary_gpu_count']} counted, "
            f"{differing[0]['raw_gpus']} in the raw rows)",
            metadata,
            rows=rows.num_rows,
            failures=len(differing),
        )
    counted_once = f"{summary_total} GPU(s) and MIG instance(s) counted once, as in the raw rows"
    return CheckOutcome(True, counted_once, metadata, rows=rows.num_rows)


def one_row_per_key(rows: pa.Table) -> CheckOutcome:
    """No two rows share (day, namespace, node, vendor, model, MIG profile, MIG instance, GPU uuid)."""
    duplicates = duplicate_keys(rows, ROW_KEY)
    if duplicates:
        return CheckOutcome(
            False,
            f"{len(duplicates)} GPU key(s) on more than one row",
            {"duplicate_keys": [{k: str(v) for k, v in d.items()} for d in duplicates[:MAX_EXAMPLES]]},
            rows=rows.num_rows,
            failures=len(duplicates),
        )
    keys = distinct_count(rows, *ROW_KEY)
    return CheckOutcome(True, f"{rows.num_rows} rows, one per GPU key", {"keys": keys}, rows=rows.num_rows)


def capacity_not_negative(rows: pa.Table) -> CheckOutcome:
    """Memory, MIG memory, GPU counts and MIG slices are finite and >= 0 wherever they are set."""
    bad: list[dict] = []
    for column in NOT_NEGATIVE:
        values = pc.cast(rows[column], pa.float64())
        wrong = pc.fill_null(pc.or_(pc.less(values, 0), pc.invert(pc.is_finite(values))), False)
        indices = pc.indices_nonzero(wrong).to_pylist()
        picked = pc.take(rows[column], pa.array(indices[:MAX_EXAMPLES], pa.int64())).to_pylist()
        bad += [{"column": column, "row": i + 1, "value": v} for i, v in zip(indices, picked)]
    if bad:
        return CheckOutcome(
            False,
            f"{len(bad)} negative or not finite value(s) (first: {bad[0]['column']} = {bad[0]['value']!r})",
            {"negative_values": bad[:MAX_EXAMPLES]},
            rows=rows.num_rows,
            failures=len(bad),
        )
    return CheckOutcome(True, f"no negative capacity in {rows.num_rows} rows", {}, rows=rows.num_rows)


def rows_written_match(rows: pa.Table, write: GpuWrite) -> CheckOutcome:
    """PostgreSQL holds, for the cluster-day, the rows computed: same count, same totals (D6)."""
    compared = {
        column: {"computed": column_total(rows[column]), "postgresql": write.totals_read_back[column]}
        for column in WRITE_TOTALS
    }
    differing = [c for c, v in compared.items() if not close(v["computed"], v["postgresql"])]
    metadata: dict[str, object] = {"rows_computed": rows.num_rows, "rows_in_postgresql": write.rows_read_back}
    metadata.update(compared)
    if write.rows_read_back != rows.num_rows or write.rows_written != rows.num_rows or differing:
        return CheckOutcome(
            False,
            f"PostgreSQL holds {write.rows_read_back} GPU row(s), {rows.num_rows} computed"
            + (f"; totals differ: {', '.join(differing)}" if differing else ""),
            metadata,
            rows=rows.num_rows,
            failures=1,
        )
    return CheckOutcome(True, f"{rows.num_rows} GPU rows in PostgreSQL, totals equal", metadata, rows=rows.num_rows)


def summary_checks(raw: pa.Table, rows: pa.Table, write: GpuWrite) -> dict[str, CheckOutcome]:
    return {
        O.GPU_COUNTS_CONSERVED: counts_conserved(raw, rows),
        O.GPU_ONE_ROW_PER_KEY: one_row_per_key(rows),
        O.GPU_CAPACITY_NOT_NEGATIVE: capacity_not_negative(rows),
        O.GPU_ROWS_IN_POSTGRESQL: rows_written_match(rows, write),
    }


# ------------------------------------------------------------------ facts shown per partition
def raw_facts(gpu: DayTable) -> dict:
    table = gpu.table
    mig = table.filter(pc.fill_null(pc.not_equal(table["mig_instance_id"], ""), False))
    return {
        "rows": table.num_rows,
        "nodes": distinct_count(table, "node"),
        "namespaces": distinct_count(table, "namespace"),
        "pods": distinct_count(table, "namespace", "pod"),
        "gpus": distinct_count(table, "node", "gpu_uuid"),
        "mig_instances": distinct_count(mig, "node", "gpu_uuid", "mig_instance_id"),
        "files": gpu.files,
    }


def gpu_memory_gb(rows: pa.Table) -> float:
    """Memory of the day's distinct GPUs (node, GPU uuid), each once: the MIG instances of one GPU are rows of their
    own and each carries the whole GPU's memory, so a sum over rows would count that GPU once per instance."""
    if rows.num_rows == 0:
        return 0.0
    per_gpu = rows.group_by(["node", "gpu_uuid"], use_threads=False).aggregate([("memory_capacity_gb", "max")])
    return column_total(per_gpu["memory_capacity_gb_max"])


def summary_facts(rows: pa.Table, write: GpuWrite | None) -> dict:
    mig = pc.sum(pc.equal(rows["gpu_mode"], MODE_MIG)).as_py() or 0
    facts: dict[str, object] = {
        "rows": rows.num_rows,
        "gpu_count": int(pc.sum(rows["gpu_count"]).as_py() or 0),
        "rows_by_gpu_mode": {MODE_DEDICATED: rows.num_rows - mig, MODE_MIG: mig},
        "namespaces": distinct_count(rows, "namespace"),
        "nodes": distinct_count(rows, "node"),
        "memory_capacity_gb": gpu_memory_gb(rows),
        "models": sorted(str(m) for m in pc.unique(rows["model_name"]).to_pylist() if m is not None),
        "preview": rows.select(
            ["namespace", "node", "model_name", "gpu_mode", "mig_profile", "gpu_count", "memory_capacity_gb"]
        )
        .slice(0, 5)
        .to_pylist(),
    }
    if write is not None:
        facts["rows_deleted"] = write.rows_deleted
    return facts
