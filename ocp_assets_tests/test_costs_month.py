"""`ocp-assets costs` on nise's GPU+VM month: the rows of koku's files replayed in koku's order, hand-derived VM costs,
the same rows on a re-run after koku's deletes (C-12), a failed check rolling the month back, and `koku-sql`."""

import datetime as dt
import json
import uuid
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from ocp_assets import cli
from ocp_assets.core.costs import models
from ocp_assets.core.costs import month as cost_month
from ocp_assets.core.costs.models import CostModelSpec, TagRate, TieredRate
from ocp_assets.core.pgschema import SUMMARY_TABLE, init_schema
from ocp_assets.core.storage import open_data_root
from ocp_assets_tests.costs_support import assert_same_rows, needs_koku
from ocp_assets_tests.reference.koku_cost_sql import KokuCostDatabase
from ocp_assets_tests.scenario_support import nise_cache_dir

pytestmark = pytest.mark.slow
ACCOUNT = "org7654321"
DAY = dt.date(2026, 10, 31)  # gpu_vm.yml's one day
GPU_VM_YAML = Path(__file__).resolve().parents[1] / "ocp_assets" / "scenarios" / "gpu_vm.yml"
TIERED_RATES = [
    ("vm_cost_per_hour", "Infrastructure", "0.25"),
    ("vm_core_cost_per_hour", "Supplementary", "0.05"),
    ("vm_core_cost_per_month", "Infrastructure", "31"),
    ("vm_core_cost_per_month", "Supplementary", "62"),  # not charged: Infrastructure's is non-zero (C-5)
]
COMPARED = [
    "report_period_id", "cluster_id", "cluster_alias", "data_source", "usage_start", "usage_end", "namespace", "node",
    "resource_id", "pod_labels", "all_labels", "source_uuid", "cost_model_rate_type", "monthly_cost_type",
    "cost_category_id", "cost_model_cpu_cost", "cost_model_memory_cost", "cost_model_gpu_cost", "distributed_cost",
]  # fmt: skip


def store_cost_model(conn: psycopg.Connection, schema: str, source: str, rates, tag_rates=(), distribution=None):
    """A cost model with one price list valid from 2026-01-01, as koku's API stores it (db init made the tables)."""
    spec = CostModelSpec(
        "test",
        (*(TieredRate(*rate) for rate in rates), *tag_rates),
        distribution_info=distribution or {},
        valid_from=dt.date(2026, 1, 1),
    )
    models.store_cost_model(conn, schema, source, spec)


@pytest.fixture(scope="module")
def summarised(tmp_path_factory, request):
    """nise's gpu_vm day generated and summarised into a fresh schema; the cost model stored."""
    from ocp_assets.core.generate import generate

    data = tmp_path_factory.mktemp("costs")
    source = str(uuid.uuid4())
    generate(open_data_root(str(data)), yaml_path=GPU_VM_YAML, cluster_id="cost-month", account=ACCOUNT,
             source_uuid=source, cluster_alias="Cost month", cache_dir=nise_cache_dir(request))  # fmt: skip
    from ocp_assets_tests import shared_postgres

    dsn = shared_postgres.session_dsn()
    schema = f"costs_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        init_schema(conn, schema)
    assert cli.main(["summarize", "--data-root", str(data), "--source", source, "--schema", schema, "--dsn", dsn]) == 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        store_cost_model(conn, schema, source, TIERED_RATES)
    yield dsn, schema, data, source
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


def _rows(dsn: str, schema: str, where: str) -> list[dict]:
    with psycopg.connect(dsn) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
        cur.execute(
            sql.SQL("SELECT * FROM {}.{} WHERE " + where).format(sql.Identifier(schema), sql.Identifier(SUMMARY_TABLE))
        )
        return cur.fetchall()


def _costs(summarised, *extra) -> int:
    dsn, schema, data, source = summarised
    return cli.main(["costs", "--data-root", str(data), "--source", source, "--schema", schema, "--dsn", dsn,
                     "--today", "2026-12-07", *extra])  # fmt: skip


def test_vm_costs_are_hours_and_cores_times_the_rates(summarised):
    """rhel9-db runs 24 h with 2 cores (gpu_vm.yml): 24 x 0.25 = 6.0; 24 x 2 x 0.05 = 2.4; 2 x 31 / 31 = 2.0."""
    dsn, schema, _, _ = summarised
    assert _costs(summarised) == 0
    rows = _rows(dsn, schema, "cost_model_rate_type IS NOT NULL")
    found = {(r["cost_model_rate_type"], r["monthly_cost_type"]): float(r["cost_model_cpu_cost"]) for r in rows}
    assert found == {
        ("Infrastructure", None): 6.0,
        ("Supplementary", None): 2.4,
        ("Infrastructure", "OCP_VM_CORE"): 2.0,
    }


