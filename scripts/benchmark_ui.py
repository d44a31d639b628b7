"""The Dagster UI's timings, measured as a user meets them: `dagster dev` (webserver + daemon) over a month of two
clusters.

    python scripts/benchmark_ui.py [--repeat 3] [--dsn URL]

Data: two nise clusters over the 31 days of October 2026, `month-a` (1,389 pods, ~33K hourly pod rows a day) and
`month-b` (960 pods, ~23K), generated once and cached like every `ocp-assets generate` output. Each repetition
starts from a fresh Dagster database, tenant schema and registry, and measures:

- sensor first pass: sensor turned on (GraphQL, as the toggle does) to every cluster-day of both clusters
  materialized with its checks (62 partitions, the sensor's runs of the two months at once);
- 30-day backfill of one cluster: `launchPartitionBackfill` (the mutation the launch dialog sends) for
  month-a's 2026-10-02 .. 2026-10-31, launch to the last check evaluation of those partitions;
- rewritten file: one of month-b's daily pod files rewritten with doubled CPU usage for one day, to that
  partition's new daily_summary materialization;
- peak memory: RSS of any single process of the `dagster dev` tree, and PSS of the whole tree (shared pages of
  forked processes counted once), sampled every 0.25 s.

Medians over the repetitions; each figure is printed with its spread. (At 04a7e6b this script also compared a run
coordinator subclass with a 5 s backfill interval against Dagster's own, ``--coordinator ocp,dagster``; Dagster's
won, docs/decisions.md "Dagster machinery", and the subclass was removed.)
"""

import argparse
import datetime as dt
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

import dagster as dg
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from ocp_assets.core import generate as G  # noqa: E402 (after the path set-up above)
from ocp_assets.core.outcomes import STAGES  # noqa: E402
from ocp_assets.core.storage import open_data_root  # noqa: E402
from ocp_assets.dagster_instance import dagster_instance_env, write_instance_yaml  # noqa: E402

DATA = REPO / "var" / "benchmark-month"
DAGSTER_DB = "ocp_assets_bench_ui"
SCHEMA = "ocp_assets_bench_ui"
REGISTRY = "ocp_assets_bench_ui_registry"
START, END = "2026-10-01", "2026-11-01"  # nise's end date is exclusive: 31 days
CLUSTERS = {
    "month-a": G.Scale(pods=1389, masters=3, infra=2, workers=5),
    "month-b": G.Scale(pods=960, masters=3, infra=2, workers=4),
}
SENSOR = {
    "repositoryLocationName": "ocp_assets",
    "repositoryName": "__repository__",
    "sensorName": "koku_parquet_sensor",
}


def prepare_data() -> None:
    existing = {
        json.loads(p.read_text())["cluster_id"]
        for p in (DATA / "data" / "parquet").glob("*/OCP/clusters/*/cluster.json")
    }
    for cluster, scale in CLUSTERS.items():
        if cluster in existing:
            continue
        G.SCALES[cluster] = scale
        text = G.scale_yaml(cluster).replace(f"start_date: '{G.START_DATE}'", f"start_date: '{START}'")
        text = text.replace(f"end_date: '{G.END_DATE}'", f"end_date: '{END}'")
        yaml_path = Path(tempfile.mkdtemp()) / f"{cluster}.yml"
        yaml_path.write_text(text)
        result = G.generate(open_data_root(str(DATA)), yaml_path=yaml_path, cluster_id=cluster)
        print(f"generated {cluster}: nise {result.nise_seconds:.0f}s (cache hit {result.cache_hit})", file=sys.stderr)


