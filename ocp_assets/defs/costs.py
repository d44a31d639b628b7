"""The cost model as a Dagster asset, partitioned by cluster x month, downstream of the daily summary.

    daily_summary (cluster x day) ──[the month's days]──> cost_model_costs (cluster x month) ──> PostgreSQL

One thin step over ``ocp_assets.core.costs.month``, the path of ``ocp-assets costs``: for each cluster-month of the
run, the cluster's source, account and tenant schema come from the cluster registry (as for the summary), and
``CostRun.month`` applies the source's cost model to the whole month in one transaction under the month's day
locks, judged by the checks of ``core/costs/checks.py``. A failed blocking check rolls that month back (koku keeps
its previous cost rows) and fails its partition; the other months of the run stand. Bad Parquet fails its month
naming the file, column and row. A month is recomputed when any of its days is summarised again
(``COSTS_AUTOMATION``, evaluated by ``cost_automation_sensor``), and by the UI's Materialize and backfills.

Nothing heavy is imported when the code location loads: the cost engine (pyarrow compute, pandera) is imported in
the step.
"""

import datetime as dt
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

import dagster as dg
import psycopg

from ocp_assets.core import outcomes as O
from ocp_assets.core.costs.checks import COST_CHECK_DESCRIPTIONS, COST_CHECKS
from ocp_assets.core.outcomes import CheckOutcome
from ocp_assets.core.pgschema import SUMMARY_TABLE
from ocp_assets.core.registry import ClusterRecord, UnknownClusterError
from ocp_assets.defs import checks as C
from ocp_assets.defs import metadata as M
from ocp_assets.defs.assets import BACKFILL_POLICY, RETRY_POLICY, TRANSIENT_ERRORS, day_error
from ocp_assets.defs.partitions import CLUSTER_DIMENSION, DAY_DIMENSION, MONTH_DIMENSION, split_month_key
from ocp_assets.defs.resources import KokuDataLake, SummaryDatabase

if TYPE_CHECKING:
    from ocp_assets.core.costs.month import MonthCosts
    from ocp_assets.core.storage import DataRoot
    from ocp_assets.core.transaction import Replaced

COSTS_GROUP = "ocp_costs"
COSTS_ASSET = "cost_model_costs"
COSTS_STEP = "apply_cost_model"
COSTS_SENSOR_NAME = "cost_automation_sensor"
COSTS_SENSOR_INTERVAL_SECONDS = 30

# A month's costs are recomputed whenever one of its days' summaries is written again (the sensor's runs, a
# backfill, a Materialize): Dagster's eager() without two of its parts. eager() considers only the latest month,
# so a re-summarised day of an earlier month would leave that month's costs stale; and it waits while any day of
# the month is missing, which a month always has when the cluster started reporting after its 1st or the month is
# still running (its days ahead are never summarised). Still never while a day of the month or the month itself is
# being computed.
COSTS_AUTOMATION = (
    dg.AutomationCondition.any_deps_updated().since_last_handled()
    & ~dg.AutomationCondition.any_deps_in_progress()
    & ~dg.AutomationCondition.in_progress()
).with_label("a day of the month summarised again")


def days_of_month() -> dg.PartitionMapping:
    """A cluster-month depends on the cluster's days of that month: the same cluster, the month's day window.

    Days outside the day partitions (before the window's first day, after today) are simply not there: the month
    of the window's first day and the current month have fewer days.
    """
    with warnings.catch_warnings():
        # MultiPartitionMapping and allow_nonexistent_upstream_partitions are beta in Dagster 1.13.
        warnings.simplefilter("ignore", dg.BetaWarning)
        return dg.MultiPartitionMapping(
            {
                CLUSTER_DIMENSION: dg.DimensionPartitionMapping(CLUSTER_DIMENSION, dg.IdentityPartitionMapping()),
                DAY_DIMENSION: dg.DimensionPartitionMapping(
                    MONTH_DIMENSION, dg.TimeWindowPartitionMapping(allow_nonexistent_upstream_partitions=True)
                ),
            }
        )


