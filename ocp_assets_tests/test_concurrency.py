"""Concurrent writers on PostgreSQL: one day twice, a new cluster's days, new clusters in a new month, CLI + Dagster."""

import datetime as dt
import threading

import psycopg
import pytest

from ocp_assets.core.identity import ClusterDay
from ocp_assets.core.pipeline import DayTask, summarize_cluster_day
from ocp_assets.core.storage import open_data_root
from ocp_assets_tests.dagster_fixtures import (  # noqa: F401 (dagster_home_fixture is the dagster_home fixture)
    ENABLED_KEYS,
    build_cluster,
    dagster_home_fixture,
)
from ocp_assets_tests.engine_support import enable_keys, summarize_command

# A month no earlier test writes: its summary partition does not exist yet, so every writer races to create it.
DAYS = [dt.date(2027, 2, 3), dt.date(2027, 2, 4)]
TRIALS = 3


def _run_at_once(dsn: str, schema: str, data_root, jobs: list[tuple]) -> list:
    """Each job (identity, day) in its own thread and connection, released together by a barrier."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def work(index: int, identity, day: dt.date) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            task = DayTask(
                f"{identity.cluster_id}|{day}",
                ClusterDay(identity.account, identity.source_uuid, identity.cluster_id, identity.cluster_id, day),
                schema,
            )
            barrier.wait()
            try:
                results[index] = summarize_cluster_day(conn, open_data_root(str(data_root)), task)
            except Exception as exc:
                results[index] = exc

    threads = [threading.Thread(target=work, args=(i, identity, day)) for i, (identity, day) in enumerate(jobs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    return results


def _table_counts(conn, schema: str) -> dict[str, object]:
    def one(query: str):
        return conn.execute(query.format(s=f'"{schema}"')).fetchall()

    return {
        "periods": one(
            "SELECT cluster_id, report_period_start, count(*) FROM {s}.reporting_ocpusagereportperiod GROUP BY "
            "1, 2 ORDER BY 1, 2"
        ),
        "clusters": one("SELECT provider_id::text, count(*) FROM {s}.reporting_ocp_clusters GROUP BY 1 ORDER BY 1"),
        "duplicate_nodes": one(
            "SELECT node, resource_id, node_capacity_cpu_cores, cluster_id, count(*)"
            " FROM {s}.reporting_ocp_nodes GROUP BY 1, 2, 3, 4 HAVING count(*) > 1"
        ),
        "summary": one(
            "SELECT source_uuid::text, usage_start, data_source, count(*) FROM "
            "{s}.reporting_ocpusagelineitem_daily_summary"
            " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"
        ),
    }


@pytest.mark.parametrize("trial", range(TRIALS))
def test_concurrent_writers_leave_one_copy_of_every_row(pg, dsn, tmp_path, trial):
    conn, schema = pg
    enable_keys(conn, schema, ENABLED_KEYS)
    a = build_cluster(tmp_path, f"race-a-{trial}", DAYS)
    b = build_cluster(tmp_path, f"race-b-{trial}", DAYS[:1])

    # Same day twice, the other day of the same new cluster, and a second new cluster in the same new month.
    results = _run_at_once(dsn, schema, tmp_path, [(a, DAYS[0]), (a, DAYS[0]), (a, DAYS[1]), (b, DAYS[0])])

    assert all(not isinstance(r, Exception) and r.passed for r in results), [
        r if isinstance(r, Exception) else r.first_failure() for r in results
    ]
    after_race = _table_counts(conn, schema)
    assert [count for *_, count in after_race["periods"]] == [1, 1]  # one report period per cluster and month
    assert [count for _, count in after_race["clusters"]] == [1, 1]
    assert after_race["duplicate_nodes"] == []
    # Each cluster-day once: a sequential re-run of every day replaces the rows and finds the same counts.
    for identity, day in [(a, DAYS[0]), (a, DAYS[1]), (b, DAYS[0])]:
        cd = ClusterDay(identity.account, identity.source_uuid, identity.cluster_id, identity.cluster_id, day)
        assert summarize_cluster_day(conn, open_data_root(str(tmp_path)), DayTask("rerun", cd, schema)).passed
    assert _table_counts(conn, schema) == after_race


def test_cli_summarize_during_a_dagster_run_of_the_same_days(dagster_home, dsn):
    """`dagster asset materialize` over a range and `ocp-assets summarize` of the same days, at once, twice over."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    import dagster as dg

    from ocp_assets.defs.resources import SummaryDatabase

    days = [dt.date(2026, 9, 1) + dt.timedelta(days=n) for n in range(6)]  # within the day partitions (they end today)
    data = Path(dagster_home["OCP_ASSETS_DATA_ROOT"])
    schema = dagster_home["OCP_ASSETS_SCHEMA"]
    identity = build_cluster(data, "both-paths", days)
    db = SummaryDatabase(dsn=dsn, schema_name=schema, registry_schema=dagster_home["OCP_ASSETS_REGISTRY_SCHEMA"])
    with db.connect() as conn:
        db.registry.ensure(conn)
        db.register_cluster(
            conn,
            cluster_id="both-paths",
            source=identity.source_uuid,
            account=identity.account,
            cluster_alias=identity.cluster_alias,
            data_root=str(data),
        )
    with dg.DagsterInstance.get() as instance:
        instance.add_dynamic_partitions("clusters", ["both-paths"])
    bin_dir = Path(sys.executable).parent
    dagster_run = [
        str(bin_dir / "dagster"),
        "asset",
        "materialize",
        "-m",
        "ocp_assets.definitions",
        "--select",
        "group:ocp_summary",  # '*' also holds the cost asset, partitioned by month: one range cannot serve both
        "--partition-range",
        f"both-paths|{days[0]}...both-paths|{days[-1]}",
    ]
    cli_run = summarize_command(data, identity, dsn, schema, cluster_id="both-paths")
    for _ in range(2):
        dagster = subprocess.Popen(dagster_run, env=os.environ.copy(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        clis = [subprocess.run(cli_run, capture_output=True, text=True, timeout=300, check=False) for _ in range(2)]
        out = dagster.communicate(timeout=300)[0].decode()
        assert dagster.returncode == 0, out[-3000:]
        assert all(c.returncode == 0 for c in clis), [c.stderr for c in clis]

    with psycopg.connect(dsn, autocommit=True) as conn:
        counts = _table_counts(conn, schema)
    assert [count for *_, count in counts["periods"]] == [1]
    assert [count for _, count in counts["clusters"]] == [1]
    assert counts["duplicate_nodes"] == []
    # 7 rows a day (build_cluster): 4 pods, 1 volume, 2 unallocated nodes, each exactly once.
    per_day = {}
    for _, day, _, count in counts["summary"]:
        per_day[day] = per_day.get(day, 0) + count
    assert per_day == dict.fromkeys(days, 7)
