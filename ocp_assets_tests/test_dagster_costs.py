"""Dagster's cost_model_costs asset (cluster x month, downstream of the daily summary) on nise's gpu_vm day in real
PostgreSQL: the rows of `ocp-assets costs`, checks, metadata, re-runs, months without a period or a cost model, bad
Parquet, a failed check, backfill and check-only routes, the automation condition, the code location's graph, and the
cost job in the multiprocess executor."""

import datetime as dt
import os
import shutil
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from dagster._core.definitions.automation_tick_evaluation_context import (  # the backfill daemon's request builder
    build_run_requests_with_backfill_policies,
)
from dagster._core.definitions.events import AssetKeyPartitionKey
from dagster._core.definitions.partitions.context import partition_loading_context
from psycopg import sql

from ocp_assets import cli
from ocp_assets.core.costs import models
from ocp_assets.core.costs.checks import COST_CHECKS
from ocp_assets.core.costs.facts import month_facts
from ocp_assets.core.costs.models import CostModelSpec, TieredRate
from ocp_assets.core.costs.month import MonthCosts, StepDone
from ocp_assets.core.generate import generate
from ocp_assets.core.outcomes import CheckOutcome
from ocp_assets.core.pgschema import SUMMARY_TABLE, init_schema
from ocp_assets.core.storage import open_data_root
from ocp_assets.definitions import build_definitions
from ocp_assets.defs.assets import koku_parquet_specs, summary_asset
from ocp_assets.defs.costs import COSTS_ASSET, COSTS_GROUP, COSTS_SENSOR_NAME, cost_asset
from ocp_assets.defs.jobs import COSTS_JOB_NAME
from ocp_assets.defs.partitions import CLUSTERS_PARTITIONS_NAME, DayPartitions, month_key, partition_key
from ocp_assets.defs.resources import KokuDataLake, SummaryDatabase, SummaryEngine
from ocp_assets.defs.settings import Settings
from ocp_assets_tests.costs_support import assert_same_rows
from ocp_assets_tests.dagster_fixtures import (  # noqa: F401 (dagster_home_fixture is the dagster_home fixture)
    dagster_home_fixture,
    unique_name,
)
from ocp_assets_tests.engine_support import enable_keys
from ocp_assets_tests.scenario_support import nise_cache_dir

REPO = Path(__file__).resolve().parents[1]
GPU_VM_YAML = REPO / "ocp_assets" / "scenarios" / "gpu_vm.yml"
ACCOUNT = "org2468024"
CLUSTER = "cost-dagster"
DAY = dt.date(2026, 10, 31)  # gpu_vm.yml's one day
OCTOBER, SEPTEMBER = dt.date(2026, 10, 1), dt.date(2026, 9, 1)
# A fixed window holding gpu_vm's day, so the partitions do not depend on today's date.
WINDOW = DayPartitions(start_date="2026-09-01", end_date="2026-11-30")
TIERED_RATES = [
    ("vm_cost_per_hour", "Infrastructure", "0.25"),
    ("vm_core_cost_per_hour", "Supplementary", "0.05"),
    ("vm_core_cost_per_month", "Infrastructure", "31"),
]
# gpu_vm.yml's one VM, rhel9-db, runs the day's 24 hours with 2 requested cores (cpu_request 2), in namespace vms:
#   hourly VM, Infrastructure:       24 h x 0.25             = 6.0
#   hourly VM core, Supplementary:   24 h x 2 cores x 0.05   = 2.4
#   monthly VM core, Infrastructure: 2 cores x 31 / 31 days  = 2.0 (October has 31 days)
EXPECTED_COSTS = {("Infrastructure", None): 6.0, ("Supplementary", None): 2.4, ("Infrastructure", "OCP_VM_CORE"): 2.0}
COMPARED = [
    "report_period_id", "cluster_id", "cluster_alias", "data_source", "usage_start", "usage_end", "namespace", "node",
    "resource_id", "pod_labels", "all_labels", "source_uuid", "cost_model_rate_type", "monthly_cost_type",
    "cost_category_id", "cost_model_cpu_cost", "cost_model_memory_cost", "cost_model_gpu_cost", "distributed_cost",
]  # fmt: skip


def store_cost_model(conn: psycopg.Connection, schema: str, source: str, rates) -> None:
    """A cost model with one price list valid from 2026-01-01, mapped to `source` (`db init` made koku's tables)."""
    spec = CostModelSpec("vm", tuple(TieredRate(*rate) for rate in rates), valid_from=dt.date(2026, 1, 1))
    models.store_cost_model(conn, schema, source, spec)


