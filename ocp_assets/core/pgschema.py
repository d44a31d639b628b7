"""koku's PostgreSQL tables that the summary writes or reads (contract 2.1, 2.3, D4), created only when missing.

An existing koku database is used as it is: every statement here is CREATE ... IF NOT EXISTS, and the
default rows koku's migrations seed are inserted only into a table this module has just created. The engine
creates tables only in a schema holding none of koku's (``ensure_tenant_tables``); ``ocp-assets db init`` adds the
missing ones on request (decision G6).
"""

import datetime as dt
from typing import LiteralString

import psycopg
from psycopg import sql

from ocp_assets.core.database import one_row
from ocp_assets.core.errors import ConfigurationError
from ocp_assets.core.layout import month_start, next_month_start

SUMMARY_TABLE = "reporting_ocpusagelineitem_daily_summary"

MEASURE = "numeric(33,15)"

# (column, type) in koku's model order (reporting/provider/ocp/models.py 93-211 plus migrations 0308/0319/0339).
SUMMARY_COLUMNS: tuple[tuple[str, LiteralString], ...] = (
    ("uuid", "uuid NOT NULL"),
    ("report_period_id", "integer"),
    ("cost_category_id", "integer"),
    ("cluster_id", "varchar(50)"),
    ("cluster_alias", "varchar(256)"),
    ("data_source", "varchar(64)"),
    ("namespace", "varchar(253)"),
    ("node", "varchar(253)"),
    ("resource_id", "varchar(253)"),
    ("usage_start", "date NOT NULL"),
    ("usage_end", "date NOT NULL"),
    ("pod_labels", "jsonb"),
    ("pod_usage_cpu_core_hours", MEASURE),
    ("pod_request_cpu_core_hours", MEASURE),
    ("pod_effective_usage_cpu_core_hours", MEASURE),
    ("pod_limit_cpu_core_hours", MEASURE),
    ("pod_usage_memory_gigabyte_hours", MEASURE),
    ("pod_request_memory_gigabyte_hours", MEASURE),
    ("pod_effective_usage_memory_gigabyte_hours", MEASURE),
    ("pod_limit_memory_gigabyte_hours", MEASURE),
    ("node_capacity_cpu_cores", MEASURE),
    ("node_capacity_cpu_core_hours", MEASURE),
    ("node_capacity_memory_gigabytes", MEASURE),
    ("node_capacity_memory_gigabyte_hours", MEASURE),
    ("cluster_capacity_cpu_core_hours", MEASURE),
    ("cluster_capacity_memory_gigabyte_hours", MEASURE),
    ("persistentvolumeclaim", "varchar(253)"),
    ("persistentvolume", "varchar(253)"),
    ("storageclass", "varchar(253)"),
    ("volume_labels", "jsonb"),
    ("all_labels", "jsonb"),
    ("persistentvolumeclaim_capacity_gigabyte", MEASURE),
    ("persistentvolumeclaim_capacity_gigabyte_months", MEASURE),
    ("volume_request_storage_gigabyte_months", MEASURE),
    ("persistentvolumeclaim_usage_gigabyte_months", MEASURE),
    ("infrastructure_raw_cost", MEASURE),
    ("infrastructure_project_raw_cost", MEASURE),
    ("infrastructure_data_in_gigabytes", MEASURE),
    ("infrastructure_data_out_gigabytes", MEASURE),
    ("infrastructure_usage_cost", "jsonb"),
    ("infrastructure_markup_cost", MEASURE),
    ("infrastructure_project_markup_cost", MEASURE),
    ("infrastructure_monthly_cost", MEASURE),
    ("infrastructure_monthly_cost_json", "jsonb"),
    ("infrastructure_project_monthly_cost", "jsonb"),
    ("supplementary_usage_cost", "jsonb"),
    ("supplementary_monthly_cost", MEASURE),
    ("supplementary_monthly_cost_json", "jsonb"),
    ("supplementary_project_monthly_cost", "jsonb"),
    ("cost_model_cpu_cost", MEASURE),
    ("cost_model_memory_cost", MEASURE),
    ("cost_model_volume_cost", MEASURE),
    ("cost_model_gpu_cost", MEASURE),
    ("cost_model_rate_type", "text"),
    ("monthly_cost_type", "text"),
    ("raw_currency", "text"),
    ("source_uuid", "uuid"),
    ("distributed_cost", MEASURE),
)

GPU_SUMMARY_TABLE = "reporting_ocp_gpu_summary_p"

