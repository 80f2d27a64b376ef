"""Incremental builds equal a full refresh.

A generated dataset is replayed into warehouse A one arrival batch at a time (day files are
split by receivedAt, so late and out-of-order events arrive in later batches), with an
incremental `dbt build` after each batch at a fixed sequence of as_of values. The last batch also
carries hand-made events: one that occurred long before the lookback window
(event_lookback_hours) and an identify that retroactively links an old anonymous device to a
user. Warehouse B loads everything at once and runs the same as_of sequence as full refreshes
(segment_membership_history is full_refresh=false, so it builds up the same history). Every
table in marts and segments must be equal, EXCEPT ALL both ways, ignoring load timestamps.
The two sequences run in parallel (separate warehouses).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ewh.generator import generate
from ewh.loader import load_files

PROJECT_DIR = Path(__file__).resolve().parents[2]
END = datetime(2026, 10, 1)
DAYS = 20
BATCHES = 4
IGNORED_COLUMNS = {"loaded_at", "load_id"}


def _dbt(warehouse: Path, work_dir: Path, *args: str) -> None:
    local = Path(sys.executable).with_name("dbt")
    executable = str(local) if local.exists() else (shutil.which("dbt") or "dbt")
    env = {**os.environ, "EWH_WAREHOUSE": str(warehouse), "EWH_DBT_TARGET": "duckdb"}
    command = [
        executable, *args,
        "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
        "--target-path", str(work_dir / "target"), "--log-path", str(work_dir / "logs"),
    ]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"dbt {args} failed:\n{result.stdout[-6000:]}"


def _build(warehouse: Path, work_dir: Path, as_of: datetime, *extra: str) -> None:
    _dbt(warehouse, work_dir, "build", "--exclude-resource-type", "unit_test",
         "--vars", json.dumps({"as_of": as_of.strftime("%Y-%m-%d %H:%M:%S")}), *extra)


def _iso(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _odd_events(landing: Path, received: datetime) -> list[dict[str, Any]]:
    """A very late page view and a retroactive identify of an anonymous device seen early on."""
    first_file = sorted(landing.glob("*.ndjson"))[0]
    anonymous = None
    for line in first_file.read_text().splitlines():
        message = json.loads(line)
        if message.get("anonymousId") and not message.get("userId") and message.get("type") == "page":
            anonymous = message
            break
    assert anonymous is not None
    occurred = received - timedelta(days=10)
    late = {**anonymous, "messageId": "equiv-late-1", "timestamp": _iso(occurred),
            "sentAt": _iso(received), "receivedAt": _iso(received)}
    identify = {"messageId": "equiv-identify-1", "type": "identify",
                "anonymousId": anonymous["anonymousId"], "userId": "usr_equiv_retro",
                "timestamp": _iso(received), "sentAt": _iso(received),
                "receivedAt": _iso(received), "context": anonymous.get("context", {})}
    return [late, identify]


def _tables(con: duckdb.DuckDBPyConnection) -> list[str]:
    rows = con.sql(
        "select table_schema || '.' || table_name from information_schema.tables "
        "where table_schema in ('marts', 'segments') and table_type = 'BASE TABLE' order by 1"
    ).fetchall()
    return [r[0] for r in rows]


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("equivalence")
    landing = work / "landing"
    generate(landing, events=6000, seed=5, days=DAYS, end=END)
    files = sorted(landing.glob("*.ndjson"))
    odd = work / "odd" / "events-odd.ndjson"
    odd.parent.mkdir()
    odd.write_text("".join(json.dumps(m) + "\n" for m in _odd_events(landing, END - timedelta(hours=6))))
    per_batch = -(-len(files) // BATCHES)
    batches = [files[i:i + per_batch] for i in range(0, len(files), per_batch)]
    batches[-1] = [*batches[-1], odd]
    as_ofs = [END - timedelta(days=DAYS) + timedelta(days=per_batch * (i + 1))
              for i in range(len(batches) - 1)] + [END]
    inc, full = work / "inc.duckdb", work / "full.duckdb"

    def incremental() -> None:
        for batch, as_of in zip(batches, as_ofs, strict=True):
            load_files(batch, inc)
            _build(inc, work / "inc", as_of)

    def full_refresh() -> None:
        load_files([f for batch in batches for f in batch], full)
        for as_of in as_ofs:
            _build(full, work / "full", as_of, "--full-refresh")

    with ThreadPoolExecutor(2) as pool:
        for future in [pool.submit(incremental), pool.submit(full_refresh)]:
            future.result()
    return {"inc": inc, "full": full}


def test_every_mart_and_segment_table_equals_a_full_refresh(replay: dict[str, Any]) -> None:
    with duckdb.connect(":memory:") as con:
        con.execute(f"attach '{replay['inc']}' as inc (read_only)")
        con.execute(f"attach '{replay['full']}' as full_db (read_only)")
        con.execute("use inc")
        tables = _tables(con)
        con.execute("use full_db")
        assert _tables(con) == tables
        assert "marts.fct_sessions" in tables and "segments.segment_membership_history" in tables
        differences = {}
        for table in tables:
            schema, name = table.split(".")
            columns = [r[0] for r in con.sql(
                "select column_name from information_schema.columns where table_catalog = 'inc' "
                f"and table_schema = '{schema}' and table_name = '{name}' order by ordinal_position"
            ).fetchall() if r[0] not in IGNORED_COLUMNS]
            cols = ", ".join(f'"{c}"' for c in columns)
            a, b = f"inc.{table}", f"full_db.{table}"
            only_inc = con.sql(f"select count(*) from (select {cols} from {a} except all "
                               f"select {cols} from {b})").fetchall()[0][0]
            only_full = con.sql(f"select count(*) from (select {cols} from {b} except all "
                                f"select {cols} from {a})").fetchall()[0][0]
            if only_inc or only_full:
                differences[table] = (only_inc, only_full)
        assert differences == {}


def test_the_replay_exercised_late_and_retroactive_data(replay: dict[str, Any]) -> None:
    with duckdb.connect(str(replay["inc"]), read_only=True) as con:
        assert con.sql("select count(*) from marts.fct_sessions").fetchall()[0][0] > 100
        [(late,)] = con.sql(
            "select count(*) from intermediate.int_events_stitched where message_id = 'equiv-late-1'"
        ).fetchall()
        assert late == 1
        [(linked,)] = con.sql(
            "select count(*) from intermediate.int_events_stitched "
            "where user_key = 'usr_equiv_retro' and not is_identified"
        ).fetchall()
        assert linked >= 1
