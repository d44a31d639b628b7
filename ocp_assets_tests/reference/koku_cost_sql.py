"""koku's own cost-model SQL (contract section 8) run on PostgreSQL: the reference the ocp_assets.core.costs rows are
compared with.

koku's files are read from a local git copy of koku (``OCP_ASSETS_KOKU_GIT``: a git directory, default the
workplace mirror) at the contract's commit, never copied into this repository: where there is none, the tests
that need it are skipped. A :class:`KokuCostDatabase` is a throw-away schema with koku's self-hosted line-item
tables (contract 1.7: the Parquet columns plus ``usage_start``, ``source``, ``year``, ``month``; whole month
folders, as koku's tables hold them), koku's summary table and its cost-model tables; ``run`` renders one file
with a parameter dict the way jinjasql does for koku (pyformat: every ``{{ x }}`` is a bound parameter, ``| sqlsafe``
is inlined, ``{% if %}`` blocks are Jinja's) and executes it with client-side binding (the literals koku's psycopg
sends), returning the rows the call inserted.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import uuid as uuidlib
from collections.abc import Iterable, Mapping
from pathlib import Path

import jinja2
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from psycopg import sql

from ocp_assets.core.layout import GPU, NAMESPACE_LABEL, NODE_LABEL, POD, STORAGE, VM, ReportType, raw_schema
from ocp_assets.core.pgschema import SUMMARY_COLUMNS, create_cost_model_tables
from ocp_assets_tests import shared_postgres

KOKU_COMMIT = "768be8253"  # the contract's koku commit (section 0 header)
DEFAULT_KOKU_GIT = "/work/.mirror/project-koku+koku/repo"
SQL_ROOT = "koku/masu/database"
# koku file name -> path below SQL_ROOT (the self-hosted twins; the tmp table's DDL is shared with Trino).
FILES = {
    "hourly_cost_virtual_machine.sql": "self_hosted_sql/openshift/cost_model/hourly_cost_virtual_machine.sql",
    "hourly_vm_core.sql": "self_hosted_sql/openshift/cost_model/hourly_vm_core.sql",
    "monthly_vm_core.sql": "self_hosted_sql/openshift/cost_model/monthly_vm_core.sql",
    "hourly_cost_vm_tag_based.sql": "self_hosted_sql/openshift/cost_model/hourly_cost_vm_tag_based.sql",
    "hourly_vm_core_tag_based.sql": "self_hosted_sql/openshift/cost_model/hourly_vm_core_tag_based.sql",
    "monthly_vm_core_tag_based.sql": "self_hosted_sql/openshift/cost_model/monthly_vm_core_tag_based.sql",
    "monthly_cost_gpu.sql": "self_hosted_sql/openshift/cost_model/monthly_cost_gpu.sql",
    "monthly_project_tag_based.sql": "self_hosted_sql/openshift/cost_model/monthly_project_tag_based.sql",
    "distribute_unallocated_gpu_cost.sql": (
        "self_hosted_sql/openshift/cost_model/distribute_cost/distribute_unallocated_gpu_cost.sql"
    ),
    "populate_vm_tmp_table_with_vm_report.sql": "self_hosted_sql/openshift/populate_vm_tmp_table_with_vm_report.sql",
    "populate_vm_tmp_table.sql": "self_hosted_sql/openshift/populate_vm_tmp_table.sql",
    "create_virtualization_tmp_table.sql": "sql/openshift/create_virtualization_tmp_table.sql",
}
REPORT_TYPES: tuple[ReportType, ...] = (POD, STORAGE, NODE_LABEL, NAMESPACE_LABEL, VM, GPU)


# ------------------------------------------------------------------------------------------------ koku's files
def koku_git() -> str | None:
    """The git directory holding koku's source at KOKU_COMMIT, or None."""
    git_dir = os.environ.get("OCP_ASSETS_KOKU_GIT", DEFAULT_KOKU_GIT)
    if not Path(git_dir).exists():
        return None
    probe = subprocess.run(
        ["git", "--git-dir", git_dir, "cat-file", "-e", f"{KOKU_COMMIT}^{{commit}}"], capture_output=True
    )
    return git_dir if probe.returncode == 0 else None


def koku_file(name: str) -> str:
    """The text of koku's file `name` (a key of FILES) at KOKU_COMMIT."""
    git_dir = koku_git()
    if git_dir is None:
        raise FileNotFoundError("no koku git copy: set OCP_ASSETS_KOKU_GIT to a git directory of project-koku/koku")
    spec = f"{KOKU_COMMIT}:{SQL_ROOT}/{FILES[name]}"
    return subprocess.run(
        ["git", "--git-dir", git_dir, "show", spec], capture_output=True, check=True, text=True
    ).stdout


