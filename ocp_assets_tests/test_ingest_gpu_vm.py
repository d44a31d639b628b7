"""Ingest of the VM and GPU reports (contract 1.1-1.5, D8): GPU clean-up and MIG fields, VM rows, types, roll-ups."""

import datetime as dt
import uuid
from pathlib import Path

import pyarrow as pa
import pytest

from ocp_assets.core.errors import InputDataError
from ocp_assets.core.generate import SCENARIO_DIR, generate
from ocp_assets.core.ingest import gpu_max_slices, ingest, parse_mig_profile
from ocp_assets.core.storage import open_data_root
from ocp_assets_tests.fixtures_ingest import (
    GIB,
    GPU_HEADER,
    GPU_HEADER_WITHOUT_MIG,
    POD_HEADER,
    VM_HEADER,
    gpu_row,
    parquet_files,
    pod_row,
    read_table,
    vm_row,
    write_payload,
)

SOURCE = "6d7c1b1e-6a63-4c1c-9a57-3f1f1e0e0a01"
MANIFEST = "11111111-2222-3333-4444-555555555555"
DAY = "2026-10-31"
MIDNIGHT = dt.datetime(2026, 10, 31)
HOUR = 3600
MIG_COLUMNS = (
    "mig_instance_id",
    "mig_profile",
    "mig_strategy",
    "mig_slice_count",
    "mig_memory_capacity_mib",
    "gpu_max_slices",
)


def ingest_rows(tmp_path: Path, header: list[str], rows: list[dict], report_type: str) -> tuple[pa.Table, pa.Table]:
    payload = write_payload(tmp_path / "payload", [(header, rows)])
    root = tmp_path / "root"
    ingest(payload, open_data_root(str(root)), source_uuid=SOURCE)
    return read_table(root, "raw", report_type), read_table(root, "daily", report_type)


def by_pod_and_instance(table: pa.Table) -> dict[tuple[str, str | None], dict]:
    return {(row["pod"], row["mig_instance_id"]): row for row in table.to_pylist()}


def mig_fields(row: dict) -> tuple:
    return tuple(row[name] for name in MIG_COLUMNS)


# --- GPU clean-up: the two koku functions on their own ---------------------------------------------------


@pytest.mark.parametrize(
    ("profile", "slices_and_mib"),
    [
        ("1g.5gb", (1, 5 * 1024)),
        ("3g.40gb", (3, 40 * 1024)),
        (" 7G.80GB ", (7, 80 * 1024)),  # stripped and lower-cased first
        ("2g-10gb", (None, None)),  # not two '.'-separated parts
        ("1c.2g.10gb", (None, None)),
        ("2.10gb", (None, None)),  # the compute part must end in 'g'
        ("2g.10", (None, None)),  # the memory part must end in 'gb'
        ("xg.10gb", (None, None)),  # both or neither
        ("", (None, None)),
        (None, (None, None)),
    ],
)
def test_mig_profile_gives_slices_and_memory_in_mib(profile, slices_and_mib):
    assert parse_mig_profile(profile) == slices_and_mib


@pytest.mark.parametrize(
    ("cleaned_model", "max_slices"),
    [
        ("A100", 7),
        ("a30", 4),  # compared upper-case
        ("RTX PRO 6000", 4),
        ("RTX PRO 5000", 2),
        ("NVIDIA A100 SXM4 80GB", 7),  # contains A100
        ("GH100", 7),  # contains H100: a substring match, as in koku
        ("H200 NVL", 7),
        ("B200", 7),
        ("Tesla T4", None),  # no MIG slice count known: koku clears the MIG fields
        ("L40S", None),
        ("", None),
    ],
)
def test_gpu_max_slices_by_model(cleaned_model, max_slices):
    assert gpu_max_slices(cleaned_model) == max_slices


# --- GPU rows ----------------------------------------------------------------------------------------------


