"""Where the report reads its quality results from, without importing Great Expectations
(the report needs only the stored JSON)."""

from __future__ import annotations

from pathlib import Path

from ewh.common.settings import PROJECT_ROOT, get_settings


def validations_dir() -> Path:
    """The GX project's stored validation results (EWH_GX_PROJECT_DIR, else expectations/)."""
    project = get_settings().gx_project_dir or PROJECT_ROOT / "expectations"
    return project / "gx" / "uncommitted" / "validations"
