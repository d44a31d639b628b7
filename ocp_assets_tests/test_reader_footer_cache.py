"""The reader's per-run footer cache (issue 18): a run's days open each file's footer once, not once per day, and a
file rewritten between two days of one run is read afresh."""

import datetime as dt
import os
from collections import Counter
from pathlib import Path

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from ocp_assets.core import reader
from ocp_assets.core.day import DayTask
from ocp_assets.core.errors import InputDataError
from ocp_assets.core.identity import ClusterDay
from ocp_assets.core.layout import TIMESTAMP_TYPE
from ocp_assets.core.pipeline import Connections, run_days
from ocp_assets.core.reader import NODE_LABEL_COLUMNS, read_day_rows
from ocp_assets.core.storage import FileCache, open_data_root
from ocp_assets_tests.dagster_fixtures import build_cluster

MONTH = "data/parquet/daily/acct/OCP/node_labels/source=s/year=2026/month=03"
DAYS = [dt.date(2026, 3, 1), dt.date(2026, 3, 2), dt.date(2026, 3, 3)]


def _label_rows(day: dt.date, nodes: list[str], hours=range(24)) -> pa.Table:
    """Hourly node-label rows of the day: one per node and hour."""
    starts = [dt.datetime.combine(day, dt.time(hour)) for hour in hours for _ in nodes]
    names = [node for _ in hours for node in nodes]
    return pa.table(
        {
            "interval_start": pa.array(starts, TIMESTAMP_TYPE),
            "node": pa.array(names, pa.string()),
            "node_labels": pa.array(['{"team": "a"}'] * len(names), pa.string()),
        }
    )


def _write(path: Path, table: pa.Table, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, **options)
    return path


def _month_of_day_files(tmp_path: Path, files_per_day: int = 2) -> dict[dt.date, list[Path]]:
    """koku's way: each day's files named for their day, each holding only that day's rows."""
    return {
        day: [
            _write(tmp_path / MONTH / f"node_labels.{day}.m.{n}_daily_0.parquet", _label_rows(day, [f"{day.day}-{n}"]))
            for n in range(files_per_day)
        ]
        for day in DAYS
    }


def _count_opens(monkeypatch) -> Counter:
    opens: Counter = Counter()
    real = reader.open_parquet

    def counted(root, path, shown):
        opens[Path(path).name] += 1
        return real(root, path, shown)

    monkeypatch.setattr(reader, "open_parquet", counted)
    return opens


def _nodes(table: pa.Table) -> set[str]:
    return set(pc.unique(table["node"]).to_pylist())


def test_a_month_read_day_by_day_opens_each_file_at_most_twice(tmp_path, monkeypatch):
    """3 days x 2 files: the first day surveys all 6 footers (reading its own 2 files through the same open), each
    later day opens only its own 2: 6 + 2 + 2 = 10 opens, where a reader without the cache opens all 6 every day."""
    files = _month_of_day_files(tmp_path)
    opens = _count_opens(monkeypatch)
    root = open_data_root(str(tmp_path)).with_file_cache()
    for day in DAYS:
        rows = read_day_rows(root, MONTH, NODE_LABEL_COLUMNS, day)
        assert _nodes(rows.table) == {f"{day.day}-0", f"{day.day}-1"}
        assert len(rows) == 2 * 24
    first, *later = DAYS
    assert dict(opens) == {
        **{path.name: 1 for path in files[first]},
        **{path.name: 2 for day in later for path in files[day]},
    }
    assert len(root.cache) == 6

    opens.clear()
    plain = open_data_root(str(tmp_path))  # no cache: every day opens every file of its month
    for day in DAYS:
        read_day_rows(plain, MONTH, NODE_LABEL_COLUMNS, day)
    assert sum(opens.values()) == 3 * 6


def test_a_file_rewritten_between_two_days_is_read_afresh(tmp_path):
    """A file surveyed on day 1 as holding day 3 is rewritten (same row count, so likely the same size, but another
    modification time, as any write gives) to hold day 2's rows: day 2 finds them, day 3 no longer does."""
    files = _month_of_day_files(tmp_path, files_per_day=1)
    root = open_data_root(str(tmp_path)).with_file_cache()
    assert len(read_day_rows(root, MONTH, NODE_LABEL_COLUMNS, DAYS[0])) == 24

    (late,) = files[DAYS[2]]
    before = late.stat()
    _write(late, _label_rows(DAYS[1], ["late"]))
    os.utime(late, ns=(before.st_atime_ns, before.st_mtime_ns + 1_000_000_000))  # whatever the clock's resolution

    day2 = read_day_rows(root, MONTH, NODE_LABEL_COLUMNS, DAYS[1])
    assert _nodes(day2.table) == {"2-0", "late"}
    assert day2.rows_per_file == [24, 24]
    assert len(read_day_rows(root, MONTH, NODE_LABEL_COLUMNS, DAYS[2])) == 0


