"""The connection to koku's PostgreSQL: one DSN check and one connect, whose errors never quote the DSN.

A DSN that libpq would split elsewhere than its author meant is refused before use; a server that refused us is
configuration (exit 2), one that did not answer is unreachable (exit 1). Kept apart from the engine so what only
connects (the Dagster resources, the embedded PostgreSQL) does not import it.
"""

from collections.abc import Generator
from contextlib import contextmanager
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict

from ocp_assets.core.errors import ConfigurationError, DatabaseUnreachable, OcpAssetsError

CONNECT_TIMEOUT_SECONDS = 10  # unless the DSN sets connect_timeout
# What to say of special characters in a DSN; libpq splits a URL at its first '@' and reads no quoting.
PERCENT_ENCODE_HINT = (
    "percent-encode special characters of the user name and password (@ as %40, : as %3A, / as %2F, ? as %3F, "
    "# as %23, % as %25, a space as %20)"
)
# libpq's messages for a server that answered but is not ready: unreachable for now, not misconfigured.
SERVER_NOT_READY = ("the database system is", "too many clients", "remaining connection slots")


@contextmanager
def connect(dsn: str) -> Generator[psycopg.Connection, None, None]:
    _refuse_ambiguous_dsn(dsn)
    # A server that accepts TCP but never answers would otherwise hold the caller for minutes (the OS's TCP timeout).
    timeout: dict[str, Any] = {} if "connect_timeout" in dsn else {"connect_timeout": CONNECT_TIMEOUT_SECONDS}
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


def one_row(cursor: psycopg.Cursor) -> tuple[Any, ...]:
    """The row of a query that always returns exactly one (an aggregate, a test such as to_regclass(...) IS NOT
    NULL); a missing row would be a bug in the query, never data, so it is an error rather than None."""
    row = cursor.fetchone()
    if row is None:
        raise RuntimeError("a query that always returns one row returned none")
    return row
