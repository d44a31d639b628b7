"""The code location's settings: read when Dagster builds the definitions, never at import; given explicitly, they
need no environment; the job module, the executor and the instance file shipped in the package."""

import importlib
import importlib.resources
import os
import subprocess
import sys

import dagster as dg
import pytest
import yaml

from ocp_assets.dagster_instance import write_instance_yaml
from ocp_assets.definitions import build_definitions
from ocp_assets.defs.jobs import JOB_NAME, summary_job
from ocp_assets.defs.settings import Settings

# Every variable the code location reads when it is built, with a value it refuses and the refusal's words.
BAD_SETTINGS = [
    ("OCP_ASSETS_START_DATE", "01.10.2026", "$OCP_ASSETS_START_DATE is '01.10.2026', not a day YYYY-MM-DD"),
    ("OCP_ASSETS_END_DATE", "2026-02-30", "$OCP_ASSETS_END_DATE is '2026-02-30', not a day YYYY-MM-DD"),
    ("OCP_ASSETS_WORKERS", "two", "OCP_ASSETS_WORKERS is 'two': expected a whole number, 1 or more"),
    ("OCP_ASSETS_WORKERS", "0", "OCP_ASSETS_WORKERS is 0: expected a whole number, 1 or more"),
]
# The modules of the code location, the quickstart and the UI launcher: none may read a setting when imported.
MODULES = [
    "ocp_assets.definitions",
    "ocp_assets.defs.assets",
    "ocp_assets.defs.checks",
    "ocp_assets.defs.jobs",
    "ocp_assets.defs.partitions",
    "ocp_assets.defs.resources",
    "ocp_assets.defs.sensors",
    "ocp_assets.defs.settings",
    "ocp_assets.dagster_instance",
    "ocp_assets.quickstart",
    "ocp_assets.ui",
]


@pytest.mark.parametrize(("variable", "value", "message"), BAD_SETTINGS)
def test_a_bad_setting_fails_when_dagster_builds_the_definitions_not_at_import(variable, value, message):
    code = (
        f"import {', '.join(MODULES)}\nprint('imported', flush=True)\nfrom ocp_assets.definitions import defs\ndefs()\n"
    )
    env = {**os.environ, variable: value}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=180)
    assert done.stdout.strip() == "imported", done.stderr[-2000:]
    assert done.returncode != 0 and f"ValueError: {message}" in done.stderr


@pytest.mark.parametrize(("variable", "value", "message"), BAD_SETTINGS)
def test_settings_from_an_environment_refuse_each_bad_value_by_name(variable, value, message):
    with pytest.raises(ValueError) as refused:
        Settings.from_environment({variable: value})
    assert str(refused.value) == message


def test_settings_from_an_environment_take_what_is_set_and_default_the_rest():
    assert Settings.from_environment({}) == Settings()
    given = {
        "OCP_ASSETS_START_DATE": "2025-11-01",
        "OCP_ASSETS_END_DATE": "2025-12-31",
        "OCP_ASSETS_SCHEMA": "org1",
        "OCP_ASSETS_REGISTRY_SCHEMA": "reg",
        "OCP_ASSETS_SNAPSHOT_ROOT": "s3://b/p",
        "OCP_ASSETS_WORKERS": "3",
        "OCP_ASSETS_SCHEMA_UNRELATED": "x",
        "OCP_ASSETS_END_DATE_": "x",
    }
    assert Settings.from_environment(given) == Settings("2025-11-01", "2025-12-31", "org1", "reg", "s3://b/p", 3)
    # An empty variable is unset (a shell's `export OCP_ASSETS_WORKERS=`), not a value.
    assert Settings.from_environment(dict.fromkeys(given, "")) == Settings()


@pytest.mark.parametrize(
    ("environ", "expected"),
    [
        ({}, {}),
        ({"AWS_ENDPOINT_URL": "http://a"}, {"endpoint_url": "AWS_ENDPOINT_URL"}),
        (
            {"AWS_ENDPOINT_URL": "http://a", "OCP_ASSETS_S3_ENDPOINT": "http://b", "AWS_ENDPOINT_URL_S3": "http://c"},
            {"endpoint_url": "OCP_ASSETS_S3_ENDPOINT"},
        ),
        ({"AWS_DEFAULT_REGION": "eu", "AWS_REGION": ""}, {"region_name": "AWS_DEFAULT_REGION"}),
        (
            {"AWS_REGION": "us", "AWS_DEFAULT_REGION": "eu", "AWS_PROFILE": "koku"},
            {"region_name": "AWS_REGION", "profile_name": "AWS_PROFILE"},
        ),
    ],
)
def test_the_s3_resource_names_the_first_variable_set_for_each_field(environ, expected):
    settings = Settings.from_environment(environ)
    assert dict(settings.s3_variables) == expected
    s3 = build_definitions(settings).resources["s3"]
    for field_name in ("endpoint_url", "region_name", "profile_name"):
        value = getattr(s3, field_name)
        assert (value.env_var_name if isinstance(value, dg.EnvVar) else value) == expected.get(field_name)


