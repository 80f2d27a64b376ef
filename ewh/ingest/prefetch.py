"""Read and check the next landing file while the loader inserts and commits the current one.

A file's load has two halves: reading and checking its lines (DuckDB's CSV reader and the
contract query, with the sha256 scan on a thread), which depends on the file alone, and the
insert into raw.events and the commit, which depend on the warehouse. Both run on one core for
a day file of a few MB (DuckDB gives a thread 8 MB of CSV, and a temp table of fewer than
122,880 rows is one task), so done one after the other the load used about one core of two.

The prefetcher does the first half of file N+1 on a second connection (a cursor of the same
database), into a table of an in-memory database attached for the load, while the loader's
connection does the second half of file N. The lines and their verdicts are what the loader
would have computed itself: the same query on the same file, with the load time taken when
the reading starts. Whether to use them is decided when the file's turn comes, with the same
tests as without a prefetch (ewh.ingest.loader); a prefetch that failed or does not apply is
dropped and the file is read the usual way, which meets any problem exactly as before. Only
the warehouse's writes stay on the loader's connection, in the file's own transaction.
"""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from ewh.common.clock import utc_now
from ewh.ingest.file_scan import FileScan, scan_file
from ewh.ingest.record_checks import query, read_lines, settle_lines

SCRATCH = "_ewh_load_scratch"  # the in-memory database the prefetched lines live in
# Whether file `path` would be read by DuckDB whole, asked on the prefetcher's connection.
Eligible = Callable[[duckdb.DuckDBPyConnection, Path], bool]


@dataclass(frozen=True, slots=True)
class Prefetched:
    """File `path` being read into `table` since `loaded_at`; its future gives the scan and
    whether DuckDB read every line (read_lines), or None when the file was not eligible."""

    path: Path
    loaded_at: datetime
    table: str
    future: Future[tuple[FileScan, bool] | None]

    def result(self) -> tuple[FileScan, bool] | None:
        """The scan and lines, or None when they cannot be used (not eligible, or failed)."""
        try:
            return self.future.result()
        except Exception:  # noqa: BLE001 - the usual read meets the problem again and reports it
            return None


class LinePrefetcher:
    """One prefetch at a time, on its own connection and thread; close() when the load ends."""

    def __init__(self, con: duckdb.DuckDBPyConnection, timestamp_floor: datetime,
                 eligible: Eligible) -> None:
        self._con, self._floor, self._eligible = con, timestamp_floor, eligible
        query(con, f"attach if not exists ':memory:' as {SCRATCH}")
        self._cursor = con.cursor()
        # Session settings the contract query relies on (a cursor starts with the defaults).
        query(self._cursor, "set TimeZone = 'UTC'")
        query(self._cursor, "set preserve_insertion_order = true")
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="ewh-load-prefetch")
        self._names = itertools.count()

    def start(self, path: Path) -> Prefetched:
        table = f"{SCRATCH}.lines_{next(self._names)}"
        loaded_at = utc_now()
        return Prefetched(path, loaded_at, table,
                          self._pool.submit(self._read, path, loaded_at, table))

    def release(self, prefetched: Prefetched) -> None:
        """Drop a prefetch's table once its file is done (outside the file's transaction:
        the warehouse's transaction writes one database only)."""
        prefetched.result()  # never drop a table that is still being written
        query(self._con, f"drop table if exists {prefetched.table}")

    def close(self) -> None:
        """Wait for a prefetch still running, then drop the scratch database. Quiet about
        database errors: it also runs when a load failed, whose error is the one to raise."""
        self._pool.shutdown(wait=True)
        with contextlib.suppress(duckdb.Error):
            self._cursor.close()
            query(self._con, f"detach database if exists {SCRATCH}")  # and its tables

    def _read(self, path: Path, loaded_at: datetime, table: str) -> tuple[FileScan, bool] | None:
        if not self._eligible(self._cursor, path):
            return None
        with ThreadPoolExecutor(max_workers=1) as hashing:
            scanning = hashing.submit(scan_file, path, look_for_line_breaks=True, lines=True)
            read = read_lines(self._cursor, path, loaded_at, self._floor, table=table)
            scan = scanning.result()
        if read and scan.plain_lines:
            settle_lines(self._cursor, path, loaded_at, self._floor, table=table)
        return scan, read
