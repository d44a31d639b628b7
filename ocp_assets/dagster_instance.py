"""The Dagster instance of ocp_assets: its dagster.yaml (package data, ``write_instance_yaml``), the environment
that file reads (``dagster_instance_env``), and the classes it names.

The classes are small adjustments of Dagster's own (docs/decisions.md, "Dagster machinery", has the measurements);
this module imports nothing of ocp_assets, so the webserver and daemon load it cheaply.

- ``PooledPostgresEventLogStorage``: dagster-postgres opens a new connection for every event it stores (NullPool),
  and each materialization or check evaluation takes three or four of them: about 13 ms an event, most of a
  run's time once every partition records its own events. Keeping one connection per process (as dagster-postgres
  itself does for the webserver) cuts that by about two thirds. A forked process (the step, the worker processes)
  drops the inherited connections without closing them and opens its own.
- ``DefaultRunLauncher``: Dagster's, plus the run worker health check that run monitoring needs. Dagster's own
  DefaultRunLauncher (1.13) does not support ``check_run_worker_health``, so run monitoring never looks at a
  STARTED run: when the daemon's process group died (crash, OOM kill, reboot) with a run in progress, the run stayed
  STARTED for ever (and its backfill REQUESTED). The check reads the run worker's pid from the run's own event
  ("Started process for run (pid: N)") and asks /proc whether that process still lives, started before that event
  (not a later process that reuses the pid, e.g. after a reboot) and not a zombie. A dead worker is reported
  FAILED, and run monitoring marks the run failed (a run is never resumed: ``max_resume_run_attempts: 0``); a re-run
  replaces each cluster-day it wrote, so it converges. The check can only see processes of this machine: for a run
  whose code server is not local (a gRPC server on another host) it reports the worker running.
"""

import json
import os
import shutil
import time
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlencode

from dagster import DagsterEventType, DagsterRun
from dagster import DefaultRunLauncher as DagsterDefaultRunLauncher

# Private: the result type of RunLauncher.check_run_worker_health, the hook run monitoring calls; Dagster exports
# neither it nor WorkerStatus, and a launcher that supports the check must return them.
from dagster._core.launcher import CheckRunHealthResult, WorkerStatus

# Private: the tag under which Dagster records the code server a run was launched from (host, port, socket); no
# public API reads it, and it tells a local run worker (checkable in /proc) from a remote one.
from dagster._core.storage.tags import GRPC_INFO_TAG
from dagster_postgres import PostgresEventLogStorage
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
)

INSTANCE_YAML = "dagster.yaml"  # ocp_assets' instance settings, shipped in the package
STORAGE_URL_ENV = "OCP_ASSETS_DAGSTER_STORAGE_URL"
# Dagster writes the events it plans for a run (one per asset and check) in one statement instead of one each.
EVENT_BATCH_ENV = "DAGSTER_EVENT_BATCH_SIZE"
EVENT_BATCH_SIZE = "100"


def write_instance_yaml(home: str | Path) -> Path:
    """Put ocp_assets' dagster.yaml into DAGSTER_HOME `home` (created if missing); returns the file written."""
    home = Path(home)
    home.mkdir(parents=True, exist_ok=True)
    with resources.as_file(resources.files("ocp_assets") / INSTANCE_YAML) as source:
        return Path(shutil.copy(source, home / INSTANCE_YAML))


def dagster_instance_env(dsn: str, database: str) -> dict[str, str]:
    """The environment of dagster.yaml: Dagster's runs and events in `database` on `dsn`'s server, one URL.

    Only the database changes: every other libpq setting of the DSN (sslmode, sslrootcert, options, ...) is carried
    into the URL's query, which SQLAlchemy hands to libpq, and what the DSN leaves out (host, port, user) stays
    libpq's default (PGHOST, the local socket, ...) rather than a guess.
    """
    # Imported here: the webserver and the daemon load this module for its classes only.
    from psycopg.conninfo import conninfo_to_dict

    info = {k: str(v) for k, v in conninfo_to_dict(dsn).items()}
    info.pop("dbname", None)
    user, password = info.pop("user", ""), info.pop("password", "")
    host, port = info.get("host", ""), info.get("port", "")
    netloc = ""
    if host and not host.startswith("/") and "," not in host:
        # A single TCP host goes in the URL's authority; a Unix-socket directory or a host list stays in the query.
        netloc = (f"[{host}]" if ":" in host else host) + (f":{port}" if port else "")  # an IPv6 address in brackets
        info.pop("host")
        info.pop("port", None)
    auth = quote(user, safe="") + (f":{quote(password, safe='')}" if password else "")
    authority = f"{auth}@{netloc}" if auth else netloc
    query = f"?{urlencode(info)}" if info else ""
    url = f"postgresql+psycopg2://{authority}/{quote(database)}{query}"
    return {STORAGE_URL_ENV: url, EVENT_BATCH_ENV: EVENT_BATCH_SIZE}


