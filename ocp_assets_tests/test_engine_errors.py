"""End-to-end bad-input tests: each error names file, column and row, and the day's previous rows stay in PostgreSQL."""

import datetime as dt
import glob
import os
import uuid

import psycopg
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ocp_assets.cli import main
from ocp_assets.core.errors import ConfigurationError, InputDataError
from ocp_assets.core.identity import ClusterDay
from ocp_assets.core.pipeline import summarize_day
from ocp_assets.core.storage import open_data_root
from ocp_assets_tests.engine_support import engine_rows
from ocp_assets_tests.reference.koku_sql import compare_summaries
from ocp_assets_tests.reference.parquet_fixtures import KokuParquetBuilder

SOURCE = "0f5b8a3e-55c4-4c8e-9d0b-2b9a4f1a7c01"
ACCOUNT = "10001"
DAY = dt.date(2026, 10, 5)


@pytest.fixture
def summarized(pg, tmp_path):
    """A day summarised once, so every test can check that a failed re-run leaves these rows."""
    conn, schema = pg
    builder = KokuParquetBuilder(tmp_path, account=ACCOUNT, source=SOURCE)
    builder.pod(DAY, pod="p1", namespace="app", node="worker-1", resource_id="i-1", labels={"app": "web"})
    builder.pvc(DAY, namespace="app", pod="p1", pvc="claim", pv="pv1")
    builder.node_labels(DAY, node="worker-1", labels={"kubernetes_io_arch": "amd64"})
    builder.write()
    root = open_data_root(str(tmp_path))
    cluster_day = ClusterDay(ACCOUNT, SOURCE, "c1", "C1", DAY)
    summarize_day(conn, schema, root, cluster_day)
    before = engine_rows(conn, schema, SOURCE)
    assert len(before) == 3  # Pod, Storage and the node's unallocated row
    return conn, schema, root, cluster_day, tmp_path, before


def _summarize_args(tmp_path, dsn: str, schema: str, *extra: str, alias: str | None = "C1") -> list[str]:
    """`ocp-assets summarize` of the module's cluster c1 (its data in tmp_path), with extra options."""
    named = ["--cluster-alias", alias] if alias else []
    command = ["summarize", "--data-root", str(tmp_path), "--account", ACCOUNT, "--source", SOURCE]
    return [*command, "--cluster-id", "c1", *named, *extra, "--dsn", dsn, "--schema", schema]


def _file(tmp_path, report_type, daily=True):
    pattern = (
        f"{tmp_path}/data/parquet{'/daily' if daily else ''}/{ACCOUNT}/OCP/{report_type}/source={SOURCE}/**/*.parquet"
    )
    [path] = glob.glob(pattern, recursive=True)
    return path


def _rewrite(path, change):
    table = pq.read_table(path)
    pq.write_table(change(table), path)


def _assert_unchanged(conn, schema, before):
    assert compare_summaries(before, engine_rows(conn, schema, SOURCE), rel_tol=0) == []


def test_malformed_label_json_names_file_column_and_row(summarized):
    conn, schema, root, cluster_day, tmp_path, before = summarized
    path = _file(tmp_path, "pod_usage")
    _rewrite(
        path,
        lambda t: t.set_column(
            t.schema.get_field_index("pod_labels"), "pod_labels", pa.array(['{"app": "web"'] * t.num_rows)
        ),
    )
    with pytest.raises(InputDataError) as error:
        summarize_day(conn, schema, root, cluster_day)
    assert (
        error.value.file.endswith(os.path.basename(path))
        and error.value.column == "pod_labels"
        and error.value.row == 1
    )
    assert "not a JSON object" in str(error.value)
    _assert_unchanged(conn, schema, before)


def test_missing_column_names_file_and_column(summarized):
    conn, schema, root, cluster_day, tmp_path, before = summarized
    path = _file(tmp_path, "storage_usage")
    _rewrite(path, lambda t: t.drop_columns(["persistentvolumeclaim_usage_byte_seconds"]))
    with pytest.raises(InputDataError, match="required column is missing") as error:
        summarize_day(conn, schema, root, cluster_day)
    assert error.value.column == "persistentvolumeclaim_usage_byte_seconds" and error.value.file.endswith(
        os.path.basename(path)
    )
    _assert_unchanged(conn, schema, before)


