"""The code location's settings, read from the environment once, when Dagster builds the definitions (never at
import): ``Settings.from_environment`` in ``ocp_assets.definitions``. Tests and the quickstart give them explicitly.

The DSN and the data root are not here: the resources take them as ``dg.EnvVar`` (the UI shows which variable they
come from, and a password never enters the definitions). docs/dagster.md, "Settings", lists every variable.
"""

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ocp_assets.core.storage import S3_ENDPOINT_ENV, S3_REGION_ENV
from ocp_assets.defs.partitions import DEFAULT_START_DATE, END_DATE_ENV, START_DATE_ENV, configured_day
from ocp_assets.defs.resources import REGISTRY_SCHEMA

SCHEMA_ENV = "OCP_ASSETS_SCHEMA"  # one tenant schema for every cluster (default: the cluster's account)
REGISTRY_SCHEMA_ENV = "OCP_ASSETS_REGISTRY_SCHEMA"  # where the cluster registry lives
SNAPSHOT_ROOT_ENV = "OCP_ASSETS_SNAPSHOT_ROOT"  # keep each stage's tables as Parquet there
WORKERS_ENV = "OCP_ASSETS_WORKERS"
EXECUTOR_ENV = "OCP_ASSETS_EXECUTOR"
# multiprocess: Dagster's multiprocess executor, the step in a process of its own (the default the product promises);
# in_process: the step in the run worker itself (one process fewer per run; docs/decisions.md, "Dagster machinery").
EXECUTORS = ("multiprocess", "in_process")
S3_PROFILE_ENV = ("AWS_PROFILE",)
DEFAULT_WORKERS = 2  # cluster-days computed at once in a run, each in a process forked from the step
# The S3 resource's fields and the variables each is taken from, the first one set (unset: AWS's default).
S3_FIELDS = {"endpoint_url": S3_ENDPOINT_ENV, "region_name": S3_REGION_ENV, "profile_name": S3_PROFILE_ENV}


@dataclass(frozen=True)
class Settings:
    """What the code location is built from (every field has the deployment's default)."""

    start_date: str = DEFAULT_START_DATE  # the first day partition, YYYY-MM-DD
    end_date: str = ""  # the last day partition, YYYY-MM-DD; empty: today (UTC)
    schema_name: str = ""  # koku tenant schema for every cluster; empty: the cluster's account
    registry_schema: str = REGISTRY_SCHEMA
    snapshot_root: str = ""  # where each stage's tables are kept as Parquet; empty: not kept
    workers: int = DEFAULT_WORKERS
    executor: str = EXECUTORS[0]
    # S3 resource field -> the environment variable it is resolved from (dg.EnvVar), for those that are set.
    s3_variables: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self):
        configured_day(START_DATE_ENV, self.start_date)
        if self.end_date:
            configured_day(END_DATE_ENV, self.end_date)
        if self.workers < 1:
            raise ValueError(f"{WORKERS_ENV} is {self.workers}: expected a whole number, 1 or more")
        if self.executor not in EXECUTORS:
            raise ValueError(f"{EXECUTOR_ENV} is {self.executor!r}: expected one of {', '.join(EXECUTORS)}")

    @classmethod
    def from_environment(cls, environ: Mapping[str, str] = os.environ) -> "Settings":
        """The settings the environment gives; an unset or empty variable keeps its default."""
        given: dict[str, Any] = {  # Settings' keyword arguments: text, and workers a number
            name: environ[variable]
            for name, variable in (
                ("start_date", START_DATE_ENV),
                ("end_date", END_DATE_ENV),
                ("schema_name", SCHEMA_ENV),
                ("registry_schema", REGISTRY_SCHEMA_ENV),
                ("snapshot_root", SNAPSHOT_ROOT_ENV),
                ("executor", EXECUTOR_ENV),
            )
            if environ.get(variable)
        }
        workers = environ.get(WORKERS_ENV)
        if workers:
            try:
                given["workers"] = int(workers)
            except ValueError:
                raise ValueError(f"{WORKERS_ENV} is {workers!r}: expected a whole number, 1 or more") from None
        s3 = {f: next((v for v in names if environ.get(v)), None) for f, names in S3_FIELDS.items()}
        return cls(**given, s3_variables={f: v for f, v in s3.items() if v is not None})
