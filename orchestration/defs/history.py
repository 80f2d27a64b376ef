"""Segment history at past dates: a daily-partitioned asset whose partitions are the days
evaluated (ewh.segments.history).

Materializing a range of partitions (Assets > segments/segment_history_by_day > Materialize,
pick the days) runs ONE run for the whole range (a single-run backfill policy): the history
in that range is rewritten in one pass, in day order, which a run per day could not do.
The same as `ewh segments backfill --from D1 --to D2`. The whole-warehouse jobs leave it out.
"""

import dagster as dg

from ewh.report.locations import validations_dir
from ewh.report.page import write_report
from ewh.segments.history import backfill_history, parse_day, rebuild_dependents, warehouse_as_of
from ewh.segments.serving import publish_serving_copy
from orchestration.pools import WAREHOUSE_POOL
from orchestration.project import warehouse_project
from orchestration.resources import WarehouseSettings
from orchestration.translator import asset_key_for

HISTORY_BY_DAY = asset_key_for("segments", "segment_history_by_day")
days = dg.DailyPartitionsDefinition(start_date="2024-01-01", timezone="UTC", end_offset=1)


@dg.asset(
    key=HISTORY_BY_DAY,
    partitions_def=days,
    backfill_policy=dg.BackfillPolicy.single_run(),
    deps=[asset_key_for("segments", "segment_membership_history")],
    group_name="segments",
    kinds={"duckdb"},
    owners=["team:data-platform"],
    pool=WAREHOUSE_POOL,
    description="Every segment evaluated at each day's as_of (its last second, UTC), from the "
    "events: segment_membership_history, segment_memberships and segment_sizes_daily are "
    "rewritten for the days materialized, and the serving copy and the report are "
    "republished. One run per range of days.",
)
def segment_history_by_day(context: dg.AssetExecutionContext,
                           settings: WarehouseSettings) -> dg.MaterializeResult:
    where = settings.get()
    keys = context.partition_key_range
    cap = where.as_of or warehouse_as_of(where.warehouse)
    result = backfill_history(where.warehouse, parse_day(keys.start), parse_day(keys.end),
                              cap=cap)
    rebuild_dependents(where.warehouse, cap)
    publish_serving_copy(where.warehouse, where.serving, warehouse_project().segments,
                         context.run_id)
    write_report(where.serving, where.report, validations_dir())
    context.log.info(f"evaluated {result.days} days: {result.spells_before} -> "
                     f"{result.spells_after} spells")
    last = max(result.sizes)
    return dg.MaterializeResult(metadata={
        "days": dg.MetadataValue.int(result.days),
        "first_as_of": str(result.first_as_of),
        "last_as_of": str(result.last_as_of),
        "spells": dg.MetadataValue.int(result.spells_after),
        **{f"members_{name}": dg.MetadataValue.int(size)
           for name, size in sorted(result.sizes[last].items())},
    })


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[segment_history_by_day])
