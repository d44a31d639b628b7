"""Helpers for the ingest tests: hand-written operator CSVs and payloads, and reading a data root back."""

import csv
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

# Column order as nise writes them (nise/generators/ocp/ocp_generator.py), spelled out rather than imported.
COMMON = ["report_period_start", "report_period_end", "interval_start", "interval_end"]
POD_HEADER = [
    *COMMON,
    "pod", "namespace", "node", "resource_id",
    "pod_usage_cpu_core_seconds", "pod_request_cpu_core_seconds", "pod_limit_cpu_core_seconds",
    "pod_usage_memory_byte_seconds", "pod_request_memory_byte_seconds", "pod_limit_memory_byte_seconds",
    "node_capacity_cpu_cores", "node_capacity_cpu_core_seconds",
    "node_capacity_memory_bytes", "node_capacity_memory_byte_seconds",
    "pod_labels",
]  # fmt: skip
STORAGE_HEADER = [
    *COMMON,
    "namespace", "pod", "node", "persistentvolumeclaim", "persistentvolume", "storageclass",
    "csi_driver", "csi_volume_handle",
    "persistentvolumeclaim_capacity_bytes", "persistentvolumeclaim_capacity_byte_seconds",
    "volume_request_storage_byte_seconds", "persistentvolumeclaim_usage_byte_seconds",
    "persistentvolume_labels", "persistentvolumeclaim_labels",
]  # fmt: skip
NODE_LABEL_HEADER = [*COMMON, "node", "node_labels"]
NAMESPACE_LABEL_HEADER = [*COMMON, "namespace", "namespace_labels"]
GPU_HEADER = [
    *COMMON, "node", "namespace", "pod", "gpu_uuid", "gpu_model_name", "gpu_vendor_name",
    "gpu_memory_capacity_mib", "gpu_pod_uptime", "mig_instance_id", "mig_profile", "mig_strategy",
]  # fmt: skip
VM_HEADER = [
    *COMMON,
    "node", "resource_id", "namespace", "vm_name", "vm_instance_type", "vm_os",
    "vm_guest_os_arch", "vm_guest_os_name", "vm_guest_os_version", "vm_uptime_total_seconds",
    "vm_cpu_limit_cores", "vm_cpu_limit_core_seconds", "vm_cpu_request_cores", "vm_cpu_request_core_seconds",
    "vm_cpu_request_sockets", "vm_cpu_request_socket_seconds", "vm_cpu_request_threads",
    "vm_cpu_request_thread_seconds", "vm_cpu_usage_total_seconds",
    "vm_memory_limit_bytes", "vm_memory_limit_byte_seconds", "vm_memory_request_bytes",
    "vm_memory_request_byte_seconds", "vm_memory_usage_byte_seconds",
    "vm_device", "vm_volume_mode", "vm_persistentvolumeclaim_name", "vm_disk_allocated_size_byte_seconds",
    "vm_labels",
]  # fmt: skip
# A GPU report from an operator that predates MIG (koku adds the MIG columns itself).
GPU_HEADER_WITHOUT_MIG = GPU_HEADER[: GPU_HEADER.index("mig_instance_id")]

GIB = 2**30


def stamp(day: str, hour: int, minute: int = 0, second: int = 0) -> str:
    """A timestamp as the operator writes it."""
    return f"{day} {hour:02d}:{minute:02d}:{second:02d} +0000 UTC"


def period(day: str) -> dict[str, str]:
    """report_period_start/end of the month of `day`."""
    year, month = int(day[:4]), int(day[5:7])
    next_year, next_month = (year + 1, 1) if month == 12 else (year, month + 1)
    return {
        "report_period_start": f"{year:04d}-{month:02d}-01 00:00:00 +0000 UTC",
        "report_period_end": f"{next_year:04d}-{next_month:02d}-01 00:00:00 +0000 UTC",
    }


