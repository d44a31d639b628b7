"""The cluster registry and the Parquet file state: what a cluster partition stands for, and what the sensor has seen.

Both live in one schema of the summary database (``ocp_assets`` unless configured): ``cluster_registry`` maps a
readable cluster id to its koku source, account, alias, tenant schema and data root; ``parquet_file_state``
holds size, mtime and covered days of every Parquet file the sensor has listed, so late or rewritten files
re-run only their days.
"""

import datetime as dt
from dataclasses import dataclass

import psycopg
from psycopg import sql

from ocp_assets.core.database import one_row
from ocp_assets.core.errors import ConfigurationError
from ocp_assets.core.identity import ClusterDay

REGISTRY_TABLE = "cluster_registry"
FILE_STATE_TABLE = "parquet_file_state"

_DDL = (
    "CREATE SCHEMA IF NOT EXISTS {s}",
    """CREATE TABLE IF NOT EXISTS {s}.cluster_registry (
        cluster_id text PRIMARY KEY,
        source uuid NOT NULL,
        account text NOT NULL,
        cluster_alias text NOT NULL,
        schema text NOT NULL,
        data_root text NOT NULL,
        discovered_at timestamptz NOT NULL DEFAULT now(),
        updated_at timestamptz NOT NULL DEFAULT now())""",
    """CREATE TABLE IF NOT EXISTS {s}.parquet_file_state (
        cluster_id text NOT NULL,
        key text NOT NULL,
        size bigint NOT NULL,
        mtime_ns bigint NOT NULL,
        days date[] NOT NULL,
        seen_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (cluster_id, key))""",
)
_COLUMNS = "cluster_id, source::text, account, cluster_alias, schema, data_root"


@dataclass(frozen=True)
class ClusterRecord:
    """One row of the cluster registry: what a cluster partition key stands for."""

    cluster_id: str
    source: str
    account: str
    cluster_alias: str
    schema: str
    data_root: str

    def day(self, day: dt.date) -> ClusterDay:
        return ClusterDay(self.account, self.source, self.cluster_id, self.cluster_alias, day)


@dataclass(frozen=True)
class FileState:
    key: str
    size: int
    mtime_ns: int


class UnknownClusterError(ConfigurationError):
    """A cluster partition key that the registry does not hold (added by hand, or the registry was reset)."""


