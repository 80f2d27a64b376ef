"""The raw load as an asset, and the landing-zone sensor that triggers it."""


from pathlib import Path

import dagster as dg

from ewh.loader import load_files
from ewh.paths import landing_dir, warehouse_path
from orchestration.pools import WAREHOUSE_POOL

RAW_EVENTS = dg.AssetKey(["raw", "events"])
RAW_REJECTED = dg.AssetKey(["raw", "events_rejected"])
RAW_MANIFEST = dg.AssetKey(["raw", "load_manifest"])
# Closed files only: the collector writes `*.ndjson.open` and renames it when it closes.
LANDING_PATTERNS = ("*.ndjson", "*.ndjson.gz", "*.jsonl", "*.jsonl.gz", "*.json.gz",
                    "*.csv", "*.csv.gz", "*.parquet")


def landing_files(folder: Path) -> list[Path]:
    """Closed landing files, oldest first. Open files carry another suffix until renamed."""
    found = {p for pattern in LANDING_PATTERNS for p in folder.glob(pattern) if p.is_file()}
    return sorted(found, key=lambda p: (p.stat().st_mtime, p.name))


@dg.multi_asset(
    specs=[
        dg.AssetSpec(RAW_EVENTS, group_name="ingest", kinds={"duckdb"},
                     description="One row per accepted event (raw.events)."),
        dg.AssetSpec(RAW_REJECTED, group_name="ingest", kinds={"duckdb"},
                     description="Refused records with reason and field (raw.events_rejected)."),
        dg.AssetSpec(RAW_MANIFEST, group_name="ingest", kinds={"duckdb"},
                     description="One row per loaded file with its counts (raw.load_manifest)."),
    ],
    name="raw_load",
    pool=WAREHOUSE_POOL,
)
def raw_load(context: dg.AssetExecutionContext):
    """Load every landing file not loaded before (by checksum), exactly once."""
    files = landing_files(landing_dir())
    results = load_files(files, warehouse_path())
    totals = {"read": 0, "loaded": 0, "duplicate": 0, "rejected": 0}
    skipped = 0
    for result in results:
        if result.status == "skipped":
            skipped += 1
            continue
        totals["read"] += result.rows_read
        totals["loaded"] += result.rows_loaded
        totals["duplicate"] += result.rows_duplicate
        totals["rejected"] += result.rows_rejected
    context.log.info(f"loaded {len(results) - skipped} files ({skipped} already loaded): {totals}")
    counts = {f"rows_{name}": dg.MetadataValue.int(value) for name, value in totals.items()}
    yield dg.MaterializeResult(
        asset_key=RAW_EVENTS,
        metadata={**counts, "files_loaded": len(results) - skipped, "files_skipped": skipped},
    )
    yield dg.MaterializeResult(asset_key=RAW_REJECTED,
                               metadata={"rows_rejected": totals["rejected"]})
    yield dg.MaterializeResult(asset_key=RAW_MANIFEST,
                               metadata={"files_loaded": len(results) - skipped})


def build_landing_sensor(job) -> dg.SensorDefinition:
    @dg.sensor(job=job, minimum_interval_seconds=30,
               default_status=dg.DefaultSensorStatus.RUNNING)
    def landing_zone_sensor(context: dg.SensorEvaluationContext):
        """Request a refresh when a closed file newer than the cursor appears."""
        files = landing_files(landing_dir())
        newest = max((p.stat().st_mtime for p in files), default=0.0)
        last_seen = float(context.cursor or 0.0)
        if newest <= last_seen:
            return dg.SkipReason(f"no new landing files in {landing_dir()}")
        new = [p.name for p in files if p.stat().st_mtime > last_seen]
        context.update_cursor(str(newest))
        return dg.RunRequest(run_key=f"landing-{newest}", tags={"ewh/new_files": str(len(new))})

    return landing_zone_sensor
