"""CSV ingest into koku's Parquet layout (contract 1.2-1.6, D7): conversions, roll-up, keys, determinism, errors."""

import datetime as dt
import json
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ocp_assets.cli import main
from ocp_assets.core.errors import ConfigurationError, InputDataError
from ocp_assets.core.ingest import (
    ClusterIdentity,
    ingest,
    labels_to_json,
    read_cluster_registry,
)
from ocp_assets.core.storage import open_data_root
from ocp_assets_tests.fixtures_ingest import (
    GIB,
    GPU_HEADER,
    NAMESPACE_LABEL_HEADER,
    NODE_LABEL_HEADER,
    POD_HEADER,
    STORAGE_HEADER,
    VM_HEADER,
    all_bytes,
    four_report_payload,
    namespace_label_row,
    node_label_row,
    parquet_files,
    pod_row,
    read_table,
    storage_row,
    write_csv,
    write_payload,
)

SOURCE = "6d7c1b1e-6a63-4c1c-9a57-3f1f1e0e0a01"
MANIFEST = "11111111-2222-3333-4444-555555555555"
DAY = "2026-10-31"
MIDNIGHT = dt.datetime(2026, 10, 31)


def run_ingest(payload: Path, root: Path, **options) -> object:
    return ingest(payload, open_data_root(str(root)), **({"source_uuid": SOURCE} | options))


def ingest_pod_rows(tmp_path: Path, rows: list[dict]) -> tuple[pa.Table, pa.Table]:
    payload = write_payload(tmp_path / "payload", [(POD_HEADER, rows)])
    run_ingest(payload, tmp_path / "root")
    return read_table(tmp_path / "root", "raw", "pod_usage"), read_table(tmp_path / "root", "daily", "pod_usage")


# --- labels ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label_string", "expected_json"),
    [
        ("", "{}"),
        ("label_app:web", '{"app": "web"}'),
        # every 'label_' goes, not only the prefix
        ("label_my_label_key:v", '{"my_key": "v"}'),
        # a piece with two ':' is dropped, a piece without ':' skipped, the rest kept
        ("label_app:web|label_url:http://x|nocolon|label_env:prod", '{"app": "web", "env": "prod"}'),
        ("label_version:1.2+b/3", '{"version": "1.2+b/3"}'),
        ("label_owner:zoë", '{"owner": "zo\\u00eb"}'),
        ("label_a:", '{"a": ""}'),
        ("label_a:1|label_a:2", '{"a": "2"}'),
    ],
)
def test_label_string_becomes_koku_json(label_string, expected_json):
    assert labels_to_json(label_string) == expected_json


def test_labels_are_converted_in_every_label_column(tmp_path):
    odd = "label_app:web|label_url:http://x|label_my_label_key:1.2+b/3|label_owner:zoë"
    odd_json = '{"app": "web", "my_key": "1.2+b/3", "owner": "zo\\u00eb"}'
    payload = write_payload(tmp_path / "payload", [
        (POD_HEADER, [
            pod_row(DAY, 0, pod_labels=odd), pod_row(DAY, 1, pod_labels=odd), pod_row(DAY, 2, pod_labels=""),
        ]),
        (STORAGE_HEADER, [storage_row(DAY, 0, persistentvolume_labels=odd, persistentvolumeclaim_labels="")]),
        (NODE_LABEL_HEADER, [node_label_row(DAY, 0, node_labels=odd)]),
        (NAMESPACE_LABEL_HEADER, [namespace_label_row(DAY, 0, namespace_labels="label_team:a&b")]),
    ])  # fmt: skip
    root = tmp_path / "root"
    run_ingest(payload, root)

    assert read_table(root, "raw", "pod_usage")["pod_labels"].to_pylist() == [odd_json, odd_json, "{}"]
    assert read_table(root, "daily", "pod_usage")["pod_labels"].to_pylist() == [odd_json, "{}"]
    storage = read_table(root, "raw", "storage_usage")
    assert storage["persistentvolume_labels"].to_pylist() == [odd_json]
    assert storage["persistentvolumeclaim_labels"].to_pylist() == ["{}"]
    assert read_table(root, "raw", "node_labels")["node_labels"].to_pylist() == [odd_json]
    # label values are not HTML-escaped
    assert read_table(root, "daily", "namespace_labels")["namespace_labels"].to_pylist() == ['{"team": "a&b"}']


