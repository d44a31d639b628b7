"""`python -m ocp_assets.quickstart` (`make demo`): sample koku data summarised through Dagster, then a short report.

1. PostgreSQL: ``$OCP_ASSETS_DSN`` if set, else the embedded server in ``<state>/pgdata`` (ocp_assets.local_postgres).
2. A sample of four clusters with nise (pod and storage usage, node and namespace labels; GPU and VM usage on one),
   cached: the nise payloads in ``<state>/nise-cache`` (or ``$OCP_ASSETS_CACHE``), the Parquet in
   ``<state>/demo-data``.
3. koku's tables (``db init``) in the tenant schema, with a few label keys enabled as koku's settings would.
4. One tick of ``koku_parquet_sensor``, as the UI's sensor would run it: it registers the clusters (the cluster
   registry, the Parquet file state) and adds their ``cluster`` partitions.
5. Every day of every sample cluster through Dagster, in the runs the sensor requests (one range run per cluster's
   contiguous days): the ``summarize_cluster_days`` job of ``ocp_assets.definitions`` with its executor (Dagster's
   multiprocess executor by default), started with ``execute_job`` on the PostgreSQL-stored instance in
   ``<state>/dagster-home`` that ``make ui`` opens. ``dagster asset materialize`` of the same range would load the
   code location again in a process of its own.
6. The report, read from PostgreSQL and from the runs' events. With ``--ui`` the Dagster UI is then served over the
   same data (Ctrl-C stops it); otherwise an embedded server started here is stopped.
"""

import argparse
import datetime as dt
import os
import sys
import time
from collections.abc import Generator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ocp_assets import local_postgres
from ocp_assets.dagster_console import console_log as new_console_log
from ocp_assets.dagster_console import console_to

ACCOUNT = "org1234567"  # the tenant schema koku would use for this account
DAGSTER_DATABASE = "dagster"
START_DATE = "2026-10-01"  # the first day of the sample's month: the day partitions start there
DATA_DIR, HOME_DIR, CACHE_DIR = "demo-data", "dagster-home", "nise-cache"
SCENARIO_DIR = Path(__file__).resolve().parent / "scenarios"
# Label keys enabled in koku's settings (reporting_enabledtagkeys): the summary keeps only these labels.
ENABLED_KEYS = ("app", "team", "env", "node_role_kubernetes_io", "storage_tier")
TOP_NAMESPACES = 5
JOB_NAME = "summarize_cluster_days"  # ocp_assets.defs.jobs.JOB_NAME, named here to print before Dagster loads
# The runs' events go to the instance (the UI shows them); the terminal gets warnings and errors only.
QUIET_CONSOLE = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


@dataclass(frozen=True)
class SampleCluster:
    cluster_id: str
    scale: str | None = None  # a shipped nise scale (ocp_assets.core.scales.SCALES) ...
    yaml: str | None = None  # ... or a nise YAML shipped in ocp_assets/scenarios
    about: str = ""


SAMPLE = (
    SampleCluster("demo-prod", scale="100k", about="10 nodes, 1,389 pods, 3 days"),
    SampleCluster("demo-dev", scale="20k", about="7 nodes, 278 pods, 3 days"),
    SampleCluster("demo-edge", yaml="smoke.yml", about="3 nodes, 3 pods, 2 days across a month end"),
    SampleCluster("demo-gpu", yaml="gpu_vm.yml", about="GPUs (dedicated and MIG) and a virtual machine, 1 day"),
)


# The cost model of demo-gpu (koku's tables, as koku's API stores it): its VM, GPUs and projects get costs.
COSTED_CLUSTER = "demo-gpu"


def sample_cost_model():
    from ocp_assets.core.costs.models import CostModelSpec, TagRate, TieredRate

    return CostModelSpec(
        name="demo GPU and VM prices",
        rates=(
            TieredRate("vm_cost_per_hour", "Infrastructure", "0.25"),
            TieredRate("vm_core_cost_per_hour", "Supplementary", "0.05"),
            TieredRate("vm_core_cost_per_month", "Infrastructure", "31"),
            TagRate("gpu_cost_per_month", "Infrastructure", "nvidia", {"H100": "3100", "A100 SXM4 40GB": "1000"}, "62"),
            TagRate("project_per_month", "Supplementary", "team", {"ml": "310"}, "31"),
        ),
        distribution_info={"distribution_type": "cpu", "gpu_unallocated": True},
    )


