"""A data root is trusted only as far as it proves itself: wrong roots delete nothing, stray copies and bad records or
GPU files affect only what they belong to (issue 15: B1, B2, C8, C10, D14)."""

import datetime as dt
import os
import shutil
from pathlib import Path

import pyarrow.fs as pafs
import pytest

from ocp_assets.cli import main
from ocp_assets.core import outcomes as O
from ocp_assets.core.identity import ClusterDay
from ocp_assets.core.ingest import (
    BadClusterRecord,
    ClusterIdentity,
    cluster_record_key,
    derive_source_uuid,
    ingest,
    read_cluster_registry,
)
from ocp_assets.core.pipeline import run_cluster_day
from ocp_assets.core.reader import NoClusterDataError, dataset_files, days_with_usage, look_for_cluster_data
from ocp_assets.core.storage import open_data_root
from ocp_assets.defs.partitions import partition_key
from ocp_assets.defs.resources import KokuDataLake
from ocp_assets_tests import test_s3
from ocp_assets_tests.dagster_fixtures import (  # noqa: F401 (dagster_env_fixture is the dagster_env fixture)
    ACCOUNT,
    DAY,
    build_cluster,
    dagster_env_fixture,
)
from ocp_assets_tests.engine_support import engine_rows
from ocp_assets_tests.fixtures_ingest import four_report_payload
from ocp_assets_tests.reference.koku_gpu_sql import engine_gpu_rows
from ocp_assets_tests.reference.koku_sql import compare_summaries
from ocp_assets_tests.test_gpu_summary import gpu_folder, gpu_rows, write_gpu_parquet
from ocp_assets_tests.test_s3 import PREFIX

# The local S3 (moto) server's fixtures of test_s3, its bucket one as s3_bucket here.
s3_endpoint = test_s3.s3_endpoint
s3_bucket = test_s3.bucket
MONTH = f"year={DAY.year:04d}/month={DAY.month:02d}"
# The hidden and stray copies a month folder may hold (a writer's temporary output, a staging area, a backup).
COPIES = ("_temporary/0/task_1", ".staging", "backup")


def _summarize(root, dsn: str, schema: str, *extra: str) -> list[str]:
    return ["summarize", "--data-root", str(root), *extra, "--dsn", dsn, "--schema", schema]


def _one_day(identity: ClusterIdentity, day: dt.date = DAY) -> list[str]:
    return ["--source", identity.source_uuid, "--start", day.isoformat(), "--end", day.isoformat()]


def _month_folders(root: Path, identity: ClusterIdentity) -> list[Path]:
    """Every month folder of the cluster's pod, storage and label datasets."""
    return sorted(
        p
        for p in Path(root, "data").rglob("month=*")
        if f"source={identity.source_uuid}" in str(p) and f"/{identity.account}/" in str(p)
    )


@pytest.fixture
def summarised(pg, tmp_path, dsn):
    """cluster c1 summarised for DAY, with GPU rows too, from tmp_path/data."""
    conn, schema = pg
    root = tmp_path / "data"
    identity = build_cluster(root, "c1", [DAY])
    write_gpu_parquet(
        root, identity.source_uuid, gpu_rows(DAY, range(4), node="n", namespace="ml", pod="p", gpu_uuid="G")
    )
    assert main(_summarize(root, dsn, schema, *_one_day(identity))) == 0
    rows, gpu = engine_rows(conn, schema, identity.source_uuid), engine_gpu_rows(conn, schema, identity.source_uuid)
    assert len(rows) and len(gpu) == 1
    return conn, schema, root, identity, rows, gpu


def _unchanged(conn, schema, identity, rows, gpu) -> bool:
    source = identity.source_uuid
    return compare_summaries(rows, engine_rows(conn, schema, source), rel_tol=0) == [] and (
        engine_gpu_rows(conn, schema, source) == gpu
    )


