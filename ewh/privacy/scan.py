"""Look for a person's traces: in every table of DuckDB files, and in the raw bytes of files.

Used by every erasure (its receipt carries the result) and by the scanner test. A needle is
found in text when it is not part of a longer word (so `u1` is not found in `u10`); emails
are matched in any case.
"""

from __future__ import annotations

import contextlib
import gzip
import re
from collections.abc import Iterable
from pathlib import Path

import duckdb

from ewh.common.sql_text import quote_ident

TEXT_TYPES = ("VARCHAR", "JSON")


def needle_pattern(needles: Iterable[str]) -> re.Pattern[bytes] | None:
    """One regex for every needle, each not inside a longer word."""
    parts = sorted({re.escape(n.encode()) for n in needles if n}, key=len, reverse=True)
    if not parts:
        return None
    return re.compile(rb"(?<![A-Za-z0-9_])(?:" + rb"|".join(parts) + rb")(?![A-Za-z0-9_])",
                      re.IGNORECASE)


def sql_word_regex(needles: Iterable[str]) -> str:
    """needle_pattern for DuckDB's regexp_matches: RE2 has no look-behind, so the same word
    test with explicit edges."""
    return ("(?i)(^|[^A-Za-z0-9_])(" + "|".join(re.escape(n) for n in needles if n)
            + ")($|[^A-Za-z0-9_])")


def scan_tables(path: Path, needles: list[str]) -> dict[str, int]:
    """schema.table -> rows where a text column holds a needle (as a word), for one file."""
    pattern = needle_pattern(needles)
    if pattern is None or not path.exists():
        return {}
    plain = sql_word_regex(needles)
    hits: dict[str, int] = {}
    with duckdb.connect(str(path), read_only=True) as con:
        columns = con.execute(
            "select table_schema, table_name, column_name, data_type "
            "from information_schema.columns c join information_schema.tables t "
            "using (table_catalog, table_schema, table_name) "
            "where t.table_type = 'BASE TABLE' order by 1, 2, 3").fetchall()
        tables: dict[tuple[str, str], list[str]] = {}
        for schema, table, column, data_type in columns:
            if str(data_type).upper() in TEXT_TYPES:
                tables.setdefault((schema, table), []).append(column)
        for (schema, table), names in tables.items():
            condition = " or ".join(
                f"regexp_matches({quote_ident(c)}::varchar, ?)" for c in names)
            [(found,)] = con.execute(
                f"select count(*) from {quote_ident(schema)}.{quote_ident(table)} "
                f"where {condition}", [plain] * len(names)).fetchall()
            if found:
                hits[f"{schema}.{table}"] = int(found)
    return hits


def scan_bytes(paths: Iterable[Path], needles: list[str]) -> dict[str, int]:
    """path -> occurrences of any needle in the file's bytes (gzip files also decompressed)."""
    pattern = needle_pattern(needles)
    hits: dict[str, int] = {}
    if pattern is None:
        return hits
    for path in paths:
        if not path.is_file() or path.is_symlink():
            continue
        data = path.read_bytes()
        found = len(pattern.findall(data))
        if path.name.endswith(".gz"):
            with contextlib.suppress(OSError, EOFError):
                found += len(pattern.findall(gzip.decompress(data)))
        if found:
            hits[str(path)] = found
    return hits


def files_in(*folders: Path | None) -> list[Path]:
    found: list[Path] = []
    for folder in folders:
        if folder is None or not folder.exists():
            continue
        if folder.is_file():
            found.append(folder)
            continue
        found.extend(p for p in folder.rglob("*") if p.is_file() and not p.is_symlink())
    return sorted(set(found))
