"""Classes dagster.yaml names for the Dagster instance: event storage that keeps its connection, and the run queue.

Both are small adjustments of Dagster's own classes, measured necessary on two cores (docs/dagster.md, "Where a
run's time goes"); this module imports nothing of ocp_assets, so the webserver and daemon load it cheaply.

- ``PooledPostgresEventLogStorage``: dagster-postgres opens a new connection for every event it stores (NullPool),
  and each materialization or check evaluation takes three or four of them: about 13 ms an event, most of a
  run's time once every partition records its own events. Keeping one connection per process (as dagster-postgres
  itself does for the webserver) cuts that by about two thirds. A forked process (the step, the worker processes)
  drops the inherited connections without closing them and opens its own.
- ``QueuedRunCoordinator``: Dagster's, plus ``backfill_interval_seconds``. The backfill daemon sleeps a fixed 30 s
  between iterations (``dagster._daemon.controller.DEFAULT_DAEMON_INTERVAL_SECONDS``, not a setting in 1.13), so a
  backfill launched from the UI waited up to 30 s for its first run and as long again to be marked complete. The
  daemon builds the run coordinator before it starts its daemon threads, so the interval set here is the one the
  backfill loop reads.
"""

import os
from collections.abc import Mapping
from typing import Any

from dagster import Field, IntSource
from dagster._core.run_coordinator import (
    QueuedRunCoordinator as DagsterQueuedRunCoordinator,
)
from dagster._serdes import ConfigurableClassData
from dagster_postgres import PostgresEventLogStorage
from dagster_postgres.utils import (
    create_pg_engine,
    get_token_provider_from_config,
    pg_url_from_config,
)

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
        inst_data: ConfigurableClassData | None = None,
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
    def from_config_value(
        cls, inst_data: ConfigurableClassData | None, config_value: Mapping[str, Any]
    ) -> "PooledPostgresEventLogStorage":
        return cls(
            inst_data=inst_data,
            postgres_url=pg_url_from_config(config_value),
            should_autocreate_tables=config_value.get("should_autocreate_tables", True),
            token_provider=get_token_provider_from_config(config_value),
        )


class QueuedRunCoordinator(DagsterQueuedRunCoordinator):
    """Dagster's queued run coordinator, plus the backfill daemon's interval (see the module docstring)."""

    def __init__(self, backfill_interval_seconds: int | None = None, **kwargs):
        super().__init__(**kwargs)
        if backfill_interval_seconds is not None:
            # Private: the only place the interval lives; read by the backfill loop when its thread starts.
            import dagster._daemon.controller as controller

            controller.DEFAULT_DAEMON_INTERVAL_SECONDS = backfill_interval_seconds

    @classmethod
    def config_type(cls):
        return {
            **DagsterQueuedRunCoordinator.config_type(),
            "backfill_interval_seconds": Field(
                IntSource,
                is_required=False,
                description="Seconds between the backfill daemon's iterations (Dagster's fixed default: 30).",
            ),
        }

    @classmethod
    def from_config_value(
        cls, inst_data: ConfigurableClassData, config_value: Mapping[str, Any]
    ) -> "QueuedRunCoordinator":
        # The config's keys are the constructor's arguments, Dagster's and the one added here.
        return cls(inst_data=inst_data, **config_value)