class Progress:
    """One line per step: its number, what it did, and the seconds since the command started."""

    def __init__(self, steps: int):
        self.steps, self.step, self.started = steps, 0, time.monotonic()

    def start(self, text: str) -> None:
        self.step += 1
        print(f"[{self.step}/{self.steps}] {text} ...", flush=True)

    def done(self, text: str) -> None:
        print(f"      {text} ({time.monotonic() - self.started:.1f} s)", flush=True)


def generate_sample(data_root: Path, cache_dir: Path, progress: Progress) -> None:
    from ocp_assets.core.generate import generate
    from ocp_assets.core.ingest import read_cluster_registry
    from ocp_assets.core.storage import open_data_root

    root = open_data_root(str(data_root))
    present = {c.cluster_id for c in read_cluster_registry(root)} if data_root.is_dir() else set()
    for cluster in SAMPLE:
        if cluster.cluster_id in present:
            progress.done(f"{cluster.cluster_id}: cached in {data_root}")
            continue
        result = generate(
            root,
            scale=cluster.scale,
            yaml_path=SCENARIO_DIR / cluster.yaml if cluster.yaml else None,
            cluster_id=cluster.cluster_id,
            account=ACCOUNT,
            cache_dir=cache_dir,
        )
        origin = "nise payload cached" if result.cache_hit else f"nise {result.nise_seconds:.1f} s"
        progress.done(f"{cluster.cluster_id} ({cluster.about}): {origin}, ingested in {result.ingest_seconds:.1f} s")


def init_tables(dsn: str) -> list[str]:
    from psycopg import sql

    from ocp_assets.core.database import connect
    from ocp_assets.core.pgschema import init_schema

    with connect(dsn) as conn:
        created = init_schema(conn, ACCOUNT)
        conn.execute(
            sql.SQL(
                "INSERT INTO {}.reporting_enabledtagkeys (key, enabled, provider_type)"
                " SELECT k, true, 'OCP' FROM unnest(%s::text[]) AS k"
                " WHERE NOT EXISTS (SELECT 1 FROM {}.reporting_enabledtagkeys e"
                " WHERE e.key = k AND e.provider_type = 'OCP')"
            ).format(sql.Identifier(ACCOUNT), sql.Identifier(ACCOUNT)),
            (list(ENABLED_KEYS),),
        )
    return created


def dagster_env(dsn: str, data_root: Path, home: Path) -> dict[str, str]:
    """What a run resolves from the environment: the instance (DAGSTER_HOME, its storage URL) and the resources'
    DSN and data root (``dg.EnvVar``s, resolved in the run's processes). The code location's settings are given
    explicitly (``definitions``)."""
    from ocp_assets.dagster_instance import dagster_instance_env
    from ocp_assets.defs.resources import DATA_ROOT_ENV, DSN_ENV

    return {
        "DAGSTER_HOME": str(home),
        DSN_ENV: dsn,
        DATA_ROOT_ENV: str(data_root),
        **dagster_instance_env(dsn, DAGSTER_DATABASE),
    }


def definitions():
    """The code location with the sample's settings: its day partitions start on the sample's first day."""
    from ocp_assets.definitions import build_definitions
    from ocp_assets.defs.settings import Settings

    return build_definitions(Settings(start_date=START_DATE))


def summary_job():
    """The job as the code location defines it (with its executor), rebuilt by Dagster in each process."""
    from ocp_assets.defs.jobs import JOB_NAME

    return definitions().resolve_job_def(JOB_NAME)


@dataclass
class RunOutcome:
    runs: list[tuple[str, str, bool, float]]  # cluster_id, run_id, success, seconds
    partitions_expected: set[str]
    partitions_materialized: set[str]
    checks_passed: int
    checks_total: int
    failed_checks: list[str]
    warnings: list[str]  # failed checks of the warning tier: the summary was written all the same


