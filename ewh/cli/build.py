"""`ewh build`: `dbt build`, skipped when nothing it reads changed since the last successful one."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ewh.cli.main import Handler, command

if TYPE_CHECKING:
    from ewh.common.build_inputs import BuildInputs


@command("build", "dbt build of the warehouse, skipped in a few seconds when nothing it reads "
                  "(raw tables, code, command line with a pinned as_of) changed since the last "
                  "successful `ewh build` (docs/performance.md)", passthrough=True)
def _build(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("dbt_args", nargs="*", metavar="DBT_ARGS",
                        help="passed to dbt build, for example "
                        "--vars '{as_of: \"2026-10-01\"}' --select marts")
    return _run


def _run(args: argparse.Namespace) -> int:
    from ewh.common.build_inputs import build_inputs, option_value, recorded_key
    from ewh.common.settings import PROJECT_ROOT, get_settings

    dbt_args = list(args.passthrough)
    started = time.perf_counter()
    warehouse = get_settings().warehouse
    project_dir = Path(option_value(dbt_args, "--project-dir") or PROJECT_ROOT)
    profiles_dir = Path(option_value(dbt_args, "--profiles-dir")
                        or os.environ.get("DBT_PROFILES_DIR") or project_dir)
    target_path = Path(option_value(dbt_args, "--target-path")
                       or os.environ.get("DBT_TARGET_PATH") or project_dir / "target")
    target = (option_value(dbt_args, "--target", "-t") or os.environ.get("DBT_TARGET")
              or os.environ.get("EWH_DBT_TARGET", "duckdb"))
    inputs = build_inputs(warehouse, dbt_args, project_dir, profiles_dir, target, os.environ)
    if inputs.skippable and inputs.key() == recorded_key(warehouse):
        print(f"ewh build: skipped, nothing it reads changed since the last successful build "
              f"(raw tables, code, command line); checked in "
              f"{time.perf_counter() - started:.1f} s")
        return 0
    if inputs.reason:
        print(f"ewh build: building ({inputs.reason})")
    dbt = Path(sys.executable).with_name("dbt")
    command = [str(dbt) if dbt.exists() else "dbt", "build", *dbt_args]
    for option, value in (("--project-dir", project_dir), ("--profiles-dir", profiles_dir),
                          ("--target-path", target_path)):
        if option_value(dbt_args, option) is None:
            command += [option, str(value)]
    # dbt's profile reads the same warehouse as the settings, wherever dbt is started
    env = {**os.environ, "EWH_WAREHOUSE": str(warehouse)}
    code = subprocess.run(command, env=env, check=False).returncode
    if code == 0 and inputs.parts is not None:
        _record(inputs, warehouse, target_path)
    return code


def _record(inputs: BuildInputs, warehouse: Path, target_path: Path) -> None:
    """Record the key of the build that just succeeded; a failure to record only means the
    next build runs, so it is a warning, and the exit code stays dbt's."""
    import duckdb

    from ewh.common.build_inputs import record_key

    try:
        results = json.loads((target_path / "run_results.json").read_text())
        key = inputs.key(warehouse)
        recorded = key is not None and record_key(warehouse, key,
                                                  results["metadata"]["invocation_id"])
    except (OSError, ValueError, KeyError, duckdb.Error) as exc:
        print(f"ewh build: warning: the inputs key was not recorded ({exc}); the next build "
              "runs", file=sys.stderr)
        return
    if not recorded:
        print("ewh build: another dbt invocation started meanwhile: no inputs key recorded, "
              "the next build runs", file=sys.stderr)
