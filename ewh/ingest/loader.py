"""Load landing files of Segment messages into the raw layer, exactly once.

Per file, in one transaction: every record is loaded into raw.events, counted as a duplicate
(its messageId is already in raw.events or earlier in the file: first wins), or written to
raw.events_rejected with reason, field, source and raw text. The file's sha256 goes into
raw.load_manifest, and a file whose checksum is already there is skipped. A crash mid-file
rolls the transaction back, so a rerun loads the file once.

Records are checked inside DuckDB by the SQL the event contract compiles to (ewh.contract.sql).
NDJSON is read by DuckDB itself, on every core and without a Python step per block: its CSV
reader splits the lines (see _CSV_LINES), the check streams from it into a temp table filled in
file order, so a row's rowid gives its line number, and the accepted rows go from there into
raw.events. The sha256 pass runs meanwhile on a thread and also checks that the file is text
the reader splits exactly as ewh.ingest.readers does; a file that is not, and every other
format, is streamed through ewh.ingest.readers in chunks. Duplicates are found by joins in
DuckDB rather than a Python set of every id.
"""

from __future__ import annotations

import glob
import hashlib
import re
import uuid
import zlib
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal

import duckdb
import pyarrow as pa

from ewh.common.clock import utc_now
from ewh.common.sql_text import sql_literal
from ewh.contract.sql import VERDICT_COLUMNS, check_query, detail_sql, suspect_sql, verdict_query
from ewh.ingest.lake import publish_loads
from ewh.ingest.raw_tables import ensure_raw_tables
from ewh.ingest.readers import LOADABLE_PATTERNS, detect_format, read_records

CHUNK_LINES = 250_000  # records per SQL check; bounded by the reader's block size anyway
LOAD_CHECKPOINT_THRESHOLD = "256MB"
SCAN_BATCH_ROWS = 2048
SCAN_BLOCK_BYTES = 8 << 20
LoadStatus = Literal["loaded", "skipped", "dry_run"]
Reader = Literal["duckdb", "records"]  # DuckDB's CSV reader as line splitter, ewh.ingest.readers

_EVENT_COLUMNS = ("message_id, message_type, event_name, user_id, anonymous_id, occurred_at, "
                  "sent_at, received_at, payload, source, file_checksum, load_id, loaded_at")
_REJECT_COLUMNS = ("source, line_number, message_id, reason, field, detail, raw_text, "
                   "file_checksum, load_id, rejected_at")
_BOM = b"\xef\xbb\xbf"
# DuckDB's CSV reader as a line splitter: one VARCHAR column, no quoting. It splits exactly as
# ewh.ingest.readers does for text without CR, 0x01 (its delimiter) and byte-order mark, which
# the scan checks; not strict, so nothing in the text makes it fail (and abort the transaction).
# Lines it cannot take (invalid UTF-8, longer than its line limit) are skipped and stored as
# rejects: the loader then reads that file the exact way instead. Buffers of 128 MB, not the
# default: 10% less CPU for the whole check (fewer small batches for the in-order temp table
# to merge).
_CSV_LINES = ("read_csv($path, columns = {'line': 'VARCHAR'}, delim = '\x01', quote = '', "
              "escape = '', comment = '', header = false, auto_detect = false, "
              "strict_mode = false, buffer_size = 134217728, ignore_errors = true, "
              "store_rejects = true, rejects_table = '_ewh_csv_rejects', "
              "rejects_scan = '_ewh_csv_scans')")
# Spaces and tabs only. CASE, not AND: trim runs on the few lines that start with one.
_BLANK = ("(case when line is null then true when prefix(line, ' ') or prefix(line, chr(9)) "
          "then ltrim(line, ' ' || chr(9)) = '' else false end)")
# The lines of the NDJSON file $path as verdict_query takes them, in file order.
NDJSON_LINES = (f"select line as txt, line as raw, strlen(line) as n_bytes, "
                f"{suspect_sql('line')} as suspect, {_BLANK} as blank from {_CSV_LINES}")


@dataclass(frozen=True, slots=True)
class FileLoadResult:
    path: Path
    checksum: str
    status: LoadStatus
    rows_read: int = 0
    rows_loaded: int = 0
    rows_duplicate: int = 0
    rows_rejected: int = 0
    file_bytes: int = 0
    load_id: str | None = None  # None when skipped
    reader: Reader | None = None  # None when skipped