# (column, type) of koku's OCPGpuSummaryP in column order: migration 0340, then the MIG fields of 0344 and the
# identifiers of 0345 (mig_instance_id widened to 128 by 0346). reporting/provider/ocp/models.py OCPGpuSummaryP.
GPU_SUMMARY_COLUMNS: tuple[tuple[str, LiteralString], ...] = (
    ("id", "uuid NOT NULL"),
    ("cluster_id", "text NOT NULL"),
    ("cluster_alias", "text"),
    ("namespace", "varchar(253)"),
    ("node", "varchar(253)"),
    ("usage_start", "date NOT NULL"),
    ("usage_end", "date NOT NULL"),
    ("vendor_name", "varchar(128)"),
    ("model_name", "varchar(128)"),
    ("memory_capacity_gb", MEASURE),
    ("gpu_count", "integer"),
    ("cost_model_gpu_cost", MEASURE),
    ("raw_currency", "text"),
    ("cost_model_cpu_cost", MEASURE),
    ("cost_model_memory_cost", MEASURE),
    ("cost_model_volume_cost", MEASURE),
    ("cost_model_rate_type", "text"),
    ("cost_category_id", "integer"),
    ("source_uuid", "uuid"),
    ("gpu_max_slices", "integer"),
    ("gpu_mode", "varchar(32)"),
    ("mig_memory_capacity_gb", MEASURE),
    ("mig_profile", "varchar(64)"),
    ("mig_slice_count", "integer"),
    ("mig_strategy", "varchar(10)"),
    ("gpu_uuid", "varchar(128)"),
    ("mig_instance_id", "varchar(128)"),
)
# koku's index names (Meta.indexes of OCPGpuSummaryP), plus the (source, day) index the cluster-day replace uses.
_GPU_SUMMARY_INDEXES = (
    ("ocpgpusumm_usage_start", "(usage_start)"),
    ("ocpgpusumm_cluster_idx", "(cluster_id)"),
    ("ocpgpusumm_namespace_idx", "(namespace)"),
    ("ocpgpusumm_node_idx", "(node)"),
    ("ocpgpusumm_vendor_idx", "(vendor_name)"),
    ("ocpgpusumm_model_idx", "(model_name)"),
    ("ocpgpusumm_mig_profile_idx", "(mig_profile)"),
    ("ocpgpusumm_source_day_idx", "(source_uuid, usage_start)"),
)

# koku's default cost category and the namespace patterns migration 0315 points at it.
DEFAULT_COST_CATEGORY = ("Platform", "OCP platform projects", "OCP")
DEFAULT_COST_CATEGORY_PATTERNS = ("openshift-%", "kube-%", "Platform unallocated", "openshift")

_AUXILIARY_DDL = (
    (
        "reporting_ocpusagereportperiod",
        """CREATE TABLE {schema}.reporting_ocpusagereportperiod (
            id serial PRIMARY KEY,
            cluster_id varchar(50) NOT NULL,
            cluster_alias varchar(256),
            report_period_start timestamptz NOT NULL,
            report_period_end timestamptz NOT NULL,
            summary_data_creation_datetime timestamptz,
            summary_data_updated_datetime timestamptz,
            ocp_on_cloud_updated_datetime timestamptz,
            derived_cost_datetime timestamptz,
            provider_id uuid,
            UNIQUE (cluster_id, report_period_start, provider_id))""",
    ),
    (
        "reporting_enabledtagkeys",
        """CREATE TABLE {schema}.reporting_enabledtagkeys (
            uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            key varchar(512) NOT NULL,
            enabled boolean NOT NULL DEFAULT true,
            provider_type varchar(50) NOT NULL,
            UNIQUE (key, provider_type))""",
    ),
    (
        # koku's TagMapping (reporting/provider/all/models.py; migration 0317): a child key belongs to one parent.
        "reporting_tagmapping",
        """CREATE TABLE {schema}.reporting_tagmapping (
            id serial PRIMARY KEY,
            child_id uuid NOT NULL UNIQUE REFERENCES {schema}.reporting_enabledtagkeys (uuid)
                DEFERRABLE INITIALLY DEFERRED,
            parent_id uuid NOT NULL REFERENCES {schema}.reporting_enabledtagkeys (uuid)
                DEFERRABLE INITIALLY DEFERRED,
            UNIQUE (parent_id, child_id))""",
    ),
    (
        "reporting_ocp_cost_category",
        """CREATE TABLE {schema}.reporting_ocp_cost_category (
            id serial PRIMARY KEY,
            name text NOT NULL UNIQUE,
            description text NOT NULL,
            source_type text NOT NULL,
            system_default boolean NOT NULL DEFAULT false,
            label text[] NOT NULL DEFAULT '{{}}')""",
    ),
    (
        "reporting_ocp_cost_category_namespace",
        """CREATE TABLE {schema}.reporting_ocp_cost_category_namespace (
            id serial PRIMARY KEY,
            namespace text NOT NULL UNIQUE,
            system_default boolean NOT NULL DEFAULT false,
            cost_category_id integer NOT NULL REFERENCES {schema}.reporting_ocp_cost_category (id)
                DEFERRABLE INITIALLY DEFERRED)""",
    ),
    (
        "reporting_ocp_clusters",
        """CREATE TABLE {schema}.reporting_ocp_clusters (
            uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            cluster_id text NOT NULL,
            cluster_alias text,
            provider_id uuid)""",
    ),
    (
        "reporting_ocp_nodes",
        """CREATE TABLE {schema}.reporting_ocp_nodes (
            uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
            node text NOT NULL,
            resource_id text,
            node_capacity_cpu_cores numeric(18,2),
            cluster_id uuid REFERENCES {schema}.reporting_ocp_clusters (uuid) DEFERRABLE INITIALLY DEFERRED,
            node_role text,
            architecture text)""",
    ),
)

