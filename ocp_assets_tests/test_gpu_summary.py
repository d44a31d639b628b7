"""GPU usage summary (reporting_ocp_gpu_summary_p): hand-derived scenarios, bad input, reference SQL, Dagster assets."""

import datetime as dt
import logging
import subprocess
import sys
import tempfile
import uuid
from collections import defaultdict
from pathlib import Path

import dagster as dg
import hypothesis.strategies as st
import pandas as pd
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest
from hypothesis import HealthCheck, given, settings
from psycopg import sql

from ocp_assets.core import outcomes as O
from ocp_assets.core.generate import generate
from ocp_assets.core.identity import ClusterDay
from ocp_assets.core.pipeline import DayTask, summarize_cluster_day, summarize_day
from ocp_assets.core.storage import open_data_root
from ocp_assets.defs.partitions import partition_key
from ocp_assets_tests.dagster_fixtures import (  # noqa: F401 (dagster_env_fixture is the dagster_env fixture)
    DAY,
    build_cluster,
    dagster_env_fixture,
)
from ocp_assets_tests.reference.koku_gpu_sql import (
    compare_gpu_summaries,
    engine_gpu_rows,
    reference_gpu_summary,
)
from ocp_assets_tests.scenario_support import add_cost_category, approx, nise_cache_dir, platform_category_id

ACCOUNT = "org1234567"
CLUSTER = "gpu-cluster"
ALIAS = "GPU Cluster"
GPU_TABLE = "reporting_ocp_gpu_summary_p"
GPU_CHECKS = {name for stage in O.GPU_STAGES for name in O.CHECKS_BY_STAGE[stage]}

# ---------------------------------------------------------------- koku-layout GPU Parquet, written with pyarrow
# The hourly gpu_usage table as koku's post-processor leaves it (contract 1.1, 1.3, 1.4): the CSV columns (strings
# cleaned up, an empty field kept as ''), metrics as double, then the MIG fields koku derives (nullable int64).
RAW_COLUMNS = [
    ("report_period_start", pa.timestamp("ms")),
    ("report_period_end", pa.timestamp("ms")),
    ("interval_start", pa.timestamp("ms")),
    ("interval_end", pa.timestamp("ms")),
    ("node", pa.string()),
    ("namespace", pa.string()),
    ("pod", pa.string()),
    ("gpu_uuid", pa.string()),
    ("gpu_model_name", pa.string()),
    ("gpu_vendor_name", pa.string()),
    ("gpu_memory_capacity_mib", pa.float64()),
    ("gpu_pod_uptime", pa.float64()),
    ("mig_instance_id", pa.string()),
    ("mig_profile", pa.string()),
    ("mig_strategy", pa.string()),
    ("mig_slice_count", pa.int64()),
    ("mig_memory_capacity_mib", pa.int64()),
    ("gpu_max_slices", pa.int64()),
]
# koku's GPU_GROUP_BY and GPU_AGG (masu/util/ocp/common.py) for the daily table.
DAILY_KEYS = ["node", "namespace", "pod", "gpu_uuid", "mig_instance_id"]
DAILY_AGG = {
    "report_period_start": "max",
    "report_period_end": "max",
    "gpu_model_name": "max",
    "gpu_vendor_name": "max",
    "gpu_memory_capacity_mib": "max",
    "gpu_pod_uptime": "sum",
    "mig_profile": "max",
    "mig_slice_count": "max",
    "gpu_max_slices": "max",
    "mig_memory_capacity_mib": "max",
    "mig_strategy": "max",
}


def gpu_rows(
    day: dt.date,
    hours,
    *,
    node: str,
    namespace: str,
    pod: str,
    gpu_uuid: str | None,
    model: str | None = "A100 SXM4 40GB",
    vendor: str | None = "nvidia",
    memory_mib: float | None = 40960.0,
    mig_instance_id: str | None = "",
    mig_profile: str | None = "",
    mig_strategy: str | None = "",
    mig_slice_count: int | None = None,
    mig_memory_mib: int | None = None,
    gpu_max_slices: int | None = None,
) -> list[dict]:
    """One hourly row per hour for a pod on a GPU (dedicated by default: MIG fields '' as koku keeps empty CSV
    fields, derived MIG numbers NULL)."""
    month = dt.datetime(day.year, day.month, 1)
    following = (month + dt.timedelta(days=32)).replace(day=1)
    rows = []
    for hour in hours:
        start = dt.datetime.combine(day, dt.time(hour))
        rows.append(
            {
                "report_period_start": month,
                "report_period_end": following,
                "interval_start": start,
                "interval_end": start + dt.timedelta(minutes=59, seconds=59),
                "node": node,
                "namespace": namespace,
                "pod": pod,
                "gpu_uuid": gpu_uuid,
                "gpu_model_name": model,
                "gpu_vendor_name": vendor,
                "gpu_memory_capacity_mib": memory_mib,
                "gpu_pod_uptime": 3600.0,
                "mig_instance_id": mig_instance_id,
                "mig_profile": mig_profile,
                "mig_strategy": mig_strategy,
                "mig_slice_count": mig_slice_count,
                "mig_memory_capacity_mib": mig_memory_mib,
                "gpu_max_slices": gpu_max_slices,
            }
        )
    return rows


def gpu_folder(data_root: Path, source: str, day: dt.date, *, daily: bool) -> Path:
    kind = Path("data", "parquet", "daily") if daily else Path("data", "parquet")
    return (
        Path(data_root)
        / kind
        / ACCOUNT
        / "OCP"
        / "gpu_usage"
        / f"source={source}"
        / f"year={day.year:04d}"
        / f"month={day.month:02d}"
    )


def write_gpu_parquet(data_root: Path, source: str, rows: list[dict]) -> dict[dt.date, Path]:
    """koku's raw hourly and daily gpu_usage files, one pair per day (named after koku's daily CSV archives);
    returns the raw file of each day. Days without rows get no file, and their old files are removed."""
    schema = pa.schema(RAW_COLUMNS)
    by_day: dict[dt.date, list[dict]] = defaultdict(list)
    for row in rows:
        by_day[row["interval_start"].date()].append(row)
    for daily in (False, True):
        for old in Path(data_root).glob(
            f"data/parquet{'/daily' if daily else ''}/{ACCOUNT}/OCP/gpu_usage/**/*.parquet"
        ):
            if f"source={source}" in str(old):
                old.unlink()
    written = {}
    for day, day_rows in by_day.items():
        stem = f"gpu_usage.{day.isoformat()}.1.0"
        raw = pa.Table.from_pylist(day_rows, schema=schema)
        folder = gpu_folder(data_root, source, day, daily=False)
        folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(raw, folder / f"{stem}_0.parquet")
        written[day] = folder / f"{stem}_0.parquet"
        day_start = pc.floor_temporal(raw["interval_start"], unit="day")
        keyed = raw.set_column(raw.schema.get_field_index("interval_start"), "interval_start", day_start)
        rolled = keyed.group_by([*DAILY_KEYS, "interval_start"], use_threads=False).aggregate(list(DAILY_AGG.items()))
        rolled = rolled.rename_columns(
            [c.rsplit("_", 1)[0] if c.endswith(("_max", "_sum")) else c for c in rolled.column_names]
        )
        daily_folder = gpu_folder(data_root, source, day, daily=True)
        daily_folder.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            rolled.select([*DAILY_KEYS, "interval_start", *DAILY_AGG]), daily_folder / f"{stem}_daily_0.parquet"
        )
    return written


# ---------------------------------------------------------------- running the engine
def run_gpu(conn, schema: str, data_root: Path, source: str, day: dt.date, through: str = O.GPU_SUMMARY, **task):
    """The GPU branch of one cluster-day, as the gpu_summary asset runs it."""
    cluster_day = ClusterDay(ACCOUNT, source, CLUSTER, ALIAS, day)
    return summarize_cluster_day(
        conn,
        open_data_root(str(data_root)),
        DayTask(f"{CLUSTER}|{day}", cluster_day, schema, through=through, **task),
    )


def assert_equals_reference(conn, schema: str, data_root: Path, source: str, first: dt.date, last: dt.date) -> None:
    """The engine's stored rows of the source are koku's SQL's over the same Parquet and cost-category patterns."""
    patterns = conn.execute(
        sql.SQL("SELECT namespace, cost_category_id FROM {}.reporting_ocp_cost_category_namespace").format(
            sql.Identifier(schema)
        )
    ).fetchall()
    expected = reference_gpu_summary(
        None,
        data_root,
        account=ACCOUNT,
        source=source,
        cluster_id=CLUSTER,
        cluster_alias=ALIAS,
        start=first,
        end=last,
        cost_category_patterns=patterns,
    )
    assert compare_gpu_summaries(expected, engine_gpu_rows(conn, schema, source)) == []


