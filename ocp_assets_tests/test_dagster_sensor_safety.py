"""koku_parquet_sensor's safety: a mass removal (unmounted root, emptied prefix) is refused, a tick whose runs were
never stored is requested again, and a file whose days cannot be read runs the days it stands for (red, named)."""

import datetime as dt

import dagster as dg
import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ocp_assets.core import reader
from ocp_assets.core.errors import InputDataError
from ocp_assets.defs.sensors import request_span
from ocp_assets_tests.dagster_fixtures import (  # noqa: F401 (fixture)
    DAY,
    build_cluster,
    dagster_env_fixture,
    daily_files,
    sensor_tick,
    touch_later,
)
from ocp_assets_tests.reference.parquet_fixtures import KokuParquetBuilder

DAYS = [DAY + dt.timedelta(days=n) for n in range(3)]


def _tick(env, *, store_runs: bool = True) -> dg.SensorResult:
    result = sensor_tick(env, getattr(env, "cursor", None), store_runs=store_runs)
    env.cursor = result.cursor
    return result


def _spans(result: dg.SensorResult) -> list[tuple[str, str]]:
    return sorted(request_span(r) for r in result.run_requests)


def _source_files(env, identity) -> list:
    """Every Parquet file of the cluster's source, counted on disk (hourly and daily, every report type)."""
    return sorted(p for p in env.data_root.rglob("*.parquet") if f"source={identity.source_uuid}" in str(p))


def _file_state(env) -> list[tuple]:
    with psycopg.connect(env.dsn, autocommit=True) as conn:
        return conn.execute(
            f'SELECT cluster_id, key, size, mtime_ns FROM "{env.registry_schema}".parquet_file_state ORDER BY 1, 2'
        ).fetchall()


def _late_pod_file(env, identity, day: dt.date) -> list:
    """A new pod file with one late hour of `day` (as koku adds a late report), next to the cluster's others."""
    staging = env.data_root.parent / "late"
    late = KokuParquetBuilder(staging, account=identity.account, source=identity.source_uuid)
    late.pod(day, pod="late-pod", namespace="shop", node="worker-1", resource_id="i-worker-1", hours=range(23, 24))
    moved = []
    for path in late.write():
        target = env.data_root / path.relative_to(staging)
        target = target.with_name("late-" + target.name)
        target.parent.mkdir(parents=True, exist_ok=True)
        path.rename(target)
        moved.append(target)
    return moved


# ---------------------------------------------------------------- B1: a mass removal is refused


def test_an_unmounted_data_root_requests_nothing_and_keeps_the_file_state(dagster_env):
    a = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    b = build_cluster(dagster_env.data_root, "cluster-b", DAYS[:1])
    files = {"cluster-a": len(_source_files(dagster_env, a)), "cluster-b": len(_source_files(dagster_env, b))}
    assert _spans(_tick(dagster_env)) == [
        ("cluster-a|2026-03-03", "cluster-a|2026-03-05"),
        ("cluster-b|2026-03-03", "cluster-b|2026-03-03"),
    ]
    assert _tick(dagster_env).run_requests == []
    seen = _file_state(dagster_env)
    assert len(seen) == files["cluster-a"] + files["cluster-b"]

    # The volume goes away (the directory itself is missing), twice: each tick refuses, nothing is forgotten.
    unmounted = dagster_env.data_root.with_name("unmounted")
    dagster_env.data_root.rename(unmounted)
    for _ in range(2):
        refused = _tick(dagster_env)
        assert refused.run_requests == []
        reason = refused.skip_reason.skip_message
        for cluster_id, count in files.items():
            assert f"{cluster_id}: all {count} koku Parquet file(s) seen before" in reason
        assert "no run requested" in reason and "parquet_file_state WHERE cluster_id = 'cluster-a'" in reason
        assert _file_state(dagster_env) == seen

    # Mounted again, unchanged: nothing to run.
    unmounted.rename(dagster_env.data_root)
    back = _tick(dagster_env)
    assert back.run_requests == [] and back.skip_reason is None
    assert _file_state(dagster_env) == seen


def test_an_emptied_prefix_refuses_only_its_cluster_and_the_others_go_on(dagster_env):
    a = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    b = build_cluster(dagster_env.data_root, "cluster-b", DAYS)
    _tick(dagster_env)
    _tick(dagster_env)
    a_files = _source_files(dagster_env, a)

    # Every file of cluster-a removed (its folders stay, as an emptied S3 prefix lists nothing); cluster-b gets a
    # late file on its middle day at the same time.
    for path in a_files:
        path.unlink()
    _late_pod_file(dagster_env, b, DAYS[1])
    result = _tick(dagster_env)

    assert _spans(result) == [("cluster-b|2026-03-04", "cluster-b|2026-03-04")]
    assert all(r.tags["ocp_assets/cluster"] == "cluster-b" for r in result.run_requests)
    quiet = _tick(dagster_env)
    assert quiet.run_requests == []
    assert f"cluster-a: all {len(a_files)} koku Parquet file(s) seen before covering 3 day(s), 2026-03-03 .. " in (
        quiet.skip_reason.skip_message
    )
    assert sum(1 for row in _file_state(dagster_env) if row[0] == "cluster-a") == len(a_files)


