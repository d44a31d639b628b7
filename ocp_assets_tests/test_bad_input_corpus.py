"""A corpus of bad (and odd but valid) koku Parquet, each case through the CLI's path and the Dagster assets' path."""

import datetime as dt
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ocp_assets.core.errors import OcpAssetsError
from ocp_assets.core.identity import ClusterDay
from ocp_assets.core.pipeline import summarize_day
from ocp_assets.core.storage import open_data_root
from ocp_assets.defs.partitions import partition_key
from ocp_assets_tests.dagster_fixtures import DAY, build_cluster, dagster_env_fixture  # noqa: F401 (fixture)

pytestmark = pytest.mark.slow


@dataclass(frozen=True)
class Case:
    name: str
    report_type: str
    daily: bool
    change: Callable[[pa.Table], pa.Table]
    column: str | None  # the column the error must name (None: the file alone)
    row: bool = True  # whether the error must name the row
    statistics: bool = True  # False: the file is rewritten without footer statistics (as some writers leave it)


def _set_first(column: str, value, type_: pa.DataType | None = None) -> Callable[[pa.Table], pa.Table]:
    def change(table: pa.Table) -> pa.Table:
        values = table[column].to_pylist()
        values[0] = value
        field = table.schema.field(column)
        return table.set_column(table.schema.get_field_index(column), column, pa.array(values, type_ or field.type))

    return change


def _set_first_bytes(column: str, raw: bytes) -> Callable[[pa.Table], pa.Table]:
    """The first cell of a text column holding bytes that are not UTF-8, as Parquet lets a writer mark any bytes."""

    def change(table: pa.Table) -> pa.Table:
        values = [raw, *(v.encode() if v is not None else None for v in table[column].to_pylist()[1:])]
        as_text = pa.Array.from_buffers(pa.string(), len(values), pa.array(values, pa.binary()).buffers())
        return table.set_column(table.schema.get_field_index(column), column, as_text)

    return change


def _drop(column: str) -> Callable[[pa.Table], pa.Table]:
    return lambda table: table.drop_columns([column])


def _cast(column: str, type_: pa.DataType) -> Callable[[pa.Table], pa.Table]:
    return lambda table: table.set_column(table.schema.get_field_index(column), column, table[column].cast(type_))


CORRUPT = object()  # not a table change: the file's bytes are broken
DEEP_JSON = '{"app": ' + "[" * 5000 + "]" * 5000 + "}"
ZERO_TIME = dt.datetime(1, 1, 1)  # Go's zero time.Time
AFTER_NANOSECONDS = dt.datetime(9999, 12, 31)  # beyond timestamp[ns] (2262): pandas cannot hold it

