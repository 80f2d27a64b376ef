"""The collector's publisher: acknowledged events to JetStream, never in intake's way.

`offer(lines)` is called after the lines are durable in their landing file (the landing file
stays the source of truth). It only puts them on a bounded queue and returns: a background
task publishes each event to `ewh.events.<type>` with its messageId as `Nats-Msg-Id`, so the
broker drops a repeat within its duplicate window. When the queue is full (broker slow or
down) the lines are dropped and counted; a failed publish is counted too. Either way intake
answers as before, and `ewh stream replay --since ...` republishes from the landing files.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import asdict, dataclass

import nats
import orjson
from nats.aio.client import Client

from ewh.stream.subjects import DEFAULT_MAX_AGE_SECONDS, MSG_ID, ensure_streams, event_subject

log = logging.getLogger("ewh.stream")
PUBLISH_TIMEOUT_SECONDS = 2.0
IN_FLIGHT = 256  # acks awaited together: one round trip per group, not per event


@dataclass(slots=True)
class PublisherStats:
    queued: int = 0
    published: int = 0
    duplicates: int = 0  # the broker had the messageId already (a client's retry)
    dropped: int = 0  # the queue was full: left to `ewh stream replay`
    failed: int = 0  # broker down or no ack in time: left to `ewh stream replay`
    unreadable: int = 0  # a landed line without type/messageId (cannot happen for valid events)
    connected: bool = False


class EventPublisher:
    def __init__(self, url: str, queue_size: int, duplicate_window_seconds: float,
                 max_age_seconds: float = DEFAULT_MAX_AGE_SECONDS) -> None:
        self.url = url
        self.duplicate_window = duplicate_window_seconds
        self.max_age = max_age_seconds
        self.stats = PublisherStats()
        self._queue: asyncio.Queue[bytes] = asyncio.Queue(maxsize=queue_size)
        self._task: asyncio.Task[None] | None = None
        self._nc: Client | None = None

    def offer(self, lines: list[bytes]) -> None:
        """Queue durable lines for publishing; never blocks, never raises."""
        for line in lines:
            try:
                self._queue.put_nowait(line)
                self.stats.queued += 1
            except asyncio.QueueFull:
                self.stats.dropped += 1

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="ewh-stream-publisher")

    async def stop(self, drain_seconds: float = 5.0) -> None:
        """Publish what is queued (for up to `drain_seconds`), then disconnect."""
        if self._task is None:
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._queue.join(), drain_seconds)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        if self._nc is not None:
            with contextlib.suppress(Exception):
                await self._nc.close()

    def status(self) -> dict[str, object]:
        return {**asdict(self.stats), "pending": self._queue.qsize()}

    async def _connect(self) -> Client:
        # Keep trying in the background; offers meanwhile queue up (and drop when full).
        while True:
            try:
                nc = await nats.connect(self.url, connect_timeout=2, max_reconnect_attempts=-1,
                                        reconnect_time_wait=1, allow_reconnect=True,
                                        pending_size=8 << 20)
                await ensure_streams(nc.jetstream(), self.duplicate_window, self.max_age)
                return nc
            except Exception as exc:  # noqa: BLE001 - broker not there yet: try again
                log.warning("event stream: cannot reach %s (%s); retrying", self.url, exc)
                await asyncio.sleep(1.0)

    async def _run(self) -> None:
        self._nc = await self._connect()
        js = self._nc.jetstream()
        while True:
            group = [await self._queue.get()]
            while len(group) < IN_FLIGHT and not self._queue.empty():
                group.append(self._queue.get_nowait())
            self.stats.connected = self._nc.is_connected
            await asyncio.gather(*(self._publish(js, line) for line in group))
            for _ in group:
                self._queue.task_done()

    async def _publish(self, js, line: bytes) -> None:  # type: ignore[no-untyped-def]
        try:
            message = orjson.loads(line)
            message_type, message_id = message["type"], message["messageId"]
        except (orjson.JSONDecodeError, KeyError, TypeError):
            self.stats.unreadable += 1
            return
        try:
            ack = await js.publish(event_subject(str(message_type)), line,
                                   timeout=PUBLISH_TIMEOUT_SECONDS,
                                   headers={MSG_ID: str(message_id)})
        except Exception:  # noqa: BLE001 - broker down or slow: replay catches up
            self.stats.failed += 1
            return
        if ack.duplicate:
            self.stats.duplicates += 1
        else:
            self.stats.published += 1