# koku's cost model (cost_models/models.py; migrations 0001, 0003, 0004, 0006, 0010, 0012 of cost_models), in
# creation order (each references only the ones before it; contract 8.2). Only read by the cost steps; created here so
# a schema ocp_assets makes works without koku. Columns and types as koku's; the model's Python defaults (which
# Django applies, so koku's own columns carry none) are given as column defaults for rows written by hand in SQL.
# koku's index names; foreign keys deferrable as Django makes them (its CASCADE is Django's, not the database's).
COST_MODEL_DDL: tuple[tuple[str, tuple[LiteralString, ...]], ...] = (
    (
        "cost_model",
        (
            """CREATE TABLE {schema}.cost_model (
                uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                name text NOT NULL,
                description text NOT NULL,
                source_type varchar(50) NOT NULL,
                created_timestamp timestamptz NOT NULL DEFAULT now(),
                updated_timestamp timestamptz NOT NULL DEFAULT now(),
                rates jsonb NOT NULL DEFAULT '{{}}',
                markup jsonb NOT NULL DEFAULT '{{}}',
                distribution text NOT NULL DEFAULT 'cpu',
                currency text NOT NULL DEFAULT 'USD',
                distribution_info jsonb NOT NULL DEFAULT '{{}}')""",
            "CREATE INDEX name_idx ON {schema}.cost_model (name)",
            "CREATE INDEX source_type_idx ON {schema}.cost_model (source_type)",
            "CREATE INDEX updated_timestamp_idx ON {schema}.cost_model (updated_timestamp)",
        ),
    ),
    (
        "cost_model_map",
        (
            """CREATE TABLE {schema}.cost_model_map (
                id serial PRIMARY KEY,
                provider_uuid uuid NOT NULL,
                cost_model_id uuid REFERENCES {schema}.cost_model (uuid) DEFERRABLE INITIALLY DEFERRED,
                UNIQUE (provider_uuid, cost_model_id))""",
            "CREATE INDEX cost_model_map_cost_model_id_idx ON {schema}.cost_model_map (cost_model_id)",
        ),
    ),
    (
        "price_list",
        (
            """CREATE TABLE {schema}.price_list (
                uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                name text NOT NULL,
                description text NOT NULL,
                currency text NOT NULL,
                effective_start_date date NOT NULL,
                effective_end_date date NOT NULL,
                enabled boolean NOT NULL DEFAULT true,
                version integer NOT NULL DEFAULT 1 CHECK (version >= 0),
                rates jsonb NOT NULL,
                created_timestamp timestamptz NOT NULL DEFAULT now(),
                updated_timestamp timestamptz NOT NULL DEFAULT now())""",
            "CREATE INDEX price_list_name_idx ON {schema}.price_list (name)",
            "CREATE INDEX price_list_validity_idx ON {schema}.price_list (effective_start_date, effective_end_date)",
        ),
    ),
    (
        "price_list_cost_model_map",
        (
            """CREATE TABLE {schema}.price_list_cost_model_map (
                id integer GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY,
                priority integer NOT NULL CHECK (priority >= 0),
                cost_model_id uuid NOT NULL REFERENCES {schema}.cost_model (uuid) DEFERRABLE INITIALLY DEFERRED,
                price_list_id uuid NOT NULL REFERENCES {schema}.price_list (uuid) DEFERRABLE INITIALLY DEFERRED,
                UNIQUE (price_list_id, cost_model_id))""",
            "CREATE INDEX price_list_cost_model_map_cost_model_id_idx"
            " ON {schema}.price_list_cost_model_map (cost_model_id)",
            "CREATE INDEX price_list_cost_model_map_price_list_id_idx"
            " ON {schema}.price_list_cost_model_map (price_list_id)",
        ),
    ),
    (
        "cost_model_rate",
        (
            """CREATE TABLE {schema}.cost_model_rate (
                uuid uuid PRIMARY KEY DEFAULT gen_random_uuid(),
                custom_name varchar(50) NOT NULL,
                description text NOT NULL DEFAULT '',
                metric varchar(100) NOT NULL,
                metric_type varchar(20) NOT NULL,
                cost_type varchar(20) NOT NULL,
                default_rate numeric(33,15),
                tag_key varchar(253) NOT NULL DEFAULT '',
                tag_values jsonb NOT NULL DEFAULT '[]',
                created_timestamp timestamptz NOT NULL DEFAULT now(),
                updated_timestamp timestamptz NOT NULL DEFAULT now(),
                price_list_id uuid NOT NULL REFERENCES {schema}.price_list (uuid) DEFERRABLE INITIALLY DEFERRED,
                UNIQUE (price_list_id, custom_name))""",
            "CREATE INDEX rate_price_list_idx ON {schema}.cost_model_rate (price_list_id)",
            "CREATE INDEX rate_custom_name_idx ON {schema}.cost_model_rate (custom_name)",
            "CREATE INDEX rate_metric_idx ON {schema}.cost_model_rate (metric)",
        ),
    ),
)

