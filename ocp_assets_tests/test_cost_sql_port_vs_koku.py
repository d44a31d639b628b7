"""The cost-model SQL port equals koku's own on-prem SQL, for every file and variant, on hand-made and nise data."""

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Mapping
from decimal import Decimal

import pytest

from ocp_assets.core.pgschema import SUMMARY_COLUMNS
from ocp_assets_tests.costs_support import assert_same_rows, needs_koku
from ocp_assets_tests.reference.cost_port_fixtures import (
    A100,
    A100_40,
    ACCOUNT,
    BASE,
    HAND_CALLS,
    MONTHLY,
    NISE_CALLS,
    OCT2,
    nise_cache,
    nise_month,
    rich_month,
    vm_summary_row,
)
from ocp_assets_tests.reference.cost_sql_port import run_port
from ocp_assets_tests.reference.koku_cost_sql import KokuCostDatabase

pytestmark = needs_koku
SOURCE = "6f0c5b3e-8a0e-4a8c-9a53-2a9f1c0d7e11"
SUMMARY_FIELDS = [name for name, _ in SUMMARY_COLUMNS if name != "uuid"]
TMP_FIELDS = ["vm_name", "node", "pvc_name", "cpu_request", "mem_request"]


# ------------------------------------------------------------------------------------------------ comparing
def add_koku_staging(db: KokuCostDatabase) -> None:
    """koku's project file reads the namespace's nodes from the daily summary's staging table (C9): the summary's
    usage rows of the source and month, with koku's year/month text (month not padded)."""
    db.conn.execute(
        "CREATE TABLE reporting_ocpusagelineitem_daily_summary_staging AS"
        " SELECT usage_start, cluster_id, cluster_alias, data_source, namespace, node, source_uuid::text AS source,"
        " to_char(usage_start, 'YYYY') AS year, extract(month FROM usage_start)::int::text AS month"
        " FROM reporting_ocpusagelineitem_daily_summary"
        " WHERE data_source IN ('Pod', 'Storage') AND cost_model_rate_type IS NULL AND monthly_cost_type IS NULL"
    )


def koku_and_port(db: KokuCostDatabase, file: str, params: Mapping) -> tuple[list[dict], list[dict]]:
    """koku's rows and the port's for the same call on the same tables, each run rolled back."""
    with db.conn.transaction(force_rollback=True):
        expected = db.run(file, params)
    with db.conn.transaction(force_rollback=True):
        actual = run_port(db, file, params)
    return expected, actual


def one_row_per_category_match(rows: Iterable[Mapping]) -> list[dict]:
    """koku's GPU rows with its cost-category fan-out undone as C5 decides. The LEFT JOIN copies each GPU row once
    per matching pattern, so among rows equal but for cost_category_id (and uuid) those with the largest category
    are exactly one per GPU row (rows that are simply equal, such as daily duplicates, stay)."""
    groups: dict[str, list[dict]] = {}
    for row in rows:
        key = json.dumps({k: v for k, v in row.items() if k not in ("uuid", "cost_category_id")}, default=str,
                         sort_keys=True)  # fmt: skip
        groups.setdefault(key, []).append(dict(row))
    kept = []
    for members in groups.values():
        categories = [m["cost_category_id"] for m in members if m["cost_category_id"] is not None]
        largest = max(categories) if categories else None
        kept += [m for m in members if m["cost_category_id"] == largest]
    return kept


def vms_with_several_rows(db: KokuCostDatabase, params: Mapping) -> set[str]:
    """The VMs with several summary rows (any source) on the tmp table's day, the source's second-to-last day of
    the range (8.7): koku keeps an arbitrary one of them and C6 a chosen one, so they are compared by hand only."""
    rows = db.conn.execute(
        "SELECT usage_start, source_uuid::text, pod_labels ->> 'vm_kubevirt_io_name'"
        " FROM reporting_ocpusagelineitem_daily_summary"
        " WHERE pod_request_cpu_core_hours IS NOT NULL AND usage_start BETWEEN %s::date AND %s::date",
        (params["start_date"], params["end_date"]),
    ).fetchall()
    days = sorted({day for day, source, _ in rows if source == params["source_uuid"]}, reverse=True)[:2]
    names = [vm for day, _, vm in rows if days and day == days[-1] and vm is not None]
    return {vm for vm in names if names.count(vm) > 1}


def assert_port_equals_koku(db: KokuCostDatabase, file: str, params: Mapping) -> list[dict]:
    expected, actual = koku_and_port(db, file, params)
    if file == "monthly_cost_gpu.sql":
        expected = one_row_per_category_match(expected)
    if file == "populate_vm_tmp_table.sql":
        ambiguous = vms_with_several_rows(db, params)
        expected = [r for r in expected if r["vm_name"] not in ambiguous]
        actual = [r for r in actual if r["vm_name"] not in ambiguous]
    assert_same_rows(expected, actual, TMP_FIELDS if file.startswith("populate_vm_tmp") else SUMMARY_FIELDS)
    return expected