class Dev:
    """`dagster dev` on a free port with ocp_assets' dagster.yaml in a fresh DAGSTER_HOME."""

    def __init__(self, dsn: str, home: Path):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        write_instance_yaml(home)
        self.home = home
        env = {
            **os.environ,
            "DAGSTER_HOME": str(home),
            "OCP_ASSETS_DSN": dsn,
            "OCP_ASSETS_DATA_ROOT": str(DATA),
            "OCP_ASSETS_SCHEMA": SCHEMA,
            "OCP_ASSETS_REGISTRY_SCHEMA": REGISTRY,
            "OCP_ASSETS_START_DATE": START,
            **dagster_instance_env(dsn, DAGSTER_DB),
        }
        self.log = (home / "dev.log").open("w")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dagster"),
                "dev",
                "-w",
                str(REPO / "workspace.yaml"),
                "-h",
                "127.0.0.1",
                "-p",
                str(self.port),
            ],
            cwd=home,
            env=env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.peak_process_mb = 0.0
        self.peak_tree_mb = 0.0
        self.peak_tree: list[tuple[float, float, str]] = []  # (RSS, PSS, command) of each process at the tree's peak
        self._sampling = True
        threading.Thread(target=self._sample, daemon=True).start()
        self.wait(
            lambda: self.gql("{ repositoriesOrError { ... on RepositoryConnection { nodes { name } } } }")[
                "repositoriesOrError"
            ]["nodes"],
            120,
        )

    def _sample(self) -> None:
        while self._sampling:
            rss = tree_rss_mb(self.process.pid)
            if rss:
                self.peak_process_mb = max(self.peak_process_mb, max(r for r, _, _ in rss))
                if sum(p for _, p, _ in rss) > self.peak_tree_mb:
                    self.peak_tree_mb = sum(p for _, p, _ in rss)
                    self.peak_tree = sorted(rss, reverse=True)
            time.sleep(0.25)

    def gql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            body = json.load(response)
        if "errors" in body:
            raise RuntimeError(body["errors"])
        return body["data"]

    def wait(self, probe, timeout: float, step: float = 0.25):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                value = probe()
            except (OSError, RuntimeError, KeyError, TypeError):
                value = None
            if value:
                return value
            time.sleep(step)
        raise TimeoutError("dagster dev did not get there in time")

    def stop(self) -> None:
        self._sampling = False
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)


def tree_rss_mb(root: int) -> list[tuple[float, float]]:
    """(RSS, PSS) of every process descending from root, from /proc. A forked process's RSS counts the pages it
    shares with its parent; PSS splits shared pages among their sharers, so PSS adds up to the tree's real use."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                ppid = int(Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry))
    rss, todo = [], [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            fields = {
                line.split(":")[0]: int(line.split()[1]) / 1024
                for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()[1:]
            }
            command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()[:90]
            rss.append((fields["Rss"], fields["Pss"], command))
        except (OSError, KeyError, ValueError, IndexError):
            pass
    return rss


def reset(dsn: str) -> None:
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DAGSTER_DB}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DAGSTER_DB}"')
        conn.execute(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE')
        conn.execute(f'DROP SCHEMA IF EXISTS "{REGISTRY}" CASCADE')


RUNS = "{ runsOrError { ... on Runs { results { runId status } } } }"


def finished_runs(dev: Dev, before: set[str] = frozenset()) -> list[dict] | None:
    """The runs not in `before`, once there is at least one and all have ended."""
    runs = [r for r in dev.gql(RUNS)["runsOrError"]["results"] if r["runId"] not in before]
    return runs if runs and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs) else None


def new_runs_succeeded(dev: Dev, before: set[str]) -> list[dict]:
    runs = dev.wait(lambda: finished_runs(dev, before), 300)
    assert all(r["status"] == "SUCCESS" for r in runs), runs
    return runs


def last_event(dev: Dev, runs: list[dict], event_type: str) -> float:
    """The latest timestamp of an event of that type in the runs, read from Dagster's event log."""
    os.environ["DAGSTER_HOME"] = str(dev.home)
    with dg.DagsterInstance.get() as instance:
        return max(
            e.timestamp
            for r in runs
            for e in instance.all_logs(r["runId"])
            if e.dagster_event is not None and e.dagster_event.event_type_value == event_type
        )


def sensor_first_pass(dev: Dev) -> float:
    started = time.time()
    dev.gql("mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) { __typename } }", {"s": SENSOR})
    dev.wait(lambda: len(dev.gql(RUNS)["runsOrError"]["results"]) >= 2 and finished_runs(dev), 600)
    runs = finished_runs(dev)
    assert all(r["status"] == "SUCCESS" for r in runs), runs
    return last_event(dev, runs, "ASSET_CHECK_EVALUATION") - started