@dataclass
class CostEnv:
    dsn: str
    schema: str
    registry: str
    data_root: Path
    source: str
    instance: dg.DagsterInstance

    def resources(self, data_root: Path | None = None) -> dict:
        return {
            "koku_db": SummaryDatabase(dsn=self.dsn, schema_name=self.schema, registry_schema=self.registry),
            "koku_lake": KokuDataLake(data_root=str(data_root or self.data_root)),
            "summary_engine": SummaryEngine(workers=1),
            "day_partitions": WINDOW,
        }

    def assets(self) -> list:
        days = WINDOW.definition()
        return [*koku_parquet_specs(days), summary_asset(days), cost_asset(WINDOW.month_definition())]

    def materialize(self, selection, data_root: Path | None = None, **kwargs) -> dg.ExecuteInProcessResult:
        return dg.materialize(
            self.assets(),
            selection=selection,
            resources=self.resources(data_root),
            instance=self.instance,
            raise_on_error=False,
            **kwargs,
        )

    def costs(self, month: dt.date = OCTOBER, **kwargs) -> dg.ExecuteInProcessResult:
        return self.materialize([COSTS_ASSET], partition_key=str(month_key(CLUSTER, month)), **kwargs)

    def cost_rows(self) -> list[dict]:
        with psycopg.connect(self.dsn) as conn, conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            cur.execute(
                sql.SQL("SELECT * FROM {}.{} WHERE source_uuid = %s::uuid AND cost_model_rate_type IS NOT NULL").format(
                    sql.Identifier(self.schema), sql.Identifier(SUMMARY_TABLE)
                ),
                (self.source,),
            )
            return cur.fetchall()


def _nise_cache(request: pytest.FixtureRequest, tmp_path_factory) -> Path:
    try:
        return nise_cache_dir(request)
    except AttributeError:  # pytest's cache provider is off (-p no:cacheprovider): nise runs once in this session
        return tmp_path_factory.mktemp("nise_cache")


@pytest.fixture(scope="module", name="env")
def env_fixture(dsn, tmp_path_factory, request):
    """nise's gpu_vm day ingested, registered as a cluster, summarised through the daily_summary asset; the cost
    model stored. One schema for the module: every test replaces the month's costs before it judges them."""
    data = tmp_path_factory.mktemp("cost_dagster")
    source = str(uuid.uuid4())
    cache = _nise_cache(request, tmp_path_factory)
    generate(open_data_root(str(data)), yaml_path=GPU_VM_YAML, cluster_id=CLUSTER, account=ACCOUNT,
             source_uuid=source, cluster_alias="Cost Dagster", cache_dir=cache)  # fmt: skip
    schema, registry = unique_name("t_costs"), unique_name("ocp_reg")
    instance = dg.DagsterInstance.ephemeral()
    env = CostEnv(dsn, schema, registry, data, source, instance)
    with psycopg.connect(dsn, autocommit=True) as conn:
        init_schema(conn, schema)
        enable_keys(conn, schema, ["app"])
        db = env.resources()["koku_db"]
        db.registry.ensure(conn)
        db.register_cluster(conn, cluster_id=CLUSTER, source=source, account=ACCOUNT, cluster_alias="Cost Dagster",
                            data_root=str(data))  # fmt: skip
        instance.add_dynamic_partitions(CLUSTERS_PARTITIONS_NAME, [CLUSTER])
        summarised = env.materialize([dg.AssetKey("daily_summary")], partition_key=str(partition_key(CLUSTER, DAY)))
        assert summarised.success
        store_cost_model(conn, schema, source, TIERED_RATES)
    try:
        yield env
    finally:
        instance.dispose()
        with psycopg.connect(dsn, autocommit=True) as conn:
            for name in (schema, registry):
                conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(name)))


def _metadata(result, partition: str) -> dict:
    found = {
        e.partition: {k: v.value for k, v in e.materialization.metadata.items()}
        for e in result.get_asset_materialization_events()
        if e.asset_key.to_user_string() == COSTS_ASSET
    }
    return found[partition]


def _evaluations(result) -> dict[tuple[str, str], dg.AssetCheckEvaluation]:
    return {(e.check_name, e.partition): e for e in result.get_asset_check_evaluations()}


def _found_costs(rows: list[dict]) -> dict:
    return {(r["cost_model_rate_type"], r["monthly_cost_type"]): float(r["cost_model_cpu_cost"]) for r in rows}


