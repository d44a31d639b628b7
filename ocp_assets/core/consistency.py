"""The IQE-style consistency checks of one cluster-day's summary, as pure functions over Arrow tables (no dagster).

Each function recomputes a koku invariant independently of the engine's code path and returns a
CheckOutcome with the numbers compared, so a failure shows what was expected and what was found.
"""

import calendar
import json
import math

import pyarrow as pa
import pyarrow.compute as pc

from ocp_assets.core.labels import jsonb_text, parse_label_object
from ocp_assets.core.outcomes import CheckOutcome

REL_TOL = 1e-9  # D6
ABS_TOL = 1e-9
ALWAYS_ALLOWED_KEY = "vm_kubevirt_io_name"
UNALLOCATED_NAMESPACES = ("Platform unallocated", "Worker unallocated", "Network unattributed", "Storage unattributed")
HOUR = 3600.0
GIB = 2.0**-30

# (summary column, raw pod_daily column, unit factor applied to the raw seconds)
CONSERVED_POD_MEASURES = (
    ("pod_usage_cpu_core_hours", "pod_usage_cpu_core_seconds", 1 / HOUR),
    ("pod_request_cpu_core_hours", "pod_request_cpu_core_seconds", 1 / HOUR),
    ("pod_effective_usage_cpu_core_hours", "pod_effective_usage_cpu_core_seconds", 1 / HOUR),
    ("pod_limit_cpu_core_hours", "pod_limit_cpu_core_seconds", 1 / HOUR),
    ("pod_usage_memory_gigabyte_hours", "pod_usage_memory_byte_seconds", GIB / HOUR),
    ("pod_request_memory_gigabyte_hours", "pod_request_memory_byte_seconds", GIB / HOUR),
    ("pod_effective_usage_memory_gigabyte_hours", "pod_effective_usage_memory_byte_seconds", GIB / HOUR),
    ("pod_limit_memory_gigabyte_hours", "pod_limit_memory_byte_seconds", GIB / HOUR),
)
UNALLOCATED_MEASURES = (
    ("pod_usage_cpu_core_hours", "cpu"),
    ("pod_request_cpu_core_hours", "cpu"),
    ("pod_effective_usage_cpu_core_hours", "cpu"),
    ("pod_usage_memory_gigabyte_hours", "memory"),
    ("pod_request_memory_gigabyte_hours", "memory"),
    ("pod_effective_usage_memory_gigabyte_hours", "memory"),
)


def close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=REL_TOL, abs_tol=ABS_TOL)


def column_total(column: pa.ChunkedArray | pa.Array) -> float:
    return float(pc.sum(column).as_py() or 0.0)


def _rows(table: pa.Table, mask) -> pa.Table:
    return table.filter(pc.fill_null(mask, False))


def pod_rows(summary: pa.Table) -> pa.Table:
    """Pod rows that are not unallocated rows (unallocated rows have NULL pod_labels, 3.7)."""
    return _rows(summary, pc.and_(pc.equal(summary["data_source"], "Pod"), pc.is_valid(summary["pod_labels"])))


def unallocated_rows(summary: pa.Table) -> pa.Table:
    return _rows(summary, pc.and_(pc.equal(summary["data_source"], "Pod"), pc.is_null(summary["pod_labels"])))


def storage_rows(summary: pa.Table) -> pa.Table:
    return _rows(summary, pc.equal(summary["data_source"], "Storage"))


def _effective(raw: pa.Table, effective: str, usage: str, request: str) -> pa.ChunkedArray:
    return pc.coalesce(raw[effective], pc.max_element_wise(raw[usage], raw[request]))


def usage_conserved(raw_pod_daily: pa.Table, summary: pa.Table) -> CheckOutcome:
    """Σ usage/request/limit/effective over raw pod_daily rows with node != '' equals Σ over summary Pod rows."""
    raw = _rows(raw_pod_daily, pc.not_equal(raw_pod_daily["node"], ""))
    pods = pod_rows(summary)
    metadata: dict[str, object] = {"raw_rows": raw.num_rows, "summary_pod_rows": pods.num_rows}
    failed = []
    for summary_column, raw_column, factor in CONSERVED_POD_MEASURES:
        if "effective" in raw_column:
            kind = "cpu_core" if "cpu" in raw_column else "memory_byte"
            values = _effective(raw, raw_column, f"pod_usage_{kind}_seconds", f"pod_request_{kind}_seconds")
        else:
            values = raw[raw_column]
        expected = column_total(values) * factor
        actual = column_total(pods[summary_column])
        metadata[f"{summary_column}"] = {"raw": expected, "summary": actual}
        if not close(expected, actual):
            failed.append(summary_column)
    if failed:
        return CheckOutcome(False, f"totals differ from raw pod usage: {', '.join(failed)}", metadata)
    return CheckOutcome(
        True, f"{len(CONSERVED_POD_MEASURES)} pod measures conserved over {raw.num_rows} raw rows", metadata
    )


