"""A file's records through the contract inside DuckDB, into raw.events and raw.events_rejected.

Records are checked by the SQL the event contract compiles to (ewh.contract.sql). NDJSON is
read by DuckDB itself, on every core and without a Python step per block: its CSV reader
splits the lines (see _CSV_LINES), the check streams from it into a temp table filled in file
order, so a row's rowid gives its line number, and the accepted rows go from there into
raw.events. Every other format, and NDJSON DuckDB would split differently, is streamed through
ewh.ingest.readers in chunks. The rare records the query flags `needs_python` (a size the
collector's additions may explain, more brackets than the depth limit) get the verdict of
ewh.contract.validator instead, the collector's own. Duplicates are found by joins in DuckDB
rather than a Python set of every id.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from ewh.common.sql_text import sql_literal
from ewh.contract.sql import VERDICT_COLUMNS, check_query, detail_sql, suspect_sql, verdict_query
from ewh.contract.validator import Rejection, validate_text
from ewh.ingest.file_scan import READ_ERRORS, FileUnreadable, describe_read_error
from ewh.ingest.readers import read_records

SCAN_BATCH_ROWS = 2048
# (hash(message_id), loaded_at) of every row of raw.events, kept by a load of several files
# (create_known_index): the dedupe then reads only the row groups of raw.events loaded at the
# times its hash matches name, not the whole message_id column for every file.
KNOWN = "_ewh_known"
_EVENT_COLUMNS = ("message_id, message_type, event_name, user_id, anonymous_id, occurred_at, "
                  "sent_at, received_at, payload, source, file_checksum, load_id, loaded_at")
_REJECT_COLUMNS = ("source, line_number, message_id, reason, field, detail, raw_text, "
                   "file_checksum, load_id, rejected_at")
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


@dataclass(slots=True)
class Counts:
    read: int = 0
    loaded: int = 0
    duplicate: int = 0
    rejected: int = 0
    suppressed: int = 0  # events of erased ids (ewh.privacy): dropped, counted


@dataclass(frozen=True, slots=True)
class FileContext:
    path: Path
    checksum: str  # of the bytes loaded
    load_id: str
    loaded_at: datetime  # also the intake time the contract bounds receivedAt by
    timestamp_floor: datetime
    suppressing: bool = False  # the suppression list is not empty: check every event
    known_index: bool = False  # temp table KNOWN holds every raw.events id's hash (see below)

    def params(self) -> dict[str, object]:
        return {"received_default": self.loaded_at, "timestamp_floor": self.timestamp_floor}


def query(con: duckdb.DuckDBPyConnection, sql: str,
          params: list[object] | dict[str, object] | None = None) -> list[tuple[object, ...]]:
    # Always drain the result: DuckDB 2 refuses register() while a result is still open.
    return con.execute(sql, params).fetchall()


def read_lines(con: duckdb.DuckDBPyConnection, path: Path, loaded_at: datetime,
               timestamp_floor: datetime) -> bool:
    """Check every line of an NDJSON file read by DuckDB into temp table _ewh_lines; False when
    the reader reported a line it could not take as is (the file must be read the exact way)."""
    drop_temp(con)
    query(con, f"create temp table _ewh_lines as {verdict_query(NDJSON_LINES, ('blank',))}",
          {"path": str(path), "received_default": loaded_at, "timestamp_floor": timestamp_floor})
    [(rejects,)] = query(con, "select count(*) from _ewh_csv_rejects")
    return not rejects


def insert_lines(con: duckdb.DuckDBPyConnection, ctx: FileContext, counts: Counts, *,
                 drop_last_line: bool = False) -> None:
    """Insert the checked lines of _ewh_lines, numbered by their position in the file.
    `drop_last_line`: the last line is still being written and waits (see the loader)."""
    first = _first_rowid(con)
    number = f"(rowid - {first} + 1)"
    source = f"{sql_literal(f'file:{ctx.path}:')} || {number}"
    _settle_flagged(con, "_ewh_lines", ctx, number, "detail_tail")
    values = ", ".join(c for c in VERDICT_COLUMNS if c != "detail_tail")
    last = " and rowid < (select max(rowid) from _ewh_lines)" if drop_last_line else ""
    query(con, "create temp view _ewh_checked as "
               f"select {number} as record_number, {source} as source, "
               f"{detail_sql(source)} as detail, {values} from _ewh_lines where not blank{last}")
    _insert_checked(con, "_ewh_checked", ctx, counts)


def _first_rowid(con: duckdb.DuckDBPyConnection) -> int:
    """The rowid of the file's first line in _ewh_lines.

    The table was filled in scan order (preserve_insertion_order), and a table's rows get
    consecutive rowids in insertion order, from 0 or, inside a transaction, from a large base.
    Consecutiveness is checked, as a guard against a DuckDB change numbering lines wrongly.
    """
    [(first, last, rows)] = query(con, "select min(rowid), max(rowid), count(*) from _ewh_lines")
    if rows and int(last) - int(first) + 1 != rows:  # type: ignore[call-overload]
        raise RuntimeError(f"rowids of the lines are not consecutive ({first}..{last}, {rows} "
                           "rows): cannot number lines")
    return int(first or 0)  # type: ignore[call-overload]


def drop_temp(con: duckdb.DuckDBPyConnection) -> None:
    query(con, "drop view if exists _ewh_checked")
    for table in ("_ewh_lines", "_ewh_csv_rejects", "_ewh_csv_scans", "_ewh_chunk_checked"):
        query(con, f"drop table if exists {table}")


def load_chunks(con: duckdb.DuckDBPyConnection, ctx: FileContext, chunk_records: int,
                counts: Counts, *, start: int = 0, end: int | None = None,
                first_line: int = 1) -> None:
    """Check and insert the records of the file read by ewh.ingest.readers, chunk by chunk
    (plain NDJSON: from byte `start` to `end`, the first line numbered `first_line`)."""
    check = check_query("_ewh_chunk")
    params = {"source_prefix": f"file:{ctx.path}", **ctx.params()}
    for chunk in _readable(read_records(ctx.path, chunk_records, start=start, end=end,
                                        first_line=first_line)):
        # Many small record batches: DuckDB scans an Arrow table one batch per thread.
        con.register("_ewh_chunk", pa.Table.from_batches(chunk.to_batches(SCAN_BATCH_ROWS)))
        try:
            query(con, f"create or replace temp table _ewh_chunk_checked as {check}", params)
        finally:
            con.unregister("_ewh_chunk")
        _settle_flagged(con, "_ewh_chunk_checked", ctx, "record_number", "detail")
        _insert_checked(con, "_ewh_chunk_checked", ctx, counts)
    query(con, "drop table if exists _ewh_chunk_checked")


def _readable(chunks: Iterator[pa.Table]) -> Iterator[pa.Table]:
    """The chunks; a failure to read the file (not the database) becomes FileUnreadable."""
    while True:
        try:
            chunk = next(chunks)
        except StopIteration:
            return
        except READ_ERRORS as exc:
            raise FileUnreadable(describe_read_error(exc)) from exc
        yield chunk


def _settle_flagged(con: duckdb.DuckDBPyConnection, relation: str, ctx: FileContext,
                    number: str, detail_column: str) -> None:
    """Give the records flagged `needs_python` the verdict of ewh.contract.validator."""
    flagged = query(con, f"select rowid, {number}, coalesce(payload, raw_text) from {relation} "
                         "where needs_python")
    for rowid, line_number, text in flagged:
        verdict = validate_text(str(text).encode(), f"file:{ctx.path}:{line_number}",
                                ctx.loaded_at, floor=ctx.timestamp_floor)
        if isinstance(verdict, Rejection):
            detail = verdict.tail if detail_column == "detail_tail" else verdict.detail
            values: dict[str, object] = {
                "raw_text": text, "reason": verdict.reason, "field": verdict.field,
                detail_column: detail, "rejected_message_id": verdict.message_id,
                "payload": None}
        else:
            values = {
                "raw_text": None, "reason": None, "field": None, detail_column: None,
                "rejected_message_id": None, "message_id": verdict.message_id,
                "message_type": verdict.message_type, "event_name": verdict.event_name,
                "user_id": verdict.user_id, "anonymous_id": verdict.anonymous_id,
                "occurred_at": verdict.occurred_at, "sent_at": verdict.sent_at,
                "received_at": verdict.received_at, "payload": verdict.payload}
        assignments = ", ".join(f"{column} = ?" for column in values)
        query(con, f"update {relation} set {assignments} where rowid = ?",
              [*values.values(), rowid])


def create_known_index(con: duckdb.DuckDBPyConnection) -> None:
    query(con, f"create or replace temp table {KNOWN} as "
               "select hash(message_id) as h, loaded_at from raw.events")


def _known_ids(ctx: FileContext) -> str:
    """SQL: the ids of `accepted` already in raw.events. With the index, only the rows whose
    loaded_at is that of an index entry with a matching hash are read: every row of raw.events
    has its entry, so a known id is always among them (a hash collision only reads more)."""
    when = (f"loaded_at in (select loaded_at from {KNOWN} "
            "where h in (select h from accepted)) and " if ctx.known_index else "")
    return (f"select distinct message_id from raw.events where {when}"
            "message_id in (select message_id from accepted)")


def _insert_checked(con: duckdb.DuckDBPyConnection, relation: str, ctx: FileContext,
                    counts: Counts) -> None:
    """Rejections, then accepted rows whose messageId is new: not in raw.events (earlier files
    and earlier chunks) and not on an earlier row of `relation` (the first occurrence wins)."""
    params = {"checksum": ctx.checksum, "load_id": ctx.load_id, "loaded_at": ctx.loaded_at}
    # The personal-data policy (ewh.privacy.policy) on everything stored: ewh_protect and
    # ewh_protect_payload (SQL for the common messages, else ewh_protect) are the loader's
    # functions (ewh.privacy.udf); raw never holds a personal field in the clear.
    query(con, f"insert into raw.events_rejected ({_REJECT_COLUMNS}) "
               "select source, record_number, rejected_message_id, reason, field, detail, "
               "ewh_protect_rejected(raw_text), $checksum, $load_id, $loaded_at "
               f"from {relation} where reason is not null order by record_number", params)
    [(read, rejected)] = query(con, f"select count(*), count(reason) from {relation}")
    suppressed = 0
    kept = ""
    if ctx.suppressing:
        # Events of erased ids never come back: dropped here, counted `suppressed`.
        query(con, f"create or replace temp table _ewh_suppressed as select record_number "
                   f"from {relation} where reason is null "
                   "and ewh_suppressed(user_id, anonymous_id)")
        [(suppressed,)] = query(con, "select count(*) from _ewh_suppressed")
        kept = (" and record_number not in (select record_number from _ewh_suppressed)"
                if suppressed else "")
    inserted = query(
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
        f"known as ({_known_ids(ctx)}), "
        "skipped as (select record_number from accepted join known using (message_id) "
        "            union all "
        "            select record_number from accepted join repeated using (message_id) "
        "            where record_number <> first_row) "
        "select message_id, message_type, event_name, user_id, anonymous_id, occurred_at, "
        "sent_at, received_at, ewh_protect_payload(payload), source, $checksum, $load_id, "
        "$loaded_at "
        f"from {relation} c where reason is null{kept} "
        "and not exists (select 1 from skipped s where s.record_number = c.record_number)",
        params)[0][0]
    if ctx.suppressing:
        query(con, "drop table if exists _ewh_suppressed")
    if ctx.known_index:  # every accepted id, a superset of those inserted: still exact
        query(con, f"insert into {KNOWN} select hash(message_id), $loaded_at::timestamp "
                   f"from {relation} where reason is null", {"loaded_at": ctx.loaded_at})
    counts.read += int(read)  # type: ignore[call-overload]
    counts.rejected += int(rejected)  # type: ignore[call-overload]
    counts.loaded += int(inserted)  # type: ignore[call-overload]
    counts.suppressed += int(suppressed)  # type: ignore[call-overload]
    counts.duplicate += (int(read) - int(rejected) - int(inserted)  # type: ignore[call-overload]
                         - int(suppressed))