def test_a_rerun_after_kokus_deletes_gives_the_same_rows(summarised):
    dsn, schema, _, _ = summarised
    assert _costs(summarised) == 0
    first = _rows(dsn, schema, "cost_model_rate_type IS NOT NULL")
    assert _costs(summarised) == 0
    again = _rows(dsn, schema, "cost_model_rate_type IS NOT NULL")
    assert_same_rows(first, again, COMPARED)
    assert len({r["uuid"] for r in again} & {r["uuid"] for r in first}) == 0, "the rows were replaced, not kept"


@needs_koku
def test_the_rows_equal_kokus_files_replayed_in_kokus_order(summarised):
    """koku's order for this model (8.2): monthly VM core (Infrastructure only), then the hourly VM files per cost
    type: hourly_cost_virtual_machine Infrastructure, hourly_vm_core Supplementary."""
    dsn, schema, data, source = summarised
    assert _costs(summarised) == 0
    usage = _rows(dsn, schema, "cost_model_rate_type IS NULL")
    period = usage[0]["report_period_id"]
    base = {"start_date": "2026-10-31", "end_date": "2026-10-31", "year": "2026", "month": "10",
            "source_uuid": source, "report_period_id": period}  # fmt: skip
    hourly = {"rate_type": "Infrastructure", "hourly_rate": 0.25, "use_fractional_hours": True}
    calls = [
        ("monthly_vm_core.sql", {"rate_type": "Infrastructure", "rate": Decimal(31) / 31, "cost_type": "OCP_VM_CORE"}),
        ("hourly_cost_virtual_machine.sql", hourly),
        ("hourly_vm_core.sql", {"rate_type": "Supplementary", "hourly_rate": 0.05}),
    ]
    with KokuCostDatabase(dsn) as db:
        db.load_parquet(data, ACCOUNT, source, [(2026, 10)])
        db.insert_summary_rows(usage)
        expected = [row for file, params in calls for row in db.run(file, {**base, **params})]
    assert_same_rows(expected, _rows(dsn, schema, "cost_model_rate_type IS NOT NULL"), COMPARED)


def test_a_failed_check_rolls_the_month_back(summarised, monkeypatch):
    dsn, schema, _, _ = summarised
    assert _costs(summarised) == 0
    before = _rows(dsn, schema, "cost_model_rate_type IS NOT NULL")
    from ocp_assets.core.costs import checks
    from ocp_assets.core.outcomes import CheckOutcome

    monkeypatch.setattr(checks, "gpu_distribution", lambda done: CheckOutcome(False, "forced"))
    assert _costs(summarised) == 2
    assert_same_rows(before, _rows(dsn, schema, "cost_model_rate_type IS NOT NULL"), COMPARED)
    assert {r["uuid"] for r in before} == {r["uuid"] for r in _rows(dsn, schema, "cost_model_rate_type IS NOT NULL")}


def test_koku_sql_inserts_one_calls_rows_and_deletes_nothing(summarised, tmp_path, capsys):
    dsn, schema, data, source = summarised
    assert _costs(summarised) == 0
    before = len(_rows(dsn, schema, "cost_model_rate_type IS NOT NULL"))
    period = _rows(dsn, schema, "cost_model_rate_type IS NULL")[0]["report_period_id"]
    params = tmp_path / "params.json"
    call = {"start_date": "2026-10-01", "end_date": "2026-10-31", "year": "2026", "month": "10", "schema": schema}
    call |= {"source_uuid": source, "report_period_id": period, "rate_type": "Supplementary", "hourly_rate": 0.5}
    params.write_text(json.dumps(call))
    argv = ["koku-sql", "hourly_cost_virtual_machine.sql", "--params", str(params), "--data-root", str(data),
            "--account", ACCOUNT, "--dsn", dsn]  # fmt: skip
    assert cli.main(argv) == 0
    assert "hourly_cost_virtual_machine.sql: 1 rows inserted" in capsys.readouterr().out
    added = _rows(dsn, schema, "cost_model_rate_type = 'Supplementary' AND monthly_cost_type IS NULL"
                  " AND cost_model_cpu_cost = 12")  # fmt: skip
    assert len(added) == 1, "24 h x 0.5 for rhel9-db"
    assert len(_rows(dsn, schema, "cost_model_rate_type IS NOT NULL")) == before + 1