def gpu_rows_of_one_hour(hour: int) -> list[dict]:
    """A dedicated A100, two MIG slices of one A100, a T4 slice (model without slice count), a bad profile."""
    return [
        gpu_row(DAY, hour),
        gpu_row(DAY, hour, pod="infer", gpu_uuid="GPU-0002", gpu_model_name="NVIDIA A100-SXM4-80GB",
                gpu_memory_capacity_mib=81920, gpu_pod_uptime=900,
                mig_instance_id="MIG-1", mig_profile="2g.10gb", mig_strategy="mixed"),
        gpu_row(DAY, hour, pod="infer", gpu_uuid="GPU-0002", gpu_model_name="NVIDIA A100-SXM4-80GB",
                gpu_memory_capacity_mib=81920, gpu_pod_uptime=900,
                mig_instance_id="MIG-2", mig_profile="3g.40gb", mig_strategy="mixed"),
        gpu_row(DAY, hour, pod="old", gpu_uuid="GPU-0003", gpu_model_name="Tesla T4",
                gpu_memory_capacity_mib=15360, gpu_pod_uptime=3600,
                mig_instance_id="MIG-3", mig_profile="1g.4gb", mig_strategy="single"),
        gpu_row(DAY, hour, pod="odd", gpu_uuid="GPU-0004", gpu_model_name="H100",
                gpu_memory_capacity_mib=81920, gpu_pod_uptime=3600,
                mig_instance_id="MIG-4", mig_profile="2g-10gb", mig_strategy="mixed"),
    ]  # fmt: skip


def test_gpu_dedicated_and_mig_rows_after_the_clean_up(tmp_path):
    raw, _ = ingest_rows(tmp_path, GPU_HEADER, gpu_rows_of_one_hour(0), "gpu_usage")
    rows = by_pod_and_instance(raw)
    assert len(rows) == 5

    dedicated = rows[("trainer", "")]
    assert dedicated["gpu_vendor_name"] == "nvidia"  # the operator's resource name nvidia_com_gpu
    assert dedicated["gpu_model_name"] == "A100"
    assert dedicated["gpu_memory_capacity_mib"] == 40960.0
    assert dedicated["gpu_pod_uptime"] == 1800.0
    # no profile: the MIG columns stay as sent, the derived ones are empty
    assert mig_fields(dedicated) == ("", "", "", None, None, None)

    # punctuation runs become one space; the A100 in the name gives 7 slices
    slice_one, slice_two = rows[("infer", "MIG-1")], rows[("infer", "MIG-2")]
    assert slice_one["gpu_model_name"] == slice_two["gpu_model_name"] == "NVIDIA A100 SXM4 80GB"
    assert mig_fields(slice_one) == ("MIG-1", "2g.10gb", "mixed", 2, 10 * 1024, 7)
    assert mig_fields(slice_two) == ("MIG-2", "3g.40gb", "mixed", 3, 40 * 1024, 7)
    assert slice_one["gpu_uuid"] == slice_two["gpu_uuid"] == "GPU-0002"

    # a T4 has no known slice count: every MIG field is cleared and the GPU counts as dedicated
    cleared = rows[("old", None)]
    assert mig_fields(cleared) == (None,) * 6
    assert (cleared["gpu_model_name"], cleared["gpu_pod_uptime"]) == ("Tesla T4", 3600.0)

    # a profile that does not parse keeps the profile and the model's slice count, nothing else
    assert mig_fields(rows[("odd", "MIG-4")]) == ("MIG-4", "2g-10gb", "mixed", None, None, 7)


@pytest.mark.parametrize(
    ("reported", "cleaned"),
    [
        ("Tesla T4", "Tesla T4"),
        ("  (H200)  ", "H200"),  # runs at both ends go, then the spaces they became
        ("rtx-pro_5000", "rtx pro 5000"),  # case kept in the column
        ("Quadro\u00a0RTX\u2122 8000", "Quadro RTX 8000"),  # non-ASCII is a separator too
    ],
)
def test_gpu_model_name_is_normalised(tmp_path, reported, cleaned):
    raw, _ = ingest_rows(tmp_path, GPU_HEADER, [gpu_row(DAY, 0, gpu_model_name=reported)], "gpu_usage")
    assert raw["gpu_model_name"].to_pylist() == [cleaned]


