"""Run bench/sql_floor.sql on a warehouse: `python -m bench.sql_floor WAREHOUSE [--as-of ...]`.

One DuckDB connection, the statements in order, the seconds of each printed (slowest first)
and the total. The bench harness runs this in a child process to time it and take its peak RSS.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import duckdb

from bench.data import AS_OF
from ewh.ingest.raw_tables import PREDICTION_SCORES_DDL

HERE = Path(__file__).resolve().parent
FLOOR_SQL = HERE / "sql_floor.sql"
SEED_DIR = HERE.parent / "seeds"


def statements(as_of: str, text: str | None = None) -> list[tuple[str, str]]:
    """(table, SQL) per statement of the script (bench/sql_floor.sql unless `text`),
    placeholders filled: __AS_OF__ and __SEED_DIR__ (the project's seeds/)."""
    text = FLOOR_SQL.read_text() if text is None else text
    text = text.replace("__AS_OF__", as_of).replace("__SEED_DIR__", SEED_DIR.as_posix())
    out = []
    for chunk in text.split(";\n"):
        lines = [ln for ln in chunk.splitlines() if not ln.lstrip().startswith("--")]
        sql = "\n".join(lines).strip()
        if not sql:
            continue
        match = re.match(r"create or replace table floor\.(\w+)", sql)
        name = match.group(1) if match else sql.split("\n")[0][:40]
        out.append((name, sql))
    return out


def run(warehouse: Path, as_of: str = AS_OF, memory_limit: str | None = None,
        threads: int | None = None, raw_from: Path | None = None) -> dict[str, float]:
    """Run the script on `warehouse`; raw_from: read raw.events from that warehouse instead
    (attached read-only; saves copying a big raw layer)."""
    timings: dict[str, float] = {}
    con = duckdb.connect(str(warehouse))
    try:
        if raw_from is not None:
            con.execute(f"attach '{raw_from}' as raw_source (read_only)")
            con.execute("create schema if not exists raw")
            con.execute("create or replace view raw.events as select * from raw_source.raw.events")
        # the floor, like a build with no published model, reads empty prediction scores
        con.execute(PREDICTION_SCORES_DDL)
        if memory_limit:
            con.execute(f"set memory_limit = '{memory_limit}'")
        if threads:
            con.execute(f"set threads = {int(threads)}")
        for name, sql in statements(as_of):
            started = time.perf_counter()
            con.execute(sql)
            timings[name] = round(time.perf_counter() - started, 3)
    finally:
        con.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("warehouse")
    parser.add_argument("--as-of", default=AS_OF)
    parser.add_argument("--memory-limit")
    parser.add_argument("--threads", type=int)
    parser.add_argument("--raw-from", help="read raw.events from this warehouse (read-only)")
    args = parser.parse_args()
    started = time.perf_counter()
    timings = run(Path(args.warehouse), args.as_of, args.memory_limit, args.threads,
                  Path(args.raw_from) if args.raw_from else None)
    total = time.perf_counter() - started
    for name, seconds in sorted(timings.items(), key=lambda kv: -kv[1])[:12]:
        print(f"{name:<36}{seconds:>9.2f} s")
    print(f"{'total':<36}{total:>9.2f} s")
    print(json.dumps({"total_s": round(total, 3), "statements": timings}))


if __name__ == "__main__":
    main()
