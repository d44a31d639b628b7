"""On nise data (ocp_assets/scenarios/gpu_vm.yml) the VM cost files (tiered and tag-based) and tmp tables of ocp_assets
equal koku's SQL."""

import datetime as dt
import math
import uuid
from pathlib import Path

import pytest

from ocp_assets.core.generate import generate
from ocp_assets.core.storage import open_data_root
from ocp_assets_tests.costs_support import ACCOUNT, TAG_SHAPES, assert_same_rows, columns_of, needs_koku, ours
from ocp_assets_tests.reference import reference_summary
from ocp_assets_tests.reference.koku_cost_sql import KokuCostDatabase
from ocp_assets_tests.scenario_support import nise_cache_dir

pytestmark = [pytest.mark.slow, needs_koku]
DAY = dt.date(2026, 10, 31)  # gpu_vm.yml's one day
GPU_VM_YAML = Path(__file__).resolve().parents[1] / "ocp_assets" / "scenarios" / "gpu_vm.yml"
CALLS = [
    (
        "hourly_cost_virtual_machine.sql",
        {"rate_type": "Infrastructure", "hourly_rate": 0.25, "use_fractional_hours": True},
    ),
    ("hourly_vm_core.sql", {"rate_type": "Supplementary", "hourly_rate": 0.05}),
    (
        "monthly_vm_core.sql",
        {"rate_type": "Infrastructure", "rate": "32.25806451612903225806451613", "cost_type": "OCP_VM_CORE"},
    ),
    ("populate_vm_tmp_table_with_vm_report.sql", {"uuid": "n1"}),
    ("populate_vm_tmp_table.sql", {"uuid": "n2"}),
]
# The tag files on nise's pod label "app": the VM's launcher pod has app=db (the GPU pods' values have no VM). With
# values only db has a rate of its own; with values + default it has none and pays the default; both cost types.
MONTHLY_EXTRA = {"amortized_denominator": 31, "cost_type": "Tag"}
TAG_FILES = [
    ("hourly_cost_vm_tag_based.sql", {"use_fractional_hours": True}, 0.3, 0.07),
    ("hourly_vm_core_tag_based.sql", {}, 0.1234567890123456, 0.05),
    ("monthly_vm_core_tag_based.sql", MONTHLY_EXTRA, 46.5, 15.5),
]
TAG_CALLS = [
    pytest.param(
        file,
        {"rate_type": rate_type, "tag_key": "app", **extra, **TAG_SHAPES[shape](values, default)},
        id=f"{file}-{rate_type}-{shape}",
    )
    for file, extra, db_rate, default in TAG_FILES
    for rate_type, shape, values in (
        ("Infrastructure", "values", {"db": db_rate, "web": 0.2}),
        ("Supplementary", "values+default", {"web": 0.2}),
        ("Infrastructure", "default", {}),
    )
]


@pytest.fixture(scope="module")
def nise_month(tmp_path_factory, request):
    data = tmp_path_factory.mktemp("nise")
    source = str(uuid.uuid4())
    generate(open_data_root(str(data)), yaml_path=GPU_VM_YAML, cluster_id="cost-vm", account=ACCOUNT,
             source_uuid=source, cluster_alias="VM cluster", cache_dir=nise_cache_dir(request))  # fmt: skip
    summary = reference_summary(None, data, account=ACCOUNT, source=source, cluster_id="cost-vm",
                                cluster_alias="VM cluster", start=DAY, end=DAY, enabled_keys=["app"])  # fmt: skip
    rows = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in summary.to_dict("records")
    ]
    return data, source, rows


@pytest.mark.parametrize(("file", "extra"), [*(pytest.param(*c, id=c[0]) for c in CALLS), *TAG_CALLS])
def test_nise_vm_file_equals_koku(nise_month, file, extra):
    data, source, summary = nise_month
    params = {"start_date": "2026-10-01", "end_date": "2026-10-31", "year": "2026", "month": "10",
              "source_uuid": source, "report_period_id": 1, **extra}  # fmt: skip
    with KokuCostDatabase() as db:
        db.load_parquet(data, ACCOUNT, source, [(2026, 10)])
        db.insert_summary_rows(summary)
        expected = db.run(file, params)
        actual = ours(db, data, file, params)
    assert expected, "nise's VM must give koku rows"
    assert_same_rows(expected, actual, columns_of(file))