def sensor_days(instance, resources: dict, progress: Progress) -> dict[str, list[dt.date]]:
    """One sensor tick (registration, partitions); then every day the registry knows of each sample cluster."""
    import dagster as dg

    from ocp_assets.defs.partitions import CLUSTERS_PARTITIONS_NAME
    from ocp_assets.defs.sensors import koku_parquet_sensor, requested_days

    with dg.build_sensor_context(instance=instance, resources=resources) as context:
        tick = koku_parquet_sensor(context)
    assert isinstance(tick, dg.SensorResult), "koku_parquet_sensor returns one SensorResult"
    for request in tick.dynamic_partitions_requests or ():
        instance.add_dynamic_partitions(request.partitions_def_name, list(request.partition_keys))
    clusters = sorted(instance.get_dynamic_partitions(CLUSTERS_PARTITIONS_NAME))
    progress.done(
        f"sensor tick: clusters registered and partitioned: {', '.join(clusters)}"
        + (f"; {tick.skip_reason}" if tick.skip_reason else "")
    )
    first_day = resources["day_partitions"].first_day()
    days: dict[str, list[dt.date]] = {}
    # The resource as a run resolves it (its DSN comes from the environment).
    with dg.build_resources({"koku_db": resources["koku_db"]}) as built, built.koku_db.connect() as conn:
        db = built.koku_db
        # The registry's days, and the tick's: its file changes are marked seen only once a later tick finds
        # its runs, and this one's runs are this command's own.
        requested = requested_days(tick.run_requests or [])
        for cluster in SAMPLE:
            known = set(db.registry.known_days(conn, cluster.cluster_id)) | requested.get(cluster.cluster_id, set())
            days[cluster.cluster_id] = sorted(d for d in known if d >= first_day)
    return days


def execute(instance, job, tags: dict[str, str], cluster_id: str, span: str, progress: Progress) -> tuple[tuple, list]:
    """One run of `job` through execute_job, Dagster's output in the console log: the run (cluster, id, success,
    seconds) and its check evaluations; a progress line says how it ended."""
    import dagster as dg

    console_log = new_console_log(Path(instance.root_directory), "quickstart")
    started = time.monotonic()
    with console_to(console_log):
        result = dg.execute_job(job, instance, tags=tags, run_config=QUIET_CONSOLE, raise_on_error=False)
    seconds = time.monotonic() - started
    evaluations = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    status = "succeeded" if result.success else f"FAILED (Dagster's log: {console_log})"
    progress.done(f"run {result.run_id[:8]} {status}: {cluster_id} {span} in {seconds:.1f} s")
    return (cluster_id, result.run_id, result.success, seconds), evaluations


def run_days(instance, days: dict[str, list[dt.date]], progress: Progress) -> tuple[list[tuple], list]:
    """The sensor's run requests for every day of each cluster, each run through execute_job: (runs, evaluations)."""
    import dagster as dg

    # By module path, not __main__'s function: Dagster reloads the job from it in the step process.
    from ocp_assets import quickstart
    from ocp_assets.defs.sensors import run_requests_for

    job = dg.reconstructable(quickstart.summary_job)
    runs, evaluations = [], []
    for cluster_id, cluster_days in days.items():
        for request in run_requests_for(cluster_id, cluster_days, "quickstart"):
            tags = dict(request.tags)
            if request.partition_key:
                tags["dagster/partition"] = str(request.partition_key)
            span = f"{cluster_days[0]} .. {cluster_days[-1]}" if len(cluster_days) > 1 else str(cluster_days[0])
            run, checked = execute(instance, job, tags, cluster_id, span, progress)
            runs.append(run)
            evaluations += checked
    return runs, evaluations


