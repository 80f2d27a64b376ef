"""`make bench`: the pipeline's end-to-end benchmark against a hand-written SQL floor.

For each size (default 1M and 10M events, seed 7, data cached by bench.data), on a fresh
warehouse under --work-dir, every step in its own child process (wall seconds and the peak
RSS of that child's process tree, from wait4):

  load           `ewh load` of every day file but the last (--load ewh), or, with --load sql
                 (50M), raw.events tiled in SQL from a cached `ewh load` of the base set
  full_build     `dbt build --full-refresh --exclude-resource-type unit_test` (seeds, models,
                 data tests: what the daily full-refresh job runs)
  floor_load     bench/sql_floor.sql's first statement: read_json (explicit columns) of the
                 same day files into a table of the floor's own DuckDB file
  floor_build    the rest of the hand-written floor: dedupe, skew, stitching, sessions, user
                 features, the 18 segments (bench/sql_floor.sql; not derived from the models)
  load_day       `ewh load` of the held-back last day
  incremental    the same `dbt build` without --full-refresh after that day, with the hourly
                 job's test scope (orchestration.defs.transform.UNPUBLISHED_TESTS left out)

It checks that the floor's fct_sessions / dim_users / segment rows equal dbt's (row counts and
member sets; a mismatch is a WARNING), reports each measure as a ratio to the floor's
corresponding step (load / floor_load, full_build / floor_build, end to end / the floor's
whole script, incremental / full build, peak memory), reads the collector's figures from
bench/results/collector.json when present, and writes bench/results/latest.json (top level:
the largest size run; per-size detail under "sizes").

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
from ewh.common.refresh_scope import UNPUBLISHED_TESTS

PROJECT = Path(__file__).resolve().parent.parent
RESULTS = PROJECT / "bench" / "results"
GIB = 1024**3

# issue #15's targets, stated at TARGET_SIZE on 2 cores (smaller sizes: information only)
TARGET_END_TO_END_VS_FLOOR = 2.0
TARGET_LOAD_VS_FLOOR = 1.5
TARGET_LOAD_PEAK_GIB = 2.0
TARGET_BUILD_PEAK_GIB = 3.0
TARGET_INCREMENTAL_VS_FULL = 0.10
TARGET_COLLECTOR_EVENTS_PER_S = 50_000
TARGET_COLLECTOR_P99_MS = 50.0
TARGET_SIZE = 10_000_000
LARGE_LIMIT_GIB = 24.0
# --load auto: a real `ewh load` up to this size (10M is ~7.6 GB of NDJSON), SQL tiling above
# (50M would be ~38 GB); the floor needs the NDJSON, so it runs only with a real load
SQL_LOAD_ABOVE = 10_000_000
COLLECTOR_JSON = RESULTS / "collector.json"
# the Dagster refresh jobs' build arguments (orchestration/defs/transform.py)
REFRESH_ARGS = ("--exclude-resource-type", "unit_test")
# what an hourly (incremental) refresh also leaves out (ewh/common/refresh_scope.py)
HOURLY_ARGS = ("--exclude", " ".join(UNPUBLISHED_TESTS))


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
    top_models_noop: list[dict[str, Any]] = field(default_factory=list)
    noop_skipped: bool = False
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

    def ewh_build(self, *extra: str) -> list[str]:
        """`ewh build`: dbt build, skipped when nothing it reads changed (what an operator runs)."""
        return [str(Path(sys.executable).with_name("ewh")), *self.argv("build", *extra)[1:]]

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


# what identifies a row of each compared table in both (session ids are dbt's hashes: a
# session is compared by its device, start and size instead)
_SESSION_KEY = "device_id, started_at, event_count"


def floor_check(warehouse: Path, floor_db: Path) -> dict[str, Any]:
    """fct_sessions, dim_users and every seg_* of dbt against the floor: row counts, and the
    rows (user_key; sessions by device, start and events) in one and not the other."""
    check: dict[str, Any] = {}
    with duckdb.connect() as con:
        con.execute(f"attach '{warehouse}' as dbt (read_only)")
        con.execute(f"attach '{floor_db}' as floor_db (read_only)")
        segs = [r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_catalog = 'dbt' "
            "and table_schema = 'segments' and table_name like 'seg\\_%' escape '\\' "
            "order by 1").fetchall()]
        tables = [("marts", "fct_sessions", _SESSION_KEY), ("marts", "dim_users", "user_key")]
        tables += [("segments", seg, "user_key") for seg in segs]
        for schema, name, key in tables:
            entry: dict[str, Any] = {"dbt": _count(con, f"dbt.{schema}.{name}"),
                                     "floor": _count(con, f"floor_db.floor.{name}")}
            if entry["dbt"] is not None and entry["floor"] is not None:
                ours, theirs = f"dbt.{schema}.{name}", f"floor_db.floor.{name}"
                for side, (left, right) in {"only_dbt": (ours, theirs),
                                            "only_floor": (theirs, ours)}.items():
                    entry[side] = _count(con, f"(select {key} from {left} except all "
                                              f"select {key} from {right})")
            check[name] = entry
    return check


def floor_warnings(check: dict[str, Any]) -> list[str]:
    return [f"floor out of sync: {table} has {c['floor']} rows in the floor, {c['dbt']} in dbt"
            f" ({c.get('only_dbt')} only in dbt, {c.get('only_floor')} only in the floor)"
            for table, c in check.items()
            if c["dbt"] != c["floor"] or c.get("only_dbt") or c.get("only_floor")]


def _floor_argv(db: Path, files: list[Path], step: str, args: argparse.Namespace) -> list[str]:
    argv = [sys.executable, "-m", "bench.sql_floor", str(db), *map(str, files), "--step", step,
            "--as-of", args.as_of]
    if args.memory_limit:
        argv += ["--memory-limit", args.memory_limit]
    if args.threads:
        argv += ["--threads", str(args.threads)]
    return argv


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
    warehouse, floor_db = work / "warehouse.duckdb", work / "sql_floor.duckdb"

    def timed(step: Step) -> None:
        result.steps.append(step)
        _print_step(events, step)

    # 1. load
    if mode == "ewh":
        timed(run_child("load", _python("load", str(warehouse), *map(str, ds.day_files[:-1])),
                        logs / "load.log", note=f"ewh load, {len(ds.day_files) - 1} files"))
    else:
        template = _template_warehouse(args.seed, work)
        timed(run_child("load", _python("tile", str(template), str(warehouse), str(ds.copies)),
                        logs / "load.log",
                        note=f"SQL tiling x{ds.copies} of an ewh-loaded base (not ewh load)"))
    with duckdb.connect(str(warehouse), read_only=True) as con:
        [(initial,)] = con.execute("select count(*) from raw.events").fetchall()
    result.raw_events_initial = int(initial)

    # 2. full build (after an untimed `dbt parse`, as a deployed project has its target dir)
    setup = DbtSetup(profiles_dir(work, args.memory_limit, args.threads), work / "target",
                     work / "dbt-logs", warehouse, args.as_of)
    run_child("parse", setup.argv("parse"), logs / "parse.log", setup.env())
    timed(run_child("full_build", setup.ewh_build(*REFRESH_ARGS, "--full-refresh"),
                    logs / "full_build.log", setup.env()))
    result.top_models_full, result.dbt_totals_full = _dbt_timings(setup.target_path)

    # 3. the hand-written floor on the same day files (it needs the NDJSON: not with tiling)
    if mode == "ewh":
        files = ds.day_files[:-1]
        timed(run_child("floor_load", _floor_argv(floor_db, files, "load", args),
                        logs / "floor_load.log", note="read_json into a table"))
        timed(run_child("floor_build", _floor_argv(floor_db, files, "build", args),
                        logs / "floor_build.log", note="bench/sql_floor.sql"))
        result.floor_check = floor_check(warehouse, floor_db)
        result.warnings += floor_warnings(result.floor_check)
        if not args.keep:
            floor_db.unlink(missing_ok=True)
    else:
        result.warnings.append("no floor: raw.events was tiled in SQL (no NDJSON to read)")

    # 4. one new day, loaded and built incrementally
    timed(run_child("load_day", _python("load", str(warehouse), str(day_file)),
                    logs / "load_day.log", note=f"ewh load of {day_file.name}"))
    with duckdb.connect(str(warehouse), read_only=True) as con:
        total = int(con.execute("select count(*) from raw.events").fetchone()[0])
    result.raw_events_day = total - result.raw_events_initial
    timed(run_child("incremental_build", setup.ewh_build(*REFRESH_ARGS, *HOURLY_ARGS),
                    logs / "incremental_build.log", setup.env()))
    result.top_models_incremental, result.dbt_totals_incremental = _dbt_timings(setup.target_path)

    # 5. the same refresh again with nothing new (the next hourly run, as_of unchanged):
    # `ewh build` finds the inputs unchanged and skips dbt
    timed(run_child("noop_build", setup.ewh_build(*REFRESH_ARGS, *HOURLY_ARGS),
                    logs / "noop_build.log", setup.env(), note="nothing new, same as_of"))
    result.noop_skipped = "ewh build: skipped" in (logs / "noop_build.log").read_text()
    # 6. the same with plain dbt, which cannot skip: what each model costs with nothing new
    timed(run_child("noop_dbt_build", setup.argv("build", *REFRESH_ARGS, *HOURLY_ARGS),
                    logs / "noop_dbt_build.log", setup.env(), note="plain dbt build, same as_of"))
    result.top_models_noop, _ = _dbt_timings(setup.target_path)

    for w in result.warnings:
        print(f"WARNING: {w}", flush=True)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return result


# ---------------------------------------------------------------------------------------------
# Report


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _sum(*values: float | None) -> float | None:
    return None if any(v is None for v in values) else round(sum(values), 3)  # type: ignore[arg-type]


def collector_figures(path: Path = COLLECTOR_JSON) -> dict[str, Any] | None:
    """The collector's throughput and p99 (bench.collector writes them), when measured."""
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return {"events_per_s": doc.get("events_per_s"), "p99_ms": doc.get("p99_ms"),
            "source": str(path.relative_to(PROJECT)) if path.is_relative_to(PROJECT)
            else str(path)}


