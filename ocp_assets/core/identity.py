"""Which cluster-day a summary is of: the koku source (cluster) and the day, and how koku names the cluster.

A small module of plain types, so what only names cluster-days (the cluster registry, the Dagster code location at
load) does not import the engine's Arrow and pandera machinery.
"""

import datetime as dt
from dataclasses import dataclass

from ocp_assets.core.errors import ConfigurationError


@dataclass(frozen=True)
class ClusterDay:
    """Which cluster (koku source) and day to summarise, and how koku names it."""

    account: str
    source: str
    cluster_id: str
    cluster_alias: str
    day: dt.date


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    """Every day from start to end, both included."""
    if end < start:
        raise ConfigurationError(f"end {end} is before start {start}")
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