def test_a_month_partition_writes_what_the_costs_command_writes(env):
    key = str(month_key(CLUSTER, OCTOBER))

    result = env.costs()

    assert result.success
    rows = env.cost_rows()
    assert len(rows) == 3 and _found_costs(rows) == EXPECTED_COSTS
    evaluations = _evaluations(result)
    assert set(evaluations) == {(name, key) for name in COST_CHECKS}
    assert all(e.passed for e in evaluations.values())
    metadata = _metadata(result, key)
    assert metadata["status"] == "costed" and metadata["dagster/row_count"] == 3
    assert metadata["cost_infrastructure"] == pytest.approx(6.0 + 2.0)
    assert metadata["cost_supplementary"] == pytest.approx(2.4)
    assert (metadata["vms_costed"], metadata["namespaces_costed"], metadata["gpu_models_costed"]) == (1, 1, 0)
    assert "rhel9-db" in metadata["vms"] and "vms" in metadata["namespaces"]
    files = {r.data["file"]: r.data for r in metadata["files"].records}
    assert files["hourly_cost_virtual_machine"]["rows"] == 1
    assert files["hourly_cost_virtual_machine"]["Infrastructure"] == pytest.approx(6.0)
    assert files["hourly_vm_core"]["Supplementary"] == pytest.approx(2.4)
    assert files["monthly_vm_core"]["Infrastructure"] == pytest.approx(2.0)

    # The CLI's path for the same month replaces them with the same rows.
    argv = ["costs", "--data-root", str(env.data_root), "--source", env.source, "--schema", env.schema,
            "--dsn", env.dsn, "--account", ACCOUNT, "--start", "2026-10-01", "--end", "2026-10-31"]  # fmt: skip
    assert cli.main(argv) == 0
    by_cli = env.cost_rows()
    assert_same_rows(rows, by_cli, COMPARED)
    assert not {r["uuid"] for r in rows} & {r["uuid"] for r in by_cli}, "the command replaced the rows"


def test_materializing_the_month_again_replaces_its_rows_without_doubles(env):
    assert env.costs().success
    first = env.cost_rows()

    again = env.costs()

    assert again.success
    rows = env.cost_rows()
    assert len(rows) == 3
    assert_same_rows(first, rows, COMPARED)
    assert _metadata(again, str(month_key(CLUSTER, OCTOBER)))["rows_deleted"] == 3  # koku's deletes, then the files


def test_a_month_without_a_report_period_is_materialized_empty_and_its_checks_say_why(env):
    key = str(month_key(CLUSTER, SEPTEMBER))

    result = env.costs(SEPTEMBER)

    assert result.success
    metadata = _metadata(result, key)
    assert "no report period" in metadata["status"] and metadata["dagster/row_count"] == 0
    evaluations = _evaluations(result)
    assert {name for name, _ in evaluations} == set(COST_CHECKS)
    assert all(e.passed and "no report period" in e.description for e in evaluations.values())


def test_a_month_without_a_cost_model_is_materialized_with_no_cost_rows(env):
    assert env.costs().success and env.cost_rows()
    with psycopg.connect(env.dsn, autocommit=True) as conn:
        mapped = conn.execute(
            sql.SQL("DELETE FROM {}.cost_model_map WHERE provider_uuid = %s RETURNING cost_model_id").format(
                sql.Identifier(env.schema)
            ),
            (env.source,),
        ).fetchone()
        try:
            result = env.costs()
        finally:
            conn.execute(
                sql.SQL("INSERT INTO {}.cost_model_map (provider_uuid, cost_model_id) VALUES (%s, %s)").format(
                    sql.Identifier(env.schema)
                ),
                (env.source, mapped[0]),
            )

    assert result.success
    metadata = _metadata(result, str(month_key(CLUSTER, OCTOBER)))
    assert "no cost model" in metadata["status"]
    assert (metadata["dagster/row_count"], metadata["rows_deleted"]) == (0, 3)  # koku's deletes still run
    assert env.cost_rows() == []
    assert all(e.passed and "no cost model" in e.description for e in result.get_asset_check_evaluations())