def summarize(r: SizeResult) -> dict[str, Any]:
    def peak(name: str) -> float | None:
        step = r.step(name)
        return step.peak_rss_gib if step else None

    load, full, inc = r.seconds("load"), r.seconds("full_build"), r.seconds("incremental_build")
    floor_load, floor_build = r.seconds("floor_load"), r.seconds("floor_build")
    end_to_end, floor_total = _sum(load, full), _sum(floor_load, floor_build)
    load_peak = peak("load") if r.load_mode == "ewh" else None  # SQL tiling is the harness's
    build_peak = max((p for p in (peak("full_build"), peak("incremental_build"),
                                  peak("noop_build"), peak("noop_dbt_build")) if p is not None),
                     default=None)
    pipeline_peak = max((p for p in (load_peak, build_peak, peak("load_day")) if p is not None),
                        default=None)
    return {
        "events": r.events,
        "load_mode": r.load_mode,
        "load_s": load,
        "full_build_s": full,
        "end_to_end_s": end_to_end,
        "floor_load_s": floor_load,
        "floor_build_s": floor_build,
        "floor_end_to_end_s": floor_total,
        "load_vs_floor": _ratio(load, floor_load),
        "build_vs_floor": _ratio(full, floor_build),
        "end_to_end_vs_floor": _ratio(end_to_end, floor_total),
        "load_day_s": r.seconds("load_day"),
        "incremental_s": inc,
        "incremental_vs_full": _ratio(inc, full),
        "noop_s": r.seconds("noop_build"),
        "noop_skipped": r.noop_skipped,
        "noop_dbt_s": r.seconds("noop_dbt_build"),
        "load_peak_gib": load_peak,
        "build_peak_gib": build_peak,
        "peak_rss_gib": pipeline_peak,
        "floor_load_peak_gib": peak("floor_load"),
        "floor_build_peak_gib": peak("floor_build"),
        "load_peak_vs_floor": _ratio(load_peak, peak("floor_load")),
        "build_peak_vs_floor": _ratio(build_peak, peak("floor_build")),
        "raw_events_initial": r.raw_events_initial,
        "raw_events_new_day": r.raw_events_day,
        "new_day_share": _ratio(r.raw_events_day, r.raw_events_initial),
        "steps": [asdict(s) for s in r.steps],
        "dbt_seconds_by_kind_full": r.dbt_totals_full,
        "dbt_seconds_by_kind_incremental": r.dbt_totals_incremental,
        "top_models_full": r.top_models_full,
        "top_models_incremental": r.top_models_incremental,
        "top_models_noop": r.top_models_noop,
        "floor_rows": r.floor_check,
        "warnings": r.warnings,
    }


