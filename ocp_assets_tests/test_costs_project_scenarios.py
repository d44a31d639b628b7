"""Hand-derived rows of koku's monthly_project_tag_based.sql (contract 8.5, 8.9.6, 8.11, C-6, C9), inputs, errors."""

import datetime as dt
import json
from decimal import Decimal

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ocp_assets.core.costs import project
from ocp_assets.core.costs.params import parse_params
from ocp_assets.core.errors import ConfigurationError, InputDataError
from ocp_assets.core.layout import NAMESPACE_LABEL, NAMESPACE_LABELS, month_prefix, raw_schema
from ocp_assets.core.storage import open_data_root
from ocp_assets_tests.costs_support import ACCOUNT, OTHER_SOURCE, SOURCE
from ocp_assets_tests.reference.koku_cost_sql import KokuCostDatabase
from ocp_assets_tests.reference.parquet_fixtures import KokuParquetBuilder

OCT1, OCT2, OCT3 = dt.date(2026, 10, 1), dt.date(2026, 10, 2), dt.date(2026, 10, 3)
BASE = {
    "start_date": "2026-10-01",
    "end_date": "2026-10-02",
    "year": "2026",
    "month": "10",
    "schema": "acct",
    "source_uuid": SOURCE,
    "report_period_id": 7,
    "rate_type": "Infrastructure",
    "tag_key": "env",
    "amortized_denominator": 31,
    "cluster_id": "cluster-a",
    "cluster_alias": "Cluster A",
}
# 8.2 step 3's three shapes of a tag rate (koku passes floats). October has 31 days: 310 -> 10 a day, 62 -> 2, 31 -> 1.
VALUES_ONLY = {"value_rates": {"prod": 310.0, "dev": 62.0}}
VALUES_AND_DEFAULT = {"value_rates": {"prod": 310.0}, "default_rate": 31.0}
DEFAULT_ONLY = {"default_rate": 31.0}
PROD = {"env": "prod"}


def _params(shape=VALUES_ONLY, **overrides):
    return parse_params(project.FILE, {**BASE, **shape, **overrides})


def _labels(*rows) -> pa.Table:
    """namespace_labels daily rows as the reader gives them: (namespace, labels as dict or raw text, day)."""
    return pa.Table.from_pylist(
        [
            {"namespace": ns, "namespace_labels": labels if not isinstance(labels, dict) else json.dumps(labels),
             "usage_start": day}
            for ns, labels, day in rows
        ],
        schema=pa.schema([("namespace", pa.string()), ("namespace_labels", pa.string()), ("usage_start", pa.date32())]),
    )  # fmt: skip


def _nodes(*rows) -> pa.Table:
    """The summary's usage node sets: (namespace, day, node or None)."""
    return pa.Table.from_pylist(
        [{"namespace": ns, "usage_start": day, "node": node} for ns, day, node in rows],
        schema=project.NAMESPACE_NODES_SCHEMA,
    )


def _costs(table: pa.Table) -> dict[tuple, Decimal]:
    rows = table.to_pylist()
    keyed = {(r["namespace"], r["usage_start"], r["node"]): r["cost_model_cpu_cost"] for r in rows}
    assert len(keyed) == len(rows), "one row per (namespace, day, node) in these scenarios"
    return keyed


TEN, THIRD_OF_TEN = Decimal("10.000000000000000"), Decimal("3.333333333333333")


def test_namespace_on_one_two_and_three_nodes_shares_the_daily_amount():
    """8.11's ml-training: 310 a month / 31 days = 10 a day; 2 nodes on Oct 1 (5 each), 3 on Oct 2 (10/3 each)."""
    labels = _labels(("ml-training", PROD, OCT1), ("ml-training", PROD, OCT2), ("solo", PROD, OCT1))
    nodes = _nodes(
        ("ml-training", OCT1, "gpu-1"), ("ml-training", OCT1, "gpu-2"),
        ("ml-training", OCT2, "gpu-1"), ("ml-training", OCT2, "gpu-2"), ("ml-training", OCT2, "gpu-3"),
        ("solo", OCT1, "n1"),
    )  # fmt: skip
    assert _costs(project.monthly_project_tag_based(_params(), labels, nodes)) == {
        ("ml-training", OCT1, "gpu-1"): Decimal("5.000000000000000"),
        ("ml-training", OCT1, "gpu-2"): Decimal("5.000000000000000"),
        # 10 / 3 = 3.3333333333333333 (numeric keeps 16 digits), stored with 15 decimals.
        ("ml-training", OCT2, "gpu-1"): THIRD_OF_TEN,
        ("ml-training", OCT2, "gpu-2"): THIRD_OF_TEN,
        ("ml-training", OCT2, "gpu-3"): THIRD_OF_TEN,
        ("solo", OCT1, "n1"): TEN,
    }


