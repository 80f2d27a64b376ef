"""Segment member exports (Parquet and CSV) for email and ad tools."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import duckdb


@dataclass(frozen=True)
class ExportResult:
    segment: str
    rows: int
    parquet_path: Path
    csv_path: Path


def _quote_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def export_segment(warehouse: Path, segment: str, out_dir: Path) -> ExportResult:
    """Write the current members of segments.<segment> to <out_dir>/<segment>/members.*.

    Files are written beside their final name and renamed into place, so a reader never
    sees a half-written export.
    """
    target = out_dir / segment
    target.mkdir(parents=True, exist_ok=True)
    parquet = target / "members.parquet"
    csv = target / "members.csv"
    relation = f"segments.{_quote_ident(segment)}"
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rows = con.execute(f"select count(*) from {relation}").fetchone()[0]
        query = f"select * from {relation} order by user_key"
        for path, options in ((parquet, "format parquet"), (csv, "format csv, header true")):
            partial = path.with_name(path.name + ".partial")
            con.execute(f"copy ({query}) to {_sql_literal(str(partial))} ({options})")
            os.replace(partial, path)
    return ExportResult(segment=segment, rows=int(rows), parquet_path=parquet, csv_path=csv)
