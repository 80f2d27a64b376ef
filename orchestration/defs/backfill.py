"""Backfills: a daily-partitioned job that rebuilds the event models one day at a time.

The event models are incremental (delete+insert on message_id). A partition runs an
incremental `dbt build` of `stg_events` and everything downstream with the dbt vars
`backfill_start`/`backfill_end` set to its day: that day's events are re-staged and
re-stitched, the devices they touch are re-sessionized, and marts and segments are rebuilt.
Launch a range from the UI (Jobs > backfill_events > Partitions > Launch backfill) or with
`dagster job backfill -m orchestration.definitions -j backfill_events --from D1 --to D2`.
"""

import json
from datetime import datetime, timedelta

import dagster as dg
from dagster_dbt import DbtCliResource

from ewh.common.clock import dbt_timestamp
from orchestration.pools import WAREHOUSE_POOL
from orchestration.project import dbt_project
from orchestration.resources import WarehouseSettings
from orchestration.translator import asset_key_for

EVENT_MODELS = [("staging", "stg_events"), ("intermediate", "int_events_stitched"),
                ("intermediate", "int_sessionized_events")]
daily = dg.DailyPartitionsDefinition(start_date="2024-01-01", timezone="UTC")


def backfill_args(partition_key: str, as_of: datetime | None = None) -> list[str]:
    start = datetime.strptime(partition_key, "%Y-%m-%d")
    variables: dict[str, str] = {
        "backfill_start": start.strftime("%Y-%m-%d %H:%M:%S"),
        "backfill_end": (start + timedelta(days=1)).strftime("%Y-%m-%d %H:%M:%S"),
    }
    if as_of is not None:
        variables["as_of"] = dbt_timestamp(as_of)
    return ["build", "--select", "stg_events+", "--exclude-resource-type", "unit_test",
            "--vars", json.dumps(variables)]


@dg.op(pool=WAREHOUSE_POOL, out=dg.Out(dg.Nothing))
def rebuild_event_day(context: dg.OpExecutionContext, dbt: DbtCliResource,
                      settings: WarehouseSettings):
    """Re-stage, re-stitch and re-sessionize one day, then rebuild what depends on it."""
    args = backfill_args(context.partition_key, settings.get().as_of)
    context.log.info(f"dbt {' '.join(args)}")
    dbt.cli(args, manifest=dbt_project.manifest_path, raise_on_error=True).wait()
    for schema, name in EVENT_MODELS:
        context.log_event(dg.AssetMaterialization(
            asset_key=asset_key_for(schema, name), partition=context.partition_key,
            description=f"backfilled {context.partition_key}",
        ))


@dg.job(partitions_def=daily, description=__doc__.splitlines()[0])
def backfill_events():
    rebuild_event_day()


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(jobs=[backfill_events])
