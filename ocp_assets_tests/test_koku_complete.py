"""nise's GPU and VM scenario with tag mappings: ingest, daily summary and GPU summary equal koku's SQL (issue 11)."""

import datetime as dt
import json
import uuid
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from psycopg import sql

from ocp_assets.core.generate import SCENARIO_DIR, generate
from ocp_assets.core.identity import ClusterDay
from ocp_assets.core.pipeline import summarize_day
from ocp_assets.core.storage import open_data_root
from ocp_assets_tests.engine_support import enable_keys, engine_rows, koku_settings_for_reference, map_tag_keys
from ocp_assets_tests.reference.koku_gpu_sql import compare_gpu_summaries, engine_gpu_rows, reference_gpu_summary
from ocp_assets_tests.reference.koku_sql import compare_summaries, reference_summary
from ocp_assets_tests.scenario_support import nise_cache_dir

pytestmark = pytest.mark.slow

ACCOUNT = "org1234567"
CLUSTER = "koku-complete"
ALIAS = "GPU and VM cluster"
DAY = dt.date(2026, 10, 31)  # gpu_vm.yml's one day
ENABLED = ["app", "team", "storage_tier", "vm_kubevirt_io_name", "kubevirt_io_created_by"]
# team -> app: both present on every pod row (app from the pod, team from its namespace), so koku drops every
# mapped child there; on the VM's volume app is absent, so team is renamed; storage_tier -> tier renames alike.
MAPPINGS = [("team", "app"), ("storage_tier", "tier"), ("vm_kubevirt_io_name", "vm")]


def _labels(value) -> dict:
    return value if isinstance(value, dict) else json.loads(value or "{}")


def test_nise_gpu_and_vm_dataset_with_tag_mappings_equals_kokus_sql(pg, tmp_path, request):
    conn, schema = pg
    source = str(uuid.uuid4())
    data = tmp_path / "data"
    root = open_data_root(str(data))
    generate(root, yaml_path=SCENARIO_DIR / "gpu_vm.yml", cluster_id=CLUSTER, account=ACCOUNT, source_uuid=source,
             cluster_alias=ALIAS, cache_dir=nise_cache_dir(request))  # fmt: skip
    enable_keys(conn, schema, ENABLED)
    map_tag_keys(conn, schema, MAPPINGS)

    assert summarize_day(conn, schema, root, ClusterDay(ACCOUNT, source, CLUSTER, ALIAS, DAY)) is not None

    # The VM report became koku's vm_usage Parquet, raw and daily: the one VM of virt-0, every hour of the day.
    for tree, expected_rows in (("parquet", 24), ("parquet/daily", 1)):
        files = sorted(Path(data, "data", tree, ACCOUNT, "OCP", "vm_usage").rglob("*.parquet"))
        vm = pq.read_table(files).to_pylist() if files else []
        assert {(r["vm_name"], r["node"]) for r in vm} == {("rhel9-db", "virt-0")} and len(vm) == expected_rows

    # The daily summary, by hand: no pod row keeps a mapped child key (team and app are both present on each);
    # the VM's volume has team renamed to app and storage_tier to tier.
    rows = engine_rows(conn, schema, source)
    pods = rows[rows["data_source"] == "Pod"]
    pod_keys = set().union(*(_labels(v).keys() for v in pods["pod_labels"] if v is not None))
    assert "app" in pod_keys and not pod_keys & {"team", "storage_tier", "vm_kubevirt_io_name"}
    (volume,) = [_labels(v) for v in rows[rows["data_source"] == "Storage"]["volume_labels"]]
    assert volume == {"app": "platform", "tier": "ceph", "kubevirt_io_created_by": "rhel9-db"}

    expected = reference_summary(
        None,
        data,
        account=ACCOUNT,
        source=source,
        cluster_id=CLUSTER,
        cluster_alias=ALIAS,
        start=DAY,
        end=DAY,
        # the mapping added its parents (tier, vm) as enabled OCP keys, as koku's settings API does
        enabled_keys=[
            key
            for (key,) in conn.execute(
                sql.SQL("SELECT key FROM {}.reporting_enabledtagkeys WHERE enabled AND provider_type = 'OCP'").format(
                    sql.Identifier(schema)
                )
            ).fetchall()
        ],
        runs="day",
        **koku_settings_for_reference(conn, schema),
    )
    assert compare_summaries(expected, rows) == []

    gpu_expected = reference_gpu_summary(
        None,
        data,
        account=ACCOUNT,
        source=source,
        cluster_id=CLUSTER,
        cluster_alias=ALIAS,
        start=DAY,
        end=DAY,
        cost_category_patterns=conn.execute(
            sql.SQL("SELECT namespace, cost_category_id FROM {}.reporting_ocp_cost_category_namespace").format(
                sql.Identifier(schema)
            )
        ).fetchall(),
    )
    gpu_actual = conn.execute(
        sql.SQL("SELECT count(*), sum(gpu_count) FROM {}.reporting_ocp_gpu_summary_p WHERE source_uuid = %s").format(
            sql.Identifier(schema)
        ),
        (source,),
    ).fetchone()
    # H100 dedicated, two A100 MIG slices, the T4 whose MIG fields koku clears: 4 rows, one GPU (or slice) each.
    assert gpu_actual == (4, 4)
    assert compare_gpu_summaries(gpu_expected, engine_gpu_rows(conn, schema, source)) == []
