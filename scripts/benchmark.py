"""The project's benchmark: ocp_assets against its peers, Parquet to rows committed in PostgreSQL, per scale.

    python scripts/benchmark.py [--scale "100k 1m"] [--repeat 5] [--dsn URL] [--out-dir docs/benchmarks]
        [--measures summarize,duckdb,koku-sql,ingest,help] [--enabled-keys app,team] [--dagster] [--ui]

For each scale (scripts/benchmark_scales.py: 20k, 100k, 1m, 10m, day100k) the data comes from `ocp-assets generate`
(nise's payload cached, the Parquet kept in var/benchmark-<scale>). Then every measure runs once per repetition, the
measures alternating (A B C D, B C D A, ...), each in a fresh process of its own:

- summarize: `ocp-assets summarize` of every day of the cluster into a tenant schema (scripts/benchmark_cli_child.py:
  the console script with its imports timed apart from its command, the engine's work);
- duckdb: DuckDB computing the same rows from the same Parquet with the query of scripts/benchmark_peers.py, written
  to a tenant schema of its own with COPY; its rows are compared with ours after the runs (relative 1e-9);
- koku-sql: the project's SQL port of koku's PGSQL (ocp_assets_tests/reference/koku_sql.py): the line items loaded
  into PostgreSQL, then koku's SQL; load and SQL timed apart;
- ingest: `ocp-assets ingest` of the scale's nise CSV payload into koku's Parquet, in a fresh directory;
- help: `ocp-assets --help`, the start-up every command pays.

Reported per measure: the median of the repetitions with min and max of the whole process (interpreter start to
exit) and of its parts, its peak RSS (the largest process of its tree: the kernel's maxrss of it and its children),
hourly pod rows per second, and each process's time over DuckDB's in the same repetition. ``--dagster`` adds one
Dagster run over the scale's days (scripts/benchmark_dagster.py), ``--ui`` the `dagster dev` timings
(scripts/benchmark_ui.py). Progress goes to stderr; the table (``<name>.md``), the JSON (``<name>.json``: every run,
the machine, versions, commit, date) and a chart of time and memory against scale (``<name>.svg``) to --out-dir.
Exit 1 when a check failed (DuckDB's rows or the koku SQL port's rows differ from ours, a run failed).

It lives outside the installed package: it is a tool of this repository, not something a deployment runs.
"""

import argparse
import datetime as dt
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

SCRIPTS = Path(__file__).resolve().parent
REPO = SCRIPTS.parent
sys.path[:0] = [str(SCRIPTS), str(REPO)]

import benchmark_report  # noqa: E402 (after the path set-up)
from benchmark_scales import DEFAULT_SCALES, SCALES, scale_yaml_text  # noqa: E402

BENCH_SCHEMA = "ocp_assets_benchmark"
MEASURES = ("summarize", "duckdb", "koku-sql", "ingest", "help")
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class ScaleData:
    """A generated scale: where its Parquet and nise payload are, and what the cluster is."""

    name: str
    data_root: Path
    payload: Path
    account: str
    source: str
    cluster_id: str
    days: list[dt.date]
    hourly_pod_rows: int


# ------------------------------------------------------------------ data
def generate_command(name: str, data_root: Path) -> list[str]:
    """`ocp-assets generate` of the scale: its built-in --scale, or the YAML scripts/benchmark_scales.py writes."""
    command = [str(BIN / "ocp-assets"), "generate", "--out", str(data_root), "--cluster-id", f"ocp-assets-{name}"]
    if SCALES[name].builtin:
        return [*command, "--scale", name]
    yaml_path = data_root / f"{name}.yml"
    data_root.mkdir(parents=True, exist_ok=True)
    text = scale_yaml_text(name)
    if not yaml_path.exists() or yaml_path.read_text() != text:
        yaml_path.write_text(text)
    return [*command, "--yaml", str(yaml_path)]


