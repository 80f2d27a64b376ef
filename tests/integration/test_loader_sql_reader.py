"""NDJSON read by DuckDB's CSV reader gives exactly what ewh.ingest.readers gives, or is not used.

Every test loads the same file twice, once through DuckDB (`sql_reader=True`, the default) and
once through the exact record reader (`sql_reader=False`), into real DuckDB files, and compares
every stored column but the load's own id and time.
"""

from __future__ import annotations

import gzip
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ewh.ingest.loader import FileLoadResult, load_files

_EVENTS = ("select message_id, message_type, event_name, user_id, anonymous_id, occurred_at, "
           "sent_at, received_at, payload, source, file_checksum from raw.events order by source")
_REJECTED = ("select source, line_number, message_id, reason, field, detail, raw_text, "
             "file_checksum from raw.events_rejected order by line_number")


def _msg(message_id: str, **fields: Any) -> str:
    message = {"type": "track", "messageId": message_id, "anonymousId": "a-1",
               "event": "Product Viewed", "timestamp": "2026-10-01T12:00:00.000Z",
               "receivedAt": "2026-10-01T12:00:01.000Z", **fields}
    return json.dumps(message, separators=(",", ":"))


def _tables(warehouse: Path) -> tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(_EVENTS).fetchall(), con.execute(_REJECTED).fetchall()


def _both_readers(path: Path, tmp_path: Path) -> tuple[FileLoadResult, FileLoadResult]:
    """Load `path` with each reader; assert both stored the same rows and counts."""
    [sql] = load_files([path], tmp_path / "sql.duckdb")
    [exact] = load_files([path], tmp_path / "exact.duckdb", sql_reader=False)
    assert exact.reader == "records"
    counts = ("rows_read", "rows_loaded", "rows_duplicate", "rows_rejected")
    assert [getattr(sql, c) for c in counts] == [getattr(exact, c) for c in counts]
    assert sql.rows_read == sql.rows_loaded + sql.rows_duplicate + sql.rows_rejected
    assert _tables(tmp_path / "sql.duckdb") == _tables(tmp_path / "exact.duckdb")
    return sql, exact


def _edge_cases() -> bytes:
    lines = [
        _msg("e-1"), "", "   ", "\t ", _msg("e-2", userId="u-2"),
        "  " + _msg("e-3") + "  ",  # spaces around a record are not part of a blank line
        _msg("e-1", event="Copy"),  # a repeat: the first occurrence wins
        "{not json", "[1, 2]", '"a string"', _msg("e-4")[:-1] + ',}',  # trailing comma
        _msg("e-5", properties={"price": "NaN"}).replace('"NaN"', "NaN"),
        _msg("e-6", properties={"x": "inf, NaN and ,] inside a string"}),
        _msg("e-7", event="Ünïcödé 🎉", properties={"q": "tab\there"}),
        _msg("e-8", properties={"blob": "x" * 40_000}),  # oversize
        _msg("e-9", timestamp="2026-10-09T12:00:00Z"),  # future
        json.dumps(json.loads(_msg("e-10")), indent=None),  # ", " and ": " separators
        _msg(""), _msg("e-11", type="click"),
    ]
    return ("\n".join(lines) + "\n" + _msg("e-12")).encode()  # no newline after the last


def test_edge_cases_are_read_alike_by_both_readers(tmp_path: Path) -> None:
    path = tmp_path / "edge.ndjson"
    path.write_bytes(_edge_cases())
    sql, _ = _both_readers(path, tmp_path)
    assert sql.reader == "duckdb"
    assert (sql.rows_read, sql.rows_loaded, sql.rows_duplicate) == (17, 7, 1)
    events, rejected = _tables(tmp_path / "sql.duckdb")
    assert {e[0]: int(e[9].rsplit(":", 1)[1]) for e in events} == {
        "e-1": 1, "e-2": 5, "e-3": 6, "e-6": 13, "e-7": 14, "e-10": 17, "e-12": 20}
    assert {r[3] for r in rejected} == {"invalid_json", "not_an_object", "oversize",
                                        "future_timestamp", "missing_field",
                                        "unknown_message_type"}


@pytest.mark.parametrize("odd", [b"\r\n", b"\r", b"\x01", b"\xff"],
                         ids=["crlf", "lone_cr", "byte_0x01", "invalid_utf8"])
