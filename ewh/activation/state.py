"""The dispatcher's state in one SQLite file (EWH_WEBHOOK_STATE): the dispatcher, the
`ewh webhooks` commands and Dagster read and write it at the same time, which SQLite's WAL
allows and a DuckDB file (one writing process) does not.

- cursors: per subscriber, the last change_seq taken from the change log into the outbox;
- outbox: the changes taken but not yet delivered or dead-lettered, with their tries;
- deliveries: one row per delivered change (what `list` and Dagster count);
- dead_letters: changes that failed EWH_WEBHOOK_MAX_ATTEMPTS times (retry puts them back).

Taking changes and moving the cursor is one transaction, and a change leaves the outbox in
the same transaction that records its delivery: a restart neither loses nor re-sends one,
except the delivery a crash interrupted after the receiver got it (sent again with the same
Idempotency-Key: at least once).
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

SCHEMA = """
create table if not exists cursors (
    subscriber text primary key, change_seq integer not null, updated_at real not null);
create table if not exists outbox (
    subscriber text not null, change_id text not null, change_seq integer not null,
    body blob not null, changed_at text not null, enqueued_at real not null,
    attempts integer not null default 0, next_attempt_at real not null,
    last_status integer, last_error text,
    primary key (subscriber, change_id));
create table if not exists deliveries (
    subscriber text not null, change_id text not null, change_seq integer not null,
    attempts integer not null, status integer not null, enqueued_at real not null,
    delivered_at real not null);
create index if not exists deliveries_by_subscriber on deliveries (subscriber, change_seq);
create table if not exists dead_letters (
    subscriber text not null, change_id text not null, change_seq integer not null,
    body blob not null, changed_at text not null, attempts integer not null,
    last_status integer, last_error text, dead_at real not null,
    primary key (subscriber, change_id));
create table if not exists failures (
    subscriber text not null, change_id text not null, attempt integer not null,
    status integer, error text, failed_at real not null);
"""


@contextlib.contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        con.execute("pragma journal_mode = wal")
        con.execute("pragma synchronous = full")  # a recorded delivery survives a crash
        con.executescript(SCHEMA)
        yield con
    finally:
        con.close()


@contextlib.contextmanager
def transaction(con: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    con.execute("begin immediate")
    try:
        yield con
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit")


@dataclass(frozen=True)
class SubscriberStatus:
    name: str
    segment: str
    cursor: int | None
    pending: int  # in the outbox
    waiting: int  # in the change log after the cursor (not taken yet)
    deliveries: int
    failures: int  # failed tries (each retry counts)
    dead_letters: int
    oldest_pending_seconds: float | None  # how long the oldest undelivered change has waited
    last_delivered_at: float | None

    @property
    def lag(self) -> int:
        """Changes for this subscriber not delivered yet (outbox + change log after cursor)."""
        return self.pending + self.waiting


def cursor_of(con: sqlite3.Connection, subscriber: str) -> int | None:
    row = con.execute("select change_seq from cursors where subscriber = ?",
                      [subscriber]).fetchone()
    return None if row is None else int(row[0])


def set_cursor(con: sqlite3.Connection, subscriber: str, change_seq: int) -> None:
    con.execute("insert into cursors values (?, ?, ?) on conflict (subscriber) do update "
                "set change_seq = excluded.change_seq, updated_at = excluded.updated_at",
                [subscriber, change_seq, time.time()])


def counts(con: sqlite3.Connection, subscriber: str) -> dict[str, float | int | None]:
    now = time.time()
    pending, oldest = con.execute(
        "select count(*), min(enqueued_at) from outbox where subscriber = ?",
        [subscriber]).fetchone()
    delivered, last = con.execute(
        "select count(*), max(delivered_at) from deliveries where subscriber = ?",
        [subscriber]).fetchone()
    failures = con.execute("select count(*) from failures where subscriber = ?",
                           [subscriber]).fetchone()[0]
    dead = con.execute("select count(*) from dead_letters where subscriber = ?",
                       [subscriber]).fetchone()[0]
    return {"pending": pending, "oldest_pending_seconds": (now - oldest) if oldest else None,
            "deliveries": delivered, "last_delivered_at": last, "failures": failures,
            "dead_letters": dead}


def scrub_person(path: Path, user_ids: set[str], user_keys: set[str]) -> int:
    """Erasure: drop the person's undelivered bodies (outbox, dead letters); deliveries and
    failures keep only change ids. secure_delete zeroes the freed pages."""
    if not path.exists():
        return 0
    removed = 0
    with connect(path) as con:
        con.execute("pragma secure_delete = on")
        with transaction(con):
            for table in ("outbox", "dead_letters"):
                removed += con.execute(
                    f"delete from {table} where json_extract(body, '$.user_id') in "
                    "(select value from json_each(?)) or json_extract(body, '$.user_key') in "
                    "(select value from json_each(?))",
                    [json.dumps(sorted(user_ids)), json.dumps(sorted(user_keys))]).rowcount
        con.execute("pragma wal_checkpoint(truncate)")
    return removed
