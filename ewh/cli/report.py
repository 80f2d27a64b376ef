"""`ewh report`: the analyst report, one self-contained HTML file from the serving copy."""

from __future__ import annotations

import argparse
from pathlib import Path

from ewh.cli.main import Handler, OperationalError, command


@command("report", "write the analyst report: one HTML file with charts (opens offline)")
def _report(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("--source", type=Path, default=None,
                        help="DuckDB file to read (default: the serving copy, EWH_SERVING)")
    parser.add_argument("--out", type=Path, default=None,
                        help="HTML file to write (EWH_REPORT or data/report.html)")
    return _run


def _run(args: argparse.Namespace) -> int:
    from ewh.common.settings import get_settings
    from ewh.report.locations import validations_dir
    from ewh.report.page import write_report

    settings = get_settings()
    source = args.source or settings.serving
    if not source.exists():
        raise OperationalError(f"no serving copy at {source}: run a refresh (make demo) first")
    out = write_report(source, args.out or settings.report, validations_dir())
    print(f"report: {out.resolve().as_uri()}")
    return 0
