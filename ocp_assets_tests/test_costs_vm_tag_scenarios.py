"""Hand-derived rows of koku's tag-based VM cost files (contract 8.4 b, d, f; 8.9; C-1..C-4) and their bad input."""

import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from ocp_assets.core.costs import inputs, vm
from ocp_assets.core.costs.params import parse_params
from ocp_assets.core.errors import ConfigurationError, InputDataError
from ocp_assets.core.layout import VM, VM_USAGE, daily_schema, month_prefix
from ocp_assets.core.storage import open_data_root
from ocp_assets_tests.costs_support import ACCOUNT, SOURCE, TAG_SHAPES, run_ours
from ocp_assets_tests.reference.koku_cost_sql import KokuCostDatabase
from ocp_assets_tests.reference.koku_cost_sql_fixtures import VmParquet, vm_summary_row

# PostgreSQL holds the summary rows the files read: the db layer (conftest.py counts the dsn fixture).
pytestmark = pytest.mark.usefixtures("dsn")

OCT1, OCT2, OCT3 = dt.date(2026, 10, 1), dt.date(2026, 10, 2), dt.date(2026, 10, 3)
BASE = {
    "start_date": "2026-10-01",
    "end_date": "2026-10-02",
    "year": "2026",
    "month": "10",
    "source_uuid": SOURCE,
    "report_period_id": 1,
    "tag_key": "env",
}
HOURLY_FILE, CORE_FILE, MONTHLY_FILE = (
    "hourly_cost_vm_tag_based.sql",
    "hourly_vm_core_tag_based.sql",
    "monthly_vm_core_tag_based.sql",
)
# Per-hour rates (b, d) and per-month rates over October's 31 days (f): prod and dev have rates, the default 0.1
# (15.5 a month = 0.5 a core-day); "test" has no rate of its own.
HOURLY_RATES = ({"prod": 0.5, "dev": 0.25}, 0.1)
MONTHLY_RATES = ({"prod": 31.0, "dev": 62.0}, 15.5)
EXTRA = {
    HOURLY_FILE: {"use_fractional_hours": True},
    CORE_FILE: {},
    MONTHLY_FILE: {"amortized_denominator": 31, "cost_type": "Tag"},
}


def _params(file: str, shape: str, rate_type: str = "Infrastructure", **changes) -> dict:
    values, default = MONTHLY_RATES if file == MONTHLY_FILE else HOURLY_RATES
    return {**BASE, "rate_type": rate_type, **EXTRA[file], **TAG_SHAPES[shape](values, default), **changes}


@pytest.fixture
def month(tmp_path):
    """October 1 (range Oct 1-2), label env: web (24 h, 2 cores, prod), batch (12 h, 4 cores, dev), lab (24 h, 1 core,
    test: no rate), plain (no env), nulled (env JSON null); mover 18 h at 2 cores on virt-0 then 6 h at 4 cores on
    virt-1 (C-2); twin 24 h in each of two namespaces (C-4); late, last seen Oct 3 on virt-2 with other labels, and
    unsummarised-last, running Oct 2 without a summary row (C-3)."""
    vms = VmParquet(tmp_path, account=ACCOUNT, source=SOURCE)
    summary = []

    def run(name, hours, cores, env=..., day=OCT1, **where):
        vms.hours(day, hours, vm=name, cores=cores, **where)
        if env is not None:
            labels = {} if env is ... else {"env": env}
            summary.append(vm_summary_row(day, vm=name, source=SOURCE, labels=labels, **where))

    run("web", range(24), 2.0, "prod")
    run("batch", range(12), 4.0, "dev")
    run("lab", range(24), 1.0, "test")
    run("plain", range(24), 1.0)
    vms.hours(OCT1, range(24), vm="nulled", cores=1.0)
    summary.append(vm_summary_row(OCT1, vm="nulled", source=SOURCE, labels={"env": None}))
    run("mover", range(18), 2.0, "prod", node="virt-0")
    run("mover", range(18, 24), 4.0, "prod", node="virt-1")
    run("twin", range(24), 1.0, "prod", namespace="team-a")
    run("twin", range(24), 1.0, "prod", namespace="team-b")
    run("late", range(24), 3.0, "prod")
    vms.hours(OCT3, range(6), vm="late", node="virt-2", cores=3.0)
    summary.append(vm_summary_row(OCT3, vm="late", node="virt-2", source=SOURCE, labels={"env": "dev", "x": "y"}))
    run("unsummarised-last", range(24), 1.0, "prod")
    run("unsummarised-last", range(24), 1.0, None, day=OCT2)
    return vms, summary


