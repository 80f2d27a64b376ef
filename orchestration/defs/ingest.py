"""The raw load as an asset, and the landing-zone sensor that triggers it."""

import dagster as dg

from ewh.ingest.landing import closed_landing_files
from ewh.ingest.loader import load_files
from orchestration.defs.refresh import REFRESH_JOB
from orchestration.pools import WAREHOUSE_POOL
from orchestration.resources import WarehouseSettings

RAW_EVENTS = dg.AssetKey(["raw", "events"])
RAW_REJECTED = dg.AssetKey(["raw", "events_rejected"])
RAW_MANIFEST = dg.AssetKey(["raw", "load_manifest"])


@dg.multi_asset(
    specs=[
        dg.AssetSpec(RAW_EVENTS, group_name="ingest", kinds={"duckdb"},
                     description="One row per accepted event (raw.events)."),
        dg.AssetSpec(RAW_REJECTED, group_name="ingest", kinds={"duckdb"},
                     description="Refused records with reason and field (raw.events_rejected)."),
        dg.AssetSpec(RAW_MANIFEST, group_name="ingest", kinds={"duckdb"},
                     description="One row per loaded or quarantined file with its counts "
                                 "(raw.load_manifest)."),
    ],
    name="raw_load",
    pool=WAREHOUSE_POOL,
)
def raw_load(context: dg.AssetExecutionContext, settings: WarehouseSettings):
    """Load every landing file not loaded before (by checksum), exactly once. A file that
    cannot be read is quarantined (raw.load_manifest says why) and the others still load."""
    where = settings.get()
    results = load_files(closed_landing_files(where.landing_dir), where.warehouse,
                         landing_dir=where.landing_dir, timestamp_floor=where.timestamp_floor,
                         lake_dir=where.lake_dir)
    totals = {"read": 0, "loaded": 0, "duplicate": 0, "rejected": 0, "suppressed": 0}
    files = {"loaded": 0, "skipped": 0, "quarantined": 0}
    for result in results:
        files[result.status if result.status in files else "loaded"] += 1
        if result.status == "quarantined":
            context.log.warning(f"quarantined {result.error}")
        if result.status != "loaded":
            continue
        totals["read"] += result.rows_read
        totals["loaded"] += result.rows_loaded
        totals["duplicate"] += result.rows_duplicate
        totals["rejected"] += result.rows_rejected
        totals["suppressed"] += result.rows_suppressed
    context.log.info(f"loaded {files['loaded']} files ({files['skipped']} already loaded, "
                     f"{files['quarantined']} quarantined): {totals}")
    counts = {f"rows_{name}": dg.MetadataValue.int(value) for name, value in totals.items()}
    yield dg.MaterializeResult(
        asset_key=RAW_EVENTS,
        metadata={**counts, **{f"files_{name}": n for name, n in files.items()}},
    )
    yield dg.MaterializeResult(asset_key=RAW_REJECTED,
                               metadata={"rows_rejected": totals["rejected"]})
    yield dg.MaterializeResult(asset_key=RAW_MANIFEST,
                               metadata={"files_loaded": files["loaded"],
                                         "files_quarantined": files["quarantined"]})


@dg.sensor(job_name=REFRESH_JOB, minimum_interval_seconds=30,
           default_status=dg.DefaultSensorStatus.RUNNING)
def landing_zone_sensor(context: dg.SensorEvaluationContext, settings: WarehouseSettings):
    """Request a refresh when a closed file newer than the cursor appears (the cursor starts
    at the newest file present at the first tick)."""
    landing = settings.get().landing_dir
    files = closed_landing_files(landing)
    # lstat: a link is judged by the load (a dangling one is quarantined), not followed here
    newest = max((p.lstat().st_mtime for p in files), default=0.0)
    if context.cursor is None:
        # A fresh instance (a first `make dev`) starts from the files already there: opening
        # the UI runs nothing; the hourly refresh loads them, or launch refresh_warehouse.
        context.update_cursor(str(newest))
        return dg.SkipReason(f"first tick: watching {landing} for files newer than the "
                             f"{len(files)} there now")
    last_seen = float(context.cursor)
    if newest <= last_seen:
        return dg.SkipReason(f"no new landing files in {landing}")
    new = [p.name for p in files if p.lstat().st_mtime > last_seen]
    context.update_cursor(str(newest))
    return dg.RunRequest(run_key=f"landing-{newest}", tags={"ewh/new_files": str(len(new))})


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[raw_load], sensors=[landing_zone_sensor])