def cost_check_specs(partitions: dg.PartitionsDefinition) -> list[dg.AssetCheckSpec]:
    """One blocking spec per cost check, with the cluster x month partitions (each month has its own evaluation)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # partitions_def on an AssetCheckSpec is a preview in Dagster 1.13
        return [
            dg.AssetCheckSpec(
                name=name,
                asset=COSTS_ASSET,
                description=COST_CHECK_DESCRIPTIONS[name],
                blocking=True,
                partitions_def=partitions,
            )
            for name in COST_CHECKS
        ]


def cost_spec(partitions: dg.PartitionsDefinition) -> dg.AssetSpec:
    return dg.AssetSpec(
        key=COSTS_ASSET,
        description=f"koku's cost-model rows of a cluster-month in {SUMMARY_TABLE} (VM hourly, VM core hourly and "
        "monthly, tag-based, GPU and project costs, the GPU distribution), computed from koku's Parquet and the "
        "daily summary after koku's deletes, in koku's order, replaced in one transaction per month.",
        deps=[dg.AssetDep(O.DAILY_SUMMARY, partition_mapping=days_of_month())],
        group_name=COSTS_GROUP,
        kinds={"postgres"},
        partitions_def=partitions,
        skippable=True,  # each month is recorded by its own AssetMaterialization, never by an output value
        automation_condition=COSTS_AUTOMATION,
        metadata={"dagster/table_name": SUMMARY_TABLE},
    )


# ------------------------------------------------------------------ what a month's costs come to, for the UI
def month_metadata(done: "MonthCosts", status: str, seconds: float) -> dict:
    """One cluster-month's materialization metadata: numbers Dagster plots per partition, tables and lists."""
    from ocp_assets.core.costs.facts import month_facts

    facts = month_facts(done)
    metadata: dict[str, object] = {
        "status": status,
        "month": f"{done.first} .. {done.last}",
        "dagster/row_count": dg.MetadataValue.int(facts.rows),
        "rows_deleted": dg.MetadataValue.int(facts.deleted),
    }
    if done.report_period_id is not None:
        metadata["report_period_id"] = dg.MetadataValue.int(done.report_period_id)
    for kind in sorted(facts.cost_by_type):
        metadata[f"cost_{kind.lower()}"] = dg.MetadataValue.float(round(facts.cost_by_type[kind], M.DECIMALS))
    if facts.files:
        metadata["files"] = M.records_table([{"file": name, **values} for name, values in facts.files.items()])
    for name, values in (("vms", facts.vms), ("gpu_models", facts.gpu_models), ("namespaces", facts.namespaces)):
        metadata[f"{name}_costed"] = dg.MetadataValue.int(len(values))
        if values:
            metadata[name] = dg.MetadataValue.md("\n".join(f"- `{v}`" for v in sorted(values)[: M.MAX_TABLE_ROWS]))
    metadata["seconds"] = dg.MetadataValue.float(round(seconds, 3))
    return metadata


# ------------------------------------------------------------------ checks
def _by_row_class(read_back: dict) -> dict[str, dict[str, float]]:
    """{'hourly rows': 3, 'hourly cost_model_cpu_cost': 8.0, ...} -> {'hourly': {'rows': 3, ...}, ...}: a table."""
    table: dict[str, dict[str, float]] = {}
    for key, value in read_back.items():
        kind, _, measure = key.partition(" ")
        table.setdefault(kind, {})[measure] = value
    return table


def cost_evaluation(
    name: str, outcome: CheckOutcome, partition: str, target: C.Target | None
) -> dg.AssetCheckEvaluation:
    """One cost check's outcome on one cluster-month (blocking: a failure rolled the month back)."""
    shown = outcome.metadata
    if isinstance(read_back := shown.get("read_back"), dict):
        shown = {**shown, "read_back": _by_row_class(read_back)}
    return dg.AssetCheckEvaluation(
        target_materialization_data=target,
        asset_key=dg.AssetKey(COSTS_ASSET),
        check_name=name,
        passed=outcome.passed,
        metadata=M.check_metadata(replace(outcome, metadata=shown)),
        description=outcome.description[: C.MAX_DESCRIPTION],
        blocking=True,
        severity=dg.AssetCheckSeverity.ERROR,
        partition=partition,
    )


def explained(checks: dict[str, CheckOutcome], status: str) -> dict[str, CheckOutcome]:
    """A month with nothing to cost passes its checks saying why there was nothing to judge."""
    return {
        name: replace(outcome, description=f"{status}. {outcome.description}") if outcome.passed else outcome
        for name, outcome in checks.items()
    }


# ------------------------------------------------------------------ the step
@dataclass
class RunMonths:
    """What a run asked for: its cluster-months, whether they are written (else rehearsed), the checks selected."""

    keys: list[str]
    commit: bool
    checks: set[str]  # names of the selected checks


def run_months(context: dg.AssetExecutionContext) -> RunMonths:
    """The run's cluster-months. Written when the asset is selected for partitions; the checks executed alone (a
    check's Execute) rehearse the write of the chosen months, or of every materialized month, and roll it back."""
    checks = {key.name for key in context.selected_asset_check_keys}
    partitioned = context.has_partition_key or context.has_partition_key_range
    if partitioned:
        keys = [str(key) for key in context.partition_keys]
    else:
        keys = sorted(context.instance.get_materialized_partitions(dg.AssetKey(COSTS_ASSET)))
        context.log.info(f"no partition chosen: the selected checks judge the {len(keys)} materialized month(s)")
    commit = partitioned and dg.AssetKey(COSTS_ASSET) in context.selected_asset_keys
    return RunMonths(keys, commit, checks)


