"""The day partitions' window: an end date (OCP_ASSETS_END_DATE) pins it whatever the clock says; unset, it ends
today (UTC); the code location reads it when Dagster builds the definitions."""

import datetime as dt
import os
import subprocess
import sys

import dagster as dg
import pytest

from ocp_assets.defs.partitions import END_DATE_ENV, START_DATE_ENV, DayPartitions, day_partitions
from ocp_assets.defs.sensors import RANGE_END_TAG, RANGE_START_TAG, koku_parquet_sensor
from ocp_assets_tests.dagster_fixtures import (  # noqa: F401 (fixture)
    DAY,
    build_cluster,
    dagster_env_fixture,
)


def _noon(day: str, years_later: int = 0) -> dt.datetime:
    date = dt.date.fromisoformat(day)
    return dt.datetime(date.year + years_later, date.month, date.day, 12, tzinfo=dt.UTC)


# (first day, last day, number of days counted by hand)
WINDOWS = [
    ("2026-10-01", "2026-11-30", 31 + 30),  # the UI test's window
    ("2024-02-01", "2024-03-01", 29 + 1),  # a leap February
    ("2025-12-31", "2026-01-01", 2),  # across a year end
    ("2026-10-01", "2026-10-01", 1),
]


@pytest.mark.parametrize(("start", "end", "days"), WINDOWS)
@pytest.mark.parametrize("years_later", [0, 1, 10])
def test_a_pinned_end_date_gives_the_same_days_whatever_the_clock(start, end, days, years_later):
    keys = day_partitions(start, end).get_partition_keys(current_time=_noon(end, years_later))
    assert (len(keys), keys[0], keys[-1]) == (days, start, end)


@pytest.mark.parametrize("clock", ["2026-10-05", "2027-03-05", "2036-02-29"])
def test_an_end_date_after_today_or_none_ends_the_days_today(clock):
    now = _noon(clock)
    later = day_partitions("2026-10-01", "2099-12-31").get_partition_keys(current_time=now)
    unset = day_partitions("2026-10-01").get_partition_keys(current_time=now)
    assert later == unset
    assert (later[0], later[-1]) == ("2026-10-01", clock)  # today is a partition (koku summarises it too)


def test_without_an_end_date_the_days_grow_with_the_clock():
    definition = day_partitions("2026-10-01")
    now = _noon("2026-12-07")
    a_year_later = now + dt.timedelta(days=365)  # 2027-12-07: no 29 February between
    counts = [len(definition.get_partition_keys(current_time=t)) for t in (now, a_year_later)]
    assert counts == [31 + 30 + 7, 31 + 30 + 7 + 365]


def test_last_day_is_the_end_date_or_today_whichever_comes_first():
    pinned = DayPartitions(start_date="2026-10-01", end_date="2026-11-30")
    assert pinned.last_day(dt.date(2027, 12, 7)) == dt.date(2026, 11, 30)
    assert pinned.last_day(dt.date(2026, 11, 1)) == dt.date(2026, 11, 1)
    assert pinned.first_day() == dt.date(2026, 10, 1)
    assert DayPartitions().last_day(dt.date(2027, 12, 7)) == dt.date(2027, 12, 7)
    before = dt.datetime.now(dt.UTC).date()
    unpinned = DayPartitions().last_day()
    assert unpinned in (before, dt.datetime.now(dt.UTC).date())  # today's, even across a midnight in between


@pytest.mark.parametrize("bad", ["30.11.2026", "2026-11-31", "tomorrow"])
def test_a_bad_end_date_names_the_variable(bad):
    with pytest.raises(ValueError, match=rf"\${END_DATE_ENV} is '{bad}', not a day YYYY-MM-DD"):
        day_partitions("2026-10-01", bad)
    with pytest.raises(ValueError, match=rf"\${END_DATE_ENV} is '{bad}', not a day YYYY-MM-DD"):
        DayPartitions(end_date=bad).definition()


@pytest.mark.parametrize("bad", ["01.10.2026", "2026-02-30", "first"])
def test_a_bad_start_date_names_the_variable(bad):
    with pytest.raises(ValueError, match=rf"\${START_DATE_ENV} is '{bad}', not a day YYYY-MM-DD"):
        DayPartitions(start_date=bad).definition()


def test_the_code_location_reads_the_window_from_the_environment_when_dagster_loads_it():
    """As `dagster dev` loads it: `defs()` takes $OCP_ASSETS_START_DATE and $OCP_ASSETS_END_DATE, for the assets'
    partitions and the sensor's resource alike."""
    env = {**os.environ, START_DATE_ENV: "2026-10-01", END_DATE_ENV: "2026-11-30"}
    code = (
        "from ocp_assets.definitions import defs; d = defs();"
        "days = d.resolve_assets_def('daily_summary').partitions_def.get_partitions_def_for_dimension('day');"
        "k = days.get_partition_keys(); p = d.resources['day_partitions'];"
        "print(len(k), k[0], k[-1], p.first_day(), p.last_day())"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120, check=True)
    assert out.stdout.split() == ["61", "2026-10-01", "2026-11-30", "2026-10-01", "2026-11-30"]


def test_the_sensor_requests_no_day_after_the_end_date(dagster_env, monkeypatch):
    days = [DAY + dt.timedelta(days=n) for n in range(4)]  # 2026-03-03 .. 2026-03-06
    build_cluster(dagster_env.data_root, "cluster-a", days)
    monkeypatch.setitem(dagster_env.resources, "day_partitions", DayPartitions(end_date="2026-03-04"))
    with dg.build_sensor_context(instance=dagster_env.instance, resources=dagster_env.resources) as context:
        result = koku_parquet_sensor(context)
    spans = [(r.tags[RANGE_START_TAG], r.tags[RANGE_END_TAG]) for r in result.run_requests]
    assert spans == [("cluster-a|2026-03-03", "cluster-a|2026-03-04")]
