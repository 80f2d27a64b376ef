"""The quality gate in real Dagster runs: a failed error-level suite stops everything downstream.

A small generated dataset goes through the real `refresh_warehouse` job once (the "last good"
state: warehouse, serving copy, exports). Each test then copies that state, injects bad rows
into one layer and runs Dagster again, and asserts three things: the suite's check failed
with severity ERROR; nothing downstream refreshed (no materialization, files byte-identical);
the check's message names the column and the count.

- raw.events is injected before a full `refresh_warehouse` run: its blocking check must
  stop the dbt build itself (the multi-asset downstream of raw/events).
- dbt-built tables are injected after the build and validated by a run of the table's
  check and the assets downstream of it (the serving copy and the exports) only: a rebuild
  would overwrite the injected rows, and a dbt build costs ~35 s.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ewh.common.settings import PROJECT_ROOT
from ewh.quality.project import PROJECT_DIR
from ewh.sample.generator import generate

AS_OF = datetime(2026, 11, 1, 0, 0, 0)
RUN_CONFIG = {"ops": {"warehouse_dbt_models": {"config": {"as_of": str(AS_OF)}}},
              "loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def _environment(mp: pytest.MonkeyPatch, root: Path) -> None:
    mp.setenv("EWH_WAREHOUSE", str(root / "warehouse.duckdb"))
    mp.setenv("EWH_LANDING_DIR", str(root / "landing"))
    mp.setenv("EWH_EXPORTS_DIR", str(root / "exports"))
    mp.setenv("EWH_SERVING", str(root / "serving.duckdb"))
    mp.setenv("EWH_MODELS_DIR", str(root / "models"))
    mp.setenv("EWH_GX_PROJECT_DIR", str(root / "gx_project"))
    mp.setenv("EWH_AS_OF", str(AS_OF))


def _downstream_files(root: Path) -> dict[str, str]:
    """What a refresh would rewrite: the serving copy and every export file."""
    files = [root / "serving.duckdb", *sorted((root / "exports").rglob("*"))]
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in files if p.is_file()}


@pytest.fixture(scope="module")
def last_good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("last_good")
    shutil.copytree(PROJECT_DIR / "gx", root / "gx_project" / "gx",
                    ignore=shutil.ignore_patterns("uncommitted"))
    mp = pytest.MonkeyPatch()
    _environment(mp, root)
    generate(root / "landing", events=2_000, seed=3, end=AS_OF)
    from orchestration.definitions import defs

    result = defs().resolve_job_def("refresh_warehouse").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False, run_config=RUN_CONFIG)
    mp.undo()
    assert result.success, "the clean refresh must pass before bad data can be tested"
    assert (root / "serving.duckdb").exists() and list((root / "exports").rglob("*.parquet"))
    return root


@pytest.fixture
def state(last_good: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A private copy of the last good state, with the environment pointing at it."""
    root = tmp_path / "state"
    shutil.copytree(last_good, root)
    _environment(monkeypatch, root)
    return root


def _sql(root: Path, *statements: str) -> None:
    with duckdb.connect(str(root / "warehouse.duckdb")) as con:
        for statement in statements:
            con.execute(statement)


def _full_run() -> dg.ExecuteInProcessResult:
    from orchestration.definitions import defs

    return defs().resolve_job_def("refresh_warehouse").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False, run_config=RUN_CONFIG)


def _checks_and_downstream_run(*suites: str) -> dg.ExecuteInProcessResult:
    """The checks of ``suites`` (default: every segment) and the serving copy and exports,
    without rebuilding the checked tables."""
    from orchestration.definitions import defs
    from orchestration.defs.quality import check_name, suite_asset_key
    from orchestration.defs.quality import suites as all_suites
    from orchestration.defs.serving import SERVING_COPY
    from orchestration.project import warehouse_project

    checks = [dg.AssetCheckKey(suite_asset_key(s), check_name(s))
              for s in all_suites().values()
              if s.name in suites or (not suites and s.kind == "segment")]
    exports = [dg.AssetKey(["exports", s.name]) for s in warehouse_project().segments
               if s.exported]
    job = dg.define_asset_job(
        "checks_and_downstream",
        selection=dg.AssetSelection.assets(SERVING_COPY, *exports)
        | dg.AssetSelection.checks(*checks),
    )
    return dg.Definitions.merge(defs(), dg.Definitions(jobs=[job])).resolve_job_def(
        "checks_and_downstream").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}})


def _evaluation(result: dg.ExecuteInProcessResult, check: str):
    (evaluation,) = [e for e in result.get_asset_check_evaluations() if e.check_name == check]
    return evaluation


def _failures_text(evaluation) -> str:
    return str(evaluation.metadata["failures"].value)


def _seed_assets() -> set[str]:
    return {f"staging/{csv.stem}" for csv in (PROJECT_ROOT / "seeds").glob("*.csv")}


def _materialized(result: dg.ExecuteInProcessResult) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}


def _assert_blocked(result: dg.ExecuteInProcessResult, check: str, text: str, count: int,
                    column: str, before: dict[str, str], root: Path) -> None:
    evaluation = _evaluation(result, check)
    # 1. the check failed, at error level
    assert not evaluation.passed
    assert evaluation.severity == dg.AssetCheckSeverity.ERROR
    # 2. nothing downstream refreshed: no dbt model, serving copy or export materialized,
    #    and the last good serving copy and exports are byte-identical. The seeds (lookup
    #    tables from CSV files) read nothing from raw: Dagster may load them in a step of their
    #    own that does not wait for the raw check.
    refreshed = {k for k in _materialized(result)
                 if not k.startswith("raw/") and k not in _seed_assets()}
    assert refreshed == set()
    assert not result.success
    assert _downstream_files(root) == before
    # 3. the message names the column and the count
    assert text in _failures_text(evaluation)
    assert evaluation.metadata["failing_counts"].value[
        next(k for k in evaluation.metadata["failing_counts"].value if k.startswith(column))
    ] == count