def test_a_failed_check_rolls_its_month_back_and_the_other_months_of_the_run_stand(env, monkeypatch):
    assert env.costs().success
    before = env.cost_rows()
    from ocp_assets.core.costs import checks

    judged = checks.gpu_distribution
    monkeypatch.setattr(
        checks,
        "gpu_distribution",
        lambda done: CheckOutcome(False, "forced", {"node_days": 7}) if done.first == OCTOBER else judged(done),
    )
    september, october = str(month_key(CLUSTER, SEPTEMBER)), str(month_key(CLUSTER, OCTOBER))

    result = env.materialize(
        [COSTS_ASSET],
        tags={"dagster/asset_partition_range_start": september, "dagster/asset_partition_range_end": october},
    )

    assert not result.success
    assert {e.partition for e in result.get_asset_materialization_events()} == {september}
    failed = _evaluations(result)[(checks.GPU_DISTRIBUTION_REPLACES_UNALLOCATED, october)]
    assert not failed.passed and failed.description == "forced" and failed.metadata["node_days"].value == "7"
    assert {r["uuid"] for r in env.cost_rows()} == {r["uuid"] for r in before}, "October kept its previous rows"


def test_bad_vm_parquet_fails_its_month_naming_file_column_and_row(env, tmp_path):
    assert env.costs().success
    before = env.cost_rows()
    broken = tmp_path / "data"
    shutil.copytree(env.data_root, broken)
    raw = next(p for p in (broken / "data" / "parquet" / ACCOUNT / "OCP" / "vm_usage").rglob("*.parquet"))
    table = pq.read_table(raw)
    seconds = table["vm_uptime_total_seconds"].to_pylist()
    seconds[0] = -1.0
    column = table.schema.get_field_index("vm_uptime_total_seconds")
    pq.write_table(table.set_column(column, "vm_uptime_total_seconds", pa.array(seconds, pa.float64())), raw)

    result = env.costs(data_root=broken)

    assert not result.success
    assert not result.get_asset_materialization_events()
    (evaluation,) = result.get_asset_check_evaluations()
    assert not evaluation.passed
    assert raw.name in evaluation.description and "'vm_uptime_total_seconds'" in evaluation.description
    assert "row 1" in evaluation.description
    assert {r["uuid"] for r in env.cost_rows()} == {r["uuid"] for r in before}


def test_a_backfill_of_months_runs_as_the_daemon_cuts_it_one_range_run_per_cluster(env):
    """The backfill daemon's own run-request builder with the asset's BackfillPolicy: September and October of the
    cluster in one range run, each month recorded with its own materialization and checks."""
    wanted = [AssetKeyPartitionKey(dg.AssetKey(COSTS_ASSET), str(month_key(CLUSTER, m))) for m in (SEPTEMBER, OCTOBER)]
    graph = dg.Definitions(assets=env.assets(), resources=env.resources()).resolve_asset_graph()
    with partition_loading_context(dynamic_partitions_store=env.instance):
        requests = build_run_requests_with_backfill_policies(wanted, graph, env.instance)
    (request,) = requests
    september, october = (str(month_key(CLUSTER, m)) for m in (SEPTEMBER, OCTOBER))
    assert (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]) == (
        september,
        october,
    )

    result = env.materialize([COSTS_ASSET], tags=request.tags)

    assert result.success
    assert {e.partition for e in result.get_asset_materialization_events()} == {september, october}
    assert {p for _, p in _evaluations(result)} == {september, october}
    assert _found_costs(env.cost_rows()) == EXPECTED_COSTS


def test_checks_executed_alone_rehearse_the_materialized_months_and_change_nothing(env):
    """A check's Execute button: no partition, no asset; each materialized month's write is rolled back."""
    assert env.costs().success
    before = env.cost_rows()

    result = env.materialize(dg.AssetSelection.checks_for_assets(COSTS_ASSET))

    assert result.success
    assert not result.get_asset_materialization_events()
    evaluations = _evaluations(result)
    assert {(name, str(month_key(CLUSTER, OCTOBER))) for name in COST_CHECKS} <= set(evaluations)
    assert all(e.passed for e in evaluations.values())
    assert {r["uuid"] for r in env.cost_rows()} == {r["uuid"] for r in before}


