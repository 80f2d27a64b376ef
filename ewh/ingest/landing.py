"""Durable, append-only landing files: what the collector acknowledges is on disk.

A writer appends NDJSON to `events-<utc>-<instance>-<seq>.ndjson.open`, holding an exclusive
flock on it. Requests wait on a group commit: everything that arrived while the previous fsync
ran is written and fsync'ed together, then all of them are answered (one fsync per group, not
per request). A file is closed when it reaches a size or an age: fsync, atomic rename to
`.ndjson` (the loader and the Dagster sensor only see closed files), fsync of the folder.

A collector killed with -9 leaves an `.open` file. `recover_open_files` (run at every start)
closes it: it truncates a torn last line (written, never fsync'ed, so never acknowledged) and
renames the file. A file whose flock is still held belongs to a live writer and is left alone.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import os
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from ewh.privacy.files import fsync_path, private_dir

OPEN_SUFFIX = ".open"
CLOSED_SUFFIX = ".ndjson"


@dataclass(frozen=True, slots=True)
class Recovered:
    path: Path  # the closed file (or the removed .open file, when nothing was left)
    dropped_bytes: int  # the torn tail that was cut off
    kept: bool


def closed_name(open_path: Path) -> Path:
    return open_path.with_name(open_path.name[: -len(OPEN_SUFFIX)])


def recover_open_files(folder: Path) -> list[Recovered]:
    """Close the `.open` files of dead writers, dropping only a torn (unacknowledged) tail."""
    recovered = []
    for path in sorted(folder.glob(f"*{CLOSED_SUFFIX}{OPEN_SUFFIX}")):
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue  # closed by its writer meanwhile
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live writer holds it
            size = os.fstat(fd).st_size
            keep = _complete_length(fd, size)
            if keep < size:
                os.ftruncate(fd, keep)
            os.fsync(fd)
            if keep == 0:
                path.unlink()
            else:
                os.replace(path, closed_name(path))
            recovered.append(Recovered(closed_name(path) if keep else path, size - keep,
                                       keep > 0))
        finally:
            os.close(fd)
    if recovered:
        fsync_path(folder)
    return recovered


def _complete_length(fd: int, size: int) -> int:
    """Bytes up to and including the last newline."""
    position = size
    while position > 0:
        start = max(0, position - (1 << 16))
        block = os.pread(fd, position - start, start)
        cut = block.rfind(b"\n")
        if cut >= 0:
            return start + cut + 1
        position = start
    return 0


@dataclass(slots=True)
class _OpenFile:
    path: Path
    fd: int
    opened_at: float  # time.monotonic()
    size: int = 0


@dataclass(slots=True)
class WriterStats:
    groups: int = 0
    appends: int = 0
    bytes: int = 0
    files_closed: int = 0
    closed: list[Path] = field(default_factory=list)


class LandingWriter:
    """Group-committing appender. `append` returns once the data is fsync'ed."""

    def __init__(self, folder: Path, max_bytes: int, max_age_seconds: float,
                 instance: str | None = None) -> None:
        self.folder = folder
        self.max_bytes = max_bytes
        self.max_age = max_age_seconds
        self.instance = instance or f"{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.stats = WriterStats()
        self._seq = 0
        self._file: _OpenFile | None = None
        self._pending: list[tuple[bytes, asyncio.Future[None]]] = []
        self._wake = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None
        # One thread does every file operation, so they happen in order, off the event loop.
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ewh-landing")

    @property
    def open_file(self) -> Path | None:
        return self._file.path if self._file else None

    async def start(self) -> list[Recovered]:
        private_dir(self.folder)
        recovered = await self._run(recover_open_files, self.folder)
        self._task = asyncio.create_task(self._flush_loop(), name="ewh-landing-flush")
        return recovered

    async def append(self, data: bytes) -> None:
        """Append complete NDJSON lines; returns when they are durable (raises if not)."""
        if self._closing:
            raise RuntimeError("the landing writer is closing")
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((data, future))
        self._wake.set()
        await future

    async def close(self) -> None:
        """Flush what is pending, close the open file (rename) and stop."""
        self._closing = True
        self._wake.set()
        if self._task is not None:
            await self._task
        await self._run(self._close_file)
        self._io.shutdown(wait=True)

    async def rotate(self) -> None:
        """Close the open file now (erasure rewrites closed files only, ewh.privacy.erasure)."""
        await self._run(self._close_file)

    async def _run(self, fn, *args):  # type: ignore[no-untyped-def]
        return await asyncio.get_running_loop().run_in_executor(self._io, fn, *args)

    async def _flush_loop(self) -> None:
        while True:
            timeout = self._age_left()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)
            self._wake.clear()
            group, self._pending = self._pending, []
            if group:
                try:
                    await self._run(self._write_group, b"".join(data for data, _ in group))
                except Exception as exc:  # noqa: BLE001 - every waiter learns it failed
                    for _, future in group:
                        if not future.done():
                            future.set_exception(exc)
                else:
                    for _, future in group:
                        if not future.done():
                            future.set_result(None)
            if self._file is not None and self._age_left() == 0:
                await self._run(self._close_file)
            if self._closing and not self._pending:
                return

    def _age_left(self) -> float | None:
        if self._file is None:
            return None
        return max(0.0, self.max_age - (time.monotonic() - self._file.opened_at))

    # --- file operations: only ever run on the single I/O thread -----------------------------

    def _write_group(self, data: bytes) -> None:
        current = self._file or self._open_file()
        try:
            view = memoryview(data)
            while view:
                written = os.write(current.fd, view)
                view = view[written:]
            os.fsync(current.fd)
        except OSError:
            # Leave no partial group behind: nobody was acknowledged for it.
            with contextlib.suppress(OSError):
                os.ftruncate(current.fd, current.size)
            raise
        current.size += len(data)
        self.stats.groups += 1
        self.stats.bytes += len(data)
        if current.size >= self.max_bytes:
            self._close_file()

    def _open_file(self) -> _OpenFile:
        self._seq += 1
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self.folder / f"events-{stamp}-{self.instance}-{self._seq:06d}" \
                             f"{CLOSED_SUFFIX}{OPEN_SUFFIX}"
        # 0600: a landing file holds personal data (docs/privacy.md)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        fcntl.flock(fd, fcntl.LOCK_EX)
        fsync_path(self.folder)  # the new name itself must survive a crash
        self._file = _OpenFile(path, fd, time.monotonic())
        return self._file

    def _close_file(self) -> None:
        current, self._file = self._file, None
        if current is None:
            return
        os.fsync(current.fd)
        final = closed_name(current.path)
        os.replace(current.path, final)  # atomic: readers see all of it or nothing
        fsync_path(self.folder)
        os.close(current.fd)  # releases the flock only after the rename
        self.stats.files_closed += 1
        self.stats.closed.append(final)


def closed_landing_files(folder: Path) -> list[Path]:
    """The loadable files of a landing folder, oldest first. A file still being written ends
    in `.open` and is not among them until its writer closes (renames) it. Symbolic links are
    listed as links, by their own time: the loader decides whether to follow them."""
    from ewh.ingest.readers import LOADABLE_PATTERNS

    found = {p for pattern in LOADABLE_PATTERNS for p in folder.glob(pattern)
             if p.is_file() or p.is_symlink()}
    return sorted(found, key=lambda p: (p.lstat().st_mtime, p.name))
