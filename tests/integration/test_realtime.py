"""Real-time activation end to end, all real: nats-server (JetStream), the collector
publishing to it, `ewh stream consume` loading micro-batches and refreshing the fast
segments with the real dbt, `ewh webhooks` POSTing to an HTTP receiver on 127.0.0.1.

One warehouse is built for the module (a few thousand generated events ending now); the
tests run in order on it, each with its own subscriber (its own cursor).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import signal
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import nats
import pytest
import requests
from collector_process import READ_KEY, WRITE_KEY, Collector, running_collector
from realtime_env import (
    BATCH_LINE,
    EWH,
    MICRO_BATCH_BOUND_SECONDS,
    PROJECT,
    SECRET,
    SECRET_NAME,
    STOP_SLACK_SECONDS,
    Receiver,
    build_warehouse,
    environment,
    ewh,
    rows,
    start_ewh,
    stop,
    wait_for_batch_file,
    write_subscribers,
)

from ewh.common.clock import utc_now
from ewh.stream.broker import NatsBroker

CART_USER = "rt-cart-user-1"
CONSENT = {"consent": {"categoryPreferences": {"analytics": True}}}


class World:
    def __init__(self, root: Path, end: datetime, broker: NatsBroker,
                 collector: Collector) -> None:
        self.root, self.end, self.broker, self.collector = root, end, broker, collector
        self.env = environment(root, broker.url)
        self.cart_at: datetime | None = None
        self.last_as_of = end

    def at(self, as_of: datetime) -> dict[str, str]:
        self.last_as_of = as_of
        return {**self.env, "EWH_AS_OF": as_of.isoformat(sep=" ")}

    def send(self, event: str, message_id: str, user: str, when: datetime,
             **properties: object) -> requests.Response:
        return requests.post(f"{self.collector.url}/v1/track", auth=(WRITE_KEY, ""), json={
            "userId": user, "event": event, "messageId": message_id,
            "timestamp": when.isoformat() + "Z", "properties": properties,
            "context": CONSENT}, timeout=10)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    root = tmp_path_factory.mktemp("realtime")
    end = build_warehouse(root)
    with NatsBroker(root / "broker") as broker:
        env = environment(root, broker.url)
        passed = {k: v for k, v in env.items() if k.startswith("EWH_") and k not in (
            "EWH_WRITE_KEYS", "EWH_READ_KEYS", "EWH_ADMIN_KEYS")}
        with running_collector(root / "landing", **passed) as collector:
            yield World(root, end, broker, collector)


def verify_signature(secret: str, header: str, body: bytes) -> bool:
    """Written from the Stripe scheme, apart from ewh.activation.signing: t=..,v1=hex of
    HMAC-SHA256(secret, "<t>.<body>"), t within 5 minutes."""
    fields = dict(part.split("=", 1) for part in header.split(","))
    expected = hmac.new(secret.encode(), fields["t"].encode() + b"." + body,
                        hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected, fields["v1"]) and abs(time.time() - int(fields["t"])) < 300


def changes_in_serving(world: World, segment: str) -> list[tuple[str, str, str]]:
    return rows(world.root / "serving.duckdb",
                "select change_id, user_id, change from segments.segment_changes "
                "where segment = ? order by change_seq", [segment])


async def _stream_messages(url: str, stream: str, subject: str) -> list:
    nc = await nats.connect(url)
    try:
        js = nc.jetstream()
        sub = await js.pull_subscribe(subject, stream=stream)
        found = []
        while True:
            try:
                batch = await sub.fetch(1000, timeout=1)
            except (TimeoutError, nats.errors.TimeoutError):
                return found
            found += batch
            for message in batch:
                await message.ack()
    finally:
        await nc.close()


def stream_messages(url: str, stream: str, subject: str) -> list:
    return asyncio.run(_stream_messages(url, stream, subject))


def test_cart_add_then_abandonment_then_purchase_gives_one_signed_entry_and_one_exit(
        world: World) -> None:
    with Receiver() as receiver:
        write_subscribers(world.root / "subscribers.yml", [{
            "name": "crm_cart_followup", "segment": "cart_abandoners", "url": receiver.url,
            "secret": SECRET_NAME}])
        ewh(world.env, "webhooks", "dispatch", "--once")  # starts at the log's end
        world.cart_at = utc_now().replace(microsecond=0)
        answer = world.send("Product Added", "rt-cart-add-1", CART_USER, world.cart_at,
                            product_id="sku-42", price=80.0)
        assert answer.status_code == 200, answer.text

        # An hour later: loaded, not abandoned yet.
        ewh(world.at(world.cart_at + timedelta(hours=1)), "stream", "consume", "--once")
        loaded = rows(world.root / "warehouse.duckdb",
                      "select count(*) from raw.events where message_id = 'rt-cart-add-1'")
        assert loaded == [(1,)]
        ewh(world.env, "webhooks", "dispatch", "--once")
        assert [r for r in receiver.requests if r.json["user_id"] == CART_USER] == []

        # Past the 24 h window: the user enters, one signed call.
        ewh(world.at(world.cart_at + timedelta(hours=25)), "stream", "consume", "--once")
        ewh(world.env, "webhooks", "dispatch", "--once")
        mine = [r for r in receiver.requests if r.json["user_id"] == CART_USER]
        assert len(mine) == 1
        call = mine[0]
        assert call.json["change"] == "entered"
        assert call.json["segment"] == "seg_cart_abandoners"
        assert call.json["evidence"]["cart_product_id"] == "sku-42"
        assert call.json["evidence"]["cart_value"] == 80.0
        assert call.headers["Idempotency-Key"] == call.json["id"]
        assert verify_signature(SECRET, call.headers["Ewh-Signature"], call.body)
        assert not verify_signature("another-secret-0123456789", call.headers["Ewh-Signature"],
                                    call.body)
        assert not verify_signature(SECRET, call.headers["Ewh-Signature"], call.body + b" ")

        # A purchase: one exit.
        answer = world.send("Order Completed", "rt-purchase-1", CART_USER,
                            utc_now().replace(microsecond=0), order_id="o-1", revenue=80.0,
                            currency="USD")
        assert answer.status_code == 200, answer.text
        ewh(world.at(world.cart_at + timedelta(hours=26)), "stream", "consume", "--once")
        ewh(world.env, "webhooks", "dispatch", "--once")
        mine = [r.json for r in receiver.requests if r.json["user_id"] == CART_USER]
        assert [m["change"] for m in mine] == ["entered", "exited"]
        assert mine[1]["evidence"]["at_entry"]["cart_product_id"] == "sku-42"
        assert all(verify_signature(SECRET, r.headers["Ewh-Signature"], r.body)
                   for r in receiver.requests)

    # The pull API (read key) has the same two changes, with a cursor that moves on.
    url = f"{world.collector.url}/v1/segments/cart_abandoners/changes"
    page = requests.get(url, params={"since": "0", "limit": "1000"}, auth=(READ_KEY, ""),
                        timeout=10).json()
    ours = [c for c in page["changes"] if c["user_id"] == CART_USER]
    assert [c["change"] for c in ours] == ["entered", "exited"]
    assert int(ours[0]["cursor"]) < int(ours[1]["cursor"])
    after = requests.get(url, params={"since": page["next_cursor"]}, auth=(READ_KEY, ""),
                         timeout=10).json()
    assert after["changes"] == [] and after["next_cursor"] == page["next_cursor"]
    assert requests.get(url, auth=(WRITE_KEY, ""), timeout=10).status_code == 403

    # ...and so does the broker subject (the dispatcher's `broker` sink).
    published = stream_messages(world.broker.url, "EWH_SEGMENT_CHANGES",
                                "ewh.segments.seg_cart_abandoners.>")
    bodies = [json.loads(m.data) for m in published]
    assert sorted(b["change"] for b in bodies if b["user_id"] == CART_USER) == [
        "entered", "exited"]
    assert all(m.headers["Nats-Msg-Id"] == json.loads(m.data)["id"] for m in published)


def test_killing_the_dispatcher_mid_delivery_still_delivers_every_change(
        world: World) -> None:
    expected = {c[0] for c in changes_in_serving(world, "seg_cart_abandoners")}
    assert len(expected) >= 2
    with Receiver(delay=1.0) as receiver:
        write_subscribers(world.root / "subscribers.yml", [{
            "name": "kill_test", "segment": "cart_abandoners", "url": receiver.url,
            "secret": SECRET_NAME, "start": "earliest"}])
        dispatcher = subprocess.Popen([EWH, "webhooks", "dispatch"], env=world.env, cwd=PROJECT,
                                      stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            receiver.wait_for(1, timeout=60)
            assert receiver.requests, "no delivery started"
            dispatcher.send_signal(signal.SIGKILL)  # mid-delivery: the receiver holds it 1 s
            dispatcher.wait(timeout=10)
        finally:
            if dispatcher.poll() is None:
                dispatcher.kill()
        receiver.delay = 0
        for _ in range(3):
            ewh(world.env, "webhooks", "dispatch", "--once")
        keys = Counter(r.headers["Idempotency-Key"] for r in receiver.requests)
        # At least once each; deduplicated by Idempotency-Key, exactly the change log.
        assert set(keys) == expected
        assert all(verify_signature(SECRET, r.headers["Ewh-Signature"], r.body)
                   for r in receiver.requests)
        before = len(receiver.requests)
        ewh(world.env, "webhooks", "dispatch", "--once")  # a restart re-sends nothing
        assert len(receiver.requests) == before


def test_sigterm_stops_the_dispatcher_after_the_deliveries_in_flight(world: World) -> None:
    expected = {c[0] for c in changes_in_serving(world, "seg_cart_abandoners")}
    with Receiver(delay=2.0) as receiver:
        write_subscribers(world.root / "subscribers.yml", [{
            "name": "sigterm_test", "segment": "cart_abandoners", "url": receiver.url,
            "secret": SECRET_NAME, "start": "earliest"}])
        log = world.root / "dispatch-sigterm.log"
        dispatcher = start_ewh(world.env, log, "webhooks", "dispatch")
        try:
            receiver.wait_for(1, timeout=60)
            assert receiver.requests, log.read_text()
        finally:
            # One cycle: its POSTs go 8 at a time (here one round), each answered in 2 s.
            took = stop(dispatcher, 30, log)
        assert dispatcher.returncode == 0, log.read_text()
        assert took < 2.0 + STOP_SLACK_SECONDS, took
        # The POSTs in flight were answered and recorded: a restart sends none of them again.
        sent = Counter(r.headers["Idempotency-Key"] for r in receiver.requests)
        receiver.delay = 0
        ewh(world.env, "webhooks", "dispatch", "--once")
        assert Counter(r.headers["Idempotency-Key"] for r in receiver.requests) == {
            k: 1 for k in expected}
        assert set(sent.values()) == {1}


def test_failing_receiver_gets_retries_then_a_dead_letter_that_retry_delivers(
        world: World) -> None:
    expected = {c[0] for c in changes_in_serving(world, "seg_cart_abandoners")}
    with Receiver(fail_first=3) as receiver:  # EWH_WEBHOOK_MAX_ATTEMPTS is 3 here
        write_subscribers(world.root / "subscribers.yml", [{
            "name": "failing", "segment": "cart_abandoners", "url": receiver.url,
            "secret": SECRET_NAME, "start": "earliest"}])
        deadline = time.monotonic() + 60
        dead: list = []
        while time.monotonic() < deadline:
            ewh(world.env, "webhooks", "dispatch", "--once")
            dead = _dead(world)
            if len(dead) == len(expected):
                break
            time.sleep(0.3)  # the backoff is 0.05 s doubling to 0.2 s here
        assert {d[0] for d in dead} == expected
        assert all(d[1] == 3 for d in dead)
        assert Counter(r.headers["Idempotency-Key"] for r in receiver.requests) == {
            k: 3 for k in expected}
        times = sorted(r.at for r in receiver.requests
                       if r.headers["Idempotency-Key"] == min(expected))
        assert times[1] - times[0] >= 0.05 and times[2] - times[1] >= 0.1  # backoff doubled

        listed = ewh(world.env, "webhooks", "list").stdout
        line = next(li for li in listed.splitlines() if li.startswith("failing "))
        assert line.split()[-4:-1] == ["0", str(3 * len(expected)), str(len(expected))]

        # What Dagster shows for the subscriber (webhook_status_sensor's events).
        observed = dagster_status(world)
        assert observed["failing"]["dead_letters"] == len(expected)
        assert observed["failing"]["failures"] == 3 * len(expected)
        assert observed["failing"]["deliveries"] == 0
        assert observed["failing"]["no_dead_letters"] is False

        retried = ewh(world.env, "webhooks", "retry", "failing").stdout
        assert f"{len(expected)} dead letters back" in retried
        assert f"{len(expected)} delivered now" in retried
        assert _dead(world) == []
        assert Counter(r.headers["Idempotency-Key"] for r in receiver.requests) == {
            k: 4 for k in expected}


def dagster_status(world: World) -> dict[str, dict[str, object]]:
    import os
    from unittest import mock

    import dagster as dg

    from ewh.activation.subscribers import load_subscribers
    from ewh.common.settings import get_settings
    from orchestration.defs.realtime import status_events

    with mock.patch.dict(os.environ, world.env):
        settings = get_settings()
        events = status_events(settings, load_subscribers(
            settings.webhook_subscribers, settings.webhook_secrets))
    found: dict[str, dict[str, object]] = {}
    for event in events:
        entry = found.setdefault(event.asset_key.path[-1], {})
        if isinstance(event, dg.AssetCheckEvaluation):
            entry[event.check_name] = event.passed
        else:
            entry.update({k: v.value for k, v in event.metadata.items()})
    return found


def _dead(world: World) -> list[tuple[str, int]]:
    import sqlite3

    with sqlite3.connect(world.root / "webhooks.sqlite") as con:
        return con.execute("select change_id, attempts from dead_letters "
                           "where subscriber = 'failing'").fetchall()


def test_broker_outage_keeps_intake_200_and_replay_catches_up_without_duplicates(
        world: World) -> None:
    since = utc_now() - timedelta(seconds=1)
    world.broker.stop()
    ids = [f"rt-outage-{i}" for i in range(20)]
    for message_id in ids:
        started = time.monotonic()
        answer = world.send("Product Viewed", message_id, "rt-outage-user", utc_now(),
                            product_id="sku-1")
        assert answer.status_code == 200, answer.text
        assert time.monotonic() - started < 2.0  # never waits on the broker
    world.broker.start()  # same port and store: the stream survives
    first = ewh(world.env, "stream", "replay", "--since", since.isoformat()).stdout
    second = ewh(world.env, "stream", "replay", "--since", since.isoformat()).stdout
    assert "0 published" in second, second
    messages = stream_messages(world.broker.url, "EWH_EVENTS", "ewh.events.track")
    counted = Counter(m.headers["Nats-Msg-Id"] for m in messages)
    assert {i: counted[i] for i in ids} == {i: 1 for i in ids}, first
    # The long-running consumer loads them; between micro-batches it holds no lock: another
    # process can open the warehouse for writing while it runs.
    log = world.root / "consume-outage.log"
    consumer = start_ewh(consumer_env(world), log, "stream", "consume")
    try:
        loaded: dict[str, int] = {}
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and len(loaded) < len(ids):
            time.sleep(1)
            try:
                with duckdb.connect(str(world.root / "warehouse.duckdb")) as con:  # a writer
                    loaded = dict(con.execute(
                        "select message_id, count(*) from raw.events where message_id like "
                        "'rt-outage-%' group by 1").fetchall())
            except duckdb.IOException:
                continue  # the consumer is inside a micro-batch
        assert loaded == {i: 1 for i in ids}
        assert consumer.poll() is None
    finally:
        stop(consumer, MICRO_BATCH_BOUND_SECONDS, log)  # it finishes its micro-batch
    assert consumer.returncode == 0, log.read_text()


def consumer_env(world: World) -> dict[str, str]:
    """A long-running consumer that refreshes only when events come."""
    return {**world.at(world.last_as_of), "EWH_STREAM_REFRESH_SECONDS": "3600"}


def loaded_once(world: World, prefix: str) -> dict[str, int]:
    with duckdb.connect(str(world.root / "warehouse.duckdb")) as con:  # a writer: lock is free
        return dict(con.execute("select message_id, count(*) from raw.events "
                                "where message_id like ? group by 1", [f"{prefix}%"]).fetchall())


async def _loader_backlog(url: str) -> tuple[int, int]:
    nc = await nats.connect(url)
    try:
        info = await nc.jetstream().consumer_info("EWH_EVENTS", "ewh_loader")
        return int(info.num_pending or 0), int(info.num_ack_pending or 0)
    finally:
        await nc.close()


def _consumer_in_a_micro_batch(world: World, prefix: str, events: int, product: str):
    """`events` product views of one user, and a consumer started that has begun a micro-batch
    (its batch file is written): the ids, the consumer's log and process."""
    ids = [f"{prefix}-{i}" for i in range(events)]
    for message_id in ids:
        assert world.send("Product Viewed", message_id, f"{prefix}-user", utc_now(),
                          product_id=product).status_code == 200
    log = world.root / f"consume-{prefix}.log"
    consumer = start_ewh(consumer_env(world), log, "stream", "consume")
    if not wait_for_batch_file(world.root / "stream"):
        stop(consumer, STOP_SLACK_SECONDS, log)
        raise AssertionError(log.read_text())
    return ids, log, consumer


