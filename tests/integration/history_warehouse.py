"""A small warehouse with segment history: 21 generated days, loaded, built at their end by
the real dbt, then `ewh segments backfill` over every day (which publishes the serving copy).
Built once per test session (the `backfilled` fixture in conftest.py)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
from dbt_runner import run_dbt

from ewh.ingest.loader import load_files
from ewh.sample.generator import generate

EWH = str(Path(sys.executable).with_name("ewh"))
END = datetime(2026, 6, 30, 12, 0, 0)
DAYS = 21


@dataclass
class Backfilled:
    root: Path
    warehouse: Path
    env: dict[str, str]
    segments: list[str]
    at_build: set[tuple[str, str]]  # (segment, user_key) the build at END wrote
    first_day: date
    backfill: subprocess.CompletedProcess

    def __iter__(self):  # unpacks like the tuple the tests were written against
        return iter((self.root, self.warehouse, self.env, self.segments, self.at_build,
                     self.first_day, self.backfill))


def run_ewh(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([EWH, *args], env=env, capture_output=True, text=True, timeout=900,
                          stdin=subprocess.DEVNULL)


def members(con: duckdb.DuckDBPyConnection, segments: list[str]) -> set[tuple[str, str]]:
    return {(s, k) for s in segments
            for (k,) in con.execute(f"select user_key from segments.{s}").fetchall()}


def build(root: Path) -> Backfilled:
    generate(root / "landing", events=6000, seed=5, days=DAYS, end=END)
    loaded = root / "loaded.duckdb"
    load_files(sorted((root / "landing").glob("*.ndjson")), loaded)
    warehouse = root / "warehouse.duckdb"
    shutil.copy(loaded, warehouse)
    run_dbt(warehouse, root / "now", "build", "--exclude-resource-type", "unit_test",
            "--vars", f'{{as_of: "{END}"}}')
    with duckdb.connect(str(warehouse), read_only=True) as con:
        segments = [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = "
            "'segments' and table_name like 'seg\\_%' escape '\\' order by 1").fetchall()]
        at_build = members(con, segments)
    env = {**os.environ, "EWH_WAREHOUSE": str(warehouse),
           "EWH_SERVING": str(root / "serving.duckdb"),
           "EWH_EXPORTS_DIR": str(root / "exports"),
           "EWH_REPORT": str(root / "report.html"),
           "EWH_DBT_TARGET_DIR": str(root / "now" / "target")}
    first = (END - timedelta(days=DAYS)).date()
    done = run_ewh(env, "segments", "backfill", "--from", str(first), "--to", str(END.date()))
    return Backfilled(root, warehouse, env, segments, at_build, first, done)
