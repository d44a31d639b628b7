"""The README's route in a real browser (headless Debian Chromium, Playwright) against `dagster dev` on demo data."""

import datetime as dt
import json
import os
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

from ocp_assets.core.costs.checks import COST_CHECKS, COST_ROWS_IN_POSTGRESQL
from ocp_assets.core.generate import generate
from ocp_assets.core.outcomes import DAILY_SUMMARY, STAGES, USAGE_CONSERVED
from ocp_assets.core.storage import open_data_root
from ocp_assets.defs.assets import GROUP
from ocp_assets.defs.costs import COSTS_ASSET
from ocp_assets.defs.partitions import END_DATE_ENV, START_DATE_ENV
from ocp_assets.defs.sensors import SENSOR_NAME
from ocp_assets_tests.dagster_fixtures import (  # noqa: F401 (fixture)
    REPO,
    dagster_home_fixture,
)

LOCATION = "ocp_assets"
SENSOR_SELECTOR = {"repositoryLocationName": LOCATION, "repositoryName": "__repository__", "sensorName": SENSOR_NAME}
# Debian's chromium (`make test` installs it: scripts/ensure_chromium.sh); Playwright's download is unreachable here.
CHROMIUM = os.environ.get("OCP_ASSETS_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
CLUSTER = "ocp-assets-20k"  # the cluster id `generate --scale 20k` records
UI_TIMEOUT_MS = (
    60_000  # per visible text; the React app renders after its GraphQL queries, slow on a loaded 2-core machine
)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _default_sigint() -> None:
    # A background process of a non-interactive shell inherits SIGINT ignored; dagster dev shuts down on SIGINT.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


class Dev:
    def __init__(self, port: int, log: Path, env: dict[str, str] | None = None):
        self.port = port
        self.log = log
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).parent / "dagster"),
                "dev",
                "-w",
                str(REPO / "workspace.yaml"),
                "-h",
                "127.0.0.1",
                "-p",
                str(port),
            ],
            cwd=REPO,
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, **(env or {})},
            preexec_fn=_default_sigint,
        )

    def gql(self, query: str, variables: dict | None = None) -> dict:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/graphql",
            data=json.dumps({"query": query, "variables": variables or {}}).encode(),
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
BACKFILLS = "{ partitionBackfillsOrError { ... on PartitionBackfills { results { id status numPartitions } } } }"
PARTITION_STATS = """{ assetNodes { assetKey { path } isPartitioned
  partitionStats { numMaterialized numFailed numPartitions numMaterializing } } }"""
DEMO_DAY = "2026-10-02"  # a day of the 20k demo data (2026-10-01 .. 2026-10-03)
EMPTY_DAY = "2026-10-20"  # a day partition without koku data
START_DATE = "2026-10-01"  # as `make ui` starts the day partitions on the demo data
# The day partitions end here, not today: the counts below stay the same whatever the date the test runs on.
END_DATE = "2026-11-30"
DAYS = (dt.date.fromisoformat(END_DATE) - dt.date.fromisoformat(START_DATE)).days + 1  # 31 + 30 = 61
MONTHS = 2  # October and November: the cost asset's months of the day window


def _see(page: Page, text: str) -> None:
    """A visible element whose whole text is `text` (the UI also renders hidden copies of names, for measuring)."""
    expect(page.get_by_text(text, exact=True).filter(visible=True).first).to_be_visible(timeout=UI_TIMEOUT_MS)


class Browser:
    """A headless Chromium page that keeps a screenshot of every step (test artifacts) and of a failure."""

    def __init__(self, playwright, base: str, shots: Path):
        self.base = base
        self.shots = shots
        self.shots.mkdir(parents=True, exist_ok=True)
        self.browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        self.page = self.browser.new_page(viewport={"width": 1800, "height": 1000})  # wide enough for metadata tables
        self.page.set_default_timeout(UI_TIMEOUT_MS)
        self.page.set_default_navigation_timeout(UI_TIMEOUT_MS)
        self.count = 0

    def shot(self, name: str) -> None:
        self.count += 1
        self.page.screenshot(path=str(self.shots / f"{self.count:02d}-{name}.png"), full_page=True)


