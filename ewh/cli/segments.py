"""`ewh segments list | export`: what is in each segment, and files for activation."""

from __future__ import annotations

import argparse
from pathlib import Path

from ewh.cli.main import Handler, OperationalError, command


def _specs():
    from ewh.common.settings import get_settings
    from ewh.segments.catalog import load_segments

    manifest = get_settings().manifest_path
    if not manifest.exists():
        raise OperationalError(f"no dbt manifest at {manifest}: run `dbt parse` or `make demo`")
    return load_segments(manifest)


@command("segments", "list segments with their sizes and rules, or export their members")
def _segments(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("action", choices=["list", "export"])
    parser.add_argument("names", nargs="*", help="segments to export (default: every exported)")
    parser.add_argument("--source", type=Path, default=None,
                        help="DuckDB file to read (default: the serving copy, EWH_SERVING or "
                             "data/serving.duckdb; never locked by a refresh)")
    parser.add_argument("--out", type=Path, default=None,
                        help="export folder (EWH_EXPORTS_DIR or data/exports)")
    return _run


def _run(args: argparse.Namespace) -> int:
    from ewh.common.settings import get_settings
    from ewh.segments.exports import export_segment
    from ewh.segments.report import format_table, segment_sizes

    source = args.source or get_settings().serving
    if not source.exists():
        raise OperationalError(f"no serving copy at {source}: run a refresh (make demo) first")
    specs = _specs()
    if args.action == "list":
        rows = [[s.segment, f"{s.members:,}", s.owner, "yes" if s.exported else "no", s.rule]
                for s in segment_sizes(source, specs)]
        print(format_table(["segment", "members", "owner", "exported", "rule"], rows))
        return 0
    known = {s.name: s for s in specs}
    unknown = [n for n in args.names if n not in known]
    if unknown:
        raise OperationalError(f"unknown segments {unknown}; known: {sorted(known)}")
    names = args.names or [s.name for s in specs if s.exported]
    for name in names:
        result = export_segment(source, name, args.out or get_settings().exports_dir)
        print(f"{name}: {result.rows:,} members -> {result.parquet_path}, {result.csv_path}")
    return 0