def new_source() -> str:
    return str(uuid.uuid4())


def only(rows: list[dict], **match) -> dict:
    found = [r for r in rows if all(r[k] == v for k, v in match.items())]
    assert len(found) == 1, f"expected one row matching {match}, got {found}"
    return found[0]


# ---------------------------------------------------------------- hand-derived scenarios (koku's SQL semantics)
def test_dedicated_gpu_is_one_row_with_memory_in_gb(pg, tmp_path):
    conn, schema = pg
    source = new_source()
    write_gpu_parquet(
        tmp_path,
        source,
        gpu_rows(
            DAY,
            range(24),
            node="gpu-node-1",
            namespace="ml-train",
            pod="trainer-0",
            gpu_uuid="GPU-aaa",
            model="Tesla T4",
            memory_mib=15360.0,
        ),
    )

    result = run_gpu(conn, schema, tmp_path, source, DAY)

    assert result.passed, result.first_failure()
    rows = engine_gpu_rows(conn, schema, source)
    assert len(rows) == 1  # 24 hourly rows of one pod on one GPU: one (namespace, node, GPU) row
    row = rows[0]
    assert row["memory_capacity_gb"] == approx(16.10612736)  # 15360 MiB x 0.001048576
    assert row["gpu_count"] == 1 and row["gpu_mode"] == "dedicated"
    assert row["mig_profile"] is None  # max(NULLIF('', '')) is NULL
    assert row["mig_instance_id"] == "" and row["mig_strategy"] == ""  # koku keeps the CSV's empty fields
    assert row["mig_slice_count"] is None and row["gpu_max_slices"] is None and row["mig_memory_capacity_gb"] is None
    assert (row["vendor_name"], row["model_name"], row["gpu_uuid"]) == ("nvidia", "Tesla T4", "GPU-aaa")
    assert (row["usage_start"], row["usage_end"]) == (DAY, DAY)
    assert (row["cluster_id"], row["cluster_alias"], row["source_uuid"]) == (CLUSTER, ALIAS, source)
    assert row["cost_category_id"] is None  # ml-train matches none of koku's default patterns
    assert result.stages[O.GPU_SUMMARY]["gpu_count"] == 1 and result.stages[O.RAW_GPU_USAGE]["rows"] == 24
    assert_equals_reference(conn, schema, tmp_path, source, DAY, DAY)


def test_mig_instances_are_one_row_each_with_their_slice_and_memory(pg, tmp_path):
    conn, schema = pg
    source = new_source()
    mig = {"node": "gpu-node-2", "namespace": "inference", "gpu_uuid": "GPU-mig", "mig_strategy": "mixed"}
    write_gpu_parquet(
        tmp_path,
        source,
        gpu_rows(DAY, range(24), pod="small-0", mig_instance_id="1", mig_profile="1g.5gb", mig_slice_count=1,
                 mig_memory_mib=5120, gpu_max_slices=7, **mig)
        + gpu_rows(DAY, range(12), pod="big-0", mig_instance_id="2", mig_profile="3g.20gb", mig_slice_count=3,
                   mig_memory_mib=20480, gpu_max_slices=7, **mig),
    )  # fmt: skip

    assert run_gpu(conn, schema, tmp_path, source, DAY).passed
    rows = engine_gpu_rows(conn, schema, source)

    assert len(rows) == 2  # one per MIG instance: mig_instance_id is part of koku's GROUP BY
    small, big = only(rows, mig_instance_id="1"), only(rows, mig_instance_id="2")
    for row in (small, big):
        assert row["gpu_mode"] == "MIG" and row["gpu_count"] == 1 and row["gpu_max_slices"] == 7
        assert row["memory_capacity_gb"] == approx(42.94967296)  # the whole GPU's 40960 MiB x 0.001048576
        assert row["mig_strategy"] == "mixed" and row["gpu_uuid"] == "GPU-mig"
    assert (small["mig_profile"], small["mig_slice_count"]) == ("1g.5gb", 1)
    assert small["mig_memory_capacity_gb"] == approx(5.36870912)  # 5120 MiB x 0.001048576
    assert (big["mig_profile"], big["mig_slice_count"]) == ("3g.20gb", 3)
    assert big["mig_memory_capacity_gb"] == approx(21.47483648)  # 20480 MiB x 0.001048576
    assert_equals_reference(conn, schema, tmp_path, source, DAY, DAY)


def test_several_gpus_on_a_node_are_counted_per_gpu_not_per_pod(pg, tmp_path):
    conn, schema = pg
    source = new_source()
    node = {"node": "gpu-node-3", "model": "H100", "memory_mib": 81920.0}
    rows = (
        gpu_rows(DAY, range(24), namespace="ml-train", pod="trainer-big", gpu_uuid="GPU-0", **node)
        + gpu_rows(DAY, range(24), namespace="ml-train", pod="trainer-big", gpu_uuid="GPU-1", **node)
        # GPU-2 serves two pods of one namespace, one after the other: still one GPU of that namespace
        + gpu_rows(DAY, range(0, 8), namespace="ml-train", pod="notebook-a", gpu_uuid="GPU-2", **node)
        + gpu_rows(DAY, range(8, 24), namespace="ml-train", pod="notebook-b", gpu_uuid="GPU-2", **node)
        # GPU-3 is shared in time by two namespaces: one row (and one GPU) in each
        + gpu_rows(DAY, range(0, 12), namespace="research", pod="sim-0", gpu_uuid="GPU-3", **node)
        + gpu_rows(DAY, range(12, 24), namespace="ml-train", pod="trainer-late", gpu_uuid="GPU-3", **node)
    )
    write_gpu_parquet(tmp_path, source, rows)

    result = run_gpu(conn, schema, tmp_path, source, DAY)

    assert result.passed, result.first_failure()
    stored = engine_gpu_rows(conn, schema, source)
    assert sorted((r["namespace"], r["gpu_uuid"]) for r in stored) == [
        ("ml-train", "GPU-0"),
        ("ml-train", "GPU-1"),
        ("ml-train", "GPU-2"),
        ("ml-train", "GPU-3"),
        ("research", "GPU-3"),
    ]
    assert all(r["gpu_count"] == 1 and r["memory_capacity_gb"] == approx(85.89934592) for r in stored)  # 81920 MiB
    assert result.stages[O.GPU_SUMMARY]["gpu_count"] == 5
    assert result.stages[O.RAW_GPU_USAGE]["gpus"] == 4 and result.stages[O.RAW_GPU_USAGE]["pods"] == 5
    assert result.checks[O.GPU_COUNTS_CONSERVED].metadata["raw_gpus"] == 5
    assert_equals_reference(conn, schema, tmp_path, source, DAY, DAY)


def test_cost_category_follows_the_namespace_patterns(pg, tmp_path):
    conn, schema = pg
    source = new_source()
    ml = add_cost_category(conn, schema, "ML", ["ml-%"])
    # A second pattern matching ml-train too, on a category created later (a larger id): koku takes the max.
    ml_train = add_cost_category(conn, schema, "ML training", ["ml-train"])
    platform = platform_category_id(conn, schema)
    rows = []
    for namespace, gpu in (("openshift-gpu-operator", "G1"), ("ml-serve", "G2"), ("ml-train", "G3"), ("lab", "G4")):
        rows += gpu_rows(DAY, range(3), node="gpu-node-1", namespace=namespace, pod=f"{namespace}-0", gpu_uuid=gpu)
    write_gpu_parquet(tmp_path, source, rows)

    assert run_gpu(conn, schema, tmp_path, source, DAY).passed

    categories = {r["namespace"]: r["cost_category_id"] for r in engine_gpu_rows(conn, schema, source)}
    assert ml_train > ml
    assert categories == {"openshift-gpu-operator": platform, "ml-serve": ml, "ml-train": ml_train, "lab": None}
    assert_equals_reference(conn, schema, tmp_path, source, DAY, DAY)


def test_empty_and_null_mig_profile_of_one_gpu_make_one_row(pg, tmp_path):
    """The D2 decision: koku would group '' and NULL apart and write both as NULL, counting the GPU twice."""
    conn, schema = pg
    source = new_source()
    gpu = {"node": "gpu-node-1", "namespace": "ml", "pod": "p", "gpu_uuid": "G1"}
    write_gpu_parquet(
        tmp_path,
        source,
        gpu_rows(DAY, range(12), mig_profile="", **gpu) + gpu_rows(DAY, range(12, 24), mig_profile=None, **gpu),
    )

    assert run_gpu(conn, schema, tmp_path, source, DAY).passed
    [row] = engine_gpu_rows(conn, schema, source)
    assert (row["gpu_count"], row["gpu_mode"], row["mig_profile"]) == (1, "dedicated", None)
    assert_equals_reference(conn, schema, tmp_path, source, DAY, DAY)  # the port's [D2] group key


