"""Landing files: durable appends, group commit, rotation, and recovery after a crash."""

from __future__ import annotations

import asyncio
import fcntl
import os
from pathlib import Path

from ewh.ingest.landing import LandingWriter, recover_open_files


def _run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_appends_are_in_the_open_file_when_append_returns(tmp_path: Path) -> None:
    async def scenario() -> tuple[bytes, Path | None]:
        writer = LandingWriter(tmp_path, max_bytes=1 << 20, max_age_seconds=60)
        await writer.start()
        await writer.append(b'{"a":1}\n')
        await writer.append(b'{"a":2}\n')
        path = writer.open_file
        content = path.read_bytes() if path else b""
        await writer.close()
        return content, path

    content, path = _run(scenario())
    assert content == b'{"a":1}\n{"a":2}\n'
    assert path is not None and path.name.endswith(".ndjson.open")
    [closed] = tmp_path.glob("*.ndjson")
    assert closed.name == path.name.removesuffix(".open")
    assert list(tmp_path.glob("*.open")) == []


def test_concurrent_appends_share_one_fsync_group(tmp_path: Path) -> None:
    async def scenario() -> tuple[int, int]:
        writer = LandingWriter(tmp_path, max_bytes=1 << 20, max_age_seconds=60)
        await writer.start()
        await asyncio.gather(*(writer.append(b"%d\n" % i) for i in range(200)))
        stats = (writer.stats.groups, writer.stats.bytes)
        await writer.close()
        return stats

    groups, size = _run(scenario())
    assert size == sum(len(b"%d\n" % i) for i in range(200))  # 10*2 + 90*3 + 100*4 = 690
    assert size == 690
    assert groups < 200  # requests that arrive during an fsync are committed together


def test_a_file_is_closed_at_the_size_limit_and_a_new_one_opened(tmp_path: Path) -> None:
    async def scenario() -> None:
        writer = LandingWriter(tmp_path, max_bytes=20, max_age_seconds=60)
        await writer.start()
        for _ in range(5):
            await writer.append(b"0123456789\n")  # 11 bytes: every second append crosses 20
        await writer.close()

    _run(scenario())
    sizes = sorted(p.stat().st_size for p in tmp_path.glob("*.ndjson"))
    assert sizes == [11, 22, 22]  # two closed at 22 bytes, the last closed by close()


def test_a_file_is_closed_when_it_reaches_its_age(tmp_path: Path) -> None:
    async def scenario() -> list[Path]:
        writer = LandingWriter(tmp_path, max_bytes=1 << 20, max_age_seconds=0.2)
        await writer.start()
        await writer.append(b"x\n")
        await asyncio.sleep(0.6)
        closed = list(tmp_path.glob("*.ndjson"))
        await writer.close()
        return closed

    assert len(_run(scenario())) == 1


def test_recovery_cuts_a_torn_last_line_and_closes_the_file(tmp_path: Path) -> None:
    leftover = tmp_path / "events-20261001T000000000000-1-abc-000001.ndjson.open"
    leftover.write_bytes(b'{"a":1}\n{"a":2}\n{"a":')
    [item] = recover_open_files(tmp_path)
    assert (item.kept, item.dropped_bytes) == (True, 5)
    assert item.path == tmp_path / "events-20261001T000000000000-1-abc-000001.ndjson"
    assert item.path.read_bytes() == b'{"a":1}\n{"a":2}\n'
    assert not leftover.exists()


def test_recovery_removes_a_file_with_no_complete_line(tmp_path: Path) -> None:
    leftover = tmp_path / "events-x.ndjson.open"
    leftover.write_bytes(b'{"torn')
    [item] = recover_open_files(tmp_path)
    assert (item.kept, item.dropped_bytes) == (False, 6)
    assert list(tmp_path.iterdir()) == []


def test_recovery_leaves_a_file_locked_by_a_live_writer_alone(tmp_path: Path) -> None:
    live = tmp_path / "events-live.ndjson.open"
    live.write_bytes(b'{"a":1}\n{"half')
    fd = os.open(live, os.O_RDWR)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        assert recover_open_files(tmp_path) == []
        assert live.read_bytes() == b'{"a":1}\n{"half'
    finally:
        os.close(fd)


def test_a_writer_recovers_leftovers_when_it_starts(tmp_path: Path) -> None:
    (tmp_path / "events-old.ndjson.open").write_bytes(b'{"a":1}\n')

    async def scenario() -> None:
        writer = LandingWriter(tmp_path, max_bytes=1 << 20, max_age_seconds=60)
        [item] = await writer.start()
        assert item.path.name == "events-old.ndjson"
        await writer.close()

    _run(scenario())
    assert (tmp_path / "events-old.ndjson").read_bytes() == b'{"a":1}\n'
