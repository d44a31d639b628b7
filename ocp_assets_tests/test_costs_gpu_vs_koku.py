"""The GPU cost files of ocp_assets.core.costs (monthly_cost_gpu, distribute_unallocated_gpu_cost) equal koku's own SQL
on the same hand-made and nise data, for every rate variant and both cost types; the GPU readers of PostgreSQL."""

import datetime as dt
import math
import re
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from ocp_assets.core.costs import gpu, inputs
from ocp_assets.core.generate import generate
from ocp_assets.core.pgschema import SUMMARY_COLUMNS
from ocp_assets.core.storage import open_data_root
from ocp_assets_tests.costs_support import assert_same_rows, needs_koku
from ocp_assets_tests.reference.gpu_cost_fixtures import (
    ACCOUNT,
    GpuParquet,
    nvidia_labels,
    ours,
    relabel_nodes,
    unallocated_row,
)
from ocp_assets_tests.reference.koku_cost_sql import KokuCostDatabase
from ocp_assets_tests.scenario_support import nise_cache_dir

SOURCE = "6f0c5b3e-8a0e-4a8c-9a53-2a9f1c0d7e11"
OTHER_SOURCE = "1b7e2c4d-0000-4000-8000-00000000beef"
OCT1, OCT2, OCT3 = dt.date(2026, 10, 1), dt.date(2026, 10, 2), dt.date(2026, 10, 3)
DAY = range(24)
A100 = "A100 SXM4 80GB"
CATEGORIES = [("openshift-%", 1), ("openshift-gpu%", 3), ("kube-%", 2)]
BASE = {
    "start_date": "2026-10-01",
    "end_date": "2026-10-31",
    "year": "2026",
    "month": "10",
    "source_uuid": SOURCE,
    "report_period_id": 1,
    "tag_key": "nvidia",
    "amortized_denominator": 31,
    "cost_type": "Tag",
    "cluster_id": "cluster-a",
    "cluster_alias": "Cluster A",
}
VALUES = {"H100": 3100.0, A100: 1000.0, "A100-PCIE": 500.0}
# koku's tag parameter sets (8.2 step 3): values only, values and a default, a default only; and no rate at all.
VARIANTS = {
    "values": {"value_rates": VALUES},
    "values+default": {"value_rates": VALUES, "default_rate": 310.0},
    "default": {"default_rate": 620.0},
    "no-rate": {},
}
MIG_3G = ("3g.40gb", 3, 7, 40960)
MIG_1G = ("1g.10gb", 1, 7, 10240)
GPU_COLUMNS = list(gpu.GPU_COST_SCHEMA.names)
DISTRIBUTED_COLUMNS = list(gpu.DISTRIBUTED_SCHEMA.names)


def _gpu_usage(parquet: GpuParquet) -> None:
    """GPU rows of C-7 and C-9 over Oct 1-3 (dedicated, MIG mixed and single, MIG cleared, another vendor, a NULL
    model, a model named with dashes, a namespace matching two cost-category patterns)."""
    for day in (OCT1, OCT2, OCT3):
        parquet.gpu_hours(day, DAY, node="gpu-0", namespace="ml", pod="trainer", gpu_uuid="GPU-h100")
        parquet.gpu_hours(
            day,
            range(12),
            node="gpu-0",
            namespace="ml",
            pod="infer",
            gpu_uuid="GPU-a100",
            model=A100,
            mig=MIG_3G,
            mig_strategy="mixed",
            mig_instance_id="MIG-3g",
        )
        parquet.gpu_hours(
            day,
            range(6),
            node="gpu-0",
            namespace="openshift-gpu-ops",
            pod="ops",
            gpu_uuid="GPU-a100",
            model=A100,
            mig=MIG_1G,
            mig_strategy="mixed",
            mig_instance_id="MIG-1g",
        )
        parquet.gpu_hours(
            day,
            DAY,
            node="gpu-0",
            namespace="legacy",
            pod="t4",
            gpu_uuid="GPU-t4",
            model="Tesla T4",
            memory_mib=15360.0,
            cleared=True,
        )
        parquet.gpu_hours(day, DAY, node="gpu-0", namespace="ml", pod="amd", gpu_uuid="GPU-amd", vendor="amd")
        parquet.gpu_hours(
            day,
            DAY,
            node="gpu-1",
            namespace="ml",
            pod="small",
            gpu_uuid="GPU-a100-s",
            model=A100,
            mig=MIG_1G,
            mig_strategy="single",
            mig_instance_id="MIG-s",
        )
        parquet.gpu_hours(day, DAY, node="gpu-2", namespace="ml", pod="lower", gpu_uuid="GPU-h100-2")
        parquet.gpu_hours(
            day,
            range(8),
            node="gpu-3",
            namespace="vision",
            pod="pcie",
            gpu_uuid="GPU-pcie",
            model="A100-PCIE",
            memory_mib=40960.5,
        )
        parquet.gpu_hours(day, range(3), node="nocount", namespace="ml", pod="nc", gpu_uuid="GPU-nc")
    parquet.gpu_hours(OCT2, range(4), node="gpu-0", namespace="kube-system", pod="anon", gpu_uuid="GPU-x", model=None)