def test_mistyped_column_names_its_type(summarized):
    conn, schema, root, cluster_day, tmp_path, before = summarized
    path = _file(tmp_path, "pod_usage")
    _rewrite(
        path,
        lambda t: t.set_column(
            t.schema.get_field_index("pod_usage_cpu_core_seconds"),
            "pod_usage_cpu_core_seconds",
            t["pod_usage_cpu_core_seconds"].cast(pa.string()),
        ),
    )
    with pytest.raises(InputDataError, match="has type string, expected double") as error:
        summarize_day(conn, schema, root, cluster_day)
    assert error.value.column == "pod_usage_cpu_core_seconds"
    _assert_unchanged(conn, schema, before)


def test_corrupt_parquet_names_the_file(summarized):
    conn, schema, root, cluster_day, tmp_path, before = summarized
    path = _file(tmp_path, "node_labels", daily=False)
    with open(path, "r+b") as handle:
        handle.seek(-12, os.SEEK_END)
        handle.write(b"garbage!" * 1 + b"\0\0\0\0")
    with pytest.raises(InputDataError, match="not a readable Parquet file") as error:
        summarize_day(conn, schema, root, cluster_day)
    assert error.value.file.endswith(os.path.basename(path))
    _assert_unchanged(conn, schema, before)


def test_null_timestamp_names_the_first_null_row(summarized):
    conn, schema, root, cluster_day, tmp_path, before = summarized
    path = _file(tmp_path, "pod_usage", daily=False)

    def null_third_row(table):
        starts = table["interval_start"].to_pylist()
        starts[2] = None
        return table.set_column(
            table.schema.get_field_index("interval_start"), "interval_start", pa.array(starts, pa.timestamp("ms"))
        )

    _rewrite(path, null_third_row)
    with pytest.raises(InputDataError, match="interval_start is NULL") as error:
        summarize_day(conn, schema, root, cluster_day)
    assert (error.value.column, error.value.row) == ("interval_start", 3)
    _assert_unchanged(conn, schema, before)


def test_day_without_koku_data_is_summarised_as_empty_and_leaves_other_days(summarized):
    conn, schema, root, cluster_day, tmp_path, before = summarized
    # The next day has no rows in any file: nothing to write, and the summarised day keeps its rows.
    assert (
        summarize_day(conn, schema, root, ClusterDay(ACCOUNT, SOURCE, "c1", "C1", DAY + dt.timedelta(days=1))) is None
    )
    _assert_unchanged(conn, schema, before)
    # Once the day's usage files are gone, its rows go too, as koku's delete-then-insert leaves them.
    for report_type in ("pod_usage", "storage_usage"):
        for path in glob.glob(f"{tmp_path}/data/parquet/**/{report_type}/**/*.parquet", recursive=True):
            os.remove(path)
    assert summarize_day(conn, schema, root, cluster_day) is None
    assert len(engine_rows(conn, schema, SOURCE)) == 0


def test_unknown_schema_is_a_configuration_error(summarized):
    conn, _, root, cluster_day, *_ = summarized
    with pytest.raises(ConfigurationError, match="run `ocp-assets db init --schema nope_missing` first"):
        summarize_day(conn, "nope_missing", root, cluster_day)


def test_rerun_replaces_rows_without_duplicates(summarized):
    conn, schema, root, cluster_day, _tmp_path, before = summarized
    for _ in range(3):
        outcome = summarize_day(conn, schema, root, cluster_day)
        assert outcome.write.rows_deleted == 3 and outcome.write.rows_written == 3
    after = engine_rows(conn, schema, SOURCE)
    assert len(after) == 3
    _assert_unchanged(conn, schema, before)


def test_two_days_replaced_in_one_transaction_keep_their_own_rows(summarized):
    conn, schema, root, cluster_day, tmp_path, _before = summarized
    next_day = ClusterDay(ACCOUNT, SOURCE, "c1", "C1", DAY + dt.timedelta(days=1))
    builder = KokuParquetBuilder(tmp_path / "two-days", account=ACCOUNT, source=SOURCE)
    builder.pod(DAY, pod="p1", namespace="app", node="worker-1", resource_id="i-1", labels={"app": "web"})
    builder.pvc(DAY, namespace="app", pod="p1", pvc="claim", pv="pv1")
    builder.pod(next_day.day, pod="p2", namespace="db", node="worker-1", resource_id="i-1")
    builder.write()
    root = open_data_root(str(tmp_path / "two-days"))
    with conn.transaction():
        first = summarize_day(conn, schema, root, cluster_day)
        second = summarize_day(conn, schema, root, next_day)
    # Day 2: its Pod row and the worker node's unallocated row (no role label -> worker), nothing of day 1.
    assert (first.write.rows_written, second.write.rows_written) == (3, 2)
    rows = engine_rows(conn, schema, SOURCE)
    assert sorted(zip(rows["usage_start"], rows["namespace"])) == sorted(
        [
            (DAY, "app"),
            (DAY, "app"),
            (DAY, "Worker unallocated"),
            (next_day.day, "db"),
            (next_day.day, "Worker unallocated"),
        ]
    )