def node_capacity_hours(node_capacity: pa.Table) -> dict[str, tuple[float, float]]:
    return {
        node: ((cpu or 0.0) / HOUR, (memory or 0.0) / HOUR * GIB)
        for node, cpu, memory in zip(
            node_capacity["node"].to_pylist(),
            node_capacity["node_capacity_cpu_core_seconds"].to_pylist(),
            node_capacity["node_capacity_memory_byte_seconds"].to_pylist(),
        )
    }


def unallocated_is_capacity_minus_pods(summary: pa.Table, node_capacity: pa.Table) -> CheckOutcome:
    """Per node: its one unallocated row = node capacity hours - sum of the node's Pod rows (not clamped)."""
    capacity = node_capacity_hours(node_capacity)
    pods = pod_rows(summary)
    pods = _rows(pods, pc.invert(pc.is_in(pods["namespace"], value_set=pa.array(UNALLOCATED_NAMESPACES))))
    measures = [m for m, _ in UNALLOCATED_MEASURES]
    sums: dict[str, list[float]] = {}
    for row in pods.select(["node", *measures]).to_pylist():
        acc = sums.setdefault(row["node"], [0.0] * len(measures))
        for i, m in enumerate(measures):
            acc[i] += row[m] or 0.0
    unallocated = unallocated_rows(summary)
    by_node: dict[str, list[dict]] = {}
    for row in unallocated.select(["node", *measures]).to_pylist():
        by_node.setdefault(row["node"], []).append(row)
    problems = []
    worst = 0.0
    for node in sorted(set(sums) | set(by_node)):
        rows = by_node.get(node, [])
        if node not in sums or len(rows) != 1:
            problems.append(
                f"{node}: {len(rows)} unallocated rows for {'a node with' if node in sums else 'no'} pod rows"
            )
            continue
        cpu, memory = capacity.get(node, (0.0, 0.0))
        for i, (m, kind) in enumerate(UNALLOCATED_MEASURES):
            expected = (cpu if kind == "cpu" else memory) - sums[node][i]
            actual = rows[0][m] or 0.0
            worst = max(worst, abs(expected - actual))
            if not close(expected, actual):
                problems.append(f"{node}.{m}: expected {expected!r}, found {actual!r}")
    metadata = {"nodes": len(sums), "unallocated_rows": unallocated.num_rows, "max_abs_difference": worst}
    if problems:
        metadata["problems"] = problems[:20]
        return CheckOutcome(False, f"{len(problems)} unallocated value(s) wrong: {problems[0]}", metadata)
    return CheckOutcome(True, f"unallocated = capacity - pods on all {len(sums)} nodes", metadata)


def cluster_capacity_is_node_sum(summary: pa.Table, node_capacity: pa.Table) -> CheckOutcome:
    """Every Pod row's cluster capacity = Σ of the day's node capacities (3.4)."""
    capacity = node_capacity_hours(node_capacity)
    expected_cpu = sum(c for c, _ in capacity.values())
    expected_memory = sum(m for _, m in capacity.values())
    pods = _rows(summary, pc.equal(summary["data_source"], "Pod"))
    cpu_values = set(pods["cluster_capacity_cpu_core_hours"].to_pylist())
    memory_values = set(pods["cluster_capacity_memory_gigabyte_hours"].to_pylist())
    metadata = {
        "nodes": len(capacity),
        "expected_cpu_core_hours": expected_cpu,
        "expected_memory_gigabyte_hours": expected_memory,
        "summary_cpu_core_hours": sorted(v for v in cpu_values if v is not None)[:5],
        "summary_memory_gigabyte_hours": sorted(v for v in memory_values if v is not None)[:5],
    }
    ok = all(v is not None and close(v, expected_cpu) for v in cpu_values) and all(
        v is not None and close(v, expected_memory) for v in memory_values
    )
    if not ok:
        return CheckOutcome(False, "cluster capacity on Pod rows differs from the sum of node capacities", metadata)
    return CheckOutcome(
        True, f"cluster capacity = Σ of {len(capacity)} node capacities on {pods.num_rows} Pod rows", metadata
    )


POD_KEY = ("namespace", "node", "pod_labels")
UNALLOCATED_KEY = ("node",)
STORAGE_KEY = (
    "namespace",
    "node",
    "resource_id",
    "persistentvolumeclaim",
    "persistentvolume",
    "storageclass",
    "volume_labels",
)


def distinct_count(table: pa.Table, *columns: str) -> int:
    """How many distinct combinations of the columns the table holds."""
    if table.num_rows == 0:
        return 0
    return table.select(list(columns)).group_by(list(columns), use_threads=False).aggregate([]).num_rows


