"""Label values as koku's jsonb_each_text writes them, checked against the real PostgreSQL: numbers, nested values,
booleans and null, and the label texts its ::jsonb cast refuses (NaN, Infinity, lone surrogates, \\u0000, numbers
beyond numeric)."""

import datetime as dt
import json
import tempfile

import hypothesis.strategies as st
import psycopg
import pytest
from hypothesis import HealthCheck, example, given, settings

from ocp_assets.core.labels import LabelCatalog, MalformedLabelJSON, canonical_json
from ocp_assets_tests.engine_support import enable_keys, engine_rows, koku_settings_for_reference, run_engine
from ocp_assets_tests.reference.koku_sql import compare_summaries, reference_summary
from ocp_assets_tests.reference.parquet_fixtures import KokuParquetBuilder

ACCOUNT = "10001"
SOURCE = "0f3c5a36-1d52-4c1e-9d0b-5b1f1e6f8a01"
DAY = dt.date(2026, 10, 14)

REFUSED = "refused"


@pytest.fixture(scope="module")
def postgres(dsn):
    with psycopg.connect(dsn, autocommit=True) as conn:
        yield conn


def postgres_values(conn: psycopg.Connection, label_text: str) -> dict | str:
    """koku's reading of one label cell: jsonb_each_text(text::jsonb), or REFUSED where the cast fails."""
    try:
        rows = conn.execute("SELECT key, value FROM jsonb_each_text(%s::jsonb)", (label_text,)).fetchall()
    except psycopg.errors.DataError:  # class 22: invalid JSON, a number beyond numeric, \u0000
        return REFUSED
    return dict(rows)


class _EveryKey:
    def __contains__(self, key: object) -> bool:
        return True


def python_values(label_text: str) -> dict | str:
    """ocp_assets' reading of the same cell, every key enabled."""
    catalog = LabelCatalog(_EveryKey())
    try:
        return catalog.maps[catalog.filter_text(label_text)]
    except MalformedLabelJSON:
        return REFUSED


def _exponent_near_limits():
    return st.one_of(
        st.integers(-40, 40),
        st.integers(-16400, -16370),
        st.integers(131040, 131080),
        st.sampled_from([2**30 - 2, 2**30 - 1, -(2**30) + 2, -(2**30) + 1, 2**31, -(2**40)]),
    )


@st.composite
def json_numbers(draw) -> str:
    """A JSON number token of any form the grammar allows: sign, zero or digits, fraction with trailing zeros, an
    exponent with either letter case, sign and leading zeros, near and beyond PostgreSQL numeric's limits."""
    sign = draw(st.sampled_from(["", "-"]))
    whole = draw(st.one_of(st.just("0"), st.from_regex(r"[1-9][0-9]{0,25}", fullmatch=True)))
    fraction = ""
    if draw(st.booleans()):
        head = draw(st.from_regex(r"[0-9]{0,6}", fullmatch=True))
        zeros = draw(st.one_of(st.integers(0, 5), st.integers(16370, 16400)))
        tail = draw(st.from_regex(r"[0-9]{0,3}", fullmatch=True))
        fraction = "." + (head + "0" * zeros + tail or "0")
    exponent = ""
    if draw(st.booleans()):
        value = draw(_exponent_near_limits())
        letter = draw(st.sampled_from("eE"))
        plus = draw(st.sampled_from(["", "+"])) if value >= 0 else "-"
        exponent = f"{letter}{plus}{'0' * draw(st.integers(0, 3))}{abs(value)}"
    return sign + whole + fraction + exponent


json_strings = st.builds(
    lambda text, ascii_only: json.dumps(text, ensure_ascii=ascii_only),
    st.text(st.characters(exclude_categories=("Cs",)), max_size=8),  # NUL included: jsonb refuses \u0000
    st.booleans(),
)
json_keys = st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=4)


def _small_numbers():
    return json_numbers().filter(lambda token: len(token) < 60)


json_values = st.recursive(
    st.one_of(_small_numbers(), json_strings, st.sampled_from(["true", "false", "null"])),
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda items: "[" + ",".join(items) + "]"),
        st.dictionaries(json_keys, inner, max_size=3).map(
            lambda members: "{" + ", ".join(f"{json.dumps(k)}:{v}" for k, v in members.items()) + "}"
        ),
    ),
    max_leaves=8,
)


def label_object(members: dict[str, str]) -> str:
    return "{" + ",  ".join(f"{json.dumps(key)}: {value}" for key, value in members.items()) + "}"


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(token=json_numbers())
@example(token="1E2")
@example(token="1.50")
@example(token="1e400")
@example(token="-0")
@example(token="-0.0e-2")
@example(token="1e131071")
@example(token="10e131071")
@example(token="1e-16383")
@example(token="0.1e-16383")
@example(token="0e1073741822")
@example(token="0e1073741823")
def test_a_number_reads_as_postgresql_numeric_text(postgres, token):
    text = label_object({"n": token})
    assert python_values(text) == postgres_values(postgres, text)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(members=st.dictionaries(json_keys, json_values, min_size=1, max_size=4))