def test_a_row_without_gpu_or_mig_id_counts_no_gpu(pg, tmp_path):
    """count(DISTINCT coalesce(NULL, NULL)) is 0 in koku's SQL: the row is kept, with gpu_count 0."""
    conn, schema = pg
    source = new_source()
    write_gpu_parquet(
        tmp_path,
        source,
        gpu_rows(DAY, range(2), node="n", namespace="ml", pod="p", gpu_uuid=None, mig_instance_id=None),
    )

    assert run_gpu(conn, schema, tmp_path, source, DAY).passed
    [row] = engine_gpu_rows(conn, schema, source)
    assert row["gpu_count"] == 0 and row["gpu_uuid"] is None and row["mig_instance_id"] is None


def test_a_day_without_gpu_data_removes_its_previous_rows_and_keeps_other_days(pg, tmp_path):
    conn, schema = pg
    source = new_source()
    next_day = DAY + dt.timedelta(days=1)
    gpu = {"node": "gpu-node-1", "namespace": "ml", "pod": "p"}
    both_days = gpu_rows(DAY, range(24), gpu_uuid="G1", **gpu) + gpu_rows(DAY, range(24), gpu_uuid="G2", **gpu)
    both_days += gpu_rows(next_day, range(24), gpu_uuid="G1", **gpu)
    write_gpu_parquet(tmp_path, source, both_days)
    for day in (DAY, next_day):
        assert run_gpu(conn, schema, tmp_path, source, day).passed
    assert sorted((r["usage_start"], r["gpu_uuid"]) for r in engine_gpu_rows(conn, schema, source)) == [
        (DAY, "G1"),
        (DAY, "G2"),
        (next_day, "G1"),
    ]

    write_gpu_parquet(tmp_path, source, [r for r in both_days if r["interval_start"].date() == next_day])
    result = run_gpu(conn, schema, tmp_path, source, DAY)

    assert result.passed
    assert result.stages[O.GPU_SUMMARY]["rows_deleted"] == 2 and result.stages[O.GPU_SUMMARY]["no_data"]
    assert set(result.checks) == GPU_CHECKS  # every GPU check evaluated: nothing to check
    assert [(r["usage_start"], r["gpu_uuid"]) for r in engine_gpu_rows(conn, schema, source)] == [(next_day, "G1")]
    assert_equals_reference(conn, schema, tmp_path, source, DAY, next_day)  # koku's window: DAY has no rows either


def test_rematerializing_replaces_the_day_with_the_same_rows(pg, tmp_path):
    conn, schema = pg
    source = new_source()
    write_gpu_parquet(tmp_path, source, gpu_rows(DAY, range(5), node="n", namespace="ml", pod="p", gpu_uuid="G1"))
    assert run_gpu(conn, schema, tmp_path, source, DAY).passed
    first = engine_gpu_rows(conn, schema, source)

    again = run_gpu(conn, schema, tmp_path, source, DAY)

    assert again.passed and again.stages[O.GPU_SUMMARY]["rows_deleted"] == 1
    assert engine_gpu_rows(conn, schema, source) == first


def test_a_rehearsal_checks_but_keeps_the_previous_rows(pg, tmp_path):
    conn, schema = pg
    source = new_source()
    gpu = {"node": "n", "namespace": "ml", "pod": "p"}
    write_gpu_parquet(tmp_path, source, gpu_rows(DAY, range(5), gpu_uuid="G1", **gpu))
    assert run_gpu(conn, schema, tmp_path, source, DAY).passed
    before = engine_gpu_rows(conn, schema, source)
    write_gpu_parquet(tmp_path, source, gpu_rows(DAY, range(5), gpu_uuid="G2", **gpu))

    result = run_gpu(conn, schema, tmp_path, source, DAY, commit=False)

    assert result.passed and "rehearsal" in result.stages[O.GPU_SUMMARY]
    assert engine_gpu_rows(conn, schema, source) == before


def test_a_run_through_raw_gpu_usage_only_never_touches_the_gpu_rows(pg, tmp_path):
    conn, schema = pg
    source = new_source()
    gpu = {"node": "n", "namespace": "ml", "pod": "p"}
    write_gpu_parquet(tmp_path, source, gpu_rows(DAY, range(5), gpu_uuid="G1", **gpu))
    assert run_gpu(conn, schema, tmp_path, source, DAY).passed
    before = engine_gpu_rows(conn, schema, source)

    write_gpu_parquet(tmp_path, source, gpu_rows(DAY, range(5), gpu_uuid="G2", **gpu))
    changed = run_gpu(conn, schema, tmp_path, source, DAY, through=O.RAW_GPU_USAGE)
    # DAY's files gone, the cluster's other files there (a data root without any would fail, deleting nothing)
    write_gpu_parquet(tmp_path, source, gpu_rows(DAY + dt.timedelta(days=1), range(5), gpu_uuid="G2", **gpu))
    emptied = run_gpu(conn, schema, tmp_path, source, DAY, through=O.RAW_GPU_USAGE)

    assert set(changed.stages) == {O.RAW_GPU_USAGE} and set(changed.checks) == {O.GPU_USAGE_SCHEMA}
    assert set(emptied.stages) == {O.RAW_GPU_USAGE} and emptied.stages[O.RAW_GPU_USAGE]["no_data"]
    assert engine_gpu_rows(conn, schema, source) == before


# ---------------------------------------------------------------- bad input: named, rejected, previous rows kept
@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("gpu_memory_capacity_mib", -1.0, "negative value"),
        ("mig_slice_count", 1.5, "not a whole number"),
        ("gpu_vendor_name", "v" * 129, "longer than koku's 128 characters"),
        ("mig_strategy", "interleaved", "longer than koku's 10 characters"),
    ],
)
def test_bad_gpu_input_names_file_column_row_and_keeps_the_rows(pg, tmp_path, column, value, reason):
    conn, schema = pg
    source = new_source()
    rows = gpu_rows(DAY, range(6), node="n", namespace="ml", pod="p", gpu_uuid="G1")
    files = write_gpu_parquet(tmp_path, source, rows)
    assert run_gpu(conn, schema, tmp_path, source, DAY).passed
    before = engine_gpu_rows(conn, schema, source)
    bad_row = 4  # the fourth hourly row of the day's file
    table = pq.read_table(files[DAY])
    values = table[column].to_pylist()
    values[bad_row - 1] = value
    field_type = pa.float64() if column == "mig_slice_count" else table.schema.field(column).type
    table = table.set_column(table.schema.get_field_index(column), column, pa.array(values, field_type))
    pq.write_table(table, files[DAY])

    result = run_gpu(conn, schema, tmp_path, source, DAY)

    assert not result.passed
    failed = result.checks[O.GPU_USAGE_SCHEMA]
    assert not failed.passed and reason in failed.description
    assert (result.error.file, result.error.column, result.error.row) == (str(files[DAY]), column, bad_row)
    assert O.GPU_SUMMARY not in result.stages
    assert engine_gpu_rows(conn, schema, source) == before


def test_a_gpu_file_without_a_required_column_is_named(pg, tmp_path):
    conn, schema = pg
    source = new_source()
    files = write_gpu_parquet(
        tmp_path, source, gpu_rows(DAY, range(3), node="n", namespace="ml", pod="p", gpu_uuid="G")
    )
    pq.write_table(pq.read_table(files[DAY]).drop_columns(["gpu_uuid"]), files[DAY])

    result = run_gpu(conn, schema, tmp_path, source, DAY)

    assert not result.checks[O.GPU_USAGE_SCHEMA].passed
    assert (result.error.file, result.error.column) == (str(files[DAY]), "gpu_uuid")
    assert "required column is missing" in str(result.error)