# --- sanitising, blanks, anomalies -------------------------------------------------------------------------


def test_identifiers_are_html_escaped_and_nul_bytes_removed(tmp_path):
    payload = tmp_path / "payload"
    write_payload(
        payload, [(POD_HEADER, [pod_row(DAY, 0, pod="a&b", namespace="x\"y'z", node="<n>", pod_labels="label_k:a&b")])]
    )
    csv_path = next(payload.glob("*.csv"))
    csv_path.write_bytes(csv_path.read_bytes().replace(b"i-node-a", b"i-no\x00de"))
    raw, daily = ingest_pod_rows_from(payload, tmp_path / "root")

    row = raw.to_pylist()[0]
    assert (row["pod"], row["namespace"], row["node"]) == ("a&amp;b", "x&quot;y&#x27;z", "&lt;n&gt;")
    assert row["resource_id"] == "i-node"
    assert row["pod_labels"] == '{"k": "a&b"}'
    assert daily["pod"].to_pylist() == ["a&amp;b"]


def ingest_pod_rows_from(payload: Path, root: Path) -> tuple[pa.Table, pa.Table]:
    run_ingest(payload, root)
    return read_table(root, "raw", "pod_usage"), read_table(root, "daily", "pod_usage")


def test_blank_and_invalid_metrics_become_zero_blank_strings_stay_empty(tmp_path):
    rows = [
        pod_row(DAY, 0, pod_usage_cpu_core_seconds="", resource_id="", node_capacity_cpu_cores="abc"),
        pod_row(DAY, 1, pod_usage_cpu_core_seconds=" 7", pod_request_cpu_core_seconds="1e3"),
    ]
    raw, _ = ingest_pod_rows(tmp_path, rows)
    assert raw["pod_usage_cpu_core_seconds"].to_pylist() == [0.0, 7.0]
    assert raw["pod_request_cpu_core_seconds"].to_pylist() == [7200.0, 1000.0]
    assert raw["node_capacity_cpu_cores"].to_pylist() == [0.0, 4.0]
    assert raw["resource_id"].to_pylist() == ["", "i-node-a"]


def test_claimless_volume_keeps_empty_strings_and_zero_request(tmp_path):
    claimless = storage_row(
        DAY, 0, namespace="", pod="", persistentvolumeclaim="",
        volume_request_storage_byte_seconds="", persistentvolumeclaim_usage_byte_seconds="",
    )  # fmt: skip
    payload = write_payload(tmp_path / "payload", [(STORAGE_HEADER, [claimless])])
    run_ingest(payload, tmp_path / "root")
    row = read_table(tmp_path / "root", "raw", "storage_usage").to_pylist()[0]
    assert (row["namespace"], row["pod"], row["persistentvolumeclaim"]) == ("", "", "")
    assert row["volume_request_storage_byte_seconds"] == 0.0
    assert row["persistentvolumeclaim_usage_byte_seconds"] == 0.0


def test_rows_with_a_metric_above_1e18_are_dropped(tmp_path):
    rows = [
        pod_row(DAY, 0),
        pod_row(DAY, 1, pod_usage_memory_byte_seconds="2e18"),
        pod_row(DAY, 2, pod_limit_memory_byte_seconds="1e18"),  # not above the threshold
    ]
    payload = write_payload(tmp_path / "payload", [(POD_HEADER, rows)])
    result = run_ingest(payload, tmp_path / "root")
    raw = read_table(tmp_path / "root", "raw", "pod_usage")
    assert raw["interval_start"].to_pylist() == [MIDNIGHT, MIDNIGHT.replace(hour=2)]
    assert result.anomalous_rows_dropped == 1
    assert result.rows == {("pod_usage", dt.date(2026, 10, 31)): 2}
    daily = read_table(tmp_path / "root", "daily", "pod_usage")
    assert daily["pod_usage_memory_byte_seconds"].to_pylist() == [2 * 3600 * GIB]


# --- effective usage and the daily roll-up -----------------------------------------------------------------


