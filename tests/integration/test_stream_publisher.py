"""The collector's publisher against a real nats-server: it never blocks, drops and counts
when its queue is full, dedupes by messageId, and the broker keeps its stream over a restart."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import nats

from ewh.stream.broker import NatsBroker, free_port
from ewh.stream.publisher import EventPublisher
from ewh.stream.subjects import EVENTS_STREAM


def line(message_id: str, kind: str = "track") -> bytes:
    return json.dumps({"type": kind, "messageId": message_id, "event": "x"}).encode()


async def _stream_count(url: str) -> int:
    nc = await nats.connect(url)
    try:
        return (await nc.jetstream().stream_info(EVENTS_STREAM)).state.messages
    finally:
        await nc.close()


def test_offers_never_block_and_a_full_queue_drops_and_counts() -> None:
    async def run() -> EventPublisher:
        publisher = EventPublisher(f"nats://127.0.0.1:{free_port()}", queue_size=5,
                                   duplicate_window_seconds=60)  # nobody listens there
        await publisher.start()
        started = time.monotonic()
        publisher.offer([line(f"m{i}") for i in range(12)])
        assert time.monotonic() - started < 0.05
        await publisher.stop(drain_seconds=0.1)
        return publisher

    stats = asyncio.run(run()).stats
    assert (stats.queued, stats.dropped, stats.published) == (5, 7, 0)


def test_published_once_per_message_id_and_kept_across_a_broker_restart(tmp_path: Path) -> None:
    broker = NatsBroker(tmp_path / "store").start()
    try:
        async def run() -> EventPublisher:
            publisher = EventPublisher(broker.url, queue_size=100,
                                       duplicate_window_seconds=60)
            await publisher.start()
            publisher.offer([line("a"), line("b", "identify"), line("a"), b"not json"])
            await publisher.stop()
            return publisher

        stats = asyncio.run(run()).stats
        assert (stats.published, stats.duplicates, stats.unreadable) == (2, 1, 1)
        assert asyncio.run(_stream_count(broker.url)) == 2
        broker.stop()
        broker.start()  # same port, same store
        assert asyncio.run(_stream_count(broker.url)) == 2
    finally:
        broker.stop()
