"""The benchmark harness (bench/): tiling rewrites and a tiny end-to-end run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from bench import data as bench_data
from bench import run as bench_run

PROJECT = Path(__file__).resolve().parents[2]
LINE = (b'{"type":"alias","messageId":"m-1","anonymousId":"a-1","previousId":"a-0",'
        b'"userId":"usr_0123456789ab","properties":{"order_id":"ord_00000000aa"},'
        b'"traits":{"email":"ana.smith1@example.com"}}\n')
REQUIRED = ("events", "full_build_s", "sql_floor_s", "full_build_vs_sql", "incremental_s",
            "incremental_vs_full", "peak_rss_gib")


def test_copy_zero_is_the_base_and_other_copies_get_every_id_prefixed() -> None:
    assert bench_data.rewrite_copy(LINE, 0) == LINE
    copy = json.loads(bench_data.rewrite_copy(LINE, 3))
    assert copy["messageId"] == "c3-m-1"
    assert copy["anonymousId"] == "c3-a-1"
    assert copy["previousId"] == "c3-a-0"
    assert copy["userId"] == "usr_c3-0123456789ab"
    assert copy["properties"]["order_id"] == "ord_c3-00000000aa"
    assert copy["traits"]["email"] == "ana.smith1+c3@example.com"


def test_sql_rewrite_matches_the_ndjson_rewrite() -> None:
    text = LINE.decode().rstrip("\n")
    sql = bench_data.sql_rewrite("t", "c")
    rows = duckdb.sql(f"select c, {sql} from (select ? as t) s, "
                      "(select range as c from range(3))", params=[text]).fetchall()
    for copy, rewritten in rows:
        assert rewritten == bench_data.rewrite_copy(LINE, copy).decode().rstrip("\n")


def test_verdicts_compare_against_the_targets() -> None:
    summary = {"events": 10_000_000, "full_build_vs_sql": 1.2, "incremental_vs_full": 0.2,
               "peak_rss_gib": 3.0}
    v = bench_run.verdicts(summary)
    assert v["full_build_vs_sql"]["pass"] and v["peak_rss_gib"]["pass"]
    assert not v["incremental_vs_full"]["pass"]


def test_harness_runs_end_to_end_at_a_tiny_size(tmp_path: Path) -> None:
    out = tmp_path / "latest.json"
    env = {**os.environ, "EWH_BENCH_DATA": str(tmp_path / "data")}
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--sizes", "5000", "--work-dir",
         str(tmp_path / "work"), "--out", str(out)],
        cwd=PROJECT, env=env, capture_output=True, text=True, timeout=300)
    seconds = time.perf_counter() - started
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    # dbt's fixed cost (parse, ~150 tests and unit tests per build) dominates at this size;
    # ~40 s on an idle 2-core machine, the bound leaves room for a busy one
    assert seconds < 180
    doc = json.loads(out.read_text())
    for key in REQUIRED:
        assert doc[key] is not None, key
    assert doc["events"] == 5000
    assert doc["sql_floor_s"] > 0 and doc["full_build_s"] > 0
    assert 0 < doc["incremental_vs_full"] < 3
    assert 0 < doc["peak_rss_gib"] < 4
    detail = doc["sizes"]["5000"]
    assert detail["warnings"] == []  # the floor's row counts equal dbt's
    assert detail["floor_row_counts"]["dim_users"]["dbt"] > 0
    assert 0 < detail["new_day_share"] < 0.1
    assert "PASS" in proc.stdout or "MISS" in proc.stdout


def test_the_sql_floor_is_generated_from_the_current_models() -> None:
    """bench/sql_floor.sql is dbt's compiled SQL of today's models: a model changed without
    `python -m bench.floor_from_dbt` fails here, before a benchmark compares stale SQL."""
    proc = subprocess.run([sys.executable, "-m", "bench.floor_from_dbt", "--check"],
                          cwd=PROJECT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
