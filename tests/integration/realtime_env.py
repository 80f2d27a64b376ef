"""What the real-time tests share: a small built warehouse whose data ends now, a real NATS
server, the real collector publishing to it, and a real HTTP receiver on 127.0.0.1.

The receiver checks nothing itself: it records each request as it came (headers and raw
body), answers `fail_first` requests per Idempotency-Key with 500 and can hold each answer
`delay` seconds, so a test can kill the dispatcher while a delivery is in flight.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import duckdb
from dbt_runner import run_dbt

from ewh.common.clock import utc_now
from ewh.ingest.loader import load_files
from ewh.sample.generator import generate
from ewh.segments.catalog import segments_from_manifest
from ewh.segments.serving import publish_serving_copy

EWH = str(Path(sys.executable).with_name("ewh"))
PROJECT = Path(__file__).resolve().parents[2]
SECRET_NAME = "test_receiver"
SECRET = "whsec-test-0123456789abcdef"


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook receiver on a free loopback port."""

    fail_first: int = 0
    delay: float = 0.0
    requests: list[Received] = field(default_factory=list)
    tries: dict[str, int] = field(default_factory=dict)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def __enter__(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                key = self.headers.get("Idempotency-Key", "")
                receiver.requests.append(Received(self.path, dict(self.headers.items()), body,
                                                  time.time()))
                receiver.tries[key] = receiver.tries.get(key, 0) + 1
                if receiver.delay:
                    time.sleep(receiver.delay)
                status = 500 if receiver.tries[key] <= receiver.fail_first else 200
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[Received]:
        deadline = time.monotonic() + timeout
        while len(self.requests) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        return list(self.requests)


def build_warehouse(root: Path, events: int = 2500, days: int = 7) -> datetime:
    """Generated events ending a few minutes ago, loaded and built by the real dbt at their
    end; returns that as_of. The serving copy is published from it."""
    end = utc_now().replace(microsecond=0) - timedelta(minutes=5)
    generate(root / "seed", events=events, seed=11, days=days, end=end)
    load_files(sorted((root / "seed").glob("*.ndjson")), root / "warehouse.duckdb",
               landing_dir=root / "seed")
    run_dbt(root / "warehouse.duckdb", root / "dbt", "build", "--exclude-resource-type",
            "unit_test", "--vars", json.dumps({"as_of": str(end)}))
    manifest = json.loads((root / "dbt" / "target" / "manifest.json").read_text())
    publish_serving_copy(root / "warehouse.duckdb", root / "serving.duckdb",
                         segments_from_manifest(manifest))
    shutil.rmtree(root / "seed")
    return end


def environment(root: Path, nats_url: str, **extra: str) -> dict[str, str]:
    return {**os.environ,
            "EWH_WAREHOUSE": str(root / "warehouse.duckdb"),
            "EWH_SERVING": str(root / "serving.duckdb"),
            "EWH_LANDING_DIR": str(root / "landing"),
            "EWH_STREAM_DIR": str(root / "stream"),
            "EWH_DBT_TARGET_DIR": str(root / "dbt" / "target"),
            "EWH_EXPORTS_DIR": str(root / "exports"),
            "EWH_NATS_URL": nats_url,
            "EWH_WEBHOOK_STATE": str(root / "webhooks.sqlite"),
            "EWH_WEBHOOK_SUBSCRIBERS": str(root / "subscribers.yml"),
            "EWH_WEBHOOK_SECRETS": f"{SECRET_NAME}={SECRET}",
            "EWH_WEBHOOK_BACKOFF_SECONDS": "0.05",
            "EWH_WEBHOOK_BACKOFF_MAX_SECONDS": "0.2",
            "EWH_WEBHOOK_MAX_ATTEMPTS": "3",
            "EWH_WEBHOOK_TIMEOUT_SECONDS": "10",
            "EWH_STREAM_BATCH_WAIT_SECONDS": "1",
            **extra}


def ewh(env: dict[str, str], *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    done = subprocess.run([EWH, *args], env=env, capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, cwd=PROJECT)
    assert done.returncode == 0, f"ewh {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"
    return done


def write_subscribers(path: Path, subscribers: list[dict[str, Any]]) -> None:
    import yaml

    path.write_text(yaml.safe_dump({"subscribers": subscribers}))


def rows(warehouse: Path, sql: str, params: list[Any] | None = None) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()