# ------------------------------------------------------------------------------------------------ hand-made month
@pytest.fixture(scope="module")
def hand_db(dsn, tmp_path_factory):
    month = rich_month(tmp_path_factory.mktemp("rich"), SOURCE)
    with KokuCostDatabase(dsn) as db:
        month.load(db)
        add_koku_staging(db)
        yield db


@pytest.mark.parametrize("end", ["2026-10-31", "2026-10-02", "2026-10-01"])
@pytest.mark.parametrize(("file", "extra"), [c[1:] for c in HAND_CALLS], ids=[c[0] for c in HAND_CALLS])
def test_port_equals_koku_on_the_hand_made_month(hand_db, file, extra, end):
    rows = assert_port_equals_koku(hand_db, file, {**BASE, "source_uuid": SOURCE, **extra, "end_date": end})
    assert rows, "every call gives koku rows on this month"


@pytest.mark.parametrize(
    "gpu_calls",
    [
        [{"rate_type": "Infrastructure", "value_rates": {A100: 1000.0}, "default_rate": 200.0}],
        [
            {"rate_type": "Infrastructure", "value_rates": {A100: 1000.0, A100_40: 700.0}},
            {"rate_type": "Supplementary", "default_rate": 300.0},
        ],
    ],
    ids=["one-cost-type", "both-cost-types"],
)
def test_gpu_distribution_port_equals_koku_on_kokus_gpu_rows(hand_db, gpu_calls):
    params = {**BASE, "source_uuid": SOURCE}
    with hand_db.conn.transaction(force_rollback=True):
        for gpu in gpu_calls:
            hand_db.run("monthly_cost_gpu.sql", {**params, **MONTHLY, "tag_key": "nvidia", **gpu})
        rows = assert_port_equals_koku(
            hand_db, "distribute_unallocated_gpu_cost.sql", {**params, "cost_model_rate_type": "gpu_distributed"}
        )
    assert {r["namespace"] for r in rows} >= {"GPU unallocated", "inference", "ml-training", "batch"}


def test_koku_writes_a_gpu_row_per_matching_category_the_port_one(hand_db):
    # C5: ml-training matches ml-% and ml-training; koku writes each of its GPU rows twice, the port once (max: 9).
    params = {**BASE, **MONTHLY, "source_uuid": SOURCE, "rate_type": "Infrastructure", "tag_key": "nvidia",
              "default_rate": 100.0}  # fmt: skip
    expected, actual = koku_and_port(hand_db, "monthly_cost_gpu.sql", params)
    koku = sorted(r["cost_category_id"] for r in expected if r["resource_id"] == "GPU-0")
    assert koku == [7, 9] and [r["cost_category_id"] for r in actual if r["resource_id"] == "GPU-0"] == [9]


def test_hourly_vm_core_tag_reads_rows_with_a_monthly_cost_type_where_the_port_does_not(hand_db):
    # Contract 8.4 says the file lacks the monthly_cost_type filter but "is not affected": true for koku's rows
    # (cost rows carry no usage). A hand-made row with both a monthly cost type and usage shows the difference.
    params = {**BASE, "source_uuid": SOURCE, "rate_type": "Infrastructure", "tag_key": "app", "default_rate": 0.05}
    with hand_db.conn.transaction(force_rollback=True):
        odd_row = vm_summary_row(OCT2, vm="rhel9-vm", source=SOURCE, node="virt-5", labels={"app": "odd"},
                                 monthly_cost_type="OCP_VM_CORE")  # fmt: skip
        hand_db.insert_summary_rows([odd_row])
        expected, actual = koku_and_port(hand_db, "hourly_vm_core_tag_based.sql", params)
    odd = [r for r in expected if r["pod_labels"].get("app") == "odd"]
    assert len(odd) == 1 and not [r for r in actual if r["pod_labels"].get("app") == "odd"]
    assert_same_rows([r for r in expected if r not in odd], actual, SUMMARY_FIELDS)


def test_koku_combines_a_null_label_value_over_a_string(hand_db):
    # 8.4 combined labels: "the greatest value as a string". koku's DISTINCT ON (key) ORDER BY key, value DESC puts
    # a JSON null (SQL NULL) first; the port keeps the string. Labels from koku's ingest are never null.
    params = {**BASE, "source_uuid": SOURCE, "rate_type": "Infrastructure", "hourly_rate": 0.05}
    with hand_db.conn.transaction(force_rollback=True):
        hand_db.insert_summary_rows([
            vm_summary_row(OCT2, vm="win2k22-vm", source=SOURCE, node="virt-1", labels={"app": "web", "k": None}),
            vm_summary_row(OCT2, vm="win2k22-vm", source=SOURCE, node="virt-1", labels={"app": "web", "k": "x"}),
        ])  # fmt: skip
        expected, actual = koku_and_port(hand_db, "hourly_vm_core.sql", params)
    koku = {
        r["pod_labels"].get("k", "absent") for r in expected if r["pod_labels"]["vm_kubevirt_io_name"] == "win2k22-vm"
    }
    port = {
        r["pod_labels"].get("k", "absent") for r in actual if r["pod_labels"]["vm_kubevirt_io_name"] == "win2k22-vm"
    }
    assert (koku, port) == ({None}, {"x"})


