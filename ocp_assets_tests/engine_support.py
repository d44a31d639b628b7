"""Test support: run the engine over days into a PostgreSQL schema and read its rows back as the reference does."""

import datetime as dt
import sys
from pathlib import Path

import pandas as pd
import psycopg
from psycopg import sql

from ocp_assets.core import pgschema
from ocp_assets.core.identity import ClusterDay
from ocp_assets.core.pipeline import summarize_day
from ocp_assets.core.storage import open_data_root
from ocp_assets_tests.reference.koku_sql import SUMMARY_COLUMNS, _to_frame

# Every summary column but the row id and the report period id, which depend on insertion order elsewhere.
HASHED_COLUMNS = [name for name, _ in pgschema.SUMMARY_COLUMNS if name not in ("uuid", "report_period_id")]


def day_hashes(conn: psycopg.Connection, schema: str) -> dict[dt.date, str]:
    """One md5 per usage day over every hashed column of the day's summary rows: equal hashes, equal rows."""
    columns = ", ".join(f'"{c}"' for c in HASHED_COLUMNS)
    return dict(
        conn.execute(
            f"SELECT usage_start, md5(string_agg(t::text, '|' ORDER BY t::text)) FROM (SELECT {columns} FROM "
            f'"{schema}".reporting_ocpusagelineitem_daily_summary) t GROUP BY usage_start'
        ).fetchall()
    )


def summarize_command(data_root, identity, dsn: str, schema: str, cluster_id: str | None = None) -> list[str]:
    """`ocp-assets summarize` of one ingested cluster (its ClusterIdentity) into `schema`, as a user runs it."""
    return [
        str(Path(sys.executable).parent / "ocp-assets"), "summarize", "--data-root", str(data_root),
        "--account", identity.account, "--source", identity.source_uuid,
        "--cluster-id", cluster_id or identity.cluster_id, "--cluster-alias", identity.cluster_alias,
        "--dsn", dsn, "--schema", schema,
    ]  # fmt: skip


def engine_rows(conn: psycopg.Connection, schema: str, source: str) -> pd.DataFrame:
    """The source's summary rows in `schema`, in the reference's frame format."""
    query = sql.SQL("SELECT {} FROM {}.reporting_ocpusagelineitem_daily_summary WHERE source_uuid = %s").format(
        sql.SQL(", ").join(sql.Identifier(c) for c in SUMMARY_COLUMNS), sql.Identifier(schema)
    )
    return _to_frame(conn.execute(query, (source,)).fetchall())


def run_engine(conn, schema, data_root, *, account, source, cluster_id, cluster_alias, days: list[dt.date]):
    root = open_data_root(str(data_root))
    return [
        summarize_day(conn, schema, root, ClusterDay(account, source, cluster_id, cluster_alias, day)) for day in days
    ]


def koku_settings_for_reference(conn: psycopg.Connection, schema: str) -> dict:
    """Cost-category patterns and report-period ids as the engine's schema holds them, to render the reference alike."""
    ident = sql.Identifier(schema)
    patterns = conn.execute(
        sql.SQL("SELECT namespace, cost_category_id FROM {}.reporting_ocp_cost_category_namespace").format(ident)
    ).fetchall()
    periods = conn.execute(
        sql.SQL(
            "SELECT (report_period_start AT TIME ZONE 'UTC')::date, id FROM {}.reporting_ocpusagereportperiod"
        ).format(ident)
    ).fetchall()
    # Keys other than the enabled OCP ones (the tests pass those as enabled_keys), and every tag mapping.
    other_keys = conn.execute(
        sql.SQL(
            "SELECT key, provider_type, enabled FROM {}.reporting_enabledtagkeys"
            " WHERE NOT (enabled AND provider_type = 'OCP')"
        ).format(ident)
    ).fetchall()
    mappings = conn.execute(
        sql.SQL(
            "SELECT c.key, c.provider_type, p.key, p.provider_type FROM {s}.reporting_tagmapping m"
            " JOIN {s}.reporting_enabledtagkeys c ON c.uuid = m.child_id"
            " JOIN {s}.reporting_enabledtagkeys p ON p.uuid = m.parent_id"
        ).format(s=ident)
    ).fetchall()
    return {
        "cost_category_patterns": [(p, int(c)) for p, c in patterns],
        "report_period_id": dict(periods),
        "tag_keys": [tuple(row) for row in other_keys],
        "tag_mappings": [((ck, cp), (pk, pp)) for ck, cp, pk, pp in mappings],
    }


def map_tag_keys(
    conn: psycopg.Connection, schema: str, mappings, *, disabled: tuple[str, ...] = (), parent_provider: str = "OCP"
) -> None:
    """reporting_tagmapping rows for (child key, parent key) pairs, as koku's settings API leaves them.

    Children are OCP keys, parents keys of ``parent_provider``; a key missing from reporting_enabledtagkeys is
    added, enabled unless listed in ``disabled`` (a key disabled after it was mapped).
    """
    ident = sql.Identifier(schema)
    keys = {(child, "OCP") for child, _parent in mappings} | {(parent, parent_provider) for _child, parent in mappings}
    for key, provider in sorted(keys):
        conn.execute(
            sql.SQL(
                "INSERT INTO {}.reporting_enabledtagkeys (key, enabled, provider_type) VALUES (%s, %s, %s)"
                " ON CONFLICT (key, provider_type) DO NOTHING"
            ).format(ident),
            (key, key not in disabled, provider),
        )
    for child, parent in mappings:
        conn.execute(
            sql.SQL(
                "INSERT INTO {s}.reporting_tagmapping (child_id, parent_id)"
                " SELECT c.uuid, p.uuid FROM {s}.reporting_enabledtagkeys c, {s}.reporting_enabledtagkeys p"
                " WHERE c.key = %s AND c.provider_type = 'OCP' AND p.key = %s AND p.provider_type = %s"
            ).format(s=ident),
            (child, parent, parent_provider),
        )


def enable_keys(conn: psycopg.Connection, schema: str, keys) -> None:
    with conn.cursor() as cur:
        cur.executemany(
            sql.SQL(
                "INSERT INTO {}.reporting_enabledtagkeys (key, enabled, provider_type) VALUES (%s, true, 'OCP')"
            ).format(sql.Identifier(schema)),
            [(k,) for k in keys],
        )
