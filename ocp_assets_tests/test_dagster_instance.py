"""Dagster's storage URL derived from koku's DSN: only the database changes; TLS and libpq's defaults are kept."""

import pytest
import sqlalchemy

from ocp_assets.dagster_instance import STORAGE_URL_ENV, dagster_instance_env


def storage_url(dsn: str) -> sqlalchemy.engine.URL:
    return sqlalchemy.engine.make_url(dagster_instance_env(dsn, "dagster")[STORAGE_URL_ENV])


def test_tls_settings_of_the_dsn_reach_dagsters_connections():
    url = storage_url("postgresql://koku:p%40ss@db.example:6432/koku?sslmode=verify-full&sslrootcert=/etc/ca.pem")
    assert (url.drivername, url.username, url.password, url.host, url.port, url.database) == (
        "postgresql+psycopg2", "koku", "p@ss", "db.example", 6432, "dagster",
    )  # fmt: skip
    assert dict(url.query) == {"sslmode": "verify-full", "sslrootcert": "/etc/ca.pem"}


@pytest.mark.parametrize(
    ("dsn", "host", "user", "query"),
    [
        # nothing said: libpq's own defaults (PGHOST, PGUSER, the local socket), not a guessed 127.0.0.1/postgres
        ("postgresql:///koku", None, None, {}),
        ("postgresql://postgres@/koku?host=/run/pg&port=5433", None, "postgres", {"host": "/run/pg", "port": "5433"}),
        ("host=a,b port=1,2 user=x dbname=koku", None, "x", {"host": "a,b", "port": "1,2"}),
    ],
)
def test_what_the_dsn_leaves_out_stays_libpqs_and_sockets_and_host_lists_go_in_the_query(dsn, host, user, query):
    url = storage_url(dsn)
    assert (url.host, url.username, url.database, dict(url.query)) == (host, user, "dagster", query)


def test_an_ipv6_host_stays_one_host():
    url = storage_url("postgresql://postgres:p%40ss@[::1]:5432/postgres")
    assert (url.host, url.port, url.password, url.database) == ("::1", 5432, "p@ss", "dagster")
