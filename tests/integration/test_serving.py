"""The serving copy: published atomically, readable by other processes throughout."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import duckdb
import pytest

from ewh.segments.catalog import SegmentSpec
from ewh.segments.serving import publish_serving_copy

SPEC = SegmentSpec(name="seg_demo", rule="Members of the demo.", owner="growth-team",
                   refresh="hourly", exported=True, description="", unique_id="model.x.seg_demo")

READER = textwrap.dedent("""
    import json, sys, time, duckdb
    path, seconds = sys.argv[1], float(sys.argv[2])
    errors, seen, reads = [], set(), 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with duckdb.connect(path, read_only=True) as con:
                members = con.execute("select count(*) from segments.seg_demo").fetchone()[0]
                listed = con.execute(
                    "select members from segments.segment_catalog").fetchone()[0]
                seen.add((members, listed))
                reads += 1
        except Exception as exc:
            errors.append(repr(exc))
    print(json.dumps({"errors": errors[:5], "error_count": len(errors), "reads": reads,
                      "seen": sorted(seen)}))
""")


def _warehouse(path: Path, members: int) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists marts; create schema if not exists segments;"
                    "create schema if not exists staging")
        con.execute("create or replace table marts.dim_users as "
                    f"select 'u' || i as user_key, 'id' || i as user_id from range({members}) t(i)")
        con.execute("create or replace table segments.seg_demo as "
                    "select user_key, user_id from marts.dim_users")
        con.execute("create or replace table staging.stg_events as select 1 as x")


def test_publish_copies_marts_and_segments_and_nothing_else(tmp_path: Path) -> None:
    warehouse, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving.duckdb"
    _warehouse(warehouse, members=7)
    result = publish_serving_copy(warehouse, serving, [SPEC], run_id="run-1")
    assert result.tables == {"marts.dim_users": 7, "segments.seg_demo": 7}
    with duckdb.connect(str(serving), read_only=True) as con:
        schemas = {r[0] for r in con.execute(
            "select distinct table_schema from information_schema.tables").fetchall()}
        catalog = con.execute("select segment, rule, members from segments.segment_catalog"
                              ).fetchall()
        run = con.execute("select run_id from segments.publish_log").fetchone()[0]
    assert schemas == {"marts", "segments"}
    assert catalog == [("seg_demo", "Members of the demo.", 7)]
    assert run == "run-1"
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_a_failed_publish_leaves_the_previous_copy_in_place(tmp_path: Path) -> None:
    warehouse, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving.duckdb"
    _warehouse(warehouse, members=3)
    publish_serving_copy(warehouse, serving, [SPEC])
    with pytest.raises(duckdb.Error):
        publish_serving_copy(tmp_path / "missing" / "nope.duckdb", serving, [SPEC])
    with duckdb.connect(str(serving), read_only=True) as con:
        assert con.execute("select count(*) from segments.seg_demo").fetchone()[0] == 3
    assert [p.name for p in tmp_path.iterdir() if "partial" in p.name] == []


def test_readers_in_another_process_never_fail_while_the_copy_is_swapped(tmp_path: Path):
    warehouse, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving.duckdb"
    _warehouse(warehouse, members=1)
    publish_serving_copy(warehouse, serving, [SPEC])
    reader = subprocess.Popen([sys.executable, "-c", READER, str(serving), "6"],
                              stdout=subprocess.PIPE, text=True)
    published = {1}
    for members in range(2, 40):
        _warehouse(warehouse, members=members)
        publish_serving_copy(warehouse, serving, [SPEC])
        published.add(members)
    out, _ = reader.communicate(timeout=60)
    report = json.loads(out)
    assert report["error_count"] == 0, report["errors"]
    assert report["reads"] > 50
    # Every read saw one consistent publish: the table and the catalog agree.
    assert all(members == listed and members in published for members, listed in report["seen"])
    assert len(report["seen"]) > 1  # the reader really did see new copies arrive