def materialize(progress: Progress, dsn: str, data_root: Path) -> tuple[RunOutcome, RunOutcome]:
    """One sensor tick (registration, partitions), then every day of every sample cluster through execute_job.

    The runs are the sensor's own run requests (one range run per cluster's contiguous days) over every day the
    registry knows, not only the days whose files changed since the last tick: a second invocation materializes
    every partition again, as a backfill of "All" would.
    """
    import dagster as dg

    from ocp_assets.core.outcomes import DAILY_SUMMARY
    from ocp_assets.defs.partitions import partition_key

    defs = definitions()
    resources = {k: v for k, v in defs.resources.items() if k in ("koku_db", "koku_lake", "day_partitions")}
    with dg.DagsterInstance.get() as instance:
        days = sensor_days(instance, resources, progress)
        expected = {str(partition_key(c, d)) for c, ds in days.items() for d in ds}
        executor = defs.resolve_job_def(JOB_NAME).executor_def.name
        progress.start(
            f"Dagster runs of {JOB_NAME} ({executor} executor): {len(expected)} partitions of {len(days)} clusters"
        )
        runs, evaluations = run_days(instance, days, progress)
        materialized = {
            str(k) for k in instance.get_materialized_partitions(dg.AssetKey(DAILY_SUMMARY)) if str(k) in expected
        }
        progress.start(f"Dagster runs of the cost job: {COSTED_CLUSTER}'s cost model, month by month")
        costs = cost_months(instance, dsn, data_root, days, progress)

    def named(warning: bool) -> list[str]:
        return sorted(
            f"{e.asset_check_key.name} [{e.partition}]: {e.description}"
            for e in evaluations
            if not e.passed and (e.severity == dg.AssetCheckSeverity.WARN) == warning
        )

    summary = RunOutcome(
        runs,
        expected,
        materialized,
        sum(1 for e in evaluations if e.passed),
        len(evaluations),
        named(warning=False),
        named(warning=True),
    )
    return summary, costs


def cost_months(instance, dsn: str, data_root: Path, days: dict[str, list[dt.date]], progress: Progress) -> RunOutcome:
    """demo-gpu's cost model stored (once) and its months costed by Dagster runs of the cost job."""
    import dagster as dg

    from ocp_assets import quickstart
    from ocp_assets.core.costs.models import assigned_model, store_cost_model
    from ocp_assets.core.database import connect
    from ocp_assets.core.ingest import read_cluster_registry
    from ocp_assets.core.storage import open_data_root
    from ocp_assets.defs.partitions import month_key

    record = next(c for c in read_cluster_registry(open_data_root(str(data_root))) if c.cluster_id == COSTED_CLUSTER)
    with connect(dsn) as conn:
        if assigned_model(conn, ACCOUNT, record.source_uuid) is None:
            store_cost_model(conn, ACCOUNT, record.source_uuid, sample_cost_model())
    months = sorted({d.replace(day=1) for d in days.get(COSTED_CLUSTER, [])})
    job = dg.reconstructable(quickstart.costs_job)
    runs, evaluations, keys = [], [], set()
    for month in months:
        key = str(month_key(COSTED_CLUSTER, month))
        keys.add(key)
        span = f"{month:%Y-%m} costed"
        run, checked = execute(instance, job, {"dagster/partition": key}, COSTED_CLUSTER, span, progress)
        runs.append(run)
        evaluations += checked
    from ocp_assets.defs.costs import COSTS_ASSET

    materialized = {str(k) for k in instance.get_materialized_partitions(dg.AssetKey(COSTS_ASSET)) if str(k) in keys}
    failed = sorted(f"{e.asset_check_key.name} [{e.partition}]: {e.description}" for e in evaluations if not e.passed)
    passed = sum(1 for e in evaluations if e.passed)
    return RunOutcome(runs, keys, materialized, passed, len(evaluations), failed, [])


def costs_job():
    """The cost job as the code location defines it, rebuilt by Dagster in each process."""
    from ocp_assets.defs.jobs import COSTS_JOB_NAME

    return definitions().resolve_job_def(COSTS_JOB_NAME)


def cost_lines(dsn: str) -> list[str]:
    """demo-gpu's costs per VM, per GPU model and per project, per cost type, as koku's UI would group them."""
    from typing import LiteralString

    from psycopg import sql

    from ocp_assets.core.database import connect
    from ocp_assets.core.pgschema import SUMMARY_TABLE

    total = "coalesce(cost_model_cpu_cost, 0) + coalesce(cost_model_gpu_cost, 0) + coalesce(distributed_cost, 0)"
    groups: dict[str, LiteralString] = {
        "VM": "pod_labels->>'vm_kubevirt_io_name'",
        "GPU model": "all_labels->>'gpu-model'",
        "project": "namespace",
    }
    lines = ["", f"  {COSTED_CLUSTER}'s costs from its cost model (koku's VM, GPU and project cost files)"]
    lines.append(f"  {'by':<10} {'name':<30} {'cost type':<16} {'cost':>12}")
    with connect(dsn) as conn:
        for label, column in groups.items():
            rows = conn.execute(
                sql.SQL(
                    "SELECT " + column + ", cost_model_rate_type, sum(" + total + ") FROM {}.{}"
                    " WHERE cluster_id = %s AND cost_model_rate_type IS NOT NULL AND " + column + " IS NOT NULL"
                    " GROUP BY 1, 2 ORDER BY 1, 2"
                ).format(sql.Identifier(ACCOUNT), sql.Identifier(SUMMARY_TABLE)),
                (COSTED_CLUSTER,),
            ).fetchall()
            lines += [f"  {label:<10} {name:<30} {kind:<16} {float(cost):>12,.2f}" for name, kind, cost in rows]
    return lines


