"""`make demo` (`ewh demo`): one line per stage, the summary, the logs in a named file."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pytest

from ewh.common.settings import PROJECT_ROOT

EWH = str(Path(sys.executable).with_name("ewh"))
STAGE_LINES = ["generate sample events", "load landing files into raw", "dbt build",
               "data-quality checks", "publish the serving copy", "export segments",
               "train the prediction models", "segment history"]


def _environment(root: Path) -> dict[str, str]:
    return {**os.environ,
            "EWH_WAREHOUSE": str(root / "warehouse.duckdb"),
            "EWH_LANDING_DIR": str(root / "landing"),
            "EWH_SERVING": str(root / "serving.duckdb"),
            "EWH_EXPORTS_DIR": str(root / "exports"),
            "EWH_REPORT": str(root / "report.html"),
            "EWH_OPS_DB": str(root / "ops.duckdb"),
            "EWH_MODELS_DIR": str(root / "models"),
            # one training and one holdout date per model: the demo's data is too small to
            # train on anyway, and each date is a dbt run
            "EWH_PREDICTION_TRAINING_SNAPSHOTS": "1",
            "EWH_PREDICTION_HOLDOUT_SNAPSHOTS": "1",
            "DAGSTER_HOME": str(root / "dagster_home")}


@pytest.mark.e2e
def test_the_demo_prints_a_line_per_stage_and_the_summary_and_logs_the_rest(tmp_path: Path):
    done = subprocess.run([EWH, "demo", "--events", "5000", "--seed", "7"], cwd=PROJECT_ROOT,
                          env=_environment(tmp_path), capture_output=True, text=True,
                          timeout=900, stdin=subprocess.DEVNULL)
    lines = done.stdout.splitlines()
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert len(lines) <= 60, done.stdout
    stage_lines = [line for line in lines if line.startswith("✓")]
    # 5,000 events are too few to train on: no model is published, so no second refresh
    assert [next(s for s in STAGE_LINES if s in line) for line in stage_lines] == STAGE_LINES
    training = next(line for line in stage_lines if "train the prediction models" in line)
    assert "purchase not published" in training, training
    assert "read 5,000 = loaded" in done.stdout and "(reconciled)" in done.stdout
    assert "seg_cart_abandoners" in done.stdout and "checks passed" in done.stdout
    # What dbt and Dagster said is in the log the first line names, not on the terminal.
    log = tmp_path / "demo.log"
    assert str(log) in lines[0]
    assert "Running dbt command" in log.read_text() and "Running dbt command" not in done.stdout
    assert done.stderr.strip() == ""
    history = next(line for line in stage_lines if "segment history" in line)
    # every day of the printed range was evaluated, and the range spans the 90 generated
    # days (give or take the first and last partial days, which depend on the hour it runs)
    evaluated = int(history.split(" on each of ")[1].split()[0])
    first, last = (date.fromisoformat(d) for d in
                   history.split("(")[1].split(")")[0].split(" .. "))
    assert evaluated == (last - first).days + 1 and evaluated >= 88, history
    _assert_90_days_of_history(tmp_path / "serving.duckdb")
    report = (tmp_path / "report.html").read_text()
    assert report.count("<svg") >= 6 and "cdn" not in report.lower()


def _assert_90_days_of_history(serving: Path) -> None:
    """The generated data spans 90 days (ewh generate's default): the backfill gives every
    segment a size on each day from the first day anyone was in a segment (the first day or
    two of sample data may have nobody yet), with entries on many different days."""
    with duckdb.connect(str(serving), read_only=True) as con:
        days, segments = con.execute(
            "select count(distinct size_date), count(distinct segment) "
            "from segments.segment_sizes_daily").fetchone()
        entry_days = con.execute(
            "select count(distinct cast(entered_at as date)) "
            "from segments.segment_membership_history").fetchone()[0]
        rows = con.execute("select count(*) from segments.segment_sizes_daily").fetchone()[0]
    assert days >= 88 and segments == 18 and rows == days * segments
    assert entry_days >= 30


@pytest.mark.e2e
def test_a_failing_demo_says_what_failed_in_one_line_and_where_the_log_is(tmp_path: Path):
    """The run fails in its first Dagster step (the raw load), so the test does not wait for a
    whole dbt build first; the successful demo above shows the later stages' lines."""
    env = _environment(tmp_path)
    # The raw layer's Parquet copy cannot be written: a file stands where its folder should be.
    blocker = tmp_path / "blocker"
    blocker.write_text("not a folder")
    env["EWH_LAKE_DIR"] = str(blocker / "lake")
    done = subprocess.run([EWH, "demo", "--events", "2000"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    lines = done.stdout.splitlines()
    assert done.returncode == 1, done.stdout
    failed = [line for line in lines if line.startswith("✗")]
    assert len(failed) == 1 and "load landing files into raw failed" in failed[0], done.stdout
    assert "raw_load" in failed[0] and "blocker" in failed[0]
    assert lines[-1].strip().startswith("log:") and lines.index(failed[0]) == len(lines) - 2
    log = Path(lines[-1].split("log:", 1)[1].split()[0])
    assert log == tmp_path / "demo.log" and "raw_load" in log.read_text()
    assert len(lines) <= 10 and done.stderr.strip() == ""
