"""Publish marts and segments to the read-only serving copy after a good refresh."""

import dagster as dg

from ewh.segments.serving import publish_serving_copy
from ewh.spark.tables import tables_for_reads
from orchestration.defs.quality import gated_asset_keys, suites
from orchestration.defs.realtime import SEGMENT_CHANGES
from orchestration.pools import WAREHOUSE_POOL
from orchestration.project import WarehouseProject, warehouse_project
from orchestration.resources import WarehouseSettings
from orchestration.translator import asset_key_for

SERVING_COPY = dg.AssetKey(["serving", "serving_copy"])


def _published_models(project: WarehouseProject) -> list[dg.AssetKey]:
    return [asset_key_for(n["schema"], n["name"]) for n in project.manifest["nodes"].values()
            if n["resource_type"] == "model" and n["schema"] in ("marts", "segments")]


def build_serving_copy(project: WarehouseProject, gated: list[dg.AssetKey]) -> dg.AssetsDefinition:
    @dg.asset(
        key=SERVING_COPY,
        # Plus every asset with a GX suite (staging too): Dagster blocks only the direct
        # dependents of a failed blocking check, and a failed suite must keep the last good
        # copy.
        # The change log too: the pull API reads it from the serving copy.
        deps=sorted({*_published_models(project), *gated, SEGMENT_CHANGES},
                    key=lambda k: k.to_user_string()),
        group_name="serving",
        kinds={"duckdb"},
        # It reads the warehouse file: it must not overlap a writer.
        pool=WAREHOUSE_POOL,
        description="data/serving.duckdb: marts and segments, published atomically (new "
        "file, then rename) after every refresh whose error-level checks passed. Analysts, "
        "exports and the segment API read only this copy.",
    )
    def serving_copy(context: dg.AssetExecutionContext,
                     settings: WarehouseSettings) -> dg.MaterializeResult:
        where = settings.get()
        # the warehouse's tables, or with the Spark target Spark's (ewh.spark.tables)
        result = publish_serving_copy(tables_for_reads(where), where.serving,
                                      project.segments, context.run_id)
        context.log.info(f"published {len(result.tables)} tables to {result.path}")
        return dg.MaterializeResult(metadata={
            "path": dg.MetadataValue.path(str(result.path)),
            "published_at": dg.MetadataValue.timestamp(result.published_at.timestamp()),
            "tables": dg.MetadataValue.json(result.tables),
        })

    return serving_copy


@dg.definitions
def defs() -> dg.Definitions:
    gated = gated_asset_keys(list(suites().values()))
    return dg.Definitions(assets=[build_serving_copy(warehouse_project(), gated)])