def _costs(rows) -> dict:
    """cost per (VM, namespace, node, day); every row is a 'Tag' row."""
    assert {r["monthly_cost_type"] for r in rows} <= {"Tag"}
    keyed = {}
    for r in rows:
        key = (json.loads(r["pod_labels"])["vm_kubevirt_io_name"], r["namespace"], r["node"], r["usage_start"])
        assert key not in keyed, f"two rows for {key}"
        keyed[key] = r["cost_model_cpu_cost"]
    return keyed


def _assert_costs(rows, expected: dict) -> None:
    assert _costs(rows) == pytest.approx(expected, rel=1e-12)


def _without_lab(expected: dict) -> dict:
    # values only: lab's env "test" has no rate and there is no default: no row.
    return {key: cost for key, cost in expected.items() if key[0] != "lab"}


# b. hours x rate; plain (no env) and nulled (env JSON null: ->> is NULL) never pay. The day's hours are pooled
# across nodes (mover 18 + 6 = 24 h on each node's row) and namespaces (twin 24 + 24 = 48 h on each row).
HOURLY_WITH_DEFAULT = {
    ("web", "vms", "virt-0", OCT1): 24 * 0.5,  # 12.0: the prod value's rate
    ("batch", "vms", "virt-0", OCT1): 12 * 0.25,  # 3.0: the dev value's rate on a 12 h VM
    ("lab", "vms", "virt-0", OCT1): 24 * 0.1,  # 2.4: no rate for "test": the default
    ("mover", "vms", "virt-0", OCT1): 24 * 0.5,
    ("mover", "vms", "virt-1", OCT1): 24 * 0.5,
    ("twin", "team-a", "virt-0", OCT1): 48 * 0.5,
    ("twin", "team-b", "virt-0", OCT1): 48 * 0.5,
    ("late", "vms", "virt-0", OCT1): 24 * 0.5,  # Oct 3 is outside the range
    ("unsummarised-last", "vms", "virt-0", OCT1): 24 * 0.5,  # Oct 2 has no summary row
}
HOURLY_DEFAULT_ONLY = {  # every VM with an env value at 0.1 an hour
    ("web", "vms", "virt-0", OCT1): 24 * 0.1,
    ("batch", "vms", "virt-0", OCT1): 12 * 0.1,
    ("lab", "vms", "virt-0", OCT1): 24 * 0.1,
    ("mover", "vms", "virt-0", OCT1): 24 * 0.1,
    ("mover", "vms", "virt-1", OCT1): 24 * 0.1,
    ("twin", "team-a", "virt-0", OCT1): 48 * 0.1,
    ("twin", "team-b", "virt-0", OCT1): 48 * 0.1,
    ("late", "vms", "virt-0", OCT1): 24 * 0.1,
    ("unsummarised-last", "vms", "virt-0", OCT1): 24 * 0.1,
}
# d. max(cores) x rate x max(hours of one core value), one row per (namespace, labels) on the VM's latest node.
# mover (8.9.3): 18 h at 2 cores, 6 h at 4 cores -> 4 x 18 = 72 core-hours (it used 36 + 24 = 60), on virt-1.
# late (C-3): last seen Oct 3 on virt-2. unsummarised-last: last seen Oct 2 (no summary row): still charged.
CORE_WITH_DEFAULT = {
    ("web", "vms", "virt-0", OCT1): 2 * 0.5 * 24,  # 24.0
    ("batch", "vms", "virt-0", OCT1): 4 * 0.25 * 12,  # 12.0
    ("lab", "vms", "virt-0", OCT1): 1 * 0.1 * 24,  # 2.4
    ("mover", "vms", "virt-1", OCT1): 4 * 0.5 * 18,  # 36.0
    ("twin", "team-a", "virt-0", OCT1): 1 * 0.5 * 48,  # 24.0: one core value, 2 x 86400 s pooled
    ("twin", "team-b", "virt-0", OCT1): 1 * 0.5 * 48,
    ("late", "vms", "virt-2", OCT1): 3 * 0.5 * 24,  # 36.0
    ("unsummarised-last", "vms", "virt-0", OCT1): 1 * 0.5 * 24,  # 12.0
}
CORE_DEFAULT_ONLY = {
    ("web", "vms", "virt-0", OCT1): 2 * 0.1 * 24,
    ("batch", "vms", "virt-0", OCT1): 4 * 0.1 * 12,
    ("lab", "vms", "virt-0", OCT1): 1 * 0.1 * 24,
    ("mover", "vms", "virt-1", OCT1): 4 * 0.1 * 18,
    ("twin", "team-a", "virt-0", OCT1): 1 * 0.1 * 48,
    ("twin", "team-b", "virt-0", OCT1): 1 * 0.1 * 48,
    ("late", "vms", "virt-2", OCT1): 3 * 0.1 * 24,
    ("unsummarised-last", "vms", "virt-0", OCT1): 1 * 0.1 * 24,
}
# f. max(cores of the day's daily rows) x monthly rate / 31: a full day's share for any presence (8.9.4: batch's
# 12 h pay a whole day), on the VM's latest node.
MONTHLY_WITH_DEFAULT = {
    ("web", "vms", "virt-0", OCT1): 2 * 31 / 31,  # 2.0
    ("batch", "vms", "virt-0", OCT1): 4 * 62 / 31,  # 8.0
    ("lab", "vms", "virt-0", OCT1): 1 * 15.5 / 31,  # 0.5
    ("mover", "vms", "virt-1", OCT1): 4 * 31 / 31,  # 4.0: the larger of its two daily rows' cores
    ("twin", "team-a", "virt-0", OCT1): 1 * 31 / 31,  # cores are not summed across namespaces: max
    ("twin", "team-b", "virt-0", OCT1): 1 * 31 / 31,
    ("late", "vms", "virt-2", OCT1): 3 * 31 / 31,
    ("unsummarised-last", "vms", "virt-0", OCT1): 1 * 31 / 31,
}
MONTHLY_DEFAULT_ONLY = {
    ("web", "vms", "virt-0", OCT1): 2 * 0.5,
    ("batch", "vms", "virt-0", OCT1): 4 * 0.5,
    ("lab", "vms", "virt-0", OCT1): 1 * 0.5,
    ("mover", "vms", "virt-1", OCT1): 4 * 0.5,
    ("twin", "team-a", "virt-0", OCT1): 1 * 0.5,
    ("twin", "team-b", "virt-0", OCT1): 1 * 0.5,
    ("late", "vms", "virt-2", OCT1): 3 * 0.5,
    ("unsummarised-last", "vms", "virt-0", OCT1): 1 * 0.5,
}
EXPECTED = [
    (file, shape, costs)
    for file, with_default, default_only in (
        (HOURLY_FILE, HOURLY_WITH_DEFAULT, HOURLY_DEFAULT_ONLY),
        (CORE_FILE, CORE_WITH_DEFAULT, CORE_DEFAULT_ONLY),
        (MONTHLY_FILE, MONTHLY_WITH_DEFAULT, MONTHLY_DEFAULT_ONLY),
    )
    for shape, costs in (
        ("values", _without_lab(with_default)),
        ("values+default", with_default),
        ("default", default_only),
    )
]


