"""The one partitioning of every ocp_assets asset: cluster (dynamic, readable cluster_id) x day (UTC)."""

import datetime as dt
import os
from urllib.parse import quote

import dagster as dg

CLUSTER_DIMENSION = "cluster"
DAY_DIMENSION = "day"
CLUSTERS_PARTITIONS_NAME = "clusters"
START_DATE_ENV = "OCP_ASSETS_START_DATE"
DEFAULT_START_DATE = "2026-01-01"
DAY_FORMAT = "%Y-%m-%d"

START_DATE = os.environ.get(START_DATE_ENV, DEFAULT_START_DATE)

clusters_partitions = dg.DynamicPartitionsDefinition(name=CLUSTERS_PARTITIONS_NAME)
# end_offset=1: today is a partition too, as koku summarises the current day while data keeps arriving.
days_partitions = dg.DailyPartitionsDefinition(start_date=START_DATE, timezone="UTC", end_offset=1, fmt=DAY_FORMAT)
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
    return dt.datetime.strptime(START_DATE, DAY_FORMAT).date()