def test_an_older_operator_without_mig_columns_is_summarised_as_dedicated(pg, tmp_path):
    conn, schema = pg
    source = new_source()
    files = write_gpu_parquet(
        tmp_path, source, gpu_rows(DAY, range(3), node="n", namespace="ml", pod="p", gpu_uuid="G")
    )
    mig = ["mig_instance_id", "mig_profile", "mig_strategy", "mig_slice_count", "mig_memory_capacity_mib"]
    pq.write_table(pq.read_table(files[DAY]).drop_columns([*mig, "gpu_max_slices"]), files[DAY])

    assert run_gpu(conn, schema, tmp_path, source, DAY).passed
    [row] = engine_gpu_rows(conn, schema, source)
    # Without mig_instance_id, coalesce(NULL, gpu_uuid) counts the GPU itself.
    assert (row["gpu_mode"], row["gpu_count"], row["mig_instance_id"], row["mig_strategy"]) == (
        "dedicated",
        1,
        None,
        None,
    )


# ---------------------------------------------------------------- koku's table
# reporting_ocp_gpu_summary_p by hand from koku's migrations 0340, 0344, 0345 and 0346 (information_schema's names).
KOKU_GPU_COLUMNS = {
    "id": "uuid", "cluster_id": "text", "cluster_alias": "text", "namespace": "character varying(253)",
    "node": "character varying(253)", "usage_start": "date", "usage_end": "date",
    "vendor_name": "character varying(128)", "model_name": "character varying(128)",
    "memory_capacity_gb": "numeric(33,15)", "gpu_count": "integer", "cost_model_gpu_cost": "numeric(33,15)",
    "raw_currency": "text", "cost_model_cpu_cost": "numeric(33,15)", "cost_model_memory_cost": "numeric(33,15)",
    "cost_model_volume_cost": "numeric(33,15)", "cost_model_rate_type": "text", "cost_category_id": "integer",
    "source_uuid": "uuid", "gpu_max_slices": "integer", "gpu_mode": "character varying(32)",
    "mig_memory_capacity_gb": "numeric(33,15)", "mig_profile": "character varying(64)", "mig_slice_count": "integer",
    "mig_strategy": "character varying(10)", "gpu_uuid": "character varying(128)",
    "mig_instance_id": "character varying(128)",
}  # fmt: skip


def test_db_init_creates_kokus_gpu_table_where_missing(pg, tmp_path):
    from ocp_assets.core.pgschema import init_schema

    conn, schema = pg
    columns = conn.execute(
        "SELECT column_name, CASE WHEN data_type = 'character varying' THEN format('character varying(%%s)', "
        "character_maximum_length) WHEN data_type = 'numeric' THEN format('numeric(%%s,%%s)', numeric_precision, "
        "numeric_scale) ELSE data_type END FROM information_schema.columns WHERE table_schema = %s AND table_name = %s",
        (schema, GPU_TABLE),
    ).fetchall()
    assert dict(columns) == KOKU_GPU_COLUMNS
    partitioning = conn.execute(
        "SELECT p.partstrat, (SELECT count(*) FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        "  WHERE i.inhparent = p.partrelid AND c.relname = %s)"
        " FROM pg_partitioned_table p WHERE p.partrelid = %s::regclass",
        (f"{GPU_TABLE}_default", f'"{schema}".{GPU_TABLE}'),
    ).fetchone()
    assert partitioning == ("r", 1)  # RANGE on usage_start, with koku's default partition

    # A schema holding koku's tables but not the GPU one (koku before migration 0340, or made by an older ocp_assets):
    # the summary skips its GPU branch (next tests); `db init`, asked explicitly, adds only that table.
    conn.execute(sql.SQL("DROP TABLE {}.{}").format(sql.Identifier(schema), sql.Identifier(GPU_TABLE)))
    source = new_source()
    assert init_schema(conn, schema) == [GPU_TABLE]
    write_gpu_parquet(tmp_path, source, gpu_rows(DAY, range(2), node="n", namespace="ml", pod="p", gpu_uuid="G"))
    assert run_gpu(conn, schema, tmp_path, source, DAY).passed
    assert (
        conn.execute(
            sql.SQL("SELECT tableoid::regclass::text FROM {}.{}").format(
                sql.Identifier(schema), sql.Identifier(GPU_TABLE)
            )
        )
        .fetchone()[0]
        .endswith(f"{GPU_TABLE}_2026_03")
    )  # written into the month's partition, created on write


# ---------------------------------------------------------------- a koku schema older than the GPU table (G6)
def _drop_gpu_table(conn, schema: str) -> None:
    """koku's schema before its migration 0340: every table of the summary but the GPU one."""
    conn.execute(sql.SQL("DROP TABLE {}.{}").format(sql.Identifier(schema), sql.Identifier(GPU_TABLE)))


def _gpu_table_exists(conn, schema: str) -> bool:
    return conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{schema}".{GPU_TABLE}',)).fetchone()[0]


def test_the_engine_never_adds_the_gpu_table_to_kokus_schema_and_skips_the_gpu_summary_saying_why(pg, tmp_path):
    """The Dagster path (create_tables on): a schema with koku's tables gets no new table; the GPU branch is not run,
    its checks pass naming the reason, the usage summary is written."""
    conn, schema = pg
    _drop_gpu_table(conn, schema)
    identity = build_cluster(tmp_path, CLUSTER, [DAY])
    write_gpu_parquet(
        tmp_path, identity.source_uuid, gpu_rows(DAY, range(2), node="n", namespace="ml", pod="p", gpu_uuid="G")
    )
    cluster_day = ClusterDay(ACCOUNT, identity.source_uuid, CLUSTER, ALIAS, DAY)

    result = summarize_cluster_day(conn, open_data_root(str(tmp_path)), DayTask("k", cluster_day, schema))

    reason = (
        f"koku's schema {schema} has no {GPU_TABLE} (koku older than migration 0340): GPU summary not written;"
        f" `ocp-assets db init --schema {schema}` adds the table (docs/operations.md first, for koku's own schemas)"
    )
    assert result.passed and result.gpu_skipped == reason
    assert not _gpu_table_exists(conn, schema)
    assert {
        name: (c.passed, c.description) for name, c in result.checks.items() if name in GPU_CHECKS
    } == dict.fromkeys(GPU_CHECKS, (True, reason))
    assert O.GPU_SUMMARY not in result.stages and O.RAW_GPU_USAGE not in result.stages  # nothing read, nothing written
    assert result.stages[O.DAILY_SUMMARY]["rows"] > 0


def test_the_engine_creates_kokus_tables_only_in_a_schema_without_any(pg, dsn):
    """A new schema gets every table; a schema with some of koku's tables gets none (here: reporting_tagmapping and the
    GPU table stay missing, the summary table's absence is refused with `db init`'s hint)."""
    from ocp_assets.core.errors import ConfigurationError
    from ocp_assets.core.pgschema import SUMMARY_TABLE, ensure_tenant_tables, koku_tables

    conn, _ = pg
    fresh = f"t_{uuid.uuid4().hex[:12]}"
    try:
        assert ensure_tenant_tables(conn, fresh) is True
        assert len(koku_tables(conn, fresh)) == 14  # seven auxiliary, five cost-model tables and the two summaries
        conn.execute(sql.SQL("DROP TABLE {}.reporting_tagmapping, {}.{}").format(
            sql.Identifier(fresh), sql.Identifier(fresh), sql.Identifier(GPU_TABLE)))  # fmt: skip
        assert ensure_tenant_tables(conn, fresh) is False
        assert "reporting_tagmapping" not in koku_tables(conn, fresh) and not _gpu_table_exists(conn, fresh)
        conn.execute(sql.SQL("DROP TABLE {}.{}").format(sql.Identifier(fresh), sql.Identifier(SUMMARY_TABLE)))
        with pytest.raises(ConfigurationError, match="db init"):
            ensure_tenant_tables(conn, fresh)
        assert SUMMARY_TABLE not in koku_tables(conn, fresh)
    finally:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(fresh)))


