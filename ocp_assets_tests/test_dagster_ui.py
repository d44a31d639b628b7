"""`dagster dev` on a free loopback port: the sensor fills partitions, a run succeeds, GraphQL shows assets, partitions and checks,
and a headless Chromium (Playwright, Debian's /usr/bin/chromium) sees the same in the UI."""

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import psycopg
import pytest
from playwright.sync_api import Page, expect, sync_playwright

from ocp_assets.defs.assets import DAILY_SUMMARY
from ocp_assets.defs.checks import ROWS_IN_POSTGRESQL, USAGE_CONSERVED
from ocp_assets.defs.sensors import SENSOR_NAME
from ocp_assets_tests.dagster_fixtures import (  # noqa: F401 (fixture)
    DAY,
    REPO,
    build_cluster,
    dagster_home_fixture,
)

LOCATION = "ocp_assets"
SENSOR_SELECTOR = {"repositoryLocationName": LOCATION, "repositoryName": "__repository__", "sensorName": SENSOR_NAME}
# Debian's chromium (.ci/run installs it); Playwright's own browser download is not reachable here.
CHROMIUM = os.environ.get("OCP_ASSETS_CHROMIUM", "/usr/bin/chromium")
UI_TIMEOUT_MS = 60_000  # per visible text; the React app renders after its GraphQL queries, slow on a loaded 2-core machine


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _default_sigint() -> None:
    # A background process of a non-interactive shell inherits SIGINT ignored; dagster dev shuts down on SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Dev:
    def __init__(self, port: int, log: Path):
        self.port = port
        self.log = log
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster"), "dev", "-w", str(REPO / "workspace.yaml"), "-h", "127.0.0.1",
             "-p", str(port)],
            cwd=REPO, stdout=log.open("w"), stderr=subprocess.STDOUT, start_new_session=True,
            preexec_fn=_default_sigint,  # noqa: PLW1509 (runs before exec; the test process starts no threads first)
        )

    def gql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/graphql", data=json.dumps({"query": query, "variables": variables or {}}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            body = json.load(response)
        assert "errors" not in body, body
        return body["data"]

    def wait(self, what: str, probe, timeout: float) -> object:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"dagster dev exited:\n{self.log.read_text()[-3000:]}"
            try:
                value = probe()
            except (urllib.error.URLError, ConnectionError, AssertionError, KeyError, TypeError):
                value = None
            if value:
                return value
            time.sleep(1)
        raise AssertionError(f"timed out waiting for {what}; log tail:\n{self.log.read_text()[-3000:]}")

    def stop(self) -> None:
        if self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGINT)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


RUNS = "{ runsOrError { ... on Runs { results { runId status tags { key value } } } } }"
ASSETS = """{ assetNodes { assetKey { path } groupName kinds isPartitioned
  partitionKeysByDimension { name partitionKeys }
  assetChecksOrError { ... on AssetChecks { checks { name blocking executionForLatestMaterialization { status } } } } } }"""


def _see(page: Page, text: str) -> None:
    """A visible element whose whole text is `text` (the UI also renders hidden copies of names, for measuring)."""
    expect(page.get_by_text(text, exact=True).filter(visible=True).first).to_be_visible(timeout=UI_TIMEOUT_MS)


