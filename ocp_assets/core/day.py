"""One cluster-day's run: what is asked (``DayTask``), what happened (``DayResult``), and ``DayRun``, the record a run
fills stage by stage (checks, stage facts, snapshots, the input error that stopped a branch).

``core/pipeline.py`` runs the stages; this module only records them, so every stage reads the same few verbs:
``read`` an input, ``check`` it, mark a stage ``done``, ``finish`` a summary that was committed or rehearsed.
"""

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

import pyarrow as pa

from ocp_assets.core import outcomes as O
from ocp_assets.core.errors import InputDataError, OcpAssetsError
from ocp_assets.core.identity import ClusterDay
from ocp_assets.core.outcomes import CheckOutcome
from ocp_assets.core.reader import ClusterData, look_for_cluster_data
from ocp_assets.core.storage import DataRoot, S3Settings, open_data_root
from ocp_assets.core.transaction import Replaced
from ocp_assets.core.validation import input_error_outcome
from ocp_assets.core.writer import WriteResult

Read = TypeVar("Read")
REHEARSAL = "written and checked, then rolled back: PostgreSQL keeps its previous rows"


@dataclass(frozen=True)
class DayTask:
    """One cluster-day to run: ``key`` is how the caller names it (the Dagster partition key)."""

    key: str
    cluster_day: ClusterDay
    schema: str
    # The last stage to run in each branch (one stage name, or one per branch); in a branch, the earlier stages
    # always run, each feeds the next. A branch none of them names is not run.
    through: str | tuple[str, ...] = O.SUMMARY_STAGES
    snapshot_path: str | None = None  # where the stage tables go below the snapshot root (e.g. cluster=a/day=...)
    # False: a rehearsal. The summary is written and checked inside a transaction that is then rolled back, so
    # its checks are evaluated on the current Parquet and PostgreSQL keeps what it had (checks run on their own).
    # A collection of summary stages: those are committed, the others run are rehearsed.
    commit: bool | frozenset[str] = True
    # The run's one look for the cluster's Parquet (run_days takes it per cluster); None: looked for when a day
    # turns out empty. A day is summarised as empty (its rows removed) only when the cluster's data is there.
    cluster_data: ClusterData | None = None

    @property
    def last_stages(self) -> tuple[str, ...]:
        return O.last_stages((self.through,) if isinstance(self.through, str) else self.through)

    def commits(self, summary_stage: str) -> bool:
        return self.commit if isinstance(self.commit, bool) else summary_stage in self.commit


@dataclass
class DayOutcome:
    """The usage summary a cluster-day committed."""

    cluster_day: ClusterDay
    rows: pa.Table  # the rows written, as computed (float64 measures), tag mapping applied
    write: WriteResult
    rows_by_kind: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)
    # The rows as the summary aggregated them, before the tag mapping renamed label keys: koku's group keys, and
    # unallocated rows told apart by NULL pod_labels (a mapping can empty a Pod row's map to NULL, see tagmapping).
    summarised_rows: pa.Table | None = None


class CheckFailedError(OcpAssetsError):
    """A branch of a cluster-day (its usage or its GPU summary) whose checks failed: that summary was not changed
    (PostgreSQL keeps its previous rows); the other branch, committed in its own transaction, may have been written."""


def _branch_of_check(name: str) -> str:
    """The branch a check judges, named by its summary stage (``O.DAILY_SUMMARY`` or ``O.GPU_SUMMARY``)."""
    return O.BRANCH_OF[O.STAGE_OF_CHECK[name]][-1]


@dataclass
class DayResult:
    """What happened to one cluster-day: the stages that completed (with their facts) and every check evaluated.

    Its two branches commit separately: one may have been written while the other failed (``failures``).
    """

    key: str
    cluster_day: ClusterDay
    stages: dict[str, dict] = field(default_factory=dict)
    checks: dict[str, CheckOutcome] = field(default_factory=dict)
    no_data: bool = False
    # Per branch (keyed by its summary stage), the input error that stopped it, naming file, column and row.
    errors: dict[str, OcpAssetsError] = field(default_factory=dict)
    outcome: DayOutcome | None = None  # the usage rows written (None in a worker's result: they stay in the worker)
    seconds: dict[str, float] = field(default_factory=dict)
    # Why the GPU branch was skipped (koku's schema has no GPU summary table, decision G6); None when it ran.
    gpu_skipped: str | None = None

    @property
    def error(self) -> OcpAssetsError | None:
        """The first input error of the day (the usage branch's, which runs first, else the GPU branch's)."""
        return next(iter(self.errors.values()), None)

    @property
    def passed(self) -> bool:
        """No check failed its branch (a warning does not: ``warnings``)."""
        return not any(O.blocks(n, c) for n, c in self.checks.items())

    @property
    def warnings(self) -> dict[str, CheckOutcome]:
        """The day's warnings: legal but suspicious data, its summary written all the same."""
        return {n: c for n, c in self.checks.items() if O.warns(n, c)}

    def failures(self) -> dict[str, OcpAssetsError]:
        """Every failed branch (keyed by its summary stage, in branch order) and what stopped it: the input error
        naming file, column and row, else its first failed check. A failed branch kept its previous rows."""
        found: dict[str, OcpAssetsError] = {}
        for summary_stage in O.SUMMARY_STAGES:
            failed = [n for n, c in self.checks.items() if O.blocks(n, c) and _branch_of_check(n) == summary_stage]
            if failed:
                found[summary_stage] = self.errors.get(summary_stage) or CheckFailedError(
                    f"check {failed[0]}: {self.checks[failed[0]].description}"
                )
        return found

    @property
    def failed_checks(self) -> list[str]:
        return [name for name, c in self.checks.items() if O.blocks(name, c)]

    def first_failure(self) -> str:
        name = next(iter(self.failed_checks), None)
        return f"{name}: {self.checks[name].description}" if name else ""


