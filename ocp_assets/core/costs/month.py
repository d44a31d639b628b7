"""A source's cost model applied to a date range without koku's workers: one transaction per cluster-month.

For each month piece of the range (koku's iter_summary_range_by_month) the piece's steps (plan.piece_steps: koku's
deletes, then the files of section 8 in koku's order) and then the month's GPU distribution (plan.distribution_steps)
run in one transaction, under the locks of the month's cluster-days (so no summary of those days is rewritten
half-way), through ``transaction.commit_or_rehearse``: the checks judge what was written, and a failed blocking
check rolls the month back, keeping its previous rows. One call (the koku-sql command) is ``run_one_call``.
"""

import datetime as dt
from dataclasses import dataclass, field

import psycopg
import pyarrow as pa

from ocp_assets.core.costs import calls, checks, gpu, plan, rates, store
from ocp_assets.core.costs.params import base_params, parse_params
from ocp_assets.core.identity import days_between
from ocp_assets.core.outcomes import CheckOutcome
from ocp_assets.core.storage import DataRoot
from ocp_assets.core.transaction import Replaced, commit_or_rehearse, lock, lock_cluster_day


@dataclass
class StepDone:
    """One step as it ran: a delete (rows removed) or a call (its rows, as computed and inserted)."""

    name: str
    params: dict
    deleted: int = 0
    rows: pa.Table | None = None

    @property
    def inserted(self) -> int:
        return 0 if self.rows is None else self.rows.num_rows


@dataclass
class MonthCosts:
    """What one cluster-month's transaction did (its steps in order) and the totals PostgreSQL holds after it."""

    source: str
    first: dt.date
    last: dt.date
    report_period_id: int | None
    steps: list[StepDone] = field(default_factory=list)
    read_back: dict[str, float] = field(default_factory=dict)
    # Why no file ran, when none could: no cost model assigned to the source, or no price list valid (8.2).
    model_state: str | None = None


def month_pieces(start: dt.date, end: dt.date) -> list[tuple[dt.date, dt.date]]:
    """koku's iter_summary_range_by_month: the range cut at month boundaries."""
    pieces, first = [], start
    while first <= end:
        last = min(end, plan.month_of(first)[1])
        pieces.append((first, last))
        first = last + dt.timedelta(days=1)
    return pieces


def costs_key(schema: str, source: str, month: dt.date) -> str:
    """The lock of a cluster-month's cost steps."""
    return f"{schema}/{source}/costs/{month.strftime('%Y-%m')}"


@dataclass
class CostRun:
    """One source's cost run: where its inputs are, the clock of the GPU distribution rule (C10), commit or not."""

    conn: psycopg.Connection
    schema: str
    root: DataRoot
    account: str
    source: str
    today: dt.date
    commit: bool = True

    def month(self, first: dt.date, last: dt.date) -> Replaced[MonthCosts]:
        """Apply the cost model to one month piece, in its own transaction."""
        given = calls.CallInputs(self.root, self.account, self.conn, self.schema)
        model = rates.load_cost_model(self.conn, self.schema, self.source)
        return commit_or_rehearse(
            self.conn,
            costs_key(self.schema, self.source, first),
            lambda: self._write_month(first, last, model, given),
            lambda done: checks.judge_month(self.conn, self.schema, done, given),
            commit=self.commit,
        )

    def _write_month(self, first: dt.date, last: dt.date, model, given: calls.CallInputs) -> MonthCosts:
        period = store.report_period(self.conn, self.schema, self.source, first)
        done = MonthCosts(self.source, first, last, None if period is None else period[0])
        if period is None:
            return done  # koku: "no report period for OCP provider", nothing to cost
        self._lock_month(first)
        done.model_state = _model_state(model, self.source, first)
        resolved = rates.resolve_rates(model, first)
        base = base_params(self.schema, self.source, first, last, period[0])
        for step in plan.piece_steps(resolved, base, plan.Cluster(period[1], period[2])):
            done.steps.append(self._run(step, given))
        for step in self._distribution(resolved, first, last):
            done.steps.append(self._run(step, given))
        done.read_back = checks.read_back(self.conn, self.schema, done)
        return done

    def _distribution(self, resolved: rates.ResolvedRates, first: dt.date, last: dt.date) -> list[plan.Step]:
        finalized = store.has_distributed_rows(self.conn, self.schema, self.source, *gpu.previous_month(self.today))
        run = gpu.gpu_distribution_run(
            first, last, self.today, gpu_unallocated=resolved.gpu_unallocated, previous_month_distributed=finalized
        )
        if run is None:
            return []
        period = store.report_period(self.conn, self.schema, self.source, run.start_date)
        if period is None:
            return []
        if run.start_date != first.replace(day=1):
            self._lock_month(run.start_date)
        return plan.distribution_steps(run, self.schema, self.source, period[0])

    def _lock_month(self, day: dt.date) -> None:
        # The month's cluster-day locks: a summary of one of its days waits for the costs, and the reverse.
        for each in days_between(*plan.month_of(day)):
            lock_cluster_day(self.conn, self.schema, self.source, each)
        lock(self.conn, costs_key(self.schema, self.source, day))

    def _run(self, step: plan.Step, given: calls.CallInputs) -> StepDone:
        if isinstance(step, plan.Delete):
            return StepDone(f"delete {step.kind}", step.params, deleted=store.delete(self.conn, self.schema, step))
        rows = calls.compute(parse_params(step.file, {**step.params, "schema": self.schema}), given)
        store.insert_cost_rows(self.conn, self.schema, rows)
        return StepDone(step.file, step.params, rows=rows)


def _model_state(model: rates.CostModel | None, source: str, first: dt.date) -> str | None:
    if model is None:
        return f"no cost model is assigned to source {source}"
    if rates.effective_price_list(model, first) is None:
        return f"the cost model of source {source} has no price list valid on {first}"
    return None


def apply_costs(run: CostRun, start: dt.date, end: dt.date) -> list[Replaced[MonthCosts]]:
    """Every month piece of [start, end], each in its own transaction, in date order."""
    return [run.month(first, last) for first, last in month_pieces(start, end)]


@dataclass
class CallDone:
    """What one koku-sql call inserted: into the summary, or into the VM tmp table `tmp_table`."""

    file: str
    rows: pa.Table
    tmp_table: str | None = None
    checks: dict[str, CheckOutcome] = field(default_factory=dict)


def run_one_call(
    conn: psycopg.Connection, schema: str, root: DataRoot, account: str, file: str, raw_params: dict
) -> CallDone:
    """One call of koku's file `file` with koku's parameter dict, as koku's accessor would execute it: the rows the
    file inserts, inserted in one transaction, nothing deleted (C3: koku runs its deletes before the call)."""
    params = parse_params(file, {**raw_params, "schema": schema})
    given = calls.CallInputs(root, account, conn, schema)
    with conn.transaction():
        rows = calls.compute(params, given)
        if file in calls.TMP_TABLE_FILES:
            store.insert_vm_tmp_rows(conn, schema, str(params.uuid), rows)
            return CallDone(file, rows, tmp_table=store.vm_tmp_table(str(params.uuid)))
        store.insert_cost_rows(conn, schema, rows)
    return CallDone(file, rows)
