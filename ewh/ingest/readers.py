"""Read landing files of any supported format as chunks of raw records for the loader.

Every format becomes the same thing: Arrow tables of `record_number BIGINT, line BINARY`, one
JSON message per line, so a single SQL contract check (ewh.contract.sql) validates them all.
Memory stays bounded by the block size whatever the file size.

- NDJSON (.ndjson, .jsonl, plain or .gz; .json/.json.gz that do not start with `[`): split on
  newlines with numpy, no per-line Python work. record_number is the physical line number;
  blank lines are skipped, a trailing CR is dropped. A plain file can be read from a byte
  offset to another (the part of a file that grew since it was loaded).

Text may start with a UTF-8 byte-order mark, which is not part of the first record.
- JSON arrays (.json, .json.gz starting with `[`): streamed element by element; record_number
  is the element's 1-based position. Text that cannot be parsed ends the file as one
  invalid_json record (a parser cannot resynchronize inside a broken array).
- CSV (.csv, .csv.gz) with a header of Segment field names; `properties.price` style columns
  nest, cells of object fields (properties, traits, context, integrations) may hold JSON text,
  empty cells are absent. record_number is the physical line where the row ends.
- Parquet (.parquet): columns are fields (structs nest; timestamps become ISO-8601 UTC);
  record_number is the 1-based row.
"""

from __future__ import annotations

import codecs
import csv
import gzip
import io
import json
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal

import numpy as np
import orjson
import pyarrow as pa

Format = Literal["ndjson", "json_array", "csv", "parquet"]
# What a folder holds that the loader reads (and the landing sensor watches). A landing file
# still being written ends in `.ndjson.open`, which none of these match.
LOADABLE_PATTERNS = ("*.ndjson", "*.ndjson.gz", "*.jsonl", "*.jsonl.gz", "*.json.gz", "*.csv",
                     "*.csv.gz", "*.parquet")
# line: the record's bytes; n_bytes: their count;
# suspect: may need the strict-JSON check (see _suspect_lines); NULL means check it.
RECORD_SCHEMA = pa.schema([("record_number", pa.int64()), ("line", pa.binary()),
                           ("n_bytes", pa.int32()), ("suspect", pa.bool_())])
BLOCK_BYTES = 64 << 20  # fewer, larger chunks: each costs a few ms of query planning
MAX_ELEMENT_CHARS = 4 << 20  # a JSON array element still incomplete past this is malformed
SHOWN_BROKEN_CHARS = 1_000  # how much of an unparseable tail is kept as its raw text
_OBJECT_FIELDS = frozenset({"properties", "traits", "context", "integrations"})
_NEWLINE, _CR = 10, 13
UTF8_BOM = b"\xef\xbb\xbf"


def detect_format(path: Path) -> Format:
    name = path.name.lower()
    stem = name[:-3] if name.endswith(".gz") else name
    if stem.endswith((".ndjson", ".jsonl")):
        return "ndjson"
    if stem.endswith(".csv"):
        return "csv"
    if name.endswith(".parquet"):
        return "parquet"
    if stem.endswith(".json"):
        return "json_array" if _first_byte(path) == b"[" else "ndjson"
    raise ValueError(f"{path}: unknown format; expected .ndjson, .jsonl, .json, .csv or "
                     ".parquet (optionally .gz)")


def read_records(path: Path, chunk_records: int, *, start: int = 0, end: int | None = None,
                 first_line: int = 1) -> Iterator[pa.Table]:
    """Tables of at most `chunk_records` records, in file order.

    Plain NDJSON only: `start`/`end` bound the bytes read (`end` None: to the end of the file)
    and `first_line` is the physical line number of the line at `start`."""
    fmt = detect_format(path)
    if fmt == "ndjson":
        for table in _ndjson_tables(path, start, end, first_line):
            for start in range(0, table.num_rows, chunk_records):
                yield table.slice(start, chunk_records)
        return
    rows = {"json_array": _json_array_records, "csv": _csv_records,
            "parquet": _parquet_records}[fmt](path)
    yield from _batched(rows, chunk_records)


def open_binary(path: Path) -> IO[bytes]:
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def _first_byte(path: Path) -> bytes:
    with open_binary(path) as f:
        first = True
        while block := f.read(4096):
            if first and block.startswith(UTF8_BOM):
                block = block[len(UTF8_BOM):]
            first = False
            stripped = block.lstrip()
            if stripped:
                return stripped[:1]
    return b""


# ---------------------------------------------------------------------------------------------
# NDJSON: vectorized line splitting


