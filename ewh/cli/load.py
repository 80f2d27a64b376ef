"""`ewh load`: landing files into the raw layer, exactly once, with progress on long work."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

from ewh.cli.main import Handler, OperationalError, command

if TYPE_CHECKING:
    from rich.console import Console

    from ewh.ingest.loader import FileLoadResult


@command("load", "load NDJSON (plain/gzip), JSON array, CSV or Parquet files into raw.events, "
                 "exactly once")
def _load(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("paths", nargs="*",
                        help="files, folders or glob patterns (default: the landing zone, "
                             "EWH_LANDING_DIR or data/landing)")
    parser.add_argument("--dry-run", action="store_true",
                        help="validate and count, write nothing, quarantine nothing")
    parser.add_argument("--warehouse", type=Path, default=None,
                        help="DuckDB file (EWH_WAREHOUSE or data/warehouse.duckdb)")
    return _run_load


def _run_load(args: argparse.Namespace) -> int:
    from rich.console import Console

    from ewh.common.settings import get_settings
    from ewh.ingest.loader import expand_paths, load_files

    settings = get_settings()
    try:
        paths = expand_paths(args.paths or [settings.landing_dir])
    except FileNotFoundError as exc:
        raise OperationalError(str(exc)) from exc
    if not paths:
        if args.paths:  # the caller named files: matching none is a mistake, not an empty day
            raise OperationalError(f"no files matched {' '.join(args.paths)}")
        print(f"no files in {settings.landing_dir}; nothing to load")
        return 0
    warehouse = args.warehouse or settings.warehouse
    console = Console(stderr=True)
    with LoadProgressDisplay(console, paths) as progress:
        results = load_files(paths, warehouse, dry_run=args.dry_run, progress=progress,
                             lake_dir=settings.lake_dir)
    for r in results:
        print(describe(r, dry_run=args.dry_run))
    done = [r for r in results if r.status in ("loaded", "dry_run")]
    skipped = sum(r.status == "skipped" for r in results)
    quarantined = len(results) - len(done) - skipped
    prefix = "dry run, nothing written: " if args.dry_run else ""
    print(f"{prefix}total: {len(results)} files ({skipped} skipped), "
          f"read {sum(r.rows_read for r in done):,} loaded {sum(r.rows_loaded for r in done):,} "
          f"duplicate {sum(r.rows_duplicate for r in done):,} "
          f"rejected {sum(r.rows_rejected for r in done):,} "
          f"suppressed {sum(r.rows_suppressed for r in done):,} into {warehouse}"
          + (f"; {quarantined} quarantined (raw.load_manifest says why)" if quarantined else ""))
    return 0


def describe(r: FileLoadResult, *, dry_run: bool = False) -> str:
    """One line about one file."""
    waiting = (f"; {r.pending_bytes:,} bytes of an unfinished last line wait for their newline"
               if r.pending_bytes else "")
    if r.status == "quarantined":
        if dry_run:
            return f"{r.path}: would be quarantined ({r.error})"
        where = f"to {r.quarantined_to}" if r.quarantined_to else "(left in place: outside " \
                                                                  "the landing zone)"
        return f"{r.path}: quarantined {where} ({r.error})"
    if r.status == "skipped":
        return f"{r.path}: skipped (already loaded, sha256 {r.checksum[:12]}){waiting}"
    return (f"{r.path}: read {r.rows_read:,} loaded {r.rows_loaded:,} "
            f"duplicate {r.rows_duplicate:,} rejected {r.rows_rejected:,}"
            + (f" suppressed {r.rows_suppressed:,}" if r.rows_suppressed else "") + waiting)


class LoadProgressDisplay:
    """ewh.ingest.loader.LoadProgress on the terminal: a rich bar of bytes, files and lines/s
    while a load runs; on a non-terminal (a log), one line per finished file."""

    def __init__(self, console: Console, paths: list[Path]) -> None:
        self.console = console
        self.sizes = {p: _size(p) for p in paths}
        self.total_files = len(paths)
        self.files = self.lines = self.bytes_done = 0
        self.current = 0  # size of the file being loaded
        self.started = time.monotonic()
        self.bar = None
        if console.is_terminal:
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TransferSpeedColumn,
            )

            self.bar = Progress(
                TextColumn("loading"), BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                TextColumn("{task.fields[files]}"), TextColumn("{task.fields[lines]}"),
                TimeElapsedColumn(), console=console, transient=True)
            self.task = self.bar.add_task("load", total=sum(self.sizes.values()),
                                          files=self._files_text(), lines=self._lines_text())

    def __enter__(self) -> LoadProgressDisplay:
        if self.bar is not None:
            self.bar.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()

    def _files_text(self) -> str:
        return f"{self.files}/{self.total_files} files"

    def _lines_text(self) -> str:
        rate = self.lines / max(time.monotonic() - self.started, 1e-9)
        return f"{self.lines:,} lines ({rate:,.0f} lines/s)"

    def _show(self, completed: float) -> None:
        if self.bar is not None:
            self.bar.update(self.task, completed=completed, files=self._files_text(),
                            lines=self._lines_text())

    def file_started(self, path: Path, size: int) -> None:
        self.current = self.sizes.get(path, size)
        self._show(self.bytes_done)

    def file_progress(self, path: Path, fraction: float) -> None:
        self._show(self.bytes_done + fraction * self.current)

    def file_done(self, result: FileLoadResult) -> None:
        self.files += 1
        self.lines += result.rows_read
        self.bytes_done += self.current
        self._show(self.bytes_done)
        if self.bar is None:
            print(f"[{self._files_text()}] {result.path.name}: {self._lines_text()}",
                  file=sys.stderr, flush=True)


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0