def ensure_data(name: str, data_root: Path) -> ScaleData:
    """The scale's Parquet (generated unless var/benchmark-<scale> has it) and its nise payload (cached by nise's
    cache key; generated again if the cache lost it)."""
    from ocp_assets.core.generate import cache_key, cache_root, scale_yaml

    cluster_id = f"ocp-assets-{name}"
    text = scale_yaml(name) if SCALES[name].builtin else scale_yaml_text(name)
    payload = cache_root() / cache_key(text, cluster_id)
    if not (data_root / "data").exists() or not payload.is_dir():
        say(f"scale {name}: generating its data (nise is cached; about 55 s per million hourly pod rows when not)")
        started = time.perf_counter()
        done = subprocess.run(generate_command(name, data_root), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise SystemExit(f"ocp-assets generate failed for scale {name}:\n{done.stderr[-3000:]}")
        say(f"scale {name}: generated in {time.perf_counter() - started:.0f} s")
    return describe_data(name, data_root, payload)


def describe_data(name: str, data_root: Path, payload: Path) -> ScaleData:
    import pyarrow.parquet as pq

    from ocp_assets.core.ingest import read_cluster_registry
    from ocp_assets.core.reader import days_with_usage
    from ocp_assets.core.storage import open_data_root

    root = open_data_root(str(data_root))
    clusters = [c for c in read_cluster_registry(root) if c.cluster_id == f"ocp-assets-{name}"]
    if len(clusters) != 1:
        raise SystemExit(f"{data_root} holds no single cluster ocp-assets-{name}: remove it to generate it again")
    (cluster,) = clusters
    days = days_with_usage(root, cluster.account, cluster.source_uuid)
    hourly = data_root / "data" / "parquet" / cluster.account / "OCP" / "pod_usage" / f"source={cluster.source_uuid}"
    rows = sum(pq.ParquetFile(path).metadata.num_rows for path in hourly.rglob("*.parquet"))
    return ScaleData(name, data_root, payload, cluster.account, cluster.source_uuid, cluster.cluster_id, days, rows)


def prepare_schemas(dsn: str, schema: str, data: ScaleData, enabled_keys: list[str]) -> int:
    """Fresh tenant schemas for ours and DuckDB's rows, the same enabled keys in both; returns the report period id
    of DuckDB's schema (its rows carry one like ours)."""
    from ocp_assets.core.database import connect
    from ocp_assets.core.pgschema import ensure_month_partition, init_schema
    from ocp_assets.core.writer import report_period

    with connect(dsn) as conn:
        for target in (schema, f"{schema}_duckdb"):
            conn.execute(f'DROP SCHEMA IF EXISTS "{target}" CASCADE')
            init_schema(conn, target)
            with conn.transaction():
                for key in enabled_keys:
                    conn.execute(
                        f'INSERT INTO "{target}".reporting_enabledtagkeys (key, enabled, provider_type)'
                        " VALUES (%s, true, 'OCP')",
                        (key,),
                    )
                for month in sorted({d.replace(day=1) for d in data.days}):
                    ensure_month_partition(conn, target, month)
        with conn.transaction():
            return report_period(
                conn,
                f"{schema}_duckdb",
                cluster_id=data.cluster_id,
                cluster_alias=data.cluster_id,
                source=data.source,
                day=data.days[0],
            )


# ------------------------------------------------------------------ one process
def run_process(argv: list[str], env: dict[str, str] | None = None) -> dict:
    """Run argv to its end through scripts/benchmark_launch.py: wall seconds from start to exit, the peak RSS of the
    largest process of its tree (the kernel's maxrss of the child, which covers its waited children), exit code, and
    its output."""
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err, tempfile.NamedTemporaryFile() as figures:
        launcher = [sys.executable, "-S", str(SCRIPTS / "benchmark_launch.py"), figures.name]
        done = subprocess.run([*launcher, *argv], stdout=out, stderr=err, env={**os.environ, **(env or {})})
        out.seek(0)
        err.seek(0)
        measured = json.loads(Path(figures.name).read_text() or '{"exit": null}')
        return {
            **measured,
            "exit": measured["exit"] if done.returncode == 0 else done.returncode,
            "stdout": out.read().decode(errors="replace"),
            "stderr": err.read().decode(errors="replace"),
        }


def run_cli(arguments: list[str], preimport: str) -> dict:
    """`ocp-assets ARGUMENTS` through scripts/benchmark_cli_child.py: whole process, imports, command."""
    with tempfile.NamedTemporaryFile(suffix=".json") as times:
        env = {"OCP_ASSETS_BENCH_TIMES": times.name, "OCP_ASSETS_BENCH_PREIMPORT": preimport}
        run = run_process([sys.executable, str(SCRIPTS / "benchmark_cli_child.py"), *arguments], env)
        parts = json.loads(Path(times.name).read_text() or "{}") if run["exit"] == 0 else {}
    return {**run, **{k: v for k, v in parts.items() if k in ("imports", "command")}}


def checked(run: dict, what: str) -> dict:
    if run["exit"] != 0:
        raise SystemExit(f"{what} failed (exit {run['exit']}):\n{run['stderr'][-3000:]}")
    return run


# ------------------------------------------------------------------ the measures
class Measures:
    """One run of each measure of a scale, as the benchmark alternates them."""

    def __init__(self, args: argparse.Namespace, data: ScaleData, report_period_id: int):
        self.args, self.data, self.report_period_id = args, data, report_period_id
        self.ingest_dir = Path(tempfile.mkdtemp(prefix=f"benchmark-ingest-{data.name}-", dir=data.data_root.parent))

    def summarize(self, first: bool) -> dict:
        arguments = ["summarize", "--data-root", str(self.data.data_root), "--source", self.data.source]
        arguments += ["--schema", self.args.schema, "--dsn", self.args.dsn]
        return checked(run_cli(arguments, "ocp_assets.summary_commands"), "ocp-assets summarize")

    def ingest(self, first: bool) -> dict:
        out = self.ingest_dir / "root"
        try:
            arguments = ["ingest", str(self.data.payload), "--out", str(out), "--cluster-id", self.data.cluster_id]
            return checked(run_cli(arguments, "ocp_assets.core.ingest"), "ocp-assets ingest")
        finally:
            shutil.rmtree(out, ignore_errors=True)

    def help(self, first: bool) -> dict:
        return checked(run_process([str(BIN / "ocp-assets"), "--help"]), "ocp-assets --help")

    def _peer(self, peer: str, schema: str, extra: list[str]) -> dict:
        data = self.data
        argv = [sys.executable, str(SCRIPTS / "benchmark_peers.py"), peer, "--data-root", str(data.data_root)]
        argv += ["--dsn", self.args.dsn, "--schema", schema, "--account", data.account, "--source", data.source]
        argv += ["--cluster-id", data.cluster_id, "--start", str(data.days[0]), "--end", str(data.days[-1]), *extra]
        run = checked(run_process(argv), f"the {peer} peer")
        return {**run, **json.loads(run["stdout"].strip().splitlines()[-1])}

    def duckdb(self, first: bool) -> dict:
        extra = ["--report-period-id", str(self.report_period_id)]
        if self.args.duckdb_threads:
            extra += ["--threads", str(self.args.duckdb_threads)]
        return self._peer("duckdb", f"{self.args.schema}_duckdb", extra)

    def koku_sql(self, first: bool) -> dict:
        # Its rows are compared with ours once (after the timings; our rows are there from the warm-up).
        return self._peer("koku-sql", self.args.schema, ["--compare-with", self.args.schema] if first else [])

    def run(self, measure: str, first: bool) -> dict:
        return getattr(self, measure.replace("-", "_"))(first)

    def close(self) -> None:
        shutil.rmtree(self.ingest_dir, ignore_errors=True)


def measure_scale(args: argparse.Namespace, data: ScaleData) -> dict:
    """Every measure of the scale, --repeat times, alternating; then the rows of the peers against ours."""
    report_period_id = prepare_schemas(args.dsn, args.schema, data, args.enabled_keys)
    measures = Measures(args, data, report_period_id)
    order = [m for m in MEASURES if m in args.measures and (m != "help" or data.name == args.scales[0])]
    runs: dict[str, list[dict]] = {m: [] for m in order}
    try:
        if args.warmup:  # untimed: the files in the page cache, both schemas holding rows (every timed run replaces)
            for measure in (m for m in ("summarize", "duckdb") if m in order):
                measures.run(measure, first=False)
        from ocp_assets.progress import Progress

        with Progress(f"scale {data.name}", args.repeat * len(order), "runs") as progress:
            for repetition in range(args.repeat):
                for measure in order[repetition % len(order) :] + order[: repetition % len(order)]:
                    run = measures.run(measure, first=repetition == 0)
                    runs[measure].append({k: v for k, v in run.items() if k not in ("stdout", "stderr")})
                    progress.echo(f"  {data.name} #{repetition + 1} {describe_run(measure, run)}", sys.stderr)
                    progress.advance(note=f"{measure} {run['whole']:.2f} s")
    finally:
        measures.close()
    return {
        "scale": data.name,
        "what": SCALES[data.name].what,
        "days": len(data.days),
        "first_day": str(data.days[0]),
        "last_day": str(data.days[-1]),
        "hourly_pod_rows": data.hourly_pod_rows,
        "enabled_keys": args.enabled_keys,
        "measures": {m: summarise_runs(m, r, data.hourly_pod_rows) for m, r in runs.items()},
        "ratios_to_duckdb": ratios(runs),
        "checks": peer_checks(args, data, runs),
    }


def describe_run(measure: str, run: dict) -> str:
    parts = [f"{k} {run[k]:.2f} s" for k in benchmark_report.PARTS[measure] if k in run]
    return f"{measure}: {run['whole']:.2f} s ({', '.join(parts)}), {run['peak_rss_mb']:.0f} MB"


def spread(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values)}


