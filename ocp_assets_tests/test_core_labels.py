"""Pure-core tests of label handling: enabled-key filtering, precedence merges and the D2(b) per-day choice."""

import datetime as dt
import json

import numpy as np
import pyarrow as pa
import pytest

from ocp_assets.core.labels import (
    ALWAYS_ALLOWED_KEY,
    LabelCatalog,
    MalformedLabelJSON,
    allowed_label_keys,
    canonical_json,
    resolve_entity_labels,
)


def catalog(*enabled: str) -> LabelCatalog:
    return LabelCatalog(allowed_label_keys(enabled))


def maps(cat: LabelCatalog, ids) -> list[dict]:
    return [cat.maps[i] for i in ids]


def test_vm_key_is_allowed_even_when_no_key_is_enabled():
    cat = catalog()
    ids = cat.filter_column(pa.array(['{"vm_kubevirt_io_name": "vm1", "app": "web"}', '{"app": "web"}']))
    assert maps(cat, ids) == [{ALWAYS_ALLOWED_KEY: "vm1"}, {}]


def test_filter_keeps_only_enabled_keys_and_null_or_blank_is_empty():
    cat = catalog("app", "tier")
    ids = cat.filter_column(pa.array(['{"app": "web", "team": "a", "tier": "1"}', None, "  ", "{}"]))
    assert maps(cat, ids) == [{"app": "web", "tier": "1"}, {}, {}, {}]


def test_each_distinct_string_is_parsed_once(monkeypatch):
    cat = catalog("app")
    seen = []
    original = cat.filter_text
    monkeypatch.setattr(cat, "filter_text", lambda text: seen.append(text) or original(text))
    column = pa.array(['{"app": "a"}'] * 1000 + ['{"app": "b"}'] * 1000)
    ids = cat.filter_column(column)
    assert sorted(seen) == ['{"app": "a"}', '{"app": "b"}']
    assert len(set(ids[:1000])) == 1 and ids[0] != ids[1999]


def test_values_come_back_as_text_like_jsonb_each_text():
    cat = catalog("n", "flag")
    [label_id] = cat.filter_column(pa.array(['{"n": 1, "flag": true}']))
    assert cat.maps[label_id] == {"n": "1", "flag": "true"}


def test_malformed_json_names_the_value():
    cat = catalog("app")
    with pytest.raises(MalformedLabelJSON, match="not a JSON object"):
        cat.filter_column(pa.array(['{"app": "web"', '{"app": "ok"}']))
    with pytest.raises(MalformedLabelJSON, match="a JSON list"):
        cat.filter_text('["app"]')


def test_merge_later_maps_win_like_jsonb_concatenation():
    cat = catalog("app", "env", "team")
    node = cat.filter_column(pa.array(['{"app": "node", "env": "node", "team": "node"}'] * 2))
    namespace = cat.filter_column(pa.array(['{"app": "ns", "env": "ns"}', "{}"]))
    pod = cat.filter_column(pa.array(['{"app": "pod"}', "{}"]))
    merged = cat.merge(node, namespace, pod)
    # row 0: pod wins app, namespace wins env, node keeps team; row 1: only node labels
    assert maps(cat, merged) == [
        {"app": "pod", "env": "ns", "team": "node"},
        {"app": "node", "env": "node", "team": "node"},
    ]


def test_canonical_json_ignores_key_order_and_keeps_unicode():
    assert canonical_json({"b": "é", "a": "x/y+z.1"}) == canonical_json({"a": "x/y+z.1", "b": "é"})
    assert json.loads(canonical_json({"b": "é"})) == {"b": "é"}
    assert "é" in canonical_json({"b": "é"})


def test_one_label_set_per_entity_uses_the_latest_hour_when_the_enabled_set_changes():
    cat = catalog("app")
    daily_entities = pa.chunked_array([pa.array(["n1", "n1", "n2", "n2"])])
    # n1 changed its enabled label during the day; n2 changed only a disabled key (same filtered set).
    daily_ids = cat.filter_column(
        pa.array(['{"app": "old"}', '{"app": "new"}', '{"app": "x", "z": "1"}', '{"app": "x", "z": "2"}'])
    )
    hours = [dt.datetime(2026, 10, 1, h) for h in (3, 17, 9)]
    hourly_entities = pa.chunked_array([pa.array(["n1", "n1", "n1"])])
    hourly_ids = cat.filter_column(pa.array(['{"app": "old"}', '{"app": "new"}', '{"app": "old"}']))
    hourly_starts = pa.chunked_array([pa.array(hours, pa.timestamp("ms"))])
    chosen = resolve_entity_labels(cat, daily_entities, daily_ids, hourly_entities, hourly_ids, hourly_starts)
    # n1's latest hour is 17:00, which carried app=new; n2 has a single filtered set.
    assert cat.maps[chosen["n1"]] == {"app": "new"}
    assert cat.maps[chosen["n2"]] == {"app": "x"}


def test_without_hourly_rows_the_greatest_text_wins_deterministically():
    cat = catalog("app")
    entities = pa.chunked_array([pa.array(["ns", "ns"])])
    ids = cat.filter_column(pa.array(['{"app": "b"}', '{"app": "a"}']))
    chosen = resolve_entity_labels(cat, entities, ids)
    assert cat.maps[chosen["ns"]] == {"app": "b"}
    assert resolve_entity_labels(cat, pa.chunked_array([pa.array([], pa.string())]), np.zeros(0, dtype=np.int64)) == {}


@pytest.mark.parametrize(
    ("number", "text"),
    [
        ("1E2", "100"),  # numeric keeps no exponent: scale = fraction digits - exponent, at least 0
        ("1.50", "1.50"),  # trailing zeros are part of numeric's scale
        ("-0", "0"),  # numeric has no negative zero
        ("-0.0e-2", "0.000"),
        ("12e-1", "1.2"),
        ("1.5000e2", "150.00"),
        ("123456789012345678901234567890", "123456789012345678901234567890"),  # never a float
        ("1e40", "1" + "0" * 40),
    ],
)
def test_numbers_come_back_as_postgresql_numeric_text(number, text):
    cat = catalog("n")
    [label_id] = cat.filter_column(pa.array([f'{{"n": {number}}}']))
    assert cat.maps[label_id] == {"n": text}


def test_nested_values_come_back_as_jsonb_text():
    cat = catalog("n")
    label_id = cat.filter_text('{"n": {"bb": [1E1, false, null], "a": "é\\n"}}')
    # jsonb orders keys by length, then bytes; ", " and ": " separators; non-ASCII kept, \n escaped
    assert cat.maps[label_id] == {"n": '{"a": "é\\n", "bb": [10, false, null]}'}


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"n": NaN}', "NaN is not JSON"),
        ('{"n": -Infinity}', "-Infinity is not JSON"),
        ('{"n": 1e131072}', "overflows PostgreSQL's numeric"),
        ('{"n": "\\ud800"}', "lone surrogate"),
        ('{"other": ["\\udc00"]}', "lone surrogate"),  # a key that is not enabled is read all the same, like ::jsonb
        ('{"\\u0000": "x"}', "\\\\u0000"),
    ],
)
def test_what_jsonb_refuses_is_malformed_even_under_a_key_not_enabled(text, reason):
    with pytest.raises(MalformedLabelJSON, match=reason):
        catalog("n").filter_text(text)
