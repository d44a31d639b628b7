"""Label maps for the summary: filtering to enabled keys, D2(b) per-day resolution and precedence merges (contract
3.2-3.3, 3.8).

Every distinct label string is parsed once and every distinct combination merged once: rows carry small
integer ids into a LabelCatalog, never dicts.
"""

import json
import re
from collections.abc import Iterable, Mapping
from decimal import Decimal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

# PGSQL prepends this key to the enabled list, so it is allowed even when no key is enabled (D1).
ALWAYS_ALLOWED_KEY = "vm_kubevirt_io_name"

# PostgreSQL's numeric (what jsonb keeps a JSON number as): at most 131072 digits before the decimal point and 16383
# after; numeric_in refuses an exponent of INT_MAX/2 or more either way before looking at the digits.
NUMERIC_MAX_LEADING_EXPONENT = 131071
NUMERIC_MAX_SCALE = 16383
NUMERIC_MAX_EXPONENT = 2**30 - 1
_NUMBER = re.compile(r"-?(\d+)(?:\.(\d+))?(?:[eE]([-+]?\d+))?")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class MalformedLabelJSON(ValueError):
    """A label cell that is not a JSON object koku's ``::jsonb`` accepts; the reader turns it into an InputDataError
    with file and row."""

    def __init__(self, value: str, reason: str):
        self.value = value
        super().__init__(f"label value {value[:80]!r} is not a JSON object PostgreSQL's jsonb accepts: {reason}")


class _NumericText(str):
    """A JSON number as PostgreSQL's jsonb prints it (numeric's canonical text), told apart from a JSON string."""


def numeric_text(token: str) -> str:
    """The text jsonb_each_text gives for the JSON number `token`: the exact decimal value with the token's
    scale (digits after the point, less the exponent, at least 0) and no exponent: 1E2 -> 100, 1.50 -> 1.50,
    -0 -> 0, 1e-3 -> 0.001. ValueError for a number PostgreSQL's numeric cannot hold ("value overflows numeric
    format")."""
    number = _NUMBER.fullmatch(token)
    if number is None:  # the JSON decoder hands over only number tokens; anything else is a caller's mistake
        raise ValueError(f"{token[:40]!r} is not a JSON number")
    whole, fraction, exponent_text = number.groups()
    fraction = fraction or ""
    exponent_digits = (exponent_text or "0").lstrip("+-").lstrip("0")
    if len(exponent_digits) > 10 or int(exponent_digits or "0") >= NUMERIC_MAX_EXPONENT:
        raise ValueError(f"number {token[:40]} overflows PostgreSQL's numeric (exponent too large)")
    exponent = int(exponent_text or "0")
    scale = max(0, len(fraction) - exponent)
    if scale > NUMERIC_MAX_SCALE:
        raise ValueError(f"number {token[:40]} overflows PostgreSQL's numeric (more than 16383 decimal places)")
    digits = (whole + fraction).lstrip("0")
    if not digits:  # numeric has no negative zero
        return "0." + "0" * scale if scale else "0"
    leading_exponent = len(whole) - 1 - (len(whole) + len(fraction) - len(digits)) + exponent
    if leading_exponent > NUMERIC_MAX_LEADING_EXPONENT:
        raise ValueError(f"number {token[:40]} overflows PostgreSQL's numeric (more than 131072 digits)")
    return format(Decimal(token), "f")


def _refuse_constant(name: str):
    raise ValueError(f"{name} is not JSON (PostgreSQL's jsonb refuses it)")


def _numeric(token: str) -> _NumericText:
    return _NumericText(numeric_text(token))


# Python's json module as PostgreSQL's jsonb input reads a document: numbers kept exactly (as numeric text, never a
# float or an int with a digit limit), NaN and Infinity refused.
_DECODER = json.JSONDecoder(parse_float=_numeric, parse_int=_numeric, parse_constant=_refuse_constant)


def _strings_jsonb_refuses(value: object) -> str | None:
    """Why jsonb refuses a decoded string in `value` (keys included, at any depth), or None: a lone surrogate
    (an unpaired \\ud800-\\udfff escape) or \\u0000, which its text cannot hold."""
    pending = [value]
    while pending:
        item = pending.pop()
        if isinstance(item, dict):
            pending.extend(item.keys())
            pending.extend(item.values())
        elif isinstance(item, list):
            pending.extend(item)
        elif isinstance(item, str):
            if "\x00" in item:
                return "\\u0000 (PostgreSQL's jsonb cannot hold it)"
            if _LONE_SURROGATE.search(item):
                return "a lone surrogate escape (\\ud800-\\udfff without its pair; PostgreSQL's jsonb refuses it)"
    return None


