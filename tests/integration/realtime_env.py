"""What the real-time tests share: a small built warehouse whose data ends now, a real NATS
server, the real collector publishing to it, and a real HTTP receiver on 127.0.0.1.

The receiver checks nothing itself: it records each request as it came (headers and raw
body), answers `fail_first` requests per Idempotency-Key with 500 and can hold each answer
`delay` seconds, so a test can kill the dispatcher while a delivery is in flight.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
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
import pytest
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


# One micro-batch of `ewh stream consume`, dbt's parse included (a consumer's first), under a
# full `make test` on two cores: the longest a consumer asked to stop may take.
MICRO_BATCH_BOUND_SECONDS = 60.0
# Past the micro-batch it was in: the rest of a load, ack, disconnect and interpreter exit.
STOP_SLACK_SECONDS = 10.0
BATCH_LINE = re.compile(r"(\d+) events \((\d+) loaded, (\d+) duplicate, (\d+) rejected\); "
                        r"refreshed in ([\d.]+)s \+ publish ([\d.]+)s")


def ignoring_stop_signals() -> None:
    """preexec_fn: start the child with SIGINT and SIGTERM ignored, as a pytest worker started
    its children once the suite ran in the background of a non-interactive shell (SIGINT
    ignored) and an in-process Dagster run had copied that to SIGTERM (issue #17). ewh's
    long-running commands must stop on SIGTERM all the same."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def start_ewh(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    """A long-running `ewh ...` with its stdout and stderr in `log`."""
    with log.open("w") as out:
        return subprocess.Popen([EWH, *args], env=env, cwd=PROJECT, stdout=out,
                                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                preexec_fn=ignoring_stop_signals)


def stop(process: subprocess.Popen, bound: float, log: Path | None = None) -> float:
    """SIGTERM, then the seconds until it exited; a process that outlives `bound` is killed
    and the test fails (one left running would consume the next test's events)."""
    started = time.monotonic()
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=bound)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        pytest.fail(f"{' '.join(map(str, process.args))} still ran {bound:.0f} s after "
                    f"SIGTERM (killed):\n{log.read_text()[-3000:] if log else ''}")
    return time.monotonic() - started


def wait_for_batch_file(stream_dir: Path, timeout: float = MICRO_BATCH_BOUND_SECONDS) -> bool:
    """True once a micro-batch file exists: written before the load, removed after the ack,
    so the consumer is inside a micro-batch."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any((stream_dir / "batches").glob("stream-*.ndjson")):
            return True
        time.sleep(0.02)
    return False