def test_cli_summarize_prints_rows_and_exits_2_on_bad_input(summarized, capsys, dsn):
    conn, schema, _root, _cluster_day, tmp_path, before = summarized
    args = _summarize_args(tmp_path, dsn, schema, "--start", DAY.isoformat(), "--end", DAY.isoformat())
    assert main(args) == 0
    assert "2026-10-05  Pod 1  Storage 1  unallocated 1" in capsys.readouterr().out
    _rewrite(_file(tmp_path, "storage_usage"), lambda t: t.drop_columns(["persistentvolume"]))
    assert main(args) == 2
    assert "column 'persistentvolume': required column is missing" in capsys.readouterr().err
    _assert_unchanged(conn, schema, before)


def test_files_whose_names_start_with_a_dot_or_underscore_are_not_read(summarized):
    """A writer's temporary file or a marker next to the data (Hive and Trino skip them too) never doubles a day."""
    conn, schema, root, cluster_day, tmp_path, before = summarized
    path = _file(tmp_path, "pod_usage")
    for name in (".tmp-1234-copy.parquet", "_copy.parquet"):
        with open(path, "rb") as source, open(os.path.join(os.path.dirname(path), name), "wb") as copy:
            copy.write(source.read())
    summarize_day(conn, schema, root, cluster_day)
    _assert_unchanged(conn, schema, before)


def test_a_malformed_dsn_is_refused_without_showing_the_password():
    from ocp_assets.core.database import connect

    with pytest.raises(ConfigurationError) as error, connect("postgresql://user:s3cr3t@host/db?sslmod=require"):
        pass
    assert "s3cr3t" not in str(error.value) and "malformed" in str(error.value)


def test_db_init_killed_part_way_leaves_nothing_and_the_rerun_seeds_the_platform_category(pg, monkeypatch):
    from ocp_assets.core import pgschema

    conn, _ = pg
    schema = f"{pg[1]}_init"

    def killed(*args, **kwargs):
        raise psycopg.OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(pgschema, "_create_summary_table", killed)
    with pytest.raises(psycopg.OperationalError):
        pgschema.init_schema(conn, schema)
    assert not pgschema.schema_exists(conn, schema)  # the tables made before the kill were rolled back with it

    monkeypatch.undo()
    try:
        created = pgschema.init_schema(conn, schema)
        assert "reporting_ocp_cost_category" in created and pgschema.SUMMARY_TABLE in created
        platform = conn.execute(f'SELECT count(*) FROM "{schema}".reporting_ocp_cost_category_namespace').fetchone()[0]
        assert platform == len(pgschema.DEFAULT_COST_CATEGORY_PATTERNS)
    finally:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


def test_cli_turns_a_database_failure_into_one_line_and_exit_1(summarized, capsys, monkeypatch, dsn):
    from ocp_assets import summary_commands

    conn, schema, _root, _cluster_day, tmp_path, before = summarized

    def lost(*args, **kwargs):
        raise psycopg.OperationalError("server closed the connection unexpectedly")

    monkeypatch.setattr(summary_commands, "run_cluster_day", lost)
    code = main(_summarize_args(tmp_path, dsn, schema, alias=None))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and err == [
        "ocp-assets: database error (OperationalError): server closed the connection unexpectedly — run the same "
        "command again once PostgreSQL is back; the days not written keep their previous rows"
    ]
    _assert_unchanged(conn, schema, before)


