"""monthly_project_tag_based of ocp_assets.core.costs.project equals koku's own SQL file on the same data (C9)."""

import datetime as dt
import math
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from ocp_assets.core.costs import project
from ocp_assets.core.costs.params import parse_params
from ocp_assets.core.generate import generate
from ocp_assets.core.storage import open_data_root
from ocp_assets_tests.costs_support import ACCOUNT, OTHER_SOURCE, SOURCE, assert_same_rows, canonical, needs_koku
from ocp_assets_tests.reference import reference_summary
from ocp_assets_tests.reference.koku_cost_sql import KokuCostDatabase
from ocp_assets_tests.reference.parquet_fixtures import KokuParquetBuilder
from ocp_assets_tests.scenario_support import nise_cache_dir

pytestmark = needs_koku
OCT = [dt.date(2026, 10, day) for day in range(1, 6)]
COLUMNS = list(project.PROJECT_COST_SCHEMA.names)
BASE = {
    "start_date": "2026-10-01",
    "end_date": "2026-10-03",
    "year": "2026",
    "month": "10",
    "source_uuid": SOURCE,
    "report_period_id": 1,
    "tag_key": "env",
    "amortized_denominator": 31,
    "cluster_id": "cluster-a",
    "cluster_alias": "Cluster A",
}
# 8.2 step 3's three shapes; koku passes floats, and leaves a key out rather than passing None (its templates test
# `is defined`). "5" matches a JSON number label by its text.
SHAPES = {
    "values": {"value_rates": {"prod": 310.0, "dev": 62.0, "5": 45.0}},
    "values+default": {"value_rates": {"prod": 310.0, "dev": 0.123456789}, "default_rate": 31.0},
    "default": {"default_rate": 100.0},
}
RATE_TYPES = {"Infrastructure": 1, "Supplementary": 3}  # the Supplementary call's rates are 3x


def _scaled(shape: dict, factor: int) -> dict:
    out = dict(shape)
    if "value_rates" in out:
        out["value_rates"] = {value: rate * factor for value, rate in out["value_rates"].items()}
    if "default_rate" in out:
        out["default_rate"] = out["default_rate"] * factor
    return out


def _usage(source: str, day: dt.date, namespace: str, node: str | None, data_source: str = "Pod", **extra) -> dict:
    return {"usage_start": day, "usage_end": day, "namespace": namespace, "node": node, "data_source": data_source,
            "source_uuid": source, "cluster_id": "cluster-a", "cluster_alias": "Cluster A", "report_period_id": 1,
            **extra}  # fmt: skip


def _labelled_month(tmp_path) -> list[dict]:
    """Namespace labels of every C-6 case for two sources, and the summary's usage rows; returns the usage rows."""
    ours = KokuParquetBuilder(tmp_path, account=ACCOUNT, source=SOURCE)
    theirs = KokuParquetBuilder(tmp_path, account=ACCOUNT, source=OTHER_SOURCE)
    usage = []
    for day in OCT:
        ours.namespace_labels(day, namespace="ml-training", labels={"env": "prod", "team": "ml"}, hours=range(12))
        ours.namespace_labels(day, namespace="ml-training", labels='{"team":"ml","env":"prod"}', hours=range(12, 24))
        usage += [_usage(SOURCE, day, "ml-training", n) for n in ("gpu-1", "gpu-2", "gpu-3")[: 2 + (day > OCT[0])]]
        for namespace in ("openshift-monitoring", "kube-system", "openshift", "kubernetes-dashboard"):
            ours.namespace_labels(day, namespace=namespace, labels={"env": "prod"})
            usage.append(_usage(SOURCE, day, namespace, "infra-1"))
        theirs.namespace_labels(day, namespace="ml-training", labels={"env": "prod"})
        usage.append(_usage(OTHER_SOURCE, day, "ml-training", "their-node"))
    ours.namespace_labels(OCT[0], namespace="db", labels={"env": "dev"})
    usage += [_usage(SOURCE, OCT[0], "db", "n1"), _usage(SOURCE, OCT[0], "db", "n2", "Storage")]
    usage.append(_usage(SOURCE, OCT[0], "db", None, "Storage", persistentvolumeclaim="claimless"))
    ours.namespace_labels(OCT[0], namespace="claims-only", labels={"env": "test"})
    usage.append(_usage(SOURCE, OCT[0], "claims-only", None, "Storage"))
    ours.namespace_labels(OCT[1], namespace="idle", labels={"env": "prod"})
    ours.namespace_labels(OCT[1], namespace="web", labels={"env": "prod"}, hours=range(12))
    ours.namespace_labels(OCT[1], namespace="web", labels={"env": "dev", "tier": "front"}, hours=range(12, 24))
    usage += [_usage(SOURCE, OCT[1], "web", n) for n in ("w1", "w2")]
    for namespace, labels in [("numbers", '{"env": 5}'), ("null-env", '{"env": null}'), ("other-key", {"app": "x"}),
                              ("no-labels", None), ("empty", {})]:  # fmt: skip
        ours.namespace_labels(OCT[2], namespace=namespace, labels=labels)
        usage.append(_usage(SOURCE, OCT[2], namespace, "n9"))
    usage.append(_usage(SOURCE, OCT[0], "Platform unallocated", "infra-1"))
    ours.write(chunks=2)
    theirs.write()
    return usage


def _load(db: KokuCostDatabase, data_root, usage: list[dict], cost_rows: list[dict] = ()) -> None:
    """The Parquet of both sources into koku's line-item tables, the usage rows into the summary and koku's
    intermediate table, `cost_rows` into the summary only."""
    db.load_parquet(data_root, ACCOUNT, SOURCE, [(2026, 10)])
    db.load_parquet(data_root, ACCOUNT, OTHER_SOURCE, [(2026, 10)])
    db.insert_summary_rows(cost_rows)
    db.insert_usage_rows(usage)


