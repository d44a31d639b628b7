"""The reader's bad cells, located in files of several row groups with and without footer statistics: NULL or
implausible interval_start (day discovery and day reads) and text that is not UTF-8, each named by file, column
and row."""

import datetime as dt
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ocp_assets.core.errors import InputDataError
from ocp_assets.core.reader import NODE_LABEL_COLUMNS, file_days, read_day_rows
from ocp_assets.core.storage import open_data_root

FOLDER = "data/parquet/daily/acct/OCP/node_labels/source=s1/year=2026/month=03"
MARCH_5 = dt.datetime(2026, 3, 5, 10)


def write(tmp_path: Path, starts: list, *, statistics: bool, folder: str = FOLDER, texts=None) -> Path:
    """A node_labels file of 10 rows in row groups of 4 (rows 1-4, 5-8, 9-10)."""
    path = tmp_path / folder / "part.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    if texts is None:
        texts = pa.array([f"node-{i}" for i in range(len(starts))])
    table = pa.table(
        {
            "interval_start": pa.array(starts, pa.timestamp("ms")),
            "node": texts,
            "node_labels": pa.array(['{"a": "b"}'] * len(starts)),
        }
    )
    pq.write_table(table, path, row_group_size=4, write_statistics=statistics)
    return path


def with_value_at(row: int, value) -> list:
    starts: list = [MARCH_5] * 10
    starts[row - 1] = value
    return starts


def errors(tmp_path: Path, path: Path) -> list[InputDataError]:
    """The error of day discovery and of reading the file's day, for the same file."""
    root = open_data_root(str(tmp_path))
    found = []
    for read in (
        lambda: file_days(root, str(path)),
        lambda: read_day_rows(root, FOLDER, NODE_LABEL_COLUMNS, MARCH_5.date()),
    ):
        with pytest.raises(InputDataError) as caught:
            read()
        found.append(caught.value)
    return found


@pytest.mark.parametrize("statistics", [True, False], ids=["statistics", "no statistics"])
@pytest.mark.parametrize(
    ("row", "value", "reason"),
    [
        (6, None, "interval_start is NULL"),
        (10, None, "interval_start is NULL"),
        (1, dt.datetime(1, 1, 1), "interval_start 0001-01-01 00:00:00.000 lies outside 2026-02-01 .. 2026-04-30"),
        (7, dt.datetime(9999, 12, 31, 23), "interval_start 9999-12-31 23:00:00.000 lies outside"),
        (9, dt.datetime(1970, 1, 1), "interval_start 1970-01-01 00:00:00.000 lies outside"),
        (5, dt.datetime(2026, 5, 1), "interval_start 2026-05-01 00:00:00.000 lies outside"),
        (4, dt.datetime(2026, 1, 31, 23, 59), "interval_start 2026-01-31 23:59:00.000 lies outside"),
    ],
)
def test_null_or_implausible_interval_start_is_named_by_row(tmp_path, statistics, row, value, reason):
    path = write(tmp_path, with_value_at(row, value), statistics=statistics)
    for error in errors(tmp_path, path):
        assert (error.file, error.column, error.row) == (str(path), "interval_start", row), str(error)
        assert error.reason.startswith(reason), error.reason


@pytest.mark.parametrize("statistics", [True, False], ids=["statistics", "no statistics"])
def test_the_months_either_side_of_the_folder_are_days_not_errors(tmp_path, statistics):
    starts = [*with_value_at(2, dt.datetime(2026, 2, 1))[:9], dt.datetime(2026, 4, 30, 23)]
    path = write(tmp_path, starts, statistics=statistics)
    days = file_days(open_data_root(str(tmp_path)), str(path))
    assert days[0] == dt.date(2026, 2, 1) and days[-1] == dt.date(2026, 4, 30)
    rows = read_day_rows(open_data_root(str(tmp_path)), FOLDER, NODE_LABEL_COLUMNS, MARCH_5.date())
    assert len(rows) == 8  # rows 2 and 10 lie on other days


def test_a_file_outside_a_month_folder_is_held_to_the_dates_koku_can_have(tmp_path):
    root = open_data_root(str(tmp_path))
    fine = write(tmp_path, [dt.datetime(1999, 12, 31), dt.datetime(2000, 1, 1, 5)], statistics=False, folder="a")
    assert file_days(root, str(fine)) == [dt.date(1999, 12, 31), dt.date(2000, 1, 1)]
    for value in (dt.datetime(1, 1, 1), dt.datetime(1970, 1, 1, 12), dt.datetime(2262, 4, 11)):
        bad = write(tmp_path, [MARCH_5, value], statistics=True, folder="b")
        with pytest.raises(InputDataError) as caught:
            file_days(root, str(bad))
        assert caught.value.row == 2 and "lies outside 1970-01-02 .. 2262-04-10" in caught.value.reason


