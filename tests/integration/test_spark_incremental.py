"""The same dbt project on Spark refreshes incrementally to the same tables as DuckDB.

A generated sample replayed in arrival batches (tests/integration/arrival_replay.py, the
sample and planted events of the DuckDB incremental-equivalence test: late, out-of-order and
retroactive events, a late alias, a shared device, order corrections): after each batch an
incremental build on each engine at the batch's as_of; after every batch every marts and
segments table must be equal (tests/integration/engine_parity.py). The first batch is a full
build of an empty warehouse; the later ones run Spark's incremental paths
(macros/incremental/partition_refresh.sql): the partition overwrite of every incremental model
and the append of its watermark row. Three batches here (DuckDB's test replays four): a full
build and two incremental ones, so an incremental build also runs on a table an incremental
build wrote, and every planted case still arrives (the order corrections in the second batch,
the late events, the alias and the shared device in the last); each Spark batch costs about
two minutes of a `make test`. DuckDB's incremental builds equal its full
refreshes (test_incremental_equivalence.py), so Spark's incremental builds equal a full
refresh too. Then, on the result: the data tests on Spark, a Dagster run on the Spark target,
and an erasure reaching the lake's and Spark's Parquet files.

Marked `spark`: `make test` runs it (Java 17 and the `spark` extra come from the Makefile).
"""

from __future__ import annotations

import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import pytest
from arrival_replay import arrival_batches
from dbt_runner import run_dbt
from engine_parity import (
    compare_engines,
    dbt_vars,
    spark_run_results,
    spark_table_path,
    spark_target_args,
    stamp,
)

from ewh.common.settings import Settings
from ewh.ingest.loader import load_files
from ewh.privacy.erasure import erase_user
from ewh.privacy.parquet_scrub import parquet_files, parquet_hits
from ewh.spark.dbt_session import SparkDbtSession

pytestmark = pytest.mark.spark

SPARK_BATCHES = 3  # see the module doc


@pytest.fixture(scope="module")
def replay(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("spark-replay")
    batches, as_ofs = arrival_batches(work, SPARK_BATCHES)
    warehouse, lake = work / "warehouse.duckdb", work / "lake"
    spark_warehouse = work / "spark-warehouse"
    differences: list[tuple[int, list]] = []
    with SparkDbtSession(spark_warehouse, lake, work / "spark.log", small_data=True) as spark, \
            ThreadPoolExecutor(1) as pool:
        # parsed once: each batch's new as_of would otherwise mean a full parse
        spark.parse(*spark_target_args(work))
        spark.dbt("seed", *spark_target_args(work))
        for index, (batch, as_of) in enumerate(zip(batches, as_ofs, strict=True)):
            load_files(batch, warehouse, lake_dir=lake, landing_dir=work / "landing")
            duck = pool.submit(run_dbt, warehouse, work / "duck", "build",
                               "--exclude-resource-type", "unit_test",
                               "--vars", dbt_vars(stamp(as_of)))
            spark.dbt("run", "--vars", dbt_vars(stamp(as_of)), *spark_target_args(work))
            duck.result()
            tables, found = compare_engines(warehouse, spark_warehouse)
            differences.append((index, found))
        # the data tests on Spark, on the final state
        spark.dbt("test", "--exclude-resource-type", "unit_test",
                  "--vars", dbt_vars(stamp(as_ofs[-1])), *spark_target_args(work))
        tests = spark_run_results(work)
    return {"warehouse": warehouse, "spark_warehouse": spark_warehouse, "tables": tables,
            "differences": differences, "batches": len(batches), "tests": tests,
            "last_as_of": stamp(as_ofs[-1])}


def test_every_incremental_batch_is_equal_on_spark(replay: dict[str, Any]) -> None:
    assert "segments.segment_membership_history" in replay["tables"]
    assert [(index, [str(d) for d in found]) for index, found in replay["differences"]] == [
        (index, []) for index in range(replay["batches"])
    ]


def test_the_replay_ran_spark_incrementally_and_its_data_tests_pass(
    replay: dict[str, Any]
) -> None:
    tests = [r for r in replay["tests"] if r["unique_id"].startswith("test.")]
    assert [r["unique_id"] for r in tests if r["status"] not in ("pass", "warn")] == []
    assert len(tests) >= 150
    # Spark's watermarks are append-only: one row per run of fct_sessions, so every batch
    # after the first read its watermark and refreshed only the changed devices' buckets
    watermarks = spark_table_path(replay["spark_warehouse"], "intermediate.incremental_watermarks")
    with duckdb.connect() as con:
        [(runs,)] = con.sql(
            f"select count(*) from read_parquet('{watermarks}/**/*.parquet') "
            "where model_name = 'fct_sessions'").fetchall()
    assert runs == replay["batches"]


def test_the_dagster_job_runs_on_spark_with_dbt_tests_as_checks_and_serves_spark_tables(
    replay: dict[str, Any], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """EWH_DBT_TARGET=spark, nothing else changed: the same Dagster definitions rebuild a
    segment on Spark (the dbt CLI, its own JVM), its dbt tests are asset checks, the Great
    Expectations suite reads Spark's table (through ewh.spark.tables' views), and the serving
    copy is published from Spark's tables, equal to them row for row."""
    import dagster as dg

    from orchestration.defs.quality import check_name, suite_asset_key, suites
    from orchestration.defs.serving import SERVING_COPY
    from orchestration.translator import asset_key_for

    root = Path(__file__).resolve().parents[2]
    shutil.copytree(root / "expectations" / "gx", tmp_path / "gx_project" / "gx",
                    ignore=shutil.ignore_patterns("uncommitted"))
    warehouse, spark_warehouse = replay["warehouse"], replay["spark_warehouse"]
    for name, value in {
        "EWH_DBT_TARGET": "spark", "EWH_SPARK_SMALL_DATA": "1", "SPARK_LOCAL_IP": "127.0.0.1",
        "EWH_WAREHOUSE": str(warehouse), "EWH_SPARK_WAREHOUSE": str(spark_warehouse),
        "EWH_LAKE_DIR": str(warehouse.parent / "lake"), "EWH_SERVING": str(tmp_path / "s.duckdb"),
        "EWH_EXPORTS_DIR": str(tmp_path / "exports"), "EWH_MODELS_DIR": str(tmp_path / "models"),
        "EWH_GX_PROJECT_DIR": str(tmp_path / "gx_project"), "EWH_AS_OF": replay["last_as_of"],
    }.items():
        monkeypatch.setenv(name, value)
    from orchestration.definitions import defs

    segment = asset_key_for("segments", "seg_cart_abandoners")
    gx_checks = [dg.AssetCheckKey(suite_asset_key(spec), check_name(spec))
                 for spec in suites().values() if suite_asset_key(spec) == segment]
    assert gx_checks
    job = dg.define_asset_job("spark_segment", selection=dg.AssetSelection.assets(
        segment, SERVING_COPY) | dg.AssetSelection.checks(*gx_checks))
    result = dg.Definitions.merge(defs(), dg.Definitions(jobs=[job])).resolve_job_def(
        "spark_segment").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False,
        run_config={"loggers": {"console": {"config": {"log_level": "ERROR"}}}})
    assert result.success
    checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()
              if e.asset_key == segment}
    assert any(name.startswith("not_null") for name in checks), checks  # dbt tests
    assert any(name.startswith("gx_") for name in checks), [
        (e.asset_key, e.check_name) for e in result.get_asset_check_evaluations()]  # the GX suite
    assert all(checks.values()), checks
    [materialization] = [m for m in result.get_asset_materialization_events()
                         if m.asset_key == segment]
    members = materialization.materialization.metadata["members"].value
    segment_folder = spark_table_path(spark_warehouse, "segments.seg_cart_abandoners")
    with duckdb.connect(str(tmp_path / "s.duckdb"), read_only=True) as con:
        served = sorted(con.sql("select user_key from segments.seg_cart_abandoners").fetchall())
    with duckdb.connect() as con:
        built = sorted(con.sql(
            f"select user_key from read_parquet('{segment_folder}/**/*.parquet')").fetchall())
    assert served == built and members == len(built) >= 1