def test_effective_usage_is_the_hourly_max_summed_over_the_day(tmp_path):
    rows = [
        pod_row(DAY, 0, pod_usage_cpu_core_seconds=7200, pod_request_cpu_core_seconds=3600,
                pod_usage_memory_byte_seconds=3 * 3600 * GIB, pod_request_memory_byte_seconds=1 * 3600 * GIB),
        pod_row(DAY, 1, pod_usage_cpu_core_seconds=1800, pod_request_cpu_core_seconds=3600,
                pod_usage_memory_byte_seconds=1 * 3600 * GIB, pod_request_memory_byte_seconds=2 * 3600 * GIB),
    ]  # fmt: skip
    raw, daily = ingest_pod_rows(tmp_path, rows)
    assert raw["pod_effective_usage_cpu_core_seconds"].to_pylist() == [7200.0, 3600.0]
    assert raw["pod_effective_usage_memory_byte_seconds"].to_pylist() == [3 * 3600 * GIB, 2 * 3600 * GIB]
    day = daily.to_pylist()[0]
    # usage 9000 and request 7200 in total; the max of the sums (9000) would be wrong
    assert day["pod_effective_usage_cpu_core_seconds"] == 10800.0
    assert day["pod_effective_usage_memory_byte_seconds"] == 5 * 3600 * GIB


def test_daily_table_sums_and_maxes_per_pod_and_label_set(tmp_path):
    rows = [
        pod_row(DAY, 0, resource_id="i-a"),
        pod_row(DAY, 1, resource_id="i-b", node_capacity_cpu_cores=8, node_capacity_cpu_core_seconds=28800),
        pod_row(DAY, 2, resource_id="i-a"),
        pod_row(DAY, 3, pod_labels="label_app:api"),  # another label set: its own daily row
        pod_row(DAY, 0, pod="pod-b", pod_usage_cpu_core_seconds=100),
    ]
    _, daily = ingest_pod_rows(tmp_path, rows)
    by_group = {(r["pod"], r["pod_labels"]): r for r in daily.to_pylist()}
    assert set(by_group) == {("pod-a", '{"app": "web"}'), ("pod-a", '{"app": "api"}'), ("pod-b", '{"app": "web"}')}

    web = by_group[("pod-a", '{"app": "web"}')]
    assert web["interval_start"] == MIDNIGHT
    assert web["report_period_start"] == dt.datetime(2026, 10, 1)
    assert web["report_period_end"] == dt.datetime(2026, 11, 1)
    assert web["resource_id"] == "i-b"
    assert web["pod_usage_cpu_core_seconds"] == 3 * 3600.0
    assert web["pod_request_cpu_core_seconds"] == 3 * 7200.0
    assert web["pod_limit_cpu_core_seconds"] == 3 * 14400.0
    assert web["pod_limit_memory_byte_seconds"] == 3 * 4 * 3600 * GIB
    assert web["node_capacity_cpu_cores"] == 8.0
    assert web["node_capacity_cpu_core_seconds"] == 14400 + 28800 + 14400.0  # summed per pod, as koku does
    assert web["node_capacity_memory_bytes"] == 16 * GIB
    assert web["node_capacity_memory_byte_seconds"] == 3 * 16 * GIB * 3600
    assert web["node_role"] is None
    assert by_group[("pod-b", '{"app": "web"}')]["pod_usage_cpu_core_seconds"] == 100.0


def test_storage_daily_table(tmp_path):
    rows = [storage_row(DAY, hour) for hour in range(3)]
    rows[1]["persistentvolumeclaim_capacity_bytes"] = 12 * GIB
    payload = write_payload(tmp_path / "payload", [(STORAGE_HEADER, rows)])
    run_ingest(payload, tmp_path / "root")
    (day,) = read_table(tmp_path / "root", "daily", "storage_usage").to_pylist()
    assert day == {
        "namespace": "ns-a", "node": "node-a", "pod": "pod-a", "persistentvolumeclaim": "pvc-a",
        "persistentvolume": "pv-a", "storageclass": "gp3", "csi_driver": "ebs.csi.aws.com",
        "csi_volume_handle": "vol-1",
        "persistentvolume_labels": '{"tier": "gold"}', "persistentvolumeclaim_labels": '{"claim": "yes"}',
        "interval_start": MIDNIGHT,
        "report_period_start": dt.datetime(2026, 10, 1), "report_period_end": dt.datetime(2026, 11, 1),
        "persistentvolumeclaim_capacity_bytes": 12.0 * GIB,
        "persistentvolumeclaim_capacity_byte_seconds": 3 * 10.0 * GIB * 3600,
        "volume_request_storage_byte_seconds": 3 * 20.0 * GIB * 3600,
        "persistentvolumeclaim_usage_byte_seconds": 3 * 5.0 * GIB * 3600,
    }  # fmt: skip