def summarise_runs(measure: str, runs: list[dict], hourly_rows: int) -> dict:
    numeric = [k for k, v in runs[0].items() if isinstance(v, float)]
    summary: dict = {k: spread([r[k] for r in runs]) for k in numeric}
    if measure != "help":
        summary["hourly_pod_rows_per_second"] = spread([hourly_rows / r["whole"] for r in runs])
    for key in ("rows",):
        if key in runs[0]:
            summary[key] = sorted({r[key] for r in runs})
    summary["runs"] = runs
    return summary


def ratios(runs: dict[str, list[dict]]) -> dict:
    """Each process's whole time over DuckDB's of the same repetition (the pairs ran back to back)."""
    if "duckdb" not in runs:
        return {}
    duck = [r["whole"] for r in runs["duckdb"]]
    return {
        m: spread([r["whole"] / d for r, d in zip(rs, duck)])
        for m, rs in runs.items()
        if m in ("summarize", "koku-sql")
    }


def peer_checks(args: argparse.Namespace, data: ScaleData, runs: dict[str, list[dict]]) -> dict:
    """The peers' rows against ours: DuckDB's schema after its last run, the koku SQL port's first run's rows."""
    from benchmark_peers import summaries_differ

    from ocp_assets.core.database import connect

    checks = {}
    if "duckdb" in runs and "summarize" in runs:
        with connect(args.dsn) as conn:
            differences = summaries_differ(
                conn, args.schema, f"{args.schema}_duckdb", data.source, data.days[0], data.days[-1]
            )
        checks["duckdb_rows_equal_ours"] = not differences
        checks["duckdb_differences"] = differences[:20]
    if "koku-sql" in runs and "differences" in runs["koku-sql"][0]:
        differences = runs["koku-sql"][0]["differences"]
        checks["koku_sql_rows_equal_ours"] = not differences
        checks["koku_sql_differences"] = differences[:20]
    return checks


