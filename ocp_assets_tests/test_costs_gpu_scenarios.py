"""Hand-derived GPU cost rows (contract 8.6, 8.8, 8.9 items 7-11, 8.11's A100 number; C-7, C-8, C-9), when the
distribution runs, koku's float8 text and numeric storage, and bad GPU input named by file, column and row."""

import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa
import pytest

from ocp_assets.core.costs import gpu, inputs
from ocp_assets.core.costs.params import parse_params
from ocp_assets.core.errors import ConfigurationError, InputDataError
from ocp_assets.core.layout import GPU, GPU_USAGE, NODE_LABEL, NODE_LABELS, daily_schema, raw_schema
from ocp_assets.core.storage import open_data_root
from ocp_assets_tests.reference.gpu_cost_fixtures import (
    ACCOUNT,
    GpuParquet,
    nvidia_labels,
    unallocated_row,
    unallocated_table,
    write_month,
)

SOURCE = "6f0c5b3e-8a0e-4a8c-9a53-2a9f1c0d7e11"
OCT1, OCT2 = dt.date(2026, 10, 1), dt.date(2026, 10, 2)  # October: 31 days
DAY = range(24)
A100 = "A100 SXM4 80GB"
GPU_CALL = {
    "start_date": "2026-10-01",
    "end_date": "2026-10-31",
    "year": "2026",
    "month": "10",
    "schema": "acct1",
    "source_uuid": SOURCE,
    "report_period_id": 7,
    "rate_type": "Infrastructure",
    "tag_key": "nvidia",
    "amortized_denominator": 31,
    "cluster_id": "cluster-a",
    "cluster_alias": "Cluster A",
}
VALUE_RATES = {"H100": 3100, A100: 1000}  # per month: 100 and 1000/31 per GPU-day
MIG_3G = ("3g.40gb", 3, 7, 40960)
MIG_1G = ("1g.10gb", 1, 7, 10240)


def _gpu_rows(tmp_path, parquet: GpuParquet, categories=(), **extra) -> list[dict]:
    parquet.write()
    params = parse_params("monthly_cost_gpu.sql", {**GPU_CALL, **extra})
    root = open_data_root(str(tmp_path))
    daily = inputs.read_gpu_usage_daily(root, ACCOUNT, SOURCE, "2026", "10").table
    labels = inputs.read_node_labels_raw(root, ACCOUNT, SOURCE, "2026", "10").table
    return gpu.monthly_cost_gpu(params, daily, labels, list(categories)).to_pylist()


def _allocated(rows):
    return {r["resource_id"]: r for r in rows if r["namespace"] != gpu.UNALLOCATED_NAMESPACE}


def _unallocated(rows):
    return [r for r in rows if r["namespace"] == gpu.UNALLOCATED_NAMESPACE]


def _by_model(rows):
    return {json.loads(r["all_labels"])["gpu-model"]: r for r in _unallocated(rows)}


@pytest.fixture
def gpus(tmp_path):
    """C-7's GPUs on Oct 1: a dedicated H100 all day, an A100 MIG 3g slice (mixed) half the day, an A100 MIG 1g
    slice (single) all day, a T4 whose MIG fields koku cleared, and an AMD GPU (vendor != tag_key)."""
    parquet = GpuParquet(tmp_path, source=SOURCE)
    parquet.gpu_hours(OCT1, DAY, node="gpu-0", namespace="ml", pod="trainer", gpu_uuid="GPU-h100")
    parquet.gpu_hours(
        OCT1,
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
        OCT1,
        DAY,
        node="gpu-1",
        namespace="ml",
        pod="small",
        gpu_uuid="GPU-a100-s",
        model=A100,
        mig=MIG_1G,
        mig_strategy="single",
        mig_instance_id="MIG-1g",
    )
    parquet.gpu_hours(
        OCT1,
        DAY,
        node="gpu-0",
        namespace="ml",
        pod="legacy",
        gpu_uuid="GPU-t4",
        model="Tesla T4",
        memory_mib=15360.0,
        cleared=True,
    )
    parquet.gpu_hours(OCT1, DAY, node="gpu-0", namespace="ml", pod="amd", gpu_uuid="GPU-amd", vendor="amd")
    return parquet