SELECT_ATTEMPTS = 3


def _launch_all(page: Page, partitions: int | None) -> None:
    """In the launch dialog: All clusters, All days, Launch backfill (the README's route).

    A click on All before the dialog has loaded its partitions selects nothing (seen on a loaded machine: Launch
    backfill stayed disabled over 0 partitions); the clicks are repeated until the dialog counts `partitions`. With
    the cost asset in the selection (months downstream of the days) Dagster shows no count: None waits for the whole
    day window instead.
    """
    dialog = page.get_by_role("dialog")
    expect(dialog.get_by_text("Partition selection")).to_be_visible(timeout=UI_TIMEOUT_MS)
    alls = dialog.get_by_role("button", name="All", exact=True)
    expect(alls).to_have_count(2, timeout=UI_TIMEOUT_MS)  # one per dimension: cluster, day
    launch = dialog.get_by_role("button", name="Launch backfill")
    if partitions is None:  # the cluster chosen, the whole day window, and a selection Dagster accepts
        selected = [
            dialog.get_by_text(CLUSTER, exact=True).first,
            dialog.locator(f"input[value='[{START_DATE}...{END_DATE}]']"),
        ]
    else:
        selected = [dialog.get_by_text(f"{partitions} partitions", exact=True)]
    for attempt in range(SELECT_ATTEMPTS):
        alls.nth(0).click()
        alls.nth(1).click()
        try:
            for each in selected:
                expect(each).to_be_visible(timeout=UI_TIMEOUT_MS // SELECT_ATTEMPTS)
            expect(launch).to_be_enabled(timeout=UI_TIMEOUT_MS // SELECT_ATTEMPTS)
            break
        except AssertionError:
            if attempt == SELECT_ATTEMPTS - 1:
                raise
    launch.click()
    expect(dialog).to_be_hidden(timeout=UI_TIMEOUT_MS)


def test_readme_route_in_the_ui_every_partition_green_with_its_own_numbers_and_checks(dagster_home, tmp_path, dsn):
    """Sensor on; daily_summary -> Materialize... -> All; the group's Materialize all -> All: every partition green
    (days without data green and marked empty); a partition's row count and check results on its own views."""
    if not Path(CHROMIUM).is_file():  # a missing browser fails (never skips), before paying dagster dev's start-up
        pytest.fail(f"{CHROMIUM} is missing: scripts/ensure_chromium.sh (run by make test) installs it or says how")
    generate(open_data_root(dagster_home["OCP_ASSETS_DATA_ROOT"]), scale="20k")
    shots = Path(os.environ.get("OCP_ASSETS_UI_SHOTS", tmp_path / "screenshots"))
    dev = Dev(_free_port(), tmp_path / "dagster-dev.log", {START_DATE_ENV: START_DATE, END_DATE_ENV: END_DATE})
    base = f"http://127.0.0.1:{dev.port}"
    try:
        dev.wait(
            "the code location",
            lambda: dev.gql("{ repositoriesOrError { ... on RepositoryConnection { nodes { location { name } } } } }")[
                "repositoriesOrError"
            ]["nodes"],
            timeout=120,
        )
        with sync_playwright() as playwright:
            ui = Browser(playwright, base, shots)
            page = ui.page
            step = "sensor"
            try:
                # 1. Automation -> the sensor -> Running on; its first tick registers the cluster and runs its days.
                page.goto(f"{base}/locations/{LOCATION}/sensors/{SENSOR_NAME}")
                page.locator("label:has(input[type=checkbox])").first.click()
                expect(page.get_by_role("checkbox").first).to_be_checked(timeout=UI_TIMEOUT_MS)
                ui.shot("sensor-on")
                run = dev.wait(
                    "the sensor's run", lambda: _all_finished(dev.gql(RUNS)["runsOrError"]["results"]), timeout=180
                )
                assert {r["status"] for r in run} == {"SUCCESS"}, dev.log.read_text()[-3000:]

                # 2. daily_summary -> Materialize... -> All -> Launch backfill: the DAYS day partitions of the demo
                # cluster.
                step = "daily_summary Materialize..."
                page.goto(f"{base}/assets/{DAILY_SUMMARY}")
                page.get_by_role("button", name="Materialize…").first.click()
                _launch_all(page, DAYS)
                backfill = dev.wait("the backfill", lambda: _backfills_done(dev, 1), timeout=240)
                assert [b["status"] for b in backfill] == ["COMPLETED_SUCCESS"], dev.log.read_text()[-3000:]
                _backfill_page(
                    ui, backfill[0]["id"], assets=1, name="backfill-daily-summary"
                )  # the asset page's selection

                # 3. The group's page -> Materialize all -> All -> Launch backfill: every asset of the code location,
                # the cost asset's months after their days.
                step = "group Materialize all"
                page.goto(f"{base}/asset-groups/{GROUP}")
                page.get_by_role("button", name="Materialize all").first.click()
                _launch_all(page, None)
                backfills = dev.wait("the second backfill", lambda: _backfills_done(dev, 2), timeout=420)
                assert [b["status"] for b in backfills] == ["COMPLETED_SUCCESS"] * 2, dev.log.read_text()[-3000:]
                group = next(b["id"] for b in backfills if b["id"] != backfill[0]["id"])
                _backfill_page(ui, group, assets=len(STAGES) + 1, name="backfill-group")

                stats = {
                    "/".join(n["assetKey"]["path"]): n["partitionStats"]
                    for n in dev.gql(PARTITION_STATS)["assetNodes"]
                    if n["isPartitioned"] and n["partitionStats"]
                }
                # The window's two months, materialized without costs (the demo cluster has no cost model).
                assert stats[COSTS_ASSET]["numMaterialized"] == MONTHS and stats[COSTS_ASSET]["numFailed"] == 0, stats
                for stage in STAGES:
                    assert stats[stage]["numPartitions"] == DAYS, stats[stage]
                    assert stats[stage]["numMaterialized"] == DAYS and stats[stage]["numFailed"] == 0, (
                        stage,
                        stats[stage],
                    )

                # 4. The partitions tab: all green; a data day shows its own row count, an empty day says so.
                step = "partitions"
                page.goto(f"{base}/assets/{DAILY_SUMMARY}?view=partitions")
                _see(page, f"Materialized ({DAYS})")
                _see(page, "Failed (0)")
                ui.shot("partitions-all-green")
                rows = _summary_rows(dsn, dagster_home["OCP_ASSETS_SCHEMA"], DEMO_DAY)
                page.goto(f"{base}/assets/{DAILY_SUMMARY}?view=partitions&partition={CLUSTER}%7C{DEMO_DAY}")
                _see(page, f"{CLUSTER}|{DEMO_DAY}")
                _see(page, "dagster/row_count")
                _see(page, f"{rows:,}" if rows >= 1000 else str(rows))
                _see(page, "top_namespaces")
                ui.shot("partition-with-data")
                page.goto(f"{base}/assets/{DAILY_SUMMARY}?view=partitions&partition={CLUSTER}%7C{EMPTY_DAY}")
                _see(page, f"{CLUSTER}|{EMPTY_DAY}")
                _see(page, "no koku data for this day")
                ui.shot("partition-without-data")

                # 4b. A cost month's own view: materialized by the group's backfill, saying why it holds no costs
                # (the demo cluster has no cost model), with its checks passed.
                step = "cost month"
                month = START_DATE[:7]
                page.goto(f"{base}/assets/{COSTS_ASSET}?view=partitions&partition={CLUSTER}%7C{month}")
                _see(page, f"{CLUSTER}|{month}")
                status = page.get_by_text("no cost model is assigned to source").filter(visible=True).first
                expect(status).to_be_visible(timeout=UI_TIMEOUT_MS)
                ui.shot("cost-month-without-model")
                page.goto(f"{base}/assets/{COSTS_ASSET}?view=checks")
                _see(page, f"Checks ({len(COST_CHECKS)})")  # the months' blocking checks (long names cut short)
                _see(page, COST_ROWS_IN_POSTGRESQL)
                _see(page, "Passed")  # its latest evaluation, with the rows read back per row class
                ui.shot("cost-checks")

                # 5. A check's partition view: this partition's own evaluation, passed, with the numbers compared.
                step = "check partitions"
                page.goto(f"{base}/assets/{DAILY_SUMMARY}?view=checks&checkDetail={USAGE_CONSERVED}")
                check_tabs = page.get_by_role("tablist").filter(has=page.get_by_role("tab", name="Execution history"))
                check_tabs.get_by_role("tab", name="Partitions").click()
                _see(page, f"Passed ({DAYS})")  # every partition's own evaluation, each targeting its materialization
                _see(page, "Failed (0)")
                ui.shot("check-partitions")
                page.get_by_placeholder("Filter by day").last.fill(DEMO_DAY)
                page.get_by_title(DEMO_DAY, exact=True).last.click()
                _see(page, f"{CLUSTER}|{DEMO_DAY}")
                expect(page.get_by_text("8 pod measures conserved over").first).to_be_visible(timeout=UI_TIMEOUT_MS)
                _see(page, "compared")  # the numbers compared, one row per measure
                _see(page, "pod_usage_cpu_core_hours")
                ui.shot("check-partition")
            except Exception as exc:
                ui.shot("failure")
                exc.add_note(f"UI route failed at: {step} ({page.url}); screenshots in {shots}")
                raise
            finally:
                ui.browser.close()
        with psycopg.connect(dsn, autocommit=True) as conn:
            days = conn.execute(
                "SELECT count(DISTINCT usage_start) FROM "
                f'"{dagster_home["OCP_ASSETS_SCHEMA"]}".reporting_ocpusagelineitem_daily_summary'
            ).fetchone()[0]
        assert days == 3  # the demo's three days; the other DAYS - 3 empty days wrote nothing
    finally:
        dev.stop()
    assert dev.process.returncode is not None


def _backfill_page(ui: Browser, backfill_id: str, *, assets: int, name: str) -> None:
    """A backfill's own page: succeeded, each targeted asset's DAYS partitions completed, none failed."""
    ui.page.goto(f"{ui.base}/runs/b/{backfill_id}")
    _see(ui.page, "Succeeded")
    expect(ui.page.get_by_text("100% completed").filter(visible=True)).to_have_count(assets, timeout=UI_TIMEOUT_MS)
    ui.shot(name)


def _all_finished(runs: list[dict]) -> list[dict] | None:
    return runs if runs and all(r["status"] in ("SUCCESS", "FAILURE", "CANCELED") for r in runs) else None


def _backfills_done(dev: "Dev", count: int) -> list[dict] | None:
    backfills = dev.gql(BACKFILLS)["partitionBackfillsOrError"]["results"]
    finished = [b for b in backfills if b["status"] not in ("REQUESTED",)]
    return finished if len(backfills) >= count and len(finished) == len(backfills) else None


def _summary_rows(dsn: str, schema: str, day: str) -> int:
    with psycopg.connect(dsn, autocommit=True) as conn:
        return conn.execute(
            f'SELECT count(*) FROM "{schema}".reporting_ocpusagelineitem_daily_summary WHERE usage_start = %s', (day,)
        ).fetchone()[0]