@dataclass(slots=True)
class _Counts:
    read: int = 0
    loaded: int = 0
    duplicate: int = 0
    rejected: int = 0


@dataclass(frozen=True, slots=True)
class _FileContext:
    path: Path
    checksum: str
    load_id: str
    loaded_at: datetime


@dataclass(frozen=True, slots=True)
class FileScan:
    checksum: str  # sha256 hex digest of the file as stored (compressed, for .gz)
    size: int  # bytes as stored
    plain_lines: bool  # NDJSON without CR, 0x01 or BOM; for .gz one complete gzip member


def expand_paths(patterns: Iterable[str | Path]) -> list[Path]:
    """Files from paths, folders (LOADABLE_PATTERNS) and glob patterns, in order.

    Glob matches and folder contents are sorted by name (daily file names sort by date). A path
    without glob characters that does not exist raises FileNotFoundError; a glob may match nothing.
    """
    seen: dict[Path, None] = {}
    for pattern in map(str, patterns):
        if glob.has_magic(pattern):
            matches = [Path(p) for p in sorted(glob.glob(pattern, recursive=True))]
        elif Path(pattern).is_dir():
            folder = Path(pattern)
            matches = sorted({m for pattern in LOADABLE_PATTERNS for m in folder.glob(pattern)})
        elif Path(pattern).is_file():
            matches = [Path(pattern)]
        else:
            raise FileNotFoundError(f"no such file: {pattern}")
        for match in matches:
            if match.is_file():
                seen.setdefault(match.resolve(), None)
    return list(seen)


def load_files(paths: Iterable[str | Path], warehouse_path: str | Path, dry_run: bool = False,
               *, chunk_lines: int = CHUNK_LINES, sql_reader: bool = True,
               lake_dir: Path | None = None) -> list[FileLoadResult]:
    """Load each file in its own transaction, in the order given.

    A dry run does the same work inside one transaction that is rolled back at the end, so its
    counts (duplicates across files included) match a real run and nothing is written.
    Raises on operational errors (unreadable file, database failure); that file's transaction
    is rolled back and files already loaded stay loaded. `sql_reader=False` reads NDJSON with
    ewh.ingest.readers too (in chunks of `chunk_lines`), as for files DuckDB cannot split exactly.
    With `lake_dir` (setting EWH_LAKE_DIR), the committed loads are also published there as
    Parquet (ewh.ingest.lake), including any an earlier run committed but did not publish.
    """
    warehouse = Path(warehouse_path)
    if dry_run and not warehouse.exists():
        con = duckdb.connect(":memory:")  # nothing to compare against, and nothing to create
    else:
        warehouse.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(warehouse))
    try:
        _query(con, "set TimeZone = 'UTC'")  # the contract SQL converts offsets to UTC
        # Line numbers come from row order: the default, set so no configuration can change it.
        _query(con, "set preserve_insertion_order = true")
        files = [Path(p).resolve() for p in paths]
        if dry_run:
            con.execute("begin transaction")
            try:
                ensure_raw_tables(con)
                return [_load_one(con, path, chunk_lines, sql_reader, "dry_run")
                        for path in files]
            finally:
                con.execute("rollback")
        ensure_raw_tables(con)
        with _load_settings(con):
            results = [_load_in_transaction(con, path, chunk_lines, sql_reader) for path in files]
        if lake_dir is not None:
            publish_loads(con, lake_dir)
        return results
    finally:
        con.close()


@contextmanager
def _load_settings(con: duckdb.DuckDBPyConnection) -> Iterator[None]:
    """Settings for a real load, restored after it.

    Fewer, larger checkpoints (~30% faster). ZSTD for the new rows' text columns: the payload is
    most of the bytes, and DuckDB's default string compression (dictionary + FSST, analyzed per
    segment) took twice the CPU of ZSTD for 1M events (6.4 s against 3.2 s, the whole insert)
    and wrote a file 2.5 times larger (410 MB against 162 MB). Only on storage that has ZSTD for
    strings (v1.2.0 on): forced on older storage it would silently store them uncompressed.
    """
    zstd = _storage_has_zstd(con)
    _query(con, f"set checkpoint_threshold = '{LOAD_CHECKPOINT_THRESHOLD}'")
    if zstd:
        _query(con, "set force_compression = 'zstd'")
    try:
        yield
    finally:
        _query(con, "reset checkpoint_threshold")
        if zstd:
            _query(con, "reset force_compression")


