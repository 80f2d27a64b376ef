"""The dbt project as Dagster sees it, prepared lazily: nothing here runs dbt at import.

`warehouse_project()` is called while the definitions load. It parses the project when
the manifest is missing or older than any model, macro, seed or yml (dagster-dbt's own
preparer parses only under `dagster dev`; tests, the demo and the `dagster` CLI would
otherwise read a stale manifest), then reads the manifest once for the whole code location.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from functools import cache, cached_property
from pathlib import Path
from typing import Any

from dagster_dbt import DbtCliResource, DbtProject, DbtProjectPreparer
from dagster_shared.record import replace

from ewh.common.settings import PROJECT_ROOT
from ewh.quality.segment_tables import SegmentTable, segment_tables_from_manifest
from ewh.segments.catalog import SegmentSpec, segments_from_manifest

# Files whose change alters the manifest.
_DBT_SOURCES = ("models", "macros", "seeds", "tests/dbt")


def dbt_executable() -> str:
    """The dbt next to this interpreter, so a venv that is not activated still works."""
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def _newest_source_mtime(root: Path) -> float:
    newest = (root / "dbt_project.yml").stat().st_mtime
    for folder in _DBT_SOURCES:
        for path in (root / folder).rglob("*"):
            if path.suffix in {".sql", ".yml", ".yaml", ".csv", ".md"}:
                newest = max(newest, path.stat().st_mtime)
    return newest


class StaleManifestPreparer(DbtProjectPreparer):
    """Parse the project (`dbt parse`, with the venv's dbt) whenever the manifest is stale."""

    def prepare_if_dev(self, project: DbtProject) -> None:
        manifest = project.manifest_path
        if not manifest.exists() or manifest.stat().st_mtime < _newest_source_mtime(
                Path(project.project_dir)):
            self.prepare(project)

    def prepare(self, project: DbtProject) -> None:
        dbt = DbtCliResource(project_dir=project, dbt_executable=dbt_executable())
        dbt.cli(["parse", "--quiet"], target_path=project.target_path).wait()


def _dbt_project() -> DbtProject:
    project = DbtProject(project_dir=PROJECT_ROOT, profiles_dir=PROJECT_ROOT)
    # DbtProject takes no preparer argument; it is a record: swap the field in a copy.
    return replace(project, preparer=StaleManifestPreparer())


dbt_project = _dbt_project()


@dataclass
class WarehouseProject:
    """The prepared dbt project and what the code location derives from its manifest."""

    dbt: DbtProject
    manifest: dict[str, Any]
    # Every model with meta.segment: the segment assets, exports, schedules and sizes follow it.
    segments: list[SegmentSpec]

    @property
    def manifest_path(self) -> Path:
        return self.dbt.manifest_path

    @cached_property
    def segment_tables(self) -> list[SegmentTable]:
        """The segments as the quality suites see them, from the manifest parsed above."""
        return segment_tables_from_manifest(self.manifest)


@cache
def warehouse_project() -> WarehouseProject:
    """Prepare the dbt project (parse if stale) and read its manifest, once per process."""
    dbt_project.prepare_if_dev()
    manifest = json.loads(dbt_project.manifest_path.read_text())
    return WarehouseProject(dbt_project, manifest, segments_from_manifest(manifest))
