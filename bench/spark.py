"""`make bench` (informative, no target): the same builds on local Spark beside DuckDB.

For one size (default 1M events, seed 7, the data bench.data caches), on fresh folders under
--work-dir:

  load               `load_files` of every day file but the last into DuckDB's raw tables,
                     publishing the lake Spark reads (EWH_LAKE_DIR) at the same time
  duckdb_full        `dbt build --full-refresh --exclude-resource-type unit_test` on DuckDB
  spark_full         the same on Spark (local session, ewh.spark.dbt_session: one JVM for
                     every Spark command; its start-up is in spark_start)
  load_day           the last day, loaded and published
  duckdb_incremental `dbt build --exclude-resource-type unit_test` after that day
  spark_incremental  the same on Spark

Spark runs with the profile's real-data settings (not EWH_SPARK_SMALL_DATA). A sanity check
compares the row counts of fct_sessions, dim_users and segment_memberships on both engines.
Writes bench/results/spark.json.

Quick run: `python -m bench.spark --events 20000`.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from bench import data as bench_data
from ewh.ingest.loader import load_files
from ewh.spark.dbt_session import SparkDbtSession

PROJECT = Path(__file__).resolve().parent.parent
RESULTS = PROJECT / "bench" / "results"
REFRESH_ARGS = ("--exclude-resource-type", "unit_test")
COUNTED = ("marts.fct_sessions", "marts.dim_users", "segments.segment_memberships")


def _duckdb_dbt(warehouse: Path, work: Path, *args: str) -> float:
    dbt = Path(sys.executable).with_name("dbt")
    env = {**os.environ, "EWH_WAREHOUSE": str(warehouse), "EWH_DBT_TARGET": "duckdb"}
    started = time.monotonic()
    subprocess.run([str(dbt), *args, "--project-dir", str(PROJECT), "--profiles-dir",
                    str(PROJECT), "--target-path", str(work / "duck-target"), "--log-path",
                    str(work / "duck-logs")], env=env, check=True, capture_output=True)
    return time.monotonic() - started


def _counts(warehouse: Path, spark_warehouse: Path) -> dict[str, dict[str, int]]:
    counts = {}
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for table in COUNTED:
            schema, name = table.split(".")
            folder = spark_warehouse / f"{schema}.db" / name
            [(duck,)] = con.execute(f"select count(*) from {table}").fetchall()
            [(spark,)] = con.execute(
                f"select count(*) from read_parquet('{folder}/**/*.parquet')").fetchall()
            counts[table] = {"duckdb": int(duck), "spark": int(spark)}
    return counts


def run(events: int, seed: int, work: Path, as_of: str) -> dict:
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    ds = bench_data.dataset(events, seed)
    warehouse, lake, spark_warehouse = work / "warehouse.duckdb", work / "lake", work / "spark"
    landing = work / "landing"
    landing.mkdir()
    seconds: dict[str, float] = {}
    vars_ = ("--vars", json.dumps({"as_of": as_of}))

    started = time.monotonic()
    load_files(ds.day_files[:-1], warehouse, lake_dir=lake, landing_dir=landing)
    seconds["load"] = time.monotonic() - started
    seconds["duckdb_full"] = _duckdb_dbt(warehouse, work, "build", *REFRESH_ARGS,
                                         "--full-refresh", *vars_)
    print(f"load {seconds['load']:.1f} s, duckdb full {seconds['duckdb_full']:.1f} s",
          flush=True)
    started = time.monotonic()
    with SparkDbtSession(spark_warehouse, lake, work / "spark.log") as spark:
        seeded = spark.dbt("seed", "--target-path", str(work / "spark-target"))
        seconds["spark_start_and_seeds"] = time.monotonic() - started
        seconds["spark_full"] = spark.dbt("build", *REFRESH_ARGS, *vars_, "--target-path",
                                          str(work / "spark-target")).seconds + seeded.seconds
        print(f"spark full {seconds['spark_full']:.1f} s", flush=True)
        started = time.monotonic()
        load_files(ds.day_files[-1:], warehouse, lake_dir=lake, landing_dir=landing)
        seconds["load_day"] = time.monotonic() - started
        seconds["duckdb_incremental"] = _duckdb_dbt(warehouse, work, "build", *REFRESH_ARGS,
                                                    *vars_)
        seconds["spark_incremental"] = spark.dbt("build", *REFRESH_ARGS, *vars_,
                                                 "--target-path",
                                                 str(work / "spark-target")).seconds
    result = {
        "events": ds.events, "seed": seed, "as_of": as_of,
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "seconds": {k: round(v, 1) for k, v in seconds.items()},
        "spark_vs_duckdb": {
            "full": round(seconds["spark_full"] / seconds["duckdb_full"], 2),
            "incremental": round(seconds["spark_incremental"] / seconds["duckdb_incremental"],
                                 2)},
        "incremental_vs_full": {
            "duckdb": round(seconds["duckdb_incremental"] / seconds["duckdb_full"], 3),
            "spark": round(seconds["spark_incremental"] / seconds["spark_full"], 3)},
        "row_counts": _counts(warehouse, spark_warehouse),
    }
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--as-of", default=bench_data.AS_OF)
    parser.add_argument("--work-dir", default="/tmp/ewh-bench-spark")
    parser.add_argument("--out", default=str(RESULTS / "spark.json"))
    args = parser.parse_args(argv)
    result = run(args.events, args.seed, Path(args.work_dir), args.as_of)
    for step, value in result["seconds"].items():
        print(f"{step:24} {value:8.1f} s")
    print(f"spark / duckdb: full {result['spark_vs_duckdb']['full']}x, incremental "
          f"{result['spark_vs_duckdb']['incremental']}x")
    for table, counts in result["row_counts"].items():
        same = "equal" if counts["duckdb"] == counts["spark"] else "DIFFERENT"
        print(f"{table}: duckdb {counts['duckdb']:,} spark {counts['spark']:,} ({same})")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    return 0 if all(c["duckdb"] == c["spark"] for c in result["row_counts"].values()) else 1


if __name__ == "__main__":
    sys.exit(main())
