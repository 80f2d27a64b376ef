"""Republish acknowledged events from the landing files: how a broker outage is caught up.

Every event whose receivedAt is at or after `since` is published again with its messageId as
`Nats-Msg-Id`; what the broker already has within its duplicate window
(EWH_STREAM_DUPLICATE_WINDOW_SECONDS) is acknowledged as a duplicate and stored once. Files
last written before `since` cannot hold such events and are not read. Open files (`.open`)
are read up to their last complete line: those lines were acknowledged.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import nats
import orjson

from ewh.common.clock import to_naive_utc
from ewh.ingest.landing import CLOSED_SUFFIX, OPEN_SUFFIX
from ewh.stream.subjects import DEFAULT_MAX_AGE_SECONDS, MSG_ID, ensure_streams, event_subject

IN_FLIGHT = 512


@dataclass(slots=True)
class ReplayResult:
    files: int = 0
    read: int = 0  # events received at or after `since`
    published: int = 0  # new to the broker
    duplicates: int = 0  # the broker had them already
    unreadable: int = 0  # lines that are not an event with type and messageId (named below)
    problems: list[str] | None = None


def landing_files_since(folder: Path, since: datetime) -> list[Path]:
    cutoff = to_naive_utc(since).replace(tzinfo=UTC).timestamp()
    found = [p for pattern in (f"*{CLOSED_SUFFIX}", f"*{CLOSED_SUFFIX}{OPEN_SUFFIX}")
             for p in folder.glob(pattern) if p.is_file() and p.stat().st_mtime >= cutoff]
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


def _received_at(message: dict) -> datetime | None:
    value = message.get("receivedAt")
    if not isinstance(value, str):
        return None
    try:
        return to_naive_utc(datetime.fromisoformat(value.replace("Z", "+00:00")))
    except ValueError:
        return None


def events_since(folder: Path, since: datetime,
                 result: ReplayResult) -> Iterator[tuple[str, str, bytes]]:
    """(subject, messageId, line) of each event received at or after `since`, file order."""
    since = to_naive_utc(since)
    for path in landing_files_since(folder, since):
        result.files += 1
        data = path.read_bytes()
        data = data[: data.rfind(b"\n") + 1]  # a torn tail of an open file was never acked
        for number, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                message = orjson.loads(line)
                subject = event_subject(str(message["type"]))
                message_id = str(message["messageId"])
            except (orjson.JSONDecodeError, KeyError, TypeError):
                result.unreadable += 1
                result.problems = [*(result.problems or []),
                                   f"{path.name} line {number}: not an event with type and "
                                   "messageId"][:20]
                continue
            received = _received_at(message)
            if received is None or received >= since:
                result.read += 1
                yield subject, message_id, line


async def _replay(url: str, folder: Path, since: datetime, window: float,
                  max_age: float) -> ReplayResult:
    result = ReplayResult()
    nc = await nats.connect(url, connect_timeout=5, max_reconnect_attempts=3)
    try:
        js = nc.jetstream()
        await ensure_streams(js, window, max_age)

        async def publish(subject: str, message_id: str, line: bytes) -> None:
            ack = await js.publish(subject, line, timeout=10, headers={MSG_ID: message_id})
            if ack.duplicate:
                result.duplicates += 1
            else:
                result.published += 1

        group: list[tuple[str, str, bytes]] = []
        for item in events_since(folder, since, result):
            group.append(item)
            if len(group) >= IN_FLIGHT:
                await asyncio.gather(*(publish(*g) for g in group))
                group = []
        await asyncio.gather(*(publish(*g) for g in group))
    finally:
        await nc.close()
    return result


def replay(url: str, landing_dir: Path, since: datetime, duplicate_window_seconds: float,
           max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS) -> ReplayResult:
    return asyncio.run(_replay(url, landing_dir, since, duplicate_window_seconds,
                               max_age_seconds))