# ------------------------------------------------------------------ orchestration figures
def dagster_figures(parser: argparse.ArgumentParser, args: argparse.Namespace, data: ScaleData) -> list[dict]:
    import benchmark_dagster

    dagster_args = argparse.Namespace(**{**vars(args), "scale": data.name, "schema": benchmark_dagster.BENCH_SCHEMA})
    return benchmark_dagster.measure(parser, dagster_args, data.data_root)


def ui_figures(args: argparse.Namespace) -> dict:
    say("dagster dev timings (scripts/benchmark_ui.py): several minutes per repetition")
    argv = [sys.executable, str(SCRIPTS / "benchmark_ui.py"), "--repeat", str(args.repeat), "--dsn", args.dsn]
    done = subprocess.run([*argv, "--json"], stdout=subprocess.PIPE, text=True, check=False)
    if done.returncode != 0:
        return {"failed": f"scripts/benchmark_ui.py exited {done.returncode}"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def with_earlier_scales(result: dict, earlier_path: Path) -> dict:
    """The report of this run plus the scales an earlier report at earlier_path measured and this run did not (in the
    order of SCALES); each scale keeps its own date, load and repetitions."""
    if not earlier_path.exists():
        return result
    earlier = json.loads(earlier_path.read_text())
    measured = {s["scale"] for s in result["scales"]}
    scales = [s for s in earlier.get("scales", []) if s["scale"] not in measured] + result["scales"]
    order = list(SCALES)
    result["scales"] = sorted(scales, key=lambda s: order.index(s["scale"]))
    result["earlier_runs"] = [
        *earlier.get("earlier_runs", []),
        {k: earlier.get(k) for k in ("date", "git", "load_average_before", "load_average_after", "repetitions")},
    ]
    if "ui" in earlier and "ui" not in result:
        result["ui"] = earlier["ui"]
    return result


# ------------------------------------------------------------------ main
def say(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def parse_arguments(argv: list[str] | None) -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    import benchmark_dagster

    parser = argparse.ArgumentParser(prog="python scripts/benchmark.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--scale",
        action="append",
        help=f"scales, space- or comma-separated, repeatable: {', '.join(SCALES)} "
        f"(default: {' '.join(DEFAULT_SCALES)})",
    )
    parser.add_argument("--repeat", type=int, default=5, help="runs of each measure (default 5)")
    parser.add_argument(
        "--dsn",
        default=os.environ.get("OCP_ASSETS_DSN"),
        help="PostgreSQL (default: $OCP_ASSETS_DSN, else the tests' server: the machine's on 127.0.0.1:5432, else "
        "the embedded one, ocp_assets_tests/shared_postgres.py)",
    )
    parser.add_argument("--schema", default=BENCH_SCHEMA, help="ours; DuckDB's is <schema>_duckdb")
    parser.add_argument("--measures", default=",".join(MEASURES), help="comma-separated, or none")
    parser.add_argument("--enabled-keys", default="", help="OCP label keys enabled in both schemas (default: none)")
    parser.add_argument("--duckdb-threads", type=int, help="DuckDB's threads (default: DuckDB's own, every core)")
    parser.add_argument("--no-warmup", dest="warmup", action="store_false", help="skip the untimed first runs")
    parser.add_argument("--data-dir", default=str(REPO / "var"), help="where var/benchmark-<scale> go")
    parser.add_argument("--out-dir", default=str(REPO / "docs" / "benchmarks"))
    parser.add_argument("--name", default="latest", help="the report's file names: NAME.md, NAME.json, NAME.svg")
    parser.add_argument("--dagster", action="store_true", help="also one Dagster run over each scale's days")
    parser.add_argument("--ui", action="store_true", help="also the dagster dev timings (scripts/benchmark_ui.py)")
    parser.add_argument("--json", action="store_true", help="print the JSON to stdout instead of the table")
    parser.add_argument(
        "--append",
        action="store_true",
        help="keep the scales of an earlier NAME.json that this run does not measure (each with its own date, load "
        "and repetitions), e.g. the large scales measured with fewer repetitions",
    )
    benchmark_dagster.add_arguments(parser)
    args = parser.parse_args(argv)
    args.scales = [s for text in (args.scale or [" ".join(DEFAULT_SCALES)]) for s in text.replace(",", " ").split()]
    unknown = [s for s in args.scales if s not in SCALES]
    if unknown:
        parser.error(f"unknown scale(s) {', '.join(unknown)}; choose from {', '.join(SCALES)}")
    args.measures = [] if args.measures == "none" else [m.strip() for m in args.measures.split(",") if m.strip()]
    if set(args.measures) - set(MEASURES):
        parser.error(f"--measures: choose from {', '.join(MEASURES)} or none")
    args.enabled_keys = [k.strip() for k in args.enabled_keys.split(",") if k.strip()]
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    return parser, args


def main(argv: list[str] | None = None) -> int:
    parser, args = parse_arguments(argv)
    if args.dsn:
        return run(parser, args)
    from ocp_assets_tests import shared_postgres

    args.dsn = shared_postgres.session_dsn()
    try:
        return run(parser, args)
    finally:
        shared_postgres.release()


def run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    result = benchmark_report.context(args.dsn)
    result.update(repetitions=args.repeat, measures=args.measures, scales=[])
    for name in args.scales:
        data = ensure_data(name, Path(args.data_dir) / f"benchmark-{name}")
        started = {"date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "load_before": os.getloadavg()}
        scale = measure_scale(args, data) if args.measures else {"scale": name, "what": SCALES[name].what}
        if args.dagster:
            scale["dagster"] = dagster_figures(parser, args, data)
        result["scales"].append({**scale, **started, "repetitions": args.repeat, "load_after": os.getloadavg()})
    if args.ui:
        result["ui"] = ui_figures(args)
    result["load_average_after"] = os.getloadavg()
    if args.append:
        result = with_earlier_scales(result, Path(args.out_dir) / f"{args.name}.json")
    paths = benchmark_report.write(result, Path(args.out_dir), args.name)
    say("wrote " + ", ".join(str(p) for p in paths))
    print(json.dumps(result, indent=2) if args.json else benchmark_report.markdown(result))
    return 0 if benchmark_report.all_passed(result) else 1


if __name__ == "__main__":
    raise SystemExit(main())
