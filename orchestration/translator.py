"""dbt nodes to Dagster asset keys and groups, in one place.

Keys follow the warehouse: `["marts", "fct_sessions"]`, `["raw", "events"]`; the group is
the layer (the schema), so the UI shows ingest -> staging -> intermediate -> marts -> segments.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from dagster import AssetKey, AssetSpec, FreshnessPolicy, MetadataValue
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings, DbtProject

from ewh.segments.catalog import REFRESH_CRONS, segment_meta

LAYER_GROUPS = {"raw": "ingest", "staging": "staging", "intermediate": "intermediate",
                "marts": "marts", "segments": "segments"}


PERIODS = {"hourly": timedelta(hours=1), "daily": timedelta(days=1),
           "weekly": timedelta(days=7)}


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
        owner = _owner(props)
        if owner:
            spec = spec.replace_attributes(owners=[owner])
        segment = segment_meta(props)
        if segment:
            spec = _segment_spec(spec, props, segment)
        return spec.replace_attributes(metadata=_ordered(spec.metadata))


def team_owner(owner: str) -> str:
    """A Dagster owner: an e-mail as is, a team name as `team:<name>`."""
    return owner if "@" in owner else f"team:{owner}"


def _owner(props: Mapping[str, Any]) -> str | None:
    """The owner a model declares: meta.segment.owner for a segment, else meta.owner (set per
    layer in dbt_project.yml, the dbt group's owner)."""
    segment = segment_meta(props) or {}
    meta = props.get("config", {}).get("meta") or props.get("meta") or {}
    owner = segment.get("owner") or meta.get("owner")
    return team_owner(str(owner)) if owner else None


def _segment_spec(spec: AssetSpec, props: Mapping[str, Any],
                  segment: Mapping[str, Any]) -> AssetSpec:
    """What a marketer looks for first: the rule as the description's first line, the owner,
    the refresh cadence as a freshness policy, then the SQL."""
    rule = str(segment.get("rule", "")).strip()
    refresh = str(segment.get("refresh", ""))
    return spec.replace_attributes(
        description=f"{rule}\n\n{props.get('description', '')}".strip(),
        freshness_policy=freshness_policy(refresh),
        metadata={
            "rule": rule,
            "owner": str(segment.get("owner", "")),
            "refresh": refresh,
            "exported": bool(segment.get("exported", False)),
            "sql": MetadataValue.md(f"```sql\n{props.get('raw_code', '')}\n```"),
            **spec.metadata,
        },
    )


def freshness_policy(refresh: str) -> FreshnessPolicy:
    """A segment's refresh cadence as a freshness policy: materialized at least once per
    period, by each tick of its cron (hourly: on the hour; daily: 03:00 UTC; weekly: Monday
    03:00 UTC). The hourly refresh_warehouse job keeps every segment fresh; the UI flags one
    that is not."""
    cron = REFRESH_CRONS.get(refresh, refresh)
    period = PERIODS.get(refresh, timedelta(days=1))
    return FreshnessPolicy.cron(deadline_cron=cron, lower_bound_delta=period, timezone="UTC")


def _ordered(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """dagster-dbt's own entries (it needs them to run dbt) last: the first screen of an
    asset shows what it is, not the machinery."""
    internal = ("dagster_dbt/", "dagster-dbt/")
    return {**{k: v for k, v in metadata.items() if not k.startswith(internal)},
            **{k: v for k, v in metadata.items() if k.startswith(internal)}}