# ---------------------------------------------------------------- B1: a root without the cluster's files deletes none
def _wrong_root(kind: str, tmp_path: Path, root: Path, identity: ClusterIdentity) -> tuple[Path, str]:
    """A data root (and account) that holds none of the cluster's Parquet, as an operator gets one wrong."""
    if kind == "mistyped":
        return tmp_path / "dta", identity.account
    if kind == "empty":
        (tmp_path / "empty").mkdir()
        return tmp_path / "empty", identity.account
    if kind == "wrong_account":
        return root, "org7654321"
    if kind == "unmounted":  # the folders are there, the files are not
        bare = tmp_path / "unmounted"
        for folder in _month_folders(root, identity):
            (bare / folder.relative_to(root)).mkdir(parents=True)
        return bare, identity.account
    if kind == "other_cluster":
        build_cluster(tmp_path / "other", "c2", [DAY])
        return tmp_path / "other", identity.account
    if kind == "hidden_copies_only":  # a writer's output never committed: hidden, so not data
        staged = tmp_path / "staged"
        for folder in _month_folders(root, identity):
            shutil.copytree(folder, staged / folder.relative_to(root) / "_temporary")
        return staged, identity.account
    raise AssertionError(kind)


@pytest.mark.parametrize(
    "kind", ["mistyped", "empty", "wrong_account", "unmounted", "other_cluster", "hidden_copies_only"]
)
def test_cli_refuses_a_root_without_the_clusters_files_and_deletes_nothing(summarised, tmp_path, dsn, capsys, kind):
    conn, schema, root, identity, rows, gpu = summarised
    wrong, account = _wrong_root(kind, tmp_path, root, identity)
    args = [*_one_day(identity), "--account", account, "--cluster-id", identity.cluster_id]

    code = main(_summarize(wrong, dsn, schema, *args))

    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1, err
    assert err[0].startswith("ocp-assets: error: ") and str(wrong) in err[0] and "--data-root" in err[0]
    if kind == "mistyped":
        assert f"data root {wrong} does not exist" in err[0]
    else:
        assert f"source {identity.source_uuid} (account {account})" in err[0] and "nothing removed" in err[0]
    assert _unchanged(conn, schema, identity, rows, gpu)


def test_core_refuses_to_empty_a_day_of_a_root_without_the_clusters_files(summarised, tmp_path):
    """The engine itself (the Dagster assets' path): both summaries fail naming the root, both keep their rows."""
    conn, schema, _root, identity, rows, gpu = summarised
    (tmp_path / "empty").mkdir()
    empty = open_data_root(str(tmp_path / "empty"))
    cluster_day = ClusterDay(identity.account, identity.source_uuid, identity.cluster_id, "C1", DAY)

    for evidence in (None, look_for_cluster_data(empty, identity.account, identity.source_uuid)):
        result = run_cluster_day(conn, schema, empty, cluster_day, evidence)

        failures = result.failures()
        assert set(failures) == {O.DAILY_SUMMARY, O.GPU_SUMMARY} and not result.no_data
        assert all(
            isinstance(exc, NoClusterDataError) and str(tmp_path / "empty") in str(exc) for exc in failures.values()
        )
        assert not result.checks[O.POD_USAGE_SCHEMA].passed and not result.checks[O.GPU_USAGE_SCHEMA].passed
        assert _unchanged(conn, schema, identity, rows, gpu)


def test_a_day_whose_files_are_gone_is_still_emptied_when_the_cluster_is_there(summarised, dsn, capsys):
    """The evidence rule does not stop koku's delete-then-insert: another month's files prove the root right."""
    conn, schema, root, identity, _rows, _gpu = summarised
    next_month = dt.date(DAY.year, DAY.month + 1, 1)
    for folder in _month_folders(root, identity):
        shutil.rmtree(folder)
    write_gpu_parquet(root, identity.source_uuid, [])  # its GPU files too
    build_cluster(root, "c1", [next_month])

    assert main(_summarize(root, dsn, schema, *_one_day(identity))) == 0, capsys.readouterr().err
    assert "no koku data for this day (its previous rows removed)" in capsys.readouterr().out
    assert len(engine_rows(conn, schema, identity.source_uuid)) == 0
    assert engine_gpu_rows(conn, schema, identity.source_uuid) == []