def _storage_has_zstd(con: duckdb.DuckDBPyConnection) -> bool:
    [(tags,)] = _query(con, "select tags from duckdb_databases() "
                            "where database_name = current_database()")
    version = dict(tags or {}).get("storage_version", "")  # type: ignore[call-overload]
    match = re.match(r"v(\d+)\.(\d+)", version)
    return bool(match) and (int(match[1]), int(match[2])) >= (1, 2)


def _load_in_transaction(con: duckdb.DuckDBPyConnection, path: Path, chunk_lines: int,
                         sql_reader: bool) -> FileLoadResult:
    con.execute("begin transaction")
    try:
        result = _load_one(con, path, chunk_lines, sql_reader, "loaded")
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit" if result.status == "loaded" else "rollback")
    return result


def _load_one(con: duckdb.DuckDBPyConnection, path: Path, chunk_lines: int, sql_reader: bool,
              status: LoadStatus) -> FileLoadResult:
    """Load one file on an open transaction: events, rejections and its manifest row."""
    load_id, loaded_at = str(uuid.uuid4()), utc_now()
    in_sql = sql_reader and detect_format(path) == "ndjson"
    if in_sql and _can_overlap(con, path):
        scan, lines_read = _scan_while_reading_lines(con, path, loaded_at)
    else:
        scan = scan_file(path, look_for_line_breaks=in_sql)
        lines_read = in_sql and scan.plain_lines and _read_lines(con, path, loaded_at)
    if _already_loaded(con, scan.checksum):
        _drop_temp(con)
        return FileLoadResult(path, scan.checksum, "skipped", file_bytes=scan.size)
    ctx = _FileContext(path, scan.checksum, load_id, loaded_at)
    counts = _Counts()
    reader: Reader = "duckdb" if lines_read and scan.plain_lines else "records"
    if reader == "duckdb":
        _insert_lines(con, ctx, counts)
    else:
        _load_chunks(con, ctx, chunk_lines, counts)
    # Temp tables go with a rollback; on success they are dropped here (a dry run goes on).
    _drop_temp(con)
    _write_manifest(con, ctx, scan.size, counts)
    return FileLoadResult(path, scan.checksum, status, counts.read, counts.loaded,
                          counts.duplicate, counts.rejected, scan.size, ctx.load_id, reader)


def _can_overlap(con: duckdb.DuckDBPyConnection, path: Path) -> bool:
    """Whether DuckDB may read the file while its checksum is computed: not for gzip (a torn
    member would fail the read, where the exact reader names the error), nor for a file that
    is probably loaded already (same path and size in the manifest), whose reading is wasted."""
    if path.suffix == ".gz":
        return False
    rows = _query(con, "select count(*) from raw.load_manifest where file_path = ? "
                       "and file_bytes = ?", [str(path), path.stat().st_size])
    return not rows[0][0]