def test_nested_values_booleans_and_null_read_as_jsonb_each_text(postgres, members):
    text = label_object(members)
    assert python_values(text) == postgres_values(postgres, text)


@pytest.mark.parametrize(
    "text",
    [
        '{"a": NaN}',
        '{"a": Infinity}',
        '{"a": -Infinity}',
        '{"a": [1, NaN]}',
        '{"a": 01}',
        '{"a": 1.}',
        '{"a": .5}',
        '{"a": +1}',
        '{"a": -}',
        '{"a": "\\ud800"}',
        '{"a": "\\udc00x"}',
        '{"a": "\\ud800\\ud800"}',
        '{"a": "\\ude00\\ud83d"}',
        '{"\\ud800": "key"}',
        '{"a": {"b": ["\\udfff"]}}',
        '{"a": "\\ud800\\u0041"}',
        '{"a": "\\u0000"}',
        '{"a": {"\\u0000": 1}}',
        '{"a": 1e131072}',
        '{"a": 1e-16384}',
        '{"a": 1' + "0" * 131072 + "}",
        '{"a": 1e99999999999999999999}',
    ],
)
def test_what_postgresql_refuses_is_refused(postgres, text):
    assert postgres_values(postgres, text) == REFUSED
    assert python_values(text) == REFUSED


@pytest.mark.parametrize(
    "text",
    ['{"a": "\\ud83d\\ude00"}', '{"a": "\\\\ud800"}', '{"a": "x\\u0001\\n\\"\\\\/"}', '{"a": 1, "a": 2.50}'],
)
def test_what_postgresql_accepts_reads_the_same(postgres, text):
    assert postgres_values(postgres, text) != REFUSED
    assert python_values(text) == postgres_values(postgres, text)


def test_the_summary_holds_numeric_and_nested_label_values_as_koku_writes_them(pg):
    """Through the engine: pod, node, namespace and volume labels holding numbers, booleans, null and nested values
    give the SQL reference's rows (koku's filter_json_by_keys over jsonb_each_text) and the texts derived by hand."""
    conn, schema = pg
    enabled = ["app", "replicas", "ratio", "flag", "meta", "none"]
    enable_keys(conn, schema, enabled)
    with tempfile.TemporaryDirectory() as root:
        builder = KokuParquetBuilder(root, account=ACCOUNT, source=SOURCE)
        pod_labels = '{"app": "web", "replicas": 1E2, "ratio": 1.50, "flag": true, "none": null, "meta": {"b": 2.0e0}}'
        builder.pod(DAY, pod="p1", namespace="shop", node="worker-a", resource_id="i-a", labels=pod_labels)
        builder.pod(DAY, pod="p2", namespace="shop", node="worker-a", resource_id="i-a", labels='{"replicas": 100}')
        builder.node_labels(DAY, node="worker-a", labels='{"ratio": -0, "meta": [1e1, "x"], "other": 7}')
        builder.namespace_labels(DAY, namespace="shop", labels='{"flag": false, "replicas": 12e-1}')
        builder.pvc(DAY, namespace="shop", pod="p1", pvc="claim", pv="pv-1", pv_labels='{"ratio": 1e20}', pvc_labels={})
        builder.write()
        run_engine(conn, schema, root, account=ACCOUNT, source=SOURCE, cluster_id="c1", cluster_alias="C1", days=[DAY])
        actual = engine_rows(conn, schema, SOURCE)
        expected = reference_summary(
            None,
            root,
            account=ACCOUNT,
            source=SOURCE,
            cluster_id="c1",
            cluster_alias="C1",
            start=DAY,
            end=DAY,
            enabled_keys=enabled,
            runs="day",
            **koku_settings_for_reference(conn, schema),
        )
    assert compare_summaries(expected, actual) == []
    node = {"ratio": "0", "meta": '[10, "x"]'}
    namespace = {"flag": "false", "replicas": "1.2"}
    p1 = {"app": "web", "replicas": "100", "ratio": "1.50", "flag": "true", "none": None, "meta": '{"b": 2.0}'}
    pod_maps = [row for row in actual["pod_labels"] if row]
    expected_maps = [{**node, **namespace, **p1}, {**node, **namespace, "replicas": "100"}]
    assert sorted(pod_maps, key=canonical_json) == sorted(expected_maps, key=canonical_json)
    assert [row for row in actual["volume_labels"] if row] == [{**node, **namespace, "ratio": "100000000000000000000"}]
