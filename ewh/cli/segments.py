"""`ewh segments list | export | backfill`: what is in each segment, files for activation, and
segment history at past dates. A segment is named with or without its `seg_` prefix."""

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


def _selected(specs, names: list[str]):
    """The specs named (either form), in the order given; all of them when none is named."""
    from ewh.segments.catalog import UnknownSegment, resolve_segment_name

    by_name = {s.name: s for s in specs}
    try:
        return [by_name[resolve_segment_name(n, by_name)] for n in names] if names else specs
    except UnknownSegment as exc:
        raise OperationalError(str(exc)) from exc


@command("segments", "list segments with their sizes and rules, export their members, or "
                     "backfill their history at past dates")
def _segments(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("action", choices=["list", "export", "backfill"])
    parser.add_argument("names", nargs="*",
                        help="segments, with or without seg_ (default: all; export: every "
                             "exported one)")
    parser.add_argument("--source", type=Path, default=None,
                        help="DuckDB file to read (default: the serving copy, EWH_SERVING or "
                             "data/serving.duckdb; never locked by a refresh)")
    parser.add_argument("--out", type=Path, default=None,
                        help="export folder (EWH_EXPORTS_DIR or data/exports)")
    parser.add_argument("--from", dest="start", default=None,
                        help="backfill: first day, YYYY-MM-DD (default: the first day with events)")
    parser.add_argument("--to", dest="end", default=None,
                        help="backfill: last day, YYYY-MM-DD (default: the day of the "
                             "warehouse's as_of)")
    parser.add_argument("--warehouse", type=Path, default=None,
                        help="backfill: DuckDB file (EWH_WAREHOUSE or data/warehouse.duckdb)")
    return _run


def _run(args: argparse.Namespace) -> int:
    if args.action == "backfill":
        return _backfill(args)
    from ewh.common.settings import get_settings
    from ewh.segments.exports import export_segment
    from ewh.segments.report import format_table, segment_sizes

    source = args.source or get_settings().serving
    if not source.exists():
        raise OperationalError(f"no serving copy at {source}: run a refresh (make demo) first")
    specs = _specs()
    chosen = _selected(specs, args.names)
    if args.action == "list":
        rows = [[s.segment, f"{s.members:,}", s.owner, "yes" if s.exported else "no", s.rule]
                for s in segment_sizes(source, chosen)]
        print(format_table(["segment", "members", "owner", "exported", "rule"], rows))
        return 0
    if not args.names:
        chosen = [s for s in specs if s.exported]
    out = args.out or get_settings().exports_dir
    for spec, result in _with_progress("export", chosen,
                                       lambda s: export_segment(source, s.name, out)):
        print(f"{spec.name}: {result.rows:,} members (+{result.entered:,} -{result.exited:,}) "
              f"-> {result.parquet_path}, {result.csv_path}")
    return 0


def _with_progress(label: str, items: list, work):
    """Run `work` on each item under a rich progress bar (on stderr, only on a terminal)."""
    from ewh.cli.progress import progress_bar

    done = []
    with progress_bar(label, total=len(items)) as advance:
        for item in items:
            done.append((item, work(item)))
            advance(1)
    return done


def _backfill(args: argparse.Namespace) -> int:
    from ewh.cli.progress import progress_bar
    from ewh.common.settings import get_settings
    from ewh.segments.history import (
        ReplayError,
        backfill_history,
        days_between,
        event_days,
        parse_day,
        rebuild_dependents,
        warehouse_as_of,
    )
    from ewh.segments.serving import publish_serving_copy

    if args.names:
        raise OperationalError("backfill evaluates every segment; name no segment")
    settings = get_settings()
    warehouse = args.warehouse or settings.warehouse
    if not warehouse.exists():
        raise OperationalError(f"no warehouse at {warehouse}: run a refresh (make demo) first")
    try:
        cap = warehouse_as_of(warehouse)
        first, _ = event_days(warehouse)
        start = parse_day(args.start) if args.start else first
        end = parse_day(args.end) if args.end else cap.date()
        days = days_between(start, min(end, cap.date()))
        print(f"backfilling segment history: {len(days)} days, {start} .. {days[-1]} "
              f"(each day's as_of is its last second; the warehouse's as_of is {cap})",
              flush=True)
        with progress_bar("evaluating segments", total=len(days)) as advance:
            result = backfill_history(warehouse, start, days[-1], cap=cap,
                                      progress=lambda _day: advance(1))
        rebuild_dependents(warehouse, cap)
    except (ReplayError, ValueError) as exc:
        raise OperationalError(str(exc)) from exc
    print(f"evaluated {result.days} days ({result.first_as_of} .. {result.last_as_of}): "
          f"{result.evaluations:,} memberships; segment_membership_history "
          f"{result.spells_before:,} -> {result.spells_after:,} spells; "
          "segment_memberships and segment_sizes_daily rebuilt")
    if warehouse == settings.warehouse:
        published = publish_serving_copy(warehouse, settings.serving, _specs())
        print(f"published {published.path}")
    return 0
