"""One pass over a landing file before it is loaded: its checksum, whether it can be read at all,
and what the fast reader may take.

The pass reads every byte once (the sha256 needs them anyway) and on the way:
- inflates a `.gz` file, so truncated or corrupt compression is found before a row is written;
- refuses text that is not UTF-8 (a UTF-16 or UTF-32 byte-order mark);
- for NDJSON, looks for what DuckDB's CSV reader would split differently from
  ewh.ingest.readers (a CR or 0x01 byte, a byte-order mark), and keeps the last line when it has
  no newline: a line still being written (torn) is not loaded until it is complete;
- when asked, takes the checksum of the first N bytes, to recognise a file that grew.
A file that cannot be read raises FileUnreadable: the loader quarantines it and goes on.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa

SCAN_BLOCK_BYTES = 8 << 20
UTF8_BOM = b"\xef\xbb\xbf"
# Byte-order marks of text that is not UTF-8 (the UTF-32 ones first: FF FE starts both).
_OTHER_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
               (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))
TAIL_KEPT_BYTES = 1 << 20  # a longer unterminated last line is oversize anyway: loaded as is


class FileUnreadable(Exception):
    """The file cannot be read as a landing file; the message says why."""


# What reading a broken file raises (a database error is none of them): gzip's EOFError and
# BadGzipFile (an OSError), zlib.error, csv.Error, pyarrow's ArrowException, UnicodeError.
READ_ERRORS: tuple[type[BaseException], ...] = (OSError, EOFError, zlib.error, csv.Error,
                                                UnicodeError, pa.ArrowException)


def describe_read_error(exc: BaseException) -> str:
    if isinstance(exc, EOFError | gzip.BadGzipFile | zlib.error):
        return f"is truncated or corrupt gzip: {exc}"
    return f"cannot be read: {type(exc).__name__}: {exc}"


@dataclass(frozen=True, slots=True)
class FileScan:
    checksum: str  # sha256 hex digest of the file as stored (compressed, for .gz)
    size: int  # bytes as stored
    plain_lines: bool  # NDJSON without CR, 0x01 or BOM; for .gz one complete gzip member
    # Plain NDJSON (not .gz) only, else 0, b"": where the last newline ends, and what follows.
    complete_bytes: int = 0
    tail: bytes = b""  # the last line when it has no newline (up to TAIL_KEPT_BYTES)
    prefix_checksum: str | None = None  # sha256 of the first `prefix_at` bytes, when asked
    prefix_lines: int = 0  # newlines in those bytes

    @property
    def has_tail(self) -> bool:
        return bool(self.tail.strip(b" \t\r"))


def file_checksum(path: Path) -> tuple[str, int]:
    """sha256 hex digest and size in bytes of the file as stored (compressed, for .gz)."""
    scan = scan_file(path, text=False)
    return scan.checksum, scan.size


def scan_file(path: Path, *, look_for_line_breaks: bool = False, text: bool = True,
              lines: bool = False, prefix_at: int | None = None) -> FileScan:
    """The one pass (see the module doc). `text`: check the compression and the encoding
    (not for Parquet; without it, only the checksum);
    `lines`: a plain NDJSON file, whose last line without newline is kept apart;
    `look_for_line_breaks`: work out `plain_lines`. Raises FileUnreadable."""
    digest = hashlib.sha256()
    prefix: str | None = None
    prefix_lines = size = 0
    gz = path.name.endswith(".gz")
    inflate = _Inflate(path) if gz and text else None
    probe = _TextProbe() if look_for_line_breaks else None
    start = bytearray()  # the first bytes of the text, for its byte-order mark
    last_newline = -1  # offset in the file of the last newline byte (plain files)
    buffer = bytearray(SCAN_BLOCK_BYTES)
    view = memoryview(buffer)
    try:
        with path.open("rb", buffering=0) as f:
            while n := f.readinto(buffer):
                if prefix_at is not None and prefix is None and size + n >= prefix_at:
                    cut = prefix_at - size
                    digest.update(view[:cut])
                    prefix = digest.copy().hexdigest()
                    prefix_lines += buffer.count(b"\n", 0, cut)
                    digest.update(view[cut:n])
                else:
                    digest.update(view[:n])  # hashlib releases the GIL on large blocks
                    if prefix_at is not None and prefix is None:
                        prefix_lines += buffer.count(b"\n", 0, n)
                if lines:
                    found = buffer.rfind(b"\n", 0, n)
                    if found >= 0:
                        last_newline = size + found
                size += n
                for piece in (inflate.feed(view[:n]) if inflate else (view[:n],)):
                    if text and len(start) < 4:
                        start += bytes(piece[: 4 - len(start)])
                    if probe is not None:
                        probe.look(piece)
    except OSError as exc:
        raise FileUnreadable(f"cannot be read: {exc.strerror or exc}") from exc
    if prefix_at is not None and prefix is None and prefix_at == size:
        prefix = digest.hexdigest()  # an empty last block: the prefix is the whole file
    if inflate is not None and size:  # an empty file is empty, not broken
        inflate.finish()
    if text:
        _check_encoding(bytes(start))
    complete, tail = size, b""
    if lines:
        complete = last_newline + 1
        if complete < size:
            tail = _read_tail(path, complete, size)
    plain = probe is not None and probe.plain(bytes(start)) and (
        inflate is None or not inflate.after_end)
    return FileScan(digest.hexdigest(), size, plain, complete, tail, prefix, prefix_lines)


def checksum_of_first(path: Path, length: int) -> str:
    """sha256 of the first `length` bytes of the file."""
    digest = hashlib.sha256()
    with path.open("rb") as f:
        left = length
        while left and (block := f.read(min(left, SCAN_BLOCK_BYTES))):
            digest.update(block)
            left -= len(block)
    return digest.hexdigest()


def _read_tail(path: Path, start: int, size: int) -> bytes:
    if size - start > TAIL_KEPT_BYTES:
        return b""  # not worth keeping apart: read with the rest (oversize anyway)
    with path.open("rb") as f:
        return os.pread(f.fileno(), size - start, start)


def _check_encoding(start: bytes) -> None:
    for mark, name in _OTHER_BOMS:
        if start.startswith(mark):
            raise FileUnreadable(f"is {name} text (byte-order mark {mark.hex(' ').upper()}), "
                                 "expected UTF-8")


class _Inflate:
    """Decompresses the first gzip member block by block; finish() says if it was whole."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.inflate = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
        self.after_end = False  # bytes after the end of the first member

    def feed(self, data: memoryview) -> list[bytes]:
        if self.inflate.eof:
            self.after_end = self.after_end or bool(len(data))
            return []
        pieces = []
        chunk: bytes | memoryview = data
        try:
            while chunk and not self.inflate.eof:  # in pieces of bounded size
                pieces.append(self.inflate.decompress(chunk, SCAN_BLOCK_BYTES))
                chunk = self.inflate.unconsumed_tail
        except zlib.error as exc:
            raise FileUnreadable(f"is corrupt gzip: {exc}") from exc
        self.after_end = bool(chunk) or bool(self.inflate.unused_data)
        return pieces

    def finish(self) -> None:
        if not self.inflate.eof:
            raise FileUnreadable("is truncated gzip: the compressed data ends before its end "
                                 "marker (a copy cut short?)")


class _TextProbe:
    """Looks, in a file's text fed piece by piece, for what DuckDB's CSV reader would split
    differently from ewh.ingest.readers: a CR or 0x01 byte anywhere, a byte-order mark first."""

    def __init__(self) -> None:
        self.odd = False  # a CR or 0x01 byte was seen

    def look(self, text: bytes | memoryview) -> None:
        if not self.odd:  # memchr speed, no copy
            data = text if isinstance(text, bytes) else text.obj  # type: ignore[union-attr]
            n = len(text)
            self.odd = data.find(b"\r", 0, n) >= 0 or data.find(b"\x01", 0, n) >= 0

    def plain(self, start: bytes) -> bool:
        return not self.odd and not start.startswith(UTF8_BOM)
