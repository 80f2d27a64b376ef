"""Jobs and when they run: hourly refresh, daily full refresh, each segment's own cadence."""

import dagster as dg

from ewh.segment_catalog import SegmentSpec
from orchestration.defs.serving import SERVING_COPY
from orchestration.project import SEGMENTS
from orchestration.translator import asset_key_for

# Everything: load new landing files, build dbt, run the checks, publish, export.
refresh_job = dg.define_asset_job(
    "refresh_warehouse",
    selection=dg.AssetSelection.all(),
    description="Load new landing files, build every dbt model (incrementally where the "
    "model is incremental), validate, publish the serving copy, export segments.",
)

# The same graph rebuilt from scratch; membership history is kept (full_refresh: false).
full_refresh_job = dg.define_asset_job(
    "full_refresh_warehouse",
    selection=dg.AssetSelection.all(),
    config={"ops": {"warehouse_dbt_models": {"config": {"full_refresh": True}}}},
    description="Rebuild every dbt model from raw (late arrivals beyond the lookback are "
    "taken in here); segment membership history is preserved.",
)

MEMBERSHIP_MODELS = [asset_key_for("segments", "segment_membership_history"),
                     asset_key_for("segments", "segment_memberships")]


def segment_job(spec: SegmentSpec):
    """A segment with what it needs: its upstream, membership history, publish, export."""
    selection = (
        dg.AssetSelection.assets(asset_key_for("segments", spec.name)).upstream()
        | dg.AssetSelection.assets(*MEMBERSHIP_MODELS, SERVING_COPY)
        | dg.AssetSelection.groups("ingest")  # the raw load produces its three tables at once
    )
    if spec.exported:
        selection = selection | dg.AssetSelection.assets(dg.AssetKey(["exports", spec.name]))
    return dg.define_asset_job(f"refresh_{spec.name}", selection=selection,
                               description=f"Refresh {spec.name} ({spec.refresh}): {spec.rule}")


segment_jobs = [segment_job(spec) for spec in SEGMENTS]

schedules = [
    dg.ScheduleDefinition(name="hourly_refresh", job=refresh_job, cron_schedule="0 * * * *",
                          execution_timezone="UTC",
                          default_status=dg.DefaultScheduleStatus.RUNNING),
    dg.ScheduleDefinition(name="daily_full_refresh", job=full_refresh_job,
                          cron_schedule="30 2 * * *", execution_timezone="UTC",
                          default_status=dg.DefaultScheduleStatus.RUNNING),
] + [
    dg.ScheduleDefinition(name=f"{spec.name}_{spec.refresh}", job=job,
                          cron_schedule=spec.refresh_cron, execution_timezone="UTC",
                          # Off by default: the hourly refresh already covers every segment;
                          # turn one on to give a segment its own cadence.
                          default_status=dg.DefaultScheduleStatus.STOPPED)
    for spec, job in zip(SEGMENTS, segment_jobs, strict=True)
]
