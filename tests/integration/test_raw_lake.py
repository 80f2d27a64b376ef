"""`ewh load` publishing the raw layer as Parquet (ewh/ingest/lake.py), with real files.

Expected values are worked out from the hand-written lines below: three accepted messages (one
with a client offset of +02:00, one duplicate, one rejected line).
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from ewh.cli.main import main
from ewh.ingest.lake import events_file, lake_loads
from ewh.ingest.loader import load_files


def _message(message_id: str, timestamp: str) -> str:
    return json.dumps({
        "type": "track", "messageId": message_id, "anonymousId": "anon-1",
        "event": "Product Viewed", "timestamp": timestamp,
        "sentAt": timestamp, "receivedAt": "2026-10-01T12:00:05Z",
    })


@pytest.fixture
def landing(tmp_path: Path) -> Path:
    folder = tmp_path / "landing"
    folder.mkdir()
    (folder / "a.ndjson").write_text("\n".join([
        _message("m-1", "2026-10-01T12:00:00Z"),
        _message("m-2", "2026-10-01T14:00:01.250+02:00"),  # 12:00:01.25 UTC
        _message("m-1", "2026-10-01T12:00:00Z"),  # duplicate
        "{not json",
    ]) + "\n")
    (folder / "b.ndjson").write_text(_message("m-3", "2026-10-01T12:00:02Z") + "\n")
    return folder


def _published(lake: Path) -> list[Path]:
    return sorted(lake.glob("raw/events/load_date=*/*.parquet"))


def test_each_load_is_one_parquet_file_of_its_accepted_rows_in_utc(
    landing: Path, tmp_path: Path
) -> None:
    warehouse, lake = tmp_path / "w.duckdb", tmp_path / "lake"
    results = load_files(sorted(landing.glob("*.ndjson")), warehouse, lake_dir=lake)
    files = _published(lake)
    assert len(files) == 2
    by_load = {r.load_id: r for r in results}
    today = datetime.now(UTC).strftime("%Y-%m-%d")
    for path in files:
        assert path.parent.name == f"load_date={today}"
        assert path.stem in by_load
    first = pq.read_table(events_file(lake, results[0].load_id, today))
    assert first.column("message_id").to_pylist() == ["m-1", "m-2"]
    assert first.schema.field("occurred_at").type == pa.timestamp("us", tz="UTC")
    assert first.schema.field("loaded_at").type == pa.timestamp("us", tz="UTC")
    assert first.column("occurred_at").to_pylist() == [
        datetime(2026, 10, 1, 12, 0, 0, tzinfo=UTC),
        datetime(2026, 10, 1, 12, 0, 1, 250000, tzinfo=UTC),
    ]
    with duckdb.connect(str(warehouse), read_only=True) as con:
        loads = lake_loads(con, lake)
    assert [(load.rows_in_manifest, load.rows_in_lake) for load in loads] == [(2, 2), (1, 1)]
    assert all(load.reconciles for load in loads)
    assert not list(lake.rglob(".*.partial"))


def test_publication_is_exactly_once_and_repairs_a_missed_one(
    landing: Path, tmp_path: Path
) -> None:
    warehouse, lake = tmp_path / "w.duckdb", tmp_path / "lake"
    load_files([landing / "a.ndjson"], warehouse)  # committed, never published (lake off)
    assert _published(lake) == []
    load_files([landing / "a.ndjson", landing / "b.ndjson"], warehouse, lake_dir=lake)
    files = _published(lake)
    assert len(files) == 2  # a.ndjson's load (repaired) and b.ndjson's, nothing twice
    stamps = {path: path.stat().st_mtime_ns for path in files}
    load_files([landing / "b.ndjson"], warehouse, lake_dir=lake)  # skipped: already loaded
    assert {path: path.stat().st_mtime_ns for path in _published(lake)} == stamps
    rows = pa.concat_tables([pq.read_table(path) for path in files])
    assert sorted(rows.column("message_id").to_pylist()) == ["m-1", "m-2", "m-3"]


def test_ewh_load_publishes_when_the_setting_is_set(
    landing: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lake = tmp_path / "lake"
    monkeypatch.setenv("EWH_WAREHOUSE", str(tmp_path / "w.duckdb"))
    monkeypatch.setenv("EWH_LAKE_DIR", str(lake))
    assert main(["load", str(landing)]) == 0
    assert len(_published(lake)) == 2
    monkeypatch.delenv("EWH_LAKE_DIR")
    (landing / "c.ndjson").write_text(_message("m-4", "2026-10-01T12:00:03Z") + "\n")
    assert main(["load", str(landing / "c.ndjson")]) == 0
    assert len(_published(lake)) == 2  # setting unset: nothing published
    assert os.environ.get("EWH_LAKE_DIR") is None
