"""Run the real dbt CLI against a warehouse file, with its own target and log folders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import dbt_parse_cache

PROJECT_DIR = Path(__file__).resolve().parents[1]


def run_dbt(warehouse: Path, work_dir: Path, *args: str) -> None:
    """`dbt <args>` on `warehouse`; target/ and logs/ under `work_dir`, so runs never clash."""
    result = dbt_command(warehouse, work_dir, *args)
    assert result.returncode == 0, f"dbt {args[0]} failed:\n{result.stdout[-6000:]}"


def dbt_command(
    warehouse: Path, work_dir: Path, *args: str, project_dir: Path = PROJECT_DIR
) -> subprocess.CompletedProcess[str]:
    """run_dbt's call, for a caller that judges the outcome itself (`project_dir`: a copy).

    dbt runs in the warehouse's folder and is given the file's name, not its path: the path is
    part of the profile dbt checks before it reuses a saved parse, so every test's warehouse of
    the same name shares one (dbt_parse_cache.py). Every other path is absolute.
    """
    warehouse, work_dir = Path(warehouse).resolve(), Path(work_dir).resolve()
    local = Path(sys.executable).with_name("dbt")
    executable = str(local) if local.exists() else (shutil.which("dbt") or "dbt")
    env = {**os.environ, "EWH_WAREHOUSE": warehouse.name, "EWH_DBT_TARGET": "duckdb"}
    target = work_dir / "target"
    command = [
        executable, *args,
        "--project-dir", str(project_dir), "--profiles-dir", str(project_dir),
        "--target-path", str(target), "--log-path", str(work_dir / "logs"),
    ]  # fmt: skip
    key = dbt_parse_cache.parse_key(project_dir, warehouse.name, args)
    dbt_parse_cache.restore(target, key)
    result = subprocess.run(
        command, cwd=warehouse.parent, env=env, capture_output=True, text=True, check=False
    )
    dbt_parse_cache.save(target, key, succeeded=result.returncode == 0)
    return result


def warehouse_in(folder: Path) -> Path:
    """A warehouse file in its own `folder`, under the name every test's warehouse can share:
    calls with the same --vars on warehouses of the same name share dbt's parse."""
    folder.mkdir(parents=True, exist_ok=True)
    return folder / "warehouse.duckdb"