def hourly(day: str, hour: int) -> dict[str, str]:
    return period(day) | {"interval_start": stamp(day, hour), "interval_end": stamp(day, hour, 59, 59)}


def pod_row(day: str, hour: int, **values: object) -> dict[str, object]:
    """One pod-hour: 1 core usage, 2 requested, 4 limit; 1/2/4 GiB; a 4-core 16 GiB node; override any column."""
    row = hourly(day, hour) | {
        "pod": "pod-a",
        "namespace": "ns-a",
        "node": "node-a",
        "resource_id": "i-node-a",
        "pod_usage_cpu_core_seconds": 3600.0,
        "pod_request_cpu_core_seconds": 7200.0,
        "pod_limit_cpu_core_seconds": 14400,
        "pod_usage_memory_byte_seconds": 3600 * GIB,
        "pod_request_memory_byte_seconds": 2 * 3600 * GIB,
        "pod_limit_memory_byte_seconds": 4 * 3600 * GIB,
        "node_capacity_cpu_cores": 4,
        "node_capacity_cpu_core_seconds": 14400,
        "node_capacity_memory_bytes": 16 * GIB,
        "node_capacity_memory_byte_seconds": 16 * GIB * 3600,
        "pod_labels": "label_app:web",
    }
    return row | values


def storage_row(day: str, hour: int, **values: object) -> dict[str, object]:
    """One PVC-hour: a 10 GiB claim on a 20 GiB volume, 5 GiB used; override any column."""
    row = hourly(day, hour) | {
        "namespace": "ns-a",
        "pod": "pod-a",
        "node": "node-a",
        "persistentvolumeclaim": "pvc-a",
        "persistentvolume": "pv-a",
        "storageclass": "gp3",
        "csi_driver": "ebs.csi.aws.com",
        "csi_volume_handle": "vol-1",
        "persistentvolumeclaim_capacity_bytes": 10 * GIB,
        "persistentvolumeclaim_capacity_byte_seconds": 10 * GIB * 3600,
        "volume_request_storage_byte_seconds": 20 * GIB * 3600,
        "persistentvolumeclaim_usage_byte_seconds": 5 * GIB * 3600,
        "persistentvolume_labels": "label_tier:gold",
        "persistentvolumeclaim_labels": "label_claim:yes",
    }
    return row | values


def node_label_row(day: str, hour: int, **values: object) -> dict[str, object]:
    return hourly(day, hour) | {"node": "node-a", "node_labels": "label_node_role_kubernetes_io:infra"} | values


def namespace_label_row(day: str, hour: int, **values: object) -> dict[str, object]:
    return hourly(day, hour) | {"namespace": "ns-a", "namespace_labels": "label_team:blue"} | values


def gpu_row(day: str, hour: int, **values: object) -> dict[str, object]:
    """One GPU-hour of a dedicated GPU as the operator sends it: a 40 GiB A100 used 1800 s; override any column."""
    row = hourly(day, hour) | {
        "node": "gpu-node",
        "namespace": "ml",
        "pod": "trainer",
        "gpu_uuid": "GPU-0001",
        "gpu_model_name": "A100",
        "gpu_vendor_name": "nvidia_com_gpu",
        "gpu_memory_capacity_mib": 40960,
        "gpu_pod_uptime": 1800,
        "mig_instance_id": "",
        "mig_profile": "",
        "mig_strategy": "",
    }
    return row | values