@pytest.fixture(name="no_settings_in_the_environment")
def no_settings_in_the_environment_fixture(monkeypatch):
    for name in list(os.environ):
        if name.startswith(("OCP_ASSETS_", "AWS_")):
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("start", "end", "first", "last", "days"),
    [
        ("2026-10-01", "2026-11-30", "2026-10-01", "2026-11-30", 61),
        ("2024-02-28", "2024-03-01", "2024-02-28", "2024-03-01", 3),
    ],
)
def test_definitions_built_from_explicit_settings_need_no_environment(
    no_settings_in_the_environment, start, end, first, last, days
):
    defs = build_definitions(Settings(start_date=start, end_date=end, schema_name="org9", registry_schema="reg9"))
    day_dimension = defs.resolve_assets_def("daily_summary").partitions_def.get_partitions_def_for_dimension("day")
    keys = day_dimension.get_partition_keys()
    assert (len(keys), keys[0], keys[-1]) == (days, first, last)
    window = defs.resources["day_partitions"]  # the sensor's window is the assets'
    assert (str(window.first_day()), str(window.last_day())) == (first, last)
    # Every check carries the same partitions as the assets.
    for check in defs.resolve_assets_def("daily_summary").check_specs:
        assert check.partitions_def.get_partitions_def_for_dimension("day").get_partition_keys() == keys
    db = defs.resources["koku_db"]
    assert (db.schema_name, db.registry_schema) == ("org9", "reg9")
    # The DSN and the data root stay environment variables, resolved in the run (a password never enters them).
    assert db.dsn.env_var_name == "OCP_ASSETS_DSN"
    assert defs.resources["koku_lake"].data_root.env_var_name == "OCP_ASSETS_DATA_ROOT"


@pytest.mark.parametrize(("workers", "day_workers"), [(None, 2), (1, 1), (3, 3)])
def test_the_executor_and_day_workers_come_from_the_settings(workers, day_workers):
    """Dagster's multiprocess executor by default, in_process on request; the cluster-days of the one step go to that
    many forked workers either way (docs/decisions.md)."""
    settings = Settings() if workers is None else Settings(workers=workers)
    defs = build_definitions(settings)
    executor = defs.resolve_job_def(JOB_NAME).executor_def
    assert executor.name == "multiprocess"
    assert executor.executor_creation_fn is dg.multiprocess_executor.executor_creation_fn  # Dagster's own, configured
    assert defs.resources["summary_engine"].workers == day_workers
    in_process = build_definitions(Settings.from_environment({"OCP_ASSETS_EXECUTOR": "in_process"}))
    assert in_process.resolve_job_def(JOB_NAME).executor_def is dg.in_process_executor


def test_an_unknown_executor_is_refused_naming_its_variable():
    with pytest.raises(ValueError, match="OCP_ASSETS_EXECUTOR is 'fork'"):
        Settings.from_environment({"OCP_ASSETS_EXECUTOR": "fork"})


def test_the_job_module_holds_the_sensors_job_over_the_summary_group():
    defs = build_definitions(Settings())
    job = defs.resolve_job_def(JOB_NAME)
    assert summary_job.name == JOB_NAME == defs.resolve_sensor_def("koku_parquet_sensor").job_name
    stages = {key.to_user_string() for key in job.asset_layer.asset_graph.get_all_asset_keys() if key.path[0] != "koku"}
    assert stages == {
        "raw_pod_usage",
        "raw_storage_usage",
        "deduplicated_labels",
        "merged_label_chunks",
        "daily_summary",
        "raw_gpu_usage",
        "gpu_summary",
    }


def test_the_instance_file_comes_from_the_package_and_names_classes_that_exist(tmp_path):
    written = write_instance_yaml(tmp_path / "home")
    shipped = importlib.resources.files("ocp_assets") / "dagster.yaml"
    assert written.read_text() == shipped.read_text()
    config = yaml.safe_load(written.read_text())
    named = [v for v in config.values() if isinstance(v, dict) and "module" in v and "class" in v]
    assert len(named) >= 3  # storages, run coordinator, run launcher
    for entry in named:
        module = importlib.import_module(entry["module"])
        assert hasattr(module, entry["class"]), entry
