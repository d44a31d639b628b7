"""The warning tier (core.warning_checks): usage over capacity, negative unallocated rows, a thin day, by hand."""

import datetime as dt

import pyarrow as pa
import pytest

from ocp_assets.core import outcomes as O
from ocp_assets.core.outcomes import CheckOutcome
from ocp_assets.core.warning_checks import (
    rows_like_recent_days,
    unallocated_not_negative,
    usage_within_capacity,
)

GIB = 2**30
MEASURES = (
    "pod_usage_cpu_core_hours",
    "pod_request_cpu_core_hours",
    "pod_effective_usage_cpu_core_hours",
    "pod_usage_memory_gigabyte_hours",
    "pod_request_memory_gigabyte_hours",
    "pod_effective_usage_memory_gigabyte_hours",
)


def _summary(*rows: dict) -> pa.Table:
    """Summary rows: a Pod row has pod_labels, an unallocated row has none (NULL), as koku's summary writes them."""
    full = [
        {"data_source": "Pod", "namespace": "ns", "node": "node-a", "pod_labels": "{}", **dict.fromkeys(MEASURES, 0.0)}
        | row
        for row in rows
    ]
    return pa.Table.from_pylist(
        full,
        schema=pa.schema(
            [
                ("data_source", pa.string()),
                ("namespace", pa.string()),
                ("node", pa.string()),
                ("pod_labels", pa.string()),
                *((m, pa.float64()) for m in MEASURES),
            ]
        ),
    )


def _capacity(**nodes: tuple[float, float]) -> pa.Table:
    """Node capacity as the reader gives it, from (cores, GiB) over a 24-hour day."""
    return pa.table(
        {
            "node": list(nodes),
            "node_capacity_cpu_core_seconds": [cores * 24 * 3600.0 for cores, _ in nodes.values()],
            "node_capacity_memory_byte_seconds": [gib * 24 * 3600.0 * GIB for _, gib in nodes.values()],
        }
    )


def _unallocated(node: str, **values: float) -> dict:
    return {"namespace": "Worker unallocated", "node": node, "pod_labels": None, **values}


# ------------------------------------------------------------------ usage within capacity
def test_usage_within_capacity_records_the_cluster_utilisation():
    # node-a: 4 cores and 16 GiB over 24 h = 96 core-hours, 384 GiB-hours; node-b: 8 cores, 32 GiB = 192, 768.
    # Pods: 48 core-hours and 96 GiB-hours on node-a, 24 and 192 on node-b: 72 of 288 core-hours = 25.0 %,
    # 288 of 1,152 GiB-hours = 25.0 %.
    summary = _summary(
        {"node": "node-a", "pod_usage_cpu_core_hours": 48.0, "pod_usage_memory_gigabyte_hours": 96.0},
        {"node": "node-b", "pod_usage_cpu_core_hours": 24.0, "pod_usage_memory_gigabyte_hours": 192.0},
        _unallocated("node-a", pod_usage_cpu_core_hours=48.0),
    )
    outcome = usage_within_capacity(summary, _capacity(**{"node-a": (4, 16), "node-b": (8, 32)}))
    assert outcome.passed, outcome.description
    assert outcome.metadata["cluster_cpu"] == {"usage": 72.0, "capacity": 288.0, "utilisation_percent": 25.0}
    assert outcome.metadata["cluster_memory"] == {"usage": 288.0, "capacity": 1152.0, "utilisation_percent": 25.0}


@pytest.mark.parametrize(
    ("pods", "expected"),
    [
        # node-a's pods use 120 core-hours of its 96 (125.0 %); the cluster (120 + 24 of 288) stays within.
        (
            [("node-a", 100.0, 0.0), ("node-a", 20.0, 0.0), ("node-b", 24.0, 0.0)],
            [("node", "node-a", "cpu", 120.0, 96.0, 125.0)],
        ),
        # Memory only: node-b's 800 GiB-hours of 768 (104.2 %).
        ([("node-b", 1.0, 800.0)], [("node", "node-b", "memory", 800.0, 768.0, 104.2)]),
        # Both nodes over on CPU, so the cluster is too: 300 of 288 core-hours (104.2 %), listed first.
        (
            [("node-a", 100.0, 0.0), ("node-b", 200.0, 0.0)],
            [
                ("cluster", None, "cpu", 300.0, 288.0, 104.2),
                ("node", "node-a", "cpu", 100.0, 96.0, 104.2),
                ("node", "node-b", "cpu", 200.0, 192.0, 104.2),
            ],
        ),
    ],
    ids=["one-node-cpu", "one-node-memory", "cluster-and-nodes"],
)
def test_usage_above_capacity_warns_with_the_rows_over(pods, expected):
    summary = _summary(
        *(
            {"node": node, "pod_usage_cpu_core_hours": cpu, "pod_usage_memory_gigabyte_hours": memory}
            for node, cpu, memory in pods
        )
    )
    outcome = usage_within_capacity(summary, _capacity(**{"node-a": (4, 16), "node-b": (8, 32)}))
    assert not outcome.passed and outcome.description.startswith(f"{len(expected)} usage figure(s) above capacity")
    over = [
        (r["scope"], r["node"], r["measure"], r["usage"], r["capacity"], r["utilisation_percent"])
        for r in outcome.metadata["over_capacity"]
    ]
    assert over == expected