def test_a_partition_of_a_root_without_the_clusters_files_fails_unretried_and_keeps_its_rows(dagster_env, tmp_path):
    identity = build_cluster(dagster_env.data_root, "cluster-a", [DAY])
    dagster_env.register(identity)
    key = str(partition_key("cluster-a", DAY))
    assert dagster_env.materialize(partition_key=key).success
    before = dagster_env.summary_rows()
    (tmp_path / "unmounted").mkdir()
    dagster_env.resources["koku_lake"] = KokuDataLake(data_root=str(tmp_path / "unmounted"))

    result = dagster_env.materialize(partition_key=key)

    assert not result.success
    assert not any(e.event_type_value == "STEP_UP_FOR_RETRY" for e in result.all_events)
    failed = {e.check_name: e for e in result.get_asset_check_evaluations() if not e.passed}
    assert O.POD_USAGE_SCHEMA in failed and str(tmp_path / "unmounted") in failed[O.POD_USAGE_SCHEMA].description
    assert not [e for e in result.get_asset_materialization_events() if e.asset_key.to_user_string() == O.DAILY_SUMMARY]
    assert dagster_env.summary_rows() == before


def test_an_s3_prefix_without_the_clusters_files_is_no_evidence(s3_bucket, tmp_path):
    _client, name = s3_bucket
    payload = four_report_payload(tmp_path / "payload")
    source = "6d7c1b1e-6a63-4c1c-9a57-3f1f1e0e0a01"
    ingest(payload, open_data_root(f"s3://{name}/{PREFIX}"), source_uuid=source)

    found = look_for_cluster_data(open_data_root(f"s3://{name}/{PREFIX}"), "10001", source)
    typo = look_for_cluster_data(open_data_root(f"s3://{name}/koku/warehous"), "10001", source)

    assert found.file is not None and found.file.startswith(f"s3://{name}/{PREFIX}/data/parquet/daily/10001/")
    assert typo.file is None and not typo.root_exists
    assert f"data root s3://{name}/koku/warehous holds no object" in str(typo.error())


# ---------------------------------------------------------------- B2: a partition is its folder's own files
def _plant_copies(folder: Path) -> None:
    """Copies of a month folder's files where Hive and Trino never look, and a symlink loop."""
    files = sorted(folder.glob("*.parquet"))
    for place in COPIES:
        (folder / place).mkdir(parents=True)
        for path in files:
            shutil.copy(path, folder / place / path.name)
    shutil.copy(files[0], folder / f".{files[0].name}")
    (folder / "_SUCCESS").write_bytes(b"")
    os.symlink(".", folder / "loop")


def test_copies_below_a_month_folder_and_symlink_loops_are_never_read(summarised, dsn, capsys):
    conn, schema, root, identity, rows, gpu = summarised
    for folder in _month_folders(root, identity):
        _plant_copies(folder)

    assert main(_summarize(root, dsn, schema, "--source", identity.source_uuid)) == 0
    captured = capsys.readouterr()

    assert _unchanged(conn, schema, identity, rows, gpu)  # the same rows: no day doubled (or multiplied by a loop)
    pod_month = f"data/parquet/daily/{identity.account}/OCP/pod_usage/source={identity.source_uuid}/{MONTH}"
    for stray in ("backup", "loop"):
        assert f"{root}/{pod_month}/{stray}: not read (a folder inside a partition folder" in captured.err
    assert "_temporary" not in captured.err and ".staging" not in captured.err  # hidden: silently not data


