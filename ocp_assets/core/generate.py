"""Generate OCP usage with nise from a static YAML and ingest it into a data root (contract 7).

nise is slow (about 18 s per 100K hourly pod rows), so its payload is cached by a hash of the YAML text, the
cluster id and the nise version. The scale YAMLs (`--scale 20k|100k|1m|10m`) are built here from a small
spec instead of being shipped: the 10m one alone is 24 MB. Every value nise would otherwise draw at random
is given explicitly, so a YAML always produces the same CSV values.
"""

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from importlib.metadata import version
from pathlib import Path

import yaml

from ocp_assets.core.errors import ConfigurationError, InputDataError
from ocp_assets.core.ingest import IngestResult, ProgressCallback, ingest
from ocp_assets.core.scales import DEFAULT_ACCOUNT, SCALES, Scale
from ocp_assets.core.storage import DataRoot

SCENARIO_DIR = Path(__file__).resolve().parent.parent / "scenarios"
CACHE_ENV = "OCP_ASSETS_CACHE"
DEFAULT_CACHE_DIR = Path.home() / ".cache" / "ocp_assets" / "nise"
NISE_COPY = "scenario.yml"  # the YAML's private copy nise runs on (it opens the file read-write)
PAYLOAD_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/project-koku/koku/ocp_assets/nise-payload")


@dataclass
class GenerateResult:
    payload_dir: Path
    cache_hit: bool
    nise_seconds: float
    ingest_seconds: float
    ingest: IngestResult


def generate(
    data_root: DataRoot,
    *,
    scale: str | None = None,
    yaml_path: str | Path | None = None,
    cluster_id: str | None = None,
    account: str = DEFAULT_ACCOUNT,
    source_uuid: str | None = None,
    cluster_alias: str | None = None,
    cache_dir: str | Path | None = None,
    progress: ProgressCallback | None = None,
) -> GenerateResult:
    """Run nise on a scale (see SCALES) or a static YAML file, or reuse its cached payload, then ingest it.

    The cluster id defaults to `ocp-assets-<scale or YAML file stem>`. `progress` is told ("nise", 0, 0) when nise
    starts (its length is unknown) and then the ingest's phases.
    """
    if scale is not None and yaml_path is None:
        if scale not in SCALES:
            raise ConfigurationError(f"unknown scale {scale!r}; choose one of {', '.join(SCALES)}")
        yaml_text = scale_yaml(scale)
        name, label = scale, f"scale {scale}"
    elif yaml_path is not None and scale is None:
        path = Path(yaml_path)
        try:
            yaml_text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise InputDataError(f"unreadable nise YAML: {exc}", file=str(path)) from exc
        check_static_report(yaml_text, str(path))
        name, label = path.stem, str(path)
    else:
        raise ConfigurationError("give exactly one of a scale and a YAML file")
    cluster_id = cluster_id or f"ocp-assets-{name}"

    started = time.monotonic()
    payload_dir, cache_hit = nise_payload(
        yaml_text, cluster_id, cache_root(cache_dir), yaml_name=label, progress=progress
    )
    nise_seconds = time.monotonic() - started
    started = time.monotonic()
    result = ingest(
        payload_dir,
        data_root,
        account=account,
        source_uuid=source_uuid,
        cluster_id=cluster_id,
        cluster_alias=cluster_alias,
        progress=progress,
    )
    return GenerateResult(payload_dir, cache_hit, nise_seconds, time.monotonic() - started, result)


def cache_root(cache_dir: str | Path | None = None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir)
    return Path(os.environ[CACHE_ENV]) if os.environ.get(CACHE_ENV) else DEFAULT_CACHE_DIR


def cache_key(yaml_text: str, cluster_id: str) -> str:
    return hashlib.sha256("\0".join((yaml_text, cluster_id, version("koku-nise"))).encode()).hexdigest()[:32]


