"""The project's benchmark: engine time and peak memory from koku Parquet to committed PostgreSQL rows.

    python -m ocp_assets.benchmark --scale 1m [--repeat 5] [--dsn URL]

Data comes from `ocp-assets generate` (nise output is cached, so only the first call pays for nise). Each
repetition summarises every day of the cluster in a fresh subprocess, so its peak RSS is that run's own;
the report gives medians over repetitions and the spread, never a single run.
"""

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
BENCH_SCHEMA = "ocp_assets_benchmark"


def _high_water_mb() -> float:
    """Peak RSS of this process image (VmHWM); unlike ru_maxrss it is not inherited from the parent across exec."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _one_repetition(data_root: str, dsn: str, schema: str) -> dict:
    """Runs in the child process: summarise every day of every cluster once, report seconds and peak RSS."""
    from ocp_assets.core.engine import ClusterDay, connect, summarize_day
    from ocp_assets.core.ingest import read_cluster_registry
    from ocp_assets.core.reader import days_with_pod_usage
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
            for day in days_with_pod_usage(root, cluster.account, cluster.source_uuid):
                outcome = summarize_day(
                    conn, schema, root,
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
        for day in days_with_pod_usage(root, cluster.account, cluster.source_uuid):
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
    from ocp_assets.core.engine import connect
    from ocp_assets.core.generate import generate
    from ocp_assets.core.pgschema import init_schema
    from ocp_assets.core.storage import open_data_root

    if not (data_root / "data").exists():
        result = generate(open_data_root(str(data_root)), scale=scale)
        print(f"generated scale {scale}: nise {result.nise_seconds:.0f}s (cache hit: {result.cache_hit}), "
              f"ingest {result.ingest_seconds:.1f}s", file=sys.stderr)
    with connect(dsn) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
        init_schema(conn, schema)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ocp_assets.benchmark", description=__doc__.splitlines()[0])
    parser.add_argument("--scale", default="1m", help="generate scale (20k, 100k, 1m, 10m)")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--data-root", help="where to keep the generated Parquet (default var/benchmark-<scale>)")
    parser.add_argument("--dsn", default=os.environ.get("OCP_ASSETS_DSN", DEFAULT_DSN))
    parser.add_argument("--schema", default=BENCH_SCHEMA)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    data_root = Path(args.data_root or f"var/benchmark-{args.scale}").resolve()
    if args.child:
        print(json.dumps(_one_repetition(str(data_root), args.dsn, args.schema)))
        return 0
    prepare(args.scale, data_root, args.dsn, args.schema)
    runs = []
    for _ in range(args.repeat):
        child = subprocess.run(
            [sys.executable, "-m", "ocp_assets.benchmark", "--child", "--data-root", str(data_root),
             "--dsn", args.dsn, "--schema", args.schema],
            check=True, capture_output=True, text=True,
        )
        runs.append(json.loads(child.stdout.strip().splitlines()[-1]))
    engine = [r["engine_seconds"] for r in runs]
    peak = [r["peak_rss_mb"] for r in runs]
    report = {
        "scale": args.scale,
        "repetitions": len(runs),
        "days": runs[0]["days"],
        "hourly_pod_rows": runs[0]["hourly_pod_rows"],
        "summary_rows_per_run": runs[0]["summary_rows"],
        "engine_seconds_median": statistics.median(engine),
        "engine_seconds_min": min(engine),
        "engine_seconds_max": max(engine),
        "step_seconds_median": {s: statistics.median(r["steps"][s] for r in runs) for s in runs[0]["steps"]},
        "peak_rss_mb_median": statistics.median(peak),
        "import_rss_mb_median": statistics.median(r["import_rss_mb"] for r in runs),
    }
    if args.json:
        print(json.dumps(report, indent=2))
    else:
        print(f"scale {report['scale']}: {report['hourly_pod_rows']:,} hourly pod rows, {report['days']} days, "
              f"{report['summary_rows_per_run']:,} summary rows per run")
        print(f"engine (Parquet -> committed rows): median {report['engine_seconds_median']:.3f}s "
              f"(min {report['engine_seconds_min']:.3f}, max {report['engine_seconds_max']:.3f}) over {len(runs)} runs")
        print("  per step (median): " + ", ".join(f"{s} {v:.3f}s" for s, v in report["step_seconds_median"].items()))
        print(f"peak RSS: median {report['peak_rss_mb_median']:.0f} MB (of which {report['import_rss_mb_median']:.0f} MB "
              f"is the interpreter with pyarrow/pandas/psycopg imported)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
