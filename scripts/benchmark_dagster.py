"""The Dagster run benchmark (`scripts/benchmark.py --dagster`): one run of the job over a scale's whole day range.

Each repetition is one run of the job ``summarize_cluster_days`` over the cluster's whole day range (the range tags
the backfill policy and the sensor use), started with ``dagster.execute_job`` in a fresh process against a
PostgreSQL-backed instance (ocp_assets' dagster.yaml in a temporary DAGSTER_HOME, database
``ocp_assets_bench_dagster``). Each variant is an executor (the code location's two: ``multiprocess``, Dagster's
multiprocess executor with its step processes started by a forkserver that imported the engine once, and
``in_process``; and ``spawn``, Dagster's multiprocess executor as it comes) with an event log storage (``pooled``:
ocp_assets' pooled one; ``dagster``: dagster-postgres' own), every variant with the same number of day workers
(``--workers``, OCP_ASSETS_WORKERS), so only the machinery differs. The variants are interleaved (one run of each,
then again), as the machine's load drifts. It reports the wall time from launch to run end, the time before the first
step started, each step's duration (the run's step stats), the peak RSS of the step processes and the rows written,
each variant's median against the first variant's, and checks that the rows equal the engine's rows for the same
input (the engine run in a fresh process of its own first: ``--child``).

    python scripts/benchmark_dagster.py --scale 1m [--executor multiprocess,in_process,spawn] [--workers 2]
        [--event-storage pooled,dagster] [--repeat 3]
"""

import argparse
import importlib.resources
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ocp_assets.progress import Progress

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_SCHEMA = "ocp_assets_benchmark_dagster_engine"  # the engine's reference rows
DAGSTER_DATABASE = "ocp_assets_bench_dagster"  # Dagster's runs and events of the benchmark, created if missing
DAGSTER_REGISTRY_SCHEMA = "ocp_assets_benchmark_registry"
EXECUTORS = ("multiprocess", "in_process", "spawn")
EVENT_STORAGES = ("pooled", "dagster")
BENCH_EXECUTOR_ENV = "OCP_ASSETS_BENCH_EXECUTOR"  # the executor of a variant, for its child process
# dagster.yaml's event log storage, and dagster-postgres' own in its place for the "dagster" variants.
POOLED_EVENT_STORAGE = "  module: ocp_assets.dagster_instance\n  class: PooledPostgresEventLogStorage\n"
DAGSTER_EVENT_STORAGE = "  module: dagster_postgres.event_log\n  class: PostgresEventLogStorage\n"


def _high_water_mb() -> float:
    """Peak RSS of this process image (VmHWM); unlike ru_maxrss it is not inherited from the parent across exec."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _one_repetition(data_root: str, dsn: str, schema: str) -> dict:
    """Runs in the child process: summarise every day of every cluster once, report seconds and peak RSS."""
    from ocp_assets.core.database import connect
    from ocp_assets.core.identity import ClusterDay
    from ocp_assets.core.ingest import read_cluster_registry
    from ocp_assets.core.pipeline import summarize_day
    from ocp_assets.core.reader import days_with_usage
    from ocp_assets.core.storage import open_data_root

    root = open_data_root(data_root)
    baseline = _high_water_mb()
    steps: dict[str, float] = {}
    days_done = 0
    rows = 0
    hourly_rows = 0
    with connect(dsn) as conn:
        started = time.perf_counter()
        for cluster in read_cluster_registry(root):
            for day in days_with_usage(root, cluster.account, cluster.source_uuid):
                outcome = summarize_day(
                    conn,
                    schema,
                    root,
                    ClusterDay(cluster.account, cluster.source_uuid, cluster.cluster_id, cluster.cluster_id, day),
                )
                for step, seconds in outcome.seconds.items():
                    steps[step] = steps.get(step, 0.0) + seconds
                days_done += 1
                rows += outcome.rows.num_rows
        engine_seconds = time.perf_counter() - started
    peak = _high_water_mb()
    # Counted after timing: how many hourly pod rows the run covered.
    for cluster in read_cluster_registry(root):
        for day in days_with_usage(root, cluster.account, cluster.source_uuid):
            hourly_rows += _hourly_rows(root, cluster, day)
    return {
        "engine_seconds": engine_seconds,
        "steps": steps,
        "days": days_done,
        "summary_rows": rows,
        "hourly_pod_rows": hourly_rows,
        "peak_rss_mb": peak,
        "import_rss_mb": baseline,
    }


def _hourly_rows(root, cluster, day) -> int:
    from ocp_assets.core.layout import POD_USAGE, month_prefix
    from ocp_assets.core.reader import POD_HOURLY_CAPACITY_COLUMNS, read_day_rows

    prefix = month_prefix(cluster.account, POD_USAGE, cluster.source_uuid, day.year, day.month, daily=False)
    return len(read_day_rows(root, prefix, POD_HOURLY_CAPACITY_COLUMNS[:2], day))


def prepare(scale: str, data_root: Path, dsn: str, schema: str) -> None:
    from ocp_assets.cli import PhaseProgress
    from ocp_assets.core.database import connect
    from ocp_assets.core.generate import generate
    from ocp_assets.core.pgschema import init_schema
    from ocp_assets.core.storage import open_data_root

    if not (data_root / "data").exists():
        progress = PhaseProgress(nise_label=f"scale {scale}")
        result = generate(open_data_root(str(data_root)), scale=scale, progress=progress)
        progress.close()
        print(
            f"generated scale {scale}: nise {result.nise_seconds:.0f}s (cache hit: {result.cache_hit}), "
            f"ingest {result.ingest_seconds:.1f}s",
            file=sys.stderr,
        )
    with connect(dsn) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        init_schema(conn, schema)


# ------------------------------------------------------------------ --dagster: one range run of the job
def _executor(name: str):
    """The run executor a variant measures: the code location's two (multiprocess: Dagster's, started by a
    forkserver holding the engine; in_process) or Dagster's multiprocess executor as it comes (spawn)."""
    import dagster as dg

    from ocp_assets.definitions import executor_for

    return dg.multiprocess_executor if name == "spawn" else executor_for(name)