def test_only_the_whole_vendor_nvidia_com_gpu_is_renamed(tmp_path):
    rows = [
        gpu_row(DAY, 0, gpu_vendor_name="nvidia_com_gpu"),
        gpu_row(DAY, 0, pod="b", gpu_vendor_name="amd_com_gpu"),
        gpu_row(DAY, 0, pod="c", gpu_vendor_name="nvidia_com_gpu_shared"),
    ]
    raw, _ = ingest_rows(tmp_path, GPU_HEADER, rows, "gpu_usage")
    assert raw["gpu_vendor_name"].to_pylist() == ["nvidia", "amd_com_gpu", "nvidia_com_gpu_shared"]


def test_gpu_identifiers_are_sanitised_before_the_model_clean_up(tmp_path):
    row = gpu_row(
        DAY, 0, node="n<1>", namespace="ns&x", pod="p'1", gpu_uuid="GPU-<1>", gpu_vendor_name='ven"dor',
        gpu_model_name="A100 & <b>", mig_instance_id="MIG-<1>", mig_profile="1g.5gb", mig_strategy="mi<x>ed",
    )  # fmt: skip
    raw, _ = ingest_rows(tmp_path, GPU_HEADER, [row], "gpu_usage")
    (converted,) = raw.to_pylist()
    assert (converted["node"], converted["namespace"], converted["pod"]) == ("n&lt;1&gt;", "ns&amp;x", "p&#x27;1")
    assert converted["gpu_uuid"] == "GPU-&lt;1&gt;"
    assert converted["gpu_vendor_name"] == "ven&quot;dor"
    # koku escapes first, so the entities' letters survive the clean-up: 'A100 &amp; &lt;b&gt;'
    assert converted["gpu_model_name"] == "A100 amp lt b gt"
    # the MIG columns are not in koku's list of sanitised fields
    assert (converted["mig_instance_id"], converted["mig_strategy"]) == ("MIG-<1>", "mi<x>ed")


def test_gpu_blank_metrics_are_zero_and_no_gpu_row_is_an_anomaly(tmp_path):
    rows = [gpu_row(DAY, 0, gpu_pod_uptime=""), gpu_row(DAY, 1, gpu_memory_capacity_mib=2e18)]
    raw, _ = ingest_rows(tmp_path, GPU_HEADER, rows, "gpu_usage")
    # koku's 1e18 thresholds cover pod and storage metrics only
    assert raw["gpu_pod_uptime"].to_pylist() == [0.0, 1800.0]
    assert raw["gpu_memory_capacity_mib"].to_pylist() == [40960.0, 2e18]


def test_gpu_daily_table_per_gpu_and_mig_instance(tmp_path):
    rows = gpu_rows_of_one_hour(0) + gpu_rows_of_one_hour(1)
    _, daily = ingest_rows(tmp_path, GPU_HEADER, rows, "gpu_usage")
    by_key = by_pod_and_instance(daily)
    assert set(daily["interval_start"].to_pylist()) == {MIDNIGHT}
    # one row per (node, namespace, pod, gpu, MIG instance); uptime summed over the two hours, the rest max
    assert {key: row["gpu_pod_uptime"] for key, row in by_key.items()} == {
        ("trainer", ""): 2 * 1800.0,
        ("infer", "MIG-1"): 2 * 900.0,
        ("infer", "MIG-2"): 2 * 900.0,
        ("old", None): 2 * 3600.0,  # the cleared instance id is a group of its own
        ("odd", "MIG-4"): 2 * 3600.0,
    }
    assert mig_fields(by_key[("infer", "MIG-2")]) == ("MIG-2", "3g.40gb", "mixed", 3.0, 40960.0, 7.0)
    assert mig_fields(by_key[("trainer", "")]) == ("", "", "", None, None, None)
    assert mig_fields(by_key[("old", None)]) == (None,) * 6
    assert by_key[("infer", "MIG-1")]["gpu_model_name"] == "NVIDIA A100 SXM4 80GB"
    assert by_key[("infer", "MIG-1")]["gpu_memory_capacity_mib"] == 81920.0
    assert by_key[("trainer", "")]["report_period_end"] == dt.datetime(2026, 11, 1)


