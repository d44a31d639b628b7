"""The summary as software-defined assets, partitioned by cluster x day: one thin step over ocp_assets.core.pipeline.

    koku/pod_usage ───────> raw_pod_usage ─────┬──────────────────────────────┐
    koku/storage_usage ───> raw_storage_usage ─┼─> merged_label_chunks ──> daily_summary ──> PostgreSQL
    koku/node_labels ─────┬> deduplicated_labels ┘
    koku/namespace_labels ┘
    koku/gpu_usage ───────> raw_gpu_usage ───────────────────────────────────> gpu_summary ───> PostgreSQL

The stages and the two summaries are one multi-asset (one step): whatever is selected (one asset, the group, a
partition, a range, "All"), the step runs every cluster-day from koku's Parquet through each branch (usage, GPU)
up to the last stage selected in it, so nothing is ever summarised from tables older than the Parquet and no
selection needs another asset materialized first. Each partition gets its own materialization per selected
asset, with its own numbers, and its own evaluation of every selected check; a partition that fails a check
fails alone, the others of the same run are written and recorded. Each cluster-day's usage summary is replaced in
one transaction and its GPU summary in another, after it (as koku's UI-summary step follows the daily summary),
never a range run as a whole: a failed branch keeps its previous rows, the other branch's result stands (and is
recorded as materialized).
"""

import time
import warnings
from collections.abc import Generator, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

import dagster as dg
import psycopg

from ocp_assets.core import outcomes as O
from ocp_assets.core.errors import OcpAssetsError
from ocp_assets.core.layout import (
    GPU_USAGE,
    NAMESPACE_LABELS,
    NODE_LABELS,
    POD_USAGE,
    STORAGE_USAGE,
)
from ocp_assets.core.pgschema import GPU_SUMMARY_TABLE, SUMMARY_TABLE
from ocp_assets.core.registry import ClusterRecord, UnknownClusterError, cluster_contradiction
from ocp_assets.defs import checks as C
from ocp_assets.defs import metadata as M
from ocp_assets.defs.partitions import key_path, split_key
from ocp_assets.defs.resources import KokuDataLake, SummaryDatabase, SummaryEngine

if TYPE_CHECKING:
    from ocp_assets.core.pipeline import Connections, DayResult, DayTask

# backfill_policy on a multi-asset is beta in 1.13; the policy itself is what docs/dagster.md measured.
warnings.filterwarnings("ignore", message=".*backfill_policy.*", category=dg.BetaWarning)

GROUP = "ocp_summary"
KOKU_GROUP = "koku_parquet"
STEP_NAME = "summarize"

# The sensor puts at most this many contiguous days of a cluster in one run.
MAX_PARTITIONS_PER_RUN = 31
# A backfill (and `dagster asset materialize --partition-range`, which requires it) runs a range in one run: a bad
# day fails only itself, and a run pays Dagster's start-up once (docs/dagster.md).
BACKFILL_POLICY = dg.BackfillPolicy.single_run()
# Transient failures only (PostgreSQL restarts, S3 hiccups): bad input and rows PostgreSQL rejects fail a check
# instead of raising, a failed blocking check is not retried, and any other error the step raises names its day
# and fails the step without retry (``day_error``).
RETRY_POLICY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)
# What a retry can fix: a lost or refused connection to PostgreSQL, storage (a local file system or S3) failing.
TRANSIENT_ERRORS = (psycopg.OperationalError, psycopg.InterfaceError, OSError)

# ------------------------------------------------------------------ koku's Parquet, read by the stages
KOKU_DATASETS = {
    POD_USAGE: "pod usage, hourly and daily (data/parquet[/daily]/<account>/OCP/pod_usage/source=<uuid>/...)",
    STORAGE_USAGE: "storage usage, daily (data/parquet/daily/<account>/OCP/storage_usage/source=<uuid>/...)",
    NODE_LABELS: "node labels, hourly and daily",
    NAMESPACE_LABELS: "namespace labels, hourly and daily",
    GPU_USAGE: "GPU usage, hourly (data/parquet/<account>/OCP/gpu_usage/source=<uuid>/...)",
}