def test_the_command_refuses_a_month_piece_without_a_report_period(summarised, capsys):
    assert _costs(summarised, "--start", "2026-09-01", "--end", "2026-09-30") == 0
    assert "no report period of source" in capsys.readouterr().out


def test_month_pieces_cut_at_month_ends():
    assert cost_month.month_pieces(dt.date(2026, 1, 30), dt.date(2026, 3, 2)) == [
        (dt.date(2026, 1, 30), dt.date(2026, 1, 31)),
        (dt.date(2026, 2, 1), dt.date(2026, 2, 28)),
        (dt.date(2026, 3, 1), dt.date(2026, 3, 2)),
    ]


# ------------------------------------------------------------------------------------------------ every file
# Tiered rates of both cost types, and tag rates in the three shapes (values only, values + default, default only)
# for every tag metric; the GPU distribution on. nise's gpu-0 gets the operator's NVIDIA labels (nise writes none).
FULL_TIERED = [
    ("vm_cost_per_hour", "Infrastructure", "0.25"),
    ("vm_cost_per_hour", "Supplementary", "0.1"),
    ("vm_core_cost_per_hour", "Supplementary", "0.05"),
    ("vm_core_cost_per_month", "Infrastructure", "31"),
]
GPU_VALUES = {"H100": "3100", "A100 SXM4 40GB": "1000"}
FULL_TAGS = [
    TagRate("vm_cost_per_hour", "Infrastructure", "app", {"db": "0.5"}, default="0.1"),
    TagRate("vm_core_cost_per_month", "Infrastructure", "app", default="62"),
    TagRate("vm_core_cost_per_hour", "Supplementary", "app", {"db": "0.02"}),
    TagRate("gpu_cost_per_month", "Infrastructure", "nvidia", GPU_VALUES, default="62"),
    TagRate("gpu_cost_per_month", "Supplementary", "nvidia", GPU_VALUES),
    TagRate("project_per_month", "Infrastructure", "team", {"ml": "310"}, default="31"),
]


def kokus_calls(base: dict, cluster: dict) -> list[tuple[str, dict]]:
    """koku's calls for FULL_* in koku's order (8.2), written out by hand: monthly VM core, the tag files (hourly VM,
    monthly VM core, hourly VM core, GPU, project), the hourly VM files per cost type, the month's distribution."""
    monthly = {"amortized_denominator": 31, "cost_type": "Tag"}
    gpu_values = {"value_rates": {k: float(v) for k, v in GPU_VALUES.items()}}
    month = {**base, "start_date": "2026-10-01", "end_date": "2026-10-31"}
    return [
        ("monthly_vm_core.sql", {**base, "rate_type": "Infrastructure", "rate": Decimal(31) / 31,
                                 "cost_type": "OCP_VM_CORE"}),
        ("hourly_cost_vm_tag_based.sql", {**base, "rate_type": "Infrastructure", "tag_key": "app",
                                          "value_rates": {"db": 0.5}, "default_rate": 0.1,
                                          "use_fractional_hours": True}),
        ("monthly_vm_core_tag_based.sql", {**base, **monthly, "rate_type": "Infrastructure", "tag_key": "app",
                                           "default_rate": 62.0}),
        ("hourly_vm_core_tag_based.sql", {**base, "rate_type": "Supplementary", "tag_key": "app",
                                          "value_rates": {"db": 0.02}}),
        ("monthly_cost_gpu.sql", {**base, **monthly, **cluster, **gpu_values, "rate_type": "Infrastructure",
                                  "tag_key": "nvidia", "default_rate": 62.0}),
        ("monthly_cost_gpu.sql", {**base, **monthly, **cluster, **gpu_values, "rate_type": "Supplementary",
                                  "tag_key": "nvidia"}),
        ("monthly_project_tag_based.sql", {**base, **monthly, **cluster, "rate_type": "Infrastructure",
                                           "tag_key": "team", "value_rates": {"ml": 310.0}, "default_rate": 31.0}),
        ("hourly_cost_virtual_machine.sql", {**base, "rate_type": "Infrastructure", "hourly_rate": 0.25,
                                             "use_fractional_hours": True}),
        ("hourly_cost_virtual_machine.sql", {**base, "rate_type": "Supplementary", "hourly_rate": 0.1,
                                             "use_fractional_hours": True}),
        ("hourly_vm_core.sql", {**base, "rate_type": "Supplementary", "hourly_rate": 0.05}),
        ("distribute_unallocated_gpu_cost.sql", {**month, "cost_model_rate_type": "gpu_distributed"}),
    ]  # fmt: skip


