"""Concurrent writers on real PostgreSQL: the same day twice, days of one new cluster, two new clusters in a new month."""

import datetime as dt
import threading

import psycopg
import pytest

from ocp_assets.core.engine import ClusterDay
from ocp_assets.core.pipeline import DayTask, summarize_cluster_day
from ocp_assets.core.storage import open_data_root
from ocp_assets_tests.dagster_fixtures import ENABLED_KEYS, build_cluster
from ocp_assets_tests.engine_support import enable_keys

# A month no earlier test writes: its summary partition does not exist yet, so every writer races to create it.
DAYS = [dt.date(2027, 2, 3), dt.date(2027, 2, 4)]
TRIALS = 3


def _run_at_once(dsn: str, schema: str, data_root, jobs: list[tuple]) -> list:
    """Each job (identity, day) in its own thread and connection, released together by a barrier."""
    barrier = threading.Barrier(len(jobs))
    results: list = [None] * len(jobs)

    def work(index: int, identity, day: dt.date) -> None:
        with psycopg.connect(dsn, autocommit=True) as conn:
            task = DayTask(f"{identity.cluster_id}|{day}", ClusterDay(identity.account, identity.source_uuid,
                                                                       identity.cluster_id, identity.cluster_id, day), schema)
            barrier.wait()
            try:
                results[index] = summarize_cluster_day(conn, open_data_root(str(data_root)), task)
            except Exception as exc:  # noqa: BLE001 (reported by the assertion below, with its job)
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
        "periods": one("SELECT cluster_id, report_period_start, count(*) FROM {s}.reporting_ocpusagereportperiod GROUP BY 1, 2 ORDER BY 1, 2"),
        "clusters": one("SELECT provider_id::text, count(*) FROM {s}.reporting_ocp_clusters GROUP BY 1 ORDER BY 1"),
        "duplicate_nodes": one("SELECT node, resource_id, node_capacity_cpu_cores, cluster_id, count(*)"
                               " FROM {s}.reporting_ocp_nodes GROUP BY 1, 2, 3, 4 HAVING count(*) > 1"),
        "summary": one("SELECT source_uuid::text, usage_start, data_source, count(*) FROM {s}.reporting_ocpusagelineitem_daily_summary"
                       " GROUP BY 1, 2, 3 ORDER BY 1, 2, 3"),
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
        r if isinstance(r, Exception) else r.first_failure() for r in results]
    after_race = _table_counts(conn, schema)
    assert [count for *_, count in after_race["periods"]] == [1, 1]  # one report period per cluster and month
    assert [count for _, count in after_race["clusters"]] == [1, 1]
    assert after_race["duplicate_nodes"] == []
    # Each cluster-day once: a sequential re-run of every day replaces the rows and finds the same counts.
    for identity, day in [(a, DAYS[0]), (a, DAYS[1]), (b, DAYS[0])]:
        cd = ClusterDay(identity.account, identity.source_uuid, identity.cluster_id, identity.cluster_id, day)
        assert summarize_cluster_day(conn, open_data_root(str(tmp_path)), DayTask("rerun", cd, schema)).passed
    assert _table_counts(conn, schema) == after_race