def backfill_30_days(dev: Dev) -> float:
    keys = [f"month-a|2026-10-{day:02d}" for day in range(2, 32)]
    before = {r["runId"] for r in dev.gql(RUNS)["runsOrError"]["results"]}
    started = time.time()
    dev.gql(
        """mutation($p: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $p) {
             __typename ... on PythonError { message } } }""",
        {"p": {"assetSelection": [{"path": [s]} for s in STAGES], "partitionNames": keys, "fromFailure": False}},
    )
    runs = new_runs_succeeded(dev, before)
    return last_event(dev, runs, "ASSET_CHECK_EVALUATION") - started


def rewritten_file(dev: Dev, day: str = "2026-10-15") -> float:
    folder = DATA / "data" / "parquet" / "daily"
    source = next(
        json.loads(p.read_text())["source_uuid"]
        for p in (DATA / "data" / "parquet").glob("*/OCP/clusters/*/cluster.json")
        if json.loads(p.read_text())["cluster_id"] == "month-b"
    )
    path = sorted(folder.glob(f"*/OCP/pod_usage/source={source}/year=2026/month=10/*.parquet"))[0]
    table = pq.read_table(path)
    on_day = pc.equal(pc.cast(table["interval_start"], pa.date32()), pa.scalar(dt.date.fromisoformat(day)))
    column = table.schema.get_field_index("pod_usage_cpu_core_seconds")
    doubled = pc.if_else(
        on_day, pc.multiply(table["pod_usage_cpu_core_seconds"], 2.0), table["pod_usage_cpu_core_seconds"]
    )
    before = {r["runId"] for r in dev.gql(RUNS)["runsOrError"]["results"]}
    temporary = path.with_name("." + path.name + ".tmp")
    pq.write_table(table.set_column(column, "pod_usage_cpu_core_seconds", doubled), temporary)
    started = time.time()
    os.replace(temporary, path)
    runs = new_runs_succeeded(dev, before)
    return last_event(dev, runs, "ASSET_MATERIALIZATION") - started


def spread(values: list[float]) -> str:
    return (
        f"median {statistics.median(values):.1f} s (min {min(values):.1f}, max {max(values):.1f}, {len(values)} runs)"
    )


MEASURES = {
    "sensor": "sensor first pass, 2 clusters x 31 days (sensor on -> last check)",
    "backfill": "30-day backfill of month-a via launchPartitionBackfill (launch -> last check)",
    "rewrite": "rewritten day file of month-b -> its new daily_summary materialization",
}


def one_repetition(dsn: str, results: dict[str, list[float]]) -> None:
    reset(dsn)
    home = Path(tempfile.mkdtemp(prefix="ocp_assets_bench_ui_"))
    dev = Dev(dsn, home)
    try:
        results["sensor"].append(sensor_first_pass(dev))
        results["backfill"].append(backfill_30_days(dev))
        results["rewrite"].append(rewritten_file(dev))
    finally:
        dev.stop()
        results["process_mb"].append(dev.peak_process_mb)
        results["tree_mb"].append(dev.peak_tree_mb)
        shutil.rmtree(home, ignore_errors=True)
    print(json.dumps({k: v[-1] for k, v in results.items()}), file=sys.stderr)
    for rss, pss, command in dev.peak_tree:
        print(f"  at the peak: RSS {rss:5.0f} MB  PSS {pss:5.0f} MB  {command}", file=sys.stderr)


def print_results(results: dict[str, list[float]]) -> None:
    for key, text in MEASURES.items():
        print(f"{text}: {spread(results[key])}")
    print(
        f"peak RSS of one process: median {statistics.median(results['process_mb']):.0f} MB; the whole dagster "
        "dev tree "
        f"(PSS, shared pages counted once): median {statistics.median(results['tree_mb']):.0f} MB (max "
        f"{max(results['tree_mb']):.0f})"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--dsn", default=os.environ.get("OCP_ASSETS_DSN", "postgresql://postgres@127.0.0.1:5432/postgres")
    )
    parser.add_argument("--json", action="store_true", help="end with the results as one JSON line (benchmark.py --ui)")
    args = parser.parse_args()
    prepare_data()
    os.environ.update(dagster_instance_env(args.dsn, DAGSTER_DB))  # for reading the event log from this process
    results: dict[str, list[float]] = {k: [] for k in (*MEASURES, "process_mb", "tree_mb")}
    for _ in range(args.repeat):
        one_repetition(args.dsn, results)
    print_results(results)
    if args.json:
        print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