def test_koku_finds_gpu_nodes_by_the_label_texts_spacing(hand_db):
    # 8.6 step 1: labels with nvidia_com_gpu_present "True". koku matches the text '"nvidia_com_gpu_present": "True"'
    # (json.dumps' spacing, as koku's ingest writes it); compact JSON of the same labels is no GPU node for koku.
    params = {**BASE, **MONTHLY, "source_uuid": SOURCE, "rate_type": "Infrastructure", "tag_key": "nvidia",
              "default_rate": 100.0}  # fmt: skip
    compact = json.dumps({"nvidia_com_gpu_present": "True", "nvidia_com_gpu_count": "1",
                          "nvidia_com_mig_strategy": "single", "nvidia_com_gpu_product": "Tesla-T4"},
                         separators=(",", ":"))  # fmt: skip
    with hand_db.conn.transaction(force_rollback=True):
        hand_db.conn.execute(
            "INSERT INTO openshift_node_labels_line_items (interval_start, node, node_labels, usage_start, source,"
            " year, month) SELECT timestamp '2026-10-01' + make_interval(hours => h), 'gpu-compact', %s,"
            " date '2026-10-01', %s, '2026', '10' FROM generate_series(0, 23) AS h",
            (compact, SOURCE),
        )
        expected, actual = koku_and_port(hand_db, "monthly_cost_gpu.sql", params)
    assert "gpu-compact" not in {r["node"] for r in expected}
    (row,) = [r for r in actual if r["node"] == "gpu-compact"]
    assert row["cost_model_gpu_cost"] is None  # idle, single strategy: 24 unused GPU-hours, no max slices (8.9.8)


def test_koku_rounds_the_gpu_rate_to_nine_decimals(hand_db):
    # 8.6 names the rate with no rounding; koku casts it to decimal(24,9). 31.0000000004 per month: koku charges a
    # GPU used all day 31.000000000 / 31 = 1; the port 31.0000000004 / 31 = 1.0000000000129..., a float8 stored
    # with its 15 significant digits (C8): 1.00000000001290.
    params = {**BASE, **MONTHLY, "source_uuid": SOURCE, "rate_type": "Infrastructure", "tag_key": "nvidia",
              "default_rate": 31.0000000004}  # fmt: skip
    expected, actual = koku_and_port(hand_db, "monthly_cost_gpu.sql", params)
    assert {r["cost_model_gpu_cost"] for r in expected if r["resource_id"] == "GPU-0"} == {Decimal(1)}
    assert [r["cost_model_gpu_cost"] for r in actual if r["resource_id"] == "GPU-0"] == [Decimal("1.0000000000129")]


# ------------------------------------------------------------------------------------------------ nise month
@pytest.fixture(scope="module")
def nise_db(dsn, tmp_path_factory, request):
    source = str(uuid.uuid4())
    data = tmp_path_factory.mktemp("nise")
    summary = nise_month(data, source, nise_cache(request, tmp_path_factory))
    with KokuCostDatabase(dsn) as db:
        db.load_parquet(data, ACCOUNT, source, [(2026, 10)])
        db.insert_summary_rows(summary)
        add_koku_staging(db)
        yield db, source


@pytest.mark.slow
@pytest.mark.parametrize(("file", "extra"), [c[1:] for c in NISE_CALLS], ids=[c[0] for c in NISE_CALLS])
def test_port_equals_koku_on_nise_data(nise_db, file, extra):
    db, source = nise_db
    rows = assert_port_equals_koku(db, file, {**BASE, "source_uuid": source, **extra})
    assert rows, "nise's month gives koku rows for every call"


@pytest.mark.slow
def test_gpu_distribution_port_equals_koku_on_nise_data(nise_db):
    db, source = nise_db
    params = {**BASE, "source_uuid": source}
    with db.conn.transaction(force_rollback=True):
        for rate_type, rates in (("Infrastructure", {"value_rates": {"H100": 3000.0}, "default_rate": 100.0}),
                                 ("Supplementary", {"default_rate": 50.0})):  # fmt: skip
            db.run("monthly_cost_gpu.sql", {**params, **MONTHLY, "tag_key": "nvidia", "rate_type": rate_type, **rates})
        rows = assert_port_equals_koku(
            db, "distribute_unallocated_gpu_cost.sql", {**params, "cost_model_rate_type": "gpu_distributed"}
        )
    assert {r["namespace"] for r in rows} == {"GPU unallocated", "ml-team"}
    assert dt.date(2026, 10, 31) in {r["usage_start"] for r in rows}