def test_a_file_spanning_days_without_statistics_gives_each_day_its_rows(tmp_path, monkeypatch):
    """One row group over three days, written without statistics: its interval_start column is read once to find the
    days (not once per day), and each day gets exactly its own 24 rows."""
    table = pa.concat_tables([_label_rows(day, ["n"]) for day in DAYS])
    _write(tmp_path / MONTH / "node_labels.2026-03.m.0_daily_0.parquet", table, write_statistics=False)
    column_reads: list[int] = []
    real = reader._column_range

    def counted(parquet, rg, *args):
        column_reads.append(rg)
        return real(parquet, rg, *args)

    monkeypatch.setattr(reader, "_column_range", counted)
    root = open_data_root(str(tmp_path)).with_file_cache()
    for day in DAYS:
        rows = read_day_rows(root, MONTH, NODE_LABEL_COLUMNS, day)
        assert pc.unique(pc.cast(rows.table["interval_start"], pa.date32())).to_pylist() == [day]
        assert len(rows) == 24
    assert column_reads == [0]


def test_an_unreadable_file_fails_each_day_of_its_month_only(tmp_path):
    """A file that is no Parquet is not cached: every day of its month fails naming it, another month's days read."""
    _month_of_day_files(tmp_path, files_per_day=1)
    broken = tmp_path / MONTH / "node_labels.2026-03-02.m.9_daily_0.parquet"
    broken.write_bytes(b"not parquet at all")
    april = MONTH.replace("month=03", "month=04")
    _write(tmp_path / april / "node_labels.2026-04-01.m.0_daily_0.parquet", _label_rows(dt.date(2026, 4, 1), ["a"]))
    root = open_data_root(str(tmp_path)).with_file_cache()
    for day in DAYS:
        with pytest.raises(InputDataError, match="not a readable Parquet file") as raised:
            read_day_rows(root, MONTH, NODE_LABEL_COLUMNS, day)
        assert raised.value.file is not None and raised.value.file.endswith(broken.name)
    assert len(read_day_rows(root, april, NODE_LABEL_COLUMNS, dt.date(2026, 4, 1))) == 24


def test_a_cache_entry_stands_only_while_size_and_time_stay():
    """The cache compares the listing's size and modification time; a listing without a time is never cached."""
    import pyarrow.fs as pafs

    cache = FileCache()
    listed = pafs.FileInfo("/r/a.parquet", pafs.FileType.File, size=10, mtime=dt.datetime(2026, 3, 1, 0, 0, 1))
    cache.put(listed, "footer")
    assert cache.get(listed) == "footer"
    for changed in (
        pafs.FileInfo("/r/a.parquet", pafs.FileType.File, size=11, mtime=dt.datetime(2026, 3, 1, 0, 0, 1)),
        pafs.FileInfo("/r/a.parquet", pafs.FileType.File, size=10, mtime=dt.datetime(2026, 3, 1, 0, 0, 2)),
    ):
        assert cache.get(changed) is None
    timeless = pafs.FileInfo("/r/b.parquet", pafs.FileType.File, size=10)
    cache.put(timeless, "footer")
    assert cache.get(timeless) is None


# ------------------------------------------------------------------ through run_days, the Dagster step's engine
def _split_by_day(data_root: Path) -> list[Path]:
    """Every file of the test cluster split into one file per day named for it, as koku's files are."""
    written = []
    for path in sorted((data_root / "data").rglob("*.parquet")):
        table = pq.ParquetFile(path).read()
        days = pc.cast(table["interval_start"], pa.date32())
        month = path.parent.parent.name[len("year=") :] + "-" + path.parent.name[len("month=") :]
        for day in pc.unique(days).to_pylist():
            target = path.with_name(path.name.replace(month, day.isoformat(), 1))
            written.append(_write(target, table.filter(pc.equal(days, pa.scalar(day, pa.date32())))))
        path.unlink()
    return written