# ------------------------------------------------------------------------------------------------ C-7 allocated
def test_allocated_rows_price_each_gpu_day_by_its_slice_share(tmp_path, gpus):
    rows = _allocated(_gpu_rows(tmp_path, gpus, value_rates=VALUE_RATES))
    assert set(rows) == {"GPU-h100", "GPU-a100", "GPU-a100-s", "GPU-t4"}  # the AMD GPU is another vendor: no row
    # dedicated: 3100 / 31 days x 86400 s / 86400 x 1 = 100
    assert rows["GPU-h100"]["cost_model_gpu_cost"] == pytest.approx(100.0, rel=1e-12)
    # MIG 3 of 7 slices, 12 h: 1000 / 31 x 0.5 x 3 / 7
    assert rows["GPU-a100"]["cost_model_gpu_cost"] == pytest.approx(1000 / 31 * 0.5 * 3 / 7, rel=1e-12)
    # MIG 1 of 7 under the single strategy: the same formula, 1000 / 31 x 1 / 7
    assert rows["GPU-a100-s"]["cost_model_gpu_cost"] == pytest.approx(1000 / 31 / 7, rel=1e-12)
    # 8.9.7: a model without a value rate and no default costs 0 (not NULL) on an allocated row
    assert rows["GPU-t4"]["cost_model_gpu_cost"] == 0.0
    for row in rows.values():
        assert row["data_source"] == "GPU" and row["monthly_cost_type"] == "Tag"
        assert row["usage_start"] == row["usage_end"] == OCT1
        assert (row["cluster_id"], row["cluster_alias"], row["report_period_id"]) == ("cluster-a", "Cluster A", 7)
        assert (row["source_uuid"], row["cost_model_rate_type"]) == (SOURCE, "Infrastructure")


def test_a_default_rate_prices_the_unrated_model_and_stands_alone(tmp_path, gpus):
    with_default = _allocated(_gpu_rows(tmp_path, gpus, value_rates=VALUE_RATES, default_rate=310))
    assert with_default["GPU-t4"]["cost_model_gpu_cost"] == pytest.approx(310 / 31, rel=1e-12)  # 10 per GPU-day
    assert with_default["GPU-h100"]["cost_model_gpu_cost"] == pytest.approx(100.0, rel=1e-12)
    default_only = _allocated(_gpu_rows(tmp_path, gpus, default_rate=620))
    # every model at 620 / 31 = 20 per GPU-day, the MIG row at 20 x 0.5 x 3/7
    assert default_only["GPU-h100"]["cost_model_gpu_cost"] == pytest.approx(20.0, rel=1e-12)
    assert default_only["GPU-a100"]["cost_model_gpu_cost"] == pytest.approx(20 * 0.5 * 3 / 7, rel=1e-12)


def test_the_rate_is_rounded_to_nine_decimals_before_the_division(tmp_path, gpus):
    # CAST(rate AS decimal(24,9)): 31.0000000004 becomes 31.000000000, so 1 per GPU-day exactly
    rows = _allocated(_gpu_rows(tmp_path, gpus, default_rate="31.0000000004"))
    assert rows["GPU-h100"]["cost_model_gpu_cost"] == 1.0


def test_a_rate_beyond_kokus_decimal_24_9_cast_is_refused(tmp_path, gpus):
    with pytest.raises(ConfigurationError, match="decimal"):
        _gpu_rows(tmp_path, gpus, default_rate="1e15")


def test_allocated_labels_describe_the_gpu_and_its_mig_slice(tmp_path, gpus):
    rows = _allocated(_gpu_rows(tmp_path, gpus, value_rates=VALUE_RATES))
    assert json.loads(rows["GPU-a100"]["all_labels"]) == {
        "gpu-model": A100,
        "gpu-vendor": "nvidia",
        "gpu-memory-mib": "81920",  # float8 text: no ".0"
        "mig-profile": "3g.40gb",
        "mig-slice-count": "3",
        "gpu-max-slices": "7",
        "mig-strategy": "mixed",
        "mig-memory-mib": "40960",
        "gpu-mode": "MIG",
        "gpu-uuid": "GPU-a100",
        "mig-instance-id": "MIG-3g",
    }
    dedicated = json.loads(rows["GPU-h100"]["all_labels"])
    assert (dedicated["gpu-mode"], dedicated["mig-profile"], dedicated["mig-slice-count"]) == ("dedicated", "", None)
    cleared = json.loads(rows["GPU-t4"]["all_labels"])
    assert (cleared["gpu-mode"], cleared["mig-profile"], cleared["mig-instance-id"]) == ("dedicated", None, None)