def _layout(root: Path) -> Path:
    """A dataset with one good file, and files and folders at each wrong level."""
    dataset = root / "data/parquet/daily/acct/OCP/pod_usage/source=s"
    for relative in (
        "year=2026/month=03/good.parquet",
        "year=2026/month=03/notes.txt",
        "year=2026/month=03/backup/copy.parquet",
        "year=2026/month=03/_temporary/0/copy.parquet",
        "year=2026/month=03/.staging/copy.parquet",
        "year=2026/03/misplaced.parquet",
        "year=2026/stray.parquet",
        "stray.parquet",
        "_hidden/year=2026/month=03/copy.parquet",
    ):
        (dataset / relative).parent.mkdir(parents=True, exist_ok=True)
        (dataset / relative).write_bytes(b"PAR1")
    return dataset


EXPECTED_STRAYS = {
    "year=2026/month=03/backup": "a folder inside a partition folder: only a partition's own files are read",
    "year=2026/03": "not a month=… partition folder",
    "year=2026/stray.parquet": "a data file outside a month=… partition folder",
    "stray.parquet": "a data file outside a month=… partition folder",
}


def test_dataset_listing_finds_month_files_only_and_names_what_it_leaves(tmp_path):
    dataset = _layout(tmp_path)
    root = open_data_root(str(tmp_path))
    prefix = root.key_of(str(dataset))
    strays: dict[str, str] = {}

    files = dataset_files(root, prefix, stray=lambda key, why: strays.setdefault(key, why))

    assert [root.key_of(f.path) for f in files] == [f"{prefix}/year=2026/month=03/good.parquet"]
    assert {key.removeprefix(prefix + "/"): why for key, why in strays.items()} == EXPECTED_STRAYS
    month = root.list_files(f"{prefix}/year=2026/month=03")  # one partition: its own files only
    assert [root.key_of(f.path) for f in month] == [f"{prefix}/year=2026/month=03/good.parquet"]


def test_dataset_listing_on_s3_equals_the_local_one(s3_bucket, tmp_path):
    client, name = s3_bucket
    dataset = _layout(tmp_path / "local")
    for path in dataset.rglob("*"):
        if path.is_file():
            client.put_object(Bucket=name, Key=f"{PREFIX}/{path.relative_to(tmp_path / 'local')}", Body=b"PAR1")
    local, remote = open_data_root(str(tmp_path / "local")), open_data_root(f"s3://{name}/{PREFIX}")
    prefix = local.key_of(str(dataset))
    strays: dict[str, str] = {}

    files = dataset_files(remote, prefix, stray=lambda key, why: strays.setdefault(key, why))

    assert [remote.key_of(f.path) for f in files] == [local.key_of(f.path) for f in dataset_files(local, prefix)]
    assert {key.removeprefix(prefix + "/"): why for key, why in strays.items()} == EXPECTED_STRAYS
    assert [remote.key_of(f.path) for f in remote.list_files(f"{prefix}/year=2026/month=03")] == [
        f"{prefix}/year=2026/month=03/good.parquet"
    ]


def test_a_symlink_loop_at_a_partition_level_is_not_followed(tmp_path):
    dataset = _layout(tmp_path)
    os.symlink(".", dataset / "year=2026" / "month=04")  # a partition folder that is the year folder again
    os.symlink(".", dataset / "year=2027")
    root = open_data_root(str(tmp_path))

    files = dataset_files(root, root.key_of(str(dataset)))

    # month=04 holds what year=2026 holds directly (stray.parquet): read there, once; year=2027 leads to source=
    # again, whose month= folders are two levels further down: nothing.
    assert sorted(Path(f.path).relative_to(dataset).as_posix() for f in files) == [
        "year=2026/month=03/good.parquet",
        "year=2026/month=04/stray.parquet",
    ]


# ---------------------------------------------------------------- C8: one bad cluster record affects only its cluster
GOOD = ClusterIdentity("good", derive_source_uuid("good"), "10001", "Good")
OTHER_SOURCE = derive_source_uuid("bad")


