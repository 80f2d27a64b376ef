"""One export asset per segment, discovered from `meta.segment` in the dbt models."""


import duckdb
import dagster as dg

from ewh.exports import export_segment
from ewh.paths import exports_dir, warehouse_path
from ewh.segment_catalog import SegmentSpec, load_segments
from orchestration.project import dbt_project
from orchestration.translator import asset_key_for

SEGMENTS: list[SegmentSpec] = load_segments(dbt_project.manifest_path)


def _sample_members(segment: str, limit: int = 5) -> str:
    with duckdb.connect(str(warehouse_path()), read_only=True) as con:
        rows = con.execute(
            f'select * from segments."{segment}" order by user_key limit {limit}'
        ).fetchall()
        columns = [d[0] for d in con.description]
    header = "| " + " | ".join(columns) + " |\n|" + "---|" * len(columns) + "\n"
    return header + "".join("| " + " | ".join(str(v) for v in row) + " |\n" for row in rows)


def build_export_asset(spec: SegmentSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=dg.AssetKey(["exports", spec.name]),
        deps=[asset_key_for("segments", spec.name)],
        group_name="exports",
        kinds={"parquet", "csv"},
        owners=[spec.owner if "@" in spec.owner else f"team:{spec.owner}"],
        description=f"Members of {spec.name} exported for activation. Rule: {spec.rule}",
        metadata={"rule": spec.rule, "owner": spec.owner, "refresh": spec.refresh},
    )
    def _export(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
        result = export_segment(warehouse_path(), spec.name, exports_dir())
        context.log.info(f"{spec.name}: {result.rows} members -> {result.parquet_path}")
        return dg.MaterializeResult(metadata={
            "dagster/row_count": dg.MetadataValue.int(result.rows),
            "rule": spec.rule,
            "owner": spec.owner,
            "parquet": dg.MetadataValue.path(str(result.parquet_path)),
            "csv": dg.MetadataValue.path(str(result.csv_path)),
            "sample_members": dg.MetadataValue.md(_sample_members(spec.name)),
        })

    return _export


export_assets = [build_export_asset(spec) for spec in SEGMENTS if spec.exported]