def test_gpu_report_of_an_operator_without_mig_columns(tmp_path):
    rows = [gpu_row(DAY, 0), gpu_row(DAY, 1)]
    raw, daily = ingest_rows(tmp_path, GPU_HEADER_WITHOUT_MIG, rows, "gpu_usage")
    # recognised as a GPU report; koku adds the MIG columns, empty
    assert [mig_fields(row) for row in raw.to_pylist()] == [(None,) * 6] * 2
    (day,) = daily.to_pylist()
    assert mig_fields(day) == (None,) * 6
    assert day["gpu_pod_uptime"] == 3600.0


def test_gpu_header_missing_a_required_column_names_it(tmp_path):
    header = [c for c in GPU_HEADER if c != "gpu_pod_uptime"]
    payload = write_payload(tmp_path / "payload", [(header, [gpu_row(DAY, 0)])])
    with pytest.raises(InputDataError) as error:
        ingest(payload, open_data_root(str(tmp_path / "root")), source_uuid=SOURCE)
    assert error.value.column == "gpu_pod_uptime"
    assert "gpu_usage" in str(error.value)


# --- VM rows -----------------------------------------------------------------------------------------------


def test_vm_row_values_and_sanitised_identifiers_and_labels(tmp_path):
    row = vm_row(
        DAY, 0, vm_name="db&1", vm_os="<rhel>", vm_instance_type='u1."large"', vm_device="disk'0",
        vm_guest_os_name="Red Hat <EL>", vm_volume_mode="Block&File", vm_persistentvolumeclaim_name="pvc<1>",
        vm_labels="label_vm_kubevirt_io_name:db|label_url:http://x|nocolon|label_my_label_tier:a&b",
    )  # fmt: skip
    raw, _ = ingest_rows(tmp_path, VM_HEADER, [row], "vm_usage")
    (converted,) = raw.to_pylist()
    # koku's validator escapes vm_name, vm_os, vm_instance_type and vm_device ...
    assert converted["vm_name"] == "db&amp;1"
    assert converted["vm_os"] == "&lt;rhel&gt;"
    assert converted["vm_instance_type"] == "u1.&quot;large&quot;"
    assert converted["vm_device"] == "disk&#x27;0"
    # ... not the guest OS, the volume mode or the claim name, nor label values
    assert converted["vm_guest_os_name"] == "Red Hat <EL>"
    assert converted["vm_volume_mode"] == "Block&File"
    assert converted["vm_persistentvolumeclaim_name"] == "pvc<1>"
    # every 'label_' goes (my_label_tier -> my_tier); the piece with two ':' and the one without are dropped
    assert converted["vm_labels"] == '{"vm_kubevirt_io_name": "db", "my_tier": "a&b"}'
    assert converted["resource_id"] == "i-virt"
    assert converted["vm_cpu_usage_total_seconds"] == 1.5 * HOUR
    assert converted["vm_memory_request_byte_seconds"] == 8.0 * GIB * HOUR
    assert converted["vm_disk_allocated_size_byte_seconds"] == 30.0 * GIB * HOUR
    assert converted["interval_end"] == dt.datetime(2026, 10, 31, 0, 59, 59)


def test_vm_daily_table_sums_seconds_and_takes_the_max_of_sizes(tmp_path):
    rows = [
        vm_row(DAY, 0),
        vm_row(DAY, 1, vm_uptime_total_seconds=1800, vm_cpu_usage_total_seconds=2.5 * HOUR, vm_cpu_request_cores=3,
               vm_memory_request_bytes=10 * GIB, vm_os="rhel9.4"),
        # another label set is another daily row (vm_labels is a group key)
        vm_row(DAY, 2, vm_labels="label_vm_kubevirt_io_name:rhel9|label_app:cache"),
    ]  # fmt: skip
    _, daily = ingest_rows(tmp_path, VM_HEADER, rows, "vm_usage")
    by_labels = {row["vm_labels"]: row for row in daily.to_pylist()}
    db = by_labels['{"vm_kubevirt_io_name": "rhel9", "app": "db"}']
    assert (db["namespace"], db["node"], db["vm_name"], db["interval_start"]) == ("vms", "virt-node", "rhel9", MIDNIGHT)
    assert db["vm_uptime_total_seconds"] == 3600.0 + 1800.0
    assert db["vm_cpu_usage_total_seconds"] == 1.5 * HOUR + 2.5 * HOUR
    assert db["vm_cpu_request_cores"] == 3.0
    assert db["vm_cpu_request_core_seconds"] == 2 * 2.0 * HOUR  # as reported per row, summed
    assert db["vm_memory_request_bytes"] == 10.0 * GIB
    assert db["vm_memory_usage_byte_seconds"] == 2 * 6.0 * GIB * HOUR
    assert db["vm_disk_allocated_size_byte_seconds"] == 2 * 30.0 * GIB * HOUR
    assert db["vm_os"] == "rhel9.4"  # max of 'rhel9' and 'rhel9.4'
    assert db["resource_id"] == "i-virt"
    cache = by_labels['{"vm_kubevirt_io_name": "rhel9", "app": "cache"}']
    assert cache["vm_uptime_total_seconds"] == 3600.0


