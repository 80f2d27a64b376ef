"""`ewh quality`: a summary on stdout, exit 0 when clean (warnings allowed), 1 on an
error-level failure, and the failing column and count named in the output."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from quality_warehouse import AS_OF, SEGMENT, build_warehouse, copy_project, execute

from ewh.cli.main import main


@pytest.fixture
def setup(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    warehouse = tmp_path / "warehouse.duckdb"
    build_warehouse(warehouse)
    manifest = tmp_path / "manifest.json"
    node = {"resource_type": "model", "name": SEGMENT.name, "schema": SEGMENT.schema,
            "columns": {c: {} for c in SEGMENT.declared_columns},
            "config": {"meta": {"segment": {"rule": "r", "owner": "o", "refresh": "daily",
                                            "exported": True}}}}
    manifest.write_text(json.dumps({"nodes": {f"model.x.{SEGMENT.name}": node}}))
    monkeypatch.setenv("EWH_GX_PROJECT_DIR", str(copy_project(tmp_path / "gx")))
    return {"warehouse": warehouse, "manifest": manifest}


def _quality(setup: dict[str, Path], *extra: str) -> int:
    return main(["quality", "--warehouse", str(setup["warehouse"]), "--manifest",
                 str(setup["manifest"]), "--as-of", AS_OF.isoformat(), *extra])


def test_clean_warehouse_passes_every_checkpoint(setup, capsys) -> None:
    assert _quality(setup) == 0
    out = capsys.readouterr().out
    for suite in ("raw_events", "stg_events", "fct_sessions", "dim_users",
                  "segment_membership_history", "seg_test"):
        assert suite in out
    assert "quality gate passed: 6 suites, 0 warnings" in out
    assert "Data Docs: file://" in out


def test_bad_rows_in_raw_fail_naming_the_column_and_count(setup, capsys) -> None:
    execute(setup["warehouse"],
            "update raw.events set user_id = null, anonymous_id = null "
            "where message_id in ('m1', 'm3')")
    assert _quality(setup, "--no-docs") == 1
    out = capsys.readouterr().out
    assert ("ERROR raw.events.anonymous_id: 2 null values where user_id IS NULL "
            "(expect_column_values_to_not_be_null, error) e.g. m1, m3") in out
    assert "quality gate FAILED: 1 error-level failures in 1 of 6 suites" in out


def test_warnings_alone_exit_zero(setup, capsys) -> None:
    execute(setup["warehouse"], "update staging.stg_events set price = -1 "
                                "where message_id = 'm0'")
    assert _quality(setup, "--no-docs", "stg_events") == 0
    out = capsys.readouterr().out
    assert "WARN  staging.stg_events.price: 1 values below 0" in out
    assert "quality gate passed: 1 suites, 1 warnings" in out


def test_unknown_suite_is_an_operational_error(setup, capsys) -> None:
    assert _quality(setup, "nope") == 1
    assert "unknown suites ['nope']" in capsys.readouterr().err


def test_list_names_every_suite_with_its_table(setup, capsys) -> None:
    assert _quality(setup, "--list") == 0
    out = capsys.readouterr().out
    assert "seg_test" in out and "segments.seg_test" in out and "raw.events" in out
