"""The GX-on-DuckDB bug is real without the compat patch, and the patch fixes it.

The unpatched run happens in a subprocess: once applied, the patch lives for the whole process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest

from ewh.common.settings import PROJECT_ROOT

# Builds nothing; validates `schema.t` (100 rows, 10 null `v`) through a GX SQL datasource.
VALIDATION = """
import json, sys
import great_expectations as gx

def validate(url, schema, patched):
    if patched:
        from ewh.quality import gx_duckdb_compat
        gx_duckdb_compat.apply()
    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_sql(name="w", connection_string=url)
    asset = source.add_table_asset(name="t", table_name="t", schema_name=schema)
    batch = asset.add_batch_definition_whole_table("all").get_batch()
    result = batch.validate(gx.expectations.ExpectColumnValuesToNotBeNull(column="v"))
    info = result.exception_info or {}
    errors = [v.get("exception_message") for v in info.values() if isinstance(v, dict)]
    errors += [info.get("exception_message")] if info.get("raised_exception") else []
    source.get_execution_engine().engine.dispose()
    source.get_engine().dispose()
    return {"success": result.success, "unexpected_count": result.result.get("unexpected_count"),
            "errors": [e for e in errors if e]}

if __name__ == "__main__":  # argv: patched|unpatched, then url schema pairs
    pairs = sys.argv[2:]
    for url, schema in zip(pairs[::2], pairs[1::2]):
        print(json.dumps(validate(url, schema, sys.argv[1] == "patched")))
"""


def _table_with_ten_nulls(path: Path, schema: str) -> None:
    con = duckdb.connect(str(path))
    con.execute(f"create schema if not exists {schema}")
    con.execute(
        f"create table {schema}.t as select i as id, "
        "case when i % 10 = 0 then null else i end as v from range(100) r(i)"
    )
    con.close()


def _run_both_schemas(patched: bool, tmp_path: Path) -> dict[str, dict]:
    """Validate main.t and raw.t in one fresh process (importing GX costs ~3 s per process)."""
    args = []
    for schema in ("main", "raw"):
        path = tmp_path / f"w_{schema}.duckdb"  # a file named raw.duckdb shadows schema raw
        _table_with_ten_nulls(path, schema)
        args += [f"duckdb:///{path}", schema]
    script = tmp_path / "validate.py"
    script.write_text(VALIDATION)
    done = subprocess.run(
        [sys.executable, str(script), "patched" if patched else "unpatched", *args],
        capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=120, check=True,
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    return dict(zip(("main", "raw"), map(json.loads, lines), strict=True))


def test_unpatched_gx_cannot_validate_a_duckdb_table(tmp_path: Path) -> None:
    for schema, outcome in _run_both_schemas(patched=False, tmp_path=tmp_path).items():
        assert outcome["success"] is False, schema
        assert outcome["unexpected_count"] != 10
        assert outcome["errors"], "GX should report a metric error"
        # Bug 1 (rows fetched after the connection closed) shows up whatever the schema.
        assert any("list index out of range" in e for e in outcome["errors"])


def test_patched_gx_counts_the_ten_nulls(tmp_path: Path) -> None:
    for schema, outcome in _run_both_schemas(patched=True, tmp_path=tmp_path).items():
        assert outcome == {"success": False, "unexpected_count": 10, "errors": []}, schema


def test_unexpected_rows_are_counted_in_full_but_fetched_with_a_sql_limit(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import great_expectations as gx
    from great_expectations.execution_engine import SqlAlchemyExecutionEngine

    from ewh.quality import gx_duckdb_compat

    gx_duckdb_compat.apply()
    path = tmp_path / "w.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create table t as select i as id from range(10000) r(i)")
    con.close()
    seen: list[str] = []
    patched = SqlAlchemyExecutionEngine.execute_query

    def spy(self, query):
        seen.append(str(query))
        return patched(self, query)

    monkeypatch.setattr(SqlAlchemyExecutionEngine, "execute_query", spy)
    context = gx.get_context(mode="ephemeral")
    source = context.data_sources.add_sql(name="w", connection_string=f"duckdb:///{path}")
    batch = source.add_table_asset(name="t", table_name="t").add_batch_definition_whole_table(
        "all").get_batch()
    result = batch.validate(gx.expectations.UnexpectedRowsExpectation(
        unexpected_rows_query="select * from {batch} where id >= 0"))
    source.get_execution_engine().engine.dispose()
    source.get_engine().dispose()
    assert (result.success, result.result["observed_value"]) == (False, 10000)
    # Every row is unexpected, yet only 200 (GX's sample cap) may leave DuckDB.
    (records,) = [q for q in seen if "count(" not in q.lower() and "where id >= 0" in q]
    assert records.rstrip().endswith("limit 200")


def test_patch_is_idempotent_and_leaves_other_dialects_alone(tmp_path: Path) -> None:
    import sqlite3

    from great_expectations.execution_engine import SqlAlchemyExecutionEngine

    from ewh.quality import gx_duckdb_compat

    gx_duckdb_compat.apply()
    patched = SqlAlchemyExecutionEngine.execute_query
    gx_duckdb_compat.apply()
    assert SqlAlchemyExecutionEngine.execute_query is patched
    assert gx_duckdb_compat.is_applied()

    path = tmp_path / "w.sqlite"
    con = sqlite3.connect(path)
    con.execute("create table t as select 1 as id, null as v union all select 2, 2")
    con.commit()
    con.close()
    namespace: dict = {}
    exec(compile(VALIDATION, "validation", "exec"), namespace)
    outcome = namespace["validate"](f"sqlite:///{path}", None, True)
    assert outcome == {"success": False, "unexpected_count": 1, "errors": []}
