"""nise generation (contract 7): smoke scenario and 20k scale end to end, the payload cache, scale YAMLs, CLI."""

import datetime as dt
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from ocp_assets.cli import main
from ocp_assets.core.errors import InputDataError
from ocp_assets.core.generate import (
    SCALES,
    SCENARIO_DIR,
    cache_key,
    generate,
    scale_yaml,
)
from ocp_assets.core.ingest import read_cluster_registry
from ocp_assets.core.storage import open_data_root
from ocp_assets_tests.fixtures_ingest import GIB, all_bytes, read_table

pytestmark = pytest.mark.slow

SMOKE = SCENARIO_DIR / "smoke.yml"
SMOKE_DAYS = (dt.date(2026, 10, 31), dt.date(2026, 11, 1))
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("nise-cache")


@pytest.fixture(scope="module")
def smoke(tmp_path_factory, cache):
    root = tmp_path_factory.mktemp("smoke-root")
    return root, generate(open_data_root(str(root)), yaml_path=SMOKE, cache_dir=cache)


def test_smoke_scenario_rows_per_report_type_and_day(smoke):
    root, result = smoke
    assert not result.cache_hit
    three_pods, one_claim, three_nodes, three_namespaces = 3 * 24, 24, 3 * 24, 3 * 24
    assert result.ingest.rows == {
        (report_type, day): rows
        for day in SMOKE_DAYS
        for report_type, rows in (("pod_usage", three_pods), ("storage_usage", one_claim),
                                  ("node_labels", three_nodes), ("namespace_labels", three_namespaces))
    }  # fmt: skip
    raw = read_table(root, "raw", "pod_usage").to_pandas()
    raw["day"] = raw["interval_start"].dt.date
    assert set(raw.groupby(["pod", "day"]).size()) == {24}
    months = {re.search(r"/month=(\d\d)/", key)[1] for key in result.ingest.keys_written if "/month=" in key}
    assert months == {"10", "11"}
    assert [c.cluster_id for c in read_cluster_registry(open_data_root(str(root)))] == ["ocp-assets-smoke"]
    # nise's VM and GPU files of a cluster without VMs or GPUs hold only a header: read, nothing written.
    assert result.ingest.files_skipped == []
    assert len(result.ingest.files_read) == 2 * 6


def test_smoke_scenario_values(smoke):
    root, _ = smoke
    daily = read_table(root, "daily", "pod_usage").to_pylist()
    (web,) = [r for r in daily if r["pod"] == "shop-web-0" and r["interval_start"] == dt.datetime(2026, 11, 1)]
    hours = 24 * 3600
    assert web["namespace"] == "shop" and web["node"] == "worker-0"
    assert web["resource_id"] == "i-worker000"  # nise prefixes 'i-'
    assert web["pod_labels"] == '{"app": "shop-web", "version": "v1.2+build/7", "owner": "zo\\u00eb"}'
    assert web["report_period_start"] == dt.datetime(2026, 11, 1)
    assert web["pod_usage_cpu_core_seconds"] == pytest.approx(0.3 * hours, rel=1e-12)
    assert web["pod_request_cpu_core_seconds"] == pytest.approx(0.5 * hours, rel=1e-12)
    assert web["pod_effective_usage_cpu_core_seconds"] == pytest.approx(0.5 * hours, rel=1e-12)
    assert web["pod_usage_memory_byte_seconds"] == pytest.approx(0.8 * GIB * hours, rel=1e-12)
    assert web["node_capacity_cpu_cores"] == 4.0

    storage = read_table(root, "daily", "storage_usage").to_pylist()[0]
    assert storage["persistentvolumeclaim"] == "data-shop-web-0"
    assert storage["persistentvolumeclaim_capacity_bytes"] == 10.0 * GIB
    assert storage["persistentvolumeclaim_usage_byte_seconds"] == pytest.approx(2.5 * GIB * hours, rel=1e-12)
    assert storage["volume_request_storage_byte_seconds"] == pytest.approx(20.0 * GIB * hours, rel=1e-12)

    node_labels = {r["node"]: r["node_labels"] for r in read_table(root, "daily", "node_labels").to_pylist()}
    assert node_labels["infra-0"] == '{"node_role_kubernetes_io": "infra", "kubernetes_io_hostname": "infra-0"}'
    pods = read_table(root, "raw", "pod_usage").to_pylist()
    assert {r["node"] for r in pods if r["namespace"] == "openshift-kube-apiserver"} == {"master-0"}


def test_second_run_uses_the_cache_and_writes_the_same_bytes(smoke, cache, tmp_path):
    root, first = smoke
    again = generate(open_data_root(str(tmp_path / "root")), yaml_path=SMOKE, cache_dir=cache)
    assert again.cache_hit and again.payload_dir == first.payload_dir
    assert all_bytes(tmp_path / "root") == all_bytes(root)


