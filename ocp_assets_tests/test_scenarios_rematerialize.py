"""Scenario 20 (contract 5, D5): reruns and re-ingests give the same rows; other days, sources, cloud rows untouched."""

import datetime as dt
import json

import pytest
from psycopg import sql

from ocp_assets.core.generate import generate, nise_payload
from ocp_assets.core.identity import ClusterDay
from ocp_assets.core.ingest import ingest
from ocp_assets.core.pipeline import summarize_day
from ocp_assets.core.storage import open_data_root
from ocp_assets_tests.scenario_support import (  # noqa: F401 (run_fixture is the fixture `run`)
    ACCOUNT,
    SCENARIO_DIR,
    SUMMARY,
    fetch_rows,
    nise_cache_dir,
    run_fixture,
    run_scenario,
    scenario_ids,
)

pytestmark = pytest.mark.slow

S20_DAYS = [dt.date(2026, 10, 9), dt.date(2026, 10, 14)]  # s07 (shared volumes) and s09 (labels)
KEYS = ["env", "team", "app", "tier", "owner", "shared", "rack"]


def comparable(rows: list[dict]) -> list[str]:
    """Every column except uuid, as sorted canonical text (row order is not part of the contract)."""
    return sorted(
        json.dumps({k: v for k, v in row.items() if k != "uuid"}, sort_keys=True, default=str) for row in rows
    )


def uuids(rows: list[dict], day: dt.date | None = None) -> set:
    return {r["uuid"] for r in rows if day is None or r["usage_start"] == day}


def test_s20_reruns_give_identical_rows(run, request):
    s = run(name="s20", yamls=["s07_shared_volumes.yml", "s09_label_precedence.yml"], days=S20_DAYS, enabled_keys=KEYS)
    first = comparable(s.rows)
    assert (
        len(first) == 5 + 5 + 2 + 2 + 1 + 1
    )  # s07: 5 Pod, 5 Storage, 2 unallocated; s09: 2 Pod, 1 Storage, 1 unallocated
    previous_uuids = uuids(s.rows)
    for _ in range(3):
        assert comparable(s.summarize()) == first
        assert not uuids(s.rows) & previous_uuids  # rows were replaced, not kept or appended
        previous_uuids = uuids(s.rows)
    # ingesting the same payloads again (same Parquet keys) and summarising gives the same rows
    root = open_data_root(str(s.data_root))
    for yaml_name in ("s07_shared_volumes.yml", "s09_label_precedence.yml"):
        generate(root, yaml_path=SCENARIO_DIR / yaml_name, cluster_id=s.cluster_id, account=ACCOUNT,
                 source_uuid=s.source, cluster_alias=s.cluster_alias, cache_dir=nise_cache_dir(request))  # fmt: skip
    assert comparable(s.summarize()) == first


def test_s20_rerun_of_one_day_leaves_other_days_sources_and_cloud_rows(run, request, tmp_path):
    s = run(name="s20", yamls=["s07_shared_volumes.yml", "s09_label_precedence.yml"], days=S20_DAYS, enabled_keys=KEYS)
    first = comparable(s.rows)
    # a second cluster in the same schema with the same data on the same day
    other_cluster, other_source = scenario_ids("s20-other")
    payload_dir, _ = nise_payload((SCENARIO_DIR / "s07_shared_volumes.yml").read_text(), s.cluster_id,
                                  nise_cache_dir(request), yaml_name="s07")  # fmt: skip
    other_root = open_data_root(str(tmp_path / "other-root"))
    ingest(payload_dir, other_root, account=ACCOUNT, source_uuid=other_source, cluster_id=other_cluster)
    summarize_day(s.conn, s.schema, other_root, ClusterDay(ACCOUNT, other_source, other_cluster, "other", S20_DAYS[0]))
    other_rows = fetch_rows(s.conn, s.schema, other_source)
    # a row written by koku's OCP-on-cloud flow, carrying infrastructure_raw_cost (D5: kept)
    s.conn.execute(
        sql.SQL(
            "INSERT INTO {}.{} (uuid, usage_start, usage_end, source_uuid, cluster_id, data_source, namespace,"
            " infrastructure_raw_cost) VALUES (gen_random_uuid(), %s, %s, %s, %s, 'Pod', 'cloud-ns', 12.5)"
        ).format(sql.Identifier(s.schema), sql.Identifier(SUMMARY)),
        (S20_DAYS[0], S20_DAYS[0], s.source, s.cluster_id),
    )
    with_cloud = fetch_rows(s.conn, s.schema, s.source)
    untouched_day = uuids(with_cloud, S20_DAYS[1])

    summarize_day(s.conn, s.schema, open_data_root(str(s.data_root)),
                  ClusterDay(ACCOUNT, s.source, s.cluster_id, s.cluster_alias, S20_DAYS[0]))  # fmt: skip
    after = fetch_rows(s.conn, s.schema, s.source)
    assert comparable(after) == comparable(with_cloud)
    assert comparable([r for r in after if r["infrastructure_raw_cost"] is None]) == first
    cloud = [r for r in after if r["infrastructure_raw_cost"] is not None]
    assert [(r["namespace"], r["infrastructure_raw_cost"]) for r in cloud] == [("cloud-ns", 12.5)]
    assert uuids(after, S20_DAYS[1]) == untouched_day  # the other day was not rewritten
    assert fetch_rows(s.conn, s.schema, other_source) == other_rows  # nor the other source's rows (uuids included)
    assert len(other_rows) == 12 and {r["cluster_id"] for r in other_rows} == {other_cluster}
