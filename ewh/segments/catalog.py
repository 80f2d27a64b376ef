"""Segments as declared in dbt: every model with `meta.segment` in the manifest."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REFRESH_CRONS = {"hourly": "0 * * * *", "daily": "0 3 * * *", "weekly": "0 3 * * 1"}


@dataclass(frozen=True)
class SegmentSpec:
    name: str  # the model name, e.g. seg_cart_abandoners
    rule: str
    owner: str
    refresh: str
    exported: bool
    description: str
    unique_id: str

    @property
    def short_name(self) -> str:
        return self.name.removeprefix("seg_")

    @property
    def refresh_cron(self) -> str:
        """hourly | daily | weekly, or a cron string as is."""
        return REFRESH_CRONS.get(self.refresh, self.refresh)


def segment_meta(node: Mapping[str, Any]) -> dict[str, Any] | None:
    """A dbt node's `meta.segment` (dbt keeps meta under config; older manifests beside it)."""
    meta = node.get("config", {}).get("meta") or node.get("meta") or {}
    return meta.get("segment")


def segments_from_manifest(manifest: dict[str, Any]) -> list[SegmentSpec]:
    found = []
    for unique_id, node in manifest.get("nodes", {}).items():
        if node.get("resource_type") != "model":
            continue
        meta = segment_meta(node)
        if not meta:
            continue
        missing = {"rule", "owner", "refresh", "exported"} - set(meta)
        if missing:
            raise ValueError(f"model {node['name']}: meta.segment lacks {sorted(missing)}")
        found.append(SegmentSpec(
            name=node["name"], rule=str(meta["rule"]).strip(), owner=str(meta["owner"]),
            refresh=str(meta["refresh"]), exported=bool(meta["exported"]),
            description=node.get("description", ""), unique_id=unique_id,
        ))
    return sorted(found, key=lambda s: s.name)


class UnknownSegment(LookupError):
    pass


def resolve_segment_name(name: str, known: Iterable[str]) -> str:
    """The model name of a segment given either way: `cart_abandoners` or
    `seg_cart_abandoners` (the CLI, the API and the exports accept both)."""
    names = set(known)
    for candidate in (name, f"seg_{name}"):
        if candidate in names:
            return candidate
    raise UnknownSegment(f"unknown segment {name!r}; known: "
                         f"{', '.join(sorted(n.removeprefix('seg_') for n in names))} "
                         "(with or without seg_)")


def load_segments(manifest_path: Path) -> list[SegmentSpec]:
    return segments_from_manifest(json.loads(manifest_path.read_text()))
