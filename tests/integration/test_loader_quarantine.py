"""Bad files never halt a load: each is quarantined with a manifest row naming it and its error,
and every other file loads, in `ewh load` and in Dagster's raw_load. Links out of the landing
zone are not followed; a byte-order mark is not a record; a line torn mid-write counts once."""

from __future__ import annotations

import gzip
import json
import os
import time
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ewh.cli.main import main
from ewh.ingest.landing import closed_landing_files
from ewh.ingest.loader import TORN_LINE_WAIT_SECONDS, expand_paths, load_files


def _msg(message_id: str, **overrides: Any) -> str:
    message = {"type": "track", "messageId": message_id, "anonymousId": "anon-1",
               "event": "Product Viewed", "timestamp": "2026-10-01T12:00:00Z",
               "receivedAt": "2026-10-01T12:00:02Z", **overrides}
    return json.dumps(message)


def _rows(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    folder = tmp_path / "landing"
    folder.mkdir()
    return folder


def _bad_files(landing: Path, outside: Path) -> dict[str, str]:
    """One file of each kind that cannot be read, by name, with the error it must get."""
    data = gzip.compress(("".join(_msg(f"t-{i}") + "\n" for i in range(300))).encode())
    (landing / "b-truncated.ndjson.gz").write_bytes(data[: len(data) // 2])
    (landing / "c-corrupt.ndjson.gz").write_bytes(b"\x1f\x8b\x08\x00" + b"not deflate" * 20)
    (landing / "d-utf16.ndjson").write_bytes(_msg("u-1").encode("utf-16"))
    outside.write_text("root:x:0:0:root:/root:/bin/bash\n")
    (landing / "e-outside.ndjson").symlink_to(outside)
    (landing / "f-dangling.ndjson").symlink_to(landing / "nowhere.bin")
    return {
        "b-truncated.ndjson.gz": "is truncated gzip: the compressed data ends before its end "
                                 "marker (a copy cut short?)",
        "c-corrupt.ndjson.gz": "is corrupt gzip: Error -3 while decompressing data: invalid "
                               "block type",
        "d-utf16.ndjson": "is UTF-16 text (byte-order mark FF FE), expected UTF-8",
        "e-outside.ndjson": "is a symbolic link to a file outside the landing zone: not followed",
        "f-dangling.ndjson": "is a symbolic link to a missing file",
    }


def test_unreadable_files_are_quarantined_and_every_other_file_loads(
        landing: Path, tmp_path: Path) -> None:
    (landing / "a-good.ndjson").write_text(_msg("g-1") + "\n")
    errors = _bad_files(landing, tmp_path / "passwd")
    (landing / "g-good.ndjson").write_text(_msg("g-2") + "\n")
    warehouse = tmp_path / "w.duckdb"
    results = load_files(expand_paths([landing]), warehouse, landing_dir=landing)
    by_name = {r.path.name: r for r in results}
    assert [by_name[n].status for n in ("a-good.ndjson", "g-good.ndjson")] == ["loaded"] * 2
    assert _rows(warehouse, "select message_id from raw.events order by 1") == [("g-1",),
                                                                                  ("g-2",)]
    # Nothing of the system file, nothing of the broken files, reached a raw table.
    assert _rows(warehouse, "select count(*) from raw.events_rejected") == [(0,)]
    manifest = _rows(warehouse, "select file_path, status, error, quarantined_to, rows_read "
                                "from raw.load_manifest where status = 'quarantined' order by 1")
    quarantine = landing / "quarantine"
    assert manifest == [(str(landing / name), "quarantined", f"{landing / name}: {error}",
                         str(quarantine / name), 0) for name, error in sorted(errors.items())]
    assert sorted(p.name for p in quarantine.iterdir()) == sorted(errors)
    assert (tmp_path / "passwd").read_text().startswith("root:")  # the target is untouched
    assert (quarantine / "e-outside.ndjson").is_symlink()  # the link moved, not its target
    assert sorted(p.name for p in landing.iterdir()) == ["a-good.ndjson", "g-good.ndjson",
                                                         "quarantine"]


def test_a_link_inside_the_landing_zone_is_followed_whatever_its_target_is_named(
        landing: Path, tmp_path: Path) -> None:
    # The target has no known suffix: it used to abort the whole folder once resolved.
    (landing / "data.bin").write_text(_msg("l-1") + "\n")
    (landing / "linked.ndjson").symlink_to(landing / "data.bin")
    [result] = load_files(expand_paths([landing]), tmp_path / "w.duckdb", landing_dir=landing)
    assert (result.path.name, result.status, result.rows_loaded) == ("linked.ndjson", "loaded", 1)


def test_a_dry_run_names_bad_files_but_moves_and_records_nothing(
        landing: Path, tmp_path: Path) -> None:
    errors = _bad_files(landing, tmp_path / "passwd")
    warehouse = tmp_path / "w.duckdb"
    results = load_files(expand_paths([landing]), warehouse, dry_run=True, landing_dir=landing)
    assert {r.path.name: r.status for r in results} == dict.fromkeys(errors, "quarantined")
    assert all(r.quarantined_to is None for r in results)
    assert sorted(p.name for p in landing.iterdir()) == sorted(errors)


def test_a_quarantined_file_moved_back_once_fixed_loads(landing: Path, tmp_path: Path) -> None:
    bad = landing / "late.ndjson.gz"
    good = gzip.compress((_msg("q-1") + "\n").encode())
    bad.write_bytes(good[:-8])  # its size and checksum lost
    warehouse = tmp_path / "w.duckdb"
    [first] = load_files([bad], warehouse, landing_dir=landing)
    assert first.status == "quarantined" and first.quarantined_to is not None
    bad.write_bytes(good)
    [second] = load_files([bad], warehouse, landing_dir=landing)
    assert (second.status, second.rows_loaded) == ("loaded", 1)


def test_a_byte_order_mark_is_not_part_of_the_first_record_in_any_text_format(
        landing: Path, tmp_path: Path) -> None:
    bom = b"\xef\xbb\xbf"
    (landing / "a.ndjson").write_bytes(bom + (_msg("n-1") + "\n" + _msg("n-2") + "\n").encode())
    (landing / "b.ndjson.gz").write_bytes(gzip.compress(bom + (_msg("z-1") + "\n").encode()))
    (landing / "c.json").write_bytes(bom + json.dumps([json.loads(_msg("j-1"))]).encode())
    (landing / "d.csv").write_bytes(bom + b"type,messageId,anonymousId,event\n"
                                          b"track,c-1,anon-1,Product Viewed\n")
    warehouse = tmp_path / "w.duckdb"
    files = [landing / name for name in ("a.ndjson", "b.ndjson.gz", "c.json", "d.csv")]
    results = load_files(files, warehouse, landing_dir=landing)
    assert [(r.path.name, r.rows_loaded, r.rows_rejected) for r in results] == [
        ("a.ndjson", 2, 0), ("b.ndjson.gz", 1, 0), ("c.json", 1, 0), ("d.csv", 1, 0)]


def _torn(path: Path, done: list[str], torn: str) -> None:
    path.write_text("".join(line + "\n" for line in done) + torn)


def test_a_line_torn_mid_write_and_completed_later_counts_once(
        landing: Path, tmp_path: Path) -> None:
    warehouse = tmp_path / "w.duckdb"
    path = landing / "stream.ndjson"
    whole = _msg("t-3")
    _torn(path, [_msg("t-1"), _msg("t-2")], whole[:40])
    [first] = load_files([path], warehouse, landing_dir=landing)
    # The two complete lines load; the torn one waits, neither loaded nor rejected.
    assert (first.status, first.rows_read, first.rows_loaded) == ("loaded", 2, 2)
    assert first.pending_bytes == 40
    [again] = load_files([path], warehouse, landing_dir=landing)
    assert (again.status, again.pending_bytes) == ("skipped", 40)
    # The writer finishes the line and adds one more: only they are read.
    with path.open("a") as f:
        f.write(whole[40:] + "\n" + _msg("t-4") + "\n")
    [second] = load_files([path], warehouse, landing_dir=landing)
    assert (second.rows_read, second.rows_loaded, second.rows_duplicate,
            second.rows_rejected, second.pending_bytes) == (2, 2, 0, 0, 0)
    assert _rows(warehouse, "select message_id, source from raw.events order by 1") == [
        (f"t-{i}", f"file:{path}:{i}") for i in range(1, 5)]
    assert _rows(warehouse, "select count(*) from raw.events_rejected") == [(0,)]
    # The manifest reconciles: 4 lines read once each, over two rows for the one file.
    assert _rows(warehouse, "select count(*), sum(rows_read), sum(rows_loaded), max(file_bytes) "
                            "from raw.load_manifest") == [(2, 4, 4, path.stat().st_size)]
    [last] = load_files([path], warehouse, landing_dir=landing)
    assert last.status == "skipped"


def test_the_exact_reader_also_leaves_a_torn_line_for_later(landing: Path,
                                                            tmp_path: Path) -> None:
    path = landing / "stream.ndjson"
    path.write_bytes(b"\xef\xbb\xbf" + (_msg("r-1") + "\n" + _msg("r-2")[:30]).encode())
    [result] = load_files([path], tmp_path / "w.duckdb", landing_dir=landing)
    assert (result.reader, result.rows_read, result.pending_bytes) == ("records", 1, 30)


def test_a_torn_line_nobody_finishes_is_loaded_as_a_rejection_in_the_end(
        landing: Path, tmp_path: Path) -> None:
    path = landing / "abandoned.ndjson"
    _torn(path, [_msg("a-1")], '{"type":"tr')
    old = time.time() - TORN_LINE_WAIT_SECONDS - 60
    os.utime(path, (old, old))
    warehouse = tmp_path / "w.duckdb"
    [result] = load_files([path], warehouse, landing_dir=landing)
    assert (result.rows_loaded, result.rows_rejected, result.pending_bytes) == (1, 1, 0)
    assert _rows(warehouse, "select reason, line_number from raw.events_rejected") == [
        ("invalid_json", 2)]


def test_a_complete_last_line_without_newline_is_not_torn(landing: Path, tmp_path: Path) -> None:
    path = landing / "tidy.ndjson"
    _torn(path, [_msg("c-1")], _msg("c-2"))
    [result] = load_files([path], tmp_path / "w.duckdb", landing_dir=landing)
    assert (result.rows_loaded, result.pending_bytes) == (2, 0)


def test_the_landing_listing_keeps_links_for_the_loader_to_judge(landing: Path,
                                                                   tmp_path: Path) -> None:
    (tmp_path / "elsewhere.txt").write_text("x")
    (landing / "a.ndjson").symlink_to(tmp_path / "elsewhere.txt")
    (landing / "b.ndjson").symlink_to(landing / "missing")
    assert [p.name for p in closed_landing_files(landing)] == ["a.ndjson", "b.ndjson"]


def test_cli_load_reports_quarantined_files_and_still_succeeds(
        landing: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("EWH_LANDING_DIR", str(landing))
    (landing / "a.ndjson").write_text(_msg("ok-1") + "\n")
    (landing / "b.ndjson.gz").write_bytes(b"\x1f\x8b")
    code = main(["load", "--warehouse", str(tmp_path / "w.duckdb")])
    out = capsys.readouterr().out
    assert code == 0
    assert (f"{landing / 'b.ndjson.gz'}: quarantined to {landing / 'quarantine' / 'b.ndjson.gz'}"
            f" ({landing / 'b.ndjson.gz'}: is truncated gzip") in out
    assert "1 quarantined" in out.splitlines()[-1]


def test_dagster_raw_load_quarantines_a_bad_file_and_loads_the_rest(
        landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dagster as dg

    from orchestration.defs.ingest import raw_load
    from orchestration.resources import warehouse_settings

    monkeypatch.setenv("EWH_LANDING_DIR", str(landing))
    monkeypatch.setenv("EWH_WAREHOUSE", str(tmp_path / "w.duckdb"))
    data = gzip.compress((_msg("d-0") + "\n").encode())
    (landing / "a.ndjson.gz").write_bytes(data[:-8])
    (landing / "b.ndjson").write_text(_msg("d-1") + "\n" + _msg("d-2") + "\n")
    result = dg.materialize([raw_load], resources={"settings": warehouse_settings()},
                            instance=dg.DagsterInstance.ephemeral())
    assert result.success
    [events] = [m for m in result.get_asset_materialization_events()
                if m.asset_key == dg.AssetKey(["raw", "events"])]
    metadata = events.materialization.metadata
    assert (metadata["rows_loaded"].value, metadata["files_quarantined"].value) == (2, 1)
    assert (landing / "quarantine" / "a.ndjson.gz").exists()


def test_the_landing_sensor_requests_a_run_for_a_dangling_link_instead_of_failing(
        landing: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import dagster as dg

    from orchestration.defs.ingest import landing_zone_sensor
    from orchestration.resources import warehouse_settings

    monkeypatch.setenv("EWH_LANDING_DIR", str(landing))
    (landing / "gone.ndjson").symlink_to(landing / "missing.ndjson")
    # not the first tick (which only notes the files present): an earlier tick saw none
    context = dg.build_sensor_context(cursor="0", resources={"settings": warehouse_settings()})
    result = landing_zone_sensor(context)
    assert isinstance(result, dg.RunRequest)  # the run's load then quarantines the link


def test_a_file_that_cannot_be_moved_is_still_recorded_and_the_load_goes_on(
        landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import ewh.ingest.loader as loader

    def refuse(path: Path, landing_dir: Path) -> Path:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(loader, "move_to_quarantine", refuse)
    (landing / "a.ndjson.gz").write_bytes(b"\x1f\x8b\x08\x00broken")
    (landing / "b.ndjson").write_text(_msg("m-1") + "\n")
    warehouse = tmp_path / "w.duckdb"
    results = load_files(expand_paths([landing]), warehouse, landing_dir=landing)
    assert [r.status for r in results] == ["quarantined", "loaded"]
    assert results[0].quarantined_to is None
    assert results[0].error.endswith("(could not be moved to quarantine: [Errno 13] Permission "
                                     "denied)")
    assert _rows(warehouse, "select status from raw.load_manifest order by file_path") == [
        ("quarantined",), ("loaded",)]
