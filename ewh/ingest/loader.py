"""Load landing files of Segment messages into the raw layer, exactly once, and never halt.

Per file, in one transaction: every record is loaded into raw.events, counted as a duplicate
(its messageId is already in raw.events or earlier in the file: first wins), or written to
raw.events_rejected with reason, field, source and raw text (ewh.ingest.record_checks). The
sha256 of the bytes loaded goes into raw.load_manifest, and a file whose checksum is already
there is skipped. A crash mid-file rolls the transaction back, so a rerun loads the file once.

Bad files never stop a load. A file that cannot be read (ewh.ingest.file_scan: truncated or
corrupt gzip, text that is not UTF-8, an unknown suffix; or a symbolic link out of the landing
zone, which is not followed) is rolled back, recorded in raw.load_manifest with status
`quarantined` and its error, and moved to `<landing zone>/quarantine/` (ewh.ingest.quarantine);
every other file loads.

A plain NDJSON file whose last line has no newline and is not JSON is being written: that line
waits (`pending_bytes`) while the file changed in the last TORN_LINE_WAIT_SECONDS, and what
comes before it loads. When the file has grown, only its new part is read: the manifest knows
how many bytes of that path were loaded and their checksum, so each line counts once.

The sha256 pass runs on a thread while DuckDB reads NDJSON; see ewh.ingest.record_checks for
how records are read and checked.
"""

from __future__ import annotations

import glob
import os
import re
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Literal, NamedTuple, Protocol

import duckdb

from ewh.common.clock import utc_now
from ewh.contract import json_text
from ewh.ingest.file_scan import (
    READ_ERRORS,
    FileScan,
    FileUnreadable,
    checksum_of_first,
    describe_read_error,
    file_checksum,
    scan_file,
)
from ewh.ingest.lake import publish_loads
from ewh.ingest.quarantine import link_problem, move_to_quarantine
from ewh.ingest.raw_tables import ensure_raw_tables
from ewh.ingest.readers import LOADABLE_PATTERNS, detect_format
from ewh.ingest.record_checks import (
    KNOWN,
    NDJSON_LINES,
    Counts,
    FileContext,
    create_known_index,
    drop_temp,
    insert_lines,
    load_chunks,
    query,
    read_lines,
)
from ewh.privacy.keys import PrivacyKeys
from ewh.privacy.policy import Protector
from ewh.privacy.scrub import scrub_loaded_file
from ewh.privacy.udf import register_privacy_functions

__all__ = ["NDJSON_LINES", "FileLoadResult", "LoadProgress", "expand_paths", "file_checksum",
           "load_files"]

CHUNK_LINES = 250_000  # records per SQL check; bounded by the reader's block size anyway
LOAD_CHECKPOINT_THRESHOLD = "256MB"
TORN_LINE_WAIT_SECONDS = 600  # how long an unterminated last line may still be being written
LoadStatus = Literal["loaded", "skipped", "dry_run", "quarantined"]
Reader = Literal["duckdb", "records"]  # DuckDB's CSV reader as line splitter, ewh.ingest.readers


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
    reader: Reader | None = None  # None when skipped or quarantined
    pending_bytes: int = 0  # an unterminated last line that waits for its newline
    error: str | None = None  # quarantined: why the file could not be read
    quarantined_to: Path | None = None  # quarantined: where it went (None: left in place)
    rows_suppressed: int = 0  # events of erased ids, dropped (ewh.privacy)


class LoadProgress(Protocol):
    """What a caller (the CLI's progress bar) hears while files load."""

    def file_started(self, path: Path, size: int) -> None: ...

    def file_progress(self, path: Path, fraction: float) -> None: ...

    def file_done(self, result: FileLoadResult) -> None: ...


class _Options(NamedTuple):
    chunk_lines: int
    sql_reader: bool
    landing_dir: Path
    timestamp_floor: datetime
    protector: Protector
    known_index: bool = False  # record_checks.KNOWN is kept (loads of several files)