def test_every_daily_row_is_a_row_and_gets_the_largest_matching_cost_category(tmp_path):
    parquet = GpuParquet(tmp_path, source=SOURCE)
    for pod in ("p1", "p2"):  # two pods on one GPU: two daily rows, two cost rows (koku does not aggregate)
        parquet.gpu_hours(OCT1, range(6), node="gpu-0", namespace="openshift-gpu-ops", pod=pod, gpu_uuid="GPU-x")
    parquet.gpu_hours(OCT1, range(6), node="gpu-0", namespace="ml", pod="p3", gpu_uuid="GPU-y")
    categories = [("openshift-%", 1), ("openshift-gpu%", 3), ("kube-%", 2)]
    rows = _gpu_rows(tmp_path, parquet, categories, default_rate=3100)
    ops = [r for r in rows if r["namespace"] == "openshift-gpu-ops"]
    # C5: two patterns match, one row each with max(1, 3) = 3 (koku writes each row twice); 6 h = 100 x 6/24 = 25
    assert [r["cost_category_id"] for r in ops] == [3, 3]
    assert [r["cost_model_gpu_cost"] for r in ops] == pytest.approx([25.0, 25.0], rel=1e-12)
    assert [r["cost_category_id"] for r in rows if r["namespace"] == "ml"] == [None]


def test_rows_outside_the_range_are_not_charged(tmp_path, gpus):
    gpus.gpu_hours(OCT2, DAY, node="gpu-0", namespace="ml", pod="trainer", gpu_uuid="GPU-h100-oct2")
    rows = _allocated(_gpu_rows(tmp_path, gpus, value_rates=VALUE_RATES, end_date="2026-10-01"))
    assert "GPU-h100-oct2" not in rows and "GPU-h100" in rows


# ------------------------------------------------------------------------------------------------ C-8 unallocated
def test_only_nodes_labelled_present_True_get_unallocated_rows(tmp_path):
    parquet = GpuParquet(tmp_path, source=SOURCE)
    for node, present in (("gpu-a", "True"), ("gpu-b", "true")):
        parquet.gpu_hours(OCT1, DAY, node=node, namespace="ml", pod=f"p-{node}", gpu_uuid=f"GPU-{node}")
        parquet.node_label_hours(OCT1, DAY, node=node, labels=nvidia_labels(count="4", present=present))
    rows = _unallocated(_gpu_rows(tmp_path, parquet, value_rates=VALUE_RATES))
    assert [r["node"] for r in rows] == ["gpu-a"]  # "true" does not match koku's case-sensitive text filter
    # u = 24 h x 4 GPUs x 1 slice - 24 used = 72 slice-hours; 3100 / (31 x 24 x 1) x 72 = 300
    assert rows[0]["cost_model_gpu_cost"] == pytest.approx(300.0, rel=1e-12)
    assert json.loads(rows[0]["all_labels"]) == {"gpu-model": "H100", "max-slices-per-gpu": "1"}
    assert (rows[0]["resource_id"], rows[0]["cost_category_id"], rows[0]["monthly_cost_type"]) == (None, None, "Tag")
    assert (rows[0]["data_source"], rows[0]["usage_end"], rows[0]["cluster_id"]) == ("GPU", OCT1, "cluster-a")


