"""Run the hand-written SQL floor (bench/sql_floor.sql) on NDJSON day files.

    python -m bench.sql_floor DB FILE... [--step load|build|all] [--as-of ...]
        [--memory-limit 3GB] [--threads 2]

`load` runs the script's first statement (read_json of the files into floor.events_raw),
`build` every other one on a DB the load wrote, `all` both in one connection. Prints each
statement's seconds (slowest first), the total, and a last line of JSON
{"step", "total_s", "statements"}. The bench harness runs `load` and `build` as two child
processes, so each gets its own wall time and peak RSS.
"""

from __future__ import annotations

import argparse
import json
import re
import time
from pathlib import Path

import duckdb

from bench.data import AS_OF

HERE = Path(__file__).resolve().parent
FLOOR_SQL = HERE / "sql_floor.sql"
SEED_DIR = HERE.parent / "seeds"
LOAD_TABLE = "events_raw"  # the script's first statement: the load step


def _sql_string(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def statements(as_of: str, files: list[Path], text: str | None = None) -> list[tuple[str, str]]:
    """(table, SQL) per statement of the script, placeholders filled: __FILES__ (a list
    literal of the files), __AS_OF__, __SEED_DIR__ (the project's seeds/)."""
    text = FLOOR_SQL.read_text() if text is None else text
    listed = "[" + ", ".join(_sql_string(Path(f).as_posix()) for f in files) + "]"
    text = (text.replace("__FILES__", listed).replace("__AS_OF__", as_of)
            .replace("__SEED_DIR__", SEED_DIR.as_posix()))
    out = []
    for chunk in text.split(";\n"):
        lines = [ln for ln in chunk.splitlines() if not ln.lstrip().startswith("--")]
        sql = "\n".join(lines).strip()
        if not sql:
            continue
        match = re.match(r"create or replace table floor\.(\w+)", sql)
        out.append((match.group(1) if match else sql.split("\n")[0][:40], sql))
    if not out or out[0][0] != LOAD_TABLE:
        raise ValueError(f"the floor's first statement must create floor.{LOAD_TABLE}")
    return out


def run(db: Path, files: list[Path], step: str = "all", as_of: str = AS_OF,
        memory_limit: str | None = None, threads: int | None = None) -> dict[str, float]:
    """Run the load statement, the build statements, or both on `db`; seconds per table."""
    todo = statements(as_of, files)
    if step == "load":
        todo = todo[:1]
    elif step == "build":
        todo = todo[1:]
    timings: dict[str, float] = {}
    con = duckdb.connect(str(db))
    try:
        con.execute("set TimeZone = 'UTC'")  # offsets in the files convert to UTC timestamps
        if memory_limit:
            con.execute(f"set memory_limit = '{memory_limit}'")
        if threads:
            con.execute(f"set threads = {int(threads)}")
        con.execute("create schema if not exists floor")
        for name, sql in todo:
            started = time.perf_counter()
            con.execute(sql)
            timings[name] = round(time.perf_counter() - started, 3)
    finally:
        con.close()
    return timings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("db")
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--step", choices=("load", "build", "all"), default="all")
    parser.add_argument("--as-of", default=AS_OF)
    parser.add_argument("--memory-limit")
    parser.add_argument("--threads", type=int)
    args = parser.parse_args()
    started = time.perf_counter()
    timings = run(Path(args.db), args.files, args.step, args.as_of, args.memory_limit,
                  args.threads)
    total = time.perf_counter() - started
    for name, seconds in sorted(timings.items(), key=lambda kv: -kv[1])[:12]:
        print(f"{name:<36}{seconds:>9.2f} s")
    print(f"{'total':<36}{total:>9.2f} s")
    print(json.dumps({"step": args.step, "total_s": round(total, 3), "statements": timings}))


if __name__ == "__main__":
    main()