def expand_paths(patterns: Iterable[str | Path]) -> list[Path]:
    """Files from paths, folders (LOADABLE_PATTERNS) and glob patterns, in order.

    Glob matches and folder contents are sorted by name (daily file names sort by date). A path
    without glob characters that does not exist raises FileNotFoundError; a glob may match
    nothing. Symbolic links are kept as links (the loader decides whether to follow them).
    """
    seen: dict[Path, None] = {}
    for pattern in map(str, patterns):
        if glob.has_magic(pattern):
            matches = [Path(p) for p in sorted(glob.glob(pattern, recursive=True))]
        elif Path(pattern).is_dir():
            folder = Path(pattern)
            matches = sorted({m for pattern in LOADABLE_PATTERNS for m in folder.glob(pattern)})
        elif Path(pattern).is_file() or Path(pattern).is_symlink():
            matches = [Path(pattern)]
        else:
            raise FileNotFoundError(f"no such file: {pattern}")
        for match in matches:
            if match.is_file() or match.is_symlink():
                seen.setdefault(Path(os.path.abspath(match)), None)
    return list(seen)


def load_files(paths: Iterable[str | Path], warehouse_path: str | Path, dry_run: bool = False,
               *, chunk_lines: int = CHUNK_LINES, sql_reader: bool = True,
               landing_dir: Path | None = None, timestamp_floor: datetime | None = None,
               progress: LoadProgress | None = None,
               lake_dir: Path | None = None) -> list[FileLoadResult]:
    """Load each file in its own transaction, in the order given.

    A dry run does the same work inside one transaction that is rolled back at the end, so its
    counts (duplicates across files included) match a real run and nothing is written or moved.
    A file that cannot be read is quarantined (see the module doc); database failures raise,
    that file's transaction is rolled back and files already loaded stay loaded.
    `sql_reader=False` reads NDJSON with ewh.ingest.readers too (in chunks of `chunk_lines`),
    as for files DuckDB cannot split exactly. `landing_dir` and `timestamp_floor` default to
    the settings (EWH_LANDING_DIR, EWH_TIMESTAMP_FLOOR). With `lake_dir` (setting
    EWH_LAKE_DIR), the committed loads are also published there as Parquet (ewh.ingest.lake),
    including any an earlier run committed but did not publish.
    """
    from ewh.common.settings import get_settings

    settings = get_settings()
    landing_dir = landing_dir or settings.landing_dir
    timestamp_floor = timestamp_floor or settings.timestamp_floor
    protector = Protector(PrivacyKeys.from_settings())
    options = _Options(chunk_lines, sql_reader, Path(landing_dir), timestamp_floor, protector)
    warehouse = Path(warehouse_path)
    if dry_run and not warehouse.exists():
        con = duckdb.connect(":memory:")  # nothing to compare against, and nothing to create
    else:
        warehouse.parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(str(warehouse))
    try:
        query(con, "set TimeZone = 'UTC'")  # the contract SQL converts offsets to UTC
        # bounded: at 10M events the load peaked at 7.1 GiB of RSS with DuckDB's default
        query(con, f"set memory_limit = '{settings.load_memory_limit}'")
        # Line numbers come from row order: the default, set so no configuration can change it.
        query(con, "set preserve_insertion_order = true")
        register_privacy_functions(con, protector)
        files = [Path(os.path.abspath(p)) for p in paths]  # not resolved: a link stays a link
        with _Watcher(con, progress) as watcher:
            if dry_run:
                con.execute("begin transaction")
                try:
                    ensure_raw_tables(con)
                    return [_one_file(con, path, options, watcher, dry_run=True)
                            for path in files]
                finally:
                    con.execute("rollback")
            ensure_raw_tables(con)
            with _load_settings(con):
                results = _load_all(con, files, options, watcher)
        if lake_dir is not None:
            publish_loads(con, lake_dir)
        return results
    finally:
        con.close()