def test_an_idle_gpu_node_gets_a_null_cost_row_only_with_the_single_strategy(tmp_path):
    parquet = GpuParquet(tmp_path, source=SOURCE)
    for node, strategy in (
        ("idle-none", None),
        ("idle-mixed", "mixed"),
        ("idle-single", " Single "),
        ("idle-other", "none"),
    ):
        parquet.node_label_hours(OCT1, DAY, node=node, labels=nvidia_labels(count="2", strategy=strategy))
    rows = _unallocated(_gpu_rows(tmp_path, parquet, value_rates={"NVIDIA A100 SXM4 80GB": 1000}, default_rate=10))
    # 8.9.8: no GPU rows, so max slices is NULL: NULL/mixed -> u NULL (no row); single -> u = 24 x 2 = 48 > 0 but
    # the cost divides by the NULL max slices; another strategy -> u = 0 (no row)
    assert [r["node"] for r in rows] == ["idle-single"]
    assert rows[0]["cost_model_gpu_cost"] is None
    # the model is the product label with each run of non-alphanumerics made a space
    assert json.loads(rows[0]["all_labels"]) == {"gpu-model": "NVIDIA A100 SXM4 80GB", "max-slices-per-gpu": None}


def test_two_models_on_one_node_share_its_one_gpu_count(tmp_path):
    parquet = GpuParquet(tmp_path, source=SOURCE)
    parquet.gpu_hours(OCT1, DAY, node="gpu-0", namespace="ml", pod="trainer", gpu_uuid="GPU-h100")
    parquet.gpu_hours(
        OCT1,
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
    parquet.node_label_hours(OCT1, DAY, node="gpu-0", labels=nvidia_labels(count="4", strategy="mixed"))
    by_model = _by_model(_gpu_rows(tmp_path, parquet, value_rates=VALUE_RATES))
    # 8.9.9: each model counts all 4 GPUs. H100: 24 x 4 x 1 - 24 = 72 -> 3100 / 744 x 72 = 300
    assert by_model["H100"]["cost_model_gpu_cost"] == pytest.approx(300.0, rel=1e-12)
    # A100: 24 x 4 x 7 - 12 h x 3 slices = 636 slice-hours -> 1000 / (31 x 24 x 7) x 636
    assert by_model[A100]["cost_model_gpu_cost"] == pytest.approx(1000 / (31 * 24 * 7) * 636, rel=1e-12)
    assert json.loads(by_model[A100]["all_labels"])["max-slices-per-gpu"] == "7"


def test_a_model_without_rate_costs_zero_allocated_and_null_unallocated(tmp_path):
    parquet = GpuParquet(tmp_path, source=SOURCE)
    parquet.gpu_hours(OCT1, DAY, node="gpu-0", namespace="ml", pod="t4", gpu_uuid="GPU-t4", model="Tesla T4")
    parquet.node_label_hours(OCT1, DAY, node="gpu-0", labels=nvidia_labels(count="2"))
    rows = _gpu_rows(tmp_path, parquet, value_rates=VALUE_RATES)
    # 8.9.7: value rates without T4 and no default: the allocated CASE ends in ELSE 0, the unallocated one has no
    # ELSE (u = 24 x 2 - 24 = 24 > 0, so the row is written, with a NULL cost)
    assert [r["cost_model_gpu_cost"] for r in _allocated(rows).values()] == [0.0]
    assert [r["cost_model_gpu_cost"] for r in _unallocated(rows)] == [None]


def test_node_labels_that_change_within_a_day_give_a_row_per_label_set(tmp_path):
    parquet = GpuParquet(tmp_path, source=SOURCE)
    parquet.gpu_hours(OCT1, DAY, node="gpu-0", namespace="ml", pod="trainer", gpu_uuid="GPU-h100")
    parquet.node_label_hours(OCT1, range(12), node="gpu-0", labels=nvidia_labels(count="4", driver="550"))
    parquet.node_label_hours(OCT1, range(12, 24), node="gpu-0", labels=nvidia_labels(count="4", driver="560"))
    rows = _unallocated(_gpu_rows(tmp_path, parquet, value_rates=VALUE_RATES))
    # 8.9.10: each set has 12 hours and subtracts the whole day's use: 12 x 4 - 24 = 24 -> 3100 / 744 x 24 = 100
    # each (one set for the whole day would give 24 x 4 - 24 = 72 -> 300)
    assert [r["cost_model_gpu_cost"] for r in rows] == pytest.approx([100.0, 100.0], rel=1e-12)


def test_the_a100_node_of_the_worked_numbers(tmp_path):
    """8.11: 8 dedicated A100s, 7 used (5 all day, 2 half the day): u = 24 x 8 - (96 + 24 + 24) = 48 slice-hours,
    Infrastructure 1000 per month -> 1000 / (31 x 24) x 48 = 64.516129032258... per day, stored 64.516129032258100."""
    parquet = GpuParquet(tmp_path, source=SOURCE)
    model = "NVIDIA A100 SXM4 80GB"
    for index in range(4):  # one pod on 4 GPUs all day: 96 GPU-hours
        parquet.gpu_hours(OCT1, DAY, node="a100", namespace="train", pod="big", gpu_uuid=f"GPU-{index}", model=model)
    parquet.gpu_hours(OCT1, DAY, node="a100", namespace="train", pod="one", gpu_uuid="GPU-4", model=model)  # 24
    for index in (5, 6):  # 2 GPUs half the day: 24
        parquet.gpu_hours(
            OCT1, range(12), node="a100", namespace="eval", pod="half", gpu_uuid=f"GPU-{index}", model=model
        )
    parquet.node_label_hours(OCT1, DAY, node="a100", labels=nvidia_labels(count="8", product=model))
    [row] = _unallocated(_gpu_rows(tmp_path, parquet, value_rates={model: 1000}))
    assert row["cost_model_gpu_cost"] == pytest.approx(64.516129032258, rel=1e-12)
    assert gpu.float8_to_numeric(row["cost_model_gpu_cost"]) == Decimal("64.516129032258100")


def test_a_call_without_any_rate_writes_zero_costs(tmp_path):
    parquet = GpuParquet(tmp_path, source=SOURCE)
    parquet.gpu_hours(OCT1, DAY, node="gpu-0", namespace="ml", pod="trainer", gpu_uuid="GPU-h100")
    parquet.node_label_hours(OCT1, DAY, node="gpu-0", labels=nvidia_labels(count="2"))
    parquet.node_label_hours(OCT1, DAY, node="idle", labels=nvidia_labels(count="2", strategy="single"))
    rows = _gpu_rows(tmp_path, parquet)
    # the template's last branch writes the literal 0 for every row, the idle single node's included
    assert sorted((r["node"], r["cost_model_gpu_cost"]) for r in rows) == [
        ("gpu-0", 0.0),
        ("gpu-0", 0.0),
        ("idle", 0.0),
    ]


def test_a_nan_uptime_is_null_as_kokus_loader_stores_it(tmp_path):
    parquet = GpuParquet(tmp_path, source=SOURCE)
    parquet.gpu_hours(OCT1, [0], node="gpu-0", namespace="ml", pod="trainer", gpu_uuid="GPU-h100", seconds=float("nan"))
    [row] = _gpu_rows(tmp_path, parquet, value_rates=VALUE_RATES)
    assert row["cost_model_gpu_cost"] is None


# ------------------------------------------------------------------------------------------------ C-9 distribution
def _distribute(gpu_rows: GpuParquet, tmp_path, unallocated: list[dict]) -> list[dict]:
    gpu_rows.write()
    run = gpu.GpuDistributionRun(OCT1, dt.date(2026, 10, 31), True)
    params = parse_params("distribute_unallocated_gpu_cost.sql", run.koku_params("acct1", SOURCE, 7))
    daily = inputs.read_gpu_usage_daily(open_data_root(str(tmp_path)), ACCOUNT, SOURCE, "2026", "10").table
    return gpu.distribute_unallocated_gpu_cost(params, daily, unallocated_table(unallocated)).to_pylist()


@pytest.fixture
def shared_h100(tmp_path):
    """One H100 on gpu-a used by ns-a all day (86400 s) and ns-b half the day (43200 s) on Oct 1."""
    parquet = GpuParquet(tmp_path, source=SOURCE)
    parquet.gpu_hours(OCT1, DAY, node="gpu-a", namespace="ns-a", pod="a", gpu_uuid="GPU-1")
    parquet.gpu_hours(OCT1, range(12), node="gpu-a", namespace="ns-b", pod="b", gpu_uuid="GPU-2")
    return parquet


def _costs(rows):
    costs = [None if r["distributed_cost"] is None else float(r["distributed_cost"]) for r in rows]
    return sorted(zip([r["namespace"] for r in rows], costs), key=lambda pair: (pair[0], pair[1] or 0.0))


def test_one_cost_type_is_shared_by_slice_hours_and_negated(tmp_path, shared_h100):
    rows = _distribute(shared_h100, tmp_path, [unallocated_row(OCT1, "gpu-a", "H100", Decimal("300"), source=SOURCE)])
    # shares 86400 : 43200 -> 2/3 and 1/3 of 300; the unallocated row is taken back: the day sums to 0
    assert _costs(rows) == [("GPU unallocated", -300.0), ("ns-a", 200.0), ("ns-b", 100.0)]
    for row in rows:
        assert (row["data_source"], row["cost_model_rate_type"], row["node"]) == ("GPU", "gpu_distributed", "gpu-a")
        assert (row["report_period_id"], row["cluster_id"], row["usage_end"]) == (1, "cluster-a", OCT1)


def test_two_cost_types_send_the_larger_share_and_negate_both(tmp_path, shared_h100):
    unallocated = [
        unallocated_row(OCT1, "gpu-a", "H100", Decimal("300"), source=SOURCE),
        unallocated_row(OCT1, "gpu-a", "H100", Decimal("150"), source=SOURCE, rate_type="Supplementary"),
        unallocated_row(OCT1, "gpu-a", "H100", None, source=SOURCE, rate_type="Supplementary"),
    ]
    rows = _distribute(shared_h100, tmp_path, unallocated)
    # 8.9.11: ns-a gets max(200, 100), ns-b max(100, 50); both costs negated, the NULL one as NULL: the day sums to
    # 300 - 450 = -150, not 0
    assert _costs(rows) == [
        ("GPU unallocated", -300.0),
        ("GPU unallocated", -150.0),
        ("GPU unallocated", None),
        ("ns-a", 200.0),
        ("ns-b", 100.0),
    ]


def test_a_namespace_on_two_models_of_a_node_gets_the_larger_share_not_both(tmp_path):
    parquet = GpuParquet(tmp_path, source=SOURCE)
    parquet.gpu_hours(OCT1, DAY, node="gpu-a", namespace="ns-a", pod="a", gpu_uuid="GPU-1")
    parquet.gpu_hours(OCT1, DAY, node="gpu-a", namespace="ns-a", pod="b", gpu_uuid="GPU-2", model=A100)
    unallocated = [
        unallocated_row(OCT1, "gpu-a", "H100", Decimal("300"), source=SOURCE),
        unallocated_row(OCT1, "gpu-a", A100, Decimal("120"), source=SOURCE),
    ]
    # koku groups the shares by (day, node, namespace) only, so the max runs over the models: 300, not 420
    assert _costs(_distribute(parquet, tmp_path, unallocated)) == [
        ("GPU unallocated", -300.0),
        ("GPU unallocated", -120.0),
        ("ns-a", 300.0),
    ]


def test_unallocated_rows_without_usage_or_outside_the_source_are_kept(tmp_path, shared_h100):
    unallocated = [
        unallocated_row(OCT1, "idle", "H100", Decimal("50"), source=SOURCE),  # no GPU usage on that node
        unallocated_row(OCT2, "gpu-a", "H100", Decimal("50"), source=SOURCE),  # no usage that day
        unallocated_row(OCT1, "gpu-a", "H100", Decimal("50"), source="1b7e2c4d-0000-4000-8000-00000000beef"),
        unallocated_row(dt.date(2026, 11, 1), "gpu-a", "H100", Decimal("50"), source=SOURCE),  # after the month
    ]
    assert _distribute(shared_h100, tmp_path, unallocated) == []


def test_a_share_is_stored_with_kokus_fifteen_significant_digits(tmp_path, shared_h100):
    [_, ns_a, _] = sorted(
        _distribute(shared_h100, tmp_path, [unallocated_row(OCT1, "gpu-a", "H100", Decimal("1"), source=SOURCE)]),
        key=lambda r: r["namespace"],
    )
    # 2/3 x 1 in float8 is 0.6666666666666666; numeric(33,15) keeps %.15g of it
    assert ns_a["distributed_cost"] == Decimal("0.666666666666667")


# ------------------------------------------------------------------------------------------------ when it runs
D = dt.date
SEPTEMBER = (D(2026, 9, 1), D(2026, 9, 30))
RUN_CASES = [
    # a piece of a past month: its whole month
    ((D(2026, 9, 3), D(2026, 9, 30)), D(2026, 10, 15), False, SEPTEMBER),
    # a piece of today's month: nothing
    ((D(2026, 10, 1), D(2026, 10, 15)), D(2026, 10, 15), False, None),
    # day 2 of the month: the previous month, unless it already has gpu_distributed rows
    ((D(2026, 10, 1), D(2026, 10, 2)), D(2026, 10, 2), False, SEPTEMBER),
    ((D(2026, 10, 1), D(2026, 10, 2)), D(2026, 10, 2), True, None),
    ((D(2027, 1, 1), D(2027, 1, 2)), D(2027, 1, 2), False, (D(2026, 12, 1), D(2026, 12, 31))),
    # a past month is distributed whatever it already holds (koku deletes its rows first)
    ((D(2028, 2, 1), D(2028, 2, 10)), D(2028, 3, 2), True, (D(2028, 2, 1), D(2028, 2, 29))),
]


@pytest.mark.parametrize(("piece", "today", "distributed", "expected"), RUN_CASES)
def test_the_distribution_runs_for_complete_months_only(piece, today, distributed, expected):
    run = gpu.gpu_distribution_run(*piece, today, gpu_unallocated=True, previous_month_distributed=distributed)
    assert (None if run is None else (run.start_date, run.end_date)) == expected
    if run is not None:
        assert run.distribute


def test_with_the_setting_off_koku_only_deletes_the_month():
    run = gpu.gpu_distribution_run(
        dt.date(2026, 9, 1),
        dt.date(2026, 9, 30),
        dt.date(2026, 10, 15),
        gpu_unallocated=False,
        previous_month_distributed=False,
    )
    assert (run.start_date, run.end_date, run.distribute) == (dt.date(2026, 9, 1), dt.date(2026, 9, 30), False)
    assert run.koku_params("acct1", SOURCE, 3) == {
        "start_date": "2026-09-01",
        "end_date": "2026-09-30",
        "year": "2026",
        "month": "09",
        "schema": "acct1",
        "source_uuid": SOURCE,
        "report_period_id": 3,
        "cost_model_rate_type": "gpu_distributed",
    }


# ------------------------------------------------------------------------------------------------ koku's number text
@pytest.mark.parametrize(
    ("value", "text"),
    [
        (81920.0, "81920"),
        (0.5, "0.5"),
        (1e15, "1e+15"),
        (123456789012345.0, "123456789012345"),
        (1.5e-05, "1.5e-05"),
        (0.0001, "0.0001"),
        (-2.0, "-2"),
        (5.326801653466392e17, "5.3268016534663923e+17"),
    ],
)
def test_float8_text_is_postgresqls(value, text):
    # the last: the 16-digit string lies exactly on the rounding interval's edge, which PostgreSQL's ryu refuses
    assert gpu.float8_text(value) == text


# ------------------------------------------------------------------------------------------------ bad input
def _write_daily_gpu(tmp_path, rows: list[dict]) -> None:
    schema = daily_schema(GPU)
    table = pa.Table.from_pylist([{n: r.get(n) for n in schema.names} for r in rows], schema=schema)
    write_month(tmp_path, ACCOUNT, GPU_USAGE, SOURCE, 2026, 10, table, daily=True)


def _daily_row(**values) -> dict:
    return {"interval_start": dt.datetime(2026, 10, 1), "node": "gpu-0", "gpu_pod_uptime": 3600.0, **values}


@pytest.mark.parametrize(
    ("column", "value", "reason"),
    [
        ("gpu_max_slices", 2.5, "whole numbers"),
        ("gpu_max_slices", 0.0, "greater_than_or_equal_to(1"),
        ("mig_slice_count", -1.0, "greater_than_or_equal_to(0"),
        ("gpu_pod_uptime", -5.0, "greater_than_or_equal"),
    ],
)
def test_a_bad_gpu_cell_is_named_by_file_column_and_row(tmp_path, column, value, reason):
    _write_daily_gpu(tmp_path, [_daily_row(), _daily_row(**{column: value})])
    with pytest.raises(InputDataError) as caught:
        inputs.read_gpu_usage_daily(open_data_root(str(tmp_path)), ACCOUNT, SOURCE, "2026", "10")
    error = caught.value
    assert (error.column, error.row, error.file.endswith("part-0.parquet")) == (column, 2, True)
    assert reason in error.reason


def _write_labels(tmp_path, texts: list[str]) -> None:
    rows = [
        {"interval_start": dt.datetime(2026, 10, 1, hour), "node": "gpu-0", "node_labels": t}
        for hour, t in enumerate(texts)
    ]
    schema = raw_schema(NODE_LABEL)
    table = pa.Table.from_pylist([{n: r.get(n) for n in schema.names} for r in rows], schema=schema)
    write_month(tmp_path, ACCOUNT, NODE_LABELS, SOURCE, 2026, 10, table, daily=False)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"a": ', "JSON objects"),
        (json.dumps(nvidia_labels(count="eight", strategy="mixed")), "nvidia_com_gpu_count"),
        (json.dumps(nvidia_labels(count="1e20")), "nvidia_com_gpu_count"),
        (json.dumps(nvidia_labels(count="NaN", strategy="single")), "nvidia_com_gpu_count"),
    ],
)
def test_a_bad_node_label_cell_is_named_by_file_column_and_row(tmp_path, text, reason):
    _write_labels(tmp_path, [json.dumps(nvidia_labels()), "", text])
    with pytest.raises(InputDataError) as caught:
        inputs.read_node_labels_raw(open_data_root(str(tmp_path)), ACCOUNT, SOURCE, "2026", "10")
    assert (caught.value.column, caught.value.row) == ("node_labels", 3)
    assert reason in caught.value.reason