def _node_labels(parquet: GpuParquet) -> None:
    """C-8's node labels: present "True" and "true", idle nodes of every strategy, a label set changing on Oct 2,
    a GPU node without a count."""
    for day in (OCT1, OCT2, OCT3):
        parquet.node_label_hours(day, DAY, node="gpu-1", labels=nvidia_labels(count="2", strategy="single"))
        parquet.node_label_hours(day, DAY, node="gpu-2", labels=nvidia_labels(count="2", present="true"))
        parquet.node_label_hours(day, DAY, node="gpu-3", labels=nvidia_labels(count="1", strategy="mixed"))
        parquet.node_label_hours(day, DAY, node="nocount", labels=nvidia_labels(count=None))
        for node, strategy in (
            ("idle-none", None),
            ("idle-mixed", "mixed"),
            ("idle-single", " Single "),
            ("idle-other", "none"),
        ):
            parquet.node_label_hours(
                day, DAY, node=node, labels=nvidia_labels(count="2", product="Tesla-T4", strategy=strategy)
            )
        parquet.node_label_hours(day, DAY, node="cpu-0", labels={"kubernetes_io_hostname": "cpu-0"})
    gpu0 = nvidia_labels(count="4", product="NVIDIA-H100-80GB", strategy="mixed")
    parquet.node_label_hours(OCT1, DAY, node="gpu-0", labels=gpu0)
    parquet.node_label_hours(OCT2, range(10), node="gpu-0", labels=gpu0)
    parquet.node_label_hours(OCT2, range(10, 24), node="gpu-0", labels={**gpu0, "driver": "560"})
    parquet.node_label_hours(OCT3, DAY, node="gpu-0", labels=gpu0)


@pytest.fixture
def month(tmp_path):
    parquet = GpuParquet(tmp_path, account=ACCOUNT, source=SOURCE)
    _gpu_usage(parquet)
    _node_labels(parquet)
    parquet.write()
    return tmp_path


def _load(db: KokuCostDatabase, data_root, source=SOURCE) -> None:
    """The month's Parquet into koku's line-item tables, and cost-category patterns a namespace matches twice."""
    db.load_parquet(data_root, ACCOUNT, source, [(2026, 10)])
    _add_categories(db)


def _add_categories(db: KokuCostDatabase) -> None:
    for pattern, category in CATEGORIES:
        db.conn.execute(
            "INSERT INTO reporting_ocp_cost_category_namespace (namespace, cost_category_id) VALUES (%s, %s)",
            (pattern, category),
        )


def _assert_koku_writes_nothing_else(rows: list[dict], columns: list[str]) -> None:
    others = [name for name, _ in SUMMARY_COLUMNS if name not in columns and name != "uuid"]
    assert all(row[name] is None for row in rows for name in others)


def _one_row_per_category_fan_out(rows: list[dict]) -> list[dict]:
    """koku's rows with C5 applied: a namespace matching several cost-category patterns gets one copy per pattern
    from koku; the copy with the largest category is the one ocp_assets writes."""
    largest = {}
    for row in rows:
        namespace = row["namespace"] or ""
        matches = [category for p, category in CATEGORIES if re.fullmatch(p.replace("%", ".*"), namespace)]
        largest[row["namespace"]] = max(matches) if matches else None
    return [row for row in rows if row["cost_category_id"] == largest[row["namespace"]]]


def _compare_gpu_call(db, data_root, params) -> list[dict]:
    actual = ours(db.conn, db.schema, data_root, "monthly_cost_gpu.sql", params)
    expected = db.run("monthly_cost_gpu.sql", params)
    assert_same_rows(_one_row_per_category_fan_out(expected), actual, GPU_COLUMNS)
    _assert_koku_writes_nothing_else(expected, GPU_COLUMNS)
    return expected