def test_storage_from_an_older_operator_without_node_and_csi_columns(tmp_path):
    header = [c for c in STORAGE_HEADER if c not in ("node", "csi_driver", "csi_volume_handle")]
    payload = write_payload(tmp_path / "payload", [(header, [storage_row(DAY, 0)])])
    run_ingest(payload, tmp_path / "root")
    for kind in ("raw", "daily"):
        row = read_table(tmp_path / "root", kind, "storage_usage").to_pylist()[0]
        assert (row["node"], row["csi_driver"], row["csi_volume_handle"]) == (None, None, None)
        assert row["persistentvolumeclaim"] == "pvc-a"


# --- Parquet types and layout ------------------------------------------------------------------------------

POD_RAW_COLUMNS = [
    *POD_HEADER,
    "pod_effective_usage_cpu_core_seconds", "pod_effective_usage_memory_byte_seconds", "node_role",
]  # fmt: skip
POD_DAILY_COLUMNS = [
    "namespace", "node", "pod", "pod_labels", "interval_start", "report_period_start", "report_period_end",
    "resource_id",
    "pod_usage_cpu_core_seconds", "pod_request_cpu_core_seconds", "pod_effective_usage_cpu_core_seconds",
    "pod_limit_cpu_core_seconds", "pod_usage_memory_byte_seconds", "pod_request_memory_byte_seconds",
    "pod_effective_usage_memory_byte_seconds", "pod_limit_memory_byte_seconds",
    "node_capacity_cpu_cores", "node_capacity_cpu_core_seconds", "node_capacity_memory_bytes",
    "node_capacity_memory_byte_seconds", "node_role",
]  # fmt: skip
STORAGE_DAILY_COLUMNS = [
    "namespace", "node", "pod", "persistentvolumeclaim", "persistentvolume", "storageclass", "csi_driver",
    "csi_volume_handle", "persistentvolume_labels", "persistentvolumeclaim_labels", "interval_start",
    "report_period_start", "report_period_end", "persistentvolumeclaim_capacity_bytes",
    "persistentvolumeclaim_capacity_byte_seconds", "volume_request_storage_byte_seconds",
    "persistentvolumeclaim_usage_byte_seconds",
]  # fmt: skip
TIMESTAMPS = {"report_period_start", "report_period_end", "interval_start", "interval_end"}
METRICS = {c for c in POD_DAILY_COLUMNS + STORAGE_DAILY_COLUMNS if c.endswith(("_seconds", "_cores", "_bytes"))}


@pytest.mark.parametrize(
    ("report_type", "kind", "columns"),
    [
        ("pod_usage", "raw", POD_RAW_COLUMNS),
        ("pod_usage", "daily", POD_DAILY_COLUMNS),
        ("storage_usage", "raw", STORAGE_HEADER),
        ("storage_usage", "daily", STORAGE_DAILY_COLUMNS),
        ("node_labels", "raw", NODE_LABEL_HEADER),
        ("node_labels", "daily", ["node", "node_labels", "interval_start", "report_period_start", "report_period_end"]),
        ("namespace_labels", "raw", NAMESPACE_LABEL_HEADER),
        ("namespace_labels", "daily", [
            "namespace", "namespace_labels", "interval_start", "report_period_start", "report_period_end",
        ]),
    ],
)  # fmt: skip
def test_parquet_columns_and_types(tmp_path, report_type, kind, columns):
    run_ingest(four_report_payload(tmp_path / "payload"), tmp_path / "root")
    (path,) = [
        p for key, p in parquet_files(tmp_path / "root").items()
        if f"/OCP/{report_type}/" in key and key.startswith("data/parquet/daily/") == (kind == "daily")
    ]  # fmt: skip
    parquet = pq.ParquetFile(path)
    schema = parquet.schema_arrow
    assert schema.names == columns
    for name in columns:
        if name in TIMESTAMPS:
            assert schema.field(name).type == pa.timestamp("ms")  # naive: no time zone
            logical = json.loads(parquet.schema.column(columns.index(name)).logical_type.to_json())
            assert logical["isAdjustedToUTC"] is False
        elif name in METRICS:
            assert schema.field(name).type == pa.float64()
        else:
            assert schema.field(name).type == pa.string()


