"""The write of one cluster-day: aggregate the merged chunks and replace its summary rows in one transaction (D5).

The stages before it (reading, validation, labels) are ocp_assets.core.pipeline, the one code path of the CLI and
the Dagster assets.
"""

import datetime as dt
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg.conninfo import conninfo_to_dict

from ocp_assets.core.errors import ConfigurationError, DatabaseUnreachable, OcpAssetsError
from ocp_assets.core.pgschema import ensure_month_partition
from ocp_assets.core.summary import (
    MEASURE_COLUMNS,
    MergedChunks,
    SummaryContext,
    aggregate_usage,
    unallocated_rows,
)
from ocp_assets.core.tagmapping import apply_tag_mapping
from ocp_assets.core.writer import (
    KokuSettings,
    WriteResult,
    lock_cluster_day,
    node_roles,
    replace_summary_rows,
    report_period,
    upsert_cluster_nodes,
)

CONNECT_TIMEOUT_SECONDS = 10  # unless the DSN sets connect_timeout
WRITE_CHECK_REL_TOL = 1e-9  # D6: numeric(33,15) rounding stays far below this


@dataclass(frozen=True)
class ClusterDay:
    """Which cluster (koku source) and day to summarise, and how koku names it."""

    account: str
    source: str
    cluster_id: str
    cluster_alias: str
    day: dt.date


@dataclass
class DayOutcome:
    cluster_day: ClusterDay
    rows: pa.Table  # the rows written, as computed (float64 measures), tag mapping applied
    write: WriteResult
    rows_by_kind: dict[str, int]
    seconds: dict[str, float] = field(default_factory=dict)
    # The rows as the summary aggregated them, before the tag mapping renamed label keys: koku's group keys, and
    # unallocated rows told apart by NULL pod_labels (a mapping can empty a Pod row's map to NULL, see tagmapping).
    summarised_rows: pa.Table | None = None


class WriteVerificationError(OcpAssetsError):
    """Rows read back from PostgreSQL differ from the rows computed; the transaction is rolled back."""


# What to say of special characters in a DSN; libpq splits a URL at its first '@' and reads no quoting.
PERCENT_ENCODE_HINT = (
    "percent-encode special characters of the user name and password (@ as %40, : as %3A, / as %2F, ? as %3F, "
    "# as %23, % as %25, a space as %20)"
)
# libpq's messages for a server that answered but is not ready: unreachable for now, not misconfigured.
SERVER_NOT_READY = ("the database system is", "too many clients", "remaining connection slots")