def _record(fields: dict | None = None, **changes) -> bytes:
    import json

    values = {"cluster_id": "bad", "source_uuid": OTHER_SOURCE, "account": "10001", "cluster_alias": None, **changes}
    return json.dumps(fields if fields is not None else values).encode()


BAD_RECORDS = {
    "not JSON": b'{"cluster_id": "bad"',
    "not an object": b"[]",
    "missing field": _record({"cluster_id": "bad", "account": "10001"}),
    "account leaves the root": _record(account="../../outside"),
    "account of another folder": _record(account="20002"),
    "account is null": _record(account=None),
    "source not a uuid": _record(source_uuid="not-a-uuid"),
    "source in capitals": _record(source_uuid=OTHER_SOURCE.upper()),
    "cluster id with a slash": _record(cluster_id="a/b"),
    "cluster id is ..": _record(cluster_id=".."),
    "cluster id with a newline": _record(cluster_id="bad\n"),
    "cluster id empty": _record(cluster_id=" "),
    "alias not text": _record(cluster_alias=["x"]),
}


@pytest.mark.parametrize("what", list(BAD_RECORDS))
def test_a_bad_cluster_record_is_named_and_the_others_are_read(tmp_path, what):
    root = open_data_root(str(tmp_path))
    root.write_bytes(cluster_record_key(GOOD.account, GOOD.source_uuid), GOOD.to_json())
    bad_key = cluster_record_key("10001", OTHER_SOURCE)
    root.write_bytes(bad_key, BAD_RECORDS[what])
    heard: list[BadClusterRecord] = []

    assert read_cluster_registry(root, heard.append) == [GOOD]
    assert [e.file for e in heard] == [root.display(bad_key)] and heard[0].source == OTHER_SOURCE
    with pytest.raises(BadClusterRecord) as raised:
        read_cluster_registry(root)
    assert raised.value.file == root.display(bad_key) and "not a usable cluster record" in str(raised.value)


def test_cli_all_clusters_reports_a_bad_record_and_summarises_the_others(pg, tmp_path, dsn, capsys):
    conn, schema = pg
    root = tmp_path / "data"
    good = build_cluster(root, "good", [DAY])
    bad = build_cluster(root, "bad", [DAY])
    record = Path(open_data_root(str(root)).path(cluster_record_key(bad.account, bad.source_uuid)))
    record.write_text('{"cluster_id": "bad", "account": "../..", "source_uuid": "x"}')

    code = main(_summarize(root, dsn, schema, "--all-clusters"))

    err = capsys.readouterr().err
    assert code == 2 and f"file {record}" in err and "that cluster is not summarised" in err
    assert len(engine_rows(conn, schema, good.source_uuid)) and not len(engine_rows(conn, schema, bad.source_uuid))


@pytest.mark.parametrize("account", ["../outside", "a/b", "..", ""])
def test_cli_refuses_an_account_that_is_not_one_key_segment(pg, tmp_path, dsn, capsys, account):
    _conn, schema = pg
    identity = build_cluster(tmp_path / "data", "c1", [DAY])
    args = [*_one_day(identity), "--account", account, "--cluster-id", "c1"]
    assert main(_summarize(tmp_path / "data", dsn, schema, *args)) == 2
    assert f"--account {account!r}" in capsys.readouterr().err


def test_ingest_goes_on_past_another_sources_bad_record_but_not_its_own(tmp_path):
    root = open_data_root(str(tmp_path / "data"))
    source = "6d7c1b1e-6a63-4c1c-9a57-3f1f1e0e0a01"
    root.write_bytes(cluster_record_key("10001", OTHER_SOURCE), b"{")
    ingest(four_report_payload(tmp_path / "payload"), root, source_uuid=source)
    root.write_bytes(cluster_record_key("10001", source), b"{")
    with pytest.raises(BadClusterRecord):
        ingest(four_report_payload(tmp_path / "again"), root, source_uuid=source)


