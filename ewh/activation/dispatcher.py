"""The webhook dispatcher: change log -> outbox -> signed POSTs (and the broker subject).

Each cycle, per subscriber (activation/subscribers.yml), and for the broker when
EWH_NATS_URL is set (sink `broker`: every change to `ewh.segments.<segment>.<change>`):

1. take: the changes after its cursor from the serving copy's change log (read-only: never
   in the writer's way), keep those it wants (segment, changes, where), put them in the
   outbox and move the cursor, in one transaction;
2. deliver: every outbox row that is due, POSTed with `Ewh-Signature: t=..,v1=..` (HMAC-SHA256
   over `t.body`), `Idempotency-Key: <change_id>` and `Ewh-Timestamp`. A 2xx answer records a
   delivery and clears the row; anything else (or no answer within
   EWH_WEBHOOK_TIMEOUT_SECONDS) is a failure, retried with exponential backoff; the
   EWH_WEBHOOK_MAX_ATTEMPTS-th failure moves it to the dead letters.

The body is built once, when the change is taken, so every try sends the same bytes.
"""

from __future__ import annotations

import asyncio
import json
import sqlite3
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from ewh.activation import backoff, state
from ewh.activation.changes import changes_after
from ewh.activation.signing import (
    IDEMPOTENCY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    signature_header,
)
from ewh.activation.subscribers import Subscriber, load_subscribers
from ewh.common.duckdb_tables import has_table
from ewh.common.settings import Settings

BROKER_SINK = "broker"
TAKE_LIMIT = 5000  # changes taken into the outbox per subscriber and cycle
DELIVER_LIMIT = 500  # deliveries tried per subscriber and cycle
HTTP_WORKERS = 8
USER_AGENT = "ewh-webhooks/1"


@dataclass
class Attempt:
    change_id: str
    ok: bool
    status: int | None
    error: str | None


@dataclass
class CycleStats:
    taken: dict[str, int] = field(default_factory=dict)
    delivered: dict[str, int] = field(default_factory=dict)
    failed: dict[str, int] = field(default_factory=dict)
    dead: dict[str, int] = field(default_factory=dict)


def _jsonable(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def change_body(change: dict[str, Any], sink: str) -> bytes:
    evidence = change.get("evidence")
    payload = {
        "id": change["change_id"],
        "type": f"segment.{change['change']}",
        "subscriber": sink,
        "segment": change["segment"],
        "change": change["change"],
        "user_id": change.get("user_id"),
        "user_key": change["user_key"],
        "changed_at": _jsonable(change["changed_at"]),
        "entered_at": _jsonable(change.get("entered_at")),
        "evidence": json.loads(evidence) if isinstance(evidence, str) else evidence,
        "cursor": str(change["change_seq"]),
    }
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str).encode()


def read_changes(serving: Path, after: int, segment: str | None,
                 limit: int = TAKE_LIMIT) -> list[dict[str, Any]]:
    if not serving.exists():
        return []
    with duckdb.connect(str(serving), read_only=True) as con:
        return changes_after(con, after, limit, segment)


def last_seq(serving: Path) -> int:
    if not serving.exists():
        return 0
    with duckdb.connect(str(serving), read_only=True) as con:
        if not has_table(con, "segments", "segment_changes"):
            return 0
        return int(con.execute("select coalesce(max(change_seq), 0) "
                               "from segments.segment_changes").fetchone()[0])


def post(url: str, body: bytes, secret: str, change_id: str, timeout: float) -> Attempt:
    now = int(time.time())
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: signature_header(secret, now, body),
        TIMESTAMP_HEADER: str(now), IDEMPOTENCY_HEADER: change_id})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as answer:  # noqa: S310 - http(s) only
            return Attempt(change_id, 200 <= answer.status < 300, answer.status, None)
    except urllib.error.HTTPError as exc:
        return Attempt(change_id, False, exc.code, f"HTTP {exc.code}")
    except (urllib.error.URLError, OSError, TimeoutError) as exc:
        reason = getattr(exc, "reason", exc)
        return Attempt(change_id, False, None, f"{type(exc).__name__}: {reason}")