BAD = [
    # pod usage, daily rows
    Case(
        "pod negative usage",
        "pod_usage",
        True,
        _set_first("pod_usage_cpu_core_seconds", -5.0),
        "pod_usage_cpu_core_seconds",
    ),
    Case(
        "pod negative memory request",
        "pod_usage",
        True,
        _set_first("pod_request_memory_byte_seconds", -1.0),
        "pod_request_memory_byte_seconds",
    ),
    Case(
        "pod negative effective usage",
        "pod_usage",
        True,
        _set_first("pod_effective_usage_cpu_core_seconds", -2.0),
        "pod_effective_usage_cpu_core_seconds",
    ),
    Case(
        "pod NaN usage",
        "pod_usage",
        True,
        _set_first("pod_usage_cpu_core_seconds", math.nan),
        "pod_usage_cpu_core_seconds",
    ),
    Case(
        "pod infinite limit",
        "pod_usage",
        True,
        _set_first("pod_limit_cpu_core_seconds", math.inf),
        "pod_limit_cpu_core_seconds",
    ),
    Case(
        "pod infinite memory usage",
        "pod_usage",
        True,
        _set_first("pod_usage_memory_byte_seconds", -math.inf),
        "pod_usage_memory_byte_seconds",
    ),
    Case(
        "pod usage beyond numeric(33,15)",
        "pod_usage",
        True,
        _set_first("pod_usage_cpu_core_seconds", 1e300),
        "pod_usage_cpu_core_seconds",
    ),
    Case(
        "capacity above koku's anomaly threshold",
        "pod_usage",
        True,
        _set_first("node_capacity_cpu_cores", 2e18),
        "node_capacity_cpu_cores",
    ),
    Case("pod NULL namespace", "pod_usage", True, _set_first("namespace", None), "namespace"),
    Case("pod NULL pod name", "pod_usage", True, _set_first("pod", None), "pod"),
    Case("pod NUL in namespace", "pod_usage", True, _set_first("namespace", "shop\x00evil"), "namespace"),
    Case("pod NUL in node", "pod_usage", True, _set_first("node", "worker\x00-1"), "node"),
    Case("pod namespace over 253 characters", "pod_usage", True, _set_first("namespace", "n" * 300), "namespace"),
    Case(
        "pod resource id over 253 characters",
        "pod_usage",
        True,
        _set_first("resource_id", "i-" + "9" * 260),
        "resource_id",
    ),
    Case("pod labels not JSON", "pod_usage", True, _set_first("pod_labels", '{"app": '), "pod_labels"),
    Case("pod labels a JSON array", "pod_usage", True, _set_first("pod_labels", "[1, 2]"), "pod_labels"),
    Case("pod labels a JSON string", "pod_usage", True, _set_first("pod_labels", '"web"'), "pod_labels"),
    Case("pod labels nested too deep", "pod_usage", True, _set_first("pod_labels", DEEP_JSON), "pod_labels"),
    Case(
        "pod labels with an escaped NUL",
        "pod_usage",
        True,
        _set_first("pod_labels", '{"app": "we\\u0000b"}'),
        "pod_labels",
    ),
    Case(
        "pod column missing",
        "pod_usage",
        True,
        _drop("pod_usage_cpu_core_seconds"),
        "pod_usage_cpu_core_seconds",
        row=False,
    ),
    Case(
        "pod column typed text",
        "pod_usage",
        True,
        _cast("pod_request_cpu_core_seconds", pa.string()),
        "pod_request_cpu_core_seconds",
        row=False,
    ),
    Case("pod NULL interval_start", "pod_usage", True, _set_first("interval_start", None), "interval_start"),
    Case(
        "pod interval_start typed text",
        "pod_usage",
        True,
        _cast("interval_start", pa.string()),
        "interval_start",
        row=False,
    ),
    Case("pod daily file corrupt", "pod_usage", True, CORRUPT, None, row=False),
    # interval_start NULL or implausible, with and without footer statistics (B3, C4)
    Case(
        "pod NULL interval_start, no statistics",
        "pod_usage",
        True,
        _set_first("interval_start", None),
        "interval_start",
        statistics=False,
    ),
    Case(
        "pod interval_start at Go's zero time",
        "pod_usage",
        True,
        _set_first("interval_start", ZERO_TIME),
        "interval_start",
    ),
    Case(
        "pod interval_start at Go's zero time, no statistics",
        "pod_usage",
        True,
        _set_first("interval_start", ZERO_TIME),
        "interval_start",
        statistics=False,
    ),
    Case(
        "pod interval_start in year 9999",
        "pod_usage",
        True,
        _set_first("interval_start", AFTER_NANOSECONDS),
        "interval_start",
    ),
    Case(
        "pod interval_start at the Unix epoch",
        "pod_usage",
        True,
        _set_first("interval_start", dt.datetime(1970, 1, 1)),
        "interval_start",
    ),
    Case(
        "pod interval_start two months after its folder",
        "pod_usage",
        True,
        _set_first("interval_start", dt.datetime.combine(DAY, dt.time()) + dt.timedelta(days=70)),
        "interval_start",
    ),
    Case(
        "pod interval_start in microseconds at year 1",
        "pod_usage",
        True,
        _set_first("interval_start", ZERO_TIME, pa.timestamp("us")),
        "interval_start",
    ),
    Case(
        "pod interval_start as a date in year 9999",
        "pod_usage",
        True,
        _set_first("interval_start", AFTER_NANOSECONDS.date(), pa.date32()),
        "interval_start",
    ),
    # text that is not UTF-8, and label JSON koku's ::jsonb refuses (C5, C12)
    Case("pod namespace not UTF-8", "pod_usage", True, _set_first_bytes("namespace", b"shop\xff"), "namespace"),
    Case(
        "pod labels not UTF-8",
        "pod_usage",
        True,
        _set_first_bytes("pod_labels", b'{"app": "\xc3\x28"}'),
        "pod_labels",
    ),
    Case(
        "pod labels with a lone surrogate",
        "pod_usage",
        True,
        _set_first("pod_labels", '{"app": "we\\ud800b"}'),
        "pod_labels",
    ),
    Case("pod labels with NaN", "pod_usage", True, _set_first("pod_labels", '{"app": NaN}'), "pod_labels"),
    Case(
        "pod labels with Infinity under a key not enabled",
        "pod_usage",
        True,
        _set_first("pod_labels", '{"app": "web", "replicas": -Infinity}'),
        "pod_labels",
    ),
    Case(
        "pod labels with a number beyond numeric",
        "pod_usage",
        True,
        _set_first("pod_labels", '{"app": 1e131072}'),
        "pod_labels",
    ),
    # pod usage, hourly rows (node capacity)
    Case(
        "capacity negative",
        "pod_usage",
        False,
        _set_first("node_capacity_cpu_core_seconds", -3600.0),
        "node_capacity_cpu_core_seconds",
    ),
    Case(
        "capacity NaN",
        "pod_usage",
        False,
        _set_first("node_capacity_memory_byte_seconds", math.nan),
        "node_capacity_memory_byte_seconds",
    ),
    Case(
        "capacity column missing",
        "pod_usage",
        False,
        _drop("node_capacity_cpu_core_seconds"),
        "node_capacity_cpu_core_seconds",
        row=False,
    ),
    Case("pod hourly file corrupt", "pod_usage", False, CORRUPT, None, row=False),
    Case(
        "capacity NULL interval_start, no statistics",
        "pod_usage",
        False,
        _set_first("interval_start", None),
        "interval_start",
        statistics=False,
    ),
    Case(
        "capacity interval_start in year 9999, no statistics",
        "pod_usage",
        False,
        _set_first("interval_start", AFTER_NANOSECONDS),
        "interval_start",
        statistics=False,
    ),
    Case("capacity node not UTF-8", "pod_usage", False, _set_first_bytes("node", b"\xed\xa0\x80"), "node"),
    # storage usage
    Case(
        "storage negative capacity",
        "storage_usage",
        True,
        _set_first("persistentvolumeclaim_capacity_bytes", -1.0),
        "persistentvolumeclaim_capacity_bytes",
    ),
    Case(
        "storage NaN usage",
        "storage_usage",
        True,
        _set_first("persistentvolumeclaim_usage_byte_seconds", math.nan),
        "persistentvolumeclaim_usage_byte_seconds",
    ),
    Case(
        "storage capacity beyond numeric(33,15)",
        "storage_usage",
        True,
        _set_first("persistentvolumeclaim_capacity_bytes", 1e300),
        "persistentvolumeclaim_capacity_bytes",
    ),
    Case(
        "storage infinite request",
        "storage_usage",
        True,
        _set_first("volume_request_storage_byte_seconds", math.inf),
        "volume_request_storage_byte_seconds",
    ),
    Case("storage NULL namespace", "storage_usage", True, _set_first("namespace", None), "namespace"),
    Case(
        "storage claim over 253 characters",
        "storage_usage",
        True,
        _set_first("persistentvolumeclaim", "c" * 254),
        "persistentvolumeclaim",
    ),
    Case(
        "storage PV labels not JSON",
        "storage_usage",
        True,
        _set_first("persistentvolume_labels", "{tier: disk}"),
        "persistentvolume_labels",
    ),
    Case(
        "storage PVC labels a JSON array",
        "storage_usage",
        True,
        _set_first("persistentvolumeclaim_labels", '["db"]'),
        "persistentvolumeclaim_labels",
    ),
    Case("storage column missing", "storage_usage", True, _drop("persistentvolume"), "persistentvolume", row=False),
    Case("storage file corrupt", "storage_usage", True, CORRUPT, None, row=False),
    Case(
        "storage NULL interval_start, no statistics",
        "storage_usage",
        True,
        _set_first("interval_start", None),
        "interval_start",
        statistics=False,
    ),
    Case(
        "storage interval_start at Go's zero time",
        "storage_usage",
        True,
        _set_first("interval_start", ZERO_TIME),
        "interval_start",
    ),
    Case(
        "storage claim not UTF-8",
        "storage_usage",
        True,
        _set_first_bytes("persistentvolumeclaim", b"data-\x80"),
        "persistentvolumeclaim",
    ),
    Case(
        "storage PV labels with a lone low surrogate key",
        "storage_usage",
        True,
        _set_first("persistentvolume_labels", '{"\\udc00": "disk"}'),
        "persistentvolume_labels",
    ),
    # node labels
    Case("node labels not JSON", "node_labels", True, _set_first("node_labels", '{"team": '), "node_labels"),
    Case("node labels a JSON string", "node_labels", True, _set_first("node_labels", '"platform"'), "node_labels"),
    Case(
        "node labels with an escaped NUL",
        "node_labels",
        True,
        _set_first("node_labels", '{"team": "\\u0000"}'),
        "node_labels",
    ),
    Case("node labels column missing", "node_labels", True, _drop("node_labels"), "node_labels", row=False),
    Case("node labels hourly file corrupt", "node_labels", False, CORRUPT, None, row=False),
    Case(
        "node labels NULL interval_start, no statistics",
        "node_labels",
        True,
        _set_first("interval_start", None),
        "interval_start",
        statistics=False,
    ),
    Case(
        "node labels hourly interval_start at Go's zero time, no statistics",
        "node_labels",
        False,
        _set_first("interval_start", ZERO_TIME),
        "interval_start",
        statistics=False,
    ),
    Case("node labels not UTF-8", "node_labels", True, _set_first_bytes("node_labels", b"\xff\xfe{}"), "node_labels"),
    Case(
        "node labels with a NaN nested",
        "node_labels",
        True,
        _set_first("node_labels", '{"team": {"size": [1, NaN]}}'),
        "node_labels",
    ),
    # namespace labels
    Case(
        "namespace labels not JSON",
        "namespace_labels",
        True,
        _set_first("namespace_labels", "team=shop"),
        "namespace_labels",
    ),
    Case(
        "namespace labels nested too deep",
        "namespace_labels",
        True,
        _set_first("namespace_labels", DEEP_JSON),
        "namespace_labels",
    ),
    Case(
        "namespace labels hourly NULL interval_start",
        "namespace_labels",
        False,
        _set_first("interval_start", None),
        "interval_start",
    ),
    Case(
        "namespace labels with Infinity",
        "namespace_labels",
        True,
        _set_first("namespace_labels", '{"team": Infinity}'),
        "namespace_labels",
    ),
    Case(
        "namespace labels with a lone surrogate",
        "namespace_labels",
        False,
        _set_first("namespace_labels", '{"team": "\\ud83d"}'),
        "namespace_labels",
    ),
    Case(
        "namespace labels column missing",
        "namespace_labels",
        False,
        _drop("namespace_labels"),
        "namespace_labels",
        row=False,
    ),
]