_SUMMARY_INDEXES = (
    ("summary_usage_start_idx", "(usage_start)"),
    ("summary_namespace_idx", "(namespace varchar_pattern_ops)"),
    ("summary_node_idx", "(node varchar_pattern_ops)"),
    ("summary_data_source_idx", "(data_source)"),
    ("summary_monthly_cost_type_idx", "(monthly_cost_type)"),
    ("summary_cost_model_rate_type_idx", "(cost_model_rate_type)"),
    ("summary_all_labels_idx", "USING gin (all_labels)"),
    ("summary_pod_labels_idx", "USING gin (pod_labels)"),
    ("summary_volume_labels_idx", "USING gin (volume_labels)"),
    ("summary_source_day_idx", "(source_uuid, usage_start)"),
)


def _table_exists(conn: psycopg.Connection, schema: str, table: str) -> bool:
    return one_row(conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f'"{schema}"."{table}"',)))[0]


def schema_exists(conn: psycopg.Connection, schema: str) -> bool:
    return conn.execute("SELECT 1 FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() is not None


def require_schema(conn: psycopg.Connection, schema: str) -> None:
    if not schema_exists(conn, schema) or not _table_exists(conn, schema, SUMMARY_TABLE):
        raise ConfigurationError(
            f"schema {schema!r} has no {SUMMARY_TABLE}; run `ocp-assets db init --schema {schema}` first"
        )


def koku_tables(conn: psycopg.Connection, schema: str) -> list[str]:
    """Which of the koku tables this module knows the schema holds (none: a new schema, not one koku manages)."""
    names = [table for table, _ in (*_AUXILIARY_DDL, *COST_MODEL_DDL)] + [SUMMARY_TABLE, GPU_SUMMARY_TABLE]
    found = conn.execute(
        "SELECT name FROM unnest(%s::text[]) WITH ORDINALITY AS t(name, n)"
        " WHERE to_regclass(quote_ident(%s) || '.' || quote_ident(name)) IS NOT NULL ORDER BY n",
        (names, schema),
    ).fetchall()
    return [name for (name,) in found]


def gpu_table_exists(conn: psycopg.Connection, schema: str) -> bool:
    return _table_exists(conn, schema, GPU_SUMMARY_TABLE)


def missing_gpu_table_reason(schema: str) -> str:
    """Why a cluster-day's GPU summary is not written in a koku schema without the GPU table (decision G6)."""
    return (
        f"koku's schema {schema} has no {GPU_SUMMARY_TABLE} (koku older than migration 0340): GPU summary not written;"
        f" `ocp-assets db init --schema {schema}` adds the table (docs/operations.md first, for koku's own schemas)"
    )


def ensure_tenant_tables(conn: psycopg.Connection, schema: str) -> bool:
    """koku's tables, created only in a schema that holds none of them (a new schema: the demo, tests); returns whether
    the GPU summary table is there.

    A schema holding some of koku's tables is koku's (its migrations) or `db init`'s to change, never the engine's:
    a table added behind koku's back makes koku's own migration of it fail later (decision G6). Such a schema
    without the summary table is refused; without the GPU table, the caller skips the GPU summary.
    Concurrent callers wait for one another.
    """
    if _table_exists(conn, schema, SUMMARY_TABLE):
        # koku's (or an earlier db init's) schema: never changed here, so no lock and no init for each cluster-day.
        return _table_exists(conn, schema, GPU_SUMMARY_TABLE)
    init_schema(conn, schema, new_schema_only=True)
    require_schema(conn, schema)
    return _table_exists(conn, schema, GPU_SUMMARY_TABLE)


def init_schema(conn: psycopg.Connection, schema: str, *, new_schema_only: bool = False) -> list[str]:
    """Create the schema (only when it does not exist) and every missing table; returns the names of the tables created.

    All or nothing, in one transaction (PostgreSQL's DDL is transactional) serialised per schema: a run killed
    part-way leaves nothing behind, so the next run creates the tables and seeds them (D4 seeds only tables it
    creates, so a half-made schema would otherwise stay without koku's Platform cost category). An existing schema
    needs no CREATE privilege on the database. With ``new_schema_only``, a schema already holding any of koku's
    tables is left as it is (the engine's rule, decision G6).
    """
    created: list[str] = []
    ident = sql.Identifier(schema)
    with conn.transaction():
        conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"ocp_assets.init/{schema}",))
        if not schema_exists(conn, schema):
            conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(ident))
        elif new_schema_only and koku_tables(conn, schema):
            return created
        for table, ddl in _AUXILIARY_DDL:
            if _table_exists(conn, schema, table):
                continue
            conn.execute(sql.SQL(ddl).format(schema=ident))
            created.append(table)
        if "reporting_ocp_cost_category" in created:
            _seed_cost_categories(conn, ident)
        if not _table_exists(conn, schema, SUMMARY_TABLE):
            _create_summary_table(conn, ident)
            created.append(SUMMARY_TABLE)
        if not _table_exists(conn, schema, GPU_SUMMARY_TABLE):
            _create_gpu_summary_table(conn, ident)
            created.append(GPU_SUMMARY_TABLE)
        created += create_cost_model_tables(conn, schema)
    return created