def test_cli_summarize_without_the_gpu_table_warns_once_per_run_and_db_init_adds_it_with_a_note(
    pg, dsn, tmp_path, capsys
):
    from ocp_assets.cli import main

    conn, schema = pg
    _drop_gpu_table(conn, schema)
    days = [DAY, DAY + dt.timedelta(days=1)]
    identity = build_cluster(tmp_path, CLUSTER, days)
    write_gpu_parquet(
        tmp_path, identity.source_uuid, gpu_rows(DAY, range(2), node="n", namespace="ml", pod="p", gpu_uuid="G")
    )
    args = ["summarize", "--data-root", str(tmp_path), "--source", identity.source_uuid, "--dsn", dsn]

    assert main([*args, "--schema", schema]) == 0

    err = capsys.readouterr().err.splitlines()
    warnings = [line for line in err if line.startswith("ocp-assets: warning:")]
    assert warnings == [
        f"ocp-assets: warning: koku's schema {schema} has no {GPU_TABLE} (koku older than migration 0340): "
        f"GPU summary not written; `ocp-assets db init --schema {schema}` adds the table (docs/operations.md first, "
        "for koku's own schemas) (for every day of this run)"
    ]
    assert not _gpu_table_exists(conn, schema)
    assert {d for (d,) in conn.execute(sql.SQL(
        "SELECT DISTINCT usage_start FROM {}.reporting_ocpusagelineitem_daily_summary").format(sql.Identifier(schema))
    )} == set(days)  # fmt: skip

    # Asked explicitly, `db init` adds the table and says what that means for koku's own migration.
    assert main(["db", "init", "--dsn", dsn, "--schema", schema]) == 0
    captured = capsys.readouterr()
    assert captured.out.strip() == f"schema {schema}: created {GPU_TABLE}"
    assert captured.err.startswith(f"ocp-assets: note: {GPU_TABLE} added to schema {schema}, which already held")
    assert f"DROP TABLE {schema}.{GPU_TABLE} CASCADE" in captured.err and "summarize" in captured.err
    assert main([*args, "--schema", schema]) == 0
    assert "warning" not in capsys.readouterr().err
    assert [(r["usage_start"], r["gpu_uuid"]) for r in engine_gpu_rows(conn, schema, identity.source_uuid)] == [
        (DAY, "G")
    ]
    # A new schema: `db init` creates everything and has nothing to note.
    fresh = f"t_{uuid.uuid4().hex[:12]}"
    try:
        assert main(["db", "init", "--dsn", dsn, "--schema", fresh]) == 0
        assert capsys.readouterr().err == ""
    finally:
        conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(fresh)))


# ---------------------------------------------------------------- the checks catch what they are for
def test_gpu_checks_fail_on_broken_rows():
    from ocp_assets.core import gpu_summary as G

    context = G.GpuContext("00000000-0000-0000-0000-000000000001", "c", "C", DAY)
    raw = pa.Table.from_pylist(
        gpu_rows(DAY, range(2), node="n", namespace="ml", pod="p", gpu_uuid="G1")
        + gpu_rows(DAY, range(2), node="n", namespace="ml", pod="p", gpu_uuid="G2"),
        schema=pa.schema([(n, pa.float64() if n.startswith(("mig_slice", "gpu_max", "mig_memory")) else t)
                          for n, t in RAW_COLUMNS]),
    )  # fmt: skip
    rows = G.compute_gpu_summary(raw, context)
    assert G.counts_conserved(raw, rows).passed and G.one_row_per_key(rows).passed
    assert G.capacity_not_negative(rows).passed

    doubled = pa.concat_tables([rows, rows.slice(0, 1)])
    assert not G.one_row_per_key(doubled).passed
    outcome = G.counts_conserved(raw, doubled)
    assert not outcome.passed and outcome.metadata["summary_gpu_count"] == 3 and outcome.metadata["raw_gpus"] == 2
    negative = rows.set_column(
        rows.schema.get_field_index("memory_capacity_gb"), "memory_capacity_gb", pa.array([-1.0, 2.0])
    )
    assert not G.capacity_not_negative(negative).passed
    write = G.GpuWrite(rows_written=2, rows_deleted=0, rows_read_back=2, totals_read_back={
        "gpu_count": 2.0, "memory_capacity_gb": 2 * 42.94967296, "mig_memory_capacity_gb": 0.0})  # fmt: skip
    assert G.rows_written_match(rows, write).passed
    write.totals_read_back["memory_capacity_gb"] = 42.94967296
    assert not G.rows_written_match(rows, write).passed


# ---------------------------------------------------------------- engine vs koku's SQL (reference port)
NAMESPACES = ["ml-train", "openshift-gpu", "kube-system", "research", ""]
MODELS = [("A100 SXM4 40GB", 40960.0, 7), ("H100", 81920.0, 7), ("Tesla T4", 15360.0, None), (None, None, None)]
PROFILES = [("1g.5gb", 1, 5120), ("2g.10gb", 2, 10240), ("3g.20gb", 3, 20480)]


@st.composite
def gpu_clusters(draw) -> list[dict]:
    """Random GPU usage over two days: GPUs with consistent attributes, dedicated or MIG, used by pods in random
    namespaces and hours; MIG ids and profiles sometimes NULL, empty or set; a few rows without any GPU id."""
    days = [DAY, DAY + dt.timedelta(days=1)]
    rows: list[dict] = []
    for index in range(draw(st.integers(1, 5))):
        node = draw(st.sampled_from(["gpu-a", "gpu-b"]))
        model, memory, max_slices = draw(st.sampled_from(MODELS))
        vendor = draw(st.sampled_from(["nvidia", "amd", None]))
        mig = draw(st.booleans()) and max_slices is not None
        instances = (
            [(str(n), *draw(st.sampled_from(PROFILES))) for n in range(draw(st.integers(1, 3)))]
            if mig
            else [(draw(st.sampled_from(["", None])), draw(st.sampled_from(["", None])), None, None)]
        )
        strategy = draw(st.sampled_from(["single", "mixed"])) if mig else draw(st.sampled_from(["", None]))
        gpu_uuid = draw(st.sampled_from([f"GPU-{index}", f"GPU-{index}", None]))
        for instance, profile, slices, mig_memory in instances:
            for _ in range(draw(st.integers(1, 3))):
                first = draw(st.integers(0, 23))
                rows += gpu_rows(
                    draw(st.sampled_from(days)),
                    range(first, min(24, first + draw(st.integers(1, 6)))),
                    node=node,
                    namespace=draw(st.sampled_from(NAMESPACES)),
                    pod=f"pod-{draw(st.integers(0, 3))}",
                    gpu_uuid=gpu_uuid,
                    model=model,
                    vendor=vendor,
                    memory_mib=memory,
                    mig_instance_id=instance,
                    mig_profile=profile,
                    mig_strategy=strategy,
                    mig_slice_count=slices,
                    mig_memory_mib=mig_memory,
                    gpu_max_slices=max_slices if mig else None,
                )
    return rows


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(rows=gpu_clusters())
def test_engine_equals_koku_sql_on_random_gpu_usage(pg, rows):
    conn, schema = pg
    source = new_source()
    patterns = conn.execute(
        sql.SQL("SELECT namespace, cost_category_id FROM {}.reporting_ocp_cost_category_namespace").format(
            sql.Identifier(schema)
        )
    ).fetchall()
    with tempfile.TemporaryDirectory() as directory:
        write_gpu_parquet(Path(directory), source, rows)
        days = sorted({r["interval_start"].date() for r in rows})
        for day in days:
            result = run_gpu(conn, schema, Path(directory), source, day)
            assert result.passed, result.first_failure()
        expected = reference_gpu_summary(
            None,
            directory,
            account=ACCOUNT,
            source=source,
            cluster_id=CLUSTER,
            cluster_alias=ALIAS,
            start=days[0],
            end=days[-1],
            cost_category_patterns=patterns,
        )
    actual = engine_gpu_rows(conn, schema, source)
    assert expected, "the reference found no GPU rows"
    assert compare_gpu_summaries(expected, actual) == []


NISE_GPU_YAML = Path(__file__).resolve().parents[1] / "ocp_assets" / "scenarios" / "gpu_vm.yml"
NISE_DAY = dt.date(2026, 10, 31)


