"""A stock Segment SDK (segment-analytics-python), pointed at the collector by host and write
key only, sends a few thousand events; after `ewh load` every one is in raw.events once."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import duckdb
from collector_process import WRITE_KEY, running_collector
from segment.analytics import Client

from ewh.cli.main import main as ewh_main

EVENTS = 3_000


def _send_all(client: Client) -> list[str]:
    ids = []
    for i in range(EVENTS):
        user = f"sdk-user-{i % 97}"
        kind = i % 6
        if kind == 0:
            _, message = client.track(user_id=user, event="Product Viewed",
                                      properties={"product_id": f"sku-{i}", "price": 9.5})
        elif kind == 1:
            _, message = client.identify(user_id=user, traits={"plan": "pro", "n": i})
        elif kind == 2:
            _, message = client.page(user_id=user, category="Docs", name="Pricing",
                                     properties={"path": "/pricing"})
        elif kind == 3:
            _, message = client.screen(anonymous_id=f"anon-{i}", name="Home")
        elif kind == 4:
            _, message = client.group(user_id=user, group_id="acme", traits={"seats": 5})
        else:
            _, message = client.alias(previous_id=f"anon-{i}", user_id=user)
        ids.append(message["messageId"])
    return ids


def test_a_stock_segment_sdk_delivers_every_event_exactly_once(tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    errors: list[Any] = []
    with running_collector(landing) as collector:
        client = Client(WRITE_KEY, host=collector.url, gzip=True, upload_size=100,
                        max_queue_size=EVENTS + 100, on_error=lambda e, b: errors.append(e),
                        max_retries=3)
        ids = _send_all(client)
        client.flush()
        client.join()
    assert errors == []
    assert len(set(ids)) == EVENTS
    warehouse = tmp_path / "warehouse.duckdb"
    assert ewh_main(["load", str(landing), "--warehouse", str(warehouse)]) == 0
    with duckdb.connect(str(warehouse), read_only=True) as con:
        con.execute("create temp table sent (message_id varchar)")
        con.executemany("insert into sent values (?)", [[i] for i in ids])
        per_id = con.execute(
            "select count(*), min(n), max(n) from (select s.message_id, count(e.message_id) n "
            "from sent s left join raw.events e using (message_id) group by 1)").fetchone()
        types = con.execute("select message_type, count(*) from raw.events group by 1 "
                            "order by 1").fetchall()
        rejected = con.execute("select count(*) from raw.events_rejected").fetchone()
    assert per_id == (EVENTS, 1, 1)
    assert types == [("alias", 500), ("group", 500), ("identify", 500), ("page", 500),
                     ("screen", 500), ("track", 500)]
    assert rejected == (0,)


def test_the_stock_sdk_honours_429_retry_after_and_still_delivers_everything(
        tmp_path: Path) -> None:
    landing = tmp_path / "landing"
    errors: list[Any] = []
    with running_collector(landing, EWH_RATE_LIMIT="2/second") as collector:
        client = Client(WRITE_KEY, host=collector.url, upload_size=20, max_queue_size=1000,
                        on_error=lambda e, b: errors.append(e), max_retries=10)
        started = time.monotonic()
        ids = [client.track(user_id="u-limited", event="Signed Up",
                            properties={"n": i})[1]["messageId"] for i in range(200)]
        client.flush()
        client.join()
        elapsed = time.monotonic() - started
    assert errors == []
    assert elapsed >= 3  # at least 10 requests at 2 a second: the SDK waited as told
    landed = {json.loads(line)["messageId"] for path in landing.glob("*.ndjson*")
              for line in path.read_bytes().splitlines()}
    assert set(ids) <= landed  # 10 batches at 2 requests/s: some were told to wait, none lost