ODD_BUT_VALID = [
    (
        "extra unknown columns",
        "pod_usage",
        lambda t: t.append_column("added_by_a_newer_operator", pa.array(["x"] * t.num_rows)),
    ),
    (
        "unicode and SQL metacharacters in names",
        "pod_usage",
        _set_first("namespace", "shöp'); DROP TABLE reporting_ocp_nodes; --\"|,"),
    ),
    (
        "a label map of 2,000 keys",
        "pod_usage",
        _set_first(
            "pod_labels",
            "{" + ", ".join(f'"key_{i}": "value {i} ü \\" \\\\"' for i in range(2000)) + ', "app": "web-0"}',
        ),
    ),
    (
        "label values that are numbers, booleans, null, nested or escaped surrogate pairs",
        "pod_usage",
        _set_first("pod_labels", '{"app": 1E2, "team": [1.50, true, null, {"b": -0}], "env": "\\ud83d\\ude00"}'),
    ),
]


def _daily_or_hourly_file(data_root: Path, identity, report_type: str, daily: bool) -> Path:
    folder = data_root / "data" / "parquet" / ("daily/" if daily else "") / identity.account / "OCP" / report_type
    (path,) = sorted(folder.glob(f"source={identity.source_uuid}/**/*.parquet"))
    return path


