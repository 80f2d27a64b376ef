"""The point-in-time training set: int_user_features as dbt builds it at past dates.

Dates (`plan_snapshots`): a grid every `interval_days` back from as_of's day. For each model,
the holdout is its latest dates whose label window has fully passed by as_of (date + horizon
<= as_of); its training dates come before them, and their label windows end by the first
holdout date (no training label looks into the holdout period). Dates closer than
MIN_HISTORY_DAYS to the first event are left out: a feature row needs some history.

Build (`build_training_set`): raw.events is copied into a scratch DuckDB file
(`copy_raw_events`, the only step that reads the warehouse). There dbt runs `+int_user_features`
at each date, oldest first, each a full build (memory bounded like any full build; an
incremental run gives the same rows, as the incremental-equivalence test proves), and each
date's rows go to training.feature_snapshots. Every upstream model reads only events that
occurred by as_of, identity included, so a row at date t is what a build at t would have
given (tests/integration/test_predictions.py deletes every later event to prove it). A last
run at as_of gives the outcomes (training.labels, labels.py), with today's identity and
consent. The scratch folder holds personal data: the caller deletes it after training.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

from ewh.common.clock import dbt_timestamp
from ewh.common.sql_text import sql_literal
from ewh.ingest.raw_tables import ensure_raw_tables
from ewh.predictions.specs import ModelSpec

MIN_HISTORY_DAYS = 14
SNAPSHOTS_TABLE = "training.feature_snapshots"
LABELS_TABLE = "training.labels"
WORK_FOLDER = ".work"  # under the registry: a training run's scratch, deleted at its end
RESULT_FILE = "result.json"
SCRATCH_FILE = "scratch.duckdb"  # not training.duckdb: its catalog would clash with the schema


@dataclass(frozen=True)
class ModelDates:
    """A model's snapshot dates: train on the earlier, evaluate on the later (holdout)."""

    train: tuple[datetime, ...]
    holdout: tuple[datetime, ...]

    @property
    def usable(self) -> bool:
        return bool(self.train) and bool(self.holdout)


def plan_snapshots(as_of: datetime, data_start: datetime | None, specs: Iterable[ModelSpec],
                   interval_days: int, training: int, holdout: int,
                   min_history_days: int = MIN_HISTORY_DAYS) -> dict[str, ModelDates]:
    """Each model's training and holdout dates (see the module docstring)."""
    anchor = datetime(as_of.year, as_of.month, as_of.day)
    earliest = (data_start + timedelta(days=min_history_days)) if data_start else None
    plans = {}
    for spec in specs:
        horizon = timedelta(days=spec.horizon_days)
        grid = []
        step = 0
        while True:
            date = anchor - timedelta(days=interval_days * step)
            step += 1
            if earliest is None or date < earliest:
                break
            if date + horizon <= as_of:
                grid.append(date)  # newest first
        holdout_dates = grid[:holdout]
        train_dates = [d for d in grid[holdout:] if holdout_dates
                       and d + horizon <= min(holdout_dates)][:training]
        plans[spec.name] = ModelDates(tuple(sorted(train_dates)), tuple(sorted(holdout_dates)))
    return plans


def all_dates(plans: dict[str, ModelDates]) -> list[datetime]:
    return sorted({d for p in plans.values() for d in (*p.train, *p.holdout)})


@dataclass(frozen=True)
class TrainingSet:
    """The scratch warehouse with training.feature_snapshots and training.labels."""

    path: Path
    as_of: datetime
    dates: dict[str, ModelDates]
    feature_version: str | None  # of the rows; None when no date could be built
    features_sql: str  # int_user_features' SQL as dbt read it
    feature_docs: dict[str, str] = field(default_factory=dict)  # column -> description
    rows: int = 0
    seconds_by_date: dict[str, float] = field(default_factory=dict)


def training_work_dir(models_dir: Path, run: str | None = None) -> Path:
    """The scratch folder of training run `run` (all of them when None): two runs at once
    must not share one."""
    return models_dir / WORK_FOLDER if run is None else models_dir / WORK_FOLDER / run


def scratch_path(work_dir: Path) -> Path:
    return work_dir / SCRATCH_FILE


def first_event_at(work_dir: Path) -> datetime | None:
    """The earliest event in the scratch warehouse (the snapshot grid starts after it)."""
    with duckdb.connect(str(scratch_path(work_dir)), read_only=True) as con:
        return con.execute("select min(coalesce(occurred_at, received_at)) from raw.events"
                           ).fetchone()[0]


def copy_raw_events(warehouse: Path, work_dir: Path) -> tuple[int, datetime | None]:
    """A fresh scratch warehouse in work_dir holding a copy of raw.events.

    Returns (events copied, the earliest event time). The warehouse is opened read-only for
    the copy only; everything after works on the copy."""
    if work_dir.exists():
        shutil.rmtree(work_dir)
    work_dir.mkdir(parents=True)
    scratch = scratch_path(work_dir)
    with duckdb.connect(str(scratch)) as con:
        ensure_raw_tables(con)
        con.execute(f"attach {sql_literal(str(warehouse))} as source_warehouse (read_only)")
        try:
            con.execute("insert into raw.events select * from source_warehouse.raw.events")
        finally:
            con.execute("detach source_warehouse")
        copied, start = con.execute(
            "select count(*), min(coalesce(occurred_at, received_at)) from raw.events").fetchone()
    return int(copied), start


def build_training_set(work_dir: Path, as_of: datetime, data_start: datetime | None,
                       specs: Sequence[ModelSpec], interval_days: int, training: int,
                       holdout: int) -> TrainingSet:
    """Build int_user_features at every planned date in the scratch warehouse of work_dir
    (made by copy_raw_events), then the labels at as_of.

    dbt runs in a child process (ewh.predictions.dbt_snapshots) that parses the project once
    and reuses the manifest for every date: a new as_of is only a new var, and re-parsing at
    every date would cost more than the runs themselves."""
    plans = plan_snapshots(as_of, data_start, specs, interval_days, training, holdout)
    dates = all_dates(plans)
    request = {"work_dir": str(work_dir), "scratch": str(scratch_path(work_dir)),
               "dates": [dbt_timestamp(d) for d in dates], "as_of": dbt_timestamp(as_of),
               "models": [s.name for s in specs]}
    request_file = work_dir / "request.json"
    request_file.write_text(json.dumps(request))
    done = subprocess.run([sys.executable, "-m", "ewh.predictions.dbt_snapshots",
                           str(request_file)], capture_output=True, text=True, check=False,
                          env={**os.environ, "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"})
    if done.returncode != 0:
        raise RuntimeError(f"building the training set in {work_dir} failed:\n"
                           f"{done.stdout[-4000:]}{done.stderr[-4000:]}")
    built = json.loads((work_dir / RESULT_FILE).read_text())
    return TrainingSet(scratch_path(work_dir), as_of, plans, built["feature_version"],
                       built["features_sql"], built["feature_docs"], built["rows"],
                       built["seconds"])
