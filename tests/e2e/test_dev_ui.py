"""`make dev` serves the Dagster UI, and its code location shows the segment assets."""

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

from ewh.paths import PROJECT_ROOT

ASSET_QUERY = '{ assetNodes { assetKey { path } } }'


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


def test_dev_serves_the_ui_with_segment_assets_and_stops_on_sigterm(tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path / "dagster_home"),
           "EWH_WAREHOUSE": str(tmp_path / "warehouse.duckdb")}
    log = (tmp_path / "dev.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "orchestration.dev", "--host", "127.0.0.1", "--port", str(port)],
        cwd=PROJECT_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        keys = _wait_for_assets(port, time.monotonic() + 120)
        assert "segments/seg_cart_abandoners" in keys
        assert "exports/seg_cart_abandoners" in keys
        assert "raw/events" in keys
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) is not None
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()