def vm_row(day: str, hour: int, **values: object) -> dict[str, object]:
    """One VM-hour up for 3600 s: 4 cores limit, 2 requested (1 socket, 2 threads), 1.5 used; 16 GiB limit,
    8 requested, 6 used; a 30 GiB root disk; override any column."""
    seconds = 3600
    row = hourly(day, hour) | {
        "node": "virt-node",
        "resource_id": "i-virt",
        "namespace": "vms",
        "vm_name": "rhel9",
        "vm_instance_type": "u1.large",
        "vm_os": "rhel9",
        "vm_guest_os_arch": "amd64",
        "vm_guest_os_name": "Red Hat Enterprise Linux",
        "vm_guest_os_version": "9.4",
        "vm_uptime_total_seconds": seconds,
        "vm_cpu_limit_cores": 4,
        "vm_cpu_limit_core_seconds": 4 * seconds,
        "vm_cpu_request_cores": 2,
        "vm_cpu_request_core_seconds": 2 * seconds,
        "vm_cpu_request_sockets": 1,
        "vm_cpu_request_socket_seconds": 1 * seconds,
        "vm_cpu_request_threads": 2,
        "vm_cpu_request_thread_seconds": 2 * seconds,
        "vm_cpu_usage_total_seconds": 1.5 * seconds,
        "vm_memory_limit_bytes": 16 * GIB,
        "vm_memory_limit_byte_seconds": 16 * GIB * seconds,
        "vm_memory_request_bytes": 8 * GIB,
        "vm_memory_request_byte_seconds": 8 * GIB * seconds,
        "vm_memory_usage_byte_seconds": 6 * GIB * seconds,
        "vm_device": "rootdisk",
        "vm_volume_mode": "Block",
        "vm_persistentvolumeclaim_name": "rhel9-rootdisk",
        "vm_disk_allocated_size_byte_seconds": 30 * GIB * 3600,
        "vm_labels": "label_vm_kubevirt_io_name:rhel9|label_app:db",
    }
    return row | values


def write_csv(path: Path, header: list[str], rows: list[dict[str, object]]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=header, extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_payload(
    directory: Path,
    files: list[tuple[list[str], list[dict[str, object]]]],
    *,
    cluster_id: str = "cluster-1",
    manifest_uuid: str = "11111111-2222-3333-4444-555555555555",
) -> Path:
    """An operator upload: manifest.json plus `{uuid}_openshift_report.{i}.csv` in the listed order."""
    names = []
    for number, (header, rows) in enumerate(files):
        name = f"{manifest_uuid}_openshift_report.{number}.csv"
        write_csv(directory / name, header, rows)
        names.append(name)
    manifest = {
        "cluster_id": cluster_id,
        "uuid": manifest_uuid,
        "files": names,
        "version": "5.4.4",
        "date": "2026-10-31T00:00:00.000000+00:00",
    }
    (directory / "manifest.json").write_text(json.dumps(manifest), encoding="utf-8")
    return directory


def four_report_payload(directory: Path, days: tuple[str, ...] = ("2026-10-31",)) -> Path:
    """Pod, storage, node-label and namespace-label CSVs (files 0-3) with hours 0 and 23 of each day."""
    hours = [(day, hour) for day in days for hour in (0, 23)]
    return write_payload(directory, [
        (POD_HEADER, [pod_row(day, hour) for day, hour in hours]),
        (STORAGE_HEADER, [storage_row(day, hour) for day, hour in hours]),
        (NODE_LABEL_HEADER, [node_label_row(day, hour) for day, hour in hours]),
        (NAMESPACE_LABEL_HEADER, [namespace_label_row(day, hour) for day, hour in hours]),
    ])  # fmt: skip


def parquet_files(root: Path) -> dict[str, Path]:
    """Every Parquet file below a local data root, by key."""
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*.parquet"))}


def all_bytes(root: Path) -> dict[str, bytes]:
    """Every file below a local data root, by key."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def read_table(root: Path, kind: str, report_type: str) -> pa.Table:
    """All rows of one report type ('raw' or 'daily'), concatenated in key order."""
    prefix = "data/parquet/daily/" if kind == "daily" else "data/parquet/"
    tables = [
        pq.read_table(path)
        for key, path in parquet_files(root).items()
        if key.startswith(prefix) and f"/OCP/{report_type}/" in key and (kind == "daily") == ("/daily/" in key)
    ]
    return pa.concat_tables(tables)
