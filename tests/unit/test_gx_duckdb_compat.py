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

from ewh.paths import PROJECT_ROOT

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

if __name__ == "__main__":
    print(json.dumps(validate(sys.argv[1], sys.argv[2], sys.argv[3] == "patched")))
"""


def _table_with_ten_nulls(path: Path, schema: str) -> None:
    con = duckdb.connect(str(path))
    con.execute(f"create schema if not exists {schema}")
    con.execute(
        f"create table {schema}.t as select i as id, "
        "case when i % 10 = 0 then null else i end as v from range(100) r(i)"
    )
    con.close()


def _run(url: str, schema: str, patched: bool, tmp_path: Path) -> dict:
    script = tmp_path / "validate_once.py"
    script.write_text(VALIDATION)
    done = subprocess.run(
        [sys.executable, str(script), url, schema, "patched" if patched else "unpatched"],
        capture_output=True,
        text=True,
        cwd=PROJECT_ROOT,
        timeout=120,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("schema", ["main", "raw"])
def test_unpatched_gx_cannot_validate_a_duckdb_table(tmp_path: Path, schema: str) -> None:
    path = tmp_path / "w.duckdb"
    _table_with_ten_nulls(path, schema)
    outcome = _run(f"duckdb:///{path}", schema, patched=False, tmp_path=tmp_path)
    assert outcome["success"] is False
    assert outcome["unexpected_count"] != 10
    assert outcome["errors"], "GX should report a metric error"
    # Bug 1 (rows fetched after the connection closed) shows up whatever the schema.
    assert any("list index out of range" in e for e in outcome["errors"])


@pytest.mark.parametrize("schema", ["main", "raw"])
def test_patched_gx_counts_the_ten_nulls(tmp_path: Path, schema: str) -> None:
    path = tmp_path / "w.duckdb"
    _table_with_ten_nulls(path, schema)
    outcome = _run(f"duckdb:///{path}", schema, patched=True, tmp_path=tmp_path)
    assert outcome == {"success": False, "unexpected_count": 10, "errors": []}


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