@pytest.mark.parametrize(("file", "shape", "expected"), EXPECTED, ids=[f"{f}-{s}" for f, s, _ in EXPECTED])
def test_tag_costs(tmp_path, month, file, shape, expected):
    # C-1..C-4 for each file and tag-rate shape: the value's rate, else the default; without a default a value
    # without a rate gives no row.
    _assert_costs(run_ours(tmp_path, *month, file, _params(file, shape)), expected)


@pytest.mark.parametrize("file", [HOURLY_FILE, CORE_FILE, MONTHLY_FILE])
def test_tag_rows_columns(tmp_path, month, file):
    rows = run_ours(tmp_path, *month, file, _params(file, "values+default", rate_type="Supplementary"))
    late = next(r for r in rows if json.loads(r["pod_labels"])["vm_kubevirt_io_name"] == "late")
    assert late["cost_model_rate_type"] == "Supplementary" and late["monthly_cost_type"] == "Tag"
    assert late["report_period_id"] == 1 and late["data_source"] == "Pod" and late["source_uuid"] == SOURCE
    # The rows' own labels, not the last day's (Oct 3's env dev, x y), in both columns (unlike hourly_vm_core).
    assert (
        json.loads(late["pod_labels"])
        == json.loads(late["all_labels"])
        == {"vm_kubevirt_io_name": "late", "env": "prod"}
    )
    if file == HOURLY_FILE:  # the summary row's node and resource_id
        assert (late["node"], late["resource_id"]) == ("virt-0", "id-virt-0")
    else:  # the VM's node and resource_id at its last hour of the month (C-3), Oct 3 on virt-2
        assert (late["node"], late["resource_id"]) == ("virt-2", "id-virt-2")


def test_hourly_vm_core_tag_reads_rows_with_a_monthly_cost_type(tmp_path, month):
    vms, summary = month
    # koku's hourly_vm_core_tag_based alone lacks "monthly_cost_type IS NULL" (8.4): a Pod row with usage, a monthly
    # cost type and no accrued rate type is a group of its own, charged web's full day 2 x 0.5 x 24 = 24.0.
    labels = {"env": "prod", "kind": "monthly"}
    summary.append(vm_summary_row(OCT1, vm="web", source=SOURCE, labels=labels, monthly_cost_type="OCP_VM_CORE"))
    core = run_ours(tmp_path, vms, summary, CORE_FILE, _params(CORE_FILE, "values"))
    monthly_row = [r for r in core if json.loads(r["pod_labels"]).get("kind") == "monthly"]
    assert [r["cost_model_cpu_cost"] for r in monthly_row] == [pytest.approx(24.0)]
    for file in (HOURLY_FILE, MONTHLY_FILE):
        rows = run_ours(tmp_path, vms, summary, file, _params(file, "values"))
        assert not [r for r in rows if json.loads(r["pod_labels"]).get("kind") == "monthly"]


