"""The validation suite as asset checks: one partitioned check spec per check, evaluated per partition.

The check names, what each verifies and which stage it judges are ``ocp_assets.core.outcomes``; the checks
themselves are pure functions (``core.validation``: pandera models; ``core.consistency``: koku's invariants)
that ``core.pipeline`` runs inside the step of the stage they judge (a separate @asset_check would be one more
step per run). Every spec carries the assets' partitions, so each cluster-day gets its own evaluation, shown on
that partition's page. A failed one means that cluster-day's summary of the check's branch was not written and
koku keeps its previous rows there; the other branch (usage or GPU summary) is committed in its own transaction,
and its result stands. The warning tier (``outcomes.WARNING_CHECKS``: usage above capacity, negative unallocated
rows, a thin day) is not blocking: a failed one is recorded with severity WARN (a warning in the UI) and the
summary is written and materialized all the same.
"""

import warnings

import dagster as dg

# Private: the only way to say which materialization an evaluation judged (AssetCheckResult finds it itself, but
# only for the run's one partition). Without it Dagster shows every partition's check as never evaluated.
from dagster._core.definitions.asset_checks.asset_check_evaluation import (
    AssetCheckEvaluationTargetMaterializationData as Target,
)

from ocp_assets.core import outcomes as O
from ocp_assets.core.outcomes import CheckOutcome
from ocp_assets.defs.metadata import check_metadata

MAX_DESCRIPTION = 2000


def check_specs(partitions: dg.PartitionsDefinition) -> list[dg.AssetCheckSpec]:
    """One spec per check, with the assets' partitions (built with them, ``ocp_assets.definitions``)."""
    with warnings.catch_warnings():
        # partitions_def on an AssetCheckSpec is a preview in Dagster 1.13: it scopes an evaluation to a partition.
        warnings.simplefilter("ignore")
        return [
            dg.AssetCheckSpec(
                name=name,
                asset=stage,
                description=O.CHECK_DESCRIPTIONS[name],
                blocking=name not in O.WARNING_CHECKS,
                partitions_def=partitions,
            )
            for stage, names in O.CHECKS_BY_STAGE.items()
            for name in names
        ]


def latest_materialization(instance: dg.DagsterInstance, asset: str, partition: str) -> Target | None:
    """The partition's latest materialization of `asset`, as the target of the checks evaluated on it."""
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset), asset_partitions=[partition]), limit=1
    ).records
    if not records:
        return None
    return Target(storage_id=records[0].storage_id, run_id=records[0].run_id, timestamp=records[0].timestamp)


def evaluation(
    name: str, outcome: CheckOutcome, partition: str, target: Target | None = None
) -> dg.AssetCheckEvaluation:
    """One check's outcome on one cluster-day, as the evaluation Dagster records for that partition."""
    warning = name in O.WARNING_CHECKS
    return dg.AssetCheckEvaluation(
        target_materialization_data=target,
        asset_key=dg.AssetKey(O.STAGE_OF_CHECK[name]),
        check_name=name,
        passed=outcome.passed,
        metadata=check_metadata(outcome),
        description=outcome.description[:MAX_DESCRIPTION],
        blocking=not warning,
        severity=dg.AssetCheckSeverity.WARN if warning else dg.AssetCheckSeverity.ERROR,
        partition=partition,
    )