def test_an_intended_removal_is_confirmed_by_forgetting_the_file_state_the_warning_names(dagster_env):
    a = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    _tick(dagster_env)
    _tick(dagster_env)
    for path in _source_files(dagster_env, a):
        path.unlink()
    refused = _tick(dagster_env)
    reason = refused.skip_reason.skip_message
    statement = reason[reason.index("DELETE FROM") : reason.index(";", reason.index("DELETE FROM"))]

    with psycopg.connect(dagster_env.dsn, autocommit=True) as conn:
        conn.execute(statement)
    confirmed = _tick(dagster_env)

    assert confirmed.run_requests == [] and confirmed.skip_reason is None
    assert [row for row in _file_state(dagster_env) if row[0] == "cluster-a"] == []


def test_a_partial_removal_still_runs_the_days_it_touched(dagster_env):
    """A rewritten month (one daily file replaced by a new one) and a removed file with others left both run."""
    a = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    late = _late_pod_file(dagster_env, a, DAYS[2])
    _tick(dagster_env)
    _tick(dagster_env)

    for path in late:  # some of its files removed, the others stay
        path.unlink()
    assert _spans(_tick(dagster_env)) == [("cluster-a|2026-03-05", "cluster-a|2026-03-05")]
    _tick(dagster_env)

    (storage,) = daily_files(dagster_env.data_root, a, "storage_usage")
    storage.rename(storage.with_name("rewritten-" + storage.name))  # koku rewrites the month under a new name
    assert _spans(_tick(dagster_env)) == [("cluster-a|2026-03-03", "cluster-a|2026-03-05")]


# ---------------------------------------------------------------- C9: file state stored only once the runs exist


def test_a_tick_whose_runs_were_not_stored_is_requested_again_with_the_same_run_keys(dagster_env):
    a = build_cluster(dagster_env.data_root, "cluster-a", DAYS)

    # The first tick's runs are lost (the daemon died after the evaluation): the next asks for the same runs.
    lost = _tick(dagster_env, store_runs=False)
    again = _tick(dagster_env)
    assert _spans(lost) == _spans(again) == [("cluster-a|2026-03-03", "cluster-a|2026-03-05")]
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in lost.run_requests]
    assert _file_state(dagster_env) == []  # nothing marked seen before its runs exist
    assert _tick(dagster_env).run_requests == []  # they exist now: the file state is stored
    assert len(_file_state(dagster_env)) == len(_source_files(dagster_env, a))

    # Late data whose runs are lost twice in a row, then stored.
    _late_pod_file(dagster_env, a, DAYS[1])
    first = _tick(dagster_env, store_runs=False)
    second = _tick(dagster_env, store_runs=False)
    third = _tick(dagster_env)
    assert _spans(first) == _spans(second) == _spans(third) == [("cluster-a|2026-03-04", "cluster-a|2026-03-04")]
    assert len({r.run_key for r in [*first.run_requests, *second.run_requests, *third.run_requests]}) == 1
    assert _tick(dagster_env).run_requests == []

    # A rewritten file whose run was lost, rewritten again before the next tick: the next tick runs its days (under
    # a new key, for the newest change), and no later tick again.
    (pod,) = [p for p in daily_files(dagster_env.data_root, a, "pod_usage") if not p.name.startswith("late-")]
    touch_later(pod)
    lost = _tick(dagster_env, store_runs=False)
    touch_later(pod)
    rerun = _tick(dagster_env)
    assert _spans(lost) == _spans(rerun) == [("cluster-a|2026-03-03", "cluster-a|2026-03-05")]
    assert rerun.run_requests[0].run_key != lost.run_requests[0].run_key
    assert _tick(dagster_env).run_requests == []