@contextmanager
def connect(dsn: str) -> Iterator[psycopg.Connection]:
    _refuse_ambiguous_dsn(dsn)
    # A server that accepts TCP but never answers would otherwise hold the caller for minutes (the OS's TCP timeout).
    timeout = {} if "connect_timeout" in dsn else {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
    try:
        conn = psycopg.connect(dsn, autocommit=True, **timeout)
    except psycopg.OperationalError as exc:
        raise _connection_error(exc) from None
    except psycopg.ProgrammingError:
        raise _malformed_dsn() from None
    try:
        yield conn
    finally:
        conn.close()


def _malformed_dsn(what: str = "the PostgreSQL DSN is malformed") -> ConfigurationError:
    # libpq's own message quotes the DSN's tokens, password included: it is never repeated.
    # USER, not USER:PASSWORD: the masking would star out a placeholder shaped like a password.
    return ConfigurationError(f"{what} (expected postgresql://USER@HOST:PORT/DATABASE)").with_hint(
        f"pass --dsn postgresql://USER@HOST:PORT/DATABASE or set OCP_ASSETS_DSN; {PERCENT_ENCODE_HINT}"
    )


def _refuse_ambiguous_dsn(dsn: str) -> None:
    """Refuse a DSN libpq cannot parse, or would split elsewhere than its author meant, before it is used: a raw '@'
    or '/' in a URL's password makes libpq take the rest of the password for the host, port or database, and its
    messages would then show that part of the password as a host name."""
    try:
        parts = conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        raise _malformed_dsn() from None
    if not dsn.startswith(("postgresql://", "postgres://")):
        return  # the keyword form quotes its values: libpq reads what was meant
    rest = dsn.partition("://")[2]
    at = rest.find("@", 0, rest.find("/") if "/" in rest else len(rest))  # libpq's userinfo ends at the first '@'
    hosts_and_path = rest[at + 1 :].partition("?")[0]
    ports = str(parts.get("port", "")).split(",")
    if "@" in hosts_and_path or not all(port.strip().isdigit() for port in ports if port):
        raise _malformed_dsn("the PostgreSQL DSN's user name or password holds a character libpq reads as a separator")


def _connection_error(exc: psycopg.OperationalError) -> OcpAssetsError:
    """A server that refused us (authentication, an unknown role, database or option) is configuration (exit 2); one
    that did not answer or is not ready is unreachable (exit 1: run again once it is back)."""
    message = str(exc).strip()
    # libpq's first line says what failed (refused, timeout, authentication); the rest is advice about TCP/IP.
    reason = message.splitlines()[0] if message else type(exc).__name__
    answered = "FATAL:" in message or message.startswith("connection is bad: invalid")
    if answered and not any(phrase in message for phrase in SERVER_NOT_READY):
        return ConfigurationError(f"PostgreSQL refused the connection ({reason})").with_hint(
            "check the user, password, database and options of --dsn or OCP_ASSETS_DSN"
        )
    return DatabaseUnreachable(f"cannot connect to PostgreSQL ({reason})").with_hint(
        "is the server running and are the host and port right? run the same command again once it answers"
    )


def rows_by_kind(rows: pa.Table) -> dict[str, int]:
    """Counts per kind of row; unallocated rows are the Pod rows without pod_labels (3.7)."""
    is_pod = pc.equal(rows["data_source"], "Pod")
    unallocated = pc.sum(pc.and_(is_pod, pc.is_null(rows["pod_labels"]))).as_py() or 0
    return {
        "Pod": (pc.sum(is_pod).as_py() or 0) - unallocated,
        "Storage": pc.sum(pc.equal(rows["data_source"], "Storage")).as_py() or 0,
        "unallocated": unallocated,
    }


def verify_write(rows: pa.Table, write: WriteResult) -> None:
    """The write check: per measure, the total in PostgreSQL equals the total computed (D6 tolerance)."""
    if write.rows_written != rows.num_rows:
        raise WriteVerificationError(f"{write.rows_written} rows inserted, {rows.num_rows} computed")
    for column in MEASURE_COLUMNS:
        computed = pc.sum(rows[column]).as_py() or 0.0
        stored = write.totals_read_back[column]
        if not math.isclose(computed, stored, rel_tol=WRITE_CHECK_REL_TOL, abs_tol=1e-9):
            raise WriteVerificationError(f"{column}: PostgreSQL holds {stored!r}, computed {computed!r}")


@dataclass(frozen=True)
class SharedRows:
    """What the days of one cluster (and month) share: koku's report period, and whether the month partition exists."""

    report_period_id: int
    in_month_partition: bool


def prepare_shared_rows(
    conn: psycopg.Connection, schema: str, cluster_day: ClusterDay, inventory: pa.Table
) -> SharedRows:
    """Report period, cluster and node rows, and the month's partition, each created once however many days run at once.

    They are written in their own short transactions under advisory locks (per source, per schema for the
    partition), before the day's own transaction: concurrent days of one cluster then neither duplicate them nor
    hit a unique violation, and do not wait for each other's summary. They stay when a day's summary is rolled
    back, as koku creates them at ingest whether or not the summary follows.
    """
    with conn.transaction():
        conn.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"ocp_assets.shared/{schema}/{cluster_day.source}",)
        )
        period = report_period(
            conn,
            schema,
            cluster_id=cluster_day.cluster_id,
            cluster_alias=cluster_day.cluster_alias,
            source=cluster_day.source,
            day=cluster_day.day,
        )
        upsert_cluster_nodes(
            conn,
            schema,
            cluster_id=cluster_day.cluster_id,
            cluster_alias=cluster_day.cluster_alias,
            source=cluster_day.source,
            inventory=inventory,
        )
    return SharedRows(period, ensure_month_partition(conn, schema, cluster_day.day))


def publish_summary(
    conn: psycopg.Connection,
    schema: str,
    cluster_day: ClusterDay,
    merged: MergedChunks,
    node_capacity: pa.Table,
    shared: SharedRows,
    settings: KokuSettings,
) -> DayOutcome:
    """Aggregate the merged chunks and replace the cluster-day's rows, all in one transaction (D5)."""
    started = time.perf_counter()
    with conn.transaction():
        lock_cluster_day(conn, schema, cluster_day.source, cluster_day.day)
        ctx = SummaryContext(
            source=cluster_day.source,
            cluster_id=cluster_day.cluster_id,
            cluster_alias=cluster_day.cluster_alias,
            day=cluster_day.day,
            report_period_id=shared.report_period_id,
            enabled_keys=settings.enabled_keys,
            cost_categories=settings.cost_categories,
        )
        usage = aggregate_usage(merged, node_capacity, ctx)
        nodes = pc.unique(merged.pod["node"]).to_pylist()
        summarised = pa.concat_tables([usage, unallocated_rows(usage, node_roles(conn, schema, nodes), ctx)])
        # koku's tag-mapping UPDATE (4.1 step 7), on the rows before they are written: same result, one write.
        rows = apply_tag_mapping(summarised, settings.tag_mappings)
        computed = time.perf_counter()
        write = replace_summary_rows(conn, schema, cluster_day.source, cluster_day.day, rows, shared.in_month_partition)
        verify_write(rows, write)
    finished = time.perf_counter()
    return DayOutcome(
        cluster_day=cluster_day,
        rows=rows,
        write=write,
        rows_by_kind=rows_by_kind(summarised),
        seconds={"aggregate": computed - started, "write": finished - computed},
        summarised_rows=summarised,
    )


def days_between(start: dt.date, end: dt.date) -> list[dt.date]:
    if end < start:
        raise ConfigurationError(f"end {end} is before start {start}")
    return [start + dt.timedelta(days=n) for n in range((end - start).days + 1)]