def test_regenerating_after_the_cache_is_cleared_overwrites_the_same_keys(smoke, tmp_path):
    root, _ = smoke
    # A fresh cache runs nise again; the pinned manifest uuid keeps the Parquet keys (and bytes) unchanged.
    regenerated = generate(open_data_root(str(tmp_path / "root")), yaml_path=SMOKE, cache_dir=tmp_path / "fresh-cache")
    assert not regenerated.cache_hit
    assert all_bytes(tmp_path / "root") == all_bytes(root)


def test_cache_key_depends_on_yaml_and_cluster_id():
    text = SMOKE.read_text()
    assert cache_key(text, "a") == cache_key(text, "a")
    assert len({cache_key(text, "a"), cache_key(text, "b"), cache_key(text + "\n", "a")}) == 3


def test_nise_failure_is_reported_and_nothing_is_cached(tmp_path):
    # A label value holding ':' crashes nise (contract 7).
    broken = SMOKE.read_text().replace("label_app:shop-web|", "label_app:shop:web|")
    (tmp_path / "broken.yml").write_text(broken)
    with pytest.raises(InputDataError, match="nise") as raised:
        generate(
            open_data_root(str(tmp_path / "root")), yaml_path=tmp_path / "broken.yml", cache_dir=tmp_path / "cache"
        )
    assert raised.value.file == str(tmp_path / "broken.yml")
    assert list((tmp_path / "cache").iterdir()) == []
    assert not (tmp_path / "root").exists()


def test_scale_20k_end_to_end(cache, tmp_path):
    result = generate(open_data_root(str(tmp_path / "root")), scale="20k", cache_dir=cache).ingest
    rows_by_type: dict[str, int] = {}
    for (report_type, _), rows in result.rows.items():
        rows_by_type[report_type] = rows_by_type.get(report_type, 0) + rows
    assert rows_by_type["pod_usage"] == SCALES["20k"].pods * 72 == 20016
    assert rows_by_type["node_labels"] == 7 * 72  # 3 masters, 2 infra, 2 workers
    pods = read_table(tmp_path / "root", "daily", "pod_usage").to_pandas()
    assert sorted(pods.loc[pods["namespace"] == "openshift-kube-apiserver", "node"].unique()) == [
        "master-0",
        "master-1",
        "master-2",
    ]
    node_labels = read_table(tmp_path / "root", "daily", "node_labels").to_pandas()
    infra = node_labels[node_labels["node_labels"].str.contains('"node_role_kubernetes_io": "infra"')]
    assert sorted(infra["node"].unique()) == ["infra-0", "infra-1"]
    storage = read_table(tmp_path / "root", "daily", "storage_usage").to_pandas()
    assert (storage["persistentvolumeclaim"] == "").sum() == 3  # the claimless PV, one row a day


@pytest.mark.parametrize("scale", list(SCALES))
def test_scale_yaml_has_the_pods_of_its_scale(scale):
    text = scale_yaml(scale)
    assert text == scale_yaml(scale)
    pods = len(re.findall(r"^ {16}- \{<<: \*\w+, pod_name: ", text, flags=re.MULTILINE))
    assert pods == SCALES[scale].pods
    assert abs(pods * 72 - {"20k": 20_000, "100k": 100_000, "1m": 1_000_000, "10m": 10_000_000}[scale]) < 100


@pytest.mark.parametrize("scale", ["20k", "100k"])
def test_scale_yaml_is_what_nise_needs(scale):
    generators = yaml.safe_load(scale_yaml(scale))["generators"]
    spec = SCALES[scale]
    assert len(generators) == spec.masters + spec.infra + spec.workers
    names = []
    for generator in generators:
        attributes = generator["OCPGenerator"]
        assert (attributes["start_date"], attributes["end_date"]) == ("2026-10-01", "2026-10-04")
        (node,) = attributes["nodes"]
        assert ":" not in "".join(v.split(":", 1)[1] for v in node["node_labels"].split("|"))
        for namespace in node["namespaces"].values():
            for pod in namespace["pods"]:
                names.append(pod["pod_name"])
                assert 0 < pod["cpu_usage"]["full_period"] <= pod["cpu_limit"]
                assert 0 < pod["mem_usage_gig"]["full_period"] <= pod["mem_limit_gig"]
                assert pod["pod_seconds"] > 0 and pod["cpu_request"] <= pod["cpu_limit"]
    assert len(names) == len(set(names)) == spec.pods


def test_make_scale_yaml_script_writes_the_same_yaml(tmp_path):
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_scale_yaml.py"), "--out-dir", str(tmp_path), "20k"],
                   check=True, capture_output=True, cwd=REPO)  # fmt: skip
    assert (tmp_path / "scale-20k.yml").read_text() == scale_yaml("20k")


def test_cli_generate(smoke, cache, tmp_path, capsys):
    assert main(["generate", "--yaml", str(SMOKE), "--out", str(tmp_path / "root"), "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "(cached)" in out and "pod_usage" in out
    assert main(["generate", "--yaml", str(tmp_path / "absent.yml"), "--out", str(tmp_path / "root")]) == 2
    assert "absent.yml" in capsys.readouterr().err