@needs_koku
@pytest.mark.parametrize("end", ["2026-10-31", "2026-10-02"])
@pytest.mark.parametrize("variant", VARIANTS)
def test_monthly_cost_gpu_equals_koku(dsn, month, variant, end):
    params = {**BASE, **VARIANTS[variant], "rate_type": "Infrastructure", "end_date": end}
    with KokuCostDatabase(dsn) as db:
        _load(db, month)
        expected = _compare_gpu_call(db, month, params)
    assert any(r["namespace"] == gpu.UNALLOCATED_NAMESPACE for r in expected), "the month must give unallocated rows"


@needs_koku
@pytest.mark.parametrize(
    "extra",
    [
        {"rate_type": "Supplementary", **VARIANTS["values+default"]},
        {"rate_type": "Supplementary", **VARIANTS["values"], "cluster_alias": None},
        {"rate_type": "Infrastructure", "tag_key": "amd", "default_rate": 93.0},  # every NVIDIA node looks idle
        {"rate_type": "Infrastructure", "tag_key": "nvid", "default_rate": 93.0},  # CPGSQL: exact vendor only
        {"rate_type": "Infrastructure", "value_rates": {"H100": 0.1234567894, A100: 1e-10}},  # rounded to 9 decimals
    ],
    ids=["supplementary", "no-alias", "amd", "vendor-prefix", "tiny-rates"],
)
def test_monthly_cost_gpu_equals_koku_for_other_calls(dsn, month, extra):
    with KokuCostDatabase(dsn) as db:
        _load(db, month)
        _compare_gpu_call(db, month, {**BASE, **extra})


def _distribution_params(source=SOURCE) -> dict:
    run = gpu.gpu_distribution_run(
        OCT1, OCT3, dt.date(2026, 11, 20), gpu_unallocated=True, previous_month_distributed=False
    )
    return {key: value for key, value in run.koku_params("ignored", source, 1).items() if key != "schema"}


@needs_koku
@pytest.mark.parametrize(
    "calls",
    [
        [("Infrastructure", "values+default")],
        [("Infrastructure", "values+default"), ("Supplementary", "values")],  # 8.9.11, with NULL unallocated costs
        [("Infrastructure", "default"), ("Supplementary", "default")],
    ],
    ids=["one-cost-type", "two-cost-types", "two-defaults"],
)
def test_gpu_distribution_equals_koku(dsn, month, calls):
    with KokuCostDatabase(dsn) as db:
        _load(db, month)
        for rate_type, variant in calls:  # koku's own unallocated rows, as the distribution finds them
            db.run("monthly_cost_gpu.sql", {**BASE, **VARIANTS[variant], "rate_type": rate_type})
        # another source's unallocated row on the same node, model and day: not this source's to distribute
        db.insert_summary_rows([unallocated_row(OCT1, "gpu-0", "H100", 999, source=OTHER_SOURCE)])
        # a non-GPU row in the 'GPU unallocated' namespace: koku shares it (no data_source filter) but never negates it
        db.insert_summary_rows([unallocated_row(OCT2, "gpu-0", "H100", 5000, source=SOURCE, data_source="Pod")])
        params = _distribution_params()
        actual = ours(db.conn, db.schema, month, "distribute_unallocated_gpu_cost.sql", params)
        expected = db.run("distribute_unallocated_gpu_cost.sql", params)
    assert any(r["distributed_cost"] is not None and r["distributed_cost"] > 0 for r in expected)
    assert_same_rows(expected, actual, DISTRIBUTED_COLUMNS)
    _assert_koku_writes_nothing_else(expected, DISTRIBUTED_COLUMNS)


# ------------------------------------------------------------------------------------------------ readers
def test_the_unallocated_reader_takes_the_sources_gpu_unallocated_rows_of_the_range(dsn):
    with KokuCostDatabase(dsn) as db:
        db.insert_summary_rows(
            [
                unallocated_row(OCT1, "gpu-0", "H100", Decimal("1.123456789012345"), source=SOURCE),
                unallocated_row(OCT2, "gpu-0", None, None, source=SOURCE, data_source="Pod", rate_type="x"),
                unallocated_row(OCT1, "gpu-0", "H100", 5, source=OTHER_SOURCE),
                unallocated_row(dt.date(2026, 11, 1), "gpu-0", "H100", 5, source=SOURCE),
                {**unallocated_row(OCT1, "gpu-0", "H100", 5, source=SOURCE), "namespace": "ml"},
            ]
        )
        table = inputs.read_gpu_unallocated_rows(db.conn, db.schema, SOURCE, OCT1, dt.date(2026, 10, 31))
        categories_before = inputs.read_cost_categories(db.conn, db.schema)
        _add_categories(db)
        categories = inputs.read_cost_categories(db.conn, db.schema)
    rows = sorted(table.to_pylist(), key=lambda r: r["usage_start"])
    assert [(r["usage_start"], r["data_source"], r["gpu_model"], r["cost_model_gpu_cost"]) for r in rows] == [
        (OCT1, "GPU", "H100", Decimal("1.123456789012345")),
        (OCT2, "Pod", None, None),
    ]
    assert rows[0]["source_uuid"] == SOURCE and rows[0]["cluster_alias"] == "cluster-a alias"
    assert (categories_before, categories) == ([], CATEGORIES)