class _Inline(str):
    """A value ``| sqlsafe`` put into the SQL text itself."""


def render(template: str, params: Mapping) -> tuple[str, dict]:
    """jinjasql's pyformat rendering: each ``{{ expr }}`` becomes ``%(pN)s`` bound to its value, unless its last filter
    is ``sqlsafe`` (inlined). Template text is not escaped (jinjasql does not either)."""
    bound: dict[str, object] = {}

    def finalize(value):
        if isinstance(value, _Inline):
            return value
        name = f"p{len(bound)}"
        bound[name] = value
        return f"%({name})s"

    env = jinja2.Environment(finalize=finalize, autoescape=False, undefined=jinja2.StrictUndefined)
    env.filters["sqlsafe"] = lambda value: _Inline(value)
    return env.from_string(template).render(**params), bound


# ------------------------------------------------------------------------------------------------ the database
def _pg_type(report_type: ReportType, field: pa.Field) -> str:
    if pa.types.is_timestamp(field.type):
        return "timestamp"
    if pa.types.is_floating(field.type):
        return "double precision"
    if pa.types.is_integer(field.type):
        return "integer"
    return "text"


STAGING = "reporting_ocpusagelineitem_daily_summary_staging"
STAGING_DDL = f"""CREATE TABLE IF NOT EXISTS {STAGING} (uuid varchar(64), usage_start date, report_period_id integer,
    cluster_id varchar(256), cluster_alias varchar(256), data_source varchar(64), usage_end date,
    namespace varchar(253), node varchar(253), resource_id varchar(256), source_uuid uuid, source varchar(64),
    year varchar(4), month varchar(2), day varchar(2))"""