def _scan_while_reading_lines(con: duckdb.DuckDBPyConnection, path: Path,
                              loaded_at: datetime) -> tuple[FileScan, bool]:
    """scan_file on a thread while DuckDB reads and checks the lines: both release the GIL, and
    the hash no longer adds its time to the load. The lines are only used if the scan finds the
    file plain and its checksum new."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        scanning = pool.submit(scan_file, path, look_for_line_breaks=True)
        read = _read_lines(con, path, loaded_at)
        return scanning.result(), read


def file_checksum(path: Path) -> tuple[str, int]:
    """sha256 hex digest and size in bytes of the file as stored (compressed, for .gz)."""
    scan = scan_file(path, look_for_line_breaks=False)
    return scan.checksum, scan.size


def scan_file(path: Path, *, look_for_line_breaks: bool) -> FileScan:
    """One pass over the file: its checksum and, when asked, whether its text is plain lines
    (see _TextProbe; decompressed for .gz, which must be one whole member)."""
    digest = hashlib.sha256()
    size = 0
    text = _TextProbe(path.suffix == ".gz") if look_for_line_breaks else None
    buffer = bytearray(SCAN_BLOCK_BYTES)
    view = memoryview(buffer)
    with path.open("rb", buffering=0) as f:
        while n := f.readinto(buffer):
            digest.update(view[:n])  # hashlib releases the GIL on large blocks
            size += n
            if text is not None:
                text.feed(buffer, n)
    return FileScan(digest.hexdigest(), size, text is not None and text.plain())


class _TextProbe:
    """Looks, in a file's text fed block by block, for what DuckDB's CSV reader would split
    differently from ewh.ingest.readers: a CR or 0x01 byte anywhere, a byte-order mark first."""

    def __init__(self, gz: bool) -> None:
        self.inflate = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16) if gz else None
        self.start = b""
        self.odd = False  # a CR or 0x01 byte was seen
        self.after_end = False  # bytes after the end of the (first) gzip member

    def feed(self, buffer: bytearray, n: int) -> None:
        if self.odd or self.after_end:
            return  # the answer is known
        if self.inflate is None:
            self._look(buffer, n)
            return
        data: bytes | memoryview = memoryview(buffer)[:n]
        while data and not self.inflate.eof:  # in pieces of bounded size
            piece = self.inflate.decompress(data, SCAN_BLOCK_BYTES)
            data = self.inflate.unconsumed_tail
            self._look(piece, len(piece))
        self.after_end = bool(data) or bool(self.inflate.unused_data)

    def _look(self, text: bytes | bytearray, n: int) -> None:
        if len(self.start) < len(_BOM):
            self.start += bytes(text[: len(_BOM) - len(self.start)])
        # memchr speed, no copy
        self.odd = self.odd or text.find(b"\r", 0, n) >= 0 or text.find(b"\x01", 0, n) >= 0

    def plain(self) -> bool:
        whole = self.inflate is None or (self.inflate.eof and not self.after_end)
        return whole and not self.odd and not self.start.startswith(_BOM)


def _already_loaded(con: duckdb.DuckDBPyConnection, checksum: str) -> bool:
    rows = _query(con, "select count(*) from raw.load_manifest where file_checksum = ?", [checksum])
    return bool(rows[0][0])


def _query(con: duckdb.DuckDBPyConnection, sql: str,
           params: list[object] | dict[str, object] | None = None) -> list[tuple[object, ...]]:
    # Always drain the result: DuckDB 2 refuses register() while a result is still open.
    return con.execute(sql, params).fetchall()


def _read_lines(con: duckdb.DuckDBPyConnection, path: Path, loaded_at: datetime) -> bool:
    """Check every line of an NDJSON file read by DuckDB into temp table _ewh_lines; False when
    the reader reported a line it could not take as is (the file must be read the exact way)."""
    _drop_temp(con)
    _query(con, f"create temp table _ewh_lines as {verdict_query(NDJSON_LINES, ('blank',))}",
           {"path": str(path), "received_default": loaded_at})
    [(rejects,)] = _query(con, "select count(*) from _ewh_csv_rejects")
    return not rejects


def _insert_lines(con: duckdb.DuckDBPyConnection, ctx: _FileContext, counts: _Counts) -> None:
    """Insert the checked lines of _ewh_lines, numbered by their position in the file."""
    number = f"(rowid - {_first_rowid(con)} + 1)"
    source = f"{sql_literal(f'file:{ctx.path}:')} || {number}"
    values = ", ".join(c for c in VERDICT_COLUMNS if c != "detail_tail")
    _query(con, "create temp view _ewh_checked as "
                f"select {number} as record_number, {source} as source, "
                f"{detail_sql(source)} as detail, {values} from _ewh_lines where not blank")
    _insert_checked(con, "_ewh_checked", ctx, counts)


def _first_rowid(con: duckdb.DuckDBPyConnection) -> int:
    """The rowid of the file's first line in _ewh_lines.

    The table was filled in scan order (preserve_insertion_order), and a table's rows get
    consecutive rowids in insertion order, from 0 or, inside a transaction, from a large base.
    Consecutiveness is checked, as a guard against a DuckDB change numbering lines wrongly.
    """
    [(first, last, rows)] = _query(con, "select min(rowid), max(rowid), count(*) from _ewh_lines")
    if rows and int(last) - int(first) + 1 != rows:  # type: ignore[call-overload]
        raise RuntimeError(f"rowids of the lines are not consecutive ({first}..{last}, {rows} "
                           "rows): cannot number lines")
    return int(first or 0)  # type: ignore[call-overload]


def _drop_temp(con: duckdb.DuckDBPyConnection) -> None:
    _query(con, "drop view if exists _ewh_checked")
    for table in ("_ewh_lines", "_ewh_csv_rejects", "_ewh_csv_scans"):
        _query(con, f"drop table if exists {table}")


def _load_chunks(con: duckdb.DuckDBPyConnection, ctx: _FileContext, chunk_records: int,
                 counts: _Counts) -> None:
    check = check_query("_ewh_chunk")
    for chunk in read_records(ctx.path, chunk_records):
        # Many small record batches: DuckDB scans an Arrow table one batch per thread.
        con.register("_ewh_chunk", pa.Table.from_batches(chunk.to_batches(SCAN_BATCH_ROWS)))
        try:
            _query(con, f"create or replace temp table _ewh_chunk_checked as {check}",
                   {"source_prefix": f"file:{ctx.path}", "received_default": ctx.loaded_at})
        finally:
            con.unregister("_ewh_chunk")
        _insert_checked(con, "_ewh_chunk_checked", ctx, counts)
    _query(con, "drop table if exists _ewh_chunk_checked")


def _insert_checked(con: duckdb.DuckDBPyConnection, relation: str, ctx: _FileContext,
                    counts: _Counts) -> None:
    """Rejections, then accepted rows whose messageId is new: not in raw.events (earlier files
    and earlier chunks) and not on an earlier row of `relation` (the first occurrence wins)."""
    params = {"checksum": ctx.checksum, "load_id": ctx.load_id, "loaded_at": ctx.loaded_at}
    _query(con, f"insert into raw.events_rejected ({_REJECT_COLUMNS}) "
                "select source, record_number, rejected_message_id, reason, field, detail, "
                "raw_text, $checksum, $load_id, $loaded_at "
                f"from {relation} where reason is not null order by record_number", params)
    [(read, rejected)] = _query(con, f"select count(*), count(reason) from {relation}")
    inserted = _query(
        con,
        f"insert into raw.events ({_EVENT_COLUMNS}) "
        # Not materialized: a scan of the ids is cheaper than copying them to reuse.
        f"with accepted as not materialized (select record_number, message_id, "
        f"    hash(message_id) as h from {relation} where reason is null), "
        # Ids on more than one row, and the row that wins: grouping 64-bit hashes first is
        # cheaper than grouping every id, and leaves only the few candidates to group by id.
        "repeated as (select message_id, min(record_number) as first_row from accepted "
        "             where h in (select h from accepted group by h having count(*) > 1) "
        "             group by message_id having count(*) > 1), "
        # raw.events is only probed: the join is built on the ids of this relation.
        "known as (select distinct message_id from raw.events "
        "          where message_id in (select message_id from accepted)), "
        "skipped as (select record_number from accepted join known using (message_id) "
        "            union all "
        "            select record_number from accepted join repeated using (message_id) "
        "            where record_number <> first_row) "
        "select message_id, message_type, event_name, user_id, anonymous_id, occurred_at, "
        "sent_at, received_at, payload, source, $checksum, $load_id, $loaded_at "
        f"from {relation} c where reason is null "
        "and not exists (select 1 from skipped s where s.record_number = c.record_number)",
        params)[0][0]
    counts.read += int(read)  # type: ignore[call-overload]
    counts.rejected += int(rejected)  # type: ignore[call-overload]
    counts.loaded += int(inserted)  # type: ignore[call-overload]
    counts.duplicate += int(read) - int(rejected) - int(inserted)  # type: ignore[call-overload]


def _write_manifest(con: duckdb.DuckDBPyConnection, ctx: _FileContext, size: int,
                    counts: _Counts) -> None:
    _query(
        con,
        "insert into raw.load_manifest (load_id, file_path, file_checksum, file_bytes, rows_read, "
        "rows_loaded, rows_duplicate, rows_rejected, started_at, finished_at) "
        "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [ctx.load_id, str(ctx.path), ctx.checksum, size, counts.read, counts.loaded,
         counts.duplicate, counts.rejected, ctx.loaded_at, utc_now()],
    )
