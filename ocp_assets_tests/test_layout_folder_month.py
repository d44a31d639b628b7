"""layout.folder_month (the one parser of year=/month= folders) and folder_month_days, the days a file whose own days
cannot be read stands for in the CLI's day discovery and the sensor."""

import datetime as dt

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ocp_assets.core.layout import folder_month, folder_month_days
from ocp_assets.core.reader import file_days, months_with_usage_files
from ocp_assets.core.storage import open_data_root

SOURCE = "data/parquet/daily/acct/OCP/pod_usage/source=s1"


@pytest.mark.parametrize(
    ("key", "month"),
    [
        (f"{SOURCE}/year=2026/month=03/a.parquet", (2026, 3)),
        (f"{SOURCE}/year=2025/month=12/a.parquet", (2025, 12)),
        ("year=2026/month=01/a.parquet", (2026, 1)),  # a data root that is the dataset folder itself
        (f"{SOURCE}/a.parquet", None),
        (f"{SOURCE}/year=2026/a.parquet", None),
        (f"{SOURCE}/year=2026/month=13/a.parquet", None),  # no month a date can have: held to no month
        (f"{SOURCE}/year=2026/month=00/a.parquet", None),
        (f"{SOURCE}/year=0000/month=01/a.parquet", None),
        (f"{SOURCE}/xyear=2026/month=03/a.parquet", None),
    ],
)
def test_folder_month(key, month):
    assert folder_month(key) == month


def test_folder_month_days_are_the_known_days_of_the_month_else_its_first_day():
    key = f"{SOURCE}/year=2026/month=03/a.parquet"
    known = [dt.date(2026, 2, 28), dt.date(2026, 3, 9), dt.date(2026, 3, 2), dt.date(2026, 4, 1)]
    assert folder_month_days(key, known) == [dt.date(2026, 3, 2), dt.date(2026, 3, 9)]
    assert folder_month_days(key, [dt.date(2026, 2, 28)]) == [dt.date(2026, 3, 1)]
    assert folder_month_days(key, []) == [dt.date(2026, 3, 1)]
    assert folder_month_days(f"{SOURCE}/a.parquet", known) == []
    assert folder_month_days(f"{SOURCE}/year=2026/month=13/a.parquet", known) == []


def test_a_file_in_a_folder_naming_no_month_is_read_without_a_crash(tmp_path):
    """month=13 used to raise ValueError (an unexpected error) from day discovery and the month listing."""
    folder = tmp_path / SOURCE / "year=2026" / "month=13"
    folder.mkdir(parents=True)
    starts = pa.array([dt.datetime(2026, 3, 5, 1), dt.datetime(2026, 3, 6, 2)], pa.timestamp("ms"))
    pq.write_table(pa.table({"interval_start": starts}), folder / "a.parquet")
    root = open_data_root(str(tmp_path))

    assert file_days(root, str(folder / "a.parquet")) == [dt.date(2026, 3, 5), dt.date(2026, 3, 6)]
    assert months_with_usage_files(root, "acct", "s1") == set()