def _summary_job():
    """The job as the code location defines it, with the variant's executor (BENCH_EXECUTOR_ENV), rebuilt in each
    process (the step process of a spawning executor rebuilds it from this function)."""
    from ocp_assets.definitions import defs
    from ocp_assets.defs.jobs import JOB_NAME

    return defs().resolve_job_def(JOB_NAME).with_executor_def(_executor(os.environ[BENCH_EXECUTOR_ENV]))


def _dagster_repetition(data_root: str, dsn: str, schema: str) -> dict:
    """Runs in the child process: one run of the job over every day of the benchmark cluster."""
    process_started = time.time()
    import dagster as dg
    import psycopg

    from ocp_assets.core.ingest import read_cluster_registry
    from ocp_assets.core.reader import days_with_usage
    from ocp_assets.core.storage import open_data_root
    from ocp_assets.defs.partitions import CLUSTERS_PARTITIONS_NAME, partition_key
    from ocp_assets.defs.resources import SummaryDatabase
    from ocp_assets.defs.sensors import RANGE_END_TAG, RANGE_START_TAG

    root = open_data_root(data_root)
    (cluster,) = read_cluster_registry(root)
    days = days_with_usage(root, cluster.account, cluster.source_uuid)
    db = SummaryDatabase(dsn=dsn, schema_name=schema, registry_schema=os.environ["OCP_ASSETS_REGISTRY_SCHEMA"])
    with db.connect() as conn:
        db.registry.ensure(conn)
        db.register_cluster(
            conn,
            cluster_id=cluster.cluster_id,
            source=cluster.source_uuid,
            account=cluster.account,
            cluster_alias=cluster.cluster_id,
            data_root=root.uri,
        )
    tags = {
        RANGE_START_TAG: str(partition_key(cluster.cluster_id, days[0])),
        RANGE_END_TAG: str(partition_key(cluster.cluster_id, days[-1])),
    }
    with dg.DagsterInstance.get() as instance:
        if cluster.cluster_id not in instance.get_dynamic_partitions(CLUSTERS_PARTITIONS_NAME):
            instance.add_dynamic_partitions(CLUSTERS_PARTITIONS_NAME, [cluster.cluster_id])
        job = dg.reconstructable(_summary_job)
        ready = time.time()
        result = dg.execute_job(job, instance, tags=tags, raise_on_error=False)
        ended = time.time()
        steps = instance.get_run_step_stats(result.run_id)
        checks = [e.event_specific_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
        # Each partition's own seconds per stage (the stages run in the worker processes, days in parallel).
        stage_seconds = sum(
            e.event_specific_data.materialization.metadata["seconds"].value
            for e in result.all_events
            if e.event_type_value == "ASSET_MATERIALIZATION"
            and "seconds" in e.event_specific_data.materialization.metadata
        )
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute(
            f'SELECT count(*) FROM "{schema}".reporting_ocpusagelineitem_daily_summary WHERE source_uuid = %s',
            (cluster.source_uuid,),
        ).fetchone()[0]
    first_start = min((s.start_time for s in steps if s.start_time), default=ended)
    last_end = max((s.end_time for s in steps if s.end_time), default=ended)
    executor = os.environ[BENCH_EXECUTOR_ENV]
    in_process = executor == "in_process"
    return {
        "success": result.success,
        "run_id": result.run_id,
        "executor": executor,
        "workers": int(os.environ["OCP_ASSETS_WORKERS"]),
        "partitions": len(days),
        "import_seconds": ready - process_started,
        "wall_seconds": ended - ready,
        "before_first_step_seconds": first_start - ready,
        "after_last_step_seconds": ended - last_end,
        "steps": {s.step_key: (s.end_time or ended) - (s.start_time or ended) for s in steps},
        "step_status": {s.step_key: str(s.status.value if s.status else None) for s in steps},
        "stage_seconds": stage_seconds,
        "checks": len(checks),
        "checks_passed": sum(1 for c in checks if c.passed),
        "rows_written": rows,
        # The largest step process (a forked one counts the pages it shares with this process), or this process
        # itself when the steps ran in it (in_process: its children are only Dagster's log tails).
        "peak_step_rss_mb": _high_water_mb()
        if in_process
        else resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
        "orchestrator_rss_mb": _high_water_mb(),
    }


def _dagster_env(dsn: str, schema: str, data_root: Path, home: Path) -> dict[str, str]:
    from ocp_assets.dagster_instance import dagster_instance_env

    return {
        "DAGSTER_HOME": str(home),
        **dagster_instance_env(dsn, DAGSTER_DATABASE),
        "OCP_ASSETS_DSN": dsn,
        "OCP_ASSETS_DATA_ROOT": str(data_root),
        "OCP_ASSETS_SCHEMA": schema,
        "OCP_ASSETS_REGISTRY_SCHEMA": DAGSTER_REGISTRY_SCHEMA,
        "OCP_ASSETS_START_DATE": _start_date(data_root),
    }


def _start_date(data_root: Path) -> str:
    """The day partitions' first day as deployed (OCP_ASSETS_START_DATE or the default), moved back only if the
    generated days lie before it: Dagster lists the day keys of a range, so their number is part of the cost."""
    from ocp_assets.core.ingest import read_cluster_registry
    from ocp_assets.core.reader import days_with_usage
    from ocp_assets.core.storage import open_data_root
    from ocp_assets.defs.partitions import DEFAULT_START_DATE, START_DATE_ENV

    configured = os.environ.get(START_DATE_ENV, DEFAULT_START_DATE)
    root = open_data_root(str(data_root))
    first = min(d for c in read_cluster_registry(root) for d in days_with_usage(root, c.account, c.source_uuid))
    return min(configured, first.replace(day=1).isoformat())


def prepare_dagster(dsn: str, schema: str) -> None:
    """The benchmark's Dagster database (created if missing), an empty tenant schema and registry."""
    from ocp_assets.core.database import connect
    from ocp_assets.core.pgschema import init_schema

    with connect(dsn) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DAGSTER_DATABASE,)).fetchone():
            conn.execute(f'CREATE DATABASE "{DAGSTER_DATABASE}"')
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        conn.execute(f'DROP SCHEMA IF EXISTS "{DAGSTER_REGISTRY_SCHEMA}" CASCADE')
        init_schema(conn, schema)


