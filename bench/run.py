"""`make bench`: the pipeline's end-to-end benchmark against a SQL floor.

For each size (default 1M and 10M events, seed 7, data cached by bench.data), on a fresh
warehouse under --work-dir, every step in its own child process (wall seconds and the peak
RSS of that child's process tree, from wait4):

  load         `ewh load` of every day file but the last (--load ewh), or, with --load sql,
               raw.events tiled in SQL from a cached `ewh load` of the base set (see README)
  full_build   `dbt build --full-refresh --exclude-resource-type unit_test` (seeds, models,
               data tests: what the daily full-refresh job runs; unit tests check SQL logic
               on fixed rows, not the data, so no refresh runs them)
  sql_floor    bench/sql_floor.sql: the same transformations as plain DuckDB SQL, one script
               (generated from dbt's compiled SQL by bench.floor_from_dbt), into its own file,
               reading the same raw.events (attached read-only)
  load_day     `ewh load` of the held-back last day (4 % of the events at seed 7: the
               generator makes its last two days ~3x busier than average)
  incremental  the same `dbt build` without --full-refresh (the hourly job) after that day

It checks that the floor's fct_sessions / dim_users / segment row counts equal dbt's, prints a
table and the ratios against the targets, and writes bench/results/latest.json (top level: the
largest size run; per-size detail under "sizes").

Quick run: `python -m bench.run --sizes 20000`.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import yaml

from bench import data as bench_data

PROJECT = Path(__file__).resolve().parent.parent
RESULTS = PROJECT / "bench" / "results"
FLOOR_SQL = PROJECT / "bench" / "sql_floor.sql"
GIB = 1024**3

TARGET_BUILD_VS_SQL = 1.25
TARGET_INCREMENTAL_VS_FULL = 0.10
TARGET_PEAK_GIB = 4.0
TARGET_SIZE = 10_000_000  # the targets are stated at this size
LARGE_LIMIT_GIB = 24.0
SQL_LOAD_ABOVE = 1_000_000  # --load auto: sizes above this are tiled in SQL
# the Dagster refresh jobs' build arguments (orchestration/defs/transform.py)
REFRESH_ARGS = ("--exclude-resource-type", "unit_test")


@dataclass(slots=True)
class Step:
    name: str
    seconds: float
    peak_rss_gib: float
    exit_code: int
    log: str
    note: str = ""


@dataclass(slots=True)
class SizeResult:
    events: int
    load_mode: str
    raw_events_initial: int = 0
    raw_events_day: int = 0
    steps: list[Step] = field(default_factory=list)
    top_models_full: list[dict[str, Any]] = field(default_factory=list)
    top_models_incremental: list[dict[str, Any]] = field(default_factory=list)
    dbt_totals_full: dict[str, float] = field(default_factory=dict)
    dbt_totals_incremental: dict[str, float] = field(default_factory=dict)
    floor_check: dict[str, Any] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)

    def seconds(self, name: str) -> float | None:
        s = self.step(name)
        return s.seconds if s else None


# ---------------------------------------------------------------------------------------------
# Child processes


def run_child(name: str, argv: list[str], log: Path, env: dict[str, str] | None = None,
              note: str = "") -> Step:
    """Run argv as a child, wait4 it: wall seconds and the peak RSS of its process tree."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        started = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT, cwd=PROJECT,
                                env={**os.environ, **(env or {})})
        _, status, usage = os.wait4(proc.pid, 0)
        seconds = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    # Linux: ru_maxrss in KiB, the max over the child and its waited-for descendants
    step = Step(name, round(seconds, 3), round(usage.ru_maxrss * 1024 / GIB, 3),
                proc.returncode, str(log), note)
    if proc.returncode != 0:
        tail = log.read_text(errors="replace")[-3000:]
        raise RuntimeError(f"step {name} failed (exit {proc.returncode}), log {log}:\n{tail}")
    return step


def _python(*args: str) -> list[str]:
    return [sys.executable, "-m", "bench.run", "step", *args]


def _dbt_bin() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