def duplicate_keys(table: pa.Table, keys: tuple[str, ...]) -> list[dict]:
    """The key combinations found on more than one row, each with its count_all."""
    if table.num_rows == 0:
        return []
    counts = table.select(list(keys)).group_by(list(keys), use_threads=False).aggregate([([], "count_all")])
    return counts.filter(pc.greater(counts["count_all"], 1)).to_pylist()


def no_duplicate_keys(summary: pa.Table) -> CheckOutcome:
    """One summary row per group key: (namespace, node, labels) for Pod, node for unallocated, volume key for "
    "Storage."""
    found = {
        "Pod": duplicate_keys(pod_rows(summary), POD_KEY),
        "unallocated": duplicate_keys(unallocated_rows(summary), UNALLOCATED_KEY),
        "Storage": duplicate_keys(storage_rows(summary), STORAGE_KEY),
    }
    metadata: dict[str, object] = {f"duplicate_{kind}_keys": len(rows) for kind, rows in found.items()}
    examples = [dict(kind=kind, **row) for kind, rows in found.items() for row in rows][:10]
    if examples:
        metadata["examples"] = examples
        return CheckOutcome(False, f"{len(examples)} duplicated summary key(s), e.g. {examples[0]}", metadata)
    return CheckOutcome(True, f"all {summary.num_rows} summary rows have distinct keys", metadata)


def label_keys_allowed(
    summary: pa.Table,
    enabled_keys: tuple[str, ...] | list[str],
    tag_mappings: tuple[tuple[str, str], ...] | list[tuple[str, str]] = (),
) -> CheckOutcome:
    """Only enabled keys (and vm_kubevirt_io_name) appear in pod_labels, volume_labels and all_labels.

    With tag mappings (child, parent), a parent key is allowed too (koku renames to it, enabled or not), and a
    child key must be gone: renamed or dropped by the mapping (unless it is itself a parent).
    """
    parents = {parent for _child, parent in tag_mappings}
    unmapped_children = {child for child, _parent in tag_mappings} - parents
    allowed = (set(enabled_keys) | {ALWAYS_ALLOWED_KEY} | parents) - unmapped_children
    seen: set[str] = set()
    texts = 0
    for column in ("pod_labels", "volume_labels", "all_labels"):
        for text in pc.unique(summary[column]).to_pylist():
            if text is None:
                continue
            texts += 1
            seen.update(json.loads(text))
    extra = sorted(seen - allowed)
    metadata = {"allowed_keys": sorted(allowed), "keys_found": sorted(seen), "distinct_label_texts": texts}
    if tag_mappings:
        metadata["tag_mappings"] = [f"{child} -> {parent}" for child, parent in tag_mappings]
    left = sorted(seen & unmapped_children)
    if left:
        metadata["not_mapped"] = left
        return CheckOutcome(False, f"mapped child label keys not renamed: {', '.join(left[:10])}", metadata)
    if extra:
        metadata["not_allowed"] = extra
        return CheckOutcome(False, f"label keys not enabled: {', '.join(extra[:10])}", metadata)
    return CheckOutcome(True, f"{len(seen)} label key(s) found, all allowed", metadata)


def _filtered(text: str | None, allowed: set[str]) -> dict[str, str]:
    if text is None or not text.strip():
        return {}
    parsed = parse_label_object(text)  # as koku's ::jsonb reads it: numbers as numeric text, never floats
    return {k: v if isinstance(v, str) or v is None else jsonb_text(v) for k, v in parsed.items() if k in allowed}


