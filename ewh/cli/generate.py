"""`ewh generate`: a deterministic sample dataset of Segment messages."""

from __future__ import annotations

import argparse
import time
from datetime import datetime
from pathlib import Path

from ewh.cli.main import Handler, command


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
    from ewh.cli.progress import progress_bar
    from ewh.sample.generator import generate

    started = time.perf_counter()
    with progress_bar("simulating users", total=None) as bar:
        summary = generate(args.out, events=args.events, seed=args.seed, users=args.users,
                           days=args.days, end=args.end, progress=bar.set)
    seconds = time.perf_counter() - started
    bad = summary["malformed_planted"]
    print(f"wrote {summary['events_written']:,} lines in {len(summary['files'])} files to "
          f"{args.out} ({summary['start']} .. {summary['end']}) in {seconds:.1f}s")
    print(f"  users {summary['users']:,}, duplicates planted {summary['duplicates_planted']:,}, "
          f"malformed planted {bad['total']:,} {bad['by_reason']}")
    return 0