class KokuCostDatabase:
    """A scratch schema shaped like a koku tenant for the cost-model files; dropped on exit."""

    def __init__(self, dsn: str | None = None):
        self.dsn = dsn or shared_postgres.session_dsn()
        self.schema = f"ocp_cost_ref_{uuidlib.uuid4().hex[:12]}"
        self.conn: psycopg.Connection | None = None

    def __enter__(self) -> KokuCostDatabase:
        self.conn = psycopg.connect(self.dsn, autocommit=True)
        self.conn.execute(sql.SQL("CREATE SCHEMA {}").format(sql.Identifier(self.schema)))
        self.conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(self.schema)))
        self.conn.execute("SET TimeZone TO 'UTC'")
        with self.conn.transaction():
            self._create_tables()
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(self.schema)))
        finally:
            self.conn.close()

    def _create_tables(self) -> None:
        # koku's databases have uuid-ossp; a schema-local twin keeps the test server untouched.
        self.conn.execute("CREATE FUNCTION uuid_generate_v4() RETURNS uuid LANGUAGE sql AS 'SELECT gen_random_uuid()'")
        columns = ", ".join(f"{name} {kind}" for name, kind in SUMMARY_COLUMNS)
        self.conn.execute(f"CREATE TABLE reporting_ocpusagelineitem_daily_summary ({columns})")
        self.conn.execute(
            "CREATE TABLE reporting_ocp_cost_category_namespace (id serial PRIMARY KEY, namespace text UNIQUE,"
            " system_default boolean NOT NULL DEFAULT false, cost_category_id integer NOT NULL)"
        )
        for report_type in REPORT_TYPES:
            for daily in (False, True):
                table = report_type.daily_table if daily else report_type.raw_table
                cols = [f"{f.name} {_pg_type(report_type, f)}" for f in raw_schema(report_type)]
                cols += ["usage_start date", "source varchar(64)", "year varchar(4)", "month varchar(2)"]
                self.conn.execute(f"CREATE TABLE {table} ({', '.join(dict.fromkeys(cols))})")
        # The product's own DDL of koku's cost-model tables (pgschema.COST_MODEL_DDL): only their shape matters here
        # (they are read, never computed on), so the reference and `db init` make the same tables.
        create_cost_model_tables(self.conn, self.schema)

    # -------------------------------------------------------------------------------------------- loading
    def load_parquet(self, data_root: str | Path, account: str, source: str, months: Iterable[tuple[int, int]]):
        """Every row of the source's month folders of every report type into koku's line-item tables."""
        for report_type in REPORT_TYPES:
            for daily in (False, True):
                kind = "parquet/daily" if daily else "parquet"
                table = report_type.daily_table if daily else report_type.raw_table
                for year, month in months:
                    folder = (
                        Path(data_root)
                        / "data"
                        / kind
                        / account
                        / "OCP"
                        / report_type.name
                        / f"source={source}"
                        / f"year={year:04d}"
                        / f"month={month:02d}"
                    )
                    for path in sorted(folder.glob("*.parquet")) if folder.is_dir() else []:
                        self._insert_file(table, pq.read_table(path), source, year, month)

    def _insert_file(self, table: str, data: pa.Table, source: str, year: int, month: int) -> None:
        wanted = [
            r[0]
            for r in self.conn.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_schema = %s AND table_name = %s"
                " ORDER BY ordinal_position",
                (self.schema, table),
            )
        ]
        names = [c for c in data.column_names if c in wanted]
        starts = pc.cast(data["interval_start"], pa.timestamp("ms"))
        usage_start = pc.cast(pc.floor_temporal(starts, unit="day"), pa.date32()).to_pylist()
        rows = data.select(names).to_pylist()
        query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
            sql.Identifier(table),
            sql.SQL(", ").join(map(sql.Identifier, [*names, "usage_start", "source", "year", "month"])),
            sql.SQL(", ").join(sql.Placeholder() * (len(names) + 4)),
        )
        with self.conn.cursor() as cur:
            cur.executemany(
                query,
                [(*r.values(), day, source, f"{year:04d}", f"{month:02d}") for r, day in zip(rows, usage_start)],
            )

    def insert_summary_rows(self, rows: Iterable[Mapping]) -> None:
        """Summary rows given as dicts of summary columns (JSON columns as dicts or text); uuid added when absent."""
        known = {name for name, _ in SUMMARY_COLUMNS}
        with self.conn.cursor() as cur:
            for row in rows:
                row = {k: v for k, v in row.items() if k in known}
                row.setdefault("uuid", str(uuidlib.uuid4()))
                row = {k: json.dumps(v) if isinstance(v, Mapping) else v for k, v in row.items()}
                cur.execute(
                    sql.SQL("INSERT INTO reporting_ocpusagelineitem_daily_summary ({}) VALUES ({})").format(
                        sql.SQL(", ").join(map(sql.Identifier, row)), sql.SQL(", ").join(sql.Placeholder() * len(row))
                    ),
                    list(row.values()),
                )

    def insert_usage_rows(self, usage: list[Mapping]) -> None:
        """Usage rows into the summary and, as koku's summary SQL copies them, into its intermediate table
        (``..._staging``: source as text, year/month/day unpadded, as koku writes them; the project file reads its
        nodes there, C9)."""
        self.insert_summary_rows(usage)
        self.conn.execute(STAGING_DDL)
        columns = ["usage_start", "report_period_id", "cluster_id", "cluster_alias", "data_source", "usage_end",
                   "namespace", "node", "resource_id", "source_uuid"]  # fmt: skip
        with self.conn.cursor() as cur:
            cur.executemany(
                sql.SQL("INSERT INTO {} ({}, source, year, month, day) VALUES ({})").format(
                    sql.Identifier(STAGING),
                    sql.SQL(", ").join(map(sql.Identifier, columns)),
                    sql.SQL(", ").join(sql.Placeholder() * (len(columns) + 4)),
                ),
                [
                    (*(row.get(c) for c in columns), str(row["source_uuid"]), str(row["usage_start"].year),
                     str(row["usage_start"].month), str(row["usage_start"].day))
                    for row in usage
                ],
            )  # fmt: skip

    # -------------------------------------------------------------------------------------------- running
    def run(self, name: str, params: Mapping) -> list[dict]:
        """Run koku's file `name` with koku's `params` (schema is this database's); the rows it inserted."""
        params = {**params, "schema": self.schema}
        if name.startswith("populate_vm_tmp_table"):
            return self._run_tmp(name, params)
        before = {r[0] for r in self.conn.execute("SELECT uuid FROM reporting_ocpusagelineitem_daily_summary")}
        self._execute(koku_file(name), params)
        rows = self.summary_rows()
        return [r for r in rows if r["uuid"] not in before]

    def _execute(self, template: str, params: Mapping) -> None:
        text, bound = render(template, params)
        with psycopg.ClientCursor(self.conn) as cur:
            cur.execute(text, bound)

    def _run_tmp(self, name: str, params: Mapping) -> list[dict]:
        self._execute(koku_file("create_virtualization_tmp_table.sql"), params)
        self._execute(koku_file(name), params)
        table = sql.Identifier(f"tmp_virt_{params['uuid']}")
        with self.conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            cur.execute(sql.SQL("SELECT vm_name, node, pvc_name, cpu_request, mem_request FROM {}").format(table))
            return cur.fetchall()

    def summary_rows(self) -> list[dict]:
        with self.conn.cursor(row_factory=psycopg.rows.dict_row) as cur:
            cur.execute("SELECT * FROM reporting_ocpusagelineitem_daily_summary")
            return cur.fetchall()


def month_params(day: dt.date) -> dict:
    return {"year": f"{day.year:04d}", "month": f"{day.month:02d}"}
