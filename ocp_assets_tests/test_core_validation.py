"""validate_frame on Arrow tables: skipping str checks the Arrow types guarantee finds exactly pandera's failures."""

import pyarrow as pa
import pytest
from pandera.errors import SchemaErrors

from ocp_assets.core import validation as V


def _pod_rows(n: int = 6) -> dict[str, list]:
    return {
        "namespace": [f"ns-{i % 2}" for i in range(n)],
        "node": ["node-a", "", None, "node-b", "node-a", "node-b"][:n],
        "pod": [f"pod-{i}" for i in range(n)],
        "pod_labels": ['{"app": "web"}', None, "", '{"team": "x"}', "{}", '{"app": "db"}'][:n],
        "resource_id": ["i-1"] * n,
        "interval_start": pa.array([0] * n, pa.timestamp("ns")),
        **{
            c: [float(i) for i in range(n)]
            for c in (
                "pod_usage_cpu_core_seconds",
                "pod_request_cpu_core_seconds",
                "pod_limit_cpu_core_seconds",
                "pod_usage_memory_byte_seconds",
                "pod_request_memory_byte_seconds",
                "pod_limit_memory_byte_seconds",
                "pod_effective_usage_cpu_core_seconds",
                "pod_effective_usage_memory_byte_seconds",
                "node_capacity_cpu_cores",
                "node_capacity_memory_bytes",
            )
        },
        "node_role": ["worker"] * n,
    }


def _table(columns: dict[str, list], **types: pa.DataType) -> pa.Table:
    return pa.table(
        {
            name: values if isinstance(values, pa.Array) else pa.array(values, types.get(name))
            for name, values in columns.items()
        }
    )


def _pandera_cases(model, table: pa.Table):
    """What pandera reports when it checks every column of the converted frame, element by element."""
    try:
        model.validate(V.to_frame(table), lazy=True)
    except SchemaErrors as exc:
        return exc.failure_cases
    return None


BAD_LABELS = _pod_rows() | {"pod_labels": ['{"app": "web"', None, "[1]", '{"team": "x"}', "{}", "3"]}
NULL_NAMESPACE = _pod_rows() | {"namespace": ["ns-0", None, "ns-0", "ns-1", "ns-0", "ns-1"]}
NEGATIVE = _pod_rows() | {"pod_usage_cpu_core_seconds": [0.0, -1.0, 2.0, 3.0, -0.5, 5.0]}


@pytest.mark.parametrize(
    ("columns", "types"),
    [
        (_pod_rows(), {}),
        (BAD_LABELS, {}),
        (NULL_NAMESPACE, {}),
        (NEGATIVE, {}),
        (_pod_rows() | {"node": list(range(6))}, {}),  # an int column where a str column is declared: still checked
        (_pod_rows() | {"pod_labels": [None] * 6}, {"pod_labels": pa.null()}),  # all-NULL column typed null by Arrow
        (BAD_LABELS | {"namespace": ["ns"] * 6}, {"namespace": pa.large_string()}),
    ],
    ids=["valid", "bad-labels", "null-namespace", "negative", "int-node", "null-typed-labels", "large-string"],
)
def test_arrow_fast_path_reports_what_pandera_reports(columns, types):
    table = _table(columns, **types)
    report = V.validate_frame(V.RawPodUsage, table)
    expected = _pandera_cases(V.RawPodUsage, table)
    assert report.passed == (expected is None)
    if expected is not None:
        assert report.failures == len(expected)
        assert report.failure_cases.astype(str).equals(
            expected.head(V.MAX_FAILURE_CASES).reset_index(drop=True).astype(str)
        )


def test_only_arrow_strings_skip_the_str_check():
    schema = V.arrow_schema(V.RawPodUsage, frozenset({"namespace", "pod", "interval_start"}))
    assert schema.columns["namespace"].dtype is None and schema.columns["pod"].dtype is None
    assert str(schema.columns["node"].dtype) == "str"  # not a string in that Arrow table: pandera still checks it
    assert str(schema.columns["interval_start"].dtype) != "None"  # only str columns are ever relaxed
    assert V.RawPodUsage.to_schema().columns["namespace"].dtype is not None  # the model itself is unchanged


def test_a_pandas_frame_is_validated_in_full_and_left_as_it_was():
    frame = V.to_frame(_table(_pod_rows() | {"node": list(range(6))}))
    before = frame.copy()
    report = V.validate_frame(V.RawPodUsage, frame)
    assert not report.passed and "dtype('str')" in report.description
    assert frame.equals(before)