def _ndjson_tables(path: Path, start: int = 0, end: int | None = None,
                   first_line: int = 1) -> Iterator[pa.Table]:
    carry = b""
    line_offset = first_line - 1  # physical lines before the current block
    left = end - start if end is not None else None
    at_start = start == 0  # where a byte-order mark may be
    with open_binary(path) as f:
        if start:
            f.seek(start)
        while True:
            block = f.read(BLOCK_BYTES if left is None else min(BLOCK_BYTES, left))
            if not block:
                break
            if left is not None:
                left -= len(block)
            if at_start:
                block, at_start = block.removeprefix(UTF8_BOM), False
            data = carry + block
            cut = data.rfind(b"\n") + 1
            if cut == 0:
                carry = data
                continue
            table, lines = _split_lines(data[:cut], line_offset)
            line_offset += lines
            carry = data[cut:]
            if table.num_rows:
                yield table
    if carry:
        table, _ = _split_lines(carry + b"\n", line_offset)  # a last line without newline
        if table.num_rows:
            yield table


def _split_lines(data: bytes, line_offset: int) -> tuple[pa.Table, int]:
    """The lines of `data` (which ends with a newline) without terminators, blank ones dropped.

    Newlines only ever separate NDJSON records, so deleting them all (bytes.replace, C speed)
    leaves the records back to back; offsets then point into that one buffer. No per-line
    Python work: this is what keeps splitting far cheaper than parsing.
    """
    if b"\r" in data:  # CRLF endings: a record's CR is part of its terminator
        data = data.replace(b"\r\n", b"\n")
    buf = np.frombuffer(data, dtype=np.uint8)
    ends = np.flatnonzero(buf == _NEWLINE)  # index of each line's newline
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = (ends - starts).astype(np.int32)
    offsets = np.concatenate(([0], np.cumsum(lengths, dtype=np.int64))).astype(np.int32)
    lines = pa.BinaryArray.from_buffers(
        pa.binary(), len(ends),
        [None, pa.py_buffer(offsets), pa.py_buffer(data.replace(b"\n", b""))])
    table = pa.Table.from_arrays(
        [pa.array(np.arange(line_offset + 1, line_offset + len(ends) + 1), pa.int64()), lines,
         pa.array(lengths, pa.int32()),
         pa.array(_suspect_lines(buf, starts, ends), pa.bool_())],
        schema=RECORD_SCHEMA)
    # Blank lines (only spaces and tabs) are not records. A line starting with another byte
    # is not blank, so only the rare others are looked at one by one.
    first_bytes = buf[np.minimum(starts, len(buf) - 1)]
    maybe_blank = np.flatnonzero((lengths == 0) | _WHITESPACE[first_bytes])
    blank = [i for i in maybe_blank if not data[starts[i]:ends[i]].strip(b" \t\r")]
    if blank:
        keep = np.ones(len(ends), dtype=bool)
        keep[blank] = False
        table = table.filter(pa.array(keep))
    return table, len(ends)