def test_no_vm_row_is_an_anomaly(tmp_path):
    raw, _ = ingest_rows(tmp_path, VM_HEADER, [vm_row(DAY, 0, vm_memory_usage_byte_seconds=2e18)], "vm_usage")
    assert raw["vm_memory_usage_byte_seconds"].to_pylist() == [2e18]


# --- Parquet layout ----------------------------------------------------------------------------------------

TS, TEXT, REAL, INTEGER = pa.timestamp("ms"), pa.string(), pa.float64(), pa.int64()
PERIOD = [("report_period_start", TS), ("report_period_end", TS)]
INTERVAL = [("interval_start", TS), ("interval_end", TS)]
GPU_RAW = [
    *PERIOD, *INTERVAL,
    ("node", TEXT), ("namespace", TEXT), ("pod", TEXT), ("gpu_uuid", TEXT), ("gpu_model_name", TEXT),
    ("gpu_vendor_name", TEXT), ("gpu_memory_capacity_mib", REAL), ("gpu_pod_uptime", REAL),
    ("mig_instance_id", TEXT), ("mig_profile", TEXT), ("mig_strategy", TEXT),
    ("mig_slice_count", INTEGER), ("mig_memory_capacity_mib", INTEGER), ("gpu_max_slices", INTEGER),
]  # fmt: skip
GPU_DAILY = [
    ("node", TEXT), ("namespace", TEXT), ("pod", TEXT), ("gpu_uuid", TEXT), ("mig_instance_id", TEXT),
    ("interval_start", TS), *PERIOD,
    ("gpu_model_name", TEXT), ("gpu_vendor_name", TEXT), ("gpu_memory_capacity_mib", REAL), ("gpu_pod_uptime", REAL),
    ("mig_profile", TEXT), ("mig_slice_count", REAL), ("gpu_max_slices", REAL), ("mig_memory_capacity_mib", REAL),
    ("mig_strategy", TEXT),
]  # fmt: skip
VM_SIZES_AND_SECONDS = [
    ("vm_uptime_total_seconds", REAL), ("vm_cpu_limit_cores", REAL), ("vm_cpu_limit_core_seconds", REAL),
    ("vm_cpu_request_cores", REAL), ("vm_cpu_request_core_seconds", REAL), ("vm_cpu_request_sockets", REAL),
    ("vm_cpu_request_socket_seconds", REAL), ("vm_cpu_request_threads", REAL), ("vm_cpu_request_thread_seconds", REAL),
    ("vm_cpu_usage_total_seconds", REAL), ("vm_memory_limit_bytes", REAL), ("vm_memory_limit_byte_seconds", REAL),
    ("vm_memory_request_bytes", REAL), ("vm_memory_request_byte_seconds", REAL), ("vm_memory_usage_byte_seconds", REAL),
    ("vm_device", TEXT), ("vm_volume_mode", TEXT), ("vm_persistentvolumeclaim_name", TEXT),
    ("vm_disk_allocated_size_byte_seconds", REAL),
]  # fmt: skip
VM_NAMES = [
    ("vm_instance_type", TEXT), ("vm_os", TEXT), ("vm_guest_os_arch", TEXT), ("vm_guest_os_name", TEXT),
    ("vm_guest_os_version", TEXT),
]  # fmt: skip
VM_RAW = [
    *PERIOD, *INTERVAL, ("node", TEXT), ("resource_id", TEXT), ("namespace", TEXT), ("vm_name", TEXT),
    *VM_NAMES, *VM_SIZES_AND_SECONDS, ("vm_labels", TEXT),
]  # fmt: skip
VM_DAILY = [
    ("namespace", TEXT), ("node", TEXT), ("vm_name", TEXT), ("vm_labels", TEXT), ("interval_start", TS),
    *PERIOD, ("resource_id", TEXT), *VM_NAMES, *VM_SIZES_AND_SECONDS,
]  # fmt: skip