def test_keys_per_report_type_split_by_day_across_a_month_boundary(tmp_path):
    payload = four_report_payload(tmp_path / "payload", days=("2026-10-31", "2026-11-01"))
    result = run_ingest(payload, tmp_path / "root")

    report_types = ("pod_usage", "storage_usage", "node_labels", "namespace_labels")  # files 0-3 of the payload
    expected = {f"data/parquet/10001/OCP/clusters/source={SOURCE}/cluster.json"}
    for number, report_type in enumerate(report_types):
        for day, month in (("2026-10-31", "10"), ("2026-11-01", "11")):
            folder = f"10001/OCP/{report_type}/source={SOURCE}/year=2026/month={month}"
            stem = f"{report_type}.{day}.{MANIFEST}.{number}"
            expected.add(f"data/parquet/{folder}/{stem}_0.parquet")
            expected.add(f"data/parquet/daily/{folder}/{stem}_daily_0.parquet")
    assert set(all_bytes(tmp_path / "root")) == expected
    assert set(result.keys_written) == expected
    assert result.rows == {(rt, day): 2 for rt in report_types for day in (dt.date(2026, 10, 31), dt.date(2026, 11, 1))}

    files = parquet_files(tmp_path / "root")
    pods = f"10001/OCP/pod_usage/source={SOURCE}/year=2026"
    november = pq.read_table(files[f"data/parquet/{pods}/month=11/pod_usage.2026-11-01.{MANIFEST}.0_0.parquet"])
    assert november["interval_start"].to_pylist() == [dt.datetime(2026, 11, 1, 0), dt.datetime(2026, 11, 1, 23)]
    assert november["interval_end"].to_pylist() == [
        dt.datetime(2026, 11, 1, 0, 59, 59),
        dt.datetime(2026, 11, 1, 23, 59, 59),
    ]
    assert november["report_period_start"].to_pylist() == [dt.datetime(2026, 11, 1)] * 2
    october = pq.read_table(
        files[f"data/parquet/daily/{pods}/month=10/pod_usage.2026-10-31.{MANIFEST}.0_daily_0.parquet"]
    )
    assert october["interval_start"].to_pylist() == [MIDNIGHT]
    assert october["pod_usage_cpu_core_seconds"].to_pylist() == [2 * 3600.0]


def test_reingesting_the_same_payload_writes_byte_identical_files(tmp_path):
    payload = four_report_payload(tmp_path / "payload", days=("2026-10-31", "2026-11-01"))
    run_ingest(payload, tmp_path / "first")
    run_ingest(payload, tmp_path / "second")
    first = all_bytes(tmp_path / "first")
    assert first == all_bytes(tmp_path / "second")
    run_ingest(payload, tmp_path / "first")
    assert all_bytes(tmp_path / "first") == first


def test_ros_files_are_skipped_with_a_reason_empty_vm_and_gpu_files_are_read(tmp_path):
    # nise writes header-only VM and GPU files for clusters without them: read, nothing to write.
    payload = write_payload(tmp_path / "payload", [
        (POD_HEADER, [pod_row(DAY, 0)]), (VM_HEADER, []), (GPU_HEADER, []),
    ])  # fmt: skip
    manifest = json.loads((payload / "manifest.json").read_text())
    manifest["resource_optimization_files"] = [f"{MANIFEST}_openshift_report.3.csv"]
    (payload / "manifest.json").write_text(json.dumps(manifest))
    result = run_ingest(payload, tmp_path / "root")
    reasons = sorted(skipped.reason for skipped in result.files_skipped)
    assert [r.split(" ")[0] for r in reasons] == ["resource-optimization"]
    assert len(result.files_read) == 3
    assert {key.split("/OCP/")[1].split("/")[0] for key in result.keys_written} == {"pod_usage", "clusters"}