def parse_label_object(text: str) -> dict:
    """One label cell parsed as koku's ``::jsonb`` cast reads it; MalformedLabelJSON where that cast fails or the
    value is not an object. Numbers (at any depth) come back as their numeric text."""
    try:
        parsed = _DECODER.decode(text)
    except json.JSONDecodeError as exc:
        raise MalformedLabelJSON(text, exc.msg) from None
    except ValueError as exc:  # NaN, Infinity or a number beyond numeric, from the hooks above
        raise MalformedLabelJSON(text, str(exc)) from None
    except RecursionError:
        raise MalformedLabelJSON(text, "nested deeper than the parser goes") from None
    if not isinstance(parsed, dict):
        raise MalformedLabelJSON(text, f"a JSON {type(parsed).__name__}")
    # A decoded NUL or surrogate comes from a \u escape (or a surrogate already in the text); else no walk is needed.
    refused = _strings_jsonb_refuses(parsed) if "\\u" in text or _LONE_SURROGATE.search(text) else None
    if refused:
        raise MalformedLabelJSON(text, refused)
    return parsed


def jsonb_key_order(key: str) -> tuple[int, bytes]:
    """The order jsonb stores (and prints) an object's keys: byte length, then bytes."""
    encoded = key.encode("utf-8")
    return len(encoded), encoded