class Dispatcher:
    def __init__(self, settings: Settings, subscribers: list[Subscriber] | None = None,
                 broker: bool | None = None) -> None:
        self.settings = settings
        self.subscribers = (subscribers if subscribers is not None else load_subscribers(
            settings.webhook_subscribers, settings.webhook_secrets))
        self.broker = bool(settings.nats_url) if broker is None else broker
        self.pool = ThreadPoolExecutor(max_workers=HTTP_WORKERS,
                                       thread_name_prefix="ewh-webhook")

    def close(self) -> None:
        self.pool.shutdown(wait=True)

    # --- one cycle -----------------------------------------------------------------------------
    def cycle(self) -> CycleStats:
        stats = CycleStats()
        with state.connect(self.settings.webhook_state) as con:
            for subscriber in self.subscribers:
                stats.taken[subscriber.name] = self.take(con, subscriber.name,
                                                         subscriber.segment, subscriber.start,
                                                         subscriber.wants)
                self.deliver(con, subscriber, stats)
            if self.broker:
                stats.taken[BROKER_SINK] = self.take(con, BROKER_SINK, None, "latest",
                                                     lambda _c: True)
                self.publish(con, stats)
        return stats

    def take(self, con: sqlite3.Connection, sink: str, segment: str | None, start: str,
             wants: Callable[[dict[str, Any]], bool]) -> int:
        cursor = state.cursor_of(con, sink)
        if cursor is None:
            cursor = last_seq(self.settings.serving) if start == "latest" else 0
            with state.transaction(con):
                state.set_cursor(con, sink, cursor)
        changes = read_changes(self.settings.serving, cursor, segment)
        if not changes:
            return 0
        now = time.time()
        wanted = [c for c in changes if wants(c)]
        with state.transaction(con):
            con.executemany(
                "insert into outbox (subscriber, change_id, change_seq, body, changed_at, "
                "enqueued_at, attempts, next_attempt_at) values (?, ?, ?, ?, ?, ?, 0, ?) "
                "on conflict do nothing",
                [[sink, c["change_id"], c["change_seq"], change_body(c, sink),
                  str(c["changed_at"]), now, now] for c in wanted])
            state.set_cursor(con, sink, max(c["change_seq"] for c in changes))
        return len(wanted)

    def _due(self, con: sqlite3.Connection, sink: str) -> list[tuple[str, int, bytes, int]]:
        return con.execute(
            "select change_id, change_seq, body, attempts from outbox where subscriber = ? "
            "and next_attempt_at <= ? order by change_seq limit ?",
            [sink, time.time(), DELIVER_LIMIT]).fetchall()

    def deliver(self, con: sqlite3.Connection, subscriber: Subscriber,
                stats: CycleStats) -> None:
        due = self._due(con, subscriber.name)
        if not due:
            return
        secret = subscriber.secret.get_secret_value()
        attempts = list(self.pool.map(
            lambda row: post(subscriber.url, row[2], secret, row[0],
                             self.settings.webhook_timeout_seconds), due))
        self._record(con, subscriber.name, due, attempts, stats)

    def publish(self, con: sqlite3.Connection, stats: CycleStats) -> None:
        due = self._due(con, BROKER_SINK)
        if due:
            attempts = asyncio.run(_publish_changes(self.settings, due))
            self._record(con, BROKER_SINK, due, attempts, stats)

    def _record(self, con: sqlite3.Connection, sink: str, due: list[tuple[str, int, bytes, int]],
                attempts: list[Attempt], stats: CycleStats) -> None:
        now = time.time()
        settings = self.settings
        with state.transaction(con):
            for (change_id, _seq, _body, tried), attempt in zip(due, attempts, strict=True):
                tries = tried + 1
                if attempt.ok:
                    con.execute(
                        "insert into deliveries select subscriber, change_id, change_seq, ?, ?, "
                        "enqueued_at, ? from outbox where subscriber = ? and change_id = ?",
                        [tries, attempt.status or 0, now, sink, change_id])
                    con.execute("delete from outbox where subscriber = ? and change_id = ?",
                                [sink, change_id])
                    stats.delivered[sink] = stats.delivered.get(sink, 0) + 1
                    continue
                con.execute("insert into failures values (?, ?, ?, ?, ?, ?)",
                            [sink, change_id, tries, attempt.status, attempt.error, now])
                stats.failed[sink] = stats.failed.get(sink, 0) + 1
                if tries >= settings.webhook_max_attempts:
                    con.execute(
                        "insert or replace into dead_letters select subscriber, change_id, "
                        "change_seq, body, changed_at, ?, ?, ?, ? from outbox "
                        "where subscriber = ? and change_id = ?",
                        [tries, attempt.status, attempt.error, now, sink, change_id])
                    con.execute("delete from outbox where subscriber = ? and change_id = ?",
                                [sink, change_id])
                    stats.dead[sink] = stats.dead.get(sink, 0) + 1
                else:
                    wait = backoff.delay(tries, settings.webhook_backoff_seconds,
                                         settings.webhook_backoff_max_seconds)
                    con.execute(
                        "update outbox set attempts = ?, next_attempt_at = ?, last_status = ?, "
                        "last_error = ? where subscriber = ? and change_id = ?",
                        [tries, now + wait, attempt.status, attempt.error, sink, change_id])

    # --- the loop ----------------------------------------------------------------------------
    def run(self, once: bool = False, interval: float = 1.0,
            report: Callable[[CycleStats], None] | None = None,
            should_stop: Callable[[], bool] = lambda: False,
            sleep: Callable[[float], None] = time.sleep) -> None:
        """Cycles every `interval` seconds until `once` or `should_stop()` (checked between
        cycles; `sleep` may return early on a stop)."""
        while True:
            started = time.monotonic()
            stats = self.cycle()
            if report is not None:
                report(stats)
            if once or should_stop():
                return
            sleep(max(0.0, interval - (time.monotonic() - started)))
            if should_stop():
                return