def test_sigterm_mid_micro_batch_finishes_it_exits_0_and_a_restart_loads_the_rest_once(
        world: World) -> None:
    ids, log, consumer = _consumer_in_a_micro_batch(world, "rt-sigterm", 30, "sku-3")
    took = stop(consumer, MICRO_BATCH_BOUND_SECONDS, log)
    output = log.read_text()
    assert consumer.returncode == 0, output
    # The micro-batch in flight finished (one, with events), and the stop took no longer.
    [batch] = [m for m in BATCH_LINE.findall(output) if int(m[0])]
    events, loaded, duplicate, rejected = map(int, batch[:4])
    assert (loaded, duplicate, rejected) == (events, 0, 0), output
    assert took <= float(batch[4]) + float(batch[5]) + STOP_SLACK_SECONDS, (took, output)
    assert "\nstopped\n" in output, output
    assert list((world.root / "stream" / "batches").iterdir()) == []
    first = loaded_once(world, "rt-sigterm-")
    assert len(first) == events and set(first.values()) == {1}

    # A restart takes what the stopped consumer did not (a part the collector published
    # later, or handed back): every event once, nothing waiting, nothing unacknowledged.
    for _ in range(5):
        ewh(consumer_env(world), "stream", "consume", "--once")
        if len(loaded_once(world, "rt-sigterm-")) == len(ids):
            break
    assert loaded_once(world, "rt-sigterm-") == {i: 1 for i in ids}
    assert asyncio.run(_loader_backlog(world.broker.url)) == (0, 0)