def check_static_report(yaml_text: str, file: str) -> None:
    """Refuse a YAML nise cannot read before nise runs, naming the user's file and the place (nise would name its
    private copy in a traceback)."""
    try:
        document = yaml.safe_load(yaml_text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or type(exc).__name__
        raise InputDataError(f"not valid YAML: {problem}{where}", file=file).with_hint(
            "correct the YAML (nise's static report format)"
        ) from None
    generators = document.get("generators") if isinstance(document, dict) else None
    if not isinstance(generators, list) or not generators:
        raise InputDataError("not a nise static report: no 'generators' list at the top", file=file).with_hint(
            "see nise's example_ocp_static_data.yml for the format"
        )


def nise_payload(
    yaml_text: str, cluster_id: str, cache_dir: Path, *, yaml_name: str, progress: ProgressCallback | None = None
) -> tuple[Path, bool]:
    """The nise `--insights-upload` directory for this YAML and cluster id, and whether it came from the cache."""
    key = cache_key(yaml_text, cluster_id)
    cached = cache_dir / key
    if cached.is_dir():
        return cached, True
    cache_dir.mkdir(parents=True, exist_ok=True)
    if progress is not None:
        progress("nise", 0, 0)
    with tempfile.TemporaryDirectory(prefix=f".{key}-", dir=cache_dir) as work:
        work_dir = Path(work)
        # nise opens the YAML read-write and stages payloads under $TMPDIR/payload, so both stay private.
        (work_dir / NISE_COPY).write_text(yaml_text, encoding="utf-8")
        (work_dir / "tmp").mkdir()
        payload = work_dir / "payload"
        payload.mkdir()
        command = [
            sys.executable, "-m", "nise", "report", "ocp",
            "--static-report-file", NISE_COPY,
            "--ocp-cluster-id", cluster_id,
            "--insights-upload", str(payload),
        ]  # fmt: skip
        completed = subprocess.run(
            command, cwd=work_dir, env=os.environ | {"TMPDIR": str(work_dir / "tmp")}, capture_output=True, text=True
        )
        manifests = sorted(payload.rglob("manifest.json"))
        if completed.returncode != 0 or not manifests:
            # nise's last line is its exception; it names the private copy, which means nothing to the user.
            output = (completed.stderr or completed.stdout).strip().replace(NISE_COPY, yaml_name)
            last = output.splitlines()[-1].strip() if output else "no output"
            error = InputDataError(f"nise failed (exit {completed.returncode}): {last}", file=yaml_name)
            error.details = output
            raise error.with_hint("correct the YAML; --verbose shows nise's own output")
        for manifest in manifests:
            _pin_manifest_uuid(manifest, key)
        try:
            payload.rename(cached)
        except OSError:
            if not cached.is_dir():  # a concurrent run that finished first is as good as ours
                raise
    return cached, False


def _pin_manifest_uuid(manifest_path: Path, key: str) -> None:
    """Replace nise's random manifest uuid by one derived from the cache key and month.

    The uuid names the Parquet files, so regenerating after the cache was cleared overwrites the same keys
    instead of adding a second copy of the data next to the first.
    """
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    old = manifest["uuid"]
    new = str(uuid.uuid5(PAYLOAD_NAMESPACE, f"{key}/{manifest_path.parent.name}"))
    renamed = []
    for name in manifest["files"]:
        renamed.append(name.replace(old, new))
        (manifest_path.parent / name).rename(manifest_path.parent / renamed[-1])
    manifest["uuid"] = new
    manifest["files"] = renamed
    manifest_path.write_text(json.dumps(manifest, indent=4), encoding="utf-8")


# --- scale YAMLs -------------------------------------------------------------------------------------------

START_DATE = "2026-10-01"
END_DATE = "2026-10-04"  # exclusive: 72 hours
HOURS = 72


@dataclass(frozen=True)
class Profile:
    """A pod's explicit nise settings; cores and GiB, usage for the full period."""

    cpu_request: float
    cpu_limit: float
    cpu_usage: float
    mem_request_gig: float
    mem_limit_gig: float
    mem_usage_gig: float
    pod_seconds: int = 3600


# Some pods use more than they request (effective usage = usage), some less (= request). Usage stays above 0
# and below the limit: nise replaces 0 by a random value and caps usage at the limit.
PROFILES = {
    #                        cpu: request limit usage   memory: request limit usage
    "web": Profile(0.1, 0.5, 0.05, 0.25, 1, 0.2),
    "api": Profile(0.2, 1, 0.35, 0.5, 2, 0.75),
    "batch": Profile(0.5, 2, 1.5, 1, 4, 0.5, pod_seconds=1800),
    "cache": Profile(0.1, 0.5, 0.02, 1, 2, 1.5),
    "db": Profile(0.5, 2, 0.4, 2, 4, 3),
    "dns": Profile(0.05, 0.1, 0.01, 0.1, 0.25, 0.05),
    "apiserver": Profile(1, 4, 1.8, 4, 8, 5.5),
    "etcd": Profile(0.5, 2, 0.3, 2, 4, 2.5),
    "monitoring": Profile(0.5, 2, 0.7, 2, 8, 4),
    "router": Profile(0.2, 1, 0.1, 0.25, 1, 0.3),
}
# One round of an application namespace's pods, by deployment. A namespace of n pods takes the first n of these
# rounds repeated (replicas numbered on: web-0..5, then web-6..11 in the second round), so its usage grows with n.
APP_DEPLOYMENTS = (("web", 6), ("api", 6), ("batch", 4), ("cache", 2), ("db", 2))
APP_NAMESPACE_SIZE = sum(size for _, size in APP_DEPLOYMENTS)
# Namespace n holds max(20, round(240 / (n + 1))) pods (240, 120, 80, 60, 48, 40, 34, 30, 27, 24, 22, then 20),
# as clusters have a few large applications and a long tail, so the top namespaces rank by size, not by name. A
# worker's last namespace takes the pods left (nise keeps a namespace of one generator on its one node).
LARGEST_NAMESPACE = 240
NODE_SIZES = {"master": (8, 32), "infra": (16, 64)}  # cores, GiB; workers: Scale.worker_cores
MEMORY_GIB_PER_CORE = 4
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
TEAMS = ("payments", "search", "checkout", "catalog", "identity", "ml", "data", "edge")
ENVIRONMENTS = ("prod", "stage", "dev")

NamespaceSpec = tuple[str, str, list[str], list[str]]  # name, labels scalar, pod lines, volume lines


def scale_yaml(name: str) -> str:
    """The nise static YAML of a scale.

    3 masters (pods in openshift-kube-apiserver make them masters), infra nodes (node label
    node_role_kubernetes_io:infra) and workers with application namespaces; a DNS daemonset pod on every
    node; PVs and PVCs with labels for databases and Prometheus plus one claimless PV; namespace labels
    everywhere. One nise generator per node, because within one generator nise keeps a namespace on a
    single node. Pods share their settings through YAML merge keys, which keeps the 10m YAML at 24 MB.
    """
    scale = SCALES[name]
    writer = _ScaleYamlWriter()
    platform_pods = _master_nodes(writer, scale.masters) + _infra_nodes(writer, scale.infra)
    _worker_nodes(writer, scale, app_pods=scale.pods - platform_pods - scale.workers)  # one DNS pod per worker
    header = [
        f"# {name}: {scale.pods} pods x {HOURS} hours = {scale.pods * HOURS} hourly pod rows; {scale.masters} masters,",
        f"# {scale.infra} infra and {scale.workers} worker nodes. Built by ocp_assets.core.generate.scale_yaml.",
    ]
    return "\n".join(header + _profile_anchors() + ["generators:"] + writer.lines) + "\n"


def _master_nodes(writer: "_ScaleYamlWriter", masters: int) -> int:
    """The master nodes: the API server and etcd (which make a node a master) and DNS; returns their pods."""
    platform_pods = 0
    for index in range(masters):
        node = f"master-{index}"
        apiserver = writer.pod(
            "apiserver",
            f"kube-apiserver-{node}",
            "pod_apiserver",
            "label_app:openshift-kube-apiserver|label_apiserver:true",
        )
        etcd = writer.pod("etcd", f"etcd-{node}", "pod_etcd", "label_app:etcd|label_etcd:true")
        writer.node(node, "master", ZONES[index % 3], [
            ("openshift-kube-apiserver", writer.namespace_labels("platform", "prod"), [apiserver], []),
            ("openshift-etcd", writer.namespace_labels("platform", "prod"), [etcd], []),
            writer.dns_namespace(node),
        ])  # fmt: skip
        platform_pods += 3
    return platform_pods


def _infra_nodes(writer: "_ScaleYamlWriter", infra: int) -> int:
    """The infra nodes: monitoring with a Prometheus volume, the router and DNS; returns their pods."""
    platform_pods = 0
    for index in range(infra):
        node = f"infra-{index}"
        prometheus = f"prometheus-k8s-{index}"
        monitoring = [
            writer.pod("monitoring", prometheus, "pod_prometheus",
                       "label_app_kubernetes_io_name:prometheus|label_app_kubernetes_io_version:2.55.1"),
            writer.pod("monitoring", f"alertmanager-main-{index}", "pod_alertmanager",
                       "label_app_kubernetes_io_name:alertmanager"),
            writer.pod("router", f"thanos-querier-{index}", "pod_thanos", "label_app_kubernetes_io_name:thanos-query"),
        ]  # fmt: skip
        router = writer.pod(
            "router", f"router-default-{index}", "pod_router",
            "label_ingresscontroller_operator_openshift_io_deployment_ingresscontroller:default",
        )  # fmt: skip
        writer.node(node, "infra", ZONES[index % 3], [
            ("openshift-monitoring", writer.namespace_labels("platform", "prod"), monitoring,
             writer.volume("openshift-monitoring", prometheus, 100, 42.5, "fast")),
            ("openshift-ingress", writer.namespace_labels("platform", "prod"), [router], []),
            writer.dns_namespace(node),
        ])  # fmt: skip
        platform_pods += 5
    return platform_pods


def _worker_nodes(writer: "_ScaleYamlWriter", scale: Scale, app_pods: int) -> None:
    """The worker nodes: DNS, then application namespaces until each worker has its share of `app_pods`."""
    namespace_number = 0
    for index in range(scale.workers):
        node = f"worker-{index:03d}"
        remaining = app_pods // scale.workers + (1 if index < app_pods % scale.workers else 0)
        dns_name, dns_labels, dns_pods, _ = writer.dns_namespace(node)
        # worker-000 also holds a claimless PV: a storage row with empty namespace, pod and claim (contract 1.1).
        unclaimed = writer.volume("openshift-dns", None, 50, 0, "standard") if index == 0 else []
        namespaces: list[NamespaceSpec] = [(dns_name, dns_labels, dns_pods, unclaimed)]
        while remaining:
            size = min(remaining, app_namespace_size(namespace_number))
            remaining -= size
            namespaces.append(writer.app_namespace(namespace_number, size))
            namespace_number += 1
        writer.node(node, "worker", ZONES[index % 3], namespaces, scale.worker_cores)


def app_namespace_size(number: int) -> int:
    """Pods of application namespace `number` (before a worker's last namespace is cut to the pods left)."""
    return max(APP_NAMESPACE_SIZE, round(LARGEST_NAMESPACE / (number + 1)))


def _yaml_string(text: str) -> str:
    """A YAML double-quoted scalar (label strings hold ':' and '|')."""
    return json.dumps(text)


def _resource_id(name: str) -> str:
    return hashlib.sha256(f"ocp-assets/{name}".encode()).hexdigest()[:17]


def _profile_anchors() -> list[str]:
    # nise reads only `generators`; the profiles block just defines the anchors the pods merge.
    lines = ["profiles:"]
    for name, p in PROFILES.items():
        lines.append(
            f"  {name}: &{name} {{cpu_request: {p.cpu_request}, cpu_limit: {p.cpu_limit},"
            f" mem_request_gig: {p.mem_request_gig}, mem_limit_gig: {p.mem_limit_gig},"
            f" pod_seconds: {p.pod_seconds}, cpu_usage: {{full_period: {p.cpu_usage}}},"
            f" mem_usage_gig: {{full_period: {p.mem_usage_gig}}}}}"
        )
    return lines


class _ScaleYamlWriter:
    """Emits one generator per node; a label string used by several objects is written once as an anchor."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.anchored: set[str] = set()

    def shared(self, anchor: str, text: str) -> str:
        if anchor in self.anchored:
            return f"*{anchor}"
        self.anchored.add(anchor)
        return f"&{anchor} {_yaml_string(text)}"

    def namespace_labels(self, team: str, environment: str) -> str:
        return self.shared(
            f"ns_{team}_{environment}",
            f"label_team:{team}|label_env:{environment}|label_openshift_io_cluster_monitoring:false",
        )

    def pod(self, profile: str, name: str, labels_anchor: str, labels: str) -> str:
        return f"{{<<: *{profile}, pod_name: {name}, labels: {self.shared(labels_anchor, labels)}}}"

    def dns_namespace(self, node: str) -> NamespaceSpec:
        labels = "label_app:dns-default|label_dns_operator_openshift_io_daemonset_dns:default"
        pod = self.pod("dns", f"dns-default-{node}", "pod_dns", labels)
        return ("openshift-dns", self.namespace_labels("platform", "prod"), [pod], [])

    def app_namespace(self, number: int, size: int) -> NamespaceSpec:
        namespace = f"app-{number:05d}"
        pods: list[str] = []
        volumes: list[str] = []
        rounds = -(-size // APP_NAMESPACE_SIZE)  # the deployments' rounds it needs, the last one cut at `size`
        replicas = [(d, r * n + i) for r in range(rounds) for d, n in APP_DEPLOYMENTS for i in range(n)][:size]
        for deployment, replica in replicas:
            pod = f"{namespace}-{deployment}-{replica}"
            labels = (
                f"label_app:{namespace}-{deployment}|label_app_kubernetes_io_component:{deployment}"
                f"|label_app_kubernetes_io_version:1.{number % 9}.{number % 4}"
            )
            pods.append(self.pod(deployment, pod, f"pod_{namespace.replace('-', '_')}_{deployment}", labels))
            if deployment == "db":
                volumes += self.volume(namespace, pod, 20, 7.25, "standard")
        labels = self.namespace_labels(TEAMS[number % len(TEAMS)], ENVIRONMENTS[number % len(ENVIRONMENTS)])
        return (namespace, labels, pods, volumes)

    def volume(self, namespace: str, pod: str | None, capacity_gig: int, usage_gig: float, tier: str) -> list[str]:
        volume = f"pv-{pod or namespace + '-unclaimed'}"
        lines = [
            f"                - volume_name: {volume}",
            "                  storage_class: gp3-csi",
            "                  csi_driver: ebs.csi.aws.com",
            f"                  csi_volume_handle: vol-{_resource_id(volume)}",
            f"                  volume_request_gig: {capacity_gig}",
            f"                  labels: {self.shared(f'pv_{tier}', f'label_storage_tier:{tier}|label_backup:daily')}",
        ]
        if pod is None:
            return [*lines, "                  volume_claims: []"]
        claim_labels = self.shared(
            f"pvc_{namespace.replace('-', '_')}", f"label_app:{namespace}|label_data_class:internal"
        )
        return [
            *lines,
            "                  volume_claims:",
            f"                    - volume_claim_name: data-{pod}",
            f"                      pod_name: {pod}",
            f"                      labels: {claim_labels}",
            f"                      capacity_gig: {capacity_gig}",
            f"                      volume_claim_usage_gig: {{full_period: {usage_gig}}}",
        ]

    def node(self, name: str, role: str, zone: str, namespaces: list[NamespaceSpec], cores: int = 0) -> None:
        cores, memory = NODE_SIZES[role] if role in NODE_SIZES else (cores, cores * MEMORY_GIB_PER_CORE)
        labels = (
            f"label_node_role_kubernetes_io:{role}|label_kubernetes_io_hostname:{name}"
            f"|label_topology_kubernetes_io_zone:{zone}|label_node_kubernetes_io_instance_type:m6i.{cores // 4}xlarge"
        )
        self.lines += [
            "  - OCPGenerator:",
            f"      start_date: '{START_DATE}'",
            f"      end_date: '{END_DATE}'",
            "      nodes:",
            f"        - node_name: {name}",
            f"          cpu_cores: {cores}",
            f"          memory_gig: {memory}",
            f"          resource_id: '{_resource_id(name)}'",
            f"          node_labels: {_yaml_string(labels)}",
            "          namespaces:",
        ]
        for namespace, namespace_labels, pods, volumes in namespaces:
            self.lines += [f"            {namespace}:", f"              namespace_labels: {namespace_labels}"]
            self.lines.append("              pods:")
            self.lines += [f"                - {pod}" for pod in pods]
            if volumes:
                self.lines.append("              volumes:")
                self.lines += volumes
