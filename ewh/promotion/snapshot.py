"""The serving copy in memory: what the promotion API decides from, swapped whole at a publish.

A publish renames a new serving file into place (ewh/segments/serving.py). The watcher notices
the file's new identity (inode, size, mtime), loads the new file into plain dicts in a worker
thread, and only then replaces the one reference requests read. A request reads that
reference once, so every answer comes from exactly one publish: never a mix, never a wait,
never an error while the file is being replaced (the old snapshot serves until the new one is
complete).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb
import orjson

from ewh.common.duckdb_tables import has_table

log = logging.getLogger("ewh.promotion")
FileIdentity = tuple[int, int, int]

# Used when nobody has any engagement history yet (an empty warehouse): 10:00 UTC on a
# Tuesday, the conventional best time for marketing email.
DEFAULT_SEND_HOUR_UTC = 10
DEFAULT_SEND_WEEKDAY = 2


@dataclass(frozen=True, slots=True)
class SendTime:
    hour_utc: int
    weekday: int  # ISO: 1 = Monday ... 7 = Sunday
    source: str  # "history" (the user's own) or "population" (the fallback)

    def as_json(self) -> dict[str, Any]:
        return {"hour_utc": self.hour_utc, "weekday": self.weekday, "source": self.source}


@dataclass(frozen=True)
class Snapshot:
    """One publish of the serving copy, as dicts. Never mutated after it is built."""

    published_at: str | None = None
    identity: FileIdentity | None = None
    user_keys: dict[str, str] = field(default_factory=dict)  # userId or user_key -> user_key
    segments: dict[str, frozenset[str]] = field(default_factory=dict)  # user_key -> segments
    # user_key -> the JSON array of their recommendations, embedded in answers as is
    recommendations: dict[str, orjson.Fragment] = field(default_factory=dict)
    send_times: dict[str, SendTime] = field(default_factory=dict)
    fallback_send_time: SendTime = SendTime(DEFAULT_SEND_HOUR_UTC, DEFAULT_SEND_WEEKDAY,
                                            "default")

    def user_key(self, user_id: str | None, anonymous_id: str | None) -> str | None:
        for candidate in (user_id, anonymous_id,
                          f"anonymous:{anonymous_id}" if anonymous_id else None):
            if candidate is not None and candidate in self.user_keys:
                return self.user_keys[candidate]
        return None

    def send_time(self, user_key: str | None) -> SendTime:
        """The user's own best time, else the population's (marts.user_send_times' rule)."""
        found = self.send_times.get(user_key) if user_key else None
        return found or self.fallback_send_time


def file_identity(path: Path) -> FileIdentity | None:
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return (stat.st_ino, stat.st_size, stat.st_mtime_ns)


FETCH_ROWS = 2000  # rows converted per fetch: the GIL is held for one fetch at a time
LOAD_SWITCH_S = 0.0002

# Each user's recommendations as one JSON array, built by DuckDB: the snapshot keeps the text
# and the answer embeds it as is (orjson.Fragment), so neither side walks the items in Python.
RECOMMENDATIONS_SQL = """
select user_key, to_json(list({'product_id': product_id, 'score': score,
                               'because_of': evidence_product_id, 'evidence': evidence}
                              order by recommendation_rank))::varchar
from marts.user_recommendations group by user_key
"""


def _chunks(con: duckdb.DuckDBPyConnection, sql: str) -> Iterator[list[tuple[Any, ...]]]:
    """The rows of `sql` a few thousand at a time: loading runs in a worker thread, and small
    fetches let the event loop answer requests in between (one big fetchall would hold the
    GIL, and so every request, for the whole conversion)."""
    result = con.execute(sql)
    while rows := result.fetchmany(FETCH_ROWS):
        yield rows


def load_snapshot(serving: Path) -> Snapshot:
    """Read what decisions need from the serving copy (missing tables: empty parts)."""
    identity = file_identity(serving)
    if identity is None:
        return Snapshot()
    with duckdb.connect(str(serving), read_only=True) as con:
        identity = file_identity(serving) or identity  # the file this connection opened
        published = (con.execute("select max(published_at) from segments.publish_log")
                     .fetchone()[0] if has_table(con, "segments", "publish_log") else None)
        user_keys: dict[str, str] = {}
        send_times: dict[str, SendTime] = {}
        if has_table(con, "marts", "dim_users"):
            for rows in _chunks(con, "select user_key, user_id from marts.dim_users"):
                for user_key, user_id in rows:
                    user_keys[user_key] = user_key
                    if user_id is not None:
                        user_keys[user_id] = user_key
            # marts.user_send_times holds the rule (and the fallback); a serving copy
            # published before it existed has the users' own times in dim_users
            times_sql = ("select user_key, send_hour_utc, send_weekday from "
                         "marts.user_send_times where send_time_source = 'history'"
                         if has_table(con, "marts", "user_send_times") else
                         "select user_key, preferred_engagement_hour_utc, "
                         "preferred_engagement_weekday from marts.dim_users where "
                         "preferred_engagement_hour_utc is not null and "
                         "preferred_engagement_weekday is not null")
            for rows in _chunks(con, times_sql):
                for user_key, hour, weekday in rows:
                    send_times[user_key] = SendTime(int(hour), int(weekday), "history")
        segments: dict[str, frozenset[str]] = {}
        if has_table(con, "segments", "segment_memberships"):
            for rows in _chunks(con, "select user_key, list(distinct segment) from "
                                     "segments.segment_memberships group by user_key"):
                segments.update((user_key, frozenset(names)) for user_key, names in rows)
        recommendations: dict[str, orjson.Fragment] = {}
        if has_table(con, "marts", "user_recommendations"):
            for rows in _chunks(con, RECOMMENDATIONS_SQL):
                recommendations.update((k, orjson.Fragment(text)) for k, text in rows)
    return Snapshot(
        published_at=published.isoformat() if published is not None else None,
        identity=identity,
        user_keys=user_keys,
        segments=segments,
        recommendations=recommendations,
        send_times=send_times,
        fallback_send_time=_population_send_time(send_times),
    )


def _population_send_time(send_times: dict[str, SendTime]) -> SendTime:
    """The fallback for users without history, as marts.user_send_times computes it: the
    hour and the weekday most users with history prefer (ties to the earliest), else
    DEFAULT_SEND_HOUR_UTC / _WEEKDAY (the dbt vars send_time_default_*)."""
    if not send_times:
        return SendTime(DEFAULT_SEND_HOUR_UTC, DEFAULT_SEND_WEEKDAY, "default")
    hours = Counter(t.hour_utc for t in send_times.values())
    weekdays = Counter(t.weekday for t in send_times.values())
    hour = min(hours, key=lambda h: (-hours[h], h))
    weekday = min(weekdays, key=lambda d: (-weekdays[d], d))
    return SendTime(hour, weekday, "population")


class SnapshotHolder:
    """The current Snapshot, and the task that replaces it when the serving file changes."""

    def __init__(self, serving: Path, interval_seconds: float) -> None:
        self.serving = serving
        self.interval = interval_seconds
        self.current = Snapshot()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.refresh()
        self._task = asyncio.create_task(self._watch())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def refresh(self) -> bool:
        """Load the serving copy if its file changed; True when a new snapshot was swapped in."""
        identity = file_identity(self.serving)
        if identity is None or identity == self.current.identity:
            return False
        # While the loader thread builds dicts it holds the GIL between fetches; a short
        # switch interval makes it hand the GIL back to the event loop within LOAD_SWITCH_S
        # (the default 5 ms would add up to several 5 ms waits to each request meanwhile).
        previous = sys.getswitchinterval()
        sys.setswitchinterval(LOAD_SWITCH_S)
        try:
            snapshot = await asyncio.to_thread(load_snapshot, self.serving)
        except (duckdb.Error, OSError) as exc:  # replaced again meanwhile: the next tick
            log.warning("serving copy not loaded yet (%s); keeping the previous snapshot", exc)
            return False
        finally:
            sys.setswitchinterval(previous)
        self.current = snapshot  # one reference assignment: atomic for every reader
        log.info("promotion snapshot of %s loaded (published %s)", self.serving,
                 snapshot.published_at)
        return True

    async def _watch(self) -> None:
        while True:
            await asyncio.sleep(self.interval)
            await self.refresh()