def test_nise_gpu_dataset_through_the_cli_path_equals_koku_sql(pg, tmp_path, request):
    """nise's GPU report ingested by ocp_assets, summarised by the CLI's code path (usage and GPU summaries)."""
    conn, schema = pg
    source = new_source()
    root = open_data_root(str(tmp_path / "data"))
    generate(root, yaml_path=NISE_GPU_YAML, cluster_id=CLUSTER, account=ACCOUNT, source_uuid=source,
             cluster_alias=ALIAS, cache_dir=nise_cache_dir(request))  # fmt: skip

    outcome = summarize_day(conn, schema, root, ClusterDay(ACCOUNT, source, CLUSTER, ALIAS, NISE_DAY))

    assert outcome is not None and outcome.rows.num_rows > 0  # the usage summary is written on the same path
    actual = engine_gpu_rows(conn, schema, source)
    # By hand from gpu_vm.yml: trainer-0 on a dedicated H100 (81920 MiB), inference-0 on two MIG instances of an
    # A100 (40960 MiB; 1g.5gb and 3g.20gb), legacy-0 on a T4 whose MIG fields koku clears (no slice count known).
    by_model = defaultdict(list)
    for row in actual:
        by_model[row["model_name"]].append(row)
    [h100], [t4] = by_model["H100"], by_model["Tesla T4"]
    assert (h100["gpu_mode"], h100["gpu_count"], h100["memory_capacity_gb"]) == ("dedicated", 1, approx(85.89934592))
    assert (t4["gpu_mode"], t4["gpu_count"], t4["mig_instance_id"], t4["mig_profile"]) == ("dedicated", 1, None, None)
    assert t4["memory_capacity_gb"] == approx(16.10612736)
    a100 = sorted(by_model["A100 SXM4 40GB"], key=lambda r: r["mig_slice_count"])
    assert [(r["mig_profile"], r["mig_slice_count"], r["gpu_max_slices"], r["gpu_mode"]) for r in a100] == [
        ("1g.5gb", 1, 7, "MIG"),
        ("3g.20gb", 3, 7, "MIG"),
    ]
    assert [r["mig_memory_capacity_gb"] for r in a100] == [approx(5.36870912), approx(21.47483648)]
    assert {(r["namespace"], r["node"], r["vendor_name"], r["usage_start"]) for r in actual} == {
        ("ml-team", "gpu-0", "nvidia", NISE_DAY)
    }
    expected = reference_gpu_summary(
        None,
        tmp_path / "data",
        account=ACCOUNT,
        source=source,
        cluster_id=CLUSTER,
        cluster_alias=ALIAS,
        start=NISE_DAY,
        end=NISE_DAY,
        cost_category_patterns=conn.execute(
            sql.SQL("SELECT namespace, cost_category_id FROM {}.reporting_ocp_cost_category_namespace").format(
                sql.Identifier(schema)
            )
        ).fetchall(),
    )
    assert len(expected) == 4
    assert compare_gpu_summaries(expected, actual) == []


