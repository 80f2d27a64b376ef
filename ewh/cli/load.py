"""`ewh load`: landing files into the raw layer, exactly once."""

from __future__ import annotations

import argparse
from pathlib import Path

from ewh.cli.main import Handler, OperationalError, command


@command("load", "load NDJSON (plain/gzip), JSON array, CSV or Parquet files into raw.events, "
                 "exactly once")
def _load(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("paths", nargs="*",
                        help="files, folders or glob patterns (default: the landing zone, "
                             "EWH_LANDING_DIR or data/landing)")
    parser.add_argument("--dry-run", action="store_true", help="validate and count, write nothing")
    parser.add_argument("--warehouse", type=Path, default=None,
                        help="DuckDB file (EWH_WAREHOUSE or data/warehouse.duckdb)")
    return _run_load


def _run_load(args: argparse.Namespace) -> int:
    from ewh.common.settings import get_settings
    from ewh.ingest.loader import expand_paths, load_files

    try:
        paths = expand_paths(args.paths or [get_settings().landing_dir])
    except FileNotFoundError as exc:
        raise OperationalError(str(exc)) from exc
    if not paths:
        print("no files matched; nothing to load")
        return 0
    settings = get_settings()
    warehouse = args.warehouse or settings.warehouse
    results = load_files(paths, warehouse, dry_run=args.dry_run, lake_dir=settings.lake_dir)
    for r in results:
        if r.status == "skipped":
            print(f"{r.path}: skipped (already loaded, sha256 {r.checksum[:12]})")
        else:
            print(f"{r.path}: read {r.rows_read:,} loaded {r.rows_loaded:,} "
                  f"duplicate {r.rows_duplicate:,} rejected {r.rows_rejected:,}")
    done = [r for r in results if r.status != "skipped"]
    prefix = "dry run, nothing written: " if args.dry_run else ""
    print(f"{prefix}total: {len(results)} files ({len(results) - len(done)} skipped), "
          f"read {sum(r.rows_read for r in done):,} loaded {sum(r.rows_loaded for r in done):,} "
          f"duplicate {sum(r.rows_duplicate for r in done):,} "
          f"rejected {sum(r.rows_rejected for r in done):,} into {warehouse}")
    return 0
