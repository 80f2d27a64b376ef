"""Files loaded together (the dedupe reading an index of raw.events' ids, record_checks.KNOWN)
store exactly what the same files loaded one call each (the dedupe reading raw.events) store.

Real DuckDB files; the reference is the loader itself, one file per call, in the same order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest

from ewh.ingest.loader import load_files
from tests.integration.test_loader_sql_reader import _edge_cases, _msg

_EVENTS = ("select message_id, message_type, event_name, user_id, anonymous_id, occurred_at, "
           "sent_at, received_at, payload, source, file_checksum from raw.events order by source")
_REJECTED = ("select source, line_number, message_id, reason, field, detail, raw_text, "
             "file_checksum from raw.events_rejected order by source, line_number")
_MANIFEST = ("select file_path, file_checksum, file_bytes, rows_read, rows_loaded, "
             "rows_duplicate, rows_rejected, status from raw.load_manifest order by file_path")
_COUNTS = ("status", "reader", "rows_read", "rows_loaded", "rows_duplicate", "rows_rejected",
           "pending_bytes", "checksum")
TORN = '{"type":"track","messageId":"t-'


def _landing(folder: Path) -> list[Path]:
    folder.mkdir()
    files = {
        "1-edge.ndjson": _edge_cases(),  # every kind of rejection, an oversize record
        "2-crlf.ndjson": (_msg("c-1") + "\r\n" + _msg("c-2") + "\r\n").encode(),
        "3-copy.ndjson": _edge_cases(),  # the same bytes as 1: skipped
        "4-later.ndjson": "\n".join([_msg("e-1"), _msg("e-2"), _msg("l-1")]).encode(),
        "5-torn.ndjson": (_msg("t-1") + "\n" + TORN).encode(),  # a line still being written
    }
    for name, body in files.items():
        (folder / name).write_bytes(body)
    return [folder / name for name in sorted(files)]


def _tables(warehouse: Path) -> list[list[tuple[Any, ...]]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return [con.execute(sql).fetchall() for sql in (_EVENTS, _REJECTED, _MANIFEST)]


@pytest.mark.parametrize("sql_reader", [True, False], ids=["duckdb", "records"])
def test_files_loaded_together_store_what_files_loaded_one_by_one_store(
        tmp_path: Path, sql_reader: bool) -> None:
    files = _landing(tmp_path / "landing")
    together = load_files(files, tmp_path / "together.duckdb", landing_dir=tmp_path / "landing",
                          sql_reader=sql_reader)
    one_by_one = [result for path in files
                  for result in load_files([path], tmp_path / "single.duckdb",
                                           landing_dir=tmp_path / "landing",
                                           sql_reader=sql_reader)]
    assert ([[getattr(r, c) for c in _COUNTS] for r in together]
            == [[getattr(r, c) for c in _COUNTS] for r in one_by_one])
    assert _tables(tmp_path / "together.duckdb") == _tables(tmp_path / "single.duckdb")
    edge, crlf, copy, later, torn = together
    reader = "duckdb" if sql_reader else "records"
    assert (edge.reader, edge.rows_read, edge.rows_loaded, edge.rows_duplicate) == (
        reader, 17, 7, 1)
    assert (crlf.reader, crlf.rows_loaded) == ("records", 2)
    assert copy.status == "skipped"
    # e-1 and e-2 came with the first file: duplicates across files are still caught.
    assert (later.reader, later.rows_loaded, later.rows_duplicate) == (reader, 1, 2)
    assert (torn.rows_loaded, torn.pending_bytes) == (1, len(TORN))


def test_ids_loaded_by_an_earlier_run_are_duplicates_in_a_load_of_several_files(
        tmp_path: Path) -> None:
    files = _landing(tmp_path / "landing")
    warehouse = tmp_path / "w.duckdb"
    load_files([files[0]], warehouse, landing_dir=tmp_path / "landing")
    # Loaded together, the file after "later" sees the ids of both runs.
    again = tmp_path / "landing" / "6-again.ndjson"
    again.write_text("\n".join([_msg("e-3"), _msg("l-1"), _msg("n-1")]) + "\n")
    later, new = load_files([files[3], again], warehouse, landing_dir=tmp_path / "landing")
    assert (later.rows_loaded, later.rows_duplicate) == (1, 2)  # e-1, e-2 from the first run
    assert (new.rows_loaded, new.rows_duplicate) == (1, 2)  # e-3 (first run), l-1 (this run)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*), count(distinct message_id) from raw.events"
                           ).fetchone() == (9, 9)
