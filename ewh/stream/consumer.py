"""`ewh stream consume`: micro-batches from JetStream into DuckDB, then the fast refresh.

One cycle:
1. fetch up to EWH_STREAM_BATCH_MAX events from the durable consumer `ewh_loader` (waiting
   at most EWH_STREAM_BATCH_WAIT_SECONDS);
2. write them to a micro-batch file under `<stream_dir>/batches/` (fsync'ed) and load it with
   the loader, the same exactly-once load as the landing files: a messageId already in
   raw.events (from a landing file or an earlier batch) counts as a duplicate, so the landing
   file that holds the same event later loads nothing twice;
3. when there were events, or EWH_STREAM_REFRESH_SECONDS passed since the last refresh:
   refresh the fast segments (ewh.stream.refresh), record the changes, publish the serving
   copy;
4. acknowledge the messages and remove the batch file (the load manifest keeps its counts).

A crash before 4 leaves the messages unacknowledged: they come again and load as duplicates.
A stop (`should_stop`, SIGTERM for `ewh stream consume`) is taken between cycles: the
micro-batch in progress finishes, and a batch fetched after the stop is handed back unloaded.
The warehouse is opened (its one-writer lock taken) only inside 2 and 3, one micro-batch at a
time; when a refresh elsewhere holds it, the batch is handed back (nak) and tried again.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import nats
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from ewh.common.clock import utc_now
from ewh.common.settings import Settings
from ewh.ingest.loader import FileLoadResult, load_files
from ewh.segments.catalog import SegmentSpec
from ewh.stream.refresh import DbtSession, RefreshResult, refresh_fast_segments
from ewh.stream.subjects import EVENTS_PREFIX, EVENTS_STREAM, LOADER_CONSUMER, ensure_streams

ACK_WAIT_SECONDS = 600  # longer than a micro-batch's load and refresh


@dataclass
class CycleResult:
    events: int = 0
    load: FileLoadResult | None = None
    refresh: RefreshResult | None = None
    busy: bool = False  # the warehouse was locked by another writer: batch handed back
    stopping: bool = False  # a stop came while fetching: batch handed back unloaded
    finished_at: datetime = field(default_factory=utc_now)


def _locked(exc: BaseException) -> bool:
    """DuckDB's "Could not set lock on file": from the loader directly, or inside dbt's error."""
    return "could not set lock" in str(exc).lower()


class StreamConsumer:
    def __init__(self, settings: Settings, segments: list[SegmentSpec],
                 report: Callable[[CycleResult], None] | None = None) -> None:
        if not settings.nats_url:
            raise ValueError("EWH_NATS_URL is not set: there is no stream to consume")
        self.settings = settings
        self.segments = segments
        self.report = report or (lambda _result: None)
        self.batches = settings.stream_dir / "batches"
        self.last_refresh = float("-inf")
        self.dbt = DbtSession(settings.stream_dir / "dbt")
        self._seq = 0

    async def run(self, once: bool = False, max_cycles: int | None = None,
                  should_stop: Callable[[], bool] = lambda: False) -> None:
        self._remove_orphan_batches()
        nc = await nats.connect(self.settings.nats_url, connect_timeout=5,
                                max_reconnect_attempts=-1, reconnect_time_wait=1)
        try:
            js = nc.jetstream()
            await ensure_streams(js, self.settings.stream_duplicate_window_seconds,
                                 self.settings.stream_max_age_seconds)
            sub = await js.pull_subscribe(
                f"{EVENTS_PREFIX}.>", durable=LOADER_CONSUMER, stream=EVENTS_STREAM,
                config=ConsumerConfig(ack_policy=AckPolicy.EXPLICIT,
                                      deliver_policy=DeliverPolicy.ALL,
                                      ack_wait=ACK_WAIT_SECONDS,
                                      max_ack_pending=-1))
            cycles = 0
            while not should_stop():
                result = await self.cycle(sub, force_refresh=once, should_stop=should_stop)
                self.report(result)
                cycles += 1
                if once or (max_cycles is not None and cycles >= max_cycles):
                    return
                if result.busy:
                    await asyncio.sleep(1.0)
        finally:
            with contextlib.suppress(Exception):
                await nc.close()

    async def cycle(self, sub, force_refresh: bool = False,  # type: ignore[no-untyped-def]
                    should_stop: Callable[[], bool] = lambda: False) -> CycleResult:
        try:
            messages = await sub.fetch(self.settings.stream_batch_max,
                                       timeout=self.settings.stream_batch_wait_seconds)
        except (TimeoutError, nats.errors.TimeoutError):
            messages = []
        result = CycleResult(events=len(messages))
        if should_stop():  # not worth a whole micro-batch: the next consumer takes them
            await asyncio.gather(*(m.nak() for m in messages))
            result.stopping = True
            return result
        due = time.monotonic() - self.last_refresh >= self.settings.stream_refresh_seconds
        if not messages and not due and not force_refresh:
            return result
        batch = self._write_batch([m.data for m in messages]) if messages else None
        try:
            result.load, result.refresh = await asyncio.to_thread(self._load_and_refresh, batch)
        except Exception as exc:
            if batch is not None:
                batch.unlink(missing_ok=True)  # what loaded stays loaded, once
            if not _locked(exc):
                await asyncio.gather(*(m.nak() for m in messages))
                raise
            result.busy = True
            await asyncio.gather(*(m.nak(delay=1) for m in messages))
            return result
        self.last_refresh = time.monotonic()
        await asyncio.gather(*(m.ack() for m in messages))
        if batch is not None:
            batch.unlink(missing_ok=True)
        result.finished_at = utc_now()
        return result

    def _remove_orphan_batches(self) -> None:
        """Batch files of consumers that died mid micro-batch (kill -9, a second SIGTERM):
        their messages were never acknowledged and come again, so the files are only copies
        of events. A file names its writer's pid; a live one's are left alone."""
        for path in self.batches.glob("stream-*-*-*.ndjson"):
            pid = path.stem.split("-")[2]
            if not pid.isdigit():
                continue
            try:
                os.kill(int(pid), 0)
            except ProcessLookupError:
                path.unlink(missing_ok=True)
            except PermissionError:
                pass  # alive, another user's

    def _write_batch(self, lines: list[bytes]) -> Path:
        self.batches.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._seq += 1
        stamp = utc_now().strftime("%Y%m%dT%H%M%S%f")
        path = self.batches / f"stream-{stamp}-{os.getpid()}-{self._seq:06d}.ndjson"
        data = b"".join(line if line.endswith(b"\n") else line + b"\n" for line in lines)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        return path

    def _load_and_refresh(self, batch: Path | None
                          ) -> tuple[FileLoadResult | None, RefreshResult]:
        load = None
        if batch is not None:
            [load] = load_files([batch], self.settings.warehouse, landing_dir=self.batches,
                                timestamp_floor=self.settings.timestamp_floor)
        refresh = refresh_fast_segments(self.settings, self.segments, self.dbt)
        return load, refresh


def consume(settings: Settings, segments: list[SegmentSpec], once: bool = False,
            max_cycles: int | None = None,
            report: Callable[[CycleResult], None] | None = None,
            should_stop: Callable[[], bool] = lambda: False) -> None:
    """Cycles until `once`, `max_cycles` or `should_stop()` (checked between cycles)."""
    asyncio.run(StreamConsumer(settings, segments, report).run(once, max_cycles, should_stop))