def test_a_gpu_count_koku_never_casts_is_accepted(tmp_path):
    # koku casts the count only for GPU-present nodes whose strategy is NULL, mixed or single
    _write_labels(
        tmp_path,
        [
            json.dumps(nvidia_labels(count="eight", strategy="none")),
            json.dumps(nvidia_labels(count="eight", present="False")),
            json.dumps(nvidia_labels(count=" 8 ")),
        ],
    )
    rows = inputs.read_node_labels_raw(open_data_root(str(tmp_path)), ACCOUNT, SOURCE, "2026", "10")
    assert rows.table.num_rows == 3


def test_gpu_daily_files_without_mig_columns_read_as_null(tmp_path):
    # an older operator sends no MIG columns; koku's table then holds NULL for them
    kept = [
        f
        for f in daily_schema(GPU)
        if f.name not in (*GPU.derived_columns, "mig_instance_id", "mig_profile", "mig_strategy")
    ]
    table = pa.Table.from_pylist([_daily_row(gpu_model_name="H100")], schema=pa.schema(kept))
    write_month(tmp_path, ACCOUNT, GPU_USAGE, SOURCE, 2026, 10, table, daily=True)
    rows = inputs.read_gpu_usage_daily(open_data_root(str(tmp_path)), ACCOUNT, SOURCE, "2026", "10").table
    assert rows["mig_slice_count"].to_pylist() == [None] and rows["mig_profile"].to_pylist() == [None]


def test_the_fixture_rolls_hourly_rows_up_per_gpu_and_day(tmp_path, gpus):
    gpus.write()
    daily = inputs.read_gpu_usage_daily(open_data_root(str(tmp_path)), ACCOUNT, SOURCE, "2026", "10").table
    by_gpu = dict(zip(daily["gpu_uuid"].to_pylist(), daily["gpu_pod_uptime"].to_pylist()))
    assert (by_gpu["GPU-a100"], by_gpu["GPU-h100"]) == (43200.0, 86400.0)  # 12 and 24 hourly rows of 3600 s