def _break(path: Path, change, statistics: bool = True) -> None:
    if change is CORRUPT:
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2] + b"\0" * 16)
    else:
        pq.write_table(change(pq.read_table(path)), path, write_statistics=statistics)


def _expect_named(message: str, case: Case, path: Path) -> None:
    assert path.name in message, message
    if case.column:
        assert f"column '{case.column}'" in message, message
    if case.row:
        assert "row 1" in message, message  # every case breaks the file's first row


@pytest.fixture(name="corpus_cluster")
def corpus_cluster_fixture(dagster_env):
    identity = build_cluster(dagster_env.data_root, "corpus", [DAY])
    dagster_env.register(identity)
    key = str(partition_key("corpus", DAY))
    assert dagster_env.materialize(partition_key=key).success
    return dagster_env, identity, key, dagster_env.summary_rows()


@pytest.mark.parametrize("case", BAD, ids=[c.name for c in BAD])
def test_bad_input_is_named_and_changes_nothing(corpus_cluster, pg, case):
    env, identity, key, before = corpus_cluster
    path = _daily_or_hourly_file(env.data_root, identity, case.report_type, case.daily)
    _break(path, case.change, case.statistics)

    # The CLI's path: one error naming file, column and row; the day's rows as they were.
    conn, schema = pg
    cluster_day = ClusterDay(identity.account, identity.source_uuid, "corpus", identity.cluster_alias, DAY)
    with pytest.raises(OcpAssetsError) as error:
        summarize_day(conn, schema, open_data_root(str(env.data_root)), cluster_day)
    _expect_named(str(error.value), case, path)
    assert env.summary_rows() == before

    # The Dagster path: a failed blocking check naming the same, no retry, the rows as they were.
    result = env.materialize(partition_key=key)
    assert not result.success
    assert not [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]
    failed = [e for e in result.get_asset_check_evaluations() if not e.passed]
    assert len(failed) == 1 and failed[0].partition == key
    _expect_named(failed[0].description or "", case, path)
    assert env.summary_rows() == before