class DayRun:
    """The running record of one cluster-day: checks and stages as they complete, snapshots of their tables."""

    def __init__(self, task: DayTask, snapshot_root: str | None, s3: S3Settings | None = None):
        self.task = task
        self.result = DayResult(task.key, task.cluster_day)
        self.snapshots = open_data_root(snapshot_root, s3) if snapshot_root and task.snapshot_path else None
        self.clock = time.perf_counter()
        self.cluster_data = task.cluster_data

    def read(self, check: str, read: Callable[[], Read]) -> Read | None:
        """An input read from koku's Parquet; None when it cannot be read (bad input): `check` then fails naming
        file, column and row, and its branch stops."""
        try:
            return read()
        except InputDataError as exc:
            self.reject(check, exc)
            return None

    def reject(self, check: str, exc: OcpAssetsError) -> None:
        """Input that cannot be read fails `check` and stops its branch."""
        self.fail(check, exc)
        self.check(check, input_error_outcome(exc))

    def emptiness_unproven(self, root: DataRoot, check: str) -> bool:
        """Whether the day, found without rows, may NOT be summarised as empty: none of its cluster's Parquet is
        under the data root (a wrong root, account or prefix reads as "no rows" too). Then `check` fails naming
        the data root, account and source, and the branch keeps its previous rows."""
        if self.cluster_data is None:
            cd = self.task.cluster_day
            self.cluster_data = look_for_cluster_data(root, cd.account, cd.source)
        if self.cluster_data.file is not None:
            return False
        exc = self.cluster_data.error()
        self.fail(check, exc)
        self.check(check, CheckOutcome(False, f"{exc} — {exc.hint}", {"data_root": self.cluster_data.data_root}))
        return True

    def check(self, name: str, outcome: CheckOutcome) -> bool:
        """Record a check's outcome; True when it passed. A failure located in a file stops its branch there."""
        self.result.checks[name] = outcome
        located = outcome.metadata.get("file") and outcome.metadata.get("reason")
        if not outcome.passed and located:
            meta = outcome.metadata
            column, row = meta.get("column"), meta.get("row")
            self.fail(
                name,
                InputDataError(
                    str(meta["reason"]),
                    file=str(meta["file"]),
                    column=column if isinstance(column, str) else None,
                    row=row if isinstance(row, int) else None,
                ),
            )
        return outcome.passed

    def fail(self, check: str, error: OcpAssetsError) -> None:
        """Record the input error that stops the branch of ``check`` (its first one)."""
        self.result.errors.setdefault(_branch_of_check(check), error)

    def wanted(self, stage: str) -> bool:
        branch = O.BRANCH_OF[stage]
        return any(last in branch and branch.index(stage) <= branch.index(last) for last in self.task.last_stages)

    def commits(self, summary_stage: str) -> bool:
        """Whether this run writes the summary for good (a run that stops before it never touches its rows)."""
        return self.wanted(summary_stage) and self.task.commits(summary_stage)

    def done(self, stage: str, facts: dict, tables: dict[str, pa.Table] | None = None) -> bool:
        """Record a completed stage; True when the day should go on to the next one."""
        now = time.perf_counter()
        self.result.seconds[stage] = round(now - self.clock, 4)
        self.clock = now
        if self.snapshots is not None and tables:
            snapshot = {}
            for name, table in tables.items():
                key = f"{stage}/{name}/{self.task.snapshot_path}.parquet"
                self.snapshots.write_parquet(key, table)
                snapshot[name] = self.snapshots.display(key)
            facts["snapshot"] = snapshot
        self.result.stages[stage] = facts
        return stage not in self.task.last_stages

    def finish(self, stage: str, replaced: Replaced, facts: Callable[[Replaced], dict]) -> bool:
        """Record a summary's checks and, when they passed, the stage with its `facts` (said a rehearsal when it was
        rolled back on purpose); True when it was committed."""
        for name, outcome in replaced.checks.items():
            self.check(name, outcome)
        if replaced.passed:
            shown = facts(replaced)
            if not replaced.committed:
                shown["rehearsal"] = REHEARSAL
            self.done(stage, shown)
        return replaced.committed

    def empty_branch(self, stages: tuple[str, ...], reason: str, rows_deleted: int | None) -> None:
        """A branch without data for the day: every wanted stage of it empty, its checks passed saying why, the rows
        its summary removed (koku's delete-then-insert with nothing to insert)."""
        for stage in stages:
            if not self.wanted(stage):
                break
            facts: dict = {"rows": 0, "no_data": reason}
            if stage in O.SUMMARY_STAGES:
                facts["rows_deleted"] = rows_deleted or 0
            self.result.stages[stage] = facts
            for name in O.CHECKS_BY_STAGE[stage]:
                self.result.checks.setdefault(name, CheckOutcome(True, f"{reason}: nothing to check", {"rows": 0}))
