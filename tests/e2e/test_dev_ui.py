"""`make dev` serves the Dagster UI; a person opening it sees every segment as an asset, and a
segment's page shows its owner and its rule first. A fresh instance starts no run by itself
(other than the hourly schedule on the hour), even with landing files waiting (the landing
sensor's first tick only records them).

The UI is opened in Debian's headless chromium (installed by `make test`) through
Playwright, and screenshots are kept in test-artifacts/ for review.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from playwright.sync_api import Page, sync_playwright

from ewh.common.settings import PROJECT_ROOT
from ewh.segments.catalog import load_segments

ASSET_QUERY = "{ assetNodes { assetKey { path } } }"
CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = PROJECT_ROOT / "test-artifacts"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(port: int, query: str) -> dict:
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/graphql", data=json.dumps({"query": query}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.load(response)


def _wait_for_assets(port: int, deadline: float) -> list[str]:
    while time.monotonic() < deadline:
        try:
            nodes = _graphql(port, ASSET_QUERY)["data"]["assetNodes"]
            if nodes:
                return ["/".join(n["assetKey"]["path"]) for n in nodes]
        except (OSError, KeyError, TypeError, ValueError):
            pass
        time.sleep(1)
    raise TimeoutError(f"the Dagster UI on port {port} showed no assets in time")


def _dismiss_welcome(page: Page) -> None:
    skip = page.get_by_role("button", name="Skip")
    if skip.count():
        skip.first.click()


def _look_at_the_segments_group(port: int, segments: list[str]) -> list[str]:
    """Open the segments group as a person would; return the segments not shown."""
    ARTIFACTS.mkdir(exist_ok=True)
    group = f"http://127.0.0.1:{port}/locations/orchestration.definitions/asset-groups/segments"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(group, wait_until="networkidle")
        _dismiss_welcome(page)
        page.wait_for_timeout(2000)  # the lineage graph lays itself out
        page.screenshot(path=str(ARTIFACTS / "dagster-ui-segments-lineage.png"))
        page.goto(f"{group}/list", wait_until="networkidle")
        _dismiss_welcome(page)
        page.get_by_text(f"segments / {segments[0]}").first.wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "dagster-ui-segments-list.png"), full_page=True)
        shown = page.inner_text("body")
        browser.close()
    return [name for name in segments if f"segments / {name}" not in shown]


SENSOR_TICKS = """{ sensorOrError(sensorSelector: {repositoryLocationName:
  "orchestration.definitions", repositoryName: "__repository__",
  sensorName: "landing_zone_sensor"}) { ... on Sensor { sensorState {
  ticks(limit: 5) { status skipReason } } } } }"""
RUNS = "{ runsOrError { ... on Runs { results { runId jobName tags { key value } } } } }"


def _runs_not_from_a_schedule(port: int) -> list[dict]:
    """Runs something other than a schedule's tick started. The hourly refresh schedule is on
    by design and fires at the top of the hour, which a slow run of this test may cross."""
    runs = _graphql(port, RUNS)["data"]["runsOrError"]["results"]
    return [run for run in runs
            if not any(tag["key"] == "dagster/schedule_name" for tag in run["tags"])]


def _first_sensor_tick(port: int, deadline: float) -> dict:
    while time.monotonic() < deadline:
        try:
            data = _graphql(port, SENSOR_TICKS)["data"]["sensorOrError"]
            ticks = data["sensorState"]["ticks"]
            if ticks:
                return ticks[-1]
        except (OSError, KeyError, TypeError, ValueError):
            pass
        time.sleep(2)
    raise TimeoutError("the landing sensor never ticked")


def _look_at_a_segment_page(port: int, segment, path: Path) -> str:
    """A segment asset's page as a marketer opens it: what the first screen says."""
    url = f"http://127.0.0.1:{port}/assets/segments/{segment.name}"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(url, wait_until="networkidle")
        _dismiss_welcome(page)
        page.get_by_text(segment.rule[:40]).first.wait_for(timeout=30_000)
        page.screenshot(path=str(path))
        shown = page.inner_text("body")
        browser.close()
    return shown


def test_dev_serves_the_ui_showing_every_segment_asset_and_stops_on_sigterm(tmp_path: Path):
    from orchestration.project import dbt_project

    specs = load_segments(dbt_project.manifest_path)
    segments = [s.name for s in specs]
    port = _free_port()
    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "events-2026-06-01.ndjson").write_text("{}\n")  # waiting to be loaded
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home"),
           "EWH_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
           "EWH_LANDING_DIR": str(landing)}
    log = (tmp_path / "dev.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "ewh.cli", "dev", "--host", "127.0.0.1", "--port", str(port)],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        keys = _wait_for_assets(port, time.monotonic() + 180)
        assert {f"segments/{name}" for name in segments} <= set(keys)
        assert "raw/events" in keys and "serving/serving_copy" in keys
        assert _look_at_the_segments_group(port, segments) == []
        assert (ARTIFACTS / "dagster-ui-segments-lineage.png").stat().st_size > 10_000
        cart = next(s for s in specs if s.name == "seg_cart_abandoners")
        shown = _look_at_a_segment_page(port, cart, ARTIFACTS / "dagster-ui-segment-page.png")
        assert cart.owner in shown and cart.rule[:60] in shown
        # The rule comes before dagster-dbt's own metadata on the page.
        assert "dagster_dbt/" not in shown or shown.index(cart.rule[:60]) < shown.index(
            "dagster_dbt/")
        tick = _first_sensor_tick(port, time.monotonic() + 180)
        assert tick["status"] == "SKIPPED" and "first tick" in tick["skipReason"]
        assert _runs_not_from_a_schedule(port) == []
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) is not None
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