def test_cli_range_with_a_day_without_data_reports_it_and_succeeds(summarized, capsys, dsn):
    conn, schema, _root, _cluster_day, tmp_path, before = summarized
    args = _summarize_args(
        tmp_path, dsn, schema, "--start", DAY.isoformat(), "--end", (DAY + dt.timedelta(days=1)).isoformat()
    )
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "2026-10-05  Pod 1  Storage 1  unallocated 1" in out
    assert "2026-10-06  no koku data for this day (its previous rows removed)" in out
    _assert_unchanged(conn, schema, before)


def test_cli_all_clusters_goes_on_after_a_failing_cluster(pg, tmp_path, capsys, dsn):
    from ocp_assets_tests.dagster_fixtures import build_cluster, drop_column

    conn, schema = pg
    broken = build_cluster(tmp_path, "broken", [DAY])
    healthy = build_cluster(tmp_path, "healthy", [DAY])
    path = drop_column(tmp_path, broken, "pod_usage", "pod_usage_cpu_core_seconds")

    code = main(["summarize", "--data-root", str(tmp_path), "--all-clusters", "--dsn", dsn, "--schema", schema])

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert any(
        line.startswith("ocp-assets: error: broken 2026-10-05: file ")
        and path.name in line
        and "'pod_usage_cpu_core_seconds'" in line
        for line in err
    ), err
    # broken has no GPU usage: its GPU branch passed, with nothing to write.
    assert err[-1].startswith(
        "ocp-assets: error: 1 failed (broken 2026-10-05: usage summary failed, its previous rows kept; no GPU data); "
        "every other cluster-day was written — "
    )
    assert (
        len(engine_rows(conn, schema, healthy.source_uuid)) > 0
        and len(engine_rows(conn, schema, broken.source_uuid)) == 0
    )


def test_day_discovery_names_a_file_whose_interval_start_is_text(summarized, capsys, dsn):
    conn, schema, _root, _cluster_day, tmp_path, before = summarized
    path = _file(tmp_path, "pod_usage")
    _rewrite(
        path,
        lambda t: t.set_column(
            t.schema.get_field_index("interval_start"), "interval_start", t["interval_start"].cast(pa.string())
        ),
    )
    code = main(_summarize_args(tmp_path, dsn, schema, alias=None))
    err = capsys.readouterr().err
    assert code == 2 and os.path.basename(path) in err and "'interval_start': has type string" in err
    assert "Traceback" not in err
    _assert_unchanged(conn, schema, before)


def test_days_are_found_in_files_without_statistics_and_with_time_zones(tmp_path):
    """Day discovery falls back to the data when a writer kept no footer statistics; aware timestamps count in UTC."""
    from ocp_assets.core.reader import file_days

    starts = pa.array([dt.datetime(2026, 10, 5, 23), dt.datetime(2026, 10, 6, 1)], pa.timestamp("ms"))
    plain = tmp_path / "no-stats.parquet"
    pq.write_table(pa.table({"interval_start": starts}), plain, write_statistics=False)
    aware = tmp_path / "aware.parquet"
    pq.write_table(pa.table({"interval_start": starts.cast(pa.timestamp("ms", tz="UTC"))}), aware)
    root = open_data_root(str(tmp_path))
    expected = [dt.date(2026, 10, 5), dt.date(2026, 10, 6)]
    assert file_days(root, str(plain)) == expected
    assert file_days(root, str(aware)) == expected


def test_time_zone_aware_interval_start_gives_the_same_rows(summarized):
    conn, schema, root, cluster_day, tmp_path, before = summarized
    for daily in (True, False):
        _rewrite(
            _file(tmp_path, "pod_usage", daily=daily),
            lambda t: t.set_column(
                t.schema.get_field_index("interval_start"),
                "interval_start",
                t["interval_start"].cast(pa.timestamp("ms", tz="UTC")),
            ),
        )
    summarize_day(conn, schema, root, cluster_day)
    _assert_unchanged(conn, schema, before)


def test_rows_filed_in_another_months_folder_are_reported_not_silently_dropped(summarized, capsys, dsn):
    conn, schema, _root, _cluster_day, tmp_path, before = summarized
    path = _file(tmp_path, "pod_usage")
    # A producer wrote November rows into the October folder: koku never reads them from there.
    _rewrite(
        path,
        lambda t: pa.concat_tables(
            [
                t,
                t.set_column(
                    t.schema.get_field_index("interval_start"),
                    "interval_start",
                    pa.array([dt.datetime(2026, 11, 2)] * t.num_rows, pa.timestamp("ms")),
                ),
            ]
        ),
    )
    code = main(_summarize_args(tmp_path, dsn, schema))
    captured = capsys.readouterr()
    assert code == 0 and "2026-11-02" not in captured.out  # the day is not summarised as empty either
    # Footer statistics give a range (2026-10-05 .. 2026-11-02): its November part is named.
    assert (
        f"{os.path.basename(path)}: rows dated 2026-11-01 .. 2026-11-02 lie outside the month of their folder"
        in captured.err
    )
    _assert_unchanged(conn, schema, before)


