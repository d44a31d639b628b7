"""ocp_assets' cost-model functions equal the cost SQL port (no koku source needed), file by file and variant by
variant, on the hand-made month and on nise's gpu_vm.yml data."""

import uuid

import pytest

from ocp_assets.core.costs import calls
from ocp_assets.core.costs.params import parse_params
from ocp_assets.core.pgschema import SUMMARY_COLUMNS
from ocp_assets.core.storage import open_data_root
from ocp_assets_tests.costs_support import assert_same_rows
from ocp_assets_tests.reference.cost_port_fixtures import (
    A100,
    A100_40,
    ACCOUNT,
    BASE,
    HAND_CALLS,
    MONTHLY,
    NISE_CALLS,
    nise_cache,
    nise_month,
    rich_month,
    worked_month,
)
from ocp_assets_tests.reference.cost_sql_port import run_port
from ocp_assets_tests.reference.koku_cost_sql import KokuCostDatabase

SOURCE = "6f0c5b3e-8a0e-4a8c-9a53-2a9f1c0d7e11"
SUMMARY_FIELDS = [name for name, _ in SUMMARY_COLUMNS if name != "uuid"]
TMP_FIELDS = ["vm_name", "node", "pvc_name", "cpu_request", "mem_request"]
DISTRIBUTION = "distribute_unallocated_gpu_cost.sql"


def ours(db: KokuCostDatabase, data_root, file: str, params: dict) -> list[dict]:
    """ocp_assets' rows for one call, as its cost steps compute them (costs.calls): Parquet from `data_root`, the
    summary and cost categories from `db`'s schema. Columns ocp_assets leaves out are NULL in the summary."""
    given = calls.CallInputs(open_data_root(str(data_root)), ACCOUNT, db.conn, db.schema)
    return calls.compute(parse_params(file, {**params, "schema": db.schema}), given).to_pylist()


def needs_function(file: str) -> None:
    if file not in calls.supported_files():
        pytest.skip(f"ocp_assets has no function for {file} yet (costs.calls)")


def assert_ours_equal_port(db: KokuCostDatabase, data_root, file: str, params: dict) -> list[dict]:
    needs_function(file)
    with db.conn.transaction(force_rollback=True):
        expected = run_port(db, file, params)
    with db.conn.transaction(force_rollback=True):
        actual = ours(db, data_root, file, params)
    fields = TMP_FIELDS if file.startswith("populate_vm_tmp") else SUMMARY_FIELDS
    assert_same_rows(expected, actual, fields)
    return expected


def assert_distribution_equal(db: KokuCostDatabase, data_root, source: str, gpu_calls: list[dict]) -> list[dict]:
    """The GPU distribution of both on the same 'GPU unallocated' rows (the port's GPU file run first)."""
    needs_function(DISTRIBUTION)
    params = {**BASE, "source_uuid": source}
    with db.conn.transaction(force_rollback=True):
        for gpu in gpu_calls:
            run_port(db, "monthly_cost_gpu.sql", {**params, **MONTHLY, "tag_key": "nvidia", **gpu})
        return assert_ours_equal_port(
            db, data_root, DISTRIBUTION, {**params, "cost_model_rate_type": "gpu_distributed"}
        )


# ------------------------------------------------------------------------------------------------ hand-made months
@pytest.fixture(scope="module")
def rich(dsn, tmp_path_factory):
    month = rich_month(tmp_path_factory.mktemp("rich"), SOURCE)
    with KokuCostDatabase(dsn) as db:
        month.load(db)
        yield db, month.root


@pytest.fixture(scope="module")
def worked(dsn, tmp_path_factory):
    month = worked_month(tmp_path_factory.mktemp("worked"), SOURCE)
    with KokuCostDatabase(dsn) as db:
        month.load(db)
        yield db, month.root


@pytest.mark.parametrize("end", ["2026-10-31", "2026-10-02", "2026-10-01"])
@pytest.mark.parametrize(("file", "extra"), [c[1:] for c in HAND_CALLS], ids=[c[0] for c in HAND_CALLS])
def test_ours_equal_the_port_on_the_hand_made_month(rich, file, extra, end):
    db, root = rich
    rows = assert_ours_equal_port(db, root, file, {**BASE, "source_uuid": SOURCE, **extra, "end_date": end})
    assert rows, "every call gives rows on this month"


@pytest.mark.parametrize(("file", "extra"), [c[1:] for c in HAND_CALLS], ids=[c[0] for c in HAND_CALLS])
def test_ours_equal_the_port_on_the_worked_month(worked, file, extra):
    db, root = worked
    assert_ours_equal_port(db, root, file, {**BASE, "source_uuid": SOURCE, **extra})


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
def test_gpu_distribution_equals_the_port(rich, gpu_calls):
    db, root = rich
    assert assert_distribution_equal(db, root, SOURCE, gpu_calls)


# ------------------------------------------------------------------------------------------------ nise month
@pytest.fixture(scope="module")
def nise(dsn, tmp_path_factory, request):
    source = str(uuid.uuid4())
    data = tmp_path_factory.mktemp("nise")
    summary = nise_month(data, source, nise_cache(request, tmp_path_factory))
    with KokuCostDatabase(dsn) as db:
        db.load_parquet(data, ACCOUNT, source, [(2026, 10)])
        db.insert_summary_rows(summary)
        yield db, data, source


@pytest.mark.slow
@pytest.mark.parametrize(("file", "extra"), [c[1:] for c in NISE_CALLS], ids=[c[0] for c in NISE_CALLS])
def test_ours_equal_the_port_on_nise_data(nise, file, extra):
    db, data, source = nise
    assert assert_ours_equal_port(db, data, file, {**BASE, "source_uuid": source, **extra})


@pytest.mark.slow
def test_gpu_distribution_equals_the_port_on_nise_data(nise):
    db, data, source = nise
    gpu_calls = [
        {"rate_type": "Infrastructure", "value_rates": {"H100": 3000.0}, "default_rate": 100.0},
        {"rate_type": "Supplementary", "default_rate": 50.0},
    ]
    assert assert_distribution_equal(db, data, source, gpu_calls)