def koku_parquet_specs(partitions: dg.PartitionsDefinition) -> list[dg.AssetSpec]:
    """koku's datasets, external: Dagster shows them as the stages' sources and never runs them."""
    return [
        dg.AssetSpec(
            key=["koku", name],
            description=f"koku's OpenShift Parquet, written by koku's processor or `ocp-assets ingest`: {text}",
            group_name=KOKU_GROUP,
            kinds={"parquet", "s3"},
            partitions_def=partitions,
        )
        for name, text in KOKU_DATASETS.items()
    ]


KOKU_KEY = {name: dg.AssetKey(["koku", name]) for name in KOKU_DATASETS}

STAGE_DEPS = {
    O.RAW_POD_USAGE: [KOKU_KEY[POD_USAGE]],
    O.RAW_STORAGE_USAGE: [KOKU_KEY[STORAGE_USAGE]],
    O.DEDUPLICATED_LABELS: [KOKU_KEY[NODE_LABELS], KOKU_KEY[NAMESPACE_LABELS]],
    O.MERGED_LABEL_CHUNKS: [O.RAW_POD_USAGE, O.RAW_STORAGE_USAGE, O.DEDUPLICATED_LABELS],
    O.DAILY_SUMMARY: [O.MERGED_LABEL_CHUNKS, O.RAW_POD_USAGE],
    O.RAW_GPU_USAGE: [KOKU_KEY[GPU_USAGE]],
    O.GPU_SUMMARY: [O.RAW_GPU_USAGE],
}
# The koku tables the summary stages write, shown as each asset's table and column schema.
SUMMARY_TABLE_METADATA = {
    O.DAILY_SUMMARY: {"dagster/column_schema": M.summary_column_schema(), "dagster/table_name": SUMMARY_TABLE},
    O.GPU_SUMMARY: {"dagster/column_schema": M.gpu_summary_column_schema(), "dagster/table_name": GPU_SUMMARY_TABLE},
}


def stage_specs(partitions: dg.PartitionsDefinition) -> list[dg.AssetSpec]:
    return [
        dg.AssetSpec(
            key=stage,
            description=M.STAGE_DESCRIPTIONS[stage],
            deps=STAGE_DEPS[stage],
            group_name=GROUP,
            partitions_def=partitions,
            skippable=True,  # each partition is recorded by its own AssetMaterialization, never by an output value
            kinds={"postgres"} if stage in O.SUMMARY_STAGES else {"pyarrow"},
            metadata=SUMMARY_TABLE_METADATA.get(stage, {}),
        )
        for stage in O.STAGES
    ]


def run_partition_keys(context: dg.AssetExecutionContext) -> list[str]:
    """The run's cluster-days. A run without partitions (a check's Execute or Execute all) evaluates the checks on
    every cluster-day whose summary has been materialized, as a rehearsal (nothing is written)."""
    if context.has_partition_key or context.has_partition_key_range:
        return [str(k) for k in context.partition_keys]
    # The cluster-days whose summary (of each branch a selected check judges) has been materialized.
    judged = {O.STAGE_OF_CHECK[key.name] for key in context.selected_asset_check_keys}
    summaries = {O.BRANCH_OF[stage][-1] for stage in judged} or {O.DAILY_SUMMARY}
    keys = sorted(set().union(*(context.instance.get_materialized_partitions(dg.AssetKey(s)) for s in summaries)))
    context.log.info(
        f"no partition chosen: evaluating the selected checks on the {len(keys)} materialized cluster-day(s)"
    )
    return keys


