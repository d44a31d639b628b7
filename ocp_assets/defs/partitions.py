"""The partitionings of the ocp_assets assets: cluster (dynamic, readable cluster_id) x day (UTC) for the summary,
cluster x month (UTC) for the cost model, whose months are those of the days.

The day window (first and last day) is a setting: ``DayPartitions`` holds it, builds both partitions definitions
when the code location is built (``ocp_assets.definitions``) and is the resource the sensor reads it from, so the
assets and the sensor always see the same days, and the months are the ones those days fall in.
"""

import datetime as dt
from urllib.parse import quote

import dagster as dg
from pydantic import Field

CLUSTER_DIMENSION = "cluster"
DAY_DIMENSION = "day"
MONTH_DIMENSION = "month"
CLUSTERS_PARTITIONS_NAME = "clusters"
START_DATE_ENV = "OCP_ASSETS_START_DATE"
END_DATE_ENV = "OCP_ASSETS_END_DATE"
DEFAULT_START_DATE = "2026-01-01"
DAY_FORMAT = "%Y-%m-%d"
MONTH_FORMAT = "%Y-%m"

clusters_partitions = dg.DynamicPartitionsDefinition(name=CLUSTERS_PARTITIONS_NAME)


def _day(text: str) -> dt.date:
    return dt.datetime.strptime(text, DAY_FORMAT).date()


def configured_day(env: str, text: str) -> dt.date:
    """A setting's day, YYYY-MM-DD; a ValueError naming the variable otherwise."""
    try:
        return _day(text)
    except ValueError:
        raise ValueError(f"${env} is {text!r}, not a day YYYY-MM-DD") from None


def day_partitions(start: str, end: str | None = None) -> dg.DailyPartitionsDefinition:
    """UTC days from `start` to `end` (YYYY-MM-DD, inclusive), or to today when `end` is unset or later.

    end_offset=1: today is a partition too, as koku summarises the current day while data keeps arriving.
    """
    configured_day(START_DATE_ENV, start)
    day_after_end = configured_day(END_DATE_ENV, end) + dt.timedelta(days=1) if end else None
    return dg.DailyPartitionsDefinition(
        start_date=start,
        end_date=day_after_end.strftime(DAY_FORMAT) if day_after_end else None,  # Dagster's end_date is exclusive
        timezone="UTC",
        end_offset=1,
        fmt=DAY_FORMAT,
    )


def month_partitions(start: str, end: str | None = None) -> dg.MonthlyPartitionsDefinition:
    """UTC months (keys YYYY-MM) holding the days from `start` to `end` (or today): the month of `start` is the first
    even when `start` is not its 1st day, and the current month is a partition (end_offset=1), as for the days."""
    first = configured_day(START_DATE_ENV, start).replace(day=1)
    last = configured_day(END_DATE_ENV, end) if end else None
    month_after_end = (last.replace(day=28) + dt.timedelta(days=4)).replace(day=1) if last else None
    return dg.MonthlyPartitionsDefinition(
        start_date=first.strftime(MONTH_FORMAT),
        end_date=month_after_end.strftime(MONTH_FORMAT) if month_after_end else None,  # exclusive, as for the days
        timezone="UTC",
        end_offset=1,
        fmt=MONTH_FORMAT,
    )


class DayPartitions(dg.ConfigurableResource):
    """The day dimension's window: its first day, and its last (unset: today, UTC).

    A later end date changes nothing (no partition lies ahead of today); it pins the partitions to a fixed window,
    e.g. for a test whose counts must not grow with the calendar.
    """

    start_date: str = Field(
        default=DEFAULT_START_DATE, description=f"first day partition, YYYY-MM-DD (env {START_DATE_ENV})"
    )
    end_date: str = Field(
        default="", description=f"last day partition, YYYY-MM-DD; empty: today, UTC (env {END_DATE_ENV})"
    )

    def definition(self) -> dg.MultiPartitionsDefinition:
        """cluster x day, the partitions of every asset and check."""
        days = day_partitions(self.start_date, self.end_date or None)
        return dg.MultiPartitionsDefinition({CLUSTER_DIMENSION: clusters_partitions, DAY_DIMENSION: days})

    def month_definition(self) -> dg.MultiPartitionsDefinition:
        """cluster x month, the partitions of the cost model: the months of the day window."""
        months = month_partitions(self.start_date, self.end_date or None)
        return dg.MultiPartitionsDefinition({CLUSTER_DIMENSION: clusters_partitions, MONTH_DIMENSION: months})

    def first_day(self) -> dt.date:
        return configured_day(START_DATE_ENV, self.start_date)

    def last_day(self, today: dt.date | None = None) -> dt.date:
        """The last day partition: today (UTC), or the end date when that is earlier."""
        today = today or dt.datetime.now(dt.UTC).date()
        return min(today, configured_day(END_DATE_ENV, self.end_date)) if self.end_date else today


def partition_key(cluster_id: str, day: dt.date) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({CLUSTER_DIMENSION: cluster_id, DAY_DIMENSION: day.strftime(DAY_FORMAT)})


def split_key(key: str | dg.MultiPartitionKey) -> tuple[str, dt.date]:
    """(cluster_id, day) of a cluster x day key, given as a MultiPartitionKey or its 'cluster|day' string."""
    return _split(key, DAY_DIMENSION, DAY_FORMAT)


def _split(key: str | dg.MultiPartitionKey, dimension: str, fmt: str) -> tuple[str, dt.date]:
    if isinstance(key, dg.MultiPartitionKey):
        parts = key.keys_by_dimension
        cluster, when = parts[CLUSTER_DIMENSION], parts[dimension]
    else:
        cluster, _, when = str(key).rpartition("|")  # dimensions are ordered by name: cluster|day, cluster|month
    return cluster, dt.datetime.strptime(when, fmt).date()


def month_key(cluster_id: str, month: dt.date) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({CLUSTER_DIMENSION: cluster_id, MONTH_DIMENSION: month.strftime(MONTH_FORMAT)})


def split_month_key(key: str | dg.MultiPartitionKey) -> tuple[str, dt.date]:
    """(cluster_id, the month's first day) of a cluster x month key, as a MultiPartitionKey or 'cluster|YYYY-MM'."""
    return _split(key, MONTH_DIMENSION, MONTH_FORMAT)


def key_path(key: str | dg.MultiPartitionKey) -> str:
    """A filesystem/S3-safe relative path for one partition: cluster=<quoted id>/day=<YYYY-MM-DD>."""
    cluster, day = split_key(key)
    return f"cluster={quote(cluster, safe='')}/day={day.strftime(DAY_FORMAT)}"