@pytest.mark.filterwarnings("ignore::dagster.BetaWarning")  # Dagster's own tester selects with a beta parameter
def test_a_day_summarised_again_requests_its_month_and_only_once(env):
    assets = dg.Definitions(assets=env.assets(), resources=env.resources())
    october = str(month_key(CLUSTER, OCTOBER))
    first = dg.evaluate_automation_conditions(defs=assets, instance=env.instance)
    assert first.total_requested == 0  # nothing changed since the condition was first evaluated

    summarised = env.materialize([dg.AssetKey("daily_summary")], partition_key=str(partition_key(CLUSTER, DAY)))
    assert summarised.success
    after_summary = dg.evaluate_automation_conditions(defs=assets, instance=env.instance, cursor=first.cursor)
    assert after_summary.get_requested_partitions(dg.AssetKey(COSTS_ASSET)) == {october}

    assert env.costs().success
    after_costs = dg.evaluate_automation_conditions(defs=assets, instance=env.instance, cursor=after_summary.cursor)
    assert after_costs.total_requested == 0


def test_the_code_location_puts_the_costs_downstream_of_the_days_of_their_month():
    defs = build_definitions(Settings(start_date="2026-10-05", end_date="2026-11-15"))
    dg.Definitions.validate_loadable(defs)
    graph = defs.resolve_asset_graph()
    costs, summary = dg.AssetKey(COSTS_ASSET), dg.AssetKey("daily_summary")
    assert graph.get(costs).parent_keys == {summary} and graph.get(costs).group_name == COSTS_GROUP
    months = graph.get(costs).partitions_def
    assert months.get_partitions_def_for_dimension("month").get_partition_keys() == ["2026-10", "2026-11"]
    # October's days in the window are 10-05 .. 10-31: 27 days of the same cluster, and nothing of another.
    mapping = graph.get_partition_mapping(costs, summary)
    instance = dg.DagsterInstance.ephemeral()
    instance.add_dynamic_partitions(CLUSTERS_PARTITIONS_NAME, ["a", "b"])

    with partition_loading_context(dynamic_partitions_store=instance):
        month = months.empty_subset().with_partition_keys([month_key("a", OCTOBER)])
        days = mapping.get_upstream_mapped_partitions_result_for_partitions(
            month, months, graph.get(summary).partitions_def
        ).partitions_subset.get_partition_keys()
    assert sorted(days) == [f"a|2026-10-{d:02d}" for d in range(5, 32)]
    for check in graph.get(costs).check_keys:
        assert check.name in COST_CHECKS
    assert defs.resolve_sensor_def(COSTS_SENSOR_NAME).asset_selection is not None
    assert {k.to_user_string() for k in defs.resolve_job_def(COSTS_JOB_NAME).asset_layer.selected_asset_keys} == {
        COSTS_ASSET
    }


@pytest.mark.parametrize(
    ("start", "end", "months"),
    [
        ("2024-02-28", "2024-03-01", ["2024-02", "2024-03"]),  # a leap February's last two days and March 1st
        ("2025-12-31", "2025-12-31", ["2025-12"]),  # one day, the year's last
        ("2025-11-15", "2026-01-01", ["2025-11", "2025-12", "2026-01"]),  # across a new year
    ],
)
def test_the_months_are_those_the_day_window_falls_in(start, end, months):
    window = DayPartitions(start_date=start, end_date=end)
    assert window.month_definition().get_partitions_def_for_dimension("month").get_partition_keys() == months


def test_month_facts_sum_costs_per_type_and_file_and_name_what_was_costed():
    """Hand-made rows of two files: a GPU file (two models, both cost types) and the GPU distribution."""
    gpu = pa.table(
        {
            "namespace": ["ml", "ml", "GPU unallocated"],
            "cost_model_rate_type": ["Infrastructure", "Supplementary", "Infrastructure"],
            "cost_model_gpu_cost": [10.0, 1.5, 4.0],
            "all_labels": ['{"gpu-model": "A100 SXM4 40GB"}', '{"gpu-model": "A100 SXM4 40GB"}', '{"gpu-model": "T4"}'],
        }
    )
    distributed = pa.table(
        {
            "namespace": ["ml", "GPU unallocated"],
            "cost_model_rate_type": ["gpu_distributed"] * 2,
            "distributed_cost": [4.0, -4.0],
        }
    )
    done = MonthCosts(CLUSTER, OCTOBER, dt.date(2026, 10, 31), 1)
    done.steps = [
        StepDone("delete tag", {}, deleted=5),
        StepDone("monthly_cost_gpu.sql", {}, rows=gpu),
        StepDone("distribute_unallocated_gpu_cost.sql", {}, rows=distributed),
    ]

    facts = month_facts(done)

    assert facts.cost_by_type == {"Infrastructure": 14.0, "Supplementary": 1.5, "gpu_distributed": 0.0}
    assert facts.files["monthly_cost_gpu"] == {"rows": 3, "Infrastructure": 14.0, "Supplementary": 1.5}
    assert facts.files["distribute_unallocated_gpu_cost"] == {"rows": 2, "gpu_distributed": 0.0}
    assert (facts.rows, facts.deleted) == (5, 5)
    assert facts.gpu_models == {"A100 SXM4 40GB", "T4"} and facts.vms == set()
    assert facts.namespaces == {"ml", "GPU unallocated"}