# One open connection per process, more only while a process stores events from several threads at once.
POOL_SIZE = 1
MAX_OVERFLOW = 4
POOL_RECYCLE_SECONDS = 300


class PooledPostgresEventLogStorage(PostgresEventLogStorage):
    """dagster-postgres' event log storage with a small connection pool instead of a connection per statement."""

    def __init__(
        self,
        postgres_url: str,
        should_autocreate_tables: bool = True,
        inst_data=None,
        token_provider=None,
    ):
        super().__init__(postgres_url, should_autocreate_tables, inst_data, token_provider)
        self._engine.dispose()
        self._engine = create_pg_engine(
            self.postgres_url,
            self._token_provider,
            isolation_level="AUTOCOMMIT",
            pool_size=POOL_SIZE,
            max_overflow=MAX_OVERFLOW,
            pool_recycle=POOL_RECYCLE_SECONDS,
        )
        engine = self._engine
        # A connection must never be shared by two processes: a forked child forgets the parent's (close=False
        # leaves them open for the parent) and opens its own on first use.
        os.register_at_fork(after_in_child=lambda: engine.dispose(close=False))

    def dispose(self) -> None:
        # Dagster disposes an instance's storage when it is done with it: close the pooled connection with it.
        super().dispose()
        self._engine.dispose()

    @classmethod
    def from_config_value(cls, inst_data, config_value: Mapping[str, Any]) -> "PooledPostgresEventLogStorage":
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )


# The engine event the run worker logs first, with its pid (dagster._grpc.impl).
RUN_WORKER_STARTED = "Started process for run"
# A code server reached on one of these runs its run workers on this machine.
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", ""}
# /proc's process start time is in clock ticks since boot; a process that started later than the event that
# names its pid (allowing for the tick and clock granularity) is another process reusing the pid.
START_SLACK_SECONDS = 2.0


def process_start_time(pid: int) -> tuple[float, str] | None:
    """(start time as a Unix timestamp, state letter) of a live process of this machine, or None when there is none."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        boot = next(line for line in Path("/proc/stat").read_text().splitlines() if line.startswith("btime "))
    except (FileNotFoundError, ProcessLookupError):
        return None
    # The command name (field 2) may hold spaces and parentheses: the fields after it follow the last ")".
    fields = stat[stat.rindex(")") + 2 :].split()
    started_ticks = int(fields[19])  # field 22 of proc_pid_stat(5), counted from field 3
    return int(boot.split()[1]) + started_ticks / os.sysconf("SC_CLK_TCK"), fields[0]


class DefaultRunLauncher(DagsterDefaultRunLauncher):
    """Dagster's DefaultRunLauncher, plus the run worker health check of run monitoring (see the module docstring)."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        return True

    def check_run_worker_health(self, run: DagsterRun) -> CheckRunHealthResult:
        grpc_info = json_tag(run.tags.get(GRPC_INFO_TAG))
        if grpc_info.get("host", "") not in LOCAL_HOSTS:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "run worker on another machine: not checked")
        started = self._run_worker_started(run.run_id)
        if started is None:
            return CheckRunHealthResult(WorkerStatus.RUNNING, "run worker has not logged its pid yet")
        pid, logged_at = started
        process = process_start_time(pid)
        if process is None:
            return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker process {pid} is gone")
        start, state = process
        if state == "Z":
            return CheckRunHealthResult(WorkerStatus.FAILED, f"run worker process {pid} has exited (zombie)")
        if start > logged_at + START_SLACK_SECONDS:
            return CheckRunHealthResult(
                WorkerStatus.FAILED,
                f"run worker process {pid} is gone (pid {pid} is now a process started "
                f"{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(start))} UTC)",
            )
        return CheckRunHealthResult(WorkerStatus.RUNNING, f"run worker process {pid} is running")

    def _run_worker_started(self, run_id: str) -> tuple[int, float] | None:
        """(pid, timestamp) of the latest run worker the run logged."""
        records = self._instance.get_records_for_run(run_id, of_type=DagsterEventType.ENGINE_EVENT).records
        for record in reversed(records):
            entry = record.event_log_entry
            if entry.message and entry.message.startswith(RUN_WORKER_STARTED) and entry.dagster_event:
                pid = entry.dagster_event.engine_event_data.metadata.get("pid")
                if pid is not None and isinstance(pid.value, str):  # Dagster logs it as text: str(os.getpid())
                    return int(pid.value), entry.timestamp
        return None

    @classmethod
    def from_config_value(cls, inst_data, config_value: Mapping[str, Any]) -> "DefaultRunLauncher":
        return cls(inst_data=inst_data)


def json_tag(text: str | None) -> dict:
    """A tag holding a JSON object (Dagster's gRPC info), or {}."""
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
