"""The file loader against real DuckDB files: exactly-once, reconciled, nothing silently dropped."""

from __future__ import annotations

import gzip
import hashlib
import json
import shutil
import uuid
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ewh.cli.main import main
from ewh.ingest.loader import expand_paths, load_files
from ewh.sample.generator import generate

END = datetime(2026, 10, 1)


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("landing")
    generate(out, events=5_000, seed=5, end=END, days=30)
    return out


@pytest.fixture
def warehouse(tmp_path: Path) -> Path:
    return tmp_path / "warehouse.duckdb"


def _line(message_id: str | None = "m-1", **overrides: Any) -> str:
    message: dict[str, Any] = {
        "type": "track", "messageId": message_id, "anonymousId": "anon-1",
        "event": "Product Viewed", "properties": {"product_id": "sku-1"},
        "timestamp": "2026-10-01T12:00:00Z", "sentAt": "2026-10-01T12:00:01Z",
        "receivedAt": "2026-10-01T12:00:02Z",
    }
    if message_id is None:
        del message["messageId"]
    message.update(overrides)
    return json.dumps(message)


def _write(path: Path, *lines: str) -> Path:
    path.write_text("".join(line + "\n" for line in lines))
    return path


def _query(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


def _table_counts(warehouse: Path) -> tuple[int, int, int]:
    return (_query(warehouse, "select count(*) from raw.events")[0][0],
            _query(warehouse, "select count(*) from raw.events_rejected")[0][0],
            _query(warehouse, "select count(*) from raw.load_manifest")[0][0])


def test_counts_reconcile_read_equals_loaded_plus_duplicates_plus_rejected(
        dataset: Path, warehouse: Path) -> None:
    results = load_files(expand_paths([dataset]), warehouse)
    # 5,000 lines: 50 planted duplicates (1%), 5 malformed (one per kind), 4,945 unique events.
    assert sum(r.rows_read for r in results) == 5_000
    assert sum(r.rows_loaded for r in results) == 4_945
    assert sum(r.rows_duplicate for r in results) == 50
    assert sum(r.rows_rejected for r in results) == 5
    for r in results:
        assert r.rows_read == r.rows_loaded + r.rows_duplicate + r.rows_rejected
    assert _table_counts(warehouse) == (4_945, 5, len(results))
    manifest = _query(warehouse, "select sum(rows_read), sum(rows_loaded), sum(rows_duplicate), "
                                 "sum(rows_rejected) from raw.load_manifest")
    assert manifest == [(5_000, 4_945, 50, 5)]
    assert _query(warehouse, "select count(distinct message_id) from raw.events") == [(4_945,)]


def test_loading_the_same_file_twice_changes_nothing(dataset: Path, warehouse: Path) -> None:
    files = expand_paths([dataset / "events-*.ndjson"])
    load_files(files, warehouse)
    before = _table_counts(warehouse)
    again = load_files(files, warehouse)
    assert {r.status for r in again} == {"skipped"}
    assert all(r.rows_read == 0 and r.load_id is None for r in again)
    assert _table_counts(warehouse) == before


def test_the_same_content_under_another_name_is_skipped_by_checksum(
        tmp_path: Path, warehouse: Path) -> None:
    original = _write(tmp_path / "a.ndjson", _line("m-1"))
    copy = tmp_path / "b.ndjson"
    shutil.copy(original, copy)
    first, second = load_files([original, copy], warehouse)
    assert (first.status, second.status) == ("loaded", "skipped")
    assert second.checksum == hashlib.sha256(original.read_bytes()).hexdigest()


def test_a_repeated_message_id_in_a_file_is_a_duplicate_and_the_first_wins(
        tmp_path: Path, warehouse: Path) -> None:
    path = _write(tmp_path / "f.ndjson", _line("m-1", event="Product Viewed"),
                  _line("m-2"), _line("m-1", event="Product Added"))
    [result] = load_files([path], warehouse)
    assert (result.rows_read, result.rows_loaded, result.rows_duplicate) == (3, 2, 1)
    assert _query(warehouse, "select event_name, source from raw.events where message_id = 'm-1'"
                  ) == [("Product Viewed", f"file:{path}:1")]


def test_duplicates_are_found_across_chunks_of_one_file(tmp_path: Path, warehouse: Path) -> None:
    path = _write(tmp_path / "f.ndjson", _line("m-1"), _line("m-2"), _line("m-3"), _line("m-1"),
                  _line("m-2"))
    # The exact reader streams NDJSON in chunks (DuckDB's reader checks the file at once).
    [result] = load_files([path], warehouse, chunk_lines=2, sql_reader=False)
    assert (result.rows_loaded, result.rows_duplicate) == (3, 2)


def test_a_message_id_loaded_from_an_earlier_file_is_a_duplicate(
        tmp_path: Path, warehouse: Path) -> None:
    first = _write(tmp_path / "1.ndjson", _line("m-1", event="Product Viewed"))
    second = _write(tmp_path / "2.ndjson", _line("m-1", event="Product Added"), _line("m-2"))
    load_files([first], warehouse)
    [result] = load_files([second], warehouse)
    assert (result.rows_read, result.rows_loaded, result.rows_duplicate) == (2, 1, 1)
    assert _query(warehouse, "select event_name from raw.events where message_id = 'm-1'") == [
        ("Product Viewed",)]


def test_blank_lines_are_ignored_and_line_numbers_stay_physical(
        tmp_path: Path, warehouse: Path) -> None:
    path = tmp_path / "f.ndjson"
    path.write_text("\n" + _line("m-1") + "\n   \n\n" + _line("m-2") + "\r\n\n")
    [result] = load_files([path], warehouse)
    assert (result.rows_read, result.rows_loaded) == (2, 2)
    assert _query(warehouse, "select source from raw.events order by message_id") == [
        (f"file:{path}:2",), (f"file:{path}:5",)]


def test_rejection_names_the_record_and_the_field(tmp_path: Path, warehouse: Path) -> None:
    bad = _line(None)
    path = _write(tmp_path / "events-2026-10-01.ndjson", _line("m-1"), bad, "{not json")
    [result] = load_files([path], warehouse)
    assert (result.rows_loaded, result.rows_rejected) == (1, 2)
    rows = _query(warehouse, "select source, line_number, reason, field, detail, raw_text, "
                             "file_checksum, load_id from raw.events_rejected order by line_number")
    source, line_number, reason, field, detail, raw_text, checksum, load_id = rows[0]
    assert (source, line_number, reason, field) == (f"file:{path}:2", 2, "missing_field",
                                                    "messageId")
    assert f"file:{path}:2" in detail and "`messageId`" in detail and "expected" in detail
    assert raw_text == bad
    assert checksum == result.checksum and load_id == result.load_id
    assert rows[1][2:4] == ("invalid_json", None)
    assert rows[1][5] == "{not json"


def test_events_carry_source_checksum_load_id_and_naive_utc_times(
        tmp_path: Path, warehouse: Path) -> None:
    text = _line("m-1", userId="u-1", timestamp="2026-10-01T14:00:00+02:00")
    path = _write(tmp_path / "f.ndjson", text)
    [result] = load_files([path], warehouse)
    [row] = _query(warehouse, "select message_type, event_name, user_id, anonymous_id, "
                              "occurred_at, sent_at, received_at, payload, source, "
                              "file_checksum, load_id, loaded_at from raw.events")
    assert row[:7] == ("track", "Product Viewed", "u-1", "anon-1", datetime(2026, 10, 1, 12),
                       datetime(2026, 10, 1, 12, 0, 1), datetime(2026, 10, 1, 12, 0, 2))
    assert row[7] == text
    assert row[8] == f"file:{path}:1"
    assert row[9] == hashlib.sha256(path.read_bytes()).hexdigest()
    assert row[10] == result.load_id and uuid.UUID(row[10])
    assert isinstance(row[11], datetime)
    manifest = _query(warehouse, "select file_path, file_checksum, file_bytes, rows_read "
                                 "from raw.load_manifest")
    assert manifest == [(str(path), row[9], path.stat().st_size, 1)]


def test_a_missing_received_at_is_filled_with_the_load_time(
        tmp_path: Path, warehouse: Path) -> None:
    message = json.loads(_line("m-1"))
    del message["receivedAt"]
    path = _write(tmp_path / "f.ndjson", json.dumps(message))
    load_files([path], warehouse)
    assert _query(warehouse, "select received_at = loaded_at from raw.events") == [(True,)]


def test_a_dry_run_counts_but_writes_nothing(dataset: Path, tmp_path: Path,
                                             warehouse: Path) -> None:
    files = expand_paths([dataset])
    missing = tmp_path / "never.duckdb"
    assert sum(r.rows_loaded for r in load_files(files, missing, dry_run=True)) == 4_945
    assert not missing.exists()
    load_files(files[:1], warehouse)
    before = _table_counts(warehouse)
    dry = load_files(files, warehouse, dry_run=True)
    assert dry[0].status == "skipped"
    assert {r.status for r in dry[1:]} == {"dry_run"}
    assert _table_counts(warehouse) == before


def test_gzip_files_load_like_plain_ones(tmp_path: Path, warehouse: Path) -> None:
    path = tmp_path / "f.ndjson.gz"
    with gzip.open(path, "wt") as f:
        f.write(_line("m-1") + "\n" + _line("m-2") + "\n")
    [result] = load_files(expand_paths([tmp_path]), warehouse)
    assert (result.path, result.rows_loaded) == (path, 2)


def test_a_truncated_gzip_leaves_no_rows_and_the_files_after_it_still_load(
        tmp_path: Path, warehouse: Path) -> None:
    # A truncated upload: gzip data cut short after the first records. It used to abort the
    # whole load with an EOFError naming no file.
    data = gzip.compress("".join(_line(f"m-{i}") + "\n" for i in range(200)).encode())
    path = tmp_path / "torn.ndjson.gz"
    path.write_bytes(data[: len(data) // 2])
    after = _write(tmp_path / "z.ndjson", _line("after-1"))
    results = load_files([path, after], warehouse, chunk_lines=1, landing_dir=tmp_path)
    assert [r.status for r in results] == ["quarantined", "loaded"]
    assert results[0].error == (f"{path}: is truncated gzip: the compressed data ends before "
                                "its end marker (a copy cut short?)")
    assert _query(warehouse, "select message_id from raw.events") == [("after-1",)]
    assert _query(warehouse, "select count(*) from raw.events_rejected") == [(0,)]


def test_expand_paths_sorts_globs_and_rejects_a_missing_file(tmp_path: Path) -> None:
    for day in ("03", "01", "02"):
        _write(tmp_path / f"events-2026-10-{day}.ndjson", _line())
    assert [p.name for p in expand_paths([str(tmp_path / "events-*.ndjson")])] == [
        "events-2026-10-01.ndjson", "events-2026-10-02.ndjson", "events-2026-10-03.ndjson"]
    assert expand_paths([str(tmp_path / "nothing-*.ndjson")]) == []
    with pytest.raises(FileNotFoundError):
        expand_paths([tmp_path / "missing.ndjson"])


def test_cli_load_prints_a_line_per_file_and_succeeds_despite_rejections(
        tmp_path: Path, warehouse: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _write(tmp_path / "f.ndjson", _line("m-1"), _line(None), _line("m-1"))
    assert main(["load", str(path), "--warehouse", str(warehouse)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == f"{path}: read 3 loaded 1 duplicate 1 rejected 1"
    assert out[1].startswith("total: 1 files (0 skipped), read 3 loaded 1 duplicate 1 rejected 1")
    assert main(["load", str(path), "--warehouse", str(warehouse)]) == 0
    assert "skipped" in capsys.readouterr().out


def test_cli_load_of_a_missing_file_exits_non_zero(
        tmp_path: Path, warehouse: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["load", str(tmp_path / "missing.ndjson"), "--warehouse", str(warehouse)]) == 1
    assert "missing.ndjson" in capsys.readouterr().err


def test_cli_generate_writes_the_dataset(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "landing"
    code = main(["generate", "--events", "500", "--seed", "1", "--out", str(out), "--days", "3",
                 "--end", "2026-10-01T00:00:00Z"])
    assert code == 0
    assert json.loads((out / "dataset.json").read_text())["events_written"] == 500
    assert "wrote 500 lines" in capsys.readouterr().out