def create_cost_model_tables(conn: psycopg.Connection, schema: str) -> list[str]:
    """koku's five cost-model tables that the schema lacks, with their indexes; returns the names created. An existing
    one is left exactly as it is (koku's, only read). Runs in the caller's transaction."""
    created = []
    for table, statements in COST_MODEL_DDL:
        if _table_exists(conn, schema, table):
            continue
        for statement in statements:
            conn.execute(sql.SQL(statement).format(schema=sql.Identifier(schema)))
        created.append(table)
    return created


def _seed_cost_categories(conn: psycopg.Connection, schema: sql.Identifier) -> None:
    name, description, source_type = DEFAULT_COST_CATEGORY
    category_id = one_row(
        conn.execute(
            sql.SQL(
                "INSERT INTO {}.reporting_ocp_cost_category (name, description, source_type, system_default)"
                " VALUES (%s, %s, %s, true) RETURNING id"
            ).format(schema),
            (name, description, source_type),
        )
    )[0]
    with conn.cursor() as cur:
        cur.executemany(
            sql.SQL(
                "INSERT INTO {}.reporting_ocp_cost_category_namespace (namespace, system_default, cost_category_id)"
                " VALUES (%s, true, %s) ON CONFLICT (namespace) DO NOTHING"
            ).format(schema),
            [(pattern, category_id) for pattern in DEFAULT_COST_CATEGORY_PATTERNS],
        )