def check_ui(base: str, run_id: str, check_names: list[str], shots: Path) -> None:
    """What a user sees after the sensor's run: the asset, its checks passed, the partition materialized, the run a success.

    On a failure the page is saved to `shots` (ui-failure.png) and the exception names the page being checked.
    """
    day = DAY.isoformat()
    partition = f"cluster-ui|{day}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True)
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(UI_TIMEOUT_MS)
        page.set_default_navigation_timeout(UI_TIMEOUT_MS)
        try:
            step = "asset overview"
            page.goto(f"{base}/assets/{DAILY_SUMMARY}")
            for text in (DAILY_SUMMARY, "Latest materialization", partition, "Latest check results", "ocp_summary"):
                _see(page, text)

            step = "asset checks"
            # The list of checks with each one's latest status, and one check's latest execution.
            page.goto(f"{base}/assets/{DAILY_SUMMARY}?view=checks&checkDetail={USAGE_CONSERVED}")
            _see(page, f"Checks ({len(check_names)})")
            for name in (USAGE_CONSERVED, ROWS_IN_POSTGRESQL):
                _see(page, name)
            expect(page.get_by_text("Succeeded", exact=True).filter(visible=True)).to_have_count(  # one under each check
                len(check_names), timeout=UI_TIMEOUT_MS)
            expect(page.get_by_text("This is a blocking asset check.")).to_be_visible(timeout=UI_TIMEOUT_MS)
            _see(page, "Evaluation result")
            _see(page, "Passed")

            step = "partitions"  # from here on the user clicks through the app
            page.get_by_role("tab", name="Partitions").click()
            _see(page, "Materialized (1)")
            _see(page, "cluster-ui")
            page.get_by_placeholder("Filter by day").fill(day)  # the day list is long and virtualised
            page.get_by_title(day, exact=True).click()
            expect(page).to_have_url(f"{base}/assets/{DAILY_SUMMARY}?view=partitions&partition=cluster-ui%7C{day}",
                                     timeout=UI_TIMEOUT_MS)
            _see(page, partition)  # the selected partition's heading
            _see(page, "Materialized")  # its status tag

            step = "run"  # the partition's run, opened from its link
            page.get_by_role("link", name=run_id[:8], exact=True).click()
            expect(page).to_have_url(re.compile(rf"/runs/{run_id}(\?|$)"), timeout=UI_TIMEOUT_MS)  # focused on the event
            _see(page, "Success")
            _see(page, f"partition: {partition}")
            _see(page, SENSOR_NAME)  # launched by
            _see(page, "Errored (0)")
        except Exception as exc:
            shot = shots / "ui-failure.png"
            try:
                page.screenshot(path=str(shot), full_page=True)
            except Exception as shot_exc:  # noqa: BLE001 (keep the UI failure, not the screenshot's)
                shot = f"not saved ({shot_exc})"
            exc.add_note(f"UI check failed on the {step} page ({page.url}); screenshot {shot}")
            raise
        finally:
            browser.close()


def test_dagster_dev_serves_assets_partitions_and_checks(dagster_home, tmp_path, dsn):
    if not Path(CHROMIUM).is_file():  # a missing browser fails (never skips), before paying dagster dev's start-up
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium (apt-get install chromium)")
    build_cluster(Path(dagster_home["OCP_ASSETS_DATA_ROOT"]), "cluster-ui", [DAY])
    dev = Dev(_free_port(), tmp_path / "dagster-dev.log")
    try:
        dev.wait("the code location", lambda: dev.gql(
            "{ repositoriesOrError { ... on RepositoryConnection { nodes { location { name } } } } }"
        )["repositoriesOrError"]["nodes"], timeout=120)
        started = dev.gql(
            "mutation($s: SensorSelector!) { startSensor(sensorSelector: $s) { ... on Sensor { sensorState { status } } } }",
            {"s": SENSOR_SELECTOR},
        )
        assert started["startSensor"]["sensorState"]["status"] == "RUNNING"

        def finished_run():
            runs = dev.gql(RUNS)["runsOrError"]["results"]
            done = [r for r in runs if r["status"] in ("SUCCESS", "FAILURE", "CANCELED")]
            return done[0] if done else None

        run = dev.wait("the sensor's run", finished_run, timeout=150)
        assert run["status"] == "SUCCESS", dev.log.read_text()[-3000:]
        tags = {t["key"]: t["value"] for t in run["tags"]}
        assert tags["dagster/partition"] == "cluster-ui|2026-03-03" and tags["dagster/sensor_name"] == SENSOR_NAME

        nodes = {"/".join(n["assetKey"]["path"]): n for n in dev.gql(ASSETS)["assetNodes"]}
        assert {"koku/pod_usage", "raw_pod_usage", "node_capacity", "node_labels", "namespace_labels", "pod_usage_labelled",
                "storage_usage_labelled", "node_inventory", DAILY_SUMMARY} <= set(nodes)
        summary = nodes[DAILY_SUMMARY]
        assert summary["isPartitioned"] and summary["kinds"] == ["postgres"]
        dimensions = {d["name"]: d["partitionKeys"] for d in summary["partitionKeysByDimension"]}
        assert dimensions["cluster"] == ["cluster-ui"] and "2026-03-03" in dimensions["day"]
        checks = {c["name"]: c for c in summary["assetChecksOrError"]["checks"]}
        assert checks[USAGE_CONSERVED]["blocking"]
        assert checks[ROWS_IN_POSTGRESQL]["executionForLatestMaterialization"]["status"] == "SUCCEEDED"
        with psycopg.connect(dsn, autocommit=True) as conn:
            count = conn.execute(
                f'SELECT count(*) FROM "{dagster_home["OCP_ASSETS_SCHEMA"]}".reporting_ocpusagelineitem_daily_summary'
            ).fetchone()[0]
        assert count == 7

        check_ui(f"http://127.0.0.1:{dev.port}", run["runId"], sorted(checks), tmp_path)
    finally:
        dev.stop()
    assert dev.process.returncode is not None