def _ours(db: KokuCostDatabase, data_root, raw_params: dict) -> list[dict]:
    params = parse_params(project.FILE, {**raw_params, "schema": db.schema})
    root = open_data_root(str(data_root))
    labels = project.read_namespace_labels_daily(root, ACCOUNT, params.source_uuid, params.year, params.month)
    nodes = project.read_namespace_nodes(db.conn, db.schema, params.source_uuid, params.start_date, params.end_date)
    return project.monthly_project_tag_based(params, labels.table, nodes).to_pylist()


def _assert_exactly_kokus(expected: list[dict], actual: list[dict]) -> None:
    """Same rows (D6), and the costs the same numeric(33,15) values to the last digit."""
    assert_same_rows(expected, actual, COLUMNS)
    keys = [c for c in COLUMNS if c != "cost_model_cpu_cost"]

    def exact(rows):
        return sorted(((canonical([r], keys)[0], r["cost_model_cpu_cost"]) for r in rows), key=str)

    assert [cost for _, cost in exact(actual)] == [cost for _, cost in exact(expected)]
    assert all(isinstance(r["cost_model_cpu_cost"], Decimal) for r in actual)


@pytest.mark.parametrize("rate_type", RATE_TYPES)
@pytest.mark.parametrize("shape", SHAPES)
def test_project_file_equals_koku(dsn, tmp_path, shape, rate_type):
    raw = {**BASE, **_scaled(SHAPES[shape], RATE_TYPES[rate_type]), "rate_type": rate_type}
    usage = _labelled_month(tmp_path)
    # Rows koku's intermediate table never holds: cost rows of both kinds on other nodes of a charged namespace.
    cost_rows = [
        _usage(SOURCE, OCT[0], "ml-training", "cost-node", cost_model_rate_type="Infrastructure"),
        _usage(SOURCE, OCT[0], "ml-training", "tag-node", cost_model_rate_type=rate_type, monthly_cost_type="Tag"),
        _usage(SOURCE, OCT[0], "ml-training", "gpu-node", "GPU", cost_model_rate_type="Supplementary"),
    ]
    with KokuCostDatabase(dsn) as db:
        _load(db, tmp_path, usage, cost_rows)
        expected = db.run(project.FILE, raw)
        actual = _ours(db, tmp_path, raw)
    assert len(expected) > 10, "the data must give koku rows of several cases"
    _assert_exactly_kokus(expected, actual)


def test_a_second_call_does_not_see_the_first_calls_rows(dsn, tmp_path):
    """Both cost types in one summary, as koku runs them (8.2 order): the second call's node sets ignore the first
    call's Tag rows, as koku's intermediate table never holds them."""
    usage = _labelled_month(tmp_path)
    with KokuCostDatabase(dsn) as db:
        _load(db, tmp_path, usage)
        for rate_type, factor in RATE_TYPES.items():
            raw = {**BASE, **_scaled(SHAPES["values+default"], factor), "rate_type": rate_type}
            expected = db.run(project.FILE, raw)
            actual = _ours(db, tmp_path, raw)
            _assert_exactly_kokus(expected, actual)
            db.insert_summary_rows(actual)  # what the writer would add before the next call


# ------------------------------------------------------------------------------------------------ nise
GPU_VM_YAML = Path(__file__).resolve().parents[1] / "ocp_assets" / "scenarios" / "gpu_vm.yml"
NISE_DAY = dt.date(2026, 10, 31)  # gpu_vm.yml's one day; namespaces ml-team (team: ml) and vms (team: platform)


@pytest.fixture(scope="module")
def nise_month(dsn, tmp_path_factory, request):
    """gpu_vm.yml's day and koku's summary of it (its usage rows: what koku's intermediate table holds)."""
    data = tmp_path_factory.mktemp("nise")
    source = str(uuid.uuid4())
    generate(open_data_root(str(data)), yaml_path=GPU_VM_YAML, cluster_id="cost-project", account=ACCOUNT,
             source_uuid=source, cluster_alias="Project cluster", cache_dir=nise_cache_dir(request))  # fmt: skip
    summary = reference_summary(dsn, data, account=ACCOUNT, source=source, cluster_id="cost-project",
                                cluster_alias="Project cluster", start=NISE_DAY, end=NISE_DAY,
                                enabled_keys=["team"])  # fmt: skip
    usage = [
        {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()}
        for r in summary.to_dict("records")
    ]
    return data, source, usage


@pytest.mark.slow
@pytest.mark.parametrize(
    "shape",
    [{"value_rates": {"ml": 310.0}}, {"value_rates": {"ml": 310.0}, "default_rate": 62.0}, {"default_rate": 93.0}],
    ids=list(SHAPES),
)
def test_nise_project_file_equals_koku(dsn, nise_month, shape):
    data, source, usage = nise_month
    raw = {**BASE, "start_date": "2026-10-01", "end_date": "2026-10-31", "source_uuid": source, "tag_key": "team",
           "cluster_id": "cost-project", "cluster_alias": "Project cluster", "rate_type": "Infrastructure",
           **shape}  # fmt: skip
    with KokuCostDatabase(dsn) as db:
        db.load_parquet(data, ACCOUNT, source, [(2026, 10)])
        db.insert_usage_rows(usage)
        expected = db.run(project.FILE, raw)
        actual = _ours(db, data, raw)
    assert expected, "nise's namespace labels must give koku rows"
    _assert_exactly_kokus(expected, actual)
