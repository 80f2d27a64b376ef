"""dbt nodes to Dagster asset keys and groups, in one place.

Keys follow the warehouse: `["marts", "fct_sessions"]`, `["raw", "events"]`; the group is
the layer (the schema), so the UI shows ingest -> staging -> intermediate -> marts -> segments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import AssetKey, AssetSpec, MetadataValue
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtProject

from ewh.segments.catalog import segment_meta

LAYER_GROUPS = {"raw": "ingest", "staging": "staging", "intermediate": "intermediate",
                "marts": "marts", "segments": "segments"}


def asset_key_for(schema: str, name: str) -> AssetKey:
    return AssetKey([schema, name])


class WarehouseTranslator(DagsterDbtTranslator):
    def __init__(self) -> None:
        super().__init__(settings=DagsterDbtTranslatorSettings(enable_code_references=False))

    def get_asset_spec(
        self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None
    ) -> AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        schema = props["schema"]
        name = props["name"]
        if props["resource_type"] == "source":
            return spec.replace_attributes(key=asset_key_for(schema, name))
        spec = spec.replace_attributes(
            key=asset_key_for(schema, name), group_name=LAYER_GROUPS.get(schema, schema)
        )
        segment = segment_meta(props)
        if segment:
            # Shown on the asset page: what the segment means and the SQL that decides it.
            spec = spec.merge_attributes(metadata={
                "rule": str(segment.get("rule", "")).strip(),
                "owner": str(segment.get("owner", "")),
                "refresh": str(segment.get("refresh", "")),
                "exported": bool(segment.get("exported", False)),
                "sql": MetadataValue.md(f"```sql\n{props.get('raw_code', '')}\n```"),
            })
        return spec
