"""Runs as operators start them: from the dagster CLI, two at once, and one that fails."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ewh.common.settings import PROJECT_ROOT
from ewh.ops.alerts import recent_failures
from ewh.sample.generator import generate

DAGSTER = str(Path(sys.executable).with_name("dagster"))
AS_OF = datetime(2026, 11, 1)
HISTORY = "segments/segment_history_by_day"


@pytest.fixture()
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    values = {
        "EWH_WAREHOUSE": str(tmp_path / "warehouse.duckdb"),
        "EWH_LANDING_DIR": str(tmp_path / "landing"),
        "EWH_EXPORTS_DIR": str(tmp_path / "exports"),
        "EWH_SERVING": str(tmp_path / "serving.duckdb"),
        "EWH_MODELS_DIR": str(tmp_path / "models"),
        "EWH_OPS_DB": str(tmp_path / "ops.duckdb"),
        "EWH_AS_OF": str(AS_OF),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    from orchestration.instance import ensure_dagster_home

    ensure_dagster_home()
    generate(Path(values["EWH_LANDING_DIR"]), events=3_000, seed=11, end=AS_OF)
    return {**os.environ, **values}


def _dagster(args: list[str], env: dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen([DAGSTER, *args], cwd=PROJECT_ROOT, env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def _failure_lines(output: str) -> str:
    return "\n".join(line[:300] for line in output.splitlines()
                     if "FAILURE" in line or "Error" in line)[-3000:]


def test_two_runs_started_at_once_from_the_cli_are_serialized_not_failed(env: dict[str, str]):
    """`dagster asset materialize` of the whole graph and a `refresh_warehouse` job at once;
    then a range of days of segment history, as one run. The graph without the day-partitioned
    history (a partition range is its own run, below) and without model training: that is its
    own weekly job, and 3,000 events are too few to train on (its gate would fail the run)."""
    materialize = _dagster(["asset", "materialize", "-m", "orchestration.definitions",
                            "--select", f'not key:"{HISTORY}" and not group:model_training'],
                           env)
    job = _dagster(["job", "execute", "-m", "orchestration.definitions",
                    "-j", "refresh_warehouse"], env)
    outputs = [p.communicate(timeout=900)[0] for p in (materialize, job)]
    assert [materialize.returncode, job.returncode] == [0, 0], "\n".join(
        _failure_lines(out) for out in outputs)
    # One of them had to wait for the single DuckDB writer slot, and said so.
    assert any("blocked by limit for pool duckdb_writer" in out for out in outputs)
    with duckdb.connect(env["EWH_WAREHOUSE"], read_only=True) as con:
        loaded, files = con.execute(
            "select (select count(*) from raw.events), (select count(*) from raw.load_manifest)"
        ).fetchone()
    landed = len(list(Path(env["EWH_LANDING_DIR"]).glob("*.ndjson")))
    assert files == landed  # each file loaded once, not twice
    assert loaded > 0
    with duckdb.connect(env["EWH_SERVING"], read_only=True) as con:
        sizes = dict(con.execute("select segment, members from segments.segment_catalog"
                                 ).fetchall())
    assert sizes["seg_cart_abandoners"] > 0
    assert Path(env["EWH_EXPORTS_DIR"], "seg_cart_abandoners", "members.parquet").exists()

    history = _dagster(["asset", "materialize", "-m", "orchestration.definitions",
                        "--select", f'key:"{HISTORY}"',
                        "--partition-range", "2026-10-28...2026-10-31"], env)
    output = history.communicate(timeout=900)[0]
    assert history.returncode == 0, _failure_lines(output)
    with duckdb.connect(env["EWH_WAREHOUSE"], read_only=True) as con:
        entries = dict(con.execute(
            "select cast(entered_at as date), count(*) from segments.segment_membership_history "
            "group by 1").fetchall())
        days = con.execute("select min(size_date) from segments.segment_sizes_daily"
                           ).fetchone()[0]
    # Members on the first day of the range entered then (they were first seen at as_of).
    assert entries[datetime(2026, 10, 28).date()] > 0 and days <= datetime(2026, 10, 28).date()
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_run_records(dg.RunsFilter(tags={
            "dagster/asset_partition_range_start": "2026-10-28"}))
    assert len(runs) == 1  # the whole range in one run (single-run backfill policy)


def test_a_failed_run_is_recorded_as_an_alert(env: dict[str, str], tmp_path: Path) -> None:
    from orchestration.definitions import defs
    from orchestration.resources import warehouse_settings

    # A warehouse path that is a directory: the raw load cannot open it.
    os.environ["EWH_WAREHOUSE"] = str(tmp_path)
    with dg.DagsterInstance.get() as instance:
        result = defs().resolve_job_def("refresh_warehouse").execute_in_process(
            instance=instance, raise_on_error=False)
        assert not result.success
        (record,) = instance.all_logs(result.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
        failure = record.dagster_event
        sensor = defs().resolve_sensor_def("run_failure_alert")
        context = dg.build_run_status_sensor_context(
            sensor_name="run_failure_alert", dagster_event=failure, dagster_instance=instance,
            dagster_run=result.dagster_run, resources={"settings": warehouse_settings()},
        ).for_run_failure()
        sensor(context)
        sensor(context)  # evaluated twice: still one alert
    alerts = recent_failures(Path(env["EWH_OPS_DB"]))
    assert [(a.run_id, a.job_name) for a in alerts] == [(result.run_id, "refresh_warehouse")]
    assert alerts[0].message
