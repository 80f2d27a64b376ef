"""`ewh quality`: run every GX checkpoint against the warehouse, print what failed.

Exit code 0 when no error-level expectation failed (warnings are printed, not fatal),
1 when one did, so a shell or CI step can gate on it.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from pathlib import Path

from ewh.cli.main import Handler, OperationalError, command

EXIT_ERRORS = 1


def _as_of(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 date-time: {value!r}") from exc


@command("quality", "validate the warehouse with the Great Expectations suites; "
                    "exit 1 on an error-level failure")
def _quality(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("suites", nargs="*",
                        help="suites to run (default: all; e.g. raw_events seg_cart_abandoners)")
    parser.add_argument("--warehouse", type=Path, default=None,
                        help="DuckDB file (EWH_WAREHOUSE or data/warehouse.duckdb)")
    parser.add_argument("--manifest", type=Path, default=None,
                        help="dbt manifest listing the segments (target/manifest.json)")
    parser.add_argument("--as-of", type=_as_of, default=None,
                        help="anchor of the time windows, ISO-8601 UTC (EWH_AS_OF, else now)")
    parser.add_argument("--no-docs", action="store_true", help="do not rebuild Data Docs")
    parser.add_argument("--no-record", action="store_true",
                        help="do not record segment sizes as the next run's volume baseline")
    parser.add_argument("--list", action="store_true", help="list the suites and exit")
    return _run


def _run(args: argparse.Namespace) -> int:
    # Great Expectations before anything imports duckdb. nanobind (duckdb's bindings)
    # reports, at interpreter exit, every DuckDB object still alive when its extension is
    # torn down: ~40 lines of "leaked ..." on stderr. After a validation no connection,
    # relation or result is left open (the engines are disposed, their type memos cleared);
    # what is left are duckdb's own module-level type constants, and whether they outlive the
    # extension depends on the order modules are torn down, which follows import order.
    # Measured with the same validation: GX imported first, no report; duckdb, sqlalchemy,
    # pandas or pyarrow first, the report.
    import great_expectations  # noqa: F401

    from ewh.common.settings import get_settings
    from ewh.quality.catalog import all_suites
    from ewh.quality.segment_tables import segment_tables

    manifest = args.manifest or get_settings().manifest_path
    try:
        segments = segment_tables(manifest)
    except FileNotFoundError as exc:
        raise OperationalError(f"{exc} (or `make demo`)") from exc
    known = all_suites(segments)
    if args.list:
        for spec in known.values():
            print(f"{spec.name:<32} {spec.qualified_table}")
        return 0
    unknown = [name for name in args.suites if name not in known]
    if unknown:
        raise OperationalError(f"unknown suites {unknown}; known: {sorted(known)}")

    from ewh.quality.report import render
    from ewh.quality.validate import data_docs_index, has_error_failures, validate_warehouse

    warehouse = args.warehouse or get_settings().warehouse
    results = validate_warehouse(
        warehouse, suites=args.suites or None, build_docs=not args.no_docs,
        as_of=args.as_of, segments=segments, record_volumes=not args.no_record,
    )
    print(render(results, None if args.no_docs else data_docs_index()))
    return EXIT_ERRORS if has_error_failures(results) else 0