def test_the_sensor_warns_of_a_bad_record_and_registers_the_others(dagster_env, capfd):
    from ocp_assets.defs.partitions import CLUSTERS_PARTITIONS_NAME
    from ocp_assets_tests.dagster_fixtures import sensor_tick

    build_cluster(dagster_env.data_root, "good", [DAY])
    bad = build_cluster(dagster_env.data_root, "bad", [DAY])
    record = open_data_root(str(dagster_env.data_root)).path(cluster_record_key(bad.account, bad.source_uuid))
    Path(record).write_text("{")

    sensor_tick(dagster_env)

    assert dagster_env.instance.get_dynamic_partitions(CLUSTERS_PARTITIONS_NAME) == ["good"]
    assert f"WARNING - file {record}: not a usable cluster record: not JSON" in capfd.readouterr().err


# ---------------------------------------------------------------- C10: an unreadable GPU file fails only GPU summaries
def _unreadable_gpu_file(root: Path, source: str, day: dt.date) -> Path:
    path = gpu_folder(root, source, day, daily=False) / "gpu_usage.broken.1.0_0.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"this is not parquet")
    return path


def test_an_unreadable_gpu_file_fails_the_gpu_summaries_of_its_month_only(pg, tmp_path, dsn, capsys):
    conn, schema = pg
    root = tmp_path / "data"
    days = [DAY, DAY + dt.timedelta(days=1)]
    identity = build_cluster(root, "c1", days)
    write_gpu_parquet(
        root, identity.source_uuid, gpu_rows(DAY, range(2), node="n", namespace="ml", pod="p", gpu_uuid="G")
    )
    broken = _unreadable_gpu_file(root, identity.source_uuid, DAY)
    gpu_only_month = dt.date(DAY.year, DAY.month + 2, 1)  # a month whose only file is the unreadable one
    broken_alone = _unreadable_gpu_file(root, identity.source_uuid, gpu_only_month)

    code = main(_summarize(root, dsn, schema, "--source", identity.source_uuid))

    err = capsys.readouterr().err
    assert code == 2
    assert set(engine_rows(conn, schema, identity.source_uuid)["usage_start"]) == set(days)
    for path in (broken, broken_alone):
        assert f"warning: file {path}: not a readable Parquet file" in err
    failed_gpu = [line for line in err.splitlines() if "GPU summary not written" in line]
    assert len(failed_gpu) == 3 and all(str(broken) in line for line in failed_gpu[:2])
    assert f"c1 {gpu_only_month.isoformat()}: file {broken_alone}" in failed_gpu[2]
    assert engine_gpu_rows(conn, schema, identity.source_uuid) == []


def test_day_discovery_counts_an_unreadable_file_for_its_month(tmp_path):
    root = tmp_path / "data"
    identity = build_cluster(root, "c1", [DAY])
    later = dt.date(DAY.year, DAY.month + 1, 1)
    broken = _unreadable_gpu_file(root, identity.source_uuid, later + dt.timedelta(days=9))
    same_month = _unreadable_gpu_file(root, identity.source_uuid, DAY).with_name("gpu_usage.second.parquet")
    same_month.write_bytes(b"nor is this")
    heard: list[str] = []

    days = days_with_usage(
        open_data_root(str(root)), identity.account, identity.source_uuid, heard.append, ("pod_usage", "gpu_usage")
    )

    assert days == [DAY, later]  # DAY's month already has a day; the later month gets its first
    assert len([m for m in heard if "not a readable Parquet file" in m]) == 3
    assert any(str(broken) in m for m in heard) and any(str(same_month) in m for m in heard)


def test_the_data_root_must_exist(tmp_path):
    assert not open_data_root(str(tmp_path / "nowhere")).exists()
    assert open_data_root(str(tmp_path)).exists()
    assert pafs.LocalFileSystem().get_file_info(str(tmp_path / "nowhere")).type == pafs.FileType.NotFound