def rows_differ(dsn: str, schema_a: str, schema_b: str) -> int:
    """Rows of one summary table missing from the other, both ways (all columns but uuid and report_period_id)."""
    from ocp_assets.core.database import connect
    from ocp_assets.core.pgschema import SUMMARY_COLUMNS, SUMMARY_TABLE

    columns = ", ".join(
        f'"{c}"' + ("::text" if "jsonb" in t else "")
        for c, t in SUMMARY_COLUMNS
        if c not in ("uuid", "report_period_id")
    )
    a, b = (f'"{s}".{SUMMARY_TABLE}' for s in (schema_a, schema_b))
    with connect(dsn) as conn:
        return conn.execute(
            f"SELECT (SELECT count(*) FROM (SELECT {columns} FROM {a} EXCEPT ALL SELECT {columns} FROM {b}) x)"
            f" + (SELECT count(*) FROM (SELECT {columns} FROM {b} EXCEPT ALL SELECT {columns} FROM {a}) y)"
        ).fetchone()[0]


def _run_child(args: list[str], env: dict[str, str] | None = None) -> dict:
    child = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), *args],
        capture_output=True,
        text=True,
        env={**os.environ, **env} if env else None,
        check=False,
    )
    if child.returncode != 0:
        raise SystemExit(f"benchmark child failed ({child.returncode}):\n{child.stderr[-4000:]}")
    return json.loads(child.stdout.strip().splitlines()[-1])