def report_figures(dsn: str) -> dict[str, list[tuple]]:
    """What the report shows, read from koku's tables: rows per data source, usage against capacity, top
    namespaces by CPU and by memory, GPU rows, for the sample's clusters over all their days."""
    from psycopg import sql

    from ocp_assets.core.database import connect
    from ocp_assets.core.pgschema import GPU_SUMMARY_TABLE, SUMMARY_TABLE

    table = sql.SQL("{}.{}").format(sql.Identifier(ACCOUNT), sql.Identifier(SUMMARY_TABLE))
    queries = {
        "rows": sql.SQL(
            "SELECT cluster_id, data_source, count(*), min(usage_start), max(usage_start) FROM {table}"
            " WHERE cluster_id = ANY(%(sample)s) AND cost_model_rate_type IS NULL GROUP BY 1, 2 ORDER BY 1, 2"
        ),
        # Per cluster-day, its pods' usage and the cluster's capacity (the same on each of the day's Pod rows).
        "capacity": sql.SQL(
            "SELECT cluster_id, sum(cpu), sum(cpu_capacity), sum(memory), sum(memory_capacity) FROM ("
            " SELECT cluster_id, usage_start, sum(pod_usage_cpu_core_hours) FILTER (WHERE {pods}) AS cpu,"
            " max(cluster_capacity_cpu_core_hours) AS cpu_capacity,"
            " sum(pod_usage_memory_gigabyte_hours) FILTER (WHERE {pods}) AS memory,"
            " max(cluster_capacity_memory_gigabyte_hours) AS memory_capacity"
            " FROM {table} WHERE cluster_id = ANY(%(sample)s) AND data_source = 'Pod' GROUP BY 1, 2"
            ") AS days GROUP BY 1 ORDER BY 1"
        ),
        **{
            f"top {measure}": sql.SQL(
                "SELECT cluster_id, namespace, sum(pod_usage_cpu_core_hours), sum(pod_usage_memory_gigabyte_hours)"
                " FROM {table} WHERE cluster_id = ANY(%(sample)s) AND data_source = 'Pod' AND {pods}"
                " GROUP BY 1, 2 ORDER BY " + column + " DESC NULLS LAST, 1, 2 LIMIT %(top)s"
            )
            for measure, column in (("CPU", "3"), ("memory", "4"))  # the position of its sum in the SELECT
        },
        "gpus": sql.SQL(
            "SELECT cluster_id, model_name, gpu_mode, count(*), sum(gpu_count), max(memory_capacity_gb)"
            " FROM {gpu_table} WHERE cluster_id = ANY(%(sample)s) GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ),
    }
    names = {
        "table": table,
        "gpu_table": sql.SQL("{}.{}").format(sql.Identifier(ACCOUNT), sql.Identifier(GPU_SUMMARY_TABLE)),
        "pods": sql.SQL("namespace NOT LIKE '%% unallocated' AND namespace NOT LIKE '%% unattributed'"),
    }
    parameters = {"sample": [c.cluster_id for c in SAMPLE], "top": TOP_NAMESPACES}
    with connect(dsn) as conn:
        return {key: conn.execute(query.format(**names), parameters).fetchall() for key, query in queries.items()}


def report(dsn: str, outcome: RunOutcome, costs: RunOutcome) -> list[str]:
    """The short report: rows per data source per cluster, usage against capacity, top namespaces, GPUs, partitions
    and checks."""
    from ocp_assets.core.pgschema import GPU_SUMMARY_TABLE, SUMMARY_TABLE

    figures = report_figures(dsn)
    lines = ["", f"Report: koku's daily summary (usage rows) in {ACCOUNT}.{SUMMARY_TABLE}", ""]
    lines.append(f"  {'cluster':<12} {'data_source':<12} {'rows':>8}  days")
    for cluster, source, count, first, last in figures["rows"]:
        days = f"{first:%Y-%m-%d} .. {last:%Y-%m-%d}" if isinstance(first, dt.date) else ""
        lines.append(f"  {cluster:<12} {source:<12} {count:>8,}  {days}")
    lines += capacity_lines(figures["capacity"])
    for measure in ("CPU", "memory"):
        lines += ["", f"  top {TOP_NAMESPACES} namespaces by {measure} usage (all days; unallocated rows left out)"]
        lines.append(f"  {'cluster':<12} {'namespace':<30} {'CPU core-hours':>15} {'memory GiB-hours':>17}")
        for cluster, namespace, cpu, memory in figures[f"top {measure}"]:
            lines.append(f"  {cluster:<12} {namespace:<30} {float(cpu or 0):>15,.1f} {float(memory or 0):>17,.1f}")
    lines += ["", f"  koku's GPU usage summary in {ACCOUNT}.{GPU_SUMMARY_TABLE}"]
    lines.append(f"  {'cluster':<12} {'model':<16} {'mode':<10} {'rows':>5} {'GPUs/slices':>12} {'GPU GB':>7}")
    for cluster, model, mode, count, gpu_count, memory in figures["gpus"]:
        figures_of = f"{count:>5} {int(gpu_count or 0):>12} {float(memory or 0):>7.1f}"
        lines.append(f"  {cluster:<12} {model or '':<16} {mode:<10} {figures_of}")
    return lines + cost_lines(dsn) + outcome_lines(outcome, "cluster-day") + outcome_lines(costs, "cluster-month")


def outcome_lines(outcome: RunOutcome, unit: str) -> list[str]:
    """The runs, partitions and checks of the Dagster runs; each failed check and warning (the first ten)."""
    good_runs = sum(1 for r in outcome.runs if r[2])
    lines = [
        "",
        f"  Dagster runs succeeded ({unit} partitions): {good_runs}/{len(outcome.runs)}",
        f"  {unit} partitions materialized by Dagster: {len(outcome.partitions_materialized)}/"
        f"{len(outcome.partitions_expected)}",
        f"  checks passed: {outcome.checks_passed}/{outcome.checks_total}",
        f"  warnings (legal but suspicious data; the summary was written): {len(outcome.warnings)}",
    ]
    lines += [f"  failed check: {name}" for name in outcome.failed_checks[:10]]
    lines += [f"  warning: {name}" for name in outcome.warnings[:10]]
    return lines


def capacity_lines(capacity: list[tuple]) -> list[str]:
    """Per cluster, its pods' CPU and memory usage against the cluster's capacity over the same days."""
    from ocp_assets.core.outcomes import percent

    lines = ["", "  usage against capacity (all days; utilisation = pods' usage / the nodes' capacity)"]
    lines.append(
        f"  {'cluster':<12} {'CPU core-hours':>15} {'of capacity':>12} {'used':>6}"
        f" {'memory GiB-hours':>17} {'of capacity':>12} {'used':>6}"
    )
    for cluster, cpu, cpu_capacity, memory, memory_capacity in capacity:
        figures = []
        for used, whole in ((cpu, cpu_capacity), (memory, memory_capacity)):
            share = percent(float(used or 0), float(whole or 0))
            figures.append((float(used or 0), float(whole or 0), "" if share is None else f"{share:.1f}%"))
        (cpu, cpu_of, cpu_share), (memory, memory_of, memory_share) = figures
        lines.append(
            f"  {cluster:<12} {cpu:>15,.1f} {cpu_of:>12,.1f} {cpu_share:>6} {memory:>17,.1f} {memory_of:>12,.1f}"
            f" {memory_share:>6}"
        )
    return lines


def next_steps(pg: local_postgres.LocalPostgres) -> list[str]:
    lines = [
        "",
        "Next:",
        "  make ui        the Dagster UI over this data on http://127.0.0.1:3000: Runs (the runs above),",
        "                 Assets -> daily_summary -> Partitions (one cluster-day's numbers) and -> Checks",
        "  make demo UI=1 this command again, then the UI (python -m ocp_assets.quickstart --ui)",
        "  . .venv/bin/activate; ocp-assets --help    the command line (ocp-assets is in .venv/bin, not on PATH)",
    ]
    if pg.embedded:
        lines += [
            f"  PostgreSQL: the embedded server, data in {pg.pgdata}, stopped at the end of this command;",
            "                 export OCP_ASSETS_DSN=$(.venv/bin/python -m ocp_assets.local_postgres start)"
            "   starts it for ocp-assets and psql",
        ]
    else:
        lines.append("  PostgreSQL: the server of OCP_ASSETS_DSN (koku's tables; Dagster's in database dagster)")
    return lines


@contextmanager
def environment(values: dict[str, str]) -> Generator[None, None, None]:
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def run(state: Path, *, ui: bool = False, port: int = 3000) -> int:
    progress = Progress(8 if ui else 7)
    progress.start("PostgreSQL")
    pg = local_postgres.resolve(state)
    try:
        if not pg.embedded:
            from ocp_assets.core.database import connect

            with connect(pg.dsn):  # a configured server that does not answer stops the command here, in one line
                pass
        progress.done(pg.describe())
        data_root, home = state / DATA_DIR, state / HOME_DIR
        cache_dir = Path(os.environ["OCP_ASSETS_CACHE"]) if os.environ.get("OCP_ASSETS_CACHE") else state / CACHE_DIR

        progress.start(f"sample data: {len(SAMPLE)} clusters with nise into {data_root}")
        generate_sample(data_root, cache_dir, progress)

        progress.start(f"koku's tables in schema {ACCOUNT} (db init)")
        created = init_tables(pg.dsn)
        progress.done(f"{len(created)} table(s) created" if created else "already there")

        progress.start("Dagster instance and the sensor's registration")
        from ocp_assets.dagster_instance import write_instance_yaml

        local_postgres.ensure_database(pg.dsn, DAGSTER_DATABASE)
        write_instance_yaml(home)
        with environment(dagster_env(pg.dsn, data_root.resolve(), home.resolve())):
            outcome, costs = materialize(progress, pg.dsn, data_root.resolve())  # steps 4 to 6
            progress.start("report")
            lines = report(pg.dsn, outcome, costs)
            print("\n".join(lines + next_steps(pg)), flush=True)
            progress.done("done")
            ok = all(
                all(r[2] for r in each.runs)
                and each.partitions_materialized == each.partitions_expected
                and not each.failed_checks
                for each in (outcome, costs)
            )
            if ui:
                from ocp_assets import ui as dagster_ui

                progress.start(f"the Dagster UI on http://127.0.0.1:{port} (Ctrl-C stops it)")
                return dagster_ui.serve(pg, data_root, home, DAGSTER_DATABASE, START_DATE, port)
        return 0 if ok else 2
    finally:
        pg.stop_and_say()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ocp_assets.quickstart", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--state-dir",
        type=Path,
        help=f"where the embedded PostgreSQL, the sample and DAGSTER_HOME live (default ${local_postgres.STATE_DIR_ENV}"
        ", else var/ in this directory)",
    )
    parser.add_argument("--ui", action="store_true", help="serve the Dagster UI afterwards (Ctrl-C stops it)")
    parser.add_argument("--port", type=int, default=3000, help="the UI's port with --ui (default 3000)")
    args = parser.parse_args(argv)
    state = (args.state_dir or local_postgres.state_dir()).resolve()
    state.mkdir(parents=True, exist_ok=True)
    try:
        return run(state, ui=args.ui, port=args.port)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        # One line, as the CLI does: the database, storage or configuration named by the error itself. The
        # engine's messages and PostgreSQL's never include a password; the DSN is not printed.
        import psycopg

        from ocp_assets.core.errors import OcpAssetsError

        if not isinstance(exc, OcpAssetsError | psycopg.Error | OSError | RuntimeError):
            raise
        from ocp_assets.redaction import first_line

        print(f"ocp_assets.quickstart: error ({type(exc).__name__}): {first_line(exc)}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