def verdicts(s: dict[str, Any], collector: dict[str, Any] | None = None) -> dict[str, Any]:
    def at_most(value: float | None, target: float) -> dict[str, Any]:
        return {"value": value, "target": f"<= {target}",
                "pass": value is not None and value <= target}

    out = {
        "end_to_end_vs_floor": at_most(s.get("end_to_end_vs_floor"), TARGET_END_TO_END_VS_FLOOR),
        "load_vs_floor": at_most(s.get("load_vs_floor"), TARGET_LOAD_VS_FLOOR),
        "load_peak_gib": at_most(s.get("load_peak_gib"), TARGET_LOAD_PEAK_GIB),
        "build_peak_gib": at_most(s.get("build_peak_gib"), TARGET_BUILD_PEAK_GIB),
        "incremental_vs_full": at_most(s.get("incremental_vs_full"), TARGET_INCREMENTAL_VS_FULL),
    }
    if s["events"] > TARGET_SIZE:  # 50M: it must complete within the machine's memory
        out["peak_rss_gib"] = at_most(s.get("peak_rss_gib"), LARGE_LIMIT_GIB)
    if collector is not None:
        rate, p99 = collector.get("events_per_s"), collector.get("p99_ms")
        out["collector_events_per_s"] = {
            "value": rate, "target": f">= {TARGET_COLLECTOR_EVENTS_PER_S}",
            "pass": rate is not None and rate >= TARGET_COLLECTOR_EVENTS_PER_S}
        out["collector_p99_ms"] = {"value": p99, "target": f"< {TARGET_COLLECTOR_P99_MS}",
                                   "pass": p99 is not None and p99 < TARGET_COLLECTOR_P99_MS}
    return out


