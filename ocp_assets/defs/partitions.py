"""The one partitioning of every ocp_assets asset: cluster (dynamic, readable cluster_id) x day (UTC)."""

import datetime as dt
import os
from urllib.parse import quote

import dagster as dg

CLUSTER_DIMENSION = "cluster"
DAY_DIMENSION = "day"
CLUSTERS_PARTITIONS_NAME = "clusters"
START_DATE_ENV = "OCP_ASSETS_START_DATE"
END_DATE_ENV = "OCP_ASSETS_END_DATE"
DEFAULT_START_DATE = "2026-01-01"
DAY_FORMAT = "%Y-%m-%d"

START_DATE = os.environ.get(START_DATE_ENV, DEFAULT_START_DATE)
# The last day partition, YYYY-MM-DD (unset: today, UTC). A later date changes nothing: no partition lies ahead of
# today. It pins the partitions to a fixed window, e.g. for a test whose counts must not grow with the calendar.
END_DATE = os.environ.get(END_DATE_ENV) or None

clusters_partitions = dg.DynamicPartitionsDefinition(name=CLUSTERS_PARTITIONS_NAME)


def _day(text: str) -> dt.date:
    return dt.datetime.strptime(text, DAY_FORMAT).date()


def _configured_day(env: str, text: str) -> dt.date:
    try:
        return _day(text)
    except ValueError:
        raise ValueError(f"${env} is {text!r}, not a day YYYY-MM-DD") from None


def day_partitions(start: str, end: str | None = None) -> dg.DailyPartitionsDefinition:
    """UTC days from `start` to `end` (YYYY-MM-DD, inclusive), or to today when `end` is unset or later.

    end_offset=1: today is a partition too, as koku summarises the current day while data keeps arriving.
    """
    day_after_end = _configured_day(END_DATE_ENV, end) + dt.timedelta(days=1) if end else None
    return dg.DailyPartitionsDefinition(
        start_date=start,
        end_date=day_after_end.strftime(DAY_FORMAT) if day_after_end else None,  # Dagster's end_date is exclusive
        timezone="UTC",
        end_offset=1,
        fmt=DAY_FORMAT,
    )


days_partitions = day_partitions(START_DATE, END_DATE)
cluster_day_partitions = dg.MultiPartitionsDefinition(
    {CLUSTER_DIMENSION: clusters_partitions, DAY_DIMENSION: days_partitions}
)


def partition_key(cluster_id: str, day: dt.date) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({CLUSTER_DIMENSION: cluster_id, DAY_DIMENSION: day.strftime(DAY_FORMAT)})


def split_key(key: str | dg.MultiPartitionKey) -> tuple[str, dt.date]:
    """(cluster_id, day) of a cluster x day key, given as a MultiPartitionKey or its 'cluster|day' string."""
    if isinstance(key, dg.MultiPartitionKey):
        parts = key.keys_by_dimension
        cluster, day = parts[CLUSTER_DIMENSION], parts[DAY_DIMENSION]
    else:
        cluster, _, day = str(key).rpartition("|")  # dimensions are ordered by name: cluster|day
    return cluster, dt.datetime.strptime(day, DAY_FORMAT).date()


def key_path(key: str | dg.MultiPartitionKey) -> str:
    """A filesystem/S3-safe relative path for one partition: cluster=<quoted id>/day=<YYYY-MM-DD>."""
    cluster, day = split_key(key)
    return f"cluster={quote(cluster, safe='')}/day={day.strftime(DAY_FORMAT)}"


def first_day() -> dt.date:
    return _day(START_DATE)


def last_day(today: dt.date | None = None) -> dt.date:
    """The last day partition: today (UTC), or $OCP_ASSETS_END_DATE when that is earlier."""
    today = today or dt.datetime.now(dt.UTC).date()
    return min(today, _day(END_DATE)) if END_DATE else today