def jsonb_text(value: object) -> str:
    """A parsed JSON value as jsonb prints it: keys in jsonb's order, ", " and ": " separators, numbers as
    numeric text, strings escaped like PostgreSQL's escape_json (which Python's ensure_ascii=False matches)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, _NumericText):
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(jsonb_text(item) for item in value) + "]"
    if not isinstance(value, dict):
        raise TypeError(f"not a value parse_label_object returns: {type(value).__name__}")
    items = (f"{jsonb_text(key)}: {jsonb_text(value[key])}" for key in sorted(value, key=jsonb_key_order))
    return "{" + ", ".join(items) + "}"


def allowed_label_keys(enabled_keys: Iterable[str]) -> frozenset[str]:
    return frozenset(enabled_keys) | {ALWAYS_ALLOWED_KEY}


def canonical_json(labels: Mapping[str, object]) -> str:
    """One text per map, whatever the key order: the form used as a group key and written to jsonb."""
    return json.dumps(labels, sort_keys=True, ensure_ascii=False, separators=(", ", ": "))


def _as_text(value: object) -> str | None:
    # PGSQL rebuilds the map from jsonb_each_text, so every value comes back as its jsonb text (JSON null stays null).
    if value is None or (isinstance(value, str) and not isinstance(value, _NumericText)):
        return value
    return jsonb_text(value)


# A filtered label map: each key's jsonb text, None where the JSON value is null.
LabelMap = dict[str, str | None]


class LabelCatalog:
    """Interns filtered label maps; id 0 is always the empty map."""

    EMPTY = 0

    def __init__(self, allowed_keys: frozenset[str]):
        self.allowed_keys = allowed_keys
        self.maps: list[LabelMap] = [{}]
        self.texts: list[str] = ["{}"]
        self._ids: dict[str, int] = {"{}": 0}

    def intern(self, labels: LabelMap) -> int:
        text = canonical_json(labels)
        found = self._ids.get(text)
        if found is None:
            found = self._ids[text] = len(self.maps)
            self.maps.append(labels)
            self.texts.append(text)
        return found

    def filter_text(self, text: str | None) -> int:
        """Id of the enabled-key part of one label JSON string; NULL or blank gives the empty map (PGSQL)."""
        if text is None or not text.strip():
            return self.EMPTY
        parsed = parse_label_object(text)
        kept = {k: _as_text(v) for k, v in parsed.items() if k in self.allowed_keys}
        return self.intern(kept) if kept else self.EMPTY

    def filter_column(self, column: pa.ChunkedArray | pa.Array) -> np.ndarray:
        """Per-row filtered-map ids of a string column, parsing each distinct string once."""
        if len(column) == 0:
            return np.zeros(0, dtype=np.int64)
        encoded = (
            pc.dictionary_encode(column).combine_chunks()
            if isinstance(column, pa.ChunkedArray)
            else pc.dictionary_encode(column)
        )
        lookup = np.fromiter(
            (self.filter_text(text) for text in encoded.dictionary.to_pylist()),
            dtype=np.int64,
            count=len(encoded.dictionary),
        )
        indices = encoded.indices
        if indices.null_count:
            # NULL cells have no dictionary entry; they filter to the empty map like blank ones.
            indices = pc.fill_null(indices, len(lookup))
            lookup = np.append(lookup, self.EMPTY)
        return lookup[indices.to_numpy(zero_copy_only=False)]

    def merge(self, *id_columns: np.ndarray) -> np.ndarray:
        """Per-row ids of the maps merged left to right (later columns win, like jsonb ||), one merge per distinct
        combination.
        """
        if len(id_columns) == 1:
            return id_columns[0]
        stacked = np.stack(id_columns, axis=1)
        if stacked.shape[0] == 0:
            return np.zeros(0, dtype=np.int64)
        combos, inverse = np.unique(stacked, axis=0, return_inverse=True)
        merged_ids = np.empty(len(combos), dtype=np.int64)
        for position, combo in enumerate(combos):
            merged: LabelMap = {}
            for label_id in combo:
                merged.update(self.maps[label_id])
            merged_ids[position] = self.intern(merged) if merged else self.EMPTY
        return merged_ids[inverse.reshape(-1)]

    def texts_of(self, ids: np.ndarray) -> pa.Array:
        return pa.array(self.texts, pa.string()).take(pa.array(ids))


def _last_per_entity(
    catalog: LabelCatalog, entities: pa.ChunkedArray | pa.Array, order: np.ndarray, label_ids: np.ndarray
) -> dict[str, int]:
    """For each entity, the label id of its row with the greatest (order, canonical text)."""
    texts = pa.array(catalog.texts, pa.string()).take(pa.array(label_ids))
    table = pa.table({"entity": entities, "order": order, "text": texts, "id": label_ids})
    table = table.sort_by([("entity", "ascending"), ("order", "ascending"), ("text", "ascending")])
    encoded = pc.dictionary_encode(table["entity"]).combine_chunks()
    codes = encoded.indices.to_numpy(zero_copy_only=False)
    last_rows = np.append(np.nonzero(codes[1:] != codes[:-1])[0], len(codes) - 1)
    names = encoded.dictionary.take(pa.array(codes[last_rows])).to_pylist()
    return dict(zip(names, table["id"].to_numpy()[last_rows].tolist()))


def resolve_entity_labels(
    catalog: LabelCatalog,
    daily_entities: pa.ChunkedArray,
    daily_ids: np.ndarray,
    hourly_entities: pa.ChunkedArray | None = None,
    hourly_ids: np.ndarray | None = None,
    hourly_starts: pa.ChunkedArray | None = None,
) -> dict[str, int]:
    """One filtered label map per node or namespace for one day (D2(b)).

    koku joins every distinct filtered set of the day and so duplicates pod rows; ocp_assets keeps the set
    seen in the latest hour of the day, from the hourly label rows. Among several sets at that hour, or for an
    entity with no hourly rows, the greatest canonical JSON text wins, so the choice is deterministic.
    """
    if len(daily_entities) == 0:
        return {}
    chosen = _last_per_entity(catalog, daily_entities, np.zeros(len(daily_ids), dtype=np.int64), daily_ids)
    pairs = pa.table({"entity": daily_entities, "id": daily_ids}).group_by(["entity", "id"]).aggregate([])
    counts = pairs.group_by("entity").aggregate([("id", "count")])
    conflicted = counts.filter(pc.greater(counts["id_count"], 1))["entity"]
    if len(conflicted) == 0 or hourly_entities is None or hourly_ids is None or len(hourly_entities) == 0:
        return chosen
    mask = pc.is_in(hourly_entities, value_set=conflicted.combine_chunks())
    picked = np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool)
    if picked.any():
        order = pc.cast(hourly_starts, pa.int64()).to_numpy(zero_copy_only=False)[picked]
        chosen.update(_last_per_entity(catalog, pc.filter(hourly_entities, mask), order, hourly_ids[picked]))
    return chosen
