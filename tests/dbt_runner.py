"""Run the real dbt CLI against a warehouse file, with its own target and log folders."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parents[1]


def run_dbt(warehouse: Path, work_dir: Path, *args: str) -> None:
    """`dbt <args>` on `warehouse`; target/ and logs/ under `work_dir`, so runs never clash."""
    local = Path(sys.executable).with_name("dbt")
    executable = str(local) if local.exists() else (shutil.which("dbt") or "dbt")
    env = {**os.environ, "EWH_WAREHOUSE": str(warehouse), "EWH_DBT_TARGET": "duckdb"}
    command = [
        executable, *args,
        "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
        "--target-path", str(work_dir / "target"), "--log-path", str(work_dir / "logs"),
    ]  # fmt: skip
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"dbt {args[0]} failed:\n{result.stdout[-6000:]}"
