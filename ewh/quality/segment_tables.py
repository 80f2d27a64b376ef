"""The segments to validate, discovered from the dbt manifest (never listed by hand)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ewh.common.settings import get_settings
from ewh.segments.catalog import segments_from_manifest


@dataclass(frozen=True)
class SegmentTable:
    name: str  # the model, e.g. seg_cart_abandoners
    schema: str
    declared_columns: tuple[str, ...]  # the evidence columns documented in the model's yml
    exported: bool


def segment_tables(manifest_path: Path | None = None) -> list[SegmentTable]:
    """Every model with ``meta.segment``, with its schema and documented columns (from the
    manifest of the settings' dbt target folder unless one is given)."""
    manifest_path = manifest_path or get_settings().manifest_path
    if not manifest_path.exists():
        raise FileNotFoundError(f"no dbt manifest at {manifest_path}: run `dbt parse`")
    return segment_tables_from_manifest(json.loads(manifest_path.read_text()))


def segment_tables_from_manifest(manifest: dict[str, Any]) -> list[SegmentTable]:
    """The same, from a manifest already parsed (the Dagster code location holds one)."""
    nodes = manifest.get("nodes", {})
    return [
        SegmentTable(
            name=spec.name,
            schema=str(nodes[spec.unique_id].get("schema") or "segments"),
            declared_columns=tuple(nodes[spec.unique_id].get("columns") or {}),
            exported=spec.exported,
        )
        for spec in segments_from_manifest(manifest)
    ]
