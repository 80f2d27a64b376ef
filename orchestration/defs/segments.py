"""One export asset per exported segment, discovered from `meta.segment` in the dbt models.

Exports read the serving copy, so they see exactly what analysts and the API see.
"""

import dagster as dg

from ewh.exports import export_segment
from ewh.paths import exports_dir, serving_path
from ewh.segment_catalog import SegmentSpec
from orchestration.defs.serving import SERVING_COPY
from orchestration.project import SEGMENTS
from orchestration.translator import asset_key_for


def _owner(spec: SegmentSpec) -> str:
    return spec.owner if "@" in spec.owner else f"team:{spec.owner}"


def build_export_asset(spec: SegmentSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=dg.AssetKey(["exports", spec.name]),
        deps=[asset_key_for("segments", spec.name), SERVING_COPY],
        group_name="exports",
        kinds={"parquet", "csv"},
        owners=[_owner(spec)],
        description=f"Members of {spec.name}, and who entered and exited since the last "
        f"export, for email and ad tools. Rule: {spec.rule}",
        metadata={"rule": spec.rule, "owner": spec.owner, "refresh": spec.refresh},
    )
    def _export(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        result = export_segment(serving_path(), spec.name, exports_dir())
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


export_assets = [build_export_asset(spec) for spec in SEGMENTS if spec.exported]