def test_claimless_pvc_adds_a_null_node_share_and_no_usage_pays_the_full_amount():
    """8.9.6: a Storage row without node is a NULL-node row that gets a share but is not counted: 2 nodes -> 3 rows
    of 10 / 2 = 5 (15 in all, more than the rate). Only a NULL node: count 0, the full 10. No usage at all: the LEFT
    JOIN keeps one NULL-node row with the full 10."""
    labels = _labels(("db", PROD, OCT1), ("claims-only", PROD, OCT1), ("idle", PROD, OCT1))
    nodes = _nodes(("db", OCT1, "n1"), ("db", OCT1, "n2"), ("db", OCT1, None), ("claims-only", OCT1, None))
    costs = _costs(project.monthly_project_tag_based(_params(), labels, nodes))
    five = Decimal("5.000000000000000")
    assert costs == {
        ("db", OCT1, "n1"): five,
        ("db", OCT1, "n2"): five,
        ("db", OCT1, None): five,
        ("claims-only", OCT1, None): TEN,
        ("idle", OCT1, None): TEN,
    }
    assert sum(v for k, v in costs.items() if k[0] == "db") == 15


def test_platform_namespaces_are_excluded_and_look_alikes_are_not():
    """koku's NOT LIKE 'kube-%', NOT LIKE 'openshift-%' and != 'openshift' (case-sensitive; no other pattern)."""
    names = ["openshift", "openshift-monitoring", "kube-system", "kube-", "openshift-"]
    look_alikes = ["kube", "openshift2", "kubernetes-dashboard", "Kube-x", "my-openshift-app"]
    labels = _labels(*((name, PROD, OCT1) for name in names + look_alikes), (None, PROD, OCT1))
    costs = _costs(project.monthly_project_tag_based(_params(), labels, _nodes()))
    assert costs == {(name, OCT1, None): TEN for name in look_alikes}  # a NULL namespace fails NOT LIKE too


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        # values only: a row needs one of the values; test, a null value and no key at all get nothing.
        (VALUES_ONLY, {"p": TEN, "d": Decimal("2.000000000000000")}),
        # values + default: any value of the key; prod 10, the others the default 31 / 31 = 1; null or no key nothing.
        (VALUES_AND_DEFAULT, {"p": TEN, "d": Decimal("1.000000000000000"), "t": Decimal("1.000000000000000")}),
        # default only: the default for every value of the key.
        (DEFAULT_ONLY, dict.fromkeys("pdt", Decimal("1.000000000000000"))),
    ],
    ids=["values", "values+default", "default"],
)
def test_the_three_tag_rate_shapes(shape, expected):
    labels = _labels(
        ("p", {"env": "prod", "team": "x"}, OCT1),
        ("d", {"env": "dev"}, OCT1),
        ("t", {"env": "test"}, OCT1),
        ("nothing", {"team": "x"}, OCT1),
        ("null-value", '{"env": null}', OCT1),
        ("no-labels", None, OCT1),
        ("empty", "{}", OCT1),
    )
    costs = _costs(project.monthly_project_tag_based(_params(shape), labels, _nodes()))
    assert costs == {(ns, OCT1, None): cost for ns, cost in expected.items()}


