"""The whole-warehouse jobs and when they run: hourly refresh, daily full refresh."""

import dagster as dg

from orchestration.defs.history import HISTORY_BY_DAY

REFRESH_JOB = "refresh_warehouse"
# Every asset but the day-partitioned history backfill (a job runs one partitioning).
EVERYTHING = dg.AssetSelection.all() - dg.AssetSelection.assets(HISTORY_BY_DAY)

# Everything: load new landing files, build dbt, run the checks, publish, export.
refresh_job = dg.define_asset_job(
    REFRESH_JOB,
    selection=EVERYTHING,
    description="Load new landing files, build every dbt model (incrementally where the "
    "model is incremental), validate, publish the serving copy, export segments.",
)

# The same graph rebuilt from scratch; membership history is kept (full_refresh: false).
full_refresh_job = dg.define_asset_job(
    "full_refresh_warehouse",
    selection=EVERYTHING,
    config={"ops": {"warehouse_dbt_models": {"config": {"full_refresh": True}}}},
    description="Rebuild every dbt model from raw (late arrivals beyond the lookback are "
    "taken in here); segment membership history is preserved.",
)

schedules = [
    dg.ScheduleDefinition(name="hourly_refresh", job=refresh_job, cron_schedule="0 * * * *",
                          execution_timezone="UTC",
                          default_status=dg.DefaultScheduleStatus.RUNNING),
    dg.ScheduleDefinition(name="daily_full_refresh", job=full_refresh_job,
                          cron_schedule="30 2 * * *", execution_timezone="UTC",
                          default_status=dg.DefaultScheduleStatus.RUNNING),
]


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(jobs=[refresh_job, full_refresh_job], schedules=schedules)