@dataclass(frozen=True, slots=True)
class DbtSetup:
    profiles_dir: Path
    target_path: Path
    log_path: Path
    warehouse: Path
    as_of: str

    def argv(self, command: str, *extra: str) -> list[str]:
        return [_dbt_bin(), command, "--project-dir", str(PROJECT),
                "--profiles-dir", str(self.profiles_dir), "--target-path", str(self.target_path),
                "--log-path", str(self.log_path), "--vars", json.dumps({"as_of": self.as_of}),
                *extra]

    def env(self) -> dict[str, str]:
        return {"EWH_WAREHOUSE": str(self.warehouse), "EWH_DBT_TARGET": "duckdb",
                "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}


def profiles_dir(work: Path, memory_limit: str | None, threads: int | None) -> Path:
    """The repo's profiles.yml, or a copy with DuckDB settings added (never edits the repo)."""
    if not memory_limit and not threads:
        return PROJECT
    profile = yaml.safe_load((PROJECT / "profiles.yml").read_text())
    output = profile["engagement_warehouse"]["outputs"]["duckdb"]
    settings = dict(output.get("settings") or {})
    if memory_limit:
        settings["memory_limit"] = memory_limit
    if threads:
        settings["threads"] = threads
    output["settings"] = settings
    folder = work / "profiles"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "profiles.yml").write_text(yaml.safe_dump(profile, sort_keys=False))
    return folder


def _dbt_timings(target: Path) -> tuple[list[dict[str, Any]], dict[str, float]]:
    """Per-node seconds from run_results.json: the top models, and totals by node kind."""
    results = json.loads((target / "run_results.json").read_text())["results"]
    totals: dict[str, float] = {}
    models = []
    for r in results:
        uid: str = r["unique_id"]
        kind = uid.split(".")[0]
        if kind == "test" and ".unit_test." in uid:
            kind = "unit_test"
        totals[kind] = round(totals.get(kind, 0.0) + float(r["execution_time"]), 3)
        if kind in ("model", "seed", "snapshot"):
            models.append({"model": uid.split(".")[-1], "seconds": round(r["execution_time"], 3),
                           "status": r["status"]})
    models.sort(key=lambda m: -m["seconds"])
    return models[:12], totals


# ---------------------------------------------------------------------------------------------
# One size


def _template_warehouse(seed: int, work: Path) -> Path:
    """A cached warehouse: `ewh load` of the base set's day files but the last."""
    base = bench_data.dataset(bench_data.BASE_EVENTS, seed)
    path = bench_data.data_root() / f"raw-e{bench_data.BASE_EVENTS}-s{seed}.duckdb"
    if not path.exists():
        tmp = path.with_suffix(".tmp.duckdb")
        tmp.unlink(missing_ok=True)
        run_child("template_load", _python("load", str(tmp), *map(str, base.day_files[:-1])),
                  work / "logs" / "template_load.log")
        tmp.rename(path)
    return path


def _count(con: duckdb.DuckDBPyConnection, table: str) -> int | None:
    try:
        return int(con.execute(f"select count(*) from {table}").fetchall()[0][0])
    except duckdb.Error:
        return None


def _floor_check(warehouse: Path, floor_db: Path) -> dict[str, Any]:
    """Row counts of dbt's marts and segments against the floor's."""
    check: dict[str, Any] = {}
    with duckdb.connect(str(warehouse), read_only=True) as dbt_con, \
            duckdb.connect(str(floor_db), read_only=True) as floor_con:
        segs = [r[0] for r in dbt_con.execute(
            "select table_name from information_schema.tables where table_schema = 'segments' "
            "and table_name like 'seg\\_%' escape '\\' order by 1").fetchall()]
        tables = ["marts.fct_sessions", "marts.dim_users"] + [f"segments.{s}" for s in segs]
        for table in tables:
            name = table.split(".")[1]
            check[name] = {"dbt": _count(dbt_con, table),
                           "floor": _count(floor_con, f"floor.{name}")}
    return check