def test_usage_exactly_at_capacity_or_in_unallocated_rows_does_not_warn():
    # 96 core-hours on a 4-core node is full, not over; the unallocated row's figures are not pod usage.
    summary = _summary(
        {"node": "node-a", "pod_usage_cpu_core_hours": 96.0},
        _unallocated("node-a", pod_usage_cpu_core_hours=500.0),
    )
    assert usage_within_capacity(summary, _capacity(**{"node-a": (4, 16)})).passed


# ------------------------------------------------------------------ unallocated rows
@pytest.mark.parametrize(
    ("values", "negative"),
    [
        ({"pod_usage_cpu_core_hours": -24.0}, [("pod_usage_cpu_core_hours", -24.0)]),
        ({"pod_request_memory_gigabyte_hours": -0.5}, [("pod_request_memory_gigabyte_hours", -0.5)]),
        (
            {"pod_effective_usage_cpu_core_hours": -1.0, "pod_effective_usage_memory_gigabyte_hours": -2.0},
            [("pod_effective_usage_cpu_core_hours", -1.0), ("pod_effective_usage_memory_gigabyte_hours", -2.0)],
        ),
    ],
    ids=["usage", "request-memory", "effective-both"],
)
def test_a_negative_unallocated_row_warns_naming_node_and_measure(values, negative):
    summary = _summary(
        {"node": "node-b", "pod_usage_cpu_core_hours": 5.0},
        _unallocated("node-a", pod_usage_cpu_core_hours=10.0),
        _unallocated("node-b", **values),
    )
    outcome = unallocated_not_negative(summary)
    assert not outcome.passed
    assert outcome.description.startswith("1 of 2 unallocated row(s) negative, e.g. node node-b")
    assert [(r["node"], r["measure"], r["value"]) for r in outcome.metadata["negative_values"]] == [
        ("node-b", m, v) for m, v in negative
    ]


def test_zero_and_float_noise_in_unallocated_rows_do_not_warn():
    # A node used to the full gives 0; a sum of floats can leave -1e-12 where the exact figure is 0.
    summary = _summary(_unallocated("node-a"), _unallocated("node-b", pod_usage_cpu_core_hours=-1e-12))
    outcome = unallocated_not_negative(summary)
    assert outcome.passed and outcome.description == "all 2 unallocated row(s) are zero or more"


# ------------------------------------------------------------------ a thin day
DAY = dt.date(2026, 10, 8)


def _days_before(*counts: int) -> dict[dt.date, int]:
    """Row counts of the days just before DAY, the last count the day before."""
    return {DAY - dt.timedelta(days=len(counts) - i): n for i, n in enumerate(counts)}


@pytest.mark.parametrize(
    ("recent", "rows", "median"),
    [
        # A thin day among normal ones: 40 rows against 100 every day (threshold 50).
        (_days_before(100, 100, 100), 40, 100),
        # The median shrugs off one odd day: 100, 10, 100, 120 -> median 100, threshold 50; 49 warns.
        (_days_before(100, 10, 100, 120), 49, 100),
        # A day's own count is never its history: an empty day is left out, 2 earlier days of 60 and 80 -> 70.
        (_days_before(60, 80, 0), 34, 70),
    ],
    ids=["thin-among-normal", "median-not-mean", "empty-days-left-out"],
)
def test_a_day_with_far_fewer_rows_than_recent_days_warns(recent, rows, median):
    outcome = rows_like_recent_days(DAY, rows, recent)
    assert not outcome.passed
    assert outcome.metadata["median_rows"] == median and outcome.metadata["threshold_rows"] == median / 2
    assert outcome.metadata["days"][-1] == {"day": f"{DAY} (this day)", "rows": rows}
    assert outcome.description.startswith(f"far fewer rows than recent days: {rows:,} rows against a median of")


@pytest.mark.parametrize(
    ("recent", "rows"),
    [
        (_days_before(100, 100, 100), 50),  # exactly half: not fewer than half
        (_days_before(100, 100, 100), 300),  # more rows is growth, not a warning
        (_days_before(100), 60),  # one earlier day is history enough
    ],
)
def test_a_day_with_at_least_half_the_median_passes(recent, rows):
    assert rows_like_recent_days(DAY, rows, recent).passed


@pytest.mark.parametrize(
    "recent",
    [{}, _days_before(0, 0), {DAY: 500, DAY + dt.timedelta(days=1): 500}],
    ids=["first-day", "only-empty-days", "only-this-and-later-days"],
)
def test_the_first_days_without_history_pass_with_a_note(recent):
    outcome = rows_like_recent_days(DAY, 3, recent)
    assert outcome.passed and outcome.description.startswith("no earlier day of this cluster in PostgreSQL")
    assert outcome.metadata["recent_days"] == 0


# ------------------------------------------------------------------ which checks are warnings
def test_a_failed_warning_does_not_block_and_a_failed_check_does():
    failed = CheckOutcome(False, "x")
    for name in O.WARNING_CHECKS:
        assert O.STAGE_OF_CHECK[name] == O.DAILY_SUMMARY
        assert O.warns(name, failed) and not O.blocks(name, failed)
        assert not O.warns(name, CheckOutcome(True, "ok"))
    assert O.blocks(O.USAGE_CONSERVED, failed) and not O.warns(O.USAGE_CONSERVED, failed)
