"""The dbt project as Dagster sees it, with a manifest that is never stale."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from dagster_dbt import DbtProject

from ewh.paths import PROJECT_ROOT, warehouse_path
from ewh.segment_catalog import SegmentSpec, segments_from_manifest

# Files whose change alters the manifest.
_DBT_SOURCES = ("models", "macros", "seeds", "tests/dbt")


def dbt_env() -> dict[str, str]:
    """The environment for every dbt subprocess: an absolute warehouse path."""
    return {**os.environ, "EWH_WAREHOUSE": str(warehouse_path())}


def dbt_executable() -> str:
    """The dbt next to this interpreter, so a venv that is not activated still works."""
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def _newest_source_mtime(root: Path) -> float:
    newest = (root / "dbt_project.yml").stat().st_mtime
    for folder in _DBT_SOURCES:
        for path in (root / folder).rglob("*"):
            if path.suffix in {".sql", ".yml", ".yaml", ".csv"}:
                newest = max(newest, path.stat().st_mtime)
    return newest


def ensure_manifest(project: DbtProject) -> Path:
    """Parse the project when the manifest is missing or older than any model or yml.

    dagster-dbt's own preparer parses only under `dagster dev`; tests, the demo and
    the `dagster` CLI load the definitions directly and would read a stale manifest.
    """
    manifest = project.manifest_path
    root = Path(project.project_dir)
    if not manifest.exists() or manifest.stat().st_mtime < _newest_source_mtime(root):
        subprocess.run(
            [dbt_executable(), "parse", "--quiet", "--project-dir", str(root),
             "--profiles-dir", str(project.profiles_dir)],
            check=True, env=dbt_env(), cwd=root,
        )
    return manifest


dbt_project = DbtProject(project_dir=PROJECT_ROOT, profiles_dir=PROJECT_ROOT)
ensure_manifest(dbt_project)
# Parsed once for the whole code location (1.5 MB of JSON).
MANIFEST: dict[str, Any] = json.loads(dbt_project.manifest_path.read_text())
# Every model with meta.segment: the segment assets, exports, schedules and sizes follow it.
SEGMENTS: list[SegmentSpec] = segments_from_manifest(MANIFEST)
