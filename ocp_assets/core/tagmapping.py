"""koku's tag mapping of the summary's label keys (contract 4.1 step 7), applied to a cluster-day's rows before the
write.

After the summary, koku runs ``sql/openshift/ocp_tag_mapping_update_daily_summary.sql``: every enabled OCP key that
``reporting_tagmapping`` links as a child to a parent key is renamed to the parent in ``pod_labels`` and
``volume_labels``, and ``all_labels`` is set to the rewritten map. Per label map that holds at least one child key:

* no mapped (child, parent) pair has both keys in the map: every child key is renamed to its parent; when several
  children of one parent are present, the value of the child last in jsonb's key order (shorter keys first, then
  byte order) wins, as ``jsonb_object_agg`` keeps the last duplicate;
* some child and its parent are both in the map: the parent's value stays and **every** child key of any mapping is
  dropped, even one whose own parent is absent; a map left without keys becomes NULL (``jsonb_object_agg`` over no
  rows), which only a key that is both a parent and a child can cause (koku's API refuses such mappings).

The rows are not grouped again: two Pod rows whose maps become equal stay two rows, as after koku's UPDATE.
Each distinct label text is mapped once; the rows carry the texts, so the work is per distinct map, not per row.
"""

import json
from collections.abc import Iterable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from ocp_assets.core.labels import canonical_json, jsonb_key_order

LABEL_COLUMNS = ("pod_labels", "volume_labels")


def map_label_keys(labels: Mapping[str, object], parent_by_child: Mapping[str, str]) -> dict[str, object] | None:
    """One label map as koku's UPDATE rewrites it (the caller has checked that it holds a child key)."""
    parent_and_child_present = any(child in labels and parent in labels for child, parent in parent_by_child.items())
    if parent_and_child_present:
        kept = {key: value for key, value in labels.items() if key not in parent_by_child}
        return kept or None
    renamed: dict[str, object] = {}
    for key in sorted(labels, key=jsonb_key_order):
        renamed[parent_by_child.get(key, key)] = labels[key]
    return renamed


def _map_column(column: pa.ChunkedArray, parent_by_child: Mapping[str, str]) -> tuple[pa.Array, np.ndarray]:
    """The column's texts after the mapping, and per row whether koku's UPDATE selects it for this column.

    koku selects a map that is not NULL, not ``{}`` and holds at least one child key (``?|``).
    """
    encoded = pc.dictionary_encode(column).combine_chunks()
    texts = encoded.dictionary.to_pylist()
    mapped_texts: list[str | None] = []
    selected = np.zeros(len(texts) + 1, dtype=bool)  # the extra entry stands for NULL cells
    for position, text in enumerate(texts):
        labels = json.loads(text) if text is not None else None
        if labels and any(key in parent_by_child for key in labels):
            mapped = map_label_keys(labels, parent_by_child)
            mapped_texts.append(None if mapped is None else canonical_json(mapped))
            selected[position] = True
        else:
            mapped_texts.append(text)
    indices = pc.fill_null(encoded.indices, len(texts)).to_numpy(zero_copy_only=False)
    mapped_column = pa.array([*mapped_texts, None], pa.string()).take(pa.array(indices))
    return mapped_column, selected[indices]


def apply_tag_mapping(rows: pa.Table, tag_mappings: Iterable[tuple[str, str]]) -> pa.Table:
    """The rows with koku's tag mapping applied to pod_labels, volume_labels and all_labels.

    tag_mappings: (child key, parent key) pairs of enabled OCP child keys, as ``writer.read_settings`` reads them.
    all_labels of a row selected for one column becomes that column's new map, as koku sets it. A row selected for
    both columns (ocp_assets never writes one: Pod rows have no volume_labels, Storage rows no pod_labels) is
    updated by only one arbitrary join row in koku; here both columns are mapped and all_labels is their merge,
    pod then volume (contract 3.8), so no child key survives (docs/decisions.md, tag mapping).
    """
    parent_by_child = dict(tag_mappings)
    if not parent_by_child or rows.num_rows == 0:
        return rows
    pod_labels, pod_selected = _map_column(rows["pod_labels"], parent_by_child)
    volume_labels, volume_selected = _map_column(rows["volume_labels"], parent_by_child)
    all_labels = rows["all_labels"].combine_chunks()
    all_labels = pc.if_else(pod_selected, pod_labels, all_labels)
    all_labels = pc.if_else(volume_selected, volume_labels, all_labels)
    both = np.nonzero(pod_selected & volume_selected)[0]
    if len(both):
        merged_texts = all_labels.to_pylist()
        for row in both:
            pod_text, volume_text = pod_labels[row].as_py(), volume_labels[row].as_py()
            merged = {**json.loads(pod_text or "{}"), **json.loads(volume_text or "{}")}
            merged_texts[row] = None if pod_text is None and volume_text is None else canonical_json(merged)
        all_labels = pa.array(merged_texts, pa.string())
    for name, column in (("pod_labels", pod_labels), ("volume_labels", volume_labels), ("all_labels", all_labels)):
        rows = rows.set_column(rows.schema.get_field_index(name), rows.schema.field(name), column)
    return rows