def _suspect_lines(buf: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> np.ndarray:
    """Lines that may hold JSON DuckDB accepts but RFC 8259 does not (trailing commas,
    NaN/Infinity); only these get the exact, string-aware check in SQL, which is too slow to
    run on every line. False positives only cost time; a true case is never missed."""
    # Every such token follows one of , : [ (then maybe whitespace and a sign): look only
    # there. bytes.translate finds them in one C pass, faster than numpy comparisons.
    marks = np.flatnonzero(np.frombuffer(buf.tobytes().translate(_MARK_TABLE), dtype=np.uint8))
    last = len(buf) - 1
    nxt = np.minimum(marks + 1, last)
    spaced = np.flatnonzero(_is_space(buf[nxt]))  # usually few: compact JSON has none
    for _ in range(_WHITESPACE_STEPS):
        if not len(spaced):
            break
        nxt[spaced] = np.minimum(nxt[spaced] + 1, last)
        spaced = spaced[_is_space(buf[nxt[spaced]])]
    following = buf[nxt]
    signed = (following == _MINUS) | (following == _PLUS)
    nxt[signed] = np.minimum(nxt[signed] + 1, last)
    first = buf[nxt] | 32  # | 32 lower-cases an ASCII letter
    second = buf[np.minimum(nxt + 1, last)] | 32
    trailing_comma = (buf[marks] == _COMMA) & ((following == _CLOSE_BRACKET)
                                                | (following == _CLOSE_BRACE))
    word = ((first == ord("n")) & (second == ord("a"))) | ((first == ord("i"))
                                                            & (second == ord("n")))
    hits = np.concatenate((marks[trailing_comma | word], marks[spaced]))  # long whitespace
    suspect = buf[starts] != _BRACE  # not an object at all: rejected anyway, so check it
    suspect[np.searchsorted(ends, hits)] = True
    return suspect


def _is_space(b: np.ndarray) -> np.ndarray:
    return (b == 32) | (b == 9) | (b == 13) | (b == _NEWLINE)


_WHITESPACE_STEPS = 4
_COMMA, _PLUS, _MINUS = (ord(c) for c in ",+-")
_BRACE, _CLOSE_BRACKET, _CLOSE_BRACE = (ord(c) for c in "{]}")
_MARK_TABLE = bytes(1 if chr(i) in ",:[" else 0 for i in range(256))
_WHITESPACE = np.zeros(256, dtype=bool)
_WHITESPACE[[32, 9, 13, 10]] = True


# ---------------------------------------------------------------------------------------------
# Formats read record by record


def _batched(rows: Iterator[tuple[int, bytes]], size: int) -> Iterator[pa.Table]:
    numbers: list[int] = []
    lines: list[bytes] = []
    for number, line in rows:
        numbers.append(number)
        lines.append(line)
        if len(numbers) >= size:
            yield _record_table(numbers, lines)
            numbers, lines = [], []
    if numbers:
        yield _record_table(numbers, lines)


def _record_table(numbers: list[int], lines: list[bytes]) -> pa.Table:
    return pa.table([pa.array(numbers, pa.int64()), pa.array(lines, pa.binary()),
                     pa.array([len(line) for line in lines], pa.int32()),
                     pa.nulls(len(lines), pa.bool_())], schema=RECORD_SCHEMA)


def _json_array_records(path: Path) -> Iterator[tuple[int, bytes]]:
    decoder = json.JSONDecoder()
    utf8 = codecs.getincrementaldecoder("utf-8-sig")(errors="replace")
    with open_binary(path) as f:
        text, pos, eof = "", 0, False

        def more() -> bool:
            nonlocal text, pos, eof
            if eof:
                return False
            block = f.read(BLOCK_BYTES)
            eof = not block
            text = text[pos:] + utf8.decode(block, final=eof)
            pos = 0
            return True

        def skip_space() -> None:
            nonlocal pos
            while True:
                while pos < len(text) and text[pos] in " \t\r\n":
                    pos += 1
                if pos < len(text) or not more():
                    return

        number = 0
        skip_space()
        if text[pos:pos + 1] != "[":
            yield 1, text[pos:pos + SHOWN_BROKEN_CHARS].encode()
            return
        pos += 1
        while True:
            skip_space()
            if text[pos:pos + 1] == "]":
                pos += 1
                skip_space()
                if pos < len(text):  # text after the closing bracket
                    yield number + 1, text[pos:pos + SHOWN_BROKEN_CHARS].encode()
                return
            if number and text[pos:pos + 1] == ",":
                pos += 1
                skip_space()
            while True:
                try:
                    _, end = decoder.raw_decode(text, pos)
                    break
                except json.JSONDecodeError:
                    if len(text) - pos > MAX_ELEMENT_CHARS or not more():
                        yield number + 1, text[pos:pos + SHOWN_BROKEN_CHARS].encode()
                        return
            number += 1
            yield number, text[pos:end].encode()
            pos = end
            skip_space()
            if text[pos:pos + 1] not in (",", "]"):
                yield number + 1, text[pos:pos + SHOWN_BROKEN_CHARS].encode()
                return


def _csv_records(path: Path) -> Iterator[tuple[int, bytes]]:
    with open_binary(path) as raw, io.TextIOWrapper(raw, encoding="utf-8-sig", errors="replace",
                                                    newline="") as text:
        reader = csv.DictReader(text)
        for row in reader:
            message = _nest({k: v for k, v in row.items() if k and v not in (None, "")})
            if message:
                yield reader.line_num, orjson.dumps(message)


def _parquet_records(path: Path) -> Iterator[tuple[int, bytes]]:
    import pyarrow.parquet as pq

    number = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=10_000):
        for row in batch.to_pylist():
            number += 1
            message = _nest({k: v for k, v in row.items() if v is not None})
            yield number, orjson.dumps(message, default=_json_default,
                                       option=orjson.OPT_NAIVE_UTC | orjson.OPT_UTC_Z)


def _nest(flat: dict[str, Any]) -> dict[str, Any]:
    """Dotted column names become nested objects; JSON text in object fields is parsed."""
    message: dict[str, Any] = {}
    for key, value in flat.items():
        if key in _OBJECT_FIELDS and isinstance(value, str):
            value = _maybe_json(value)
        target = message
        *parents, leaf = key.split(".")
        for part in parents:
            child = target.get(part)
            if not isinstance(child, dict):
                child = target[part] = {}
            target = child
        target[leaf] = value
    return message


def _maybe_json(value: str) -> Any:
    try:
        parsed = orjson.loads(value)
    except orjson.JSONDecodeError:
        return value  # left as text: the contract then says wrong_type, naming the field
    return parsed if isinstance(parsed, dict) else value


def _json_default(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"cannot represent {type(value).__name__} in JSON")
