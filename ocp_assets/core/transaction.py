"""The transactions of a cluster-day: the one place that opens them, each under its advisory lock.

``commit_or_rehearse`` replaces a summary's rows (the usage summary, the GPU summary, and later the cost steps):
delete, COPY, insert and read back, then the checks, all in one transaction that is committed only when every
blocking check passed, else rolled back so PostgreSQL keeps the previous rows. A rehearsal (checks run on their
own) is rolled back even when they pass. Each summary has its own lock key, so the GPU write of a cluster-day never
waits for its usage summary (decision G3); the rows the days of one cluster share have a lock per source.
"""

import datetime as dt
from collections.abc import Callable, Generator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Generic, TypeVar

import psycopg

from ocp_assets.core import outcomes as O
from ocp_assets.core.outcomes import CheckOutcome

Written = TypeVar("Written")


def usage_day_key(schema: str, source: str, day: dt.date) -> str:
    """The lock of a cluster-day's usage summary."""
    return f"{schema}/{source}/{day.isoformat()}"


def gpu_day_key(schema: str, source: str, day: dt.date) -> str:
    """The lock of a cluster-day's GPU summary: its own, never the usage summary's (G3)."""
    return f"{usage_day_key(schema, source, day)}/gpu"


def shared_rows_key(schema: str, source: str) -> str:
    """The lock of the rows all days of a source share (report period, cluster and node rows)."""
    return f"ocp_assets.shared/{schema}/{source}"


def lock(conn: psycopg.Connection, key: str) -> None:
    """Wait for `key`'s advisory lock, held until the current transaction ends."""
    conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))


def lock_cluster_day(conn: psycopg.Connection, schema: str, source: str, day: dt.date) -> None:
    """Wait for the lock of a cluster-day's usage summary (held until the current transaction ends)."""
    lock(conn, usage_day_key(schema, source, day))


@contextmanager
def locked_transaction(conn: psycopg.Connection, key: str) -> Generator[None, None, None]:
    """One transaction (a savepoint inside the caller's) holding `key`'s lock: committed at the end of the block,
    rolled back when it raises."""
    with conn.transaction():
        lock(conn, key)
        yield


@dataclass
class Replaced(Generic[Written]):
    """What a replacement wrote (as its write read it back), its checks, and whether it was committed."""

    written: Written
    checks: dict[str, CheckOutcome]
    committed: bool

    @property
    def passed(self) -> bool:
        """No blocking check failed (warnings do not count)."""
        return _passed(self.checks)


class _RollBack(Exception):
    """Leaves the transaction's block so that it is rolled back."""


def commit_or_rehearse(
    conn: psycopg.Connection,
    key: str,
    write: Callable[[], Written],
    checks: Callable[[Written], dict[str, CheckOutcome]],
    *,
    commit: bool,
) -> Replaced[Written]:
    """Run `write` (delete, COPY, insert, read back) and then `checks` on what it wrote, in one transaction under
    `key`'s lock; commit when `commit` and every blocking check passed, else roll back (PostgreSQL keeps the previous
    rows). An error of either rolls back and is raised."""
    try:
        with locked_transaction(conn, key):
            written = write()
            judged = checks(written)
            replaced = Replaced(written, judged, committed=commit and _passed(judged))
            if not replaced.committed:
                raise _RollBack()
    except _RollBack:
        pass
    return replaced


def _passed(checks: dict[str, CheckOutcome]) -> bool:
    return not any(O.blocks(name, outcome) for name, outcome in checks.items())