@pytest.mark.parametrize(
    ("header", "row", "report_type", "raw_columns", "daily_columns"),
    [
        (GPU_HEADER, gpu_row(DAY, 0), "gpu_usage", GPU_RAW, GPU_DAILY),
        (GPU_HEADER_WITHOUT_MIG, gpu_row(DAY, 0), "gpu_usage", GPU_RAW, GPU_DAILY),
        (VM_HEADER, vm_row(DAY, 0), "vm_usage", VM_RAW, VM_DAILY),
    ],
)
def test_parquet_columns_and_types(tmp_path, header, row, report_type, raw_columns, daily_columns):
    raw, daily = ingest_rows(tmp_path, header, [row], report_type)
    assert [(f.name, f.type) for f in raw.schema] == raw_columns
    assert [(f.name, f.type) for f in daily.schema] == daily_columns


def test_keys_of_the_vm_and_gpu_datasets(tmp_path):
    payload = write_payload(tmp_path / "payload", [
        (POD_HEADER, [pod_row(DAY, 0)]),
        (VM_HEADER, [vm_row(DAY, 23), vm_row("2026-11-01", 0)]),
        (GPU_HEADER, [gpu_row(DAY, 23)]),
    ])  # fmt: skip
    root = tmp_path / "root"
    ingest(payload, open_data_root(str(root)), source_uuid=SOURCE)
    keys = [key for key in parquet_files(root) if "/pod_usage/" not in key]
    october, november = "year=2026/month=10", "year=2026/month=11"
    assert sorted(keys) == sorted([
        f"data/parquet/10001/OCP/vm_usage/source={SOURCE}/{october}/vm_usage.{DAY}.{MANIFEST}.1_0.parquet",
        f"data/parquet/10001/OCP/vm_usage/source={SOURCE}/{november}/vm_usage.2026-11-01.{MANIFEST}.1_0.parquet",
        f"data/parquet/daily/10001/OCP/vm_usage/source={SOURCE}/{october}/vm_usage.{DAY}.{MANIFEST}.1_daily_0.parquet",
        f"data/parquet/daily/10001/OCP/vm_usage/source={SOURCE}/{november}/"
        f"vm_usage.2026-11-01.{MANIFEST}.1_daily_0.parquet",
        f"data/parquet/10001/OCP/gpu_usage/source={SOURCE}/{october}/gpu_usage.{DAY}.{MANIFEST}.2_0.parquet",
        f"data/parquet/daily/10001/OCP/gpu_usage/source={SOURCE}/{october}/gpu_usage.{DAY}.{MANIFEST}.2_daily_0.parquet",
    ])  # fmt: skip


# --- generate -> ingest with the shipped scenario ----------------------------------------------------------


@pytest.fixture(scope="module")
def gpu_vm_scenario(tmp_path_factory):
    root = tmp_path_factory.mktemp("gpu-vm-root")
    cache = tmp_path_factory.mktemp("nise-cache")
    return root, generate(open_data_root(str(root)), yaml_path=SCENARIO_DIR / "gpu_vm.yml", cache_dir=cache)


def test_generated_gpu_and_vm_rows_per_report_type(gpu_vm_scenario):
    _, result = gpu_vm_scenario
    day = dt.date(2026, 10, 31)
    four_pods, four_gpus_or_slices, one_vm, one_claim, two_nodes, two_namespaces = 4, 4, 1, 1, 2, 2
    assert result.ingest.rows == {
        ("pod_usage", day): four_pods * 24,
        ("gpu_usage", day): four_gpus_or_slices * 24,
        ("vm_usage", day): one_vm * 24,
        ("storage_usage", day): one_claim * 24,
        ("node_labels", day): two_nodes * 24,
        ("namespace_labels", day): two_namespaces * 24,
    }
    assert result.ingest.files_skipped == []