def resolve_partitions(
    context: dg.AssetExecutionContext, db: SummaryDatabase
) -> tuple[list[tuple[str, ClusterRecord]], list[str]]:
    """(partition key, registry row) for every partition of the run that may be written, and what refuses the others.

    An unknown cluster fails the run at once, unretried. A cluster whose koku source ``reporting_ocp_clusters``
    records under another cluster id is refused (its rows would go under the wrong id, koku's cluster row kept):
    its partitions are left out and named, the caller fails them without retry (as the CLI refuses it).
    """
    records: dict[str, ClusterRecord] = {}
    contradictions: dict[str, str | None] = {}
    refused_keys: dict[str, list[str]] = {}
    out = []
    with db.connect() as conn:
        for key in run_partition_keys(context):
            cluster_id, _ = split_key(key)
            if cluster_id not in records:
                try:
                    records[cluster_id] = db.registry.cluster(conn, cluster_id)
                except UnknownClusterError as exc:
                    raise dg.Failure(description=str(exc), allow_retries=False) from None
                record = records[cluster_id]
                found = cluster_contradiction(conn, record.schema, record.source, cluster_id)
                contradictions[cluster_id] = found[1] if found else None
            if contradictions[cluster_id] is not None:
                refused_keys.setdefault(cluster_id, []).append(key)
                continue
            out.append((key, records[cluster_id]))
    refused = [
        f"{contradictions[cluster_id]}: {len(keys)} cluster-day(s) of {cluster_id!r} not written "
        f"({keys[0]}{' .. ' + keys[-1] if len(keys) > 1 else ''}); PostgreSQL keeps their previous rows"
        for cluster_id, keys in refused_keys.items()
    ]
    return out, refused


def partition_events(
    result: "DayResult", stages: set[str], checks: set[str], instance: dg.DagsterInstance | None = None
) -> Iterator:
    """One partition's materializations (its own numbers) and check evaluations, for what the run selected.

    With an instance, each evaluation names the materialization it judged (stored by the time the generator
    resumes): Dagster shows a partition's check as current only when it targets that partition's latest one.
    """
    for stage, facts in result.stages.items():
        if stage in stages:
            yield dg.AssetMaterialization(
                asset_key=stage,
                partition=result.key,
                metadata=M.stage_metadata(stage, facts, result.seconds.get(stage)),
            )
    targets: dict[str, C.Target | None] = {}
    for name, outcome in result.checks.items():
        if name in checks:
            stage = O.STAGE_OF_CHECK[name]
            if stage not in targets:
                targets[stage] = C.latest_materialization(instance, stage, result.key) if instance is not None else None
            yield C.evaluation(name, outcome, result.key, targets[stage])


def settled_days(
    tasks: list["DayTask"], where: "Connections", workers: int
) -> Iterator[tuple["DayTask", "DayResult | Exception"]]:
    """Each task with its DayResult, or with the error it raised: a day that raises does not stop the others.

    run_days raises a worker's error at its day and cancels the days not started, while the days the other workers
    finished meanwhile are committed in PostgreSQL without their result. The days after the one that raised are
    run again (each cluster-day is replaced idempotently), so every committed day is recorded as materialized.
    """
    from ocp_assets.core.pipeline import run_days

    done = 0
    while done < len(tasks):
        try:
            for result in run_days(tasks[done:], where, workers=workers):
                yield tasks[done], result
                done += 1
        except Exception as exc:  # every error is its day's: the caller reports it
            yield tasks[done], exc
            done += 1


def day_error(exc: Exception) -> str:
    """One line naming what stopped a cluster-day: the file, column and row of bad input, else the error."""
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    return text if isinstance(exc, OcpAssetsError) else f"{type(exc).__name__}: {text}"


