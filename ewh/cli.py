"""The `ewh` command line. The only module that prints.

Add a subcommand by writing one function decorated with `@command(...)` (here, or in a
module of its own under `ewh/commands/`): it receives its
argparse parser, declares its arguments, and returns the handler that runs it (exit code).
Heavy imports stay inside the handlers so `ewh --help` is fast.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

Handler = Callable[[argparse.Namespace], int]
Configure = Callable[[argparse.ArgumentParser], Handler]


@dataclass(frozen=True)
class _Command:
    name: str
    help: str
    configure: Configure


COMMANDS: list[_Command] = []


def command(name: str, help: str) -> Callable[[Configure], Configure]:
    """Register a subcommand; the decorated function configures the parser, returns the handler."""

    def register(configure: Configure) -> Configure:
        COMMANDS.append(_Command(name, help, configure))
        return configure

    return register


class OperationalError(Exception):
    """A failure of the job itself (bad path, locked warehouse), as opposed to bad records."""


# ---------------------------------------------------------------------------------------------
# generate


def _iso_datetime(value: str) -> datetime:
    try:
        return datetime.fromisoformat(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 date-time: {value!r}") from exc


@command("generate", "write a deterministic sample dataset of Segment messages (NDJSON per day)")
def _generate(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("--events", type=int, default=200_000, help="lines to write (200000)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (0)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument("--users", type=int, default=None, help="people to simulate (events/50)")
    parser.add_argument("--days", type=int, default=90, help="days of history (90)")
    parser.add_argument("--end", type=_iso_datetime, default=None,
                        help="end of the data, ISO-8601; naive means UTC (now, to the hour)")
    return _run_generate


def _run_generate(args: argparse.Namespace) -> int:
    from ewh.generator import generate

    started = time.perf_counter()
    summary = generate(args.out, events=args.events, seed=args.seed, users=args.users,
                       days=args.days, end=args.end)
    seconds = time.perf_counter() - started
    bad = summary["malformed_planted"]
    print(f"wrote {summary['events_written']:,} lines in {len(summary['files'])} files to "
          f"{args.out} ({summary['start']} .. {summary['end']}) in {seconds:.1f}s")
    print(f"  users {summary['users']:,}, duplicates planted {summary['duplicates_planted']:,}, "
          f"malformed planted {bad['total']:,} {bad['by_reason']}")
    return 0


# ---------------------------------------------------------------------------------------------
# load


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
    from ewh.loader import expand_paths, load_files
    from ewh.paths import landing_dir, warehouse_path

    try:
        paths = expand_paths(args.paths or [landing_dir()])
    except FileNotFoundError as exc:
        raise OperationalError(str(exc)) from exc
    if not paths:
        print("no files matched; nothing to load")
        return 0
    warehouse = args.warehouse or warehouse_path()
    results = load_files(paths, warehouse, dry_run=args.dry_run)
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


# ---------------------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    from ewh import commands

    commands.load_all()  # modules in ewh/commands/ register more subcommands
    parser = argparse.ArgumentParser(prog="ewh", description="engagement_warehouse jobs")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for cmd in COMMANDS:
        sub = subparsers.add_parser(cmd.name, help=cmd.help, description=cmd.help)
        sub.set_defaults(handler=cmd.configure(sub))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.handler(args))
    except (OperationalError, OSError) as exc:
        print(f"ewh {args.command}: error: {exc}", file=sys.stderr)
        return 1
    except Exception as exc:  # noqa: BLE001 - any other failure is operational too; say what broke
        print(f"ewh {args.command}: error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
