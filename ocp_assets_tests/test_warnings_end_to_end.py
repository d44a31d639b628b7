"""Warning checks through Dagster and the CLI: WARN, not blocking, the summary written; a stderr line per warning."""

import datetime as dt

import dagster as dg
import pytest

from ocp_assets.cli import main
from ocp_assets.core import outcomes as O
from ocp_assets.defs.partitions import partition_key
from ocp_assets_tests.dagster_fixtures import (  # noqa: F401 (dagster_env_fixture is the dagster_env fixture)
    DAY,
    build_cluster,
    change_day,
    dagster_env_fixture,
)
from ocp_assets_tests.engine_support import enable_keys
from ocp_assets_tests.reference.parquet_fixtures import KokuParquetBuilder

BLOCKING = {name for names in O.CHECKS_BY_STAGE.values() for name in names} - O.WARNING_CHECKS


def test_usage_over_capacity_warns_in_dagster_and_the_partition_is_still_materialized(dagster_env):
    identity = build_cluster(dagster_env.data_root, "cluster-a", [DAY])
    dagster_env.register(identity)
    key = str(partition_key("cluster-a", DAY))
    # build_cluster's day 0, usage x 20: master-1's apiserver 0.2 cores x 24 h x 20 = 96 core-hours, its 4 cores' 96
    # (full, not over); worker-1: web-0 0.1 x 24 + web-1 0.2 x 24 + batch 0.5 x 12 h = 13.2, x 20 = 264 of 8 x 24 =
    # 192 (137.5 %); the cluster 360 of 288 (125.0 %). worker-1's unallocated usage: 192 - 264 = -72.
    change_day(dagster_env.data_root, identity, "pod_usage", "pod_usage_cpu_core_seconds", DAY, lambda v: 20 * v)

    result = dagster_env.materialize(partition_key=key)

    assert result.success  # the warnings do not fail the step
    assert not [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert [
        e.partition for e in result.get_asset_materialization_events() if e.asset_key.path == ["daily_summary"]
    ] == [key]
    evaluations = {e.check_name: e for e in result.get_asset_check_evaluations()}
    assert all(evaluations[name].passed for name in BLOCKING)
    capacity = evaluations[O.USAGE_WITHIN_CAPACITY]
    assert (capacity.passed, capacity.severity, capacity.blocking) == (False, dg.AssetCheckSeverity.WARN, False)
    over = [
        (r.data["scope"], r.data["node"], r.data["usage"], r.data["capacity"], r.data["utilisation_percent"])
        for r in capacity.metadata["over_capacity"].value.records
    ]
    assert over == [("cluster", None, 360.0, 288.0, 125.0), ("node", "worker-1", 264.0, 192.0, 137.5)]
    unallocated = evaluations[O.UNALLOCATED_NOT_NEGATIVE]
    assert (unallocated.passed, unallocated.severity, unallocated.blocking) == (
        False,
        dg.AssetCheckSeverity.WARN,
        False,
    )
    negative = [(r.data["node"], r.data["measure"]) for r in unallocated.metadata["negative_values"].value.records]
    assert ("worker-1", "pod_usage_cpu_core_hours") in negative and all(n == "worker-1" for n, _ in negative)
    assert evaluations[O.ROWS_LIKE_RECENT_DAYS].passed  # the cluster's first day: nothing to compare
    # A blocking check keeps severity ERROR.
    assert (
        evaluations[O.USAGE_CONSERVED].severity == dg.AssetCheckSeverity.ERROR
        and evaluations[O.USAGE_CONSERVED].blocking
    )
    # Written: the worker's pods hold the 264 core-hours in PostgreSQL.
    worker_pods = [r for r in dagster_env.summary_rows() if r[4] == "worker-1" and r[2] == "Pod" and r[5] is not None]
    assert float(sum(r[7] for r in worker_pods)) == pytest.approx(264.0)
    # The partition's metadata shows the utilisation next to usage and capacity: 360 / 288 = 125.0 %.
    metadata = {
        e.partition: e.materialization.metadata
        for e in result.get_asset_materialization_events()
        if e.asset_key.path == ["daily_summary"]
    }[key]
    assert metadata["cpu_utilisation_percent"].value == 125.0
    names = list(metadata)
    assert names.index("cpu_utilisation_percent") == names.index("cpu_capacity_core_hours") + 1


SOURCE = "7d7c1c3e-0b7e-4d55-9c43-0c1f9f0a9e15"
ACCOUNT = "10001"
FIRST = dt.date(2026, 10, 1)
# Pods per day: 6 on days 1-3, 2 on day 4 (the thin day), 4 on day 5. Each pod has its own label set (key app,
# enabled), so its own Pod row; plus the node's one unallocated row: 7, 7, 7, 3 and 5 rows.
PODS = [6, 6, 6, 2, 4]


def _cluster_with_a_thin_day(tmp_path) -> None:
    builder = KokuParquetBuilder(tmp_path, account=ACCOUNT, source=SOURCE)
    for n, pods in enumerate(PODS):
        day = FIRST + dt.timedelta(days=n)
        for i in range(pods):
            builder.pod(day, pod=f"p{i}", namespace="app", node="worker-1", resource_id="i-1", labels={"app": f"a{i}"})
        builder.node_labels(day, node="worker-1", labels={"kubernetes_io_arch": "amd64"})
    builder.write()


def test_cli_prints_one_warning_line_for_the_thin_day_and_writes_it(pg, tmp_path, capsys, dsn):
    conn, schema = pg
    enable_keys(conn, schema, ["app"])
    _cluster_with_a_thin_day(tmp_path)
    last = FIRST + dt.timedelta(days=len(PODS) - 1)
    args = ["summarize", "--data-root", str(tmp_path), "--account", ACCOUNT, "--source", SOURCE, "--cluster-id", "c1"]
    args += ["--start", FIRST.isoformat(), "--end", last.isoformat(), "--dsn", dsn, "--schema", schema]

    assert main(args) == 0  # a warning is not a failure

    warnings = [line for line in capsys.readouterr().err.splitlines() if "warning" in line]
    # Day 4: 3 rows against the median 7 of days 1-3 (threshold 3.5). Day 5: 5 rows against the median of 7, 7, 7, 3
    # = 7: not thin. Day 1 has no earlier day; days 2 and 3 have as many rows as the days before them.
    assert warnings == [
        "ocp-assets: warning: c1 2026-10-04: rows_like_recent_days: far fewer rows than recent days: 3 rows against "
        "a median of 7.0 over the 3 earlier day(s) (< 50%)"
    ]
    written = conn.execute(
        f'SELECT usage_start, count(*) FROM "{schema}".reporting_ocpusagelineitem_daily_summary GROUP BY 1 ORDER BY 1'
    ).fetchall()
    assert [count for _, count in written] == [pods + 1 for pods in PODS]  # the thin day is written all the same