def failed_day_events(key: str, exc: Exception, stages: set[str], checks: set[str]) -> Iterator:
    """A cluster-day that raised instead of returning its result, shown red: a failed evaluation of the first
    selected check of each branch the run selected (the day's branches were not written), naming the error."""
    from ocp_assets.core.pipeline import input_error_outcome

    error = exc if isinstance(exc, OcpAssetsError) else OcpAssetsError(day_error(exc))
    outcome = input_error_outcome(error)
    outcome.description = f"not written, PostgreSQL keeps its previous rows: {day_error(exc)}"
    for branch in O.BRANCHES:
        selected = [name for stage in branch for name in O.CHECKS_BY_STAGE[stage] if name in checks]
        if selected and (stages & set(branch) or checks & set(selected)):
            yield C.evaluation(selected[0], outcome, key)


def raise_for_failed_days(raised: dict[str, Exception], refusal: str | None) -> None:
    """Fail the step, once all its days are recorded: retried for a transient error (the retry runs every day again,
    each replaced idempotently), else at once, naming each day that raised or the refused clusters."""
    transient = [exc for exc in raised.values() if isinstance(exc, TRANSIENT_ERRORS)]
    if transient:
        raise transient[0]
    # Retrying cannot help bad input, an error a retry would meet again, or a refused cluster (its registry row or
    # koku's cluster table must be corrected first).
    lines = [f"{key}: not written, {day_error(exc)}" for key, exc in raised.items()]
    if refusal is not None:
        lines.append(refusal)
    if lines:
        raise dg.Failure(description="\n".join(lines), allow_retries=False)


class RunSelection(NamedTuple):
    """What a run asked for: assets and checks by name, each branch's last stage to run, the summaries to commit."""

    stages: set[str]
    checks: set[str]
    through: tuple[str, ...]
    commit: frozenset[str]


def run_selection(context: dg.AssetExecutionContext) -> RunSelection:
    stages = {key.to_user_string() for key in context.selected_asset_keys}
    checks = {key.name for key in context.selected_asset_check_keys}
    through = O.last_stages(stages | {O.STAGE_OF_CHECK[name] for name in checks})
    # Checks executed without their asset (a check's "Execute" button) are evaluated on a rehearsal of the write:
    # a branch's summary is committed only when its asset is selected for a partition.
    partitioned = context.has_partition_key or context.has_partition_key_range
    commit = frozenset(s for s in O.SUMMARY_STAGES if s in stages) if partitioned else frozenset()
    return RunSelection(stages, checks, through, commit)


def refusal_text(refused: list[str], registry_schema: str) -> str:
    return (
        "\n".join(refused) + "\nCorrect the cluster record (cluster.json) to the recorded cluster id and delete the "
        f"other id's row from {registry_schema}.cluster_registry (the sensor then registers the source "
        "again), or correct koku's row if it is the wrong one"
    )


def day_tasks(
    context: dg.AssetExecutionContext,
    selection: RunSelection,
    koku_db: SummaryDatabase,
    koku_lake: KokuDataLake,
    summary_engine: SummaryEngine,
) -> "tuple[list[DayTask], Connections, str | None]":
    """The run's cluster-days as engine tasks, where they read and write, and what refuses the others (or None)."""
    # The engine (pyarrow compute, pandas, pandera) is imported here, in the step, not when the code location loads.
    from ocp_assets.core.pipeline import Connections, DayTask

    snapshot_root = summary_engine.snapshot_root or None
    resolved, refused = resolve_partitions(context, koku_db)
    refusal = refusal_text(refused, koku_db.registry_schema) if refused else None
    if refusal is not None and not resolved:
        raise dg.Failure(description=refusal, allow_retries=False)
    tasks = [
        DayTask(
            key,
            record.day(split_key(key)[1]),
            record.schema,
            selection.through,
            key_path(key) if snapshot_root else None,
            selection.commit,
        )
        for key, record in resolved
    ]
    where = Connections(
        dsn=koku_db.dsn,
        data_root=koku_lake.data_root,
        snapshot_root=snapshot_root,
        s3=koku_lake.s3_settings(koku_lake.data_root, snapshot_root),
    )
    return tasks, where, refusal


