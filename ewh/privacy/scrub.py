"""Remove a person's records from files: landing files rewritten, others shredded.

Line files (NDJSON, JSON lines, CSV; gzip or not) are rewritten without the lines that name
the person, through a 0600 temporary file renamed over the original; a file of another kind
(Parquet) that holds any of their ids is shredded: overwritten, then deleted. A rewritten
landing file keeps its place in raw.load_manifest (its new checksum and size replace the old
ones), so the loader does not load it again.
"""

from __future__ import annotations

import gzip
import os
import re
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

from ewh.contract import json_text
from ewh.ingest.file_scan import file_checksum
from ewh.privacy.files import FILE_MODE, overwrite_random
from ewh.privacy.policy import Protector

LINE_SUFFIXES = (".ndjson", ".jsonl", ".csv", ".open")  # one record a line: lines dropped
TEXT_SUFFIXES = (".json", ".txt", ".log", ".out", ".err", ".md", ".html", ".yaml", ".yml")
LineMatch = Callable[[bytes], bool]


@dataclass
class ScrubReport:
    rewritten: dict[str, int] = field(default_factory=dict)  # path -> lines removed
    shredded: list[str] = field(default_factory=list)


def needles_of(ids: Iterable[str], texts: Iterable[str] = ()) -> list[bytes]:
    """What marks a line as the person's: each id as a JSON string, each other text as is."""
    found = [json_text.dumps(i) for i in ids if i]
    found += [t.encode() for t in texts if t]
    return found


def line_matcher(needles: list[bytes]) -> LineMatch:
    lowered = [n.lower() for n in needles]

    def match(line: bytes) -> bool:
        low = line.lower()
        return any(n in low for n in lowered)
    return match


def shred(path: Path) -> None:
    """Overwrite with random bytes, then delete (best effort: see docs/privacy.md)."""
    with open(path, "r+b") as out:
        overwrite_random(out, path.stat().st_size)
    path.unlink()


def _rewrite_lines(path: Path, match: LineMatch) -> int:
    zipped = path.name.endswith(".gz")
    opener = gzip.open if zipped else open
    with opener(path, "rb") as source:
        lines = source.read().splitlines(keepends=True)
    kept = [line for line in lines if not match(line)]
    removed = len(lines) - len(kept)
    if not removed:
        return 0
    partial = path.with_name(f".{path.name}.scrub")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as raw_out:
        if zipped:
            with gzip.GzipFile(fileobj=raw_out, mode="wb", mtime=0) as out:
                out.writelines(kept)
        else:
            raw_out.writelines(kept)
        raw_out.flush()
        os.fsync(raw_out.fileno())
    old_size = path.stat().st_size
    with open(path, "r+b") as old:  # the old bytes are not left in the freed blocks
        old.write(secrets.token_bytes(old_size))
        old.flush()
        os.fsync(old.fileno())
    os.replace(partial, path)
    return removed


def _is_line_file(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz")
    return name.endswith(LINE_SUFFIXES)


def _redact_text(path: Path, needles: list[bytes]) -> int:
    """A text file that is no record per line (dataset.json, a log): the needles replaced."""
    data = path.read_bytes()
    count = 0
    for needle in needles:
        bare = needle.strip(b'"')
        pattern = re.compile(rb"(?<![A-Za-z0-9_])" + re.escape(bare) + rb"(?![A-Za-z0-9_])",
                             re.IGNORECASE)
        data, found = pattern.subn(b"[erased]", data)
        count += found
    if count:
        fd = os.open(path.with_name(f".{path.name}.scrub"), os.O_WRONLY | os.O_CREAT
                     | os.O_TRUNC, FILE_MODE)
        with os.fdopen(fd, "wb") as out:
            out.write(data)
        old = path.stat().st_size
        with open(path, "r+b") as previous:
            previous.write(secrets.token_bytes(old))
        os.replace(path.with_name(f".{path.name}.scrub"), path)
    return count


def scrub_files(paths: Iterable[Path], match: LineMatch, needles: list[bytes]) -> ScrubReport:
    """Rewrite line files without matching lines, redact other text files; shred any other
    file holding a needle."""
    report = ScrubReport()
    for path in paths:
        if not path.is_file() or path.is_symlink():
            continue
        if path.name.lower().endswith(TEXT_SUFFIXES) and needles:
            redacted = _redact_text(path, needles)
            if redacted:
                report.rewritten[str(path)] = redacted
            continue
        if _is_line_file(path):
            try:
                removed = _rewrite_lines(path, match)
            except (OSError, EOFError, gzip.BadGzipFile):
                removed = -1
            if removed > 0:
                report.rewritten[str(path)] = removed
                continue
            if removed == 0:
                continue
        data = path.read_bytes()
        low = data.lower()
        if any(n.lower() in low for n in needles):
            shred(path)
            report.shredded.append(str(path))
    return report


def files_under(folder: Path) -> list[Path]:
    if not folder.exists():
        return []
    return sorted(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def reconcile_manifest(con: duckdb.DuckDBPyConnection, report: ScrubReport) -> None:
    """A rewritten landing file keeps its manifest rows under its new checksum and size (it is
    not loaded again); a shredded one keeps its rows as the record that it was loaded."""
    for path in report.rewritten:
        checksum, size = file_checksum(Path(path))
        con.execute("update raw.load_manifest set file_checksum = ?, file_bytes = ? "
                    "where file_path = ? and status = 'loaded'", [checksum, size, path])


def scrub_loaded_file(con: duckdb.DuckDBPyConnection, path: Path, protector: Protector,
                      checksum: str) -> None:
    """After a load that suppressed events: the landing file loses their lines too."""
    suppressed = protector.suppressed.contains

    def match(line: bytes) -> bool:
        try:
            record = json_text.loads(line)
        except ValueError:
            return False
        if not isinstance(record, dict):
            return False
        return any(isinstance(record.get(k), str) and suppressed(record[k])
                   for k in ("userId", "anonymousId", "previousId"))

    report = scrub_files([path], match, [])
    if report.rewritten:
        con.execute("begin transaction")
        reconcile_manifest(con, report)
        con.execute("commit")
