"""The whole-warehouse jobs and when they run: hourly refresh, daily full refresh."""

import dagster as dg

from orchestration.defs.history import HISTORY_BY_DAY
from orchestration.defs.predictions import TRAINING_GROUP
from orchestration.defs.transform import DBT_STEPS

REFRESH_JOB = "refresh_warehouse"
# Every asset but the day-partitioned history backfill (a job runs one partitioning) and model
# training (its own weekly job, orchestration/defs/predictions.py).
REFRESHED = (dg.AssetSelection.all() - dg.AssetSelection.assets(HISTORY_BY_DAY)
             - dg.AssetSelection.groups(TRAINING_GROUP))

# Load new landing files, build dbt, score, run the checks, publish, export, tag.
refresh_job = dg.define_asset_job(
    REFRESH_JOB,
    selection=REFRESHED,
    description="Load new landing files, build every dbt model (incrementally where the "
    "model is incremental), score the published prediction models, validate, publish the "
    "serving copy, export segments, write prediction tags.",
)

# The same graph rebuilt from scratch; membership history is kept (full_refresh: false).
full_refresh_job = dg.define_asset_job(
    "full_refresh_warehouse",
    selection=REFRESHED,
    config={"ops": {step: {"config": {"full_refresh": True}} for step in DBT_STEPS}},
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