def run_size(events: int, args: argparse.Namespace) -> SizeResult:
    mode = args.load
    if mode == "auto":
        mode = "sql" if events > SQL_LOAD_ABOVE else "ewh"
    work = Path(args.work_dir) / f"e{events}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    logs = work / "logs"
    result = SizeResult(events, mode)
    print(f"\n== {events:,} events (seed {args.seed}, load {mode}) in {work}", flush=True)

    ds = bench_data.dataset(events, args.seed, only_last_day=(mode == "sql"))
    day_file = ds.day_files[-1]
    warehouse, floor_db = work / "warehouse.duckdb", work / "sql_floor_copy.duckdb"

    # 1. load
    if mode == "ewh":
        step = run_child("load", _python("load", str(warehouse), *map(str, ds.day_files[:-1])),
                         logs / "load.log", note=f"ewh load, {len(ds.day_files) - 1} files")
    else:
        template = _template_warehouse(args.seed, work)
        step = run_child("load", _python("tile", str(template), str(warehouse), str(ds.copies)),
                         logs / "load.log",
                         note=f"SQL tiling x{ds.copies} of an ewh-loaded base (not ewh load)")
    result.steps.append(step)
    _print_step(events, step)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        [(initial,)] = con.execute("select count(*) from raw.events").fetchall()
    result.raw_events_initial = int(initial)

    # 2. full build (after an untimed `dbt parse`, as a deployed project has its target dir)
    setup = DbtSetup(profiles_dir(work, args.memory_limit, args.threads), work / "target",
                     work / "dbt-logs", warehouse, args.as_of)
    run_child("parse", setup.argv("parse"), logs / "parse.log", setup.env())
    step = run_child("full_build", setup.argv("build", *REFRESH_ARGS, "--full-refresh"),
                     logs / "full_build.log",
                     setup.env())
    result.steps.append(step)
    _print_step(events, step)
    result.top_models_full, result.dbt_totals_full = _dbt_timings(setup.target_path)

    # 3. the SQL floor, on the same raw.events (its own file; raw attached read-only)
    floor_args = [str(floor_db), "--raw-from", str(warehouse)]
    if args.memory_limit:
        floor_args += ["--memory-limit", args.memory_limit]
    if args.threads:
        floor_args += ["--threads", str(args.threads)]
    step = run_child("sql_floor", [sys.executable, "-m", "bench.sql_floor", *floor_args],
                     logs / "sql_floor.log")
    result.steps.append(step)
    _print_step(events, step)
    result.floor_check = _floor_check(warehouse, floor_db)
    for table, counts in result.floor_check.items():
        if counts["dbt"] != counts["floor"]:
            result.warnings.append(f"floor out of sync: {table} has {counts['floor']} rows in "
                                   f"the floor, {counts['dbt']} in dbt")
    if not args.keep:
        floor_db.unlink(missing_ok=True)

    # 4. one new day, loaded and built incrementally
    step = run_child("load_day", _python("load", str(warehouse), str(day_file)),
                     logs / "load_day.log", note=f"ewh load of {day_file.name}")
    result.steps.append(step)
    _print_step(events, step)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        total = int(con.execute("select count(*) from raw.events").fetchone()[0])
    result.raw_events_day = total - result.raw_events_initial
    step = run_child("incremental_build", setup.argv("build", *REFRESH_ARGS),
                     logs / "incremental_build.log",
                     setup.env())
    result.steps.append(step)
    _print_step(events, step)
    result.top_models_incremental, result.dbt_totals_incremental = _dbt_timings(setup.target_path)

    for w in result.warnings:
        print(f"WARNING: {w}", flush=True)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return result


# ---------------------------------------------------------------------------------------------
# Report


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def summarize(r: SizeResult) -> dict[str, Any]:
    full, floor = r.seconds("full_build"), r.seconds("sql_floor")
    inc = r.seconds("incremental_build")
    # the pipeline's own steps: the floor is a reference, SQL tiling is the harness's
    pipeline = ["full_build", "load_day", "incremental_build"]
    if r.load_mode == "ewh":
        pipeline.append("load")
    peak = max((s.peak_rss_gib for s in r.steps if s.name in pipeline), default=None)
    return {
        "events": r.events,
        "load_s": r.seconds("load"),
        "load_mode": r.load_mode,
        "full_build_s": full,
        "sql_floor_s": floor,
        "full_build_vs_sql": _ratio(full, floor),
        "load_day_s": r.seconds("load_day"),
        "incremental_s": inc,
        "incremental_vs_full": _ratio(inc, full),
        "peak_rss_gib": peak,
        "raw_events_initial": r.raw_events_initial,
        "raw_events_new_day": r.raw_events_day,
        "new_day_share": _ratio(r.raw_events_day, r.raw_events_initial),
        "steps": [asdict(s) for s in r.steps],
        "dbt_seconds_by_kind_full": r.dbt_totals_full,
        "dbt_seconds_by_kind_incremental": r.dbt_totals_incremental,
        "top_models_full": r.top_models_full,
        "top_models_incremental": r.top_models_incremental,
        "floor_row_counts": r.floor_check,
        "warnings": r.warnings,
    }


def verdicts(s: dict[str, Any]) -> dict[str, dict[str, Any]]:
    def check(value: float | None, target: float) -> dict[str, Any]:
        return {"value": value, "target": target,
                "pass": value is not None and value <= target}
    return {
        "full_build_vs_sql": check(s["full_build_vs_sql"], TARGET_BUILD_VS_SQL),
        "incremental_vs_full": check(s["incremental_vs_full"], TARGET_INCREMENTAL_VS_FULL),
        "peak_rss_gib": check(s["peak_rss_gib"],
                              TARGET_PEAK_GIB if s["events"] <= TARGET_SIZE else LARGE_LIMIT_GIB),
    }