async def _publish_changes(settings: Settings,
                           due: list[tuple[str, int, bytes, int]]) -> list[Attempt]:
    import nats

    from ewh.stream.subjects import MSG_ID, change_subject, ensure_streams

    try:
        nc = await nats.connect(settings.nats_url, connect_timeout=2,
                                max_reconnect_attempts=0, allow_reconnect=False)
    except Exception as exc:  # noqa: BLE001 - broker down: every try failed
        return [Attempt(row[0], False, None, f"broker: {exc}") for row in due]
    try:
        js = nc.jetstream()
        await ensure_streams(js, settings.stream_duplicate_window_seconds,
                             settings.stream_max_age_seconds)

        async def one(row: tuple[str, int, bytes, int]) -> Attempt:
            body = json.loads(row[2])
            try:
                await js.publish(change_subject(body["segment"], body["change"]), row[2],
                                 timeout=5, headers={MSG_ID: row[0]})
            except Exception as exc:  # noqa: BLE001
                return Attempt(row[0], False, None, f"broker: {exc}")
            return Attempt(row[0], True, 0, None)

        return list(await asyncio.gather(*(one(r) for r in due)))
    finally:
        await nc.close()


# --- what `ewh webhooks` and Dagster do besides the loop ---------------------------------------
def statuses(settings: Settings, subscribers: list[Subscriber]) -> list[state.SubscriberStatus]:
    sinks = [(s.name, s.segment, s.wants) for s in subscribers]
    if settings.nats_url:
        sinks.append((BROKER_SINK, "*", lambda _c: True))
    found = []
    with state.connect(settings.webhook_state) as con:
        for name, segment, wants in sinks:
            cursor = state.cursor_of(con, name)
            waiting = 0
            if cursor is not None:
                waiting = sum(1 for c in read_changes(settings.serving, cursor,
                                                      None if segment == "*" else segment,
                                                      limit=100_000) if wants(c))
            numbers = state.counts(con, name)
            found.append(state.SubscriberStatus(
                name=name, segment=segment, cursor=cursor, pending=int(numbers["pending"]),
                waiting=waiting, deliveries=int(numbers["deliveries"]),
                failures=int(numbers["failures"]), dead_letters=int(numbers["dead_letters"]),
                oldest_pending_seconds=numbers["oldest_pending_seconds"],
                last_delivered_at=numbers["last_delivered_at"]))
    return found


def retry_dead_letters(settings: Settings, subscriber: str | None = None,
                       change_id: str | None = None) -> int:
    """Dead letters back into the outbox, due now with a fresh count of tries."""
    now = time.time()
    with state.connect(settings.webhook_state) as con, state.transaction(con):
        where = "where (? is null or subscriber = ?) and (? is null or change_id = ?)"
        params = [subscriber, subscriber, change_id, change_id]
        con.execute(
            "insert into outbox (subscriber, change_id, change_seq, body, changed_at, "
            "enqueued_at, attempts, next_attempt_at) select subscriber, change_id, change_seq, "
            f"body, changed_at, ?, 0, ? from dead_letters {where} on conflict do nothing",
            [now, now, *params])
        moved = con.execute(f"delete from dead_letters {where}", params).rowcount
    return moved


def replay_from(settings: Settings, subscriber: str, after: int) -> int | None:
    """Move a subscriber's cursor back to `after`: every later change is taken again (and
    sent with its same Idempotency-Key). Returns the old cursor."""
    with state.connect(settings.webhook_state) as con, state.transaction(con):
        old = state.cursor_of(con, subscriber)
        state.set_cursor(con, subscriber, after)
    return old