def _namespaces_by_day(conn: psycopg.Connection, schema: str, source: str) -> dict[dt.date, set[str]]:
    rows = conn.execute(
        f'SELECT usage_start, namespace FROM "{schema}".reporting_ocpusagelineitem_daily_summary'
        " WHERE source_uuid = %s AND namespace IS NOT NULL",
        (source,),
    ).fetchall()
    found: dict[dt.date, set[str]] = {}
    for day, namespace in rows:
        found.setdefault(day, set()).add(namespace)
    return found


def test_a_run_over_three_days_opens_each_file_at_most_twice_and_sees_a_rewrite(tmp_path, dsn, pg, monkeypatch):
    """run_days over a 3-day month of per-day files: each file's footer is surveyed once and the file opened once more
    at most (for its own day's rows); a pod file of day 3 rewritten after day 1 to add day-2 rows of a new namespace
    is surveyed again and gives day 2 those rows."""
    conn, schema = pg
    cluster = build_cluster(tmp_path, "cache-a", DAYS)
    files = _split_by_day(tmp_path)
    assert len(files) == 3 * 8  # pod, storage, node and namespace labels, daily and hourly, per day
    opens = _count_opens(monkeypatch)
    tasks = [
        DayTask(day.isoformat(), ClusterDay(cluster.account, cluster.source_uuid, "cache-a", "CACHE-A", day), schema)
        for day in DAYS
    ]
    results = run_days(tasks, Connections(dsn=dsn, data_root=str(tmp_path)), workers=1)
    assert next(results).passed

    (day3_pods,) = [f for f in files if f.name.startswith(f"pod_usage.{DAYS[2]}") and "_daily" in f.name]
    (day2_pods,) = [f for f in files if f.name.startswith(f"pod_usage.{DAYS[1]}") and "_daily" in f.name]
    late = pq.ParquetFile(day2_pods).read()
    late = late.set_column(late.schema.get_field_index("namespace"), "namespace", pa.array(["late"] * len(late)))
    _write(day3_pods, pa.concat_tables([pq.ParquetFile(day3_pods).read(), late]))
    assert [result.passed for result in results] == [True, True]

    namespaces = _namespaces_by_day(conn, schema, cluster.source_uuid)
    assert "late" in namespaces[DAYS[1]]
    assert "late" not in namespaces[DAYS[0]] | namespaces[DAYS[2]]
    # Day 1 surveys the 21 footers the summary reads (storage's hourly files are not: it reads storage's daily
    # table) and reads its own 7 files through the same opens; days 2 and 3 open their own 7 again; the rewritten
    # file is surveyed a second time on day 2 (and read there, through that open).
    read = [f for f in files if not (f.name.startswith("storage_usage") and "_daily" not in f.name)]
    expected = {f.name: 1 if f.name.split(".")[1] == str(DAYS[0]) else 2 for f in read}
    expected[day3_pods.name] = 3
    assert dict(opens) == expected


def _summary(conn: psycopg.Connection, schema: str, source: str) -> list[tuple]:
    return conn.execute(
        "SELECT usage_start, namespace, node, data_source, pod_usage_cpu_core_hours, persistentvolumeclaim"
        f' FROM "{schema}".reporting_ocpusagelineitem_daily_summary WHERE source_uuid = %s'
        " ORDER BY 1, 2, 3, 4, 5, 6",
        (source,),
    ).fetchall()


def test_days_in_worker_processes_each_with_its_own_cache_write_what_one_process_writes(tmp_path, dsn, pg):
    """Two forked workers, each with the footer cache its pool gave it, write the same rows as the days run in turn."""
    conn, schema = pg
    cluster = build_cluster(tmp_path, "cache-b", DAYS)
    _split_by_day(tmp_path)
    tasks = [
        DayTask(day.isoformat(), ClusterDay(cluster.account, cluster.source_uuid, "cache-b", "CACHE-B", day), schema)
        for day in DAYS
    ]
    where = Connections(dsn=dsn, data_root=str(tmp_path))
    assert [result.passed for result in run_days(tasks, where, workers=2)] == [True, True, True]
    in_workers = _summary(conn, schema, cluster.source_uuid)
    assert {row[0] for row in in_workers} == set(DAYS)
    assert [result.passed for result in run_days(tasks, where, workers=1)] == [True, True, True]
    assert _summary(conn, schema, cluster.source_uuid) == in_workers
