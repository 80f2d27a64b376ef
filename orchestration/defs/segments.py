"""Per segment, discovered from `meta.segment` in the dbt models: an export asset (when
exported) and a job that refreshes just that segment (on demand; its cadence is a freshness
policy on the segment asset).

Exports read the serving copy, so they see exactly what analysts and the API see.
"""

import dagster as dg

from ewh.segments.catalog import SegmentSpec
from ewh.segments.exports import export_segment
from orchestration.defs.serving import SERVING_COPY
from orchestration.project import warehouse_project
from orchestration.resources import WarehouseSettings
from orchestration.translator import asset_key_for, team_owner


def build_export_asset(spec: SegmentSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=dg.AssetKey(["exports", spec.name]),
        deps=[asset_key_for("segments", spec.name), SERVING_COPY],
        group_name="exports",
        kinds={"parquet", "csv"},
        owners=[team_owner(spec.owner)],
        description=f"{spec.rule}\n\nMembers of {spec.name}, and who entered and exited "
        "since the last export, for email and ad tools.",
        metadata={"rule": spec.rule, "owner": spec.owner, "refresh": spec.refresh},
    )
    def _export(context: dg.AssetExecutionContext,
                settings: WarehouseSettings) -> dg.MaterializeResult:
        where = settings.get()
        result = export_segment(where.serving, spec.name, where.exports_dir)
        context.log.info(f"{spec.name}: {result.rows} members (+{result.entered} "
                         f"-{result.exited}) -> {result.parquet_path.parent}")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": dg.MetadataValue.int(result.rows),
            "entered": dg.MetadataValue.int(result.entered),
            "exited": dg.MetadataValue.int(result.exited),
            "rule": spec.rule,
            "folder": dg.MetadataValue.path(str(result.parquet_path.parent)),
        })

    return _export


MEMBERSHIP_MODELS = [asset_key_for("segments", "segment_membership_history"),
                     asset_key_for("segments", "segment_memberships")]


def segment_job(spec: SegmentSpec):
    """A segment with what it needs: its upstream, membership history, publish, export."""
    selection = (
        dg.AssetSelection.assets(asset_key_for("segments", spec.name)).upstream()
        | dg.AssetSelection.assets(*MEMBERSHIP_MODELS, SERVING_COPY)
        | dg.AssetSelection.groups("ingest")  # the raw load produces its three tables at once
    )
    if spec.exported:
        selection = selection | dg.AssetSelection.assets(dg.AssetKey(["exports", spec.name]))
    return dg.define_asset_job(f"refresh_{spec.name}", selection=selection,
                               description=f"Refresh {spec.name} ({spec.refresh}): {spec.rule}")


@dg.definitions
def defs() -> dg.Definitions:
    segments = warehouse_project().segments
    # Cadences are freshness policies on the segment assets (orchestration/translator.py),
    # not schedules: the hourly refresh keeps every segment fresh, and a job per segment
    # refreshes one on demand.
    return dg.Definitions(
        assets=[build_export_asset(spec) for spec in segments if spec.exported],
        jobs=[segment_job(spec) for spec in segments],
    )