def test_erasure_removes_the_person_from_the_lake_and_from_spark_tables(
    replay: dict[str, Any], tmp_path: Path
) -> None:
    """Last in this file: it changes the replay's lake and Spark tables. The person's raw
    events in DuckDB, counted before the erasure, are the rows the lake's files lose."""
    warehouse, spark_warehouse = replay["warehouse"], replay["spark_warehouse"]
    lake = warehouse.parent / "lake"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        [(user_id, events)] = con.sql(
            "select user_id, count(*) from raw.events where user_id is not null "
            "group by user_id order by count(*) desc, user_id limit 1").fetchall()
        [(user_key,)] = con.sql(
            "select user_key from intermediate.int_identity_map "
            f"where id_type = 'user' and user_id = '{user_id}'").fetchall()
    sessions_file = spark_table_path(spark_warehouse, "marts.fct_sessions")
    with duckdb.connect() as con:
        [(spark_sessions,)] = con.sql(
            f"select count(*) from read_parquet('{sessions_file}/**/*.parquet') "
            f"where user_key = '{user_key}'").fetchall()
    assert spark_sessions >= 1
    # the replay's own landing zone: the erasure rewrites it too, and the verification scan
    # reads every file beside the warehouse
    settings = Settings(warehouse=warehouse, serving=tmp_path / "serving.duckdb",
                        landing_dir=warehouse.parent / "landing",
                        exports_dir=tmp_path / "exports",
                        erasure_receipts=tmp_path / "erasures", models_dir=tmp_path / "models",
                        key_store=tmp_path / "keystore", lake_dir=lake,
                        spark_warehouse=spark_warehouse)
    receipt = erase_user(user_id, settings).receipt
    removed = receipt["files"]["parquet_rows_removed"]
    lake_rows = sum(rows for path, rows in removed.items() if path.startswith(str(lake)))
    # raw events naming them by user_id: at least those (their devices' anonymous events too)
    assert lake_rows >= events
    assert any(path.startswith(str(sessions_file)) for path in removed)
    assert receipt["verification"]["clean"], receipt["verification"]
    assert parquet_hits(parquet_files(lake, spark_warehouse), [user_id, user_key]) == {}
    # every lake file still reads, with the same rows as the warehouse's raw layer
    with duckdb.connect() as con:
        [(in_lake,)] = con.sql(
            f"select count(*) from read_parquet('{lake}/raw/events/**/*.parquet')").fetchall()
    with duckdb.connect(str(warehouse), read_only=True) as con:
        [(in_warehouse,)] = con.sql("select count(*) from raw.events").fetchall()
    assert in_lake == in_warehouse