def _spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def dagster_report(variant: str, runs: list[dict]) -> dict:
    step_keys = list(runs[0]["steps"])
    return {
        "variant": variant,
        "workers": runs[0]["workers"],
        "repetitions": len(runs),
        "all_succeeded": all(r["success"] for r in runs),
        "partitions": runs[0]["partitions"],
        "rows_written": sorted({r["rows_written"] for r in runs}),
        "checks": f"{min(r['checks_passed'] for r in runs)} of {max(r['checks'] for r in runs)} passed",
        "wall_seconds": _spread([r["wall_seconds"] for r in runs]),
        "before_first_step_seconds": _spread([r["before_first_step_seconds"] for r in runs]),
        "after_last_step_seconds": _spread([r["after_last_step_seconds"] for r in runs]),
        "step_seconds_median": {k: statistics.median(r["steps"].get(k, 0.0) for r in runs) for k in step_keys},
        "stage_seconds_median": statistics.median(r["stage_seconds"] for r in runs),
        "import_seconds_median": statistics.median(r["import_seconds"] for r in runs),
        "peak_step_rss_mb_median": statistics.median(r["peak_step_rss_mb"] for r in runs),
        "orchestrator_rss_mb_median": statistics.median(r["orchestrator_rss_mb"] for r in runs),
        "runs": runs,
    }


def variant_home(root: Path, storage: str) -> Path:
    """A DAGSTER_HOME with ocp_assets' dagster.yaml, its event log storage the variant's."""
    home = root / storage
    home.mkdir()
    text = importlib.resources.files("ocp_assets").joinpath("dagster.yaml").read_text()
    if POOLED_EVENT_STORAGE not in text:
        raise SystemExit("dagster.yaml no longer names the pooled event log storage: update the benchmark")
    if storage == "dagster":
        text = text.replace(POOLED_EVENT_STORAGE, DAGSTER_EVENT_STORAGE)
    (home / "dagster.yaml").write_text(text)
    return home


def run_dagster(args, data_root: Path) -> list[dict]:
    """The --dagster mode: the engine once (reference rows), then --repeat rounds of one run per variant."""
    dagster_schema = f"{args.schema}_dagster"
    prepare(args.scale, data_root, args.dsn, args.schema)
    reference = _run_child(["--child", "--data-root", str(data_root), "--dsn", args.dsn, "--schema", args.schema])
    prepare_dagster(args.dsn, dagster_schema)
    variants = [(e, s) for e in args.executor for s in args.event_storage]
    runs: dict[tuple[str, str], list[dict]] = {v: [] for v in variants}
    root = Path(tempfile.mkdtemp(prefix="ocp_assets_bench_dagster_"))
    try:
        homes = {s: variant_home(root, s) for s in args.event_storage}
        child_args = ["--dagster-child", "--data-root", str(data_root), "--dsn", args.dsn, "--schema", dagster_schema]
        with Progress("dagster runs", args.repeat * len(variants), "runs") as progress:
            for _ in range(args.repeat):
                for executor, storage in variants:
                    env = {
                        **_dagster_env(args.dsn, dagster_schema, data_root, homes[storage]),
                        BENCH_EXECUTOR_ENV: executor,
                        "OCP_ASSETS_WORKERS": str(args.workers),
                    }
                    runs[executor, storage].append(_run_child(child_args, env))
                    progress.advance(note=f"{executor}/{storage} {runs[executor, storage][-1]['wall_seconds']:.2f}s")
    finally:
        shutil.rmtree(root, ignore_errors=True)
    reports = [dagster_report(f"{e} executor, {s} event storage", runs[e, s]) for e, s in variants]
    first = reports[0]["wall_seconds"]["median"]
    for report in reports:
        report["wall_ratio_to_first"] = report["wall_seconds"]["median"] / first
        report["rows_differing_from_engine"] = rows_differ(args.dsn, args.schema, dagster_schema)
        report["engine_seconds_same_input"] = reference["engine_seconds"]
        report["hourly_pod_rows"] = reference["hourly_pod_rows"]
    return reports