def test_a_change_undone_before_its_lost_runs_is_not_run_but_one_whose_runs_exist_is(dagster_env):
    a = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    _tick(dagster_env)
    _tick(dagster_env)

    # Lost runs, then the late file goes again: no run ever saw it, so nothing is to redo.
    late = _late_pod_file(dagster_env, a, DAYS[0])
    _tick(dagster_env, store_runs=False)
    for path in late:
        path.unlink()
    assert _tick(dagster_env).run_requests == []

    # Stored runs (the day may have been summarised with it), then it goes: that day runs again.
    late = _late_pod_file(dagster_env, a, DAYS[0])
    assert _spans(_tick(dagster_env)) == [("cluster-a|2026-03-03", "cluster-a|2026-03-03")]
    for path in late:
        path.unlink()
    assert _spans(_tick(dagster_env)) == [("cluster-a|2026-03-03", "cluster-a|2026-03-03")]
    assert _tick(dagster_env).run_requests == []


def test_a_tick_evaluated_again_with_the_old_cursor_asks_for_the_runs_already_stored(dagster_env):
    """The daemon stored the runs but died before the cursor: the next evaluation (old cursor) names the same run
    keys, which Dagster skips, and the one after stores the file state."""
    build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    stored = sensor_tick(dagster_env, None)
    repeated = sensor_tick(dagster_env, None, store_runs=False)
    assert [r.run_key for r in repeated.run_requests] == [r.run_key for r in stored.run_requests]
    assert sensor_tick(dagster_env, repeated.cursor).run_requests == []
    assert _file_state(dagster_env)


# ---------------------------------------------------------------- a file whose days cannot be read


def _set_second_start(value):
    """A rewrite of the file with `value` as its second row's interval_start (footer statistics kept)."""

    def rewrite(path) -> None:
        table = pq.read_table(path)
        starts = table["interval_start"].to_pylist()
        starts[1] = value
        column = pa.array(starts, table.schema.field("interval_start").type)
        pq.write_table(table.set_column(table.schema.get_field_index("interval_start"), "interval_start", column), path)

    return rewrite


def _cut_in_half(path) -> None:
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


# How a file is broken, and what the error must say of it (derived from the reader's contract: file, column, row).
BREAKS = {
    "NULL interval_start": (_set_second_start(None), "column 'interval_start', row 2: interval_start is NULL"),
    "year 9999": (_set_second_start(dt.datetime(9999, 12, 31)), "column 'interval_start', row 2: interval_start 9999"),
    "Go's zero time": (_set_second_start(dt.datetime(1, 1, 1)), "column 'interval_start', row 2: interval_start 0001"),
    "unreadable footer": (_cut_in_half, ": not a readable Parquet file"),
}
SPAN = [("cluster-a|2026-03-03", "cluster-a|2026-03-05")]


def _unknown_days_warnings(capfd) -> list[str]:
    """The sensor's warnings about files whose days cannot be read, since the last call (the sensor context's log
    goes to stderr)."""
    return [line for line in capfd.readouterr().err.splitlines() if "which days it holds is unknown" in line]


def _run(env, result: dg.SensorResult) -> list[dg.ExecuteInProcessResult]:
    """Execute a tick's requested runs as the daemon would launch them (one partition, or a range by its tags)."""
    return [env.materialize(partition_key=r.partition_key, tags=r.tags) for r in result.run_requests]