def test_float8_text_and_numeric_storage_match_postgresql(dsn):
    values = [81920.0, 40960.5, 1e15, 1e-5, 2 / 3, 64.51612903225806, 5.326801653466392e17, 1.7976931348623157e308]
    values += [math.pi * 10**e for e in range(-8, 25, 3)]
    with psycopg.connect(dsn) as conn:
        for value in values:
            text, stored = conn.execute(
                "SELECT %s::float8::varchar, CASE WHEN %s < 1e17 THEN %s::float8::numeric(33,15) END",
                (value, value, value),
            ).fetchone()
            assert gpu.float8_text(value) == text
            if stored is not None:
                assert gpu.float8_to_numeric(value) == stored


# ------------------------------------------------------------------------------------------------ nise
DAY_31 = dt.date(2026, 10, 31)  # gpu_vm.yml's one day
GPU_VM_YAML = Path(__file__).resolve().parents[1] / "ocp_assets" / "scenarios" / "gpu_vm.yml"


@pytest.fixture(scope="module")
def nise_gpu(tmp_path_factory, request):
    """nise's gpu_vm.yml (gpu-0: an H100, two MIG slices of an A100, a cleared T4; virt-0: no GPU)."""
    data = tmp_path_factory.mktemp("nise-gpu")
    source = str(uuid.uuid4())
    generate(
        open_data_root(str(data)),
        yaml_path=GPU_VM_YAML,
        cluster_id="cost-gpu",
        account=ACCOUNT,
        source_uuid=source,
        cluster_alias="GPU cluster",
        cache_dir=nise_cache_dir(request),
    )
    return data, source


NISE_LABELS = {
    # nise writes no NVIDIA labels (its gpu-0 carries nvidia_com_gpu_present "true"): the operator's are added
    "mixed": {"gpu-0": nvidia_labels(count="3", product="NVIDIA-H100-80GB", strategy="mixed")},
    "single": {"gpu-0": nvidia_labels(count="3", product="NVIDIA-H100-80GB", strategy="single")},
    "no-strategy+idle": {
        "gpu-0": nvidia_labels(count="3", product="NVIDIA-H100-80GB"),
        "virt-0": nvidia_labels(count="1", product="Tesla-T4", strategy="single"),
    },
}
NISE_VALUES = {"H100": 3100.0, "A100 SXM4 40GB": 1000.0}
NISE_VARIANTS = {
    "values": {"value_rates": NISE_VALUES},
    "values+default": {"value_rates": NISE_VALUES, "default_rate": 62.0},
    "default": {"default_rate": 62.0},
}


@pytest.mark.slow
@needs_koku
@pytest.mark.parametrize("labels", NISE_LABELS)
@pytest.mark.parametrize("variant", NISE_VARIANTS)
def test_nise_gpu_costs_equal_koku(dsn, nise_gpu, tmp_path, labels, variant):
    data, source = nise_gpu
    copy = tmp_path / "data"
    _copy_tree(data, copy)
    relabel_nodes(copy, ACCOUNT, source, 2026, 10, NISE_LABELS[labels])
    rates = NISE_VARIANTS[variant]
    base = {**BASE, "source_uuid": source, "cluster_id": "cost-gpu", "cluster_alias": "GPU cluster"}
    with KokuCostDatabase(dsn) as db:
        _load(db, copy, source)
        unallocated = []
        for rate_type in ("Infrastructure", "Supplementary"):
            expected = _compare_gpu_call(db, copy, {**base, **rates, "rate_type": rate_type})
            unallocated += [r for r in expected if r["namespace"] == gpu.UNALLOCATED_NAMESPACE]
        params = _distribution_params(source)
        actual = ours(db.conn, db.schema, copy, "distribute_unallocated_gpu_cost.sql", params)
        expected = db.run("distribute_unallocated_gpu_cost.sql", params)
    assert unallocated and expected, "the relabelled nise node must give unallocated and distributed rows"
    assert_same_rows(expected, actual, DISTRIBUTED_COLUMNS)


def _copy_tree(source: Path, target: Path) -> None:
    for path in source.rglob("*.parquet"):
        destination = target / path.relative_to(source)
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(path.read_bytes())