def _load_all(con: duckdb.DuckDBPyConnection, files: list[Path], options: _Options,
              watcher: _Watcher) -> list[FileLoadResult]:
    """Each file in its own transaction, in order. From two files on, raw.events' ids are
    read once into an index (record_checks.KNOWN) rather than once per file."""
    if len(files) < 2:
        return [_one_file(con, path, options, watcher, dry_run=False) for path in files]
    create_known_index(con)
    options = options._replace(known_index=True)
    try:
        return [_one_file(con, path, options, watcher, dry_run=False) for path in files]
    finally:
        query(con, f"drop table if exists {KNOWN}")


def _one_file(con: duckdb.DuckDBPyConnection, path: Path, options: _Options,
              watcher: _Watcher, *, dry_run: bool) -> FileLoadResult:
    progress = watcher.progress
    if progress is not None:
        progress.file_started(path, _size(path))
    watcher.current = path
    try:
        if dry_run:
            result = _load_one(con, path, options, "dry_run")
        else:
            result = _load_in_transaction(con, path, options)
    except FileUnreadable as problem:
        result = _quarantine(con, path, f"{path}: {problem}", options, dry_run)
    watcher.current = None
    if progress is not None:
        progress.file_done(result)
    return result


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


class _Watcher:
    """While a progress listener is given, tells it how far the running query is, twice a
    second (DuckDB answers query_progress from another thread)."""

    def __init__(self, con: duckdb.DuckDBPyConnection, progress: LoadProgress | None) -> None:
        self.con, self.progress = con, progress
        self.current: Path | None = None  # the file being loaded
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def __enter__(self) -> _Watcher:
        if self.progress is not None:
            query(self.con, "set enable_progress_bar = true")
            query(self.con, "set enable_progress_bar_print = false")
            self._thread = threading.Thread(target=self._watch, name="ewh-load-progress",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _watch(self) -> None:
        while not self._stop.wait(0.5):
            try:
                done = self.con.query_progress()
            except duckdb.Error:
                continue
            path = self.current
            if path is not None and done >= 0 and self.progress is not None:
                self.progress.file_progress(path, min(done, 100.0) / 100)


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
    query(con, f"set checkpoint_threshold = '{LOAD_CHECKPOINT_THRESHOLD}'")
    if zstd:
        query(con, "set force_compression = 'zstd'")
    try:
        yield
    finally:
        query(con, "reset checkpoint_threshold")
        if zstd:
            query(con, "reset force_compression")


def _storage_has_zstd(con: duckdb.DuckDBPyConnection) -> bool:
    [(tags,)] = query(con, "select tags from duckdb_databases() "
                           "where database_name = current_database()")
    version = dict(tags or {}).get("storage_version", "")  # type: ignore[call-overload]
    match = re.match(r"v(\d+)\.(\d+)", version)
    return bool(match) and (int(match[1]), int(match[2])) >= (1, 2)


def _load_in_transaction(con: duckdb.DuckDBPyConnection, path: Path,
                         options: _Options) -> FileLoadResult:
    con.execute("begin transaction")
    try:
        result = _load_one(con, path, options, "loaded")
    except BaseException:
        con.execute("rollback")
        raise
    con.execute("commit" if result.status == "loaded" else "rollback")
    if result.rows_suppressed:
        # The landing file keeps no trace of erased ids either (ewh.privacy.scrub).
        scrub_loaded_file(con, path, options.protector, result.checksum)
    return result


class _Part(NamedTuple):
    """The bytes of a file a load takes: [start, end), the line at `start` numbered
    `first_line`; `checksum` is that of [0, end), what the manifest records."""

    start: int
    end: int
    first_line: int
    checksum: str
    pending: int  # bytes of a torn last line left for later


def _load_one(con: duckdb.DuckDBPyConnection, path: Path, options: _Options,
              status: LoadStatus) -> FileLoadResult:
    """Load one file on an open transaction: events, rejections and its manifest row.
    Raises FileUnreadable for a file that cannot be read."""
    load_id, loaded_at = str(uuid.uuid4()), utc_now()
    problem = link_problem(path, options.landing_dir)
    if problem:
        raise FileUnreadable(problem)
    try:
        fmt = detect_format(path)
    except ValueError as exc:  # an unknown suffix
        raise FileUnreadable(str(exc).removeprefix(f"{path}: ")) from exc
    except READ_ERRORS as exc:  # a .json file is opened to see if it holds an array
        raise FileUnreadable(describe_read_error(exc)) from exc
    plain_ndjson = fmt == "ndjson" and not path.name.endswith(".gz")
    earlier = _earlier_part(con, path) if plain_ndjson else None
    in_sql = options.sql_reader and fmt == "ndjson"
    lines_read = False
    if in_sql and earlier is None and _can_overlap(con, path):
        scan, lines_read = _scan_while_reading_lines(con, path, loaded_at, options)
    else:
        scan = scan_file(path, look_for_line_breaks=in_sql, text=fmt != "parquet",
                         lines=plain_ndjson, prefix_at=earlier[0] if earlier else None)
    part = _part_to_load(path, scan, earlier)
    if part.start == part.end or (part.start == 0 and _already_loaded(con, part.checksum)):
        drop_temp(con)
        return FileLoadResult(path, scan.checksum, "skipped", file_bytes=scan.size,
                              pending_bytes=part.pending)
    ctx = FileContext(path, part.checksum, load_id, loaded_at, options.timestamp_floor,
                      suppressing=bool(options.protector.suppressed.hashes()),
                      known_index=options.known_index)
    counts = Counts()
    whole = part.start == 0
    if whole and in_sql and scan.plain_lines and not lines_read:
        lines_read = read_lines(con, path, loaded_at, options.timestamp_floor)
    reader: Reader = "duckdb" if whole and lines_read and scan.plain_lines else "records"
    if reader == "duckdb":
        insert_lines(con, ctx, counts, drop_last_line=part.pending > 0)
    else:
        drop_temp(con)
        load_chunks(con, ctx, options.chunk_lines, counts, start=part.start,
                    end=part.end if part.end < scan.size or part.start else None,
                    first_line=part.first_line)
    # Temp tables go with a rollback; on success they are dropped here (a dry run goes on).
    drop_temp(con)
    _write_manifest(con, ctx, part.end, counts)
    return FileLoadResult(path, part.checksum, status, counts.read, counts.loaded,
                          counts.duplicate, counts.rejected, scan.size, ctx.load_id, reader,
                          part.pending, rows_suppressed=counts.suppressed)


def _earlier_part(con: duckdb.DuckDBPyConnection, path: Path) -> tuple[int, str] | None:
    """(bytes, checksum) of the longest part of this path loaded before that the file may
    still start with."""
    rows = query(con, "select file_bytes, file_checksum from raw.load_manifest "
                      "where file_path = ? and status = 'loaded' and file_bytes > 0 "
                      "and file_bytes <= ? order by file_bytes desc limit 1",
                 [str(path), _size(path)])
    return (int(rows[0][0]), str(rows[0][1])) if rows else None  # type: ignore[call-overload]


def _part_to_load(path: Path, scan: FileScan, earlier: tuple[int, str] | None) -> _Part:
    """Which bytes to load; none (start == end) when the file grew by no complete line."""
    end, pending = scan.size, 0
    if scan.has_tail and _still_being_written(path, scan.tail):
        end, pending = scan.complete_bytes, scan.size - scan.complete_bytes
    checksum = scan.checksum if end == scan.size else checksum_of_first(path, end)
    if earlier is not None and scan.prefix_checksum == earlier[1]:
        return _Part(min(earlier[0], end), end, scan.prefix_lines + 1, checksum, pending)
    return _Part(0, end, 1, checksum, pending)


def _still_being_written(path: Path, tail: bytes) -> bool:
    """An unterminated last line that is not JSON, in a file changed a moment ago: torn by a
    writer that has not finished (a complete record needs no newline to load)."""
    try:
        json_text.loads(tail)
    except ValueError:
        return time.time() - path.stat().st_mtime < TORN_LINE_WAIT_SECONDS
    return False


def _can_overlap(con: duckdb.DuckDBPyConnection, path: Path) -> bool:
    """Whether DuckDB may read the file while its checksum is computed: not for gzip (a torn
    member would fail the read, where the exact reader names the error), nor for a file that
    is probably loaded already (same path and size in the manifest), whose reading is wasted."""
    if path.suffix == ".gz":
        return False
    rows = query(con, "select count(*) from raw.load_manifest where file_path = ? "
                      "and file_bytes = ?", [str(path), path.stat().st_size])
    return not rows[0][0]


def _scan_while_reading_lines(con: duckdb.DuckDBPyConnection, path: Path, loaded_at: datetime,
                              options: _Options) -> tuple[FileScan, bool]:
    """scan_file on a thread while DuckDB reads and checks the lines: both release the GIL, and
    the hash no longer adds its time to the load. The lines are only used if the scan finds the
    file plain and its checksum new."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        scanning = pool.submit(scan_file, path, look_for_line_breaks=True,
                               lines=not path.name.endswith(".gz"))
        read = read_lines(con, path, loaded_at, options.timestamp_floor)
        return scanning.result(), read


def _already_loaded(con: duckdb.DuckDBPyConnection, checksum: str) -> bool:
    rows = query(con, "select count(*) from raw.load_manifest where file_checksum = ? "
                      "and status = 'loaded'", [checksum])
    return bool(rows[0][0])


def _quarantine(con: duckdb.DuckDBPyConnection, path: Path, error: str, options: _Options,
                dry_run: bool) -> FileLoadResult:
    """Record the file as quarantined and move it out of the landing zone (not in a dry run)."""
    try:
        checksum, size = ("", path.lstat().st_size) if path.is_symlink() else file_checksum(path)
    except (OSError, FileUnreadable):
        checksum, size = "", 0
    if dry_run:
        return FileLoadResult(path, checksum, "quarantined", file_bytes=size, error=error)
    try:
        moved = move_to_quarantine(path, options.landing_dir)
    except OSError as exc:  # recorded all the same; the next load tries again
        moved, error = None, f"{error} (could not be moved to quarantine: {exc})"
    now = utc_now()
    query(con, "insert into raw.load_manifest (load_id, file_path, file_checksum, file_bytes, "
               "rows_read, rows_loaded, rows_duplicate, rows_rejected, started_at, finished_at, "
               "status, error, quarantined_to) "
               "values (?, ?, ?, ?, 0, 0, 0, 0, ?, ?, 'quarantined', ?, ?)",
          [str(uuid.uuid4()), str(path), checksum, size, now, now, error,
           str(moved) if moved else None])
    return FileLoadResult(path, checksum, "quarantined", file_bytes=size, error=error,
                          quarantined_to=moved)


def _write_manifest(con: duckdb.DuckDBPyConnection, ctx: FileContext, size: int,
                    counts: Counts) -> None:
    query(
        con,
        "insert into raw.load_manifest (load_id, file_path, file_checksum, file_bytes, rows_read, "
        "rows_loaded, rows_duplicate, rows_rejected, rows_suppressed, started_at, finished_at) "
        "values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [ctx.load_id, str(ctx.path), ctx.checksum, size, counts.read, counts.loaded,
         counts.duplicate, counts.rejected, counts.suppressed, ctx.loaded_at, utc_now()],
    )
