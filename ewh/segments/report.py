"""What is in the segments right now: sizes and rules, read from the warehouse."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import duckdb

from ewh.common.sql_text import quote_ident
from ewh.segments.catalog import SegmentSpec


@dataclass(frozen=True)
class SegmentSize:
    segment: str
    members: int
    rule: str
    owner: str
    exported: bool


def segment_sizes(warehouse: Path, specs: list[SegmentSpec]) -> list[SegmentSize]:
    """Member counts of every declared segment (a missing table counts as an error)."""
    sizes = []
    with duckdb.connect(str(warehouse), read_only=True) as con:
        for spec in specs:
            members = con.execute(
                f"select count(*) from segments.{quote_ident(spec.name)}").fetchone()[0]
            sizes.append(SegmentSize(spec.name, int(members), spec.rule, spec.owner,
                                     spec.exported))
    return sizes


def format_table(headers: list[str], rows: list[list[object]]) -> str:
    """A plain-text table for terminals and logs."""
    cells = [headers] + [[str(v) for v in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