@pytest.mark.slow
def test_dagster_validates_the_code_location_and_loading_it_imports_no_cost_engine(tmp_path):
    """`dagster definitions validate`, and the definitions built in a fresh process without pyarrow.compute."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("OCP_ASSETS_")} | {"DAGSTER_HOME": str(tmp_path)}
    dagster = Path(sys.executable).with_name("dagster")
    done = subprocess.run([str(dagster), "definitions", "validate", "-m", "ocp_assets.definitions"], env=env,
                          capture_output=True, text=True, timeout=180)  # fmt: skip
    said = done.stdout + done.stderr  # Dagster's log lines go to either, by version
    assert done.returncode == 0 and "Validation successful" in said, said[-2000:]
    code = (
        "import sys\nfrom ocp_assets.definitions import defs\nd = defs()\n"
        "assert d.resolve_assets_def('cost_model_costs')\nprint(sorted(m for m in ('pyarrow.compute', 'pandas', "
        "'pandera', 'ocp_assets.core.costs.month') if m in sys.modules))\n"
    )
    loaded = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.strip() == "[]"


def cost_job():
    """The cost job as the code location defines it (multiprocess executor), rebuilt in each process."""
    from ocp_assets.definitions import defs

    return defs().resolve_job_def(COSTS_JOB_NAME)


def summary_job():
    from ocp_assets.definitions import defs
    from ocp_assets.defs.jobs import JOB_NAME

    return defs().resolve_job_def(JOB_NAME)


def _execute(instance: dg.DagsterInstance, job, tags: dict) -> dg.JobExecutionResult:
    return dg.execute_job(dg.reconstructable(job), instance, tags=tags, raise_on_error=False)


@pytest.mark.slow
def test_the_code_locations_cost_job_runs_a_month_in_its_own_step_process(dagster_home, monkeypatch, tmp_path):
    """As Dagster runs it (a PostgreSQL-stored instance, the code location from the environment, the step in a
    process of the multiprocess executor): the sensor's summary run, then the month through the cost job."""
    from ocp_assets.definitions import defs
    from ocp_assets.defs.sensors import koku_parquet_sensor

    monkeypatch.setenv("OCP_ASSETS_START_DATE", WINDOW.start_date)
    monkeypatch.setenv("OCP_ASSETS_END_DATE", WINDOW.end_date)
    data, schema = Path(dagster_home["OCP_ASSETS_DATA_ROOT"]), dagster_home["OCP_ASSETS_SCHEMA"]
    source = str(uuid.uuid4())
    generate(open_data_root(str(data)), yaml_path=GPU_VM_YAML, cluster_id=CLUSTER, account=ACCOUNT,
             source_uuid=source, cluster_alias="Cost Dagster", cache_dir=tmp_path / "nise")  # fmt: skip
    definitions = defs()
    resources = {k: v for k, v in definitions.resources.items() if k in ("koku_db", "koku_lake", "day_partitions")}
    with dg.DagsterInstance.get() as instance:
        with dg.build_sensor_context(instance=instance, resources=resources) as context:
            tick = koku_parquet_sensor(context)
        for request in tick.dynamic_partitions_requests:
            instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
        (request,) = tick.run_requests
        assert _execute(
            instance, summary_job, {**request.tags, "dagster/partition": str(request.partition_key)}
        ).success
        with psycopg.connect(dagster_home["OCP_ASSETS_DSN"], autocommit=True) as conn:
            store_cost_model(conn, schema, source, TIERED_RATES)
        key = str(month_key(CLUSTER, OCTOBER))

        result = _execute(instance, cost_job, {"dagster/partition": key})

        assert result.success
        assert instance.get_materialized_partitions(dg.AssetKey(COSTS_ASSET)) == {key}
        evaluations = [
            e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"
        ]
        assert {e.check_name for e in evaluations} == set(COST_CHECKS) and all(e.passed for e in evaluations)
    env = CostEnv(dagster_home["OCP_ASSETS_DSN"], schema, "", data, source, instance)
    assert _found_costs(env.cost_rows()) == EXPECTED_COSTS