@pytest.mark.parametrize("statistics", [True, False], ids=["statistics", "no statistics"])
@pytest.mark.parametrize("row", [1, 4, 6, 10])
def test_text_that_is_not_utf8_is_named_by_row(tmp_path, statistics, row):
    raw = [f"node-{i}".encode() for i in range(10)]
    raw[row - 1] = b"node-\xc3\x28"
    texts = pa.Array.from_buffers(pa.string(), 10, pa.array(raw, pa.binary()).buffers())
    path = write(tmp_path, [MARCH_5] * 10, statistics=statistics, texts=texts)
    with pytest.raises(InputDataError) as caught:
        read_day_rows(open_data_root(str(tmp_path)), FOLDER, NODE_LABEL_COLUMNS, MARCH_5.date())
    assert (caught.value.file, caught.value.column, caught.value.row) == (str(path), "node", row)
    assert "not valid UTF-8" in caught.value.reason


def test_text_not_utf8_on_a_day_not_read_does_not_fail_the_day_read(tmp_path):
    """Each day judges its own rows: the bad cell fails the reads of its day (named there), not the other days'."""
    raw = [f"node-{i}".encode() for i in range(10)]
    raw[8] = b"\xff"
    texts = pa.Array.from_buffers(pa.string(), 10, pa.array(raw, pa.binary()).buffers())
    starts = [MARCH_5] * 8 + [MARCH_5 + dt.timedelta(days=1)] * 2
    write(tmp_path, starts, statistics=True, texts=texts)
    root = open_data_root(str(tmp_path))
    assert len(read_day_rows(root, FOLDER, NODE_LABEL_COLUMNS, MARCH_5.date())) == 8
    with pytest.raises(InputDataError, match=r"row 9: text is not valid UTF-8"):
        read_day_rows(root, FOLDER, NODE_LABEL_COLUMNS, MARCH_5.date() + dt.timedelta(days=1))


@pytest.mark.parametrize(
    ("value", "statistics", "reason"),
    [
        (dt.datetime(1, 1, 1), True, "interval_start 0001-01-01 00:00:00.000 lies outside 2026-09-01 .. 2026-11-30"),
        (dt.datetime(9999, 12, 31), False, "interval_start 9999-12-31 00:00:00.000 lies outside"),
        (None, False, "interval_start is NULL"),
    ],
)
def test_the_cli_names_the_cell_at_once_from_day_discovery_on(pg, dsn, tmp_path, capsys, value, statistics, reason):
    """`summarize` without --start/--end finds the days from the files' footers first: the bad cell ends the run with
    exit 2 and one line naming it (before: hours of day-by-day looping from year 1, or "unexpected error")."""
    from ocp_assets.cli import main
    from ocp_assets_tests.reference.parquet_fixtures import KokuParquetBuilder

    conn, schema = pg
    account, source, day = "10001", "6b1e7c1e-0c1d-4d3e-9a55-0f6f3b0e2a11", dt.date(2026, 10, 5)
    builder = KokuParquetBuilder(tmp_path, account=account, source=source)
    builder.pod(day, pod="p1", namespace="app", node="worker-1", resource_id="i-1", labels={"app": "web"})
    builder.node_labels(day, node="worker-1", labels={})
    builder.write()
    [path] = (tmp_path / "data/parquet/daily").rglob("pod_usage/**/*.parquet")
    table = pq.read_table(path)
    starts = [value, *table["interval_start"].to_pylist()[1:]]
    column = table.schema.get_field_index("interval_start")
    table = table.set_column(column, "interval_start", pa.array(starts, pa.timestamp("ms")))
    pq.write_table(table, path, write_statistics=statistics)

    command = ["summarize", "--data-root", str(tmp_path), "--account", account, "--source", source]
    code = main([*command, "--cluster-id", "c1", "--dsn", dsn, "--schema", schema])
    err = capsys.readouterr().err
    assert code == 2, err
    assert f"file {path}, column 'interval_start', row 1: {reason}" in err
    assert "unexpected" not in err and "Traceback" not in err
    assert conn.execute(f'SELECT count(*) FROM "{schema}".reporting_ocpusagelineitem_daily_summary').fetchone()[0] == 0
