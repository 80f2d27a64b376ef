"""`python -m bench.predictions`: training and scoring time of the prediction models at scale.

For --users (default 250,000) users: the 1M-event base set (seed 7, ~20,000 users, cached by
bench.data) is tiled in SQL into enough disjoint copies, then, each step in its own child
process (wall seconds and peak RSS, as bench.run measures them):

  features  `dbt seed` + `dbt run --select +int_user_features` at as_of: what scoring reads
  training  the weekly job's work: raw.events copied into a scratch warehouse, dbt at every
            training date (ewh.predictions.snapshots), labels, both models fitted and evaluated
  scoring   both models (published for the run) score every user of int_user_features into
            raw.prediction_scores: what every refresh runs (target: at most 30 s; three runs,
            the best is the verdict, all three are reported)

Copies behave alike, so the models' metrics say nothing here; the timings are the point.
Writes bench/results/predictions.json (gitignored).
"""

from __future__ import annotations

import argparse
import json
import math
import shutil
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from bench import data as bench_data
from bench.run import RESULTS, DbtSetup, _python, profiles_dir, run_child

TARGET_SCORING_S = 30.0
SCORING_RUNS = 3


def _step(argv: list[str]) -> None:
    """Child steps: `train WAREHOUSE MODELS_DIR` and `score WAREHOUSE MODELS_DIR`."""
    from ewh.predictions import registry
    from ewh.predictions.scoring import score_warehouse
    from ewh.predictions.snapshots import build_training_set, copy_raw_events
    from ewh.predictions.specs import MODELS
    from ewh.predictions.training import train_model

    name, warehouse, models_dir = argv[0], Path(argv[1]), Path(argv[2])
    as_of = datetime.fromisoformat(bench_data.AS_OF)
    if name == "train":
        timings: dict[str, Any] = {}
        started = time.perf_counter()
        work = models_dir / ".work"
        copied, start = copy_raw_events(warehouse, work)
        timings["copy_s"] = round(time.perf_counter() - started, 2)
        started = time.perf_counter()
        training_set = build_training_set(work, as_of, start, list(MODELS.values()), 7, 6, 2)
        timings["snapshots_s"] = round(time.perf_counter() - started, 2)
        timings["snapshot_dbt_s"] = training_set.seconds_by_date
        timings["snapshot_rows"] = training_set.rows
        for model, spec in MODELS.items():
            started = time.perf_counter()
            result = train_model(spec, training_set, models_dir, seed=0)
            timings[f"fit_{model}_s"] = round(time.perf_counter() - started, 2)
            timings[f"{model}_train_rows"] = result.metrics.get("train", {}).get("rows")
            if result.version is not None:  # published regardless of the gate: timing only
                registry.write_pointer(models_dir, model, registry.PUBLISHED,
                                       {"version": result.version})
        shutil.rmtree(work, ignore_errors=True)
        print(json.dumps({"events": copied, **timings}))
    elif name == "score":
        # three runs (each replaces the table): the machine may be shared, the best shows the
        # cost of scoring itself, all three how much it varies
        runs = []
        for _ in range(SCORING_RUNS):
            started = time.perf_counter()
            result = score_warehouse(warehouse, models_dir)
            runs.append(round(time.perf_counter() - started, 3))
        print(json.dumps({"scored": result.scored, "skipped": result.skipped,
                          "seconds": min(runs), "runs": runs}))
    else:
        raise SystemExit(f"unknown step {name}")


def _last_json(log: Path) -> dict[str, Any]:
    lines = [ln for ln in log.read_text().splitlines() if ln.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["step"]:
        _step(argv[1:])
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.predictions",
                                     description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=250_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work-dir", default="/tmp/bench-predictions")
    parser.add_argument("--memory-limit", default=None)
    parser.add_argument("--out", default=str(RESULTS / "predictions.json"))
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)

    work = Path(args.work_dir)
    shutil.rmtree(work, ignore_errors=True)
    (work / "logs").mkdir(parents=True)
    base = bench_data.dataset(bench_data.BASE_EVENTS, args.seed)
    base_users = json.loads((base.folder / "dataset.json").read_text())["users"]
    copies = max(1, math.ceil(args.users / base_users))
    from bench.run import _template_warehouse

    template = _template_warehouse(args.seed, work)
    warehouse, models = work / "warehouse.duckdb", work / "models"
    steps = [run_child("tile", _python("tile", str(template), str(warehouse), str(copies)),
                       work / "logs" / "tile.log", note=f"x{copies} of {base_users:,} users")]
    setup = DbtSetup(profiles_dir(work, args.memory_limit, None), work / "target",
                     work / "dbt-logs", warehouse, bench_data.AS_OF)
    run_child("seed", setup.argv("seed"), work / "logs" / "seed.log", setup.env())
    steps.append(run_child("features", setup.argv("run", "--select", "+int_user_features"),
                           work / "logs" / "features.log", setup.env()))
    here = [sys.executable, "-m", "bench.predictions", "step"]
    steps.append(run_child("training", [*here, "train", str(warehouse), str(models)],
                           work / "logs" / "training.log"))
    steps.append(run_child("scoring", [*here, "score", str(warehouse), str(models)],
                           work / "logs" / "scoring.log"))
    training, scoring = (_last_json(work / "logs" / f"{n}.log") for n in ("training", "scoring"))
    with duckdb.connect(str(warehouse), read_only=True) as con:
        users, featured = con.execute(
            "select (select count(*) from intermediate.int_user_activity), "
            "(select count(*) from intermediate.int_user_features)").fetchone()
    by_name = {s.name: s for s in steps}
    doc = {
        "users": users, "users_with_features": featured, "copies": copies,
        "events": training.get("events"),
        "training_s": by_name["training"].seconds,
        # the best of the scoring runs (each a whole scoring step: read, walk, write)
        "scoring_s": scoring.get("seconds"),
        "scoring_runs_s": scoring.get("runs"),
        "scoring_child_wall_s": by_name["scoring"].seconds,
        "scored": scoring.get("scored"),
        "scoring_verdict": {"value": scoring.get("seconds"), "target": TARGET_SCORING_S,
                            "pass": (scoring.get("seconds") or 1e9) <= TARGET_SCORING_S},
        "training_detail": training,
        "steps": [{"name": s.name, "seconds": s.seconds, "peak_rss_gib": s.peak_rss_gib,
                   "note": s.note} for s in steps],
    }
    print(f"\n{'step':<12}{'seconds':>10}{'peak GiB':>10}")
    for s in steps:
        print(f"{s.name:<12}{s.seconds:>10.1f}{s.peak_rss_gib:>10.2f}  {s.note}")
    verdict = "PASS" if doc["scoring_verdict"]["pass"] else "MISS"
    print(f"\n{users:,} users ({featured:,} with features), {training.get('events'):,} events: "
          f"training {doc['training_s']:.0f} s, scoring {doc['scoring_s']:.1f} s "
          f"(target <= {TARGET_SCORING_S:.0f} s: {verdict}; {scoring.get('scored')})")
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=2) + "\n")
    print(f"wrote {out}")
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