def test_two_label_sets_in_a_day_are_counted_in_each_others_node_count():
    """8.9.6: koku counts non-NULL nodes over all the namespace's rows of the day, across its label sets: 2 label
    sets x 2 nodes = 4, so prod's 10 and dev's 2 become 10 / 4 = 2.5 and 2 / 4 = 0.5 on each node."""
    labels = _labels(("web", {"env": "prod"}, OCT1), ("web", {"env": "dev"}, OCT1))
    nodes = _nodes(("web", OCT1, "n1"), ("web", OCT1, "n2"))
    rows = project.monthly_project_tag_based(_params(), labels, nodes).to_pylist()
    costs = {(json.loads(r["pod_labels"])["env"], r["node"]): r["cost_model_cpu_cost"] for r in rows}
    assert costs == {
        ("prod", "n1"): Decimal("2.500000000000000"),
        ("prod", "n2"): Decimal("2.500000000000000"),
        ("dev", "n1"): Decimal("0.500000000000000"),
        ("dev", "n2"): Decimal("0.500000000000000"),
    }


def test_costs_are_postgresql_numeric_not_float_nor_exact():
    """45 a month over 31 days on 3 nodes. numeric: 45 / 31 = 1.4516129032258065 (16 digits: ...064|516 rounds up),
    then / 3 = 0.4838709677419355 exactly, stored half up as 0.483870967741936; the exact 45 / 93 =
    0.48387096774193548... would store 0.483870967741935."""
    labels = _labels(("ns", PROD, OCT1))
    nodes = _nodes(("ns", OCT1, "a"), ("ns", OCT1, "b"), ("ns", OCT1, "c"))
    costs = _costs(project.monthly_project_tag_based(_params({"value_rates": {"prod": 45.0}}), labels, nodes))
    assert set(costs.values()) == {Decimal("0.483870967741936")}
    assert project.pg_numeric_divide(Decimal("45.000000000000000"), Decimal(31)) == Decimal("1.4516129032258065")


def test_label_rows_are_deduplicated_as_jsonb_and_limited_to_the_range():
    """D3: daily rows repeat; texts equal as jsonb (spacing, key order) are one label set; Oct 3 is after the range.
    The other columns: the parameters, Pod, Tag, the jsonb labels in both label columns, no resource or category."""
    labels = _labels(
        ("web", '{"env": "prod", "app": "shop"}', OCT1),
        ("web", '{"env": "prod", "app": "shop"}', OCT1),
        ("web", '{"app":"shop","env":"prod"}', OCT1),
        ("web", '{"app": "shop", "env": "prod"}', OCT3),
    )
    rows = project.monthly_project_tag_based(_params(), labels, _nodes(("web", OCT1, "n1"))).to_pylist()
    assert rows == [
        {
            "report_period_id": 7,
            "cluster_id": "cluster-a",
            "cluster_alias": "Cluster A",
            "data_source": "Pod",
            "usage_start": OCT1,
            "usage_end": OCT1,
            "namespace": "web",
            "node": "n1",
            "resource_id": None,
            "pod_labels": '{"app": "shop", "env": "prod"}',
            "all_labels": '{"app": "shop", "env": "prod"}',
            "source_uuid": SOURCE,
            "cost_model_rate_type": "Infrastructure",
            "cost_model_cpu_cost": TEN,
            "monthly_cost_type": "Tag",
            "cost_category_id": None,
        }
    ]


def test_a_number_label_value_matches_by_its_text():
    """->> gives a JSON number's numeric text: {"env": 1.50} matches the value '1.50', not '1.5'."""
    labels = _labels(("n", '{"env": 1.50}', OCT1), ("m", '{"env": 2}', OCT1))
    rates = {"value_rates": {"1.50": 310.0, "2.0": 62.0}}
    assert _costs(project.monthly_project_tag_based(_params(rates), labels, _nodes())) == {("n", OCT1, None): TEN}


def test_a_call_without_any_rate_or_with_a_rate_beyond_numeric_is_refused():
    with pytest.raises(ConfigurationError, match="default_rate or value_rates"):
        project.monthly_project_tag_based(_params({}), _labels(), _nodes())
    with pytest.raises(ConfigurationError, match="numeric"):
        project.monthly_project_tag_based(_params({"default_rate": "1e18"}), _labels(), _nodes())


