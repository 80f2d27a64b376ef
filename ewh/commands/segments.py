"""`ewh segments list | export`: what is in each segment, and files for activation."""

from __future__ import annotations

import argparse
from pathlib import Path

from ewh.cli import Handler, OperationalError, command


def _specs():
    from ewh.paths import PROJECT_ROOT
    from ewh.segment_catalog import load_segments

    manifest = PROJECT_ROOT / "target" / "manifest.json"
    if not manifest.exists():
        raise OperationalError(f"no dbt manifest at {manifest}: run `dbt parse` or `make demo`")
    return load_segments(manifest)


@command("segments", "list segments with their sizes and rules, or export their members")
def _segments(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("action", choices=["list", "export"])
    parser.add_argument("names", nargs="*", help="segments to export (default: every exported)")
    parser.add_argument("--warehouse", type=Path, default=None,
                        help="DuckDB file (EWH_WAREHOUSE or data/warehouse.duckdb)")
    parser.add_argument("--out", type=Path, default=None,
                        help="export folder (EWH_EXPORTS_DIR or data/exports)")
    return _run


def _run(args: argparse.Namespace) -> int:
    from ewh.exports import export_segment
    from ewh.paths import exports_dir, warehouse_path
    from ewh.segment_report import format_table, segment_sizes

    warehouse = args.warehouse or warehouse_path()
    specs = _specs()
    if args.action == "list":
        rows = [[s.segment, f"{s.members:,}", s.owner, "yes" if s.exported else "no", s.rule]
                for s in segment_sizes(warehouse, specs)]
        print(format_table(["segment", "members", "owner", "exported", "rule"], rows))
        return 0
    known = {s.name: s for s in specs}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        raise OperationalError(f"unknown segments {unknown}; known: {sorted(known)}")
    names = args.names or [s.name for s in specs if s.exported]
    for name in names:
        result = export_segment(warehouse, name, args.out or exports_dir())
        print(f"{name}: {result.rows:,} members -> {result.parquet_path}, {result.csv_path}")
    return 0
