"""The refresh job and when it runs."""

from __future__ import annotations

import dagster as dg

# Everything: load new landing files, build dbt, run the checks, export the segments.
refresh_job = dg.define_asset_job(
    "refresh_warehouse",
    selection=dg.AssetSelection.all(),
    description="Load new landing files, build every dbt model, validate, export segments.",
)

hourly_refresh_schedule = dg.ScheduleDefinition(
    name="hourly_refresh",
    job=refresh_job,
    cron_schedule="0 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