def test_a_second_sigterm_exits_at_once_and_loads_nothing_twice(world: World) -> None:
    ids, log, consumer = _consumer_in_a_micro_batch(world, "rt-twice", 20, "sku-4")
    try:
        consumer.send_signal(signal.SIGTERM)
        time.sleep(0.5)  # inside the micro-batch still: dbt alone takes seconds
    finally:
        took = stop(consumer, STOP_SLACK_SECONDS, log)
    assert consumer.returncode == 128 + signal.SIGTERM, log.read_text()
    assert took < 5, took
    # Abandoned mid-way: the lock is free, what loaded loaded once, the batch file is left
    # (its messages were never acknowledged: JetStream sends them again after the ack wait,
    # and they load as duplicates), and the next consumer removes the file.
    assert set(loaded_once(world, "rt-twice-").values()) <= {1}
    assert list((world.root / "stream" / "batches").iterdir()) != []
    ewh(consumer_env(world), "stream", "consume", "--once")
    assert list((world.root / "stream" / "batches").iterdir()) == []
    assert set(loaded_once(world, "rt-twice-").values()) <= {1}


def test_dagster_sensor_requests_a_micro_batch_and_the_job_loads_it(world: World) -> None:
    import os
    from unittest import mock

    import dagster as dg

    assert world.send("Product Viewed", "rt-dagster-1", "rt-dagster-user", utc_now(),
                      product_id="sku-9").status_code == 200
    env = {**world.at(world.last_as_of), "EWH_STREAM_REFRESH_SECONDS": "3600"}
    with mock.patch.dict(os.environ, env):
        from orchestration.definitions import defs
        from orchestration.defs.realtime import event_stream_sensor
        from orchestration.resources import warehouse_settings

        resources = {"settings": warehouse_settings()}
        deadline = time.monotonic() + 20
        request = None
        while time.monotonic() < deadline:  # the collector publishes in the background
            request = event_stream_sensor(dg.build_sensor_context(
                cursor=str(time.time()), resources=resources))
            if isinstance(request, dg.RunRequest):
                break
            time.sleep(0.2)
        assert isinstance(request, dg.RunRequest), request
        assert int(request.tags["ewh/pending_events"]) >= 1
        job = defs().resolve_job_def("stream_micro_batch")
        result = job.execute_in_process(instance=dg.DagsterInstance.ephemeral())
        assert result.success
        after = event_stream_sensor(dg.build_sensor_context(cursor=str(time.time()),
                                                            resources=resources))
        assert isinstance(after, dg.SkipReason)
    assert rows(world.root / "warehouse.duckdb",
                "select count(*) from raw.events where message_id = 'rt-dagster-1'") == [(1,)]


def test_a_failed_data_test_keeps_the_last_good_serving_copy(world: World) -> None:
    """Last in the module: it leaves a bad row. A closed spell that ends before it began
    breaks segment_membership_history's test (exited_at >= entered_at)."""
    serving = world.root / "serving.duckdb"
    before = rows(serving, "select max(published_at) from segments.publish_log")
    with duckdb.connect(str(world.root / "warehouse.duckdb")) as con:
        con.execute("insert into segments.segment_membership_history values "
                    "('bad-spell', 'k-bad', 'seg_high_intent', timestamp '2026-01-02', "
                    "timestamp '2026-01-01', false)")
    done = subprocess.run([EWH, "stream", "consume", "--once"], env=world.at(world.last_as_of),
                          cwd=PROJECT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 1
    assert "dbt test failed" in done.stderr and "segment_membership_history" in done.stderr
    assert rows(serving, "select max(published_at) from segments.publish_log") == before
