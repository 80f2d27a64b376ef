"""Loader throughput against DuckDB's own read_json on the same NDJSON file.

`python -m bench.loader [--events N]`: generates N events (ewh.generator, one file), then times
1. read_json: `create table as select * from read_json(file)` into a fresh DuckDB file, and
2. `ewh load`: ewh.loader.load_files into a fresh warehouse (checksum, contract check in SQL,
   dedupe, rejections, manifest: everything a real load does), with the reader it chose.
Prints a table and the ratio (loader throughput / read_json throughput; target >= 0.8) and
writes bench/results/loader.json.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from ewh.generator import generate
from ewh.loader import load_files

RESULTS = Path(__file__).resolve().parent / "results"
TARGET_RATIO = 0.8


def _dataset(folder: Path, events: int) -> Path:
    generate(folder / "gen", events=events, seed=11, end=datetime(2026, 10, 1), days=30)
    single = folder / "events.ndjson"
    with single.open("wb") as out:
        for part in sorted((folder / "gen").glob("events-*.ndjson")):
            out.write(part.read_bytes())
    return single


def _time_read_json(path: Path, db: Path) -> float:
    started = time.perf_counter()
    with duckdb.connect(str(db)) as con:
        con.execute("create table events as select * from read_json(?, "
                    "format = 'newline_delimited', ignore_errors = true)", [str(path)])
    return time.perf_counter() - started


def _time_loader(path: Path, db: Path) -> tuple[float, int, str | None]:
    started = time.perf_counter()
    [result] = load_files([path], db)
    return time.perf_counter() - started, result.rows_loaded, result.reader


def run(events: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="ewh-bench-loader-") as tmp:
        folder = Path(tmp)
        path = _dataset(folder, events)
        size_mb = path.stat().st_size / 1e6
        baseline = _time_read_json(path, folder / "read_json.duckdb")
        ours, loaded, reader = _time_loader(path, folder / "warehouse.duckdb")
    result = {
        "events": events, "file_mb": round(size_mb, 1), "rows_loaded": loaded, "reader": reader,
        "read_json_s": round(baseline, 3), "loader_s": round(ours, 3),
        "read_json_events_per_s": round(events / baseline),
        "loader_events_per_s": round(events / ours),
        "ratio": round(baseline / ours, 3), "target_ratio": TARGET_RATIO,
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    args = parser.parse_args()
    r = run(args.events)
    print(f"loader bench: {r['events']:,} events, {r['file_mb']} MB NDJSON "
          f"(ewh load read it with: {r['reader']})")
    print(f"{'':<12}{'seconds':>10}{'events/s':>14}{'MB/s':>10}")
    for name, key in (("read_json", "read_json"), ("ewh load", "loader")):
        seconds = r[f"{key}_s"]
        print(f"{name:<12}{seconds:>10.2f}{r[f'{key}_events_per_s']:>14,}"
              f"{r['file_mb'] / seconds:>10.1f}")
    verdict = "meets" if r["ratio"] >= TARGET_RATIO else "misses"
    print(f"ratio (ewh load / read_json throughput): {r['ratio']:.2f}x "
          f"({verdict} the {TARGET_RATIO}x target)")
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "loader.json").write_text(json.dumps(r, indent=2) + "\n")


if __name__ == "__main__":
    main()
