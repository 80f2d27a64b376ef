"""`ewh load` reads NDJSON (plain, gzip), JSON arrays, CSV and Parquet through one contract."""

from __future__ import annotations

import gzip
import json
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ewh.cli.main import main
from ewh.ingest.loader import expand_paths, load_files

TS = "2026-10-01T12:00:00Z"


def _msg(message_id: str, **fields: Any) -> dict[str, Any]:
    return {"type": "track", "messageId": message_id, "userId": "u-1", "event": "Signed Up",
            "timestamp": TS, **fields}


def _rows(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def test_a_json_array_loads_each_element_as_a_record(tmp_path: Path) -> None:
    path = tmp_path / "export.json"
    path.write_text(json.dumps([_msg("a-1"), {"type": "track"}, _msg("a-2")], indent=2))
    [result] = load_files([path], tmp_path / "w.duckdb")
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (3, 2, 1)
    assert _rows(tmp_path / "w.duckdb", "select source, reason, field from raw.events_rejected"
                 ) == [(f"file:{path}:2", "missing_field", "messageId")]


def test_a_gzip_json_array_loads_and_a_broken_tail_is_one_invalid_json_record(
        tmp_path: Path) -> None:
    path = tmp_path / "export.json.gz"
    text = json.dumps([_msg("g-1"), _msg("g-2")])
    path.write_bytes(gzip.compress((text[:-1] + ', {"type": "tr').encode()))
    [result] = load_files(expand_paths([tmp_path]), tmp_path / "w.duckdb")
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (3, 2, 1)
    assert _rows(tmp_path / "w.duckdb", "select reason, raw_text from raw.events_rejected") == [
        ("invalid_json", '{"type": "tr')]


def test_a_json_file_of_lines_is_read_as_ndjson(tmp_path: Path) -> None:
    path = tmp_path / "lines.json"
    path.write_text(json.dumps(_msg("l-1")) + "\n" + json.dumps(_msg("l-2")) + "\n")
    [result] = load_files([path], tmp_path / "w.duckdb")
    assert result.rows_loaded == 2


def test_csv_columns_become_fields_dotted_ones_nest_and_json_cells_are_objects(
        tmp_path: Path) -> None:
    path = tmp_path / "events.csv"
    path.write_text(
        "type,messageId,userId,event,timestamp,properties.price,context\n"
        'track,c-1,u-1,Order Completed,2026-10-01T12:00:00Z,19.5,"{""channel"": ""web""}"\n'
        "track,c-2,,Order Completed,2026-10-01T12:00:00Z,,\n"
        "identify,c-3,u-3,,2026-10-01T12:00:00Z,,\n")
    [result] = load_files([path], tmp_path / "w.duckdb")
    assert (result.rows_read, result.rows_loaded, result.rows_rejected) == (3, 2, 1)
    [(payload,)] = _rows(tmp_path / "w.duckdb",
                         "select payload from raw.events where message_id = 'c-1'")
    assert json.loads(payload)["properties"] == {"price": "19.5"}
    assert json.loads(payload)["context"] == {"channel": "web"}
    assert _rows(tmp_path / "w.duckdb", "select source, field from raw.events_rejected") == [
        (f"file:{path}:3", "userId/anonymousId")]


def test_parquet_rows_load_with_structs_nested_and_timestamps_in_utc(tmp_path: Path) -> None:
    from datetime import datetime

    path = tmp_path / "events.parquet"
    table = pa.table({
        "type": ["track", "page"], "messageId": ["p-1", "p-2"], "anonymousId": ["a", "b"],
        "event": ["Product Added", None], "name": [None, "Pricing"],
        "timestamp": pa.array([datetime(2026, 10, 1, 12), datetime(2026, 10, 1, 13)],
                              pa.timestamp("ms")),
        "properties": [{"price": 1.5}, {"price": None}],
    })
    pq.write_table(table, path)
    [result] = load_files([path], tmp_path / "w.duckdb")
    assert result.rows_loaded == 2
    assert _rows(tmp_path / "w.duckdb", "select message_id, event_name, occurred_at "
                                        "from raw.events order by 1") == [
        ("p-1", "Product Added", datetime(2026, 10, 1, 12)),
        ("p-2", "Pricing", datetime(2026, 10, 1, 13))]


def test_a_file_is_streamed_in_chunks_and_counts_reconcile(tmp_path: Path) -> None:
    path = tmp_path / "many.ndjson"
    lines = [json.dumps(_msg(f"s-{i % 900}")) for i in range(1_000)]  # 100 repeats
    lines[500] = "{broken"
    path.write_text("\n".join(lines) + "\n")
    [result] = load_files([path], tmp_path / "w.duckdb", chunk_lines=64, sql_reader=False)
    # Lines 0..899 carry s-0..s-899, lines 900..999 repeat s-0..s-99. Line 500 is broken, and
    # s-500 appears nowhere else: loaded 900 - 1 = 899, duplicates 100, rejected 1.
    assert (result.rows_read, result.rows_rejected) == (1_000, 1)
    assert (result.rows_loaded, result.rows_duplicate) == (899, 100)


def test_a_last_line_without_newline_and_crlf_endings_are_read(tmp_path: Path) -> None:
    path = tmp_path / "crlf.ndjson"
    path.write_bytes(json.dumps(_msg("r-1")).encode() + b"\r\n" + json.dumps(_msg("r-2")).encode())
    [result] = load_files([path], tmp_path / "w.duckdb")
    assert result.rows_loaded == 2
    assert _rows(tmp_path / "w.duckdb", "select count(*) from raw.events "
                                        "where payload like '%' || chr(13) || '%'") == [(0,)]


def test_an_unknown_extension_is_quarantined_naming_the_formats(tmp_path: Path) -> None:
    path = tmp_path / "events.xml"
    path.write_text("<a/>")
    [result] = load_files([path], tmp_path / "w.duckdb", landing_dir=tmp_path)
    assert result.status == "quarantined"
    assert result.error == (f"{path}: unknown format; expected .ndjson, .jsonl, .json, .csv or "
                            ".parquet (optionally .gz)")
    assert result.quarantined_to == tmp_path / "quarantine" / "events.xml"


def test_cli_dry_run_validates_and_prints_counts_without_loading(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "f.ndjson"
    path.write_text(json.dumps(_msg("d-1")) + "\n{bad\n")
    warehouse = tmp_path / "w.duckdb"
    assert main(["load", str(path), "--dry-run", "--warehouse", str(warehouse)]) == 0
    out = capsys.readouterr().out
    assert "read 2 loaded 1 duplicate 0 rejected 1" in out
    assert out.splitlines()[-1].startswith("dry run, nothing written: total: 1 files")
    assert not warehouse.exists()