@dataclass
class RunTally:
    """What the run's cluster-days came to, for its closing log lines and its failure."""

    failed: list[str] = field(default_factory=list)  # one line per failed cluster-day
    raised: dict[str, Exception] = field(default_factory=dict)  # partition key -> the error its day raised
    empty: int = 0  # days without koku data (summarised as empty)
    gpu_skipped: dict[str, int] = field(default_factory=dict)  # why a GPU branch was skipped -> cluster-days


def day_events(
    context: dg.AssetExecutionContext,
    tasks: "list[DayTask]",
    where: "Connections",
    selection: RunSelection,
    workers: int,
) -> Generator[Any, None, RunTally]:
    """Run the cluster-days and yield each one's events as it finishes; returns the run's tally."""
    tally = RunTally()
    context.log.info(f"{len(tasks)} cluster-day(s) through {', '.join(selection.through)}, {workers} at a time")
    stages, checks = selection.stages, selection.checks
    for task, result in settled_days(tasks, where, workers):
        if isinstance(result, Exception):
            tally.raised[task.key] = result
            tally.failed.append(f"{task.key}: not written, {day_error(result)}")
            yield from failed_day_events(task.key, result, stages, checks)
            continue
        yield from partition_events(result, stages, checks, context.instance)
        if not result.passed:
            failures = result.failures().items()
            tally.failed.append(f"{result.key}: " + "; ".join(f"{stage} not written, {exc}" for stage, exc in failures))
        tally.empty += result.no_data and result.passed  # a day without usage data whose GPU branch failed fails
        if result.gpu_skipped:
            tally.gpu_skipped[result.gpu_skipped] = tally.gpu_skipped.get(result.gpu_skipped, 0) + 1
    return tally


def log_tally(context: dg.AssetExecutionContext, tally: RunTally, days: int, seconds: float) -> None:
    for reason, count in tally.gpu_skipped.items():  # once per run, not per partition (decision G6)
        context.log.warning(f"{reason} for {count} cluster-day(s)")
    summarised = days - len(tally.failed) - tally.empty
    context.log.info(
        f"{days} cluster-day(s) in {seconds:.2f}s: {summarised} summarised, {tally.empty} without koku data, "
        f"{len(tally.failed)} failed"
    )
    if tally.failed:
        # The failed blocking evaluations fail the step after this; the partitions recorded above stay materialized.
        context.log.error(
            "failed cluster-days (each failed summary keeps its previous rows; the day's other summary stands):\n"
            + "\n".join(tally.failed)
        )


def summarize(
    context: dg.AssetExecutionContext, koku_db: SummaryDatabase, koku_lake: KokuDataLake, summary_engine: SummaryEngine
) -> Iterator:
    """The step: every cluster-day of the run through each selected branch, recorded partition by partition."""
    started = time.perf_counter()
    selection = run_selection(context)
    tasks, where, refusal = day_tasks(context, selection, koku_db, koku_lake, summary_engine)
    workers = summary_engine.workers_now(context.instance, len(tasks))
    tally = yield from day_events(context, tasks, where, selection, workers)
    log_tally(context, tally, len(tasks), time.perf_counter() - started)
    # Each selected check's output, once: the evaluations above are per partition, these only tell the step that
    # every check it was asked for ran (without them Dagster logs that the step "did not yield expected outputs").
    for key in context.selected_asset_check_keys:
        yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_check_key(key))
    raise_for_failed_days(tally.raised, refusal)


def summary_asset(partitions: dg.PartitionsDefinition) -> dg.AssetsDefinition:
    """The stages and both summaries as one multi-asset step over `partitions` (built with the code location)."""
    return dg.multi_asset(
        name=STEP_NAME,
        specs=stage_specs(partitions),
        check_specs=C.check_specs(partitions),
        can_subset=True,
        partitions_def=partitions,
        backfill_policy=BACKFILL_POLICY,
        retry_policy=RETRY_POLICY,
    )(summarize)