def _create_summary_table(conn: psycopg.Connection, schema: sql.Identifier) -> None:
    columns = sql.SQL(",\n").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind)) for name, kind in SUMMARY_COLUMNS
    )
    conn.execute(
        sql.SQL(
            "CREATE TABLE {schema}.{table} ({columns},"
            " PRIMARY KEY (usage_start, uuid),"
            " FOREIGN KEY (report_period_id) REFERENCES {schema}.reporting_ocpusagereportperiod (id)"
            " DEFERRABLE INITIALLY DEFERRED,"
            " FOREIGN KEY (cost_category_id) REFERENCES {schema}.reporting_ocp_cost_category (id)"
            " DEFERRABLE INITIALLY DEFERRED"
            ") PARTITION BY RANGE (usage_start)"
        ).format(schema=schema, table=sql.Identifier(SUMMARY_TABLE), columns=columns)
    )
    conn.execute(
        sql.SQL("CREATE TABLE {schema}.{default} PARTITION OF {schema}.{table} DEFAULT").format(
            schema=schema, table=sql.Identifier(SUMMARY_TABLE), default=sql.Identifier(f"{SUMMARY_TABLE}_default")
        )
    )
    for name, definition in _SUMMARY_INDEXES:
        conn.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {name} ON {schema}.{table} " + definition).format(
                name=sql.Identifier(f"{SUMMARY_TABLE[:30]}_{name}"), schema=schema, table=sql.Identifier(SUMMARY_TABLE)
            )
        )


def _create_gpu_summary_table(conn: psycopg.Connection, schema: sql.Identifier) -> None:
    """koku's reporting_ocp_gpu_summary_p: RANGE-partitioned on usage_start like its other *_p tables (PartitionInfo),
    primary key (usage_start, id) and a default partition, as koku's schema editor makes them."""
    columns = sql.SQL(",\n").join(
        sql.SQL("{} {}").format(sql.Identifier(name), sql.SQL(kind)) for name, kind in GPU_SUMMARY_COLUMNS
    )
    table = sql.Identifier(GPU_SUMMARY_TABLE)
    conn.execute(
        sql.SQL(
            "CREATE TABLE {schema}.{table} ({columns},"
            " CONSTRAINT {pk} PRIMARY KEY (usage_start, id),"
            " FOREIGN KEY (cost_category_id) REFERENCES {schema}.reporting_ocp_cost_category (id)"
            " DEFERRABLE INITIALLY DEFERRED"
            ") PARTITION BY RANGE (usage_start)"
        ).format(schema=schema, table=table, columns=columns, pk=sql.Identifier(f"{GPU_SUMMARY_TABLE}_pk"))
    )
    conn.execute(
        sql.SQL("CREATE TABLE {schema}.{default} PARTITION OF {schema}.{table} DEFAULT").format(
            schema=schema, table=table, default=sql.Identifier(f"{GPU_SUMMARY_TABLE}_default")
        )
    )
    for name, definition in _GPU_SUMMARY_INDEXES:
        conn.execute(
            sql.SQL("CREATE INDEX IF NOT EXISTS {name} ON {schema}.{table} " + definition).format(
                name=sql.Identifier(name), schema=schema, table=table
            )
        )


def month_partition_name(day: dt.date, table: str = SUMMARY_TABLE) -> str:
    return f"{table}_{day.year:04d}_{day.month:02d}"


def ensure_month_partition(conn: psycopg.Connection, schema: str, day: dt.date, table: str = SUMMARY_TABLE) -> bool:
    """Create the monthly partition holding day unless it exists; returns False when rows must stay in the default.

    PostgreSQL refuses a new partition while the default partition holds rows of its range (koku's own
    writers can leave such rows); the insert then still succeeds through the parent into the default.
    """
    name = month_partition_name(day, table)
    if _table_exists(conn, schema, name):
        return True
    ident = sql.Identifier(schema)
    try:
        with conn.transaction():
            # Two writers of a new month (days of one cluster, or two clusters) would otherwise both create it.
            conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (f"ocp_assets.partition/{schema}/{name}",))
            if _table_exists(conn, schema, name):
                return True
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {schema}.{name} PARTITION OF {schema}.{table} FOR VALUES FROM ({lo}) TO ({hi})"
                ).format(
                    schema=ident,
                    name=sql.Identifier(name),
                    table=sql.Identifier(table),
                    lo=sql.Literal(month_start(day)),
                    hi=sql.Literal(next_month_start(day)),
                )
            )
    except psycopg.errors.CheckViolation:
        return False
    except psycopg.errors.DuplicateTable:
        # Created by a concurrent writer that held the lock first (to_regclass may not see it yet: the advisory lock
        # does not refresh the catalog cache the way a table lock does).
        return True
    return True