# --- payload forms and cluster identity --------------------------------------------------------------------


def test_bare_nise_csvs_take_the_cluster_id_from_the_file_name(tmp_path):
    directory = tmp_path / "nise"
    write_csv(directory / "October-2026-my-cluster-ocp_pod_usage.csv", POD_HEADER, [pod_row(DAY, 0)])
    write_csv(directory / "October-2026-my-cluster-ocp_node_label.csv", NODE_LABEL_HEADER, [node_label_row(DAY, 0)])
    result = ingest(directory, open_data_root(str(tmp_path / "root")))
    (cluster,) = result.clusters
    assert cluster.cluster_id == "my-cluster"
    assert uuid.UUID(cluster.source_uuid)  # derived: the same for the same cluster id, on any machine
    assert ingest(directory, open_data_root(str(tmp_path / "again"))).clusters == [cluster]
    assert f"/pod_usage.{DAY}.October-2026-my-cluster-ocp_pod_usage.0_0.parquet" in " ".join(result.keys_written)


def test_a_single_csv_without_a_cluster_id_needs_one(tmp_path):
    csv_path = write_csv(tmp_path / "usage.csv", POD_HEADER, [pod_row(DAY, 0)])
    with pytest.raises(ConfigurationError, match="cluster id"):
        ingest(csv_path, open_data_root(str(tmp_path / "root")))
    assert not (tmp_path / "root").exists()
    result = ingest(csv_path, open_data_root(str(tmp_path / "root")), cluster_id="given")
    assert result.clusters[0].cluster_id == "given"


def test_cluster_registry_records_identity_and_keeps_the_alias(tmp_path):
    root = open_data_root(str(tmp_path / "root"))
    payload = four_report_payload(tmp_path / "payload")
    ingest(payload, root, account="acct12345", source_uuid=SOURCE, cluster_alias="prod east")
    identity = ClusterIdentity(cluster_id="cluster-1", source_uuid=SOURCE, account="12345", cluster_alias="prod east")
    assert read_cluster_registry(root) == [identity]
    record = json.loads(
        (tmp_path / "root" / f"data/parquet/12345/OCP/clusters/source={SOURCE}/cluster.json").read_text()
    )
    assert record == {
        "cluster_id": "cluster-1",
        "source_uuid": SOURCE,
        "account": "12345",
        "cluster_alias": "prod east",
    }

    ingest(payload, root, account="12345", source_uuid=SOURCE)  # no alias given: the recorded one stays
    other = write_payload(tmp_path / "other", [(POD_HEADER, [pod_row(DAY, 0)])], cluster_id="cluster-2")
    second = ingest(other, root, account="12345").clusters[0]
    assert read_cluster_registry(root) == [identity, second]


def test_a_source_cannot_change_cluster(tmp_path):
    root = open_data_root(str(tmp_path / "root"))
    ingest(four_report_payload(tmp_path / "payload"), root, source_uuid=SOURCE)
    before = all_bytes(tmp_path / "root")
    other = write_payload(tmp_path / "other", [(POD_HEADER, [pod_row("2026-10-30", 0)])], cluster_id="cluster-2")
    with pytest.raises(ConfigurationError, match="cluster-1"):
        ingest(other, root, source_uuid=SOURCE)
    assert all_bytes(tmp_path / "root") == before


# --- bad input ---------------------------------------------------------------------------------------------


def assert_nothing_written(root: Path) -> None:
    assert not root.exists() or not any(p.is_file() for p in root.rglob("*"))


def test_unknown_header_names_the_file_and_a_missing_column(tmp_path):
    header = [c for c in POD_HEADER if c != "pod_labels"]
    payload = write_payload(tmp_path / "payload", [(POD_HEADER, [pod_row(DAY, 0)]), (header, [pod_row(DAY, 0)])])
    with pytest.raises(InputDataError) as raised:
        run_ingest(payload, tmp_path / "root")
    assert raised.value.file.endswith(f"{MANIFEST}_openshift_report.1.csv")
    assert raised.value.column == "pod_labels"
    assert_nothing_written(tmp_path / "root")