def test_monthly_tag_rate_is_rounded_to_15_decimals_then_divided(tmp_path, month):
    # CAST(0.1234567890123456789 AS DECIMAL(33,15)) = 0.123456789012346; web's 2 cores x that / 31.
    params = _params(MONTHLY_FILE, "values", value_rates={"prod": "0.1234567890123456789"})
    costs = _costs(run_ours(tmp_path, *month, MONTHLY_FILE, params))
    expected = float(2 * Decimal("0.123456789012346") / 31)
    assert costs[("web", "vms", "virt-0", OCT1)] == pytest.approx(expected, rel=1e-15)


def _inputs(tmp_path, vms, summary, file, raw_params):
    vms.write()
    params = parse_params(file, {**raw_params, "schema": "unused"})
    root = open_data_root(str(tmp_path))
    raw = inputs.read_vm_usage(root, ACCOUNT, SOURCE, "2026", "10", daily=False).table
    daily = inputs.read_vm_usage(root, ACCOUNT, SOURCE, "2026", "10", daily=True).table
    with KokuCostDatabase() as db:
        db.insert_summary_rows(summary)
        return params, raw, daily, inputs.read_summary_vm_rows(db.conn, db.schema, report_period_id=1)


def test_monthly_tag_vm_without_raw_rows_has_no_node(tmp_path, month):
    # f reads its cores from the daily rows and the latest facts from the raw rows with a LEFT JOIN: a VM whose raw
    # rows are missing still pays (web: 2 x 31 / 31 = 2.0), with NULL node and resource_id.
    params, raw, daily, summary = _inputs(tmp_path, *month, MONTHLY_FILE, _params(MONTHLY_FILE, "values"))
    without_web = raw.filter(pc.not_equal(raw["vm_name"], "web"))
    rows = vm.monthly_vm_core_tag_based(params, without_web, daily, summary).to_pylist()
    web = [r for r in rows if json.loads(r["pod_labels"])["vm_kubevirt_io_name"] == "web"]
    assert [(r["node"], r["resource_id"], r["cost_model_cpu_cost"]) for r in web] == [(None, None, pytest.approx(2.0))]


@pytest.mark.parametrize("file", [HOURLY_FILE, CORE_FILE, MONTHLY_FILE])
def test_tag_call_without_rates_is_a_configuration_error(file):
    params = parse_params(file, {**BASE, "schema": "org1", "rate_type": "Infrastructure", **EXTRA[file]})
    columns = [pa.field(c.name, c.type) for c in inputs.VM_COLUMNS] + [pa.field("usage_start", pa.date32())]
    vm_rows, summary = pa.schema(columns).empty_table(), inputs.SUMMARY_SCHEMA.empty_table()
    function = getattr(vm, file.removesuffix(".sql"))
    with pytest.raises(ConfigurationError, match="default_rate or value_rates"):
        function(params, vm_rows, vm_rows, summary) if file == MONTHLY_FILE else function(params, vm_rows, summary)


def test_hourly_tag_without_fractional_hours_is_refused():
    params = parse_params(
        HOURLY_FILE, {**_params(HOURLY_FILE, "default"), "schema": "o", "use_fractional_hours": False}
    )
    columns = [pa.field(c.name, c.type) for c in inputs.VM_COLUMNS] + [pa.field("usage_start", pa.date32())]
    with pytest.raises(ConfigurationError, match="use_fractional_hours"):
        vm.hourly_cost_vm_tag_based(params, pa.schema(columns).empty_table(), inputs.SUMMARY_SCHEMA.empty_table())


def test_bad_daily_vm_cell_names_file_column_and_row(tmp_path):
    schema = daily_schema(VM)
    row = dict.fromkeys(schema.names)
    row.update(interval_start=dt.datetime(2026, 10, 1), vm_name="v", vm_cpu_request_cores=2.0)
    folder = tmp_path / month_prefix(ACCOUNT, VM_USAGE, SOURCE, 2026, 10, daily=True)
    folder.mkdir(parents=True)
    pq.write_table(
        pa.Table.from_pylist([row, {**row, "vm_cpu_request_cores": -2.0}], schema=schema), folder / "d.parquet"
    )
    with pytest.raises(InputDataError) as caught:
        inputs.read_vm_usage(open_data_root(str(tmp_path)), ACCOUNT, SOURCE, "2026", "10", daily=True)
    assert caught.value.file.endswith("/d.parquet") and caught.value.column == "vm_cpu_request_cores"
    assert caught.value.row == 2
