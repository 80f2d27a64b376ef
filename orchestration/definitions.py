"""The Dagster code location: `dagster dev -m orchestration.definitions`."""

from __future__ import annotations

import dagster as dg

from orchestration.defs.alerts import run_failure_alert
from orchestration.defs.backfill import backfill_events
from orchestration.defs.ingest import build_landing_sensor, raw_load
from orchestration.defs.quality import quality_checks
from orchestration.defs.schedules import full_refresh_job, refresh_job, schedules, segment_jobs
from orchestration.defs.segments import export_assets
from orchestration.defs.serving import serving_copy
from orchestration.defs.transform import warehouse_dbt_models
from orchestration.resources import build_resources

defs = dg.Definitions(
    assets=[raw_load, warehouse_dbt_models, serving_copy, *export_assets],
    asset_checks=quality_checks,
    jobs=[refresh_job, full_refresh_job, backfill_events, *segment_jobs],
    schedules=schedules,
    sensors=[build_landing_sensor(refresh_job), run_failure_alert],
    resources=build_resources(),
    # One DuckDB file has one writer: run every step of a run in one process, in order.
    executor=dg.in_process_executor,
)