def test_cli_removes_the_rows_of_a_day_whose_files_were_emptied(summarized, capsys, dsn):
    """A day that vanished from the files (emptied, not deleted) is summarised as empty: its old rows go."""
    conn, schema, _root, _cluster_day, tmp_path, _before = summarized
    for report_type, daily in (("pod_usage", True), ("pod_usage", False), ("storage_usage", True)):
        _rewrite(_file(tmp_path, report_type, daily=daily), lambda t: t.slice(0, 0))
    code = main(_summarize_args(tmp_path, dsn, schema))
    assert code == 0, capsys.readouterr().err
    assert "2026-10-05  no koku data for this day (its previous rows removed)" in capsys.readouterr().out
    assert len(engine_rows(conn, schema, SOURCE)) == 0


def test_cli_turns_an_unreachable_s3_endpoint_into_one_line_and_exit_1(capsys, monkeypatch, dsn):
    for key, value in {
        "OCP_ASSETS_S3_ENDPOINT": "http://127.0.0.1:1",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_EC2_METADATA_DISABLED": "true",
    }.items():
        monkeypatch.setenv(key, value)
    code = main(["summarize", "--data-root", "s3://bucket/prefix", "--all-clusters", "--dsn", dsn])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and err[0].startswith("ocp-assets: storage error (OSError):"), err
    assert "testing" not in err[0]


# ------------------------------------------------------------------ a user who owns the schema, not the database
@pytest.fixture
def limited_user(dsn):
    """A database of its own and a login role with CONNECT on it only (no CREATE), owning schema `tenant`.

    Privileges are changed only on that database, which is dropped afterwards with the role.
    """
    from psycopg import sql
    from psycopg.conninfo import make_conninfo

    suffix = uuid.uuid4().hex[:10]
    database, role = f"ocp_priv_{suffix}", f"ocp_priv_{suffix}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        admin.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(database)))
    try:
        with psycopg.connect(make_conninfo(dsn, dbname=database), autocommit=True) as owner:
            owner.execute(sql.SQL("REVOKE ALL ON DATABASE {} FROM PUBLIC").format(sql.Identifier(database)))
            owner.execute(sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(*map(sql.Identifier, (database, role))))
            for schema in ("tenant", "registry"):
                owner.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(*map(sql.Identifier, (schema, role))))
        yield make_conninfo(dsn, dbname=database, user=role, password=""), database
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(database)))
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


def test_db_init_and_the_registry_need_no_create_on_the_database_for_an_existing_schema(limited_user, capsys):
    from ocp_assets.core.database import connect
    from ocp_assets.core.registry import Registry

    user_dsn, database = limited_user

    assert main(["db", "init", "--dsn", user_dsn, "--schema", "tenant"]) == 0
    assert capsys.readouterr().out.startswith("schema tenant: created reporting_ocpusagereportperiod, ")
    assert main(["db", "init", "--dsn", user_dsn, "--schema", "tenant"]) == 0
    assert capsys.readouterr().out == "schema tenant: all tables already present\n"
    with connect(user_dsn) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # what init_schema and the registry ran before
            conn.execute("CREATE SCHEMA IF NOT EXISTS tenant")
        Registry("registry").ensure(conn)
        Registry("registry").ensure(conn)  # existing tables: nothing to create
        assert conn.execute("SELECT count(*) FROM registry.cluster_registry").fetchone()[0] == 0

    # A schema that does not exist: creating it needs CREATE on the database, a configuration problem (exit 2).
    assert main(["db", "init", "--dsn", user_dsn, "--schema", "missing"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        f"ocp-assets: database error (InsufficientPrivilege): permission denied for database {database} — the user "
        f"needs CREATE on database {database} to create a schema: grant it, or create the schema first as a user who "
        "may (an existing schema needs no privilege on the database)"
    ]
