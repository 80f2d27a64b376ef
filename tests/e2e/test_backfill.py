"""A daily backfill partition rebuilds its day of the event models, and nothing else changes."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ewh.sample.generator import generate

AS_OF = datetime(2026, 11, 1)
DAY = "2026-10-25"
COMPARED = ("intermediate.int_events_stitched", "intermediate.int_sessionized_events",
            "marts.fct_sessions", "marts.dim_users", "segments.seg_cart_abandoners")
VOLATILE = {"loaded_at", "stitched_at", "load_id"}


@pytest.fixture()
def built(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    for name, value in {
        "EWH_WAREHOUSE": tmp_path / "warehouse.duckdb", "EWH_LANDING_DIR": tmp_path / "landing",
        "EWH_EXPORTS_DIR": tmp_path / "exports", "EWH_SERVING": tmp_path / "serving.duckdb",
        "EWH_MODELS_DIR": tmp_path / "models",
        "EWH_AS_OF": str(AS_OF),
    }.items():
        monkeypatch.setenv(name, str(value))
    generate(tmp_path / "landing", events=3_000, seed=21, end=AS_OF)
    from orchestration.definitions import defs

    result = defs().resolve_job_def("refresh_warehouse").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)
    assert result.success
    return tmp_path / "warehouse.duckdb"


def _stable_columns(con: duckdb.DuckDBPyConnection, table: str) -> str:
    schema, name = table.split(".")
    columns = con.execute(
        "select column_name, data_type from information_schema.columns where table_schema = ? "
        "and table_name = ? order by ordinal_position", [schema, name]).fetchall()
    # Parallel float sums differ in the last bits between any two builds: compare doubles
    # to 6 decimals, as the incremental-equivalence test does.
    return ", ".join(f"round({c}, 6) as {c}" if t in ("DOUBLE", "FLOAT") else c
                     for c, t in columns if c not in VOLATILE)


def test_backfilling_a_day_repairs_it_and_leaves_every_table_as_a_rebuild_would(built: Path):
    with duckdb.connect(str(built)) as con:
        for table in COMPARED:
            con.execute(f"create table main.before_{table.split('.')[1]} as "
                        f"select {_stable_columns(con, table)} from {table}")
        # Damage the day: its stitched rows lose their user, a second day is left alone.
        damaged = con.execute(
            "update intermediate.int_events_stitched set user_key = 'damaged' "
            f"where cast(occurred_at as date) = date '{DAY}'").fetchone()[0]
        untouched_before = con.execute(
            "select max(stitched_at) from intermediate.int_events_stitched "
            f"where cast(occurred_at as date) <> date '{DAY}'").fetchone()[0]
    assert damaged > 0

    from orchestration.definitions import defs

    result = defs().resolve_job_def("backfill_events").execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), partition_key=DAY)
    assert result.success

    with duckdb.connect(str(built), read_only=True) as con:
        assert con.execute("select count(*) from intermediate.int_events_stitched "
                           "where user_key = 'damaged'").fetchone()[0] == 0
        for table in COMPARED:
            before = f"main.before_{table.split('.')[1]}"
            columns = _stable_columns(con, table)
            for left, right in ((f"select {columns} from {table}", f"select * from {before}"),
                                (f"select * from {before}", f"select {columns} from {table}")):
                extra = con.execute(f"select count(*) from ({left} except all {right})"
                                    ).fetchone()[0]
                assert extra == 0, f"{table} differs from before the damage: {extra} rows"
        untouched_after = con.execute(
            "select max(stitched_at) from intermediate.int_events_stitched "
            f"where cast(occurred_at as date) < date '{DAY}' - interval 2 day").fetchone()[0]
    # Days well before the partition were not rewritten.
    assert untouched_after <= untouched_before