class Registry:
    """The registry tables in ``schema`` (created on first use, serialised by an advisory lock)."""

    def __init__(self, schema: str):
        self.schema = schema
        self.ident = sql.Identifier(schema)

    def ensure(self, conn: psycopg.Connection) -> None:
        """Create what is missing; an existing schema needs no CREATE on the database, existing tables none on it."""
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('ocp_assets.registry_ddl'))")
            present = one_row(
                conn.execute(
                    "SELECT to_regclass(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL",
                    (f'"{self.schema}".{REGISTRY_TABLE}', f'"{self.schema}".{FILE_STATE_TABLE}'),
                )
            )[0]
            if present:
                return
            exists = conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (self.schema,)).fetchone()
            for ddl in _DDL[1:] if exists else _DDL:
                conn.execute(sql.SQL(ddl).format(s=self.ident))

    def register(
        self,
        conn: psycopg.Connection,
        *,
        cluster_id: str,
        source: str,
        account: str,
        cluster_alias: str,
        schema: str,
        data_root: str,
    ) -> ClusterRecord:
        """Insert or refresh one row; returns the row as stored (the first source of a cluster id wins)."""
        conn.execute(
            sql.SQL(
                "INSERT INTO {s}.cluster_registry AS r (cluster_id, source, account, cluster_alias, schema, data_root)"
                " VALUES (%s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (cluster_id) DO UPDATE SET cluster_alias = EXCLUDED.cluster_alias, updated_at = now()"
                " WHERE r.source = EXCLUDED.source AND r.cluster_alias IS DISTINCT FROM EXCLUDED.cluster_alias"
            ).format(s=self.ident),
            (cluster_id, source, account, cluster_alias, schema, data_root),
        )
        return self.cluster(conn, cluster_id)

    def clusters(self, conn: psycopg.Connection) -> list[ClusterRecord]:
        rows = conn.execute(
            sql.SQL(f"SELECT {_COLUMNS} FROM {{}}.cluster_registry ORDER BY cluster_id").format(self.ident)
        ).fetchall()
        return [ClusterRecord(*r) for r in rows]

    def cluster(self, conn: psycopg.Connection, cluster_id: str) -> ClusterRecord:
        try:
            row = conn.execute(
                sql.SQL(f"SELECT {_COLUMNS} FROM {{}}.cluster_registry WHERE cluster_id = %s").format(self.ident),
                (cluster_id,),
            ).fetchone()
        except psycopg.errors.UndefinedTable:
            row = None
        if row is None:
            raise UnknownClusterError(
                f"cluster {cluster_id!r} is not in {self.schema}.{REGISTRY_TABLE}; "
                "let the koku_parquet_sensor discover it (it reads the ingest's cluster.json records)"
            )
        return ClusterRecord(*row)

    # ------------------------------------------------------------ file state
    def file_states(self, conn: psycopg.Connection, cluster_id: str) -> dict[str, tuple[int, int, list[dt.date]]]:
        """key -> (size, mtime_ns, days covered) of every file of the cluster seen so far."""
        rows = conn.execute(
            sql.SQL("SELECT key, size, mtime_ns, days FROM {}.parquet_file_state WHERE cluster_id = %s").format(
                self.ident
            ),
            (cluster_id,),
        ).fetchall()
        return {key: (size, mtime, days) for key, size, mtime, days in rows}

    def store_file_states(
        self,
        conn: psycopg.Connection,
        updates: list[tuple[str, str, int, int, list[dt.date]]],
        removed: list[tuple[str, str]],
    ) -> None:
        """updates: (cluster_id, key, size, mtime_ns, days); removed: (cluster_id, key)."""
        with conn.transaction(), conn.cursor() as cur:
            if removed:
                cur.executemany(
                    sql.SQL("DELETE FROM {}.parquet_file_state WHERE cluster_id = %s AND key = %s").format(self.ident),
                    removed,
                )
            if updates:
                cur.executemany(
                    sql.SQL(
                        "INSERT INTO {}.parquet_file_state (cluster_id, key, size, mtime_ns, days) VALUES (%s, "
                        "%s, %s, %s, %s)"
                        " ON CONFLICT (cluster_id, key) DO UPDATE SET size = EXCLUDED.size, mtime_ns = "
                        "EXCLUDED.mtime_ns,"
                        " days = EXCLUDED.days, seen_at = now()"
                    ).format(self.ident),
                    updates,
                )

    def known_days(self, conn: psycopg.Connection, cluster_id: str) -> list[dt.date]:
        """Every day some seen file of the cluster covers."""
        rows = conn.execute(
            sql.SQL(
                "SELECT DISTINCT unnest(days) AS d FROM {}.parquet_file_state WHERE cluster_id = %s ORDER BY d"
            ).format(self.ident),
            (cluster_id,),
        ).fetchall()
        return [d for (d,) in rows]


def koku_cluster_of_source(conn: psycopg.Connection, tenant_schema: str, source: str) -> str | None:
    """The cluster id koku's ``reporting_ocp_clusters`` records for provider `source` in the tenant schema, if any.

    koku keeps one row per provider and never changes its cluster id; a summary written under another id would
    leave that row (and its report periods) pointing at the old one. A missing schema or table means none; any other
    error (``InsufficientPrivilege`` when the role may not read the schema) is raised after the query's own
    transaction (a savepoint inside the caller's) rolled back, so the connection stays usable for the caller's next
    query (the sensor skips that cluster and goes on).
    """
    try:
        with conn.transaction():
            row = conn.execute(
                sql.SQL(
                    "SELECT cluster_id FROM {}.reporting_ocp_clusters WHERE provider_id = %s ORDER BY uuid LIMIT 1"
                ).format(sql.Identifier(tenant_schema)),
                (source,),
            ).fetchone()
    except (psycopg.errors.UndefinedTable, psycopg.errors.InvalidSchemaName):
        return None
    return row[0] if row is not None else None


def cluster_contradiction(
    conn: psycopg.Connection, tenant_schema: str, source: str, cluster_id: str
) -> tuple[str, str] | None:
    """(the recorded cluster id, what is wrong) when koku's ``reporting_ocp_clusters`` records `source` under another
    cluster id than `cluster_id`; None when it records none or the same. The one check of the CLI, the Dagster step
    and the sensor."""
    known = koku_cluster_of_source(conn, tenant_schema, source)
    if known is None or known == cluster_id:
        return None
    return known, (
        f"source {source} is recorded for cluster {known!r} in {tenant_schema}.reporting_ocp_clusters, "
        f"not {cluster_id!r}"
    )