# ---------------------------------------------------------------- Dagster: the gpu_summary asset and its checks
def _gpu_materializations(result) -> dict[str, dict]:
    return {
        e.partition: {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == O.GPU_SUMMARY
    }


def test_dagster_materializes_the_gpu_summary_with_its_checks(dagster_env):
    identity = build_cluster(dagster_env.data_root, "cluster-a", [DAY])
    dagster_env.register(identity)
    gpu = {"node": "worker-1", "namespace": "shop", "pod": "web-0"}
    write_gpu_parquet(
        dagster_env.data_root,
        identity.source_uuid,
        gpu_rows(DAY, range(24), gpu_uuid="GPU-1", **gpu) + gpu_rows(DAY, range(24), gpu_uuid="GPU-2", **gpu),
    )
    key = str(partition_key("cluster-a", DAY))

    result = dagster_env.materialize(partition_key=key)

    assert result.success
    assert {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()} == set(O.STAGES)
    metadata = _gpu_materializations(result)[key]
    assert metadata["dagster/row_count"] == 2 and metadata["gpu_count"] == 2 and metadata["rows_deleted"] == 0
    evaluations = {(e.check_name, e.partition): e for e in result.get_asset_check_evaluations()}
    assert all(evaluations[(name, key)].passed for name in GPU_CHECKS)
    assert evaluations[(O.GPU_COUNTS_CONSERVED, key)].asset_key == dg.AssetKey(O.GPU_SUMMARY)
    with psycopg.connect(dagster_env.dsn, autocommit=True) as conn:
        stored = engine_gpu_rows(conn, dagster_env.schema, identity.source_uuid)
    assert [(r["namespace"], r["gpu_uuid"], r["cluster_alias"]) for r in stored] == [
        ("shop", "GPU-1", "CLUSTER-A"),
        ("shop", "GPU-2", "CLUSTER-A"),
    ]
    usage_rows = dagster_env.summary_rows()

    # The GPU asset alone: only the GPU branch runs; a day whose GPU data went removes its rows.
    write_gpu_parquet(dagster_env.data_root, identity.source_uuid, [])
    alone = dagster_env.materialize(partition_key=key, selection=[O.GPU_SUMMARY])

    assert alone.success
    assert {e.asset_key.to_user_string() for e in alone.get_asset_materialization_events()} == {O.GPU_SUMMARY}
    assert {e.check_name for e in alone.get_asset_check_evaluations()} == set(O.CHECKS_BY_STAGE[O.GPU_SUMMARY])
    assert _gpu_materializations(alone)[key]["rows_deleted"] == 2
    with psycopg.connect(dagster_env.dsn, autocommit=True) as conn:
        assert engine_gpu_rows(conn, dagster_env.schema, identity.source_uuid) == []
    assert dagster_env.summary_rows() == usage_rows


def test_dagster_gpu_checks_alone_rehearse_and_a_bad_gpu_day_keeps_its_rows(dagster_env):
    identity = build_cluster(dagster_env.data_root, "cluster-a", [DAY])
    dagster_env.register(identity)
    gpu = {"node": "worker-1", "namespace": "shop", "pod": "web-0"}
    files = write_gpu_parquet(
        dagster_env.data_root, identity.source_uuid, gpu_rows(DAY, range(24), gpu_uuid="GPU-1", **gpu)
    )
    key = str(partition_key("cluster-a", DAY))
    assert dagster_env.materialize(partition_key=key).success
    with psycopg.connect(dagster_env.dsn, autocommit=True) as conn:
        before = engine_gpu_rows(conn, dagster_env.schema, identity.source_uuid)

    # Checks without their asset and without a partition: evaluated on the materialized GPU partitions, rehearsed.
    write_gpu_parquet(dagster_env.data_root, identity.source_uuid, gpu_rows(DAY, range(24), gpu_uuid="GPU-9", **gpu))
    checks = dagster_env.materialize(selection=dg.AssetSelection.checks_for_assets(O.GPU_SUMMARY))
    assert checks.success and not checks.get_asset_materialization_events()
    assert {(e.check_name, e.partition) for e in checks.get_asset_check_evaluations()} == {
        (name, key) for name in O.CHECKS_BY_STAGE[O.GPU_SUMMARY]
    }
    with psycopg.connect(dagster_env.dsn, autocommit=True) as conn:
        assert engine_gpu_rows(conn, dagster_env.schema, identity.source_uuid) == before

    # A negative GPU memory: the GPU input check fails naming the cell, the usage summary is still written.
    files = write_gpu_parquet(
        dagster_env.data_root,
        identity.source_uuid,
        gpu_rows(DAY, range(2), gpu_uuid="GPU-1", **gpu) + gpu_rows(DAY, range(2, 4), gpu_uuid="GPU-1",
                                                                      memory_mib=-5.0, **gpu),
    )  # fmt: skip
    bad = dagster_env.materialize(partition_key=key)

    assert not bad.success
    evaluation = {e.check_name: e for e in bad.get_asset_check_evaluations()}[O.GPU_USAGE_SCHEMA]
    assert not evaluation.passed and files[DAY].name in evaluation.description and "row 3" in evaluation.description
    assert evaluation.metadata["column"].value == "gpu_memory_capacity_mib"
    materialized = {e.asset_key.to_user_string() for e in bad.get_asset_materialization_events()}
    assert O.DAILY_SUMMARY in materialized and O.GPU_SUMMARY not in materialized
    with psycopg.connect(dagster_env.dsn, autocommit=True) as conn:
        assert engine_gpu_rows(conn, dagster_env.schema, identity.source_uuid) == before


def test_dagster_on_a_koku_schema_without_the_gpu_table_passes_the_gpu_checks_with_a_note_and_warns_once(dagster_env):
    identity = build_cluster(dagster_env.data_root, "cluster-a", [DAY, DAY + dt.timedelta(days=1)])
    dagster_env.register(identity)
    with psycopg.connect(dagster_env.dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP TABLE {}.{}").format(sql.Identifier(dagster_env.schema), sql.Identifier(GPU_TABLE)))
    gpu = {"node": "worker-1", "namespace": "shop", "pod": "web-0"}
    write_gpu_parquet(dagster_env.data_root, identity.source_uuid, gpu_rows(DAY, range(24), gpu_uuid="GPU-1", **gpu))
    keys = [str(partition_key("cluster-a", DAY + dt.timedelta(days=n))) for n in range(2)]
    tags = {"dagster/asset_partition_range_start": keys[0], "dagster/asset_partition_range_end": keys[1]}

    result = dagster_env.materialize(tags=tags)

    assert result.success
    reason = (
        f"koku's schema {dagster_env.schema} has no {GPU_TABLE} (koku older than migration 0340): GPU summary not "
        f"written; `ocp-assets db init --schema {dagster_env.schema}` adds the table (docs/operations.md first, for "
        "koku's own schemas)"
    )
    evaluations = {(e.check_name, e.partition): e for e in result.get_asset_check_evaluations()}
    for key in keys:
        for name in GPU_CHECKS:
            evaluation = evaluations[(name, key)]
            assert evaluation.passed and evaluation.description == reason
            assert evaluation.metadata["skipped"].value == reason
    materialized = {(e.asset_key.to_user_string(), e.partition) for e in result.get_asset_materialization_events()}
    assert {(O.DAILY_SUMMARY, key) for key in keys} <= materialized
    assert not {stage for stage, _ in materialized} & set(O.GPU_STAGES)  # nothing read or written: not materialized
    warnings = [
        entry.user_message
        for entry in dagster_env.instance.all_logs(result.run_id)
        if entry.level == logging.WARNING and "GPU summary not written" in entry.user_message
    ]
    assert warnings == [f"{reason} for 2 cluster-day(s)"]
    with psycopg.connect(dagster_env.dsn, autocommit=True) as conn:
        assert conn.execute("SELECT to_regclass(%s)", (f'"{dagster_env.schema}".{GPU_TABLE}',)).fetchone()[0] is None


def test_frames_of_the_helper_roll_up_like_koku():
    """The test's daily files follow koku's GPU_GROUP_BY: pods on one GPU stay apart, uptime is summed."""
    rows = gpu_rows(DAY, range(3), node="n", namespace="ml", pod="p", gpu_uuid="G")
    with tempfile.TemporaryDirectory() as directory:
        write_gpu_parquet(Path(directory), "s", rows)
        daily = pd.concat(pq.read_table(p).to_pandas() for p in Path(directory).glob("data/parquet/daily/**/*.parquet"))
    assert len(daily) == 1 and daily["gpu_pod_uptime"].iloc[0] == 3 * 3600.0


def test_the_sensor_runs_a_day_whose_gpu_files_changed(dagster_env):
    from ocp_assets.defs.sensors import koku_parquet_sensor
    from ocp_assets_tests.dagster_fixtures import store_sensor_runs

    identity = build_cluster(dagster_env.data_root, "cluster-a", [DAY])

    def tick(cursor=None) -> dg.SensorResult:
        with dg.build_sensor_context(
            instance=dagster_env.instance, resources=dagster_env.resources, cursor=cursor
        ) as context:
            result = koku_parquet_sensor(context)
        for request in result.dynamic_partitions_requests:
            dagster_env.instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        store_sensor_runs(dagster_env.instance, result)  # as the daemon does: the next tick marks the files seen
        return result

    first = tick()
    assert [str(r.partition_key) for r in first.run_requests] == ["cluster-a|2026-03-03"]

    later = DAY + dt.timedelta(days=2)  # GPU usage only: no pod file covers that day
    write_gpu_parquet(
        dagster_env.data_root,
        identity.source_uuid,
        gpu_rows(later, range(3), node="worker-1", namespace="shop", pod="web-0", gpu_uuid="GPU-1"),
    )
    second = tick(first.cursor)

    assert [str(r.partition_key) for r in second.run_requests] == [f"cluster-a|{later.isoformat()}"]


def test_cli_summarize_finds_gpu_only_days_and_removes_gpu_rows_of_an_emptied_day(pg, dsn, tmp_path):
    """`ocp-assets summarize` without a range: days with GPU data and no pod data are summarised (GPU rows written),
    and a day whose GPU files are gone loses its GPU rows on the next run, as koku's delete-then-insert would."""
    conn, schema = pg
    source = new_source()
    next_day = DAY + dt.timedelta(days=1)
    rows = gpu_rows(DAY, range(4), node="n", namespace="ml", pod="p", gpu_uuid="G1") + gpu_rows(
        next_day, range(2), node="n", namespace="ml", pod="p", gpu_uuid="G2"
    )
    write_gpu_parquet(tmp_path, source, rows)
    command = [
        str(Path(sys.executable).parent / "ocp-assets"), "summarize", "--data-root", str(tmp_path),
        "--account", ACCOUNT, "--source", source, "--cluster-id", CLUSTER, "--cluster-alias", ALIAS,
        "--dsn", dsn, "--schema", schema,
    ]  # fmt: skip

    first = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    assert first.returncode == 0, first.stderr
    lines = [line for line in first.stdout.splitlines() if line.startswith("  20")]
    assert len(lines) == 2 and all("no pod or storage data" in line and "GPU 1 (replaced 0)" in line for line in lines)
    assert sorted((r["usage_start"], r["gpu_uuid"]) for r in engine_gpu_rows(conn, schema, source)) == [
        (DAY, "G1"),
        (next_day, "G2"),
    ]

    write_gpu_parquet(tmp_path, source, [r for r in rows if r["interval_start"].date() == DAY])
    second = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    assert second.returncode == 0, second.stderr
    assert f"  {next_day.isoformat()}  no koku data for this day (its previous rows removed)" in second.stdout
    assert [(r["usage_start"], r["gpu_uuid"]) for r in engine_gpu_rows(conn, schema, source)] == [(DAY, "G1")]


# ---------------------------------------------------------------- the CLI: each branch committed and said on its own
def _usage_state(conn, schema: str, source: str) -> tuple[set[str], float]:
    """The daily summary's row uuids of the source and its pods' CPU usage (unallocated rows left out)."""
    table = sql.Identifier(schema, "reporting_ocpusagelineitem_daily_summary")
    uuids = conn.execute(sql.SQL("SELECT uuid::text FROM {} WHERE source_uuid = %s").format(table), (source,))
    cpu = conn.execute(
        sql.SQL(
            "SELECT sum(pod_usage_cpu_core_hours)::float8 FROM {} WHERE source_uuid = %s AND data_source = 'Pod'"
            " AND namespace NOT LIKE '%% unallocated'"
        ).format(table),
        (source,),
    )
    return {u for (u,) in uuids.fetchall()}, cpu.fetchone()[0]


def _summarize_cluster(data_root: Path, source: str, dsn: str, schema: str, capsys) -> tuple[int, str, list[str]]:
    from ocp_assets.cli import main

    code = main(["summarize", "--data-root", str(data_root), "--source", source, "--dsn", dsn, "--schema", schema])
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip().splitlines()


# build_cluster's pods on DAY, in core-hours: apiserver 0.2 x 24, web-0 0.1 x 24, web-1 0.2 x 24, batch-1 0.5 x 12.
POD_CPU_CORE_HOURS = 0.2 * 24 + 0.1 * 24 + 0.2 * 24 + 0.5 * 12  # 18.0
GPU_ON_WEB_0 = {"node": "worker-1", "namespace": "shop", "pod": "web-0"}


@pytest.fixture
def summarised_with_gpu(pg, dsn, tmp_path, capsys):
    """A cluster-day whose usage and GPU summaries are in PostgreSQL, written by `ocp-assets summarize`."""
    conn, schema = pg
    identity = build_cluster(tmp_path, "rv-gpu", [DAY])
    write_gpu_parquet(tmp_path, identity.source_uuid, gpu_rows(DAY, range(4), gpu_uuid="GPU-1", **GPU_ON_WEB_0))
    code, _, err = _summarize_cluster(tmp_path, identity.source_uuid, dsn, schema, capsys)
    assert code == 0, err
    uuids, cpu = _usage_state(conn, schema, identity.source_uuid)
    assert cpu == approx(POD_CPU_CORE_HOURS)
    gpu = engine_gpu_rows(conn, schema, identity.source_uuid)
    memory_gb = 40960 * 2**20 / 1e9  # koku's GB are 10^9 bytes
    assert [(r["gpu_uuid"], float(r["memory_capacity_gb"])) for r in gpu] == [("GPU-1", approx(memory_gb))]
    return conn, schema, tmp_path, identity, uuids, gpu


def test_cli_writes_the_usage_summary_and_keeps_the_gpu_rows_when_only_the_gpu_input_is_bad(
    summarised_with_gpu, dsn, capsys
):
    """The two branches commit separately (G3): pod CPU doubled and one GPU memory value -5. The usage summary is
    written; the GPU summary fails naming file, column and row and keeps its rows; the CLI says both."""
    from ocp_assets_tests.dagster_fixtures import change_day

    conn, schema, data_root, identity, uuids_before, gpu_before = summarised_with_gpu
    change_day(data_root, identity, "pod_usage", "pod_usage_cpu_core_seconds", DAY, lambda seconds: seconds * 2)
    files = write_gpu_parquet(
        data_root,
        identity.source_uuid,
        gpu_rows(DAY, range(2), gpu_uuid="GPU-1", **GPU_ON_WEB_0)
        + gpu_rows(DAY, range(2, 4), gpu_uuid="GPU-1", memory_mib=-5.0, **GPU_ON_WEB_0),
    )

    code, out, err = _summarize_cluster(data_root, identity.source_uuid, dsn, schema, capsys)

    assert code == 2
    [day_line] = [line for line in out.splitlines() if line.startswith(f"  {DAY.isoformat()}  ")]
    assert day_line.startswith(f"  {DAY.isoformat()}  Pod ")
    assert day_line.endswith("  GPU summary failed (its previous GPU rows kept)")
    [failure] = [line for line in err if line.startswith(f"ocp-assets: error: rv-gpu {DAY.isoformat()}: ")]
    assert failure == (
        f"ocp-assets: error: rv-gpu {DAY.isoformat()}: file {files[DAY]}, column 'gpu_memory_capacity_mib', row 3: "
        "negative value: -5.0 — GPU summary not written, its previous GPU rows kept; usage summary written"
    )
    assert err[-1].startswith(
        f"ocp-assets: error: 1 failed (rv-gpu {DAY.isoformat()}: usage summary written; GPU summary failed, its "
        "previous GPU rows kept); every other cluster-day was written — "
    )
    uuids, cpu = _usage_state(conn, schema, identity.source_uuid)
    assert cpu == approx(2 * POD_CPU_CORE_HOURS) and uuids and not uuids & uuids_before  # the new usage rows
    assert engine_gpu_rows(conn, schema, identity.source_uuid) == gpu_before  # the old GPU rows


def test_cli_writes_the_gpu_summary_and_keeps_the_usage_rows_when_only_the_pod_input_is_bad(
    summarised_with_gpu, dsn, capsys
):
    """The reverse: a negative pod CPU value fails the usage summary (named, its rows kept); the changed GPU usage
    (another GPU, 81920 MiB) is written and the CLI says so."""
    from ocp_assets_tests.dagster_fixtures import negate_first_value

    conn, schema, data_root, identity, uuids_before, _ = summarised_with_gpu
    path = negate_first_value(data_root, identity, "pod_usage", "pod_usage_cpu_core_seconds")
    write_gpu_parquet(
        data_root, identity.source_uuid, gpu_rows(DAY, range(4), gpu_uuid="GPU-2", memory_mib=81920.0, **GPU_ON_WEB_0)
    )

    code, out, err = _summarize_cluster(data_root, identity.source_uuid, dsn, schema, capsys)

    assert code == 2
    assert f"  {DAY.isoformat()}  usage summary failed (its previous rows kept)  GPU 1 (replaced 1)" in out
    [failure] = [line for line in err if line.startswith(f"ocp-assets: error: rv-gpu {DAY.isoformat()}: ")]
    assert failure.startswith(f"ocp-assets: error: rv-gpu {DAY.isoformat()}: file {path}, column ")
    assert "'pod_usage_cpu_core_seconds', row 1: negative value" in failure
    assert failure.endswith("— usage summary not written, its previous rows kept; GPU summary written")
    assert err[-1].startswith(
        f"ocp-assets: error: 1 failed (rv-gpu {DAY.isoformat()}: usage summary failed, its previous rows kept; "
        "GPU summary written); every other cluster-day was written — "
    )
    assert _usage_state(conn, schema, identity.source_uuid) == (uuids_before, approx(POD_CPU_CORE_HOURS))
    gpu = engine_gpu_rows(conn, schema, identity.source_uuid)
    assert [(r["gpu_uuid"], float(r["memory_capacity_gb"])) for r in gpu] == [("GPU-2", approx(81920 * 2**20 / 1e9))]


def test_cli_reports_both_branches_failures_of_one_day(summarised_with_gpu, dsn, capsys, monkeypatch):
    """A usage check that names no file is not hidden by the GPU branch's file error: both are reported, both
    branches keep their rows."""
    from ocp_assets.core import consistency

    conn, schema, data_root, identity, uuids_before, gpu_before = summarised_with_gpu
    monkeypatch.setattr(consistency, "usage_conserved", lambda raw, rows: O.CheckOutcome(False, "forced failure"))
    files = write_gpu_parquet(
        data_root,
        identity.source_uuid,
        gpu_rows(DAY, range(2), gpu_uuid="GPU-1", **GPU_ON_WEB_0)
        + gpu_rows(DAY, range(2, 4), gpu_uuid="GPU-1", memory_mib=-5.0, **GPU_ON_WEB_0),
    )

    code, out, err = _summarize_cluster(data_root, identity.source_uuid, dsn, schema, capsys)

    assert code == 2
    prefix = f"ocp-assets: error: rv-gpu {DAY.isoformat()}: "
    assert [line for line in err if line.startswith(prefix)] == [
        f"{prefix}check usage_conserved: forced failure — usage summary not written, its previous rows kept; GPU "
        "summary failed, its previous GPU rows kept",
        f"{prefix}file {files[DAY]}, column 'gpu_memory_capacity_mib', row 3: negative value: -5.0 — GPU summary not "
        "written, its previous GPU rows kept; usage summary failed, its previous rows kept",
    ]
    assert (
        f"  {DAY.isoformat()}  usage summary failed (its previous rows kept)  GPU summary failed (its previous GPU "
        "rows kept)"
    ) in out
    assert _usage_state(conn, schema, identity.source_uuid) == (uuids_before, approx(POD_CPU_CORE_HOURS))
    assert engine_gpu_rows(conn, schema, identity.source_uuid) == gpu_before


def test_cli_says_the_usage_summary_was_written_when_the_gpu_branch_then_loses_the_database(
    summarised_with_gpu, dsn, capsys, monkeypatch
):
    """An infrastructure error in the GPU branch, after the usage summary committed: exit 1, and before the one-line
    error the command says what it wrote (this day's usage summary among it), not that nothing was written."""
    from ocp_assets.core import pipeline
    from ocp_assets_tests.dagster_fixtures import change_day

    conn, schema, data_root, identity, _uuids_before, gpu_before = summarised_with_gpu
    change_day(data_root, identity, "pod_usage", "pod_usage_cpu_core_seconds", DAY, lambda v: v * 2)
    real = pipeline.ensure_month_partition

    def lost_on_the_gpu_table(conn, schema, day, *table):
        if table == (GPU_TABLE,):
            raise psycopg.OperationalError("server closed the connection unexpectedly")
        return real(conn, schema, day, *table)

    monkeypatch.setattr(pipeline, "ensure_month_partition", lost_on_the_gpu_table)
    code, _out, err = _summarize_cluster(data_root, identity.source_uuid, dsn, schema, capsys)

    assert code == 1
    assert err == [  # one line, as every infrastructure error
        "ocp-assets: database error (OperationalError): server closed the connection unexpectedly — run the same "
        "command again once PostgreSQL is back; the days not written keep their previous rows (0 cluster-day(s) "
        f"written before the error, and rv-gpu {DAY.isoformat()}'s usage summary written (its GPU summary not))"
    ]
    # by hand: build_cluster's 18.0 pod core-hours, doubled; the GPU rows as they were
    assert _usage_state(conn, schema, identity.source_uuid)[1] == approx(2 * POD_CPU_CORE_HOURS)
    assert engine_gpu_rows(conn, schema, identity.source_uuid) == gpu_before


def test_the_partitions_gpu_memory_counts_each_gpu_once_however_many_mig_instances_it_has(pg, tmp_path):
    """The metadata a user reads per partition: two MIG instances of one 40960 MiB A100 and a dedicated 81920 MiB
    H100 hold 42.94967296 + 85.89934592 GB of GPU memory (MiB x 0.001048576), not the A100 twice."""
    conn, schema = pg
    source = new_source()
    write_gpu_parquet(
        tmp_path,
        source,
        gpu_rows(DAY, range(2), node="n", namespace="ml", pod="a", gpu_uuid="A100-1", memory_mib=40960.0,
                 mig_instance_id="MIG-1", mig_profile="1g.5gb", mig_strategy="mixed")
        + gpu_rows(DAY, range(2), node="n", namespace="ml", pod="b", gpu_uuid="A100-1", memory_mib=40960.0,
                   mig_instance_id="MIG-2", mig_profile="3g.20gb", mig_strategy="mixed")
        + gpu_rows(DAY, range(2), node="n", namespace="ml", pod="c", gpu_uuid="H100-1", model="H100",
                   memory_mib=81920.0),
    )  # fmt: skip

    result = run_gpu(conn, schema, tmp_path, source, DAY)

    assert result.passed and result.stages[O.GPU_SUMMARY]["rows"] == 3
    assert result.stages[O.GPU_SUMMARY]["memory_capacity_gb"] == approx(42.94967296 + 85.89934592)