def test_text_duckdb_would_split_differently_goes_to_the_exact_reader(
        tmp_path: Path, odd: bytes) -> None:
    lines = [_msg(f"o-{i}").encode() for i in range(3)]
    if odd == b"\r\n":
        body = b"".join(line + odd for line in lines)
    else:  # inside the second record
        lines[1] = lines[1][:20] + odd + lines[1][20:]
        body = b"".join(line + b"\n" for line in lines)
    path = tmp_path / "odd.ndjson"
    path.write_bytes(body)
    sql, _ = _both_readers(path, tmp_path)
    assert sql.reader == "records"
    assert sql.rows_read == 3


def test_a_byte_order_mark_goes_to_the_exact_reader_which_skips_it(tmp_path: Path) -> None:
    path = tmp_path / "bom.ndjson"
    path.write_bytes(b"\xef\xbb\xbf" + _msg("b-1").encode() + b"\n" + _msg("b-2").encode())
    sql, _ = _both_readers(path, tmp_path)
    assert sql.reader == "records"
    # The mark is not part of the first record (it used to make it invalid JSON).
    assert (sql.rows_read, sql.rows_loaded, sql.rows_rejected) == (2, 2, 0)


def test_gzip_is_read_by_duckdb_and_a_second_member_goes_to_the_exact_reader(
        tmp_path: Path) -> None:
    one = tmp_path / "one.ndjson.gz"
    one.write_bytes(gzip.compress((_msg("g-1") + "\n" + _msg("g-2") + "\n").encode()))
    sql, _ = _both_readers(one, tmp_path / "a")
    assert (sql.reader, sql.rows_loaded) == ("duckdb", 2)
    two = tmp_path / "two.ndjson.gz"
    two.write_bytes(gzip.compress((_msg("g-1") + "\n").encode())
                    + gzip.compress((_msg("g-2") + "\n").encode()))
    sql, _ = _both_readers(two, tmp_path / "b")
    assert (sql.reader, sql.rows_loaded) == ("records", 2)


def test_line_numbers_stay_physical_in_a_file_read_in_parallel(tmp_path: Path) -> None:
    # ~40 MB: DuckDB reads it in several buffers on every thread; blank lines every so often.
    lines = [_msg(f"p-{i}", properties={"pad": "x" * 600}) if i % 997 else ""
             for i in range(60_000)]
    path = tmp_path / "big.ndjson"
    path.write_text("\n".join(lines) + "\n")
    [result] = load_files([path], tmp_path / "w.duckdb")
    assert result.reader == "duckdb"
    assert result.rows_read == 60_000 - len(range(0, 60_000, 997))
    with duckdb.connect(str(tmp_path / "w.duckdb"), read_only=True) as con:
        wrong = con.execute(
            "select count(*) from raw.events "
            "where split_part(message_id, '-', 2)::int + 1 <> split_part(source, ':', -1)::int"
        ).fetchone()
    assert wrong == (0,)


def test_a_duplicate_of_an_earlier_file_is_caught_whatever_its_received_day(
        tmp_path: Path) -> None:
    first = tmp_path / "day-1.ndjson"
    first.write_text(_msg("d-1", receivedAt="2026-09-01T00:00:01.000Z",
                          timestamp="2026-09-01T00:00:00.000Z") + "\n")
    second = tmp_path / "day-40.ndjson"
    second.write_text(_msg("d-1", receivedAt="2026-10-10T00:00:01.000Z",
                           timestamp="2026-10-10T00:00:00.000Z") + "\n" + _msg("d-2") + "\n")
    warehouse = tmp_path / "w.duckdb"
    load_files([first], warehouse)
    [result] = load_files([second], warehouse)
    assert (result.reader, result.rows_loaded, result.rows_duplicate) == ("duckdb", 1, 1)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select received_at from raw.events where message_id = 'd-1'"
                           ).fetchall() == [(datetime(2026, 9, 1, 0, 0, 1),)]


def test_a_dry_run_through_duckdb_counts_like_a_load_and_writes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "edge.ndjson"
    path.write_bytes(_edge_cases())
    warehouse = tmp_path / "w.duckdb"
    [dry] = load_files([path], warehouse, dry_run=True)
    assert not warehouse.exists()
    [real] = load_files([path], warehouse)
    assert (dry.status, dry.reader) == ("dry_run", "duckdb")
    assert ((dry.rows_read, dry.rows_loaded, dry.rows_duplicate, dry.rows_rejected)
            == (real.rows_read, real.rows_loaded, real.rows_duplicate, real.rows_rejected))
