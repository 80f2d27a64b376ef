"""Loader throughput against DuckDB's own read_json on the same NDJSON file.

`python -m bench.loader [--events N] [--repeat R]`: generates N events (ewh.sample.generator, one
file), then times, R times alternating (the medians make the ratio),
1. read_json: `create table as select * from read_json(file)` into a fresh DuckDB file, and
2. `ewh load`: ewh.ingest.loader.load_files into a fresh warehouse (checksum, contract check in SQL,
   dedupe, rejections, manifest: everything a real load does), with the reader it chose.
Prints the runs, a table and the ratio (loader throughput / read_json throughput; target >= 0.8) and
writes bench/results/loader.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from ewh.ingest.loader import load_files
from ewh.sample.generator import generate

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


def run(events: int, repeat: int = 3) -> dict[str, Any]:
    """Times both `repeat` times, alternating, on one file; the medians make the ratio.

    A shared 2-core machine moves single timings by +-15%; alternating the two and taking each
    one's median keeps that noise out of the ratio without hiding a real difference.
    """
    baselines, ours = [], []
    with tempfile.TemporaryDirectory(prefix="ewh-bench-loader-") as tmp:
        folder = Path(tmp)
        path = _dataset(folder, events)
        size_mb = path.stat().st_size / 1e6
        for attempt in range(repeat):
            baselines.append(_time_read_json(path, folder / f"read_json-{attempt}.duckdb"))
            seconds, loaded, reader = _time_loader(path, folder / f"warehouse-{attempt}.duckdb")
            ours.append(seconds)
            for db in folder.glob(f"*-{attempt}.duckdb*"):
                db.unlink()
    baseline, loader = statistics.median(baselines), statistics.median(ours)
    result = {
        "events": events, "file_mb": round(size_mb, 1), "rows_loaded": loaded, "reader": reader,
        "repeat": repeat, "read_json_runs_s": [round(b, 3) for b in baselines],
        "loader_runs_s": [round(o, 3) for o in ours],
        "read_json_s": round(baseline, 3), "loader_s": round(loader, 3),
        "read_json_events_per_s": round(events / baseline),
        "loader_events_per_s": round(events / loader),
        "ratio": round(baseline / loader, 3), "target_ratio": TARGET_RATIO,
    }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed pairs (medians are used)")
    args = parser.parse_args()
    r = run(args.events, args.repeat)
    print(f"loader bench: {r['events']:,} events, {r['file_mb']} MB NDJSON "
          f"(ewh load read it with: {r['reader']})")
    print(f"median of {r['repeat']} alternating runs each (read_json {r['read_json_runs_s']} s, "
          f"ewh load {r['loader_runs_s']} s)")
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