@pytest.mark.parametrize(("name", "report_type", "change"), ODD_BUT_VALID, ids=[c[0] for c in ODD_BUT_VALID])
def test_odd_but_valid_input_is_summarised_the_same_by_both_paths(corpus_cluster, pg, name, report_type, change):
    env, identity, key, _ = corpus_cluster
    path = _daily_or_hourly_file(env.data_root, identity, report_type, daily=True)
    _break(path, change)

    result = env.materialize(partition_key=key)
    assert result.success, [e.description for e in result.get_asset_check_evaluations() if not e.passed]
    through_dagster = env.summary_rows()
    conn, schema = pg
    cluster_day = ClusterDay(identity.account, identity.source_uuid, "corpus", identity.cluster_alias, DAY)
    summarize_day(conn, schema, open_data_root(str(env.data_root)), cluster_day)
    assert env.summary_rows() == through_dagster
    assert dt.date(2026, 3, 3) in {r[1] for r in through_dagster}


def test_files_without_footer_statistics_give_the_same_rows(corpus_cluster, pg):
    """Every file of the cluster rewritten without statistics: both paths read the data instead and write the same."""
    env, identity, key, before = corpus_cluster
    for path in sorted(Path(env.data_root, "data").rglob(f"source={identity.source_uuid}/**/*.parquet")):
        _break(path, lambda table: table, statistics=False)
    conn, schema = pg
    cluster_day = ClusterDay(identity.account, identity.source_uuid, "corpus", identity.cluster_alias, DAY)
    summarize_day(conn, schema, open_data_root(str(env.data_root)), cluster_day)
    assert env.summary_rows() == before
    assert env.materialize(partition_key=key).success
    assert env.summary_rows() == before
