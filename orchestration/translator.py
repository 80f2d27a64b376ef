"""dbt nodes to Dagster asset keys and groups, in one place.

Keys follow the warehouse: `["marts", "fct_sessions"]`, `["raw", "events"]`; the group is
the layer (the schema), so the UI shows ingest -> staging -> intermediate -> marts -> segments.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from dagster import AssetKey, AssetSpec
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtProject

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
        return spec.replace_attributes(
            key=asset_key_for(schema, name), group_name=LAYER_GROUPS.get(schema, schema)
        )
