"""Publish marts and segments to the read-only serving copy after a good refresh."""

import dagster as dg

from ewh.paths import serving_path, warehouse_path
from ewh.serving import publish_serving_copy
from orchestration.defs.quality import gated_asset_keys
from orchestration.pools import WAREHOUSE_POOL
from orchestration.project import MANIFEST, SEGMENTS
from orchestration.translator import asset_key_for

SERVING_COPY = dg.AssetKey(["serving", "serving_copy"])


def _published_models() -> list[dg.AssetKey]:
    return sorted(
        (asset_key_for(n["schema"], n["name"]) for n in MANIFEST["nodes"].values()
         if n["resource_type"] == "model" and n["schema"] in ("marts", "segments")),
        key=lambda k: k.to_user_string(),
    )


@dg.asset(
    key=SERVING_COPY,
    # Plus every asset with a GX suite (staging too): Dagster blocks only the direct
    # dependents of a failed blocking check, and a failed suite must keep the last good copy.
    deps=sorted({*_published_models(), *gated_asset_keys()}, key=lambda k: k.to_user_string()),
    group_name="serving",
    kinds={"duckdb"},
    # It reads the warehouse file: it must not overlap a writer.
    pool=WAREHOUSE_POOL,
    description="data/serving.duckdb: marts and segments, published atomically (new file, "
    "then rename) after every refresh whose error-level checks passed. Analysts, exports and "
    "the segment API read only this copy.",
)
def serving_copy(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    result = publish_serving_copy(warehouse_path(), serving_path(),
                                  SEGMENTS, context.run_id)
    context.log.info(f"published {len(result.tables)} tables to {result.path}")
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(result.path)),
        "published_at": dg.MetadataValue.timestamp(result.published_at.timestamp()),
        "tables": dg.MetadataValue.json(result.tables),
    })