def test_generated_gpu_daily_values(gpu_vm_scenario):
    root, _ = gpu_vm_scenario
    by_key = by_pod_and_instance(read_table(root, "daily", "gpu_usage"))
    # nise names a YAML GPU by uuid5 of node, pod and position; its MIG slices share that uuid
    trainer_gpu = f"GPU-{uuid.uuid5(uuid.NAMESPACE_DNS, 'nise.ocp.gpu.gpu-0.trainer-0.0')}"
    inference_gpu = f"GPU-{uuid.uuid5(uuid.NAMESPACE_DNS, 'nise.ocp.gpu.gpu-0.inference-0.0')}"
    trainer = by_key[("trainer-0", "")]
    assert trainer["gpu_uuid"] == trainer_gpu
    assert (trainer["gpu_model_name"], trainer["gpu_vendor_name"]) == ("H100", "nvidia")
    assert trainer["gpu_pod_uptime"] == 3600.0 * 24
    assert mig_fields(trainer) == ("", "", "", None, None, None)
    small, large = by_key[("inference-0", "MIG-a100-slice-1")], by_key[("inference-0", "MIG-a100-slice-2")]
    assert small["gpu_uuid"] == large["gpu_uuid"] == inference_gpu
    assert small["gpu_model_name"] == "A100 SXM4 40GB"
    assert small["gpu_pod_uptime"] == large["gpu_pod_uptime"] == 1800.0 * 24
    assert mig_fields(small) == ("MIG-a100-slice-1", "1g.5gb", "mixed", 1.0, 5.0 * 1024, 7.0)
    assert mig_fields(large) == ("MIG-a100-slice-2", "3g.20gb", "mixed", 3.0, 20.0 * 1024, 7.0)
    legacy = by_key[("legacy-0", None)]
    assert mig_fields(legacy) == (None,) * 6
    assert legacy["gpu_memory_capacity_mib"] == 15360.0


def test_generated_vm_daily_values(gpu_vm_scenario):
    root, _ = gpu_vm_scenario
    (vm,) = read_table(root, "daily", "vm_usage").to_pylist()
    day_seconds = 24 * HOUR
    assert (vm["vm_name"], vm["namespace"], vm["node"], vm["resource_id"]) == ("rhel9-db", "vms", "virt-0", "i-virt000")
    assert vm["vm_labels"] == '{"vm_kubevirt_io_name": "rhel9-db", "app": "db", "kubevirt_io": "virt-launcher"}'
    assert (vm["vm_instance_type"], vm["vm_os"], vm["vm_guest_os_version"]) == ("u1.large", "rhel9", "9.4")
    assert vm["vm_uptime_total_seconds"] == day_seconds
    assert vm["vm_cpu_usage_total_seconds"] == pytest.approx(1.5 * day_seconds, rel=1e-12)
    assert vm["vm_cpu_request_cores"] == 2.0
    assert vm["vm_cpu_request_socket_seconds"] == 1.0 * day_seconds
    assert vm["vm_cpu_request_thread_seconds"] == 2.0 * day_seconds
    assert vm["vm_memory_limit_bytes"] == 16.0 * GIB
    assert vm["vm_memory_usage_byte_seconds"] == pytest.approx(6.0 * GIB * day_seconds, rel=1e-12)
    assert vm["vm_persistentvolumeclaim_name"] == "rhel9-db-rootdisk"
    assert vm["vm_disk_allocated_size_byte_seconds"] == 30.0 * GIB * day_seconds
    # nise also runs the VM as a pod labelled with its name
    pods = read_table(root, "daily", "pod_usage").to_pylist()
    (launcher,) = [pod for pod in pods if pod["pod"] == "virt-launcher-rhel9-db"]
    assert '"vm_kubevirt_io_name": "rhel9-db"' in launcher["pod_labels"]