def label_precedence(
    raw_pod_daily: pa.Table,
    labelled_pods: pa.Table,
    node_labels: pa.Table,
    namespace_labels: pa.Table,
    enabled_keys: tuple[str, ...] | list[str],
    sample: int = 50,
) -> CheckOutcome:
    """On a sample of pod rows: merged labels = node labels, then namespace labels, then pod labels (later wins).

    Row i of the labelled table is row i of the raw pod rows with node != '' (merge_labels keeps the order);
    the expected map is rebuilt here with plain dicts, independently of the engine's label catalog.
    """
    allowed = set(enabled_keys) | {ALWAYS_ALLOWED_KEY}
    raw = _rows(raw_pod_daily, pc.not_equal(raw_pod_daily["node"], ""))
    if raw.num_rows != labelled_pods.num_rows:
        return CheckOutcome(
            False,
            f"{labelled_pods.num_rows} labelled pod rows for {raw.num_rows} raw pod rows with a node",
            {"raw_rows": raw.num_rows, "labelled_rows": labelled_pods.num_rows},
        )
    nodes = dict(zip(node_labels["node"].to_pylist(), node_labels["node_labels"].to_pylist()))
    namespaces = dict(zip(namespace_labels["namespace"].to_pylist(), namespace_labels["namespace_labels"].to_pylist()))
    step = max(1, raw.num_rows // sample) if raw.num_rows else 1
    indices = pa.array(list(range(0, raw.num_rows, step))[:sample], pa.int64())
    picked = raw.take(indices).select(["namespace", "node", "pod", "pod_labels"]).to_pylist()
    merged = labelled_pods.take(indices)["pod_labels"].to_pylist()
    mismatches = []
    for row, text in zip(picked, merged):
        expected = {}
        expected.update(_filtered(nodes.get(row["node"]), allowed))
        expected.update(_filtered(namespaces.get(row["namespace"]), allowed))
        expected.update(_filtered(row["pod_labels"], allowed))
        actual = json.loads(text) if text is not None else None
        if actual != expected:
            mismatches.append(
                {
                    "pod": row["pod"],
                    "namespace": row["namespace"],
                    "node": row["node"],
                    "expected": expected,
                    "found": actual,
                }
            )
    metadata: dict[str, object] = {
        "sampled_rows": len(indices),
        "pod_rows": raw.num_rows,
        "mismatches": len(mismatches),
    }
    if mismatches:
        metadata["examples"] = mismatches[:5]
        return CheckOutcome(
            False, f"{len(mismatches)} of {len(indices)} sampled pod rows break pod > namespace > node", metadata
        )
    return CheckOutcome(True, f"pod > namespace > node holds on {len(indices)} sampled pod rows", metadata)


def storage_months_formula(labelled_storage: pa.Table | None, summary: pa.Table, day) -> CheckOutcome:
    """Storage months = byte-seconds / (86400 * days in the month) * 2^-30; request/usage divided by node count."""
    days = calendar.monthrange(day.year, day.month)[1]
    divisor = 86400.0 * days
    storage = storage_rows(summary)
    metadata: dict[str, object] = {"days_in_month": days, "storage_rows": storage.num_rows}
    if labelled_storage is None or labelled_storage.num_rows == 0:
        ok = storage.num_rows == 0
        return CheckOutcome(
            ok, "no storage rows" if ok else f"{storage.num_rows} Storage rows without storage usage", metadata
        )
    node_count = pc.cast(pc.fill_null(labelled_storage["node_count"], 1), pa.float64())
    expected = {
        "persistentvolumeclaim_capacity_gigabyte_months": column_total(
            labelled_storage["persistentvolumeclaim_capacity_byte_seconds"]
        ),
        "volume_request_storage_gigabyte_months": column_total(
            pc.divide(labelled_storage["volume_request_storage_byte_seconds"], node_count)
        ),
        "persistentvolumeclaim_usage_gigabyte_months": column_total(
            pc.divide(labelled_storage["persistentvolumeclaim_usage_byte_seconds"], node_count)
        ),
    }
    failed = []
    for column, byte_seconds in expected.items():
        want = byte_seconds / divisor * GIB
        got = column_total(storage[column])
        metadata[column] = {"expected": want, "summary": got}
        if not close(want, got):
            failed.append(column)
    if failed:
        return CheckOutcome(False, f"storage months differ ({days}-day month): {', '.join(failed)}", metadata)
    return CheckOutcome(True, f"storage months match the {days}-day month formula", metadata)


def rows_written_match(
    rows: pa.Table, rows_written: int, rows_by_data_source: dict[str, int], totals_read_back: dict[str, float]
) -> CheckOutcome:
    """What PostgreSQL holds for the cluster-day after the write = what was computed (count per data_source, totals)."""
    computed_by_source: dict[str, int] = {}
    for value in rows["data_source"].to_pylist():
        computed_by_source[value] = computed_by_source.get(value, 0) + 1
    problems = []
    if rows_written != rows.num_rows:
        problems.append(f"{rows_written} rows inserted, {rows.num_rows} computed")
    if {k: v for k, v in rows_by_data_source.items() if v} != computed_by_source:
        problems.append(f"per data_source PostgreSQL holds {rows_by_data_source}, computed {computed_by_source}")
    worst = 0.0
    for column, stored in totals_read_back.items():
        computed = column_total(rows[column])
        if computed or stored:
            worst = max(worst, abs(stored - computed) / max(abs(computed), abs(stored)))
        if not close(computed, stored):
            problems.append(f"{column}: PostgreSQL {stored!r}, computed {computed!r}")
    metadata = {
        "rows_computed": rows.num_rows,
        "rows_in_postgresql": rows_written,
        "by_data_source": computed_by_source,
        "max_relative_difference": worst,
    }
    if problems:
        metadata["problems"] = problems[:20]
        return CheckOutcome(False, problems[0], metadata)
    return CheckOutcome(
        True,
        f"PostgreSQL holds the {rows.num_rows} rows computed (counts and {len(totals_read_back)} totals)",
        metadata,
    )