def _print_step(events: int, step: Step) -> None:
    print(f"  {events:>12,}  {step.name:<18}{step.seconds:>10.2f} s{step.peak_rss_gib:>9.2f} GiB"
          f"  {step.note}", flush=True)


def print_report(summaries: list[dict[str, Any]]) -> None:
    print(f"\n{'events':>12}  {'step':<18}{'seconds':>10}{'peak GiB':>11}")
    for s in summaries:
        for step in s["steps"]:
            print(f"{s['events']:>12,}  {step['name']:<18}{step['seconds']:>10.2f}"
                  f"{step['peak_rss_gib']:>11.2f}")
    print(f"\n{'events':>12}  {'ratio':<22}{'value':>8}  {'target':<10}verdict")
    for s in summaries:
        at_target = s["events"] >= TARGET_SIZE
        for name, v in verdicts(s).items():
            shown = "n/a" if v["value"] is None else f"{v['value']:.3f}"
            bound = f"<= {v['target']}"
            verdict = ("PASS" if v["pass"] else "MISS") + ("" if at_target else " (info: the "
                                                           "targets are set at 10M)")
            print(f"{s['events']:>12,}  {name:<22}{shown:>8}  {bound:<10}{verdict}")
        print(f"{'':>12}  top models (full build): " + ", ".join(
            f"{m['model']} {m['seconds']:.1f}s" for m in s["top_models_full"][:6]))
        print(f"{'':>12}  dbt seconds by kind (full build, summed over threads): "
              f"{s['dbt_seconds_by_kind_full']}")
        for w in s["warnings"]:
            print(f"{'':>12}  WARNING: {w}")


def write_results(summaries: list[dict[str, Any]], args: argparse.Namespace, out: Path) -> dict:
    largest = max(summaries, key=lambda s: s["events"])
    doc = {
        "events": largest["events"],
        "full_build_s": largest["full_build_s"],
        "sql_floor_s": largest["sql_floor_s"],
        "full_build_vs_sql": largest["full_build_vs_sql"],
        "incremental_s": largest["incremental_s"],
        "incremental_vs_full": largest["incremental_vs_full"],
        "peak_rss_gib": largest["peak_rss_gib"],
        "load_s": largest["load_s"],
        "load_mode": largest["load_mode"],
        "verdicts": verdicts(largest),
        "sizes": {str(s["events"]): {**s, "verdicts": verdicts(s)} for s in summaries},
        "run": {
            "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "seed": args.seed, "as_of": args.as_of, "load": args.load,
            "memory_limit": args.memory_limit, "threads": args.threads,
            "cpus": os.cpu_count(), "python": platform.python_version(),
            "duckdb": duckdb.__version__,
        },
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    return doc


# ---------------------------------------------------------------------------------------------
# Child steps (python -m bench.run step ...)


def _step_main(argv: list[str]) -> None:
    name, *rest = argv
    if name == "load":
        from ewh.ingest.loader import load_files
        warehouse, *files = rest
        results = load_files(files, warehouse)
        print(json.dumps({"files": len(results), "loaded": sum(r.rows_loaded for r in results),
                          "rejected": sum(r.rows_rejected for r in results),
                          "duplicate": sum(r.rows_duplicate for r in results)}))
    elif name == "tile":
        template, warehouse, copies = rest
        print(json.dumps({"rows": bench_data.tile_raw_events(Path(template), Path(warehouse),
                                                              int(copies))}))
    else:
        raise SystemExit(f"unknown step {name}")


def parse_args(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.run",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000000,10000000",
                        help="comma-separated event counts (default: 1M and 10M)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--load", choices=("auto", "ewh", "sql"), default="auto",
                        help=f"auto: ewh load up to {SQL_LOAD_ABOVE:,} events, SQL tiling above")
    parser.add_argument("--memory-limit", default=None,
                        help="DuckDB memory_limit for dbt and the floor (via a derived profile)")
    parser.add_argument("--threads", type=int, default=None, help="DuckDB threads (same)")
    parser.add_argument("--as-of", default=bench_data.AS_OF)
    parser.add_argument("--work-dir", default="/tmp/bench-run")
    parser.add_argument("--out", default=str(RESULTS / "latest.json"))
    parser.add_argument("--keep", action="store_true", help="keep warehouses and logs")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["step"]:
        _step_main(argv[1:])
        return 0
    args = parse_args(argv)
    sizes = sorted(int(float(s)) for s in args.sizes.split(",") if s.strip())
    print(f"{'events':>12}  {'step':<18}{'seconds':>10}{'peak GiB':>11}", flush=True)
    summaries = [summarize(run_size(size, args)) for size in sizes]
    print_report(summaries)
    out = Path(args.out)
    write_results(summaries, args, out)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