def print_dagster(report: dict) -> None:
    def spread(d: dict) -> str:
        return f"median {d['median']:.2f}s (min {d['min']:.2f}, max {d['max']:.2f})"

    print(
        f"dagster, {report['variant']}, {report['workers']} day workers: {report['hourly_pod_rows']:,} hourly pod "
        f"rows, {report['partitions']} partitions in one run, {report['repetitions']} runs, "
        f"all succeeded: {report['all_succeeded']}, checks {report['checks']}"
    )
    print(
        f"  run wall (launch -> run end): {spread(report['wall_seconds'])}; "
        f"{report['wall_ratio_to_first']:.2f}x the first variant's median"
    )
    print(
        f"  before the first step started: {spread(report['before_first_step_seconds'])}; "
        f"after the last step ended: {spread(report['after_last_step_seconds'])}"
    )
    print("  steps (median): " + ", ".join(f"{k} {v:.2f}s" for k, v in report["step_seconds_median"].items()))
    print(
        f"  the stages' own seconds, summed over partitions (median): {report['stage_seconds_median']:.2f}s; "
        f"engine alone on the same input: {report['engine_seconds_same_input']:.2f}s"
    )
    print(
        f"  rows written: {report['rows_written']}, "
        f"rows differing from the engine's: {report['rows_differing_from_engine']}"
    )
    print(
        f"  peak RSS (median): largest step process {report['peak_step_rss_mb_median']:.0f} MB, "
        f"orchestrating process {report['orchestrator_rss_mb_median']:.0f} MB; "
        f"process start-up and imports before launch {report['import_seconds_median']:.2f}s"
    )


def _choices(parser, option: str, text: str, allowed: tuple[str, ...]) -> list[str]:
    chosen = [v.strip() for v in text.split(",") if v.strip()]
    unknown = sorted(set(chosen) - set(allowed))
    if unknown or not chosen:
        parser.error(f"{option}: unknown {', '.join(unknown) or 'nothing'}; choose from {', '.join(allowed)}")
    return chosen


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The Dagster run benchmark's options (benchmark.py shares them)."""
    parser.add_argument(
        "--executor",
        default="multiprocess,in_process",
        help="with --dagster: comma-separated executors: multiprocess (the code location's default: Dagster's, "
        "forkserver with the engine preloaded), in_process, spawn (Dagster's multiprocess as it comes)",
    )
    parser.add_argument(
        "--workers", type=int, default=2, help="with --dagster: day workers of every variant (OCP_ASSETS_WORKERS)"
    )
    parser.add_argument(
        "--event-storage",
        default="pooled",
        help="with --dagster: comma-separated event log storages: pooled (ocp_assets'), dagster (dagster-postgres')",
    )


def measure(parser, args, data_root: Path) -> list[dict]:
    """Checks the variant options, then runs the variants (run_dagster); args has scale, repeat, dsn, schema."""
    args.executor = _choices(parser, "--executor", args.executor, EXECUTORS)
    args.event_storage = _choices(parser, "--event-storage", args.event_storage, EVENT_STORAGES)
    return run_dagster(args, data_root)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python scripts/benchmark_dagster.py", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="1m", help="a built-in generate scale whose data root exists")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--data-root", help="the generated Parquet (default var/benchmark-<scale>)")
    parser.add_argument("--dsn", default=os.environ.get("OCP_ASSETS_DSN", DEFAULT_DSN))
    parser.add_argument("--schema", default=BENCH_SCHEMA)
    add_arguments(parser)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--dagster-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    data_root = Path(args.data_root or f"var/benchmark-{args.scale}").resolve()
    if args.child:
        print(json.dumps(_one_repetition(str(data_root), args.dsn, args.schema)))
        return 0
    if args.dagster_child:
        print(json.dumps(_dagster_repetition(str(data_root), args.dsn, args.schema)))
        return 0
    reports = measure(parser, args, data_root)
    if args.json:
        print(json.dumps(reports, indent=2))
    else:
        for report in reports:
            print_dagster(report)
    return 0 if all(r["all_succeeded"] and r["rows_differing_from_engine"] == 0 for r in reports) else 1


if __name__ == "__main__":
    raise SystemExit(main())