@dataclass
class MonthRun:
    """Where one run's months are read and written, and the clock of the GPU distribution rule (C10)."""

    conn: psycopg.Connection
    db: SummaryDatabase
    root: "DataRoot"
    today: dt.date
    commit: bool
    records: dict[str, ClusterRecord] = field(default_factory=dict)

    def record(self, cluster_id: str) -> ClusterRecord:
        """The registry's row of the cluster; an unknown cluster fails the run at once, unretried."""
        if cluster_id not in self.records:
            try:
                self.records[cluster_id] = self.db.registry.cluster(self.conn, cluster_id)
            except UnknownClusterError as exc:
                raise dg.Failure(description=str(exc), allow_retries=False) from None
        return self.records[cluster_id]

    def costs(self, key: str) -> "tuple[Replaced[MonthCosts], str]":
        """The month's cost model applied through the CLI's core call, and what it did in a sentence."""
        from ocp_assets.core.costs import month as cost_month
        from ocp_assets.core.costs.facts import month_status
        from ocp_assets.core.costs.plan import month_of

        cluster_id, first = split_month_key(key)
        record = self.record(cluster_id)
        run = cost_month.CostRun(
            self.conn, record.schema, self.root, record.account, record.source, self.today, commit=self.commit
        )
        replaced = run.month(*month_of(first))
        status = month_status(replaced.written)
        if status != "costed":
            replaced.checks = explained(replaced.checks, status)
        return replaced, status


def month_events(
    instance: dg.DagsterInstance,
    key: str,
    replaced: "Replaced[MonthCosts]",
    checks: set[str],
    status: str,
    seconds: float,
) -> Iterator:
    """One cluster-month's materialization (when committed: not in a rehearsal, nor when a failed check rolled it
    back) and its evaluations of the selected `checks`, each naming the partition's latest materialization (stored by
    the time the generator resumes), as the summary's do."""
    if replaced.committed:
        yield dg.AssetMaterialization(
            asset_key=COSTS_ASSET, partition=key, metadata=month_metadata(replaced.written, status, seconds)
        )
    target = C.latest_materialization(instance, COSTS_ASSET, key)
    for name, outcome in replaced.checks.items():
        if name in checks:
            yield cost_evaluation(name, outcome, key, target)


def failed_month_events(key: str, exc: Exception, checks: set[str]) -> Iterator:
    """A month that raised (bad Parquet, bad parameters): a failed evaluation of the first selected check naming it."""
    selected = [name for name in COST_CHECKS if name in checks]
    if selected:
        outcome = CheckOutcome(False, f"not written, PostgreSQL keeps its previous rows: {day_error(exc)}")
        yield cost_evaluation(selected[0], outcome, key, None)


def apply_cost_model(context: dg.AssetExecutionContext, koku_db: SummaryDatabase, koku_lake: KokuDataLake) -> Iterator:
    """The step: each cluster-month of the run in its own transaction, recorded month by month."""
    asked = run_months(context)
    failed: list[str] = []
    with koku_db.connect() as conn:
        run = MonthRun(conn, koku_db, koku_lake.root(), dt.datetime.now(dt.UTC).date(), asked.commit)
        for key in asked.keys:
            started = time.perf_counter()
            try:
                replaced, status = run.costs(key)
            except (dg.Failure, *TRANSIENT_ERRORS):
                # An unknown cluster fails the run at once; a transient error is retried by the retry policy (the
                # step runs every month again, each replaced idempotently).
                raise
            except Exception as exc:  # bad Parquet, bad parameters, rows PostgreSQL refuses: this month's alone
                failed.append(f"{key}: not written, {day_error(exc)}")
                yield from failed_month_events(key, exc, asked.checks)
                continue
            seconds = time.perf_counter() - started
            yield from month_events(context.instance, key, replaced, asked.checks, status, seconds)
            if not replaced.passed:
                names = [name for name, outcome in replaced.checks.items() if O.blocks(name, outcome)]
                failed.append(f"{key}: rolled back, PostgreSQL keeps its previous rows; failed: {', '.join(names)}")
            context.log.info(f"{key}: {status}")
    for check_key in context.selected_asset_check_keys:
        yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(check_key))
    if failed:
        raise dg.Failure(description="\n".join(failed), allow_retries=False)


def cost_asset(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """The cost model's step over the cluster x month `partitions` (built with the code location)."""
    return dg.multi_asset(
        name=COSTS_STEP,
        specs=[cost_spec(partitions)],
        check_specs=cost_check_specs(partitions),
        can_subset=True,
        partitions_def=partitions,
        backfill_policy=BACKFILL_POLICY,
        retry_policy=RETRY_POLICY,
    )(apply_cost_model)


cost_automation_sensor = dg.AutomationConditionSensorDefinition(
    COSTS_SENSOR_NAME,
    target=dg.AssetSelection.assets(COSTS_ASSET),
    default_status=dg.DefaultSensorStatus.STOPPED,
    minimum_interval_seconds=COSTS_SENSOR_INTERVAL_SECONDS,
    description="Recomputes a cluster-month's costs when one of its days' summaries has been written again.",
)