def _print_step(events: int, step: Step) -> None:
    print(f"  {events:>12,}  {step.name:<18}{step.seconds:>10.2f} s{step.peak_rss_gib:>9.2f} GiB"
          f"  {step.note}", flush=True)


def print_report(summaries: list[dict[str, Any]], collector: dict[str, Any] | None) -> None:
    print(f"\n{'events':>12}  {'step':<18}{'seconds':>10}{'peak GiB':>11}")
    for s in summaries:
        for step in s["steps"]:
            print(f"{s['events']:>12,}  {step['name']:<18}{step['seconds']:>10.2f}"
                  f"{step['peak_rss_gib']:>11.2f}")
    print(f"\n{'events':>12}  {'measure':<24}{'value':>9}  {'target':<10}verdict")
    for s in summaries:
        binding = s["events"] >= TARGET_SIZE
        for name, v in verdicts(s, collector).items():
            shown = "n/a" if v["value"] is None else f"{v['value']:.3f}"
            verdict = ("PASS" if v["pass"] else "MISS") + ("" if binding else
                                                           " (info: targets are at 10M)")
            print(f"{s['events']:>12,}  {name:<24}{shown:>9}  {v['target']:<10}{verdict}")
        print(f"{'':>12}  seconds: end to end {s['end_to_end_s']} (floor "
              f"{s['floor_end_to_end_s']}), load {s['load_s']} (floor {s['floor_load_s']}), "
              f"build {s['full_build_s']} (floor {s['floor_build_s']}); peak GiB: load "
              f"{s['load_peak_gib']} (floor {s['floor_load_peak_gib']}), build "
              f"{s['build_peak_gib']} (floor {s['floor_build_peak_gib']})")
        print(f"{'':>12}  top models (full build): " + ", ".join(
            f"{m['model']} {m['seconds']:.1f}s" for m in s["top_models_full"][:6]))
        print(f"{'':>12}  dbt seconds by kind (full build, summed over threads): "
              f"{s['dbt_seconds_by_kind_full']}")
        for w in s["warnings"]:
            print(f"{'':>12}  WARNING: {w}")
    if collector is None:
        print(f"\ncollector: no {COLLECTOR_JSON.relative_to(PROJECT)} (run python -m "
              "bench.collector)")


SUMMARY_KEYS = ("events", "load_mode", "end_to_end_s", "floor_end_to_end_s",
                "end_to_end_vs_floor", "load_s", "floor_load_s", "load_vs_floor",
                "full_build_s", "floor_build_s", "build_vs_floor", "incremental_s",
                "incremental_vs_full", "noop_s", "noop_skipped", "noop_dbt_s", "load_peak_gib",
                "build_peak_gib", "peak_rss_gib",
                "floor_load_peak_gib", "floor_build_peak_gib", "load_peak_vs_floor",
                "build_peak_vs_floor")


def write_results(summaries: list[dict[str, Any]], args: argparse.Namespace, out: Path,
                  collector: dict[str, Any] | None = None) -> dict:
    largest = max(summaries, key=lambda s: s["events"])
    doc = {
        **{key: largest[key] for key in SUMMARY_KEYS},
        "verdicts": verdicts(largest, collector),
        "targets_binding": largest["events"] >= TARGET_SIZE,
        "collector": collector,
        "sizes": {str(s["events"]): {**s, "verdicts": verdicts(s, collector)} for s in summaries},
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
                        help=f"auto: ewh load up to {SQL_LOAD_ABOVE:,} events, SQL tiling above "
                        "(no floor then)")
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
    collector = collector_figures()
    print_report(summaries, collector)
    out = Path(args.out)
    write_results(summaries, args, out, collector)
    print(f"\nwrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