def test_null_ids_in_raw_stop_the_dbt_build_and_everything_after_it(state: Path) -> None:
    before = _downstream_files(state)
    _sql(state, "insert into raw.events select 'no-id-' || i, 'track', 'Product Viewed', null,"
                " null, timestamp '2026-10-31 10:00:00', null, timestamp '2026-10-31 10:00:00',"
                " '{}', 'sql:test', null, 'bad-load', timestamp '2026-10-31 11:00:00'"
                " from range(3) r(i)")
    result = _full_run()
    _assert_blocked(result, "gx_raw_events",
                    "raw.events.anonymous_id: 3 null values where user_id IS NULL",
                    3, "anonymous_id", before, state)
    steps = {e.step_key for e in result.get_step_success_events()}
    assert "raw_load" in steps and "warehouse_dbt_models" not in steps
    # Null values have nothing to show: the samples are the message_ids of those rows.
    samples = _evaluation(result, "gx_raw_events").metadata["sample_values"].value
    assert samples == {"anonymous_id expect_column_values_to_not_be_null":
                       ["no-id-0", "no-id-1", "no-id-2"]}


def test_future_timestamps_in_raw_stop_the_refresh(state: Path) -> None:
    before = _downstream_files(state)
    _sql(state, "insert into raw.events select 'future-' || i, 'track', 'Product Viewed', 'u1',"
                " 'a1', timestamp '2030-01-01', null, timestamp '2030-01-01', '{}', 'sql:test',"
                " null, 'bad-load', timestamp '2026-10-31 11:00:00' from range(2) r(i)")
    result = _full_run()
    # as_of + 1 day = 2026-11-02 00:00:00
    _assert_blocked(result, "gx_raw_events",
                    "raw.events.received_at: 2 values above 2026-11-02 00:00:00",
                    2, "received_at", before, state)


def test_a_client_timestamp_planted_90_days_ahead_stops_the_refresh_before_dbt(
        state: Path) -> None:
    # received_at is an ordinary time; only occurred_at is in the future (it used to warn).
    before = _downstream_files(state)
    _sql(state, "insert into raw.events select 'ahead-' || i, 'track', 'Product Viewed', 'u1',"
                " 'a1', timestamp '2026-10-31 10:00:00' + interval 90 day, null,"
                " timestamp '2026-10-31 10:00:00', '{}', 'sql:test', null, 'bad-load',"
                " timestamp '2026-10-31 11:00:00' from range(3) r(i)")
    result = _full_run()
    _assert_blocked(result, "gx_raw_events",
                    "raw.events.occurred_at: 3 rows with occurred_at more than 24 h after "
                    "received_at", 3, "occurred_at", before, state)
    steps = {e.step_key for e in result.get_step_success_events()}
    assert "raw_load" in steps and "warehouse_dbt_models" not in steps


def test_duplicates_surviving_dedupe_keep_the_last_good_serving_copy(state: Path) -> None:
    before = _downstream_files(state)
    _sql(state, "insert into staging.stg_events select * from staging.stg_events "
                "order by message_id limit 2")
    result = _checks_and_downstream_run("stg_events")
    # two messages, each now on two rows
    _assert_blocked(result, "gx_stg_events",
                    "staging.stg_events.message_id: 4 rows with a duplicated value",
                    4, "message_id", before, state)


def test_negative_revenue_keeps_the_last_good_serving_copy_and_exports(state: Path) -> None:
    before = _downstream_files(state)
    _sql(state, "update marts.dim_users set revenue = -250 "
                "where user_key = (select min(user_key) from marts.dim_users)")
    result = _checks_and_downstream_run("dim_users")
    _assert_blocked(result, "gx_dim_users", "marts.dim_users.revenue: 1 values below 0",
                    1, "revenue", before, state)


def test_overlapping_membership_history_keeps_the_last_good_exports(state: Path) -> None:
    before = _downstream_files(state)
    # A closed spell starting a day before an existing spell and ending after it started.
    _sql(state, "insert into segments.segment_membership_history "
                "select 'overlap-' || membership_id, user_key, segment,"
                " entered_at - interval 1 day, entered_at + interval 1 hour, false"
                " from segments.segment_membership_history order by membership_id limit 1")
    result = _checks_and_downstream_run("segment_membership_history")
    # The injected spell itself is fine; the existing one it overlaps is the one reported.
    _assert_blocked(result, "gx_segment_membership_history",
                    "segments.segment_membership_history.entered_at: 1 spells that overlap",
                    1, "entered_at", before, state)


def test_warnings_do_not_block_serving_and_exports(state: Path) -> None:
    from orchestration.project import warehouse_project

    before = _downstream_files(state)
    segment = next(s.name for s in warehouse_project().segments if s.exported)
    # The previous run counted 100000 members: today's size is a volume anomaly (warn).
    sizes = {segment: {"members": 100_000, "as_of": str(AS_OF)}}
    (state / "warehouse.segment_sizes.json").write_text(json.dumps(sizes))
    result = _checks_and_downstream_run(segment)
    evaluation = _evaluation(result, f"gx_{segment}")
    assert not evaluation.passed and evaluation.severity == dg.AssetCheckSeverity.WARN
    assert "previous run 100000" in _failures_text(evaluation)
    assert result.success
    assert "serving/serving_copy" in _materialized(result)
    assert any(k.startswith("exports/") for k in _materialized(result))
    assert _downstream_files(state) != before
