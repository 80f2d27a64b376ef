"""The hourly refresh's test scope (ewh/common/refresh_scope.py): an incremental build of a
built warehouse runs the data tests of marts and segments and leaves the others to the full
refresh; a first build, a full refresh and `all_tests` run them all.

The scope is written as dbt path selectors; the check here is by another definition: the
schema of the model each test is attached to, from the manifest a real `dbt ls` reads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import duckdb

from ewh.common.refresh_scope import UNPUBLISHED_TESTS
from orchestration.defs.transform import DbtBuildConfig, build_args
from orchestration.resources import WarehouseSettings

PROJECT = Path(__file__).resolve().parents[2]
PUBLISHED_SCHEMAS = {"marts", "segments"}


def _dbt_ls(tmp_path: Path, *extra: str) -> list[dict]:
    dbt = Path(sys.executable).with_name("dbt")
    proc = subprocess.run(
        [str(dbt), "ls", "-q", "--resource-type", "test", "--output", "json",
         "--output-keys", "unique_id", "--project-dir", str(PROJECT), "--profiles-dir",
         str(PROJECT), "--target-path", str(tmp_path / "target"), "--log-path",
         str(tmp_path / "logs"), *extra],
        env={**os.environ, "EWH_WAREHOUSE": str(tmp_path / "w.duckdb"),
             "EWH_DBT_TARGET": "duckdb"},
        capture_output=True, text=True, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return [json.loads(line) for line in proc.stdout.splitlines() if line.startswith("{")]


def test_an_incremental_build_keeps_exactly_the_tests_of_published_tables(tmp_path) -> None:
    everything = {t["unique_id"] for t in _dbt_ls(tmp_path)}
    # as build_args passes it: one argument, then another --exclude (Dagster's own)
    kept = {t["unique_id"] for t in _dbt_ls(tmp_path, "--exclude", " ".join(UNPUBLISHED_TESTS),
                                            "--exclude", "resource_type:exposure")}
    manifest = json.loads((tmp_path / "target" / "manifest.json").read_text())
    nodes = {**manifest["nodes"], **manifest["sources"]}

    def published(test_id: str) -> bool:
        """Every model the test reads is in a published schema (singular tests read several;
        source and seed tests read no model)."""
        read = manifest["nodes"][test_id]["depends_on"]["nodes"]
        return bool(read) and all(nodes[n]["resource_type"] == "model"
                                  and nodes[n]["schema"] in PUBLISHED_SCHEMAS for n in read)

    assert len(everything) > 200 and kept < everything
    assert kept == {t for t in everything if published(t)}, (
        sorted(kept ^ {t for t in everything if published(t)})[:10])


def _settings(tmp_path: Path) -> WarehouseSettings:
    return WarehouseSettings(warehouse=str(tmp_path / "w.duckdb"), landing_dir=str(tmp_path),
                             serving=str(tmp_path / "s.duckdb"), exports_dir=str(tmp_path),
                             report=str(tmp_path / "r.html"), ops_db=str(tmp_path / "o.db"),
                             models_dir=str(tmp_path / "models"))


def _excludes_unpublished(args: list[str]) -> bool:
    return " ".join(UNPUBLISHED_TESTS) in args


def test_only_an_incremental_build_of_a_built_warehouse_narrows_the_tests(tmp_path) -> None:
    settings = _settings(tmp_path)
    # no warehouse yet, then one without marts: a first build runs every test
    assert not _excludes_unpublished(build_args(DbtBuildConfig(), settings))
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("create schema marts")
    assert not _excludes_unpublished(build_args(DbtBuildConfig(), settings))
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute("create table marts.dim_users (user_key varchar)")
    assert _excludes_unpublished(build_args(DbtBuildConfig(), settings))
    assert not _excludes_unpublished(build_args(DbtBuildConfig(full_refresh=True), settings))
    assert not _excludes_unpublished(build_args(DbtBuildConfig(all_tests=True), settings))