def test_bad_timestamp_names_file_column_and_row(tmp_path):
    rows = [pod_row(DAY, 0), pod_row(DAY, 1), pod_row(DAY, 2, interval_start="2026-10-31 25:00:00 +0000 UTC")]
    payload = write_payload(tmp_path / "payload", [(NODE_LABEL_HEADER, [node_label_row(DAY, 0)]), (POD_HEADER, rows)])
    with pytest.raises(InputDataError) as raised:
        run_ingest(payload, tmp_path / "root")
    assert raised.value.file.endswith("_openshift_report.1.csv")
    assert (raised.value.column, raised.value.row) == ("interval_start", 3)
    assert "25:00:00" in str(raised.value)
    assert_nothing_written(tmp_path / "root")


def test_row_with_missing_fields_names_its_row(tmp_path):
    payload = write_payload(tmp_path / "payload", [(POD_HEADER, [pod_row(DAY, h) for h in range(3)])])
    csv_path = next(payload.glob("*.csv"))
    lines = csv_path.read_text().splitlines(keepends=True)
    lines[2] = ",".join(lines[2].split(",")[:5]) + "\n"
    csv_path.write_text("".join(lines))
    with pytest.raises(InputDataError) as raised:
        run_ingest(payload, tmp_path / "root")
    assert (raised.value.file, raised.value.row) == (str(csv_path), 2)
    assert_nothing_written(tmp_path / "root")


def test_invalid_utf8_names_column_and_row(tmp_path):
    payload = write_payload(tmp_path / "payload", [(POD_HEADER, [pod_row(DAY, h, pod=f"pod-{h}") for h in range(3)])])
    csv_path = next(payload.glob("*.csv"))
    csv_path.write_bytes(csv_path.read_bytes().replace(b"pod-2", b"pod-\xff"))
    with pytest.raises(InputDataError) as raised:
        run_ingest(payload, tmp_path / "root")
    assert (raised.value.column, raised.value.row) == ("pod", 3)


@pytest.mark.parametrize("content", [b"", b"\n\n"])
def test_empty_file_is_an_error(tmp_path, content):
    (tmp_path / "empty.csv").write_bytes(content)
    with pytest.raises(InputDataError, match="no CSV header") as raised:
        ingest(tmp_path / "empty.csv", open_data_root(str(tmp_path / "root")), cluster_id="c")
    assert raised.value.file == str(tmp_path / "empty.csv")


def test_repeated_header_column_is_an_error(tmp_path):
    csv_path = write_csv(tmp_path / "usage.csv", [*POD_HEADER, "pod"], [pod_row(DAY, 0)])
    with pytest.raises(InputDataError, match="twice") as raised:
        ingest(csv_path, open_data_root(str(tmp_path / "root")), cluster_id="c")
    assert raised.value.column == "pod"


def test_manifest_listing_a_missing_file_is_an_error(tmp_path):
    payload = write_payload(tmp_path / "payload", [(POD_HEADER, [pod_row(DAY, 0)])])
    next(payload.glob("*.csv")).unlink()
    with pytest.raises(InputDataError, match="missing"):
        run_ingest(payload, tmp_path / "root")


# --- command line ------------------------------------------------------------------------------------------


def test_cli_ingest_prints_a_summary(tmp_path, capsys):
    payload = four_report_payload(tmp_path / "payload")
    assert main(["ingest", str(payload), "--out", str(tmp_path / "root"), "--source", SOURCE]) == 0
    out = capsys.readouterr().out
    assert "pod_usage" in out and DAY in out and SOURCE in out


def test_cli_exit_code_2_on_bad_input(tmp_path, capsys):
    header = ["a", "b"]
    payload = write_payload(tmp_path / "payload", [(header, [{"a": 1, "b": 2}])])
    assert main(["ingest", str(payload), "--out", str(tmp_path / "root")]) == 2
    assert "_openshift_report.0.csv" in capsys.readouterr().err
    assert main(["ingest", str(payload), "--out", str(tmp_path / "root"), "--source", "not-a-uuid"]) == 2
    assert "not-a-uuid" in capsys.readouterr().err
    assert_nothing_written(tmp_path / "root")
