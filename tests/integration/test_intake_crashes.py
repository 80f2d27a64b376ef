"""Crashes: kill -9 the collector mid-stream and the loader mid-file; then every acknowledged
event is in raw.events exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import duckdb
import pytest
import requests
from collector_process import WRITE_KEY, running_collector, start_collector

from ewh.cli.main import main as ewh_main

AUTH = (WRITE_KEY, "")
BATCH = 50


def _batch() -> list[dict[str, object]]:
    return [{"type": "track", "messageId": str(uuid.uuid4()), "anonymousId": "a-1",
             "event": "Product Viewed", "timestamp": "2026-10-01T12:00:00Z"}
            for _ in range(BATCH)]


class _Sender(threading.Thread):
    """Sends batches until told to stop; remembers which were acknowledged, which not."""

    def __init__(self, url: str) -> None:
        super().__init__(daemon=True)
        self.url, self.stop = url, threading.Event()
        self.acked: list[str] = []
        self.unacked: list[list[dict[str, object]]] = []

    def run(self) -> None:
        with requests.Session() as http:
            while not self.stop.is_set():
                batch = _batch()
                try:
                    response = http.post(f"{self.url}/v1/batch", json={"batch": batch},
                                         auth=AUTH, timeout=5)
                except requests.RequestException:
                    self.unacked.append(batch)
                    return  # the collector is gone
                if response.status_code == 200:
                    self.acked += [str(m["messageId"]) for m in batch]
                else:
                    self.unacked.append(batch)


def _raw_counts(warehouse: Path) -> dict[str, int]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute("select message_id, count(*) from raw.events group by 1").fetchall()
    return {message_id: count for message_id, count in rows}


def test_kill_9_of_the_collector_mid_stream_loses_no_acknowledged_event(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    # Small files and short ages: rotations happen while the stream runs.
    settings = {"EWH_LANDING_MAX_BYTES": "60000", "EWH_LANDING_MAX_AGE_SECONDS": "0.3"}
    collector = start_collector(landing, **settings)
    senders = [_Sender(collector.url) for _ in range(3)]
    for sender in senders:
        sender.start()
    deadline = time.monotonic() + 10
    while sum(len(s.acked) for s in senders) < 3_000 and time.monotonic() < deadline:
        time.sleep(0.02)
    collector.kill9()  # mid-stream: requests are in flight
    for sender in senders:
        sender.stop.set()
        sender.join(timeout=10)
    acked = [m for s in senders for m in s.acked]
    assert len(acked) >= 3_000
    leftovers = list(landing.glob("*.open"))
    assert len(leftovers) <= 1  # the file the killed collector had open, if any
    # A torn write, as a kill during write() leaves it (never fsync'ed, so never acknowledged).
    leftover = leftovers[0] if leftovers else landing / "events-0-killed-000001.ndjson.open"
    with leftover.open("ab") as f:
        f.write(b'{"type":"track","messageId":"torn-never-acked","anonym')
    # The restarted collector recovers the leftover; clients retry what was not acknowledged.
    with running_collector(landing, **settings) as restarted, requests.Session() as http:
        assert not leftover.exists()
        retried = [b for s in senders for b in s.unacked]
        for batch in retried:
            assert http.post(f"{restarted.url}/v1/batch", json={"batch": batch},
                             auth=AUTH).status_code == 200
    assert list(landing.glob("*.open")) == []
    warehouse = tmp_path / "warehouse.duckdb"
    assert ewh_main(["load", str(landing), "--warehouse", str(warehouse)]) == 0
    counts = _raw_counts(warehouse)
    sent = set(acked) | {str(m["messageId"]) for b in retried for m in b}
    assert set(counts) == sent  # every acknowledged (and retried) event, nothing else
    assert set(counts.values()) == {1}  # each exactly once
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from raw.events_rejected").fetchone() == (0,)


# The child stops mid-file, records inserted but not committed, and waits to be killed: after
# its fourth chunk (exact reader), or after the whole file's rows are in (DuckDB reader).
_LOADER_CHILD = """
import sys, time
import ewh.ingest.loader as loader
import ewh.ingest.record_checks as checks
if sys.argv[3] == "records":
    original = checks.read_records
    def traced(path, size, **where):
        for number, chunk in enumerate(original(path, size, **where)):
            if number == 3:
                print("mid-file", flush=True)
            yield chunk
    checks.read_records = traced
else:
    inserted = checks._insert_checked
    def traced(*args):
        inserted(*args)
        print("mid-file", flush=True)
        time.sleep(60)
    checks._insert_checked = traced
loader.load_files([sys.argv[1]], sys.argv[2], chunk_lines=2_000,
                  sql_reader=sys.argv[3] == "duckdb")
print("finished", flush=True)
"""


@pytest.mark.parametrize("reader", ["records", "duckdb"])
def test_kill_9_of_the_loader_mid_file_leaves_nothing_and_the_rerun_loads_once(
        tmp_path: Path, reader: str) -> None:
    path = tmp_path / "big.ndjson"
    ids = [f"m-{i}" for i in range(60_000)]
    path.write_text("".join(json.dumps({"type": "track", "messageId": m, "userId": "u",
                                        "event": "Signed Up"}) + "\n" for m in ids))
    warehouse = tmp_path / "warehouse.duckdb"
    child = subprocess.Popen(
        [sys.executable, "-c", _LOADER_CHILD, str(path), str(warehouse), reader],
        stdout=subprocess.PIPE, text=True)
    assert child.stdout is not None
    assert child.stdout.readline().strip() == "mid-file"  # records are in, uncommitted
    child.kill()
    child.wait(timeout=10)
    with duckdb.connect(str(warehouse)) as con:  # replays the WAL, if any
        tables = {t for (t,) in con.execute(
            "select table_name from information_schema.tables where table_schema = 'raw'"
        ).fetchall()}
        if "events" in tables:
            assert con.execute("select count(*) from raw.events").fetchone() == (0,)
            assert con.execute("select count(*) from raw.load_manifest").fetchone() == (0,)
    assert ewh_main(["load", str(path), "--warehouse", str(warehouse)]) == 0
    assert ewh_main(["load", str(path), "--warehouse", str(warehouse)]) == 0  # skipped
    counts = _raw_counts(warehouse)
    assert len(counts) == 60_000 and set(counts.values()) == {1}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*), sum(rows_loaded) from raw.load_manifest"
                           ).fetchone() == (1, 60_000)