@pytest.fixture(scope="module")
def full_month(tmp_path_factory, request):
    """nise's gpu_vm day with NVIDIA node labels, summarised; the cost model exercising every file stored."""
    from ocp_assets.core.generate import generate
    from ocp_assets_tests import shared_postgres
    from ocp_assets_tests.reference.gpu_cost_fixtures import nvidia_labels, relabel_nodes

    data = tmp_path_factory.mktemp("costs-full")
    source = str(uuid.uuid4())
    generate(open_data_root(str(data)), yaml_path=GPU_VM_YAML, cluster_id="cost-full", account=ACCOUNT,
             source_uuid=source, cluster_alias="Cost full", cache_dir=nise_cache_dir(request))  # fmt: skip
    labels = nvidia_labels(count="3", product="NVIDIA-H100-80GB", strategy="mixed")
    relabel_nodes(data, ACCOUNT, source, 2026, 10, {"gpu-0": labels})
    dsn = shared_postgres.session_dsn()
    schema = f"costs_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as conn:
        init_schema(conn, schema)
        # The VM tag files price the summary's pod labels: only enabled keys are there.
        conn.execute(
            sql.SQL(
                "INSERT INTO {}.reporting_enabledtagkeys (key, enabled, provider_type) VALUES ('app', true, 'OCP')"
            ).format(sql.Identifier(schema))
        )
    assert cli.main(["summarize", "--data-root", str(data), "--source", source, "--schema", schema, "--dsn", dsn]) == 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        store_cost_model(conn, schema, source, FULL_TIERED, FULL_TAGS, distribution={"gpu_unallocated": True})
    yield dsn, schema, data, source
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(schema)))


@needs_koku
def test_every_file_equals_kokus_files_replayed_in_kokus_order(full_month):
    dsn, schema, data, source = full_month
    assert _costs(full_month) == 0
    usage = _rows(dsn, schema, "cost_model_rate_type IS NULL")
    period = usage[0]["report_period_id"]
    base = {"start_date": "2026-10-31", "end_date": "2026-10-31", "year": "2026", "month": "10",
            "source_uuid": source, "report_period_id": period}  # fmt: skip
    with psycopg.connect(dsn) as conn:
        categories = conn.execute(
            sql.SQL("SELECT namespace, cost_category_id FROM {}.reporting_ocp_cost_category_namespace").format(
                sql.Identifier(schema)
            )
        ).fetchall()
    with KokuCostDatabase(dsn) as db:
        db.load_parquet(data, ACCOUNT, source, [(2026, 10)])
        db.insert_usage_rows(usage)
        for namespace, category in categories:
            db.conn.execute(
                "INSERT INTO reporting_ocp_cost_category_namespace (namespace, cost_category_id) VALUES (%s, %s)",
                (namespace, category),
            )
        expected, by_file = [], {}
        for file, params in kokus_calls(base, {"cluster_id": "cost-full", "cluster_alias": "Cost full"}):
            rows = db.run(file, params)
            by_file[file] = by_file.get(file, 0) + len(rows)
            expected += rows
    assert all(by_file.values()), f"every file must insert rows on this data: {by_file}"
    assert_same_rows(expected, _rows(dsn, schema, "cost_model_rate_type IS NOT NULL"), COMPARED)


def test_koku_sql_fills_the_vm_tmp_table_koku_reads_by_its_unquoted_name(summarised, tmp_path, capsys):
    """The tmp-table files append to tmp_virt_<uuid>, created when missing; koku names it unquoted in its later
    statements, so PostgreSQL folds it to lower case: a uuid with capitals must still reach that table."""
    dsn, schema, data, source = summarised
    call = {"start_date": "2026-10-01", "end_date": "2026-10-31", "year": "2026", "month": "10", "schema": schema}
    params = tmp_path / "params.json"
    params.write_text(json.dumps({**call, "source_uuid": source, "uuid": "AbC123"}))
    argv = ["koku-sql", "populate_vm_tmp_table_with_vm_report.sql", "--params", str(params), "--data-root",
            str(data), "--account", ACCOUNT, "--dsn", dsn]  # fmt: skip
    assert cli.main(argv) == 0
    assert f"1 rows inserted into {schema}.tmp_virt_abc123" in capsys.readouterr().out
    with psycopg.connect(dsn) as conn:
        rows = conn.execute(sql.SQL("SELECT vm_name, node, cpu_request FROM {}.tmp_virt_AbC123").format(
            sql.Identifier(schema))).fetchall()  # fmt: skip
    # gpu_vm.yml's rhel9-db at its last hour: 2 cores x 24 (8.7), on virt-0, one row for its one claim.
    assert rows == [("rhel9-db", "virt-0", 48.0)]