@pytest.mark.parametrize("report_type", ["pod_usage", "node_labels"])
@pytest.mark.parametrize("broken", BREAKS)
def test_a_known_file_rewritten_unreadable_runs_the_days_it_covered_once_and_warns_once(
    dagster_env, capfd, broken, report_type
):
    a = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    _tick(dagster_env)
    _tick(dagster_env)
    (path,) = daily_files(dagster_env.data_root, a, report_type)
    good = path.read_bytes()
    capfd.readouterr()

    BREAKS[broken][0](path)
    assert _spans(_tick(dagster_env)) == SPAN  # the days it covered before, once
    for _ in range(3):
        assert _tick(dagster_env).run_requests == []
    (said,) = _unknown_days_warnings(capfd)
    assert f"file {path}" in said and BREAKS[broken][1] in said
    assert "the days it covered before (3 day(s), 2026-03-03 .. 2026-03-05)" in said

    # Another bad version of the file: its days again, and one more warning.
    path.write_bytes(good[: len(good) // 3])
    assert _spans(_tick(dagster_env)) == SPAN
    assert _tick(dagster_env).run_requests == []
    assert len(_unknown_days_warnings(capfd)) == 1

    # Fixed: the days run again, and nothing is left to say.
    path.write_bytes(good)
    touch_later(path)
    assert _spans(_tick(dagster_env)) == SPAN
    assert _tick(dagster_env).run_requests == []
    assert _unknown_days_warnings(capfd) == []
    assert "unreadable" not in dagster_env.cursor


@pytest.mark.parametrize("broken", ["NULL interval_start", "unreadable footer"])
def test_the_days_of_a_bad_file_fail_naming_it_keep_their_rows_and_succeed_once_it_is_fixed(dagster_env, broken):
    a = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    assert all(run.success for run in _run(dagster_env, _tick(dagster_env)))
    _tick(dagster_env)
    before = dagster_env.summary_rows()
    assert {row[1] for row in before} == set(DAYS)
    (path,) = daily_files(dagster_env.data_root, a, "pod_usage")
    good = path.read_bytes()

    BREAKS[broken][0](path)
    (failed_run,) = _run(dagster_env, _tick(dagster_env))

    assert not failed_run.success
    failed = [e for e in failed_run.get_asset_check_evaluations() if not e.passed]
    assert {e.partition for e in failed} == {f"cluster-a|{day}" for day in DAYS}  # every day red, not one log line
    for evaluation in failed:
        assert f"file {path}" in evaluation.description and BREAKS[broken][1] in evaluation.description
    assert dagster_env.summary_rows() == before  # a failed day keeps its rows
    assert _tick(dagster_env).run_requests == []  # not retried every tick

    path.write_bytes(good)
    touch_later(path)
    (fixed_run,) = _run(dagster_env, _tick(dagster_env))
    assert fixed_run.success
    assert dagster_env.summary_rows() == before


def test_a_new_unreadable_file_stands_for_its_months_days_or_its_first_day(dagster_env, capfd):
    a = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    _tick(dagster_env)
    _tick(dagster_env)
    capfd.readouterr()

    # In a month the cluster has days of: those days (one warning for each of the hourly and daily files).
    late = _late_pod_file(dagster_env, a, DAYS[1])
    for path in late:
        _cut_in_half(path)
    assert _spans(_tick(dagster_env)) == SPAN
    said = _unknown_days_warnings(capfd)
    assert len(said) == len(late) == 2
    assert all("the days of its folder's month (3 day(s), 2026-03-03 .. 2026-03-05)" in line for line in said)

    # In a new month, beside a readable file of that month: the days that file covers.
    april = _late_pod_file(dagster_env, a, dt.date(2026, 4, 10))
    (april_daily,) = [p for p in april if "/daily/" in str(p)]
    _cut_in_half(april_daily)
    assert _spans(_tick(dagster_env)) == [("cluster-a|2026-04-10", "cluster-a|2026-04-10")]

    # In a new month with no readable file: the month's first day, as the CLI's day discovery counts it.
    may = _late_pod_file(dagster_env, a, dt.date(2026, 5, 20))
    for path in may:
        _cut_in_half(path)
    assert _spans(_tick(dagster_env)) == [("cluster-a|2026-05-01", "cluster-a|2026-05-01")]
    assert _tick(dagster_env).run_requests == []
    assert len(_unknown_days_warnings(capfd)) == 1 + len(may)  # april's daily file, may's two


def test_a_bad_file_whose_runs_were_lost_is_requested_again_without_a_second_warning(dagster_env, capfd):
    a = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    _tick(dagster_env)
    _tick(dagster_env)
    (path,) = daily_files(dagster_env.data_root, a, "storage_usage")
    capfd.readouterr()

    _cut_in_half(path)
    lost = _tick(dagster_env, store_runs=False)
    again = _tick(dagster_env)

    assert _spans(lost) == _spans(again) == SPAN
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in lost.run_requests]
    assert _tick(dagster_env).run_requests == []
    assert len(_unknown_days_warnings(capfd)) == 1


def test_a_read_error_that_passes_with_the_file_unchanged_gets_its_real_days_requested(dagster_env, monkeypatch):
    """A storage error while reading a new file's footer: its month's days are run; once it reads, the days it really
    covers are too, though its size and mtime never changed."""
    a = build_cluster(dagster_env.data_root, "cluster-a", DAYS)
    _tick(dagster_env)
    _tick(dagster_env)
    late = _late_pod_file(dagster_env, a, dt.date(2026, 3, 20))
    read_days = reader.file_days  # the sensor imports it from the reader when it ticks

    def failing_for_the_late_files(root, path):
        if any(path.endswith(p.name) for p in late):
            raise InputDataError("not a readable Parquet file (connection reset)", file=path)
        return read_days(root, path)

    monkeypatch.setattr(reader, "file_days", failing_for_the_late_files)
    assert _spans(_tick(dagster_env)) == SPAN  # the cluster's days of its month
    assert _tick(dagster_env).run_requests == []

    monkeypatch.setattr(reader, "file_days", read_days)
    # Its real day and the days it stood for (run while it could not be read) run again.
    assert _spans(_tick(dagster_env)) == [*SPAN, ("cluster-a|2026-03-20", "cluster-a|2026-03-20")]
    assert _tick(dagster_env).run_requests == []
    assert "unreadable" not in dagster_env.cursor
