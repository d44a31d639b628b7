"""One koku file call end to end: its inputs read (Parquet once per month and table, summary rows from the open
transaction, so a call sees what the calls before it inserted, as in koku), its rows computed.

``compute`` is the registry of section 8's files: koku's file name -> the function that gives the rows the file
inserts (C3). Nothing here writes; ``month.py`` and the koku-sql command do, through ``store``.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import psycopg
import pyarrow as pa

from ocp_assets.core.costs import gpu, inputs, project, vm
from ocp_assets.core.costs.params import CallParams
from ocp_assets.core.errors import ConfigurationError
from ocp_assets.core.storage import DataRoot

TMP_TABLE_FILES = ("populate_vm_tmp_table_with_vm_report.sql", "populate_vm_tmp_table.sql")


@dataclass
class CallInputs:
    """Where a call's inputs are: the data root and account of the Parquet, the transaction and schema of the
    summary. Line items are read once per (table, month) and kept: they do not change during a run."""

    root: DataRoot
    account: str
    conn: psycopg.Connection
    schema: str
    _months: dict[tuple, pa.Table] = field(default_factory=dict)

    def month(self, what: str, params: CallParams, read: Callable[..., inputs.MonthRows]) -> pa.Table:
        key = (what, params.source_uuid, params.year, params.month)
        if key not in self._months:
            self._months[key] = read(self.root, self.account, params.source_uuid, params.year, params.month).table
        return self._months[key]

    def vm_raw(self, params: CallParams) -> pa.Table:
        return self.month("vm raw", params, lambda *a: inputs.read_vm_usage(*a, daily=False))

    def vm_daily(self, params: CallParams) -> pa.Table:
        return self.month("vm daily", params, lambda *a: inputs.read_vm_usage(*a, daily=True))

    def gpu_daily(self, params: CallParams) -> pa.Table:
        return self.month("gpu daily", params, inputs.read_gpu_usage_daily)

    def vm_summary(self, params: CallParams) -> pa.Table:
        return inputs.read_summary_vm_rows(self.conn, self.schema, report_period_id=params.report_period_id)


def _project(params: CallParams, given: CallInputs) -> pa.Table:
    labels = given.month("namespace labels daily", params, project.read_namespace_labels_daily)
    nodes = project.read_namespace_nodes(
        given.conn, given.schema, params.source_uuid, params.start_date, params.end_date
    )
    return project.monthly_project_tag_based(params, labels, nodes)


def _gpu(params: CallParams, given: CallInputs) -> pa.Table:
    node_labels = given.month("node labels raw", params, inputs.read_node_labels_raw)
    categories = inputs.read_cost_categories(given.conn, given.schema)
    return gpu.monthly_cost_gpu(params, given.gpu_daily(params), node_labels, categories)


def _gpu_distribution(params: CallParams, given: CallInputs) -> pa.Table:
    # Read inside the transaction, after the GPU calls of the month inserted their unallocated rows.
    unallocated = inputs.read_gpu_unallocated_rows(
        given.conn, given.schema, params.source_uuid, params.start_date, params.end_date
    )
    return gpu.distribute_unallocated_gpu_cost(params, given.gpu_daily(params), unallocated)


def _tmp_without_report(params: CallParams, given: CallInputs) -> pa.Table:
    summary = inputs.read_summary_vm_rows(
        given.conn, given.schema, source_uuid=params.source_uuid, start=params.start_date, end=params.end_date
    )
    pods = given.month("pod labels daily", params, inputs.read_pod_labels_daily)
    claims = given.month("storage claims daily", params, inputs.read_storage_claims_daily)
    return vm.vm_tmp_rows_without_report(params, summary, pods, claims)


_FILES: dict[str, Callable[[CallParams, CallInputs], pa.Table]] = {
    "hourly_cost_virtual_machine.sql": lambda p, i: vm.hourly_cost_virtual_machine(p, i.vm_raw(p), i.vm_summary(p)),
    "hourly_vm_core.sql": lambda p, i: vm.hourly_vm_core(p, i.vm_raw(p), i.vm_summary(p)),
    "monthly_vm_core.sql": lambda p, i: vm.monthly_vm_core(p, i.vm_raw(p), i.vm_summary(p)),
    "hourly_cost_vm_tag_based.sql": lambda p, i: vm.hourly_cost_vm_tag_based(p, i.vm_raw(p), i.vm_summary(p)),
    "hourly_vm_core_tag_based.sql": lambda p, i: vm.hourly_vm_core_tag_based(p, i.vm_raw(p), i.vm_summary(p)),
    "monthly_vm_core_tag_based.sql": lambda p, i: vm.monthly_vm_core_tag_based(
        p, i.vm_raw(p), i.vm_daily(p), i.vm_summary(p)
    ),
    "monthly_project_tag_based.sql": _project,
    "monthly_cost_gpu.sql": _gpu,
    "distribute_unallocated_gpu_cost.sql": _gpu_distribution,
    "populate_vm_tmp_table_with_vm_report.sql": lambda p, i: vm.vm_tmp_rows_with_report(i.vm_raw(p)),
    "populate_vm_tmp_table.sql": _tmp_without_report,
}


def supported_files() -> tuple[str, ...]:
    return tuple(sorted(_FILES))


def compute(params: CallParams, given: CallInputs) -> pa.Table:
    """The rows koku's file `params.file` inserts for this call."""
    run = _FILES.get(params.file)
    if run is None:
        raise ConfigurationError(f"koku file {params.file!r} is not computed by ocp_assets").with_hint(
            f"one of {', '.join(supported_files())}"
        )
    return run(params, given)