# ------------------------------------------------------------------------------------------------ reading the inputs
def test_reader_reads_a_month_of_daily_namespace_labels(tmp_path):
    builder = KokuParquetBuilder(tmp_path, account=ACCOUNT, source=SOURCE)
    builder.namespace_labels(OCT1, namespace="ml-training", labels=PROD)
    builder.namespace_labels(OCT2, namespace="ml-training", labels=PROD, hours=range(3))
    builder.write(chunks=3)  # several daily rows per (namespace, labels, day), as koku's chunked roll-up makes them
    read = project.read_namespace_labels_daily(open_data_root(str(tmp_path)), ACCOUNT, SOURCE, "2026", "10")
    assert set(read.table.column_names) >= {"namespace", "namespace_labels", "usage_start"}
    assert set(read.table["usage_start"].to_pylist()) == {OCT1, OCT2} and read.table.num_rows > 2
    rows = project.monthly_project_tag_based(_params(), read.table, _nodes(("ml-training", OCT1, "n1")))
    assert _costs(rows) == {("ml-training", OCT1, "n1"): TEN, ("ml-training", OCT2, None): TEN}


def _label_file(tmp_path, bad_labels: str) -> str:
    schema = raw_schema(NAMESPACE_LABEL)
    rows = [{"interval_start": dt.datetime(2026, 10, 1), "namespace": "ns", "namespace_labels": labels}
            for labels in ('{"env": "prod"}', bad_labels)]  # fmt: skip
    folder = tmp_path / month_prefix(ACCOUNT, NAMESPACE_LABELS, SOURCE, 2026, 10, daily=True)
    folder.mkdir(parents=True)
    pq.write_table(
        pa.Table.from_pylist([{n: r.get(n) for n in schema.names} for r in rows], schema), folder / "d.parquet"
    )
    return str(folder / "d.parquet")


@pytest.mark.parametrize("bad_labels", ["", "  ", '{"env": ', "[1, 2]", '"prod"'])
def test_a_label_cell_kokus_jsonb_cast_refuses_is_named_by_file_column_and_row(tmp_path, bad_labels):
    path = _label_file(tmp_path, bad_labels)
    with pytest.raises(InputDataError) as caught:
        project.read_namespace_labels_daily(open_data_root(str(tmp_path)), ACCOUNT, SOURCE, "2026", "10")
    assert caught.value.file.endswith(path.split(str(tmp_path))[1])
    assert caught.value.column == "namespace_labels" and caught.value.row == 2


def test_node_sets_are_the_sources_pod_and_storage_usage_rows_of_the_range(dsn):
    """C9: the Pod and Storage rows without a cost model rate type, of this source, from start to end; a claimless
    PVC's Storage row is a NULL node. Cost rows (any rate type), GPU rows, another source, other days: not read."""

    def row(day, node, **extra):
        return {"usage_start": day, "usage_end": day, "namespace": "ml", "node": node, "data_source": "Pod",
                "source_uuid": SOURCE, **extra}  # fmt: skip

    with KokuCostDatabase(dsn) as db:
        db.insert_summary_rows(
            [
                row(OCT1, "n1"), row(OCT1, "n1"), row(OCT1, "n2", data_source="Storage"),
                row(OCT1, None, data_source="Storage"), row(OCT2, "n3"),
                row(OCT1, "cost-node", cost_model_rate_type="Infrastructure", monthly_cost_type="Tag"),
                row(OCT1, "tiered-node", cost_model_rate_type="Supplementary"),
                row(OCT1, "gpu-node", data_source="GPU"),
                row(OCT1, "other-source", source_uuid=OTHER_SOURCE),
                row(OCT3, "after-range"),
            ]
        )  # fmt: skip
        nodes = project.read_namespace_nodes(db.conn, db.schema, SOURCE, OCT1, OCT2)
    assert nodes.schema == project.NAMESPACE_NODES_SCHEMA
    assert sorted(nodes.to_pylist(), key=str) == sorted(
        [{"namespace": "ml", "usage_start": d, "node": n} for d, n in
         [(OCT1, "n1"), (OCT1, "n2"), (OCT1, None), (OCT2, "n3")]], key=str,
    )  # fmt: skip
