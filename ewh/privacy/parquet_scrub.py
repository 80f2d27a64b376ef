"""Erase a person from Parquet files: the raw lake the Spark target reads (EWH_LAKE_DIR) and
the Spark target's own tables (EWH_SPARK_WAREHOUSE).

Parquet files are compressed, so neither a line rewrite nor a byte scan can find a person in
them: each file is read as a table. A file with rows naming them is rewritten without those
rows, same schema (the lake's UTC instants included), through a temporary file that is
fsync'ed; the old file's bytes are then overwritten with random bytes and the new file is
renamed over it. A file left without rows stays, empty, so a lake load still has its file
(ewh.ingest.lake publishes a load only when its file is missing).

Which rows: raw events (a lake file has a `payload` column) by user_id, anonymous_id or an
alias's previousId, as in the warehouse (ewh.privacy.erasure); every other table by each
column whose name says it names a person (erasure.IDENTITY_COLUMN) holding one of their ids
or user_keys. A Spark table rewritten here is as the warehouse after the erasure; the next
`dbt build` on Spark carries on from it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from ewh.common.sql_text import quote_ident, sql_literal
from ewh.privacy.files import FILE_MODE, overwrite_random
from ewh.privacy.scan import needle_pattern, sql_word_regex


def parquet_files(*folders: Path | None) -> list[Path]:
    found: set[Path] = set()
    for folder in folders:
        if folder is not None and folder.is_dir():
            found.update(p for p in folder.rglob("*.parquet")
                         if p.is_file() and not p.is_symlink())
    return sorted(found)


def _condition(columns: list[str], identity_column: re.Pattern[str]) -> str | None:
    if "payload" in columns and "message_id" in columns:  # raw events
        return ("list_contains($user_ids, user_id) or list_contains($anonymous_ids, "
                "anonymous_id) or list_contains($ids, "
                "try(json_extract_string(payload, '$.previousId')))")
    named = [c for c in columns if identity_column.match(c)]
    if not named:
        return None
    return " or ".join(f"list_contains($keys, {quote_ident(c)}::varchar)" for c in named)


def scrub_parquet(paths: Iterable[Path], *, user_ids: set[str], anonymous_ids: set[str],
                  keys: set[str], identity_column: re.Pattern[str]) -> dict[str, int]:
    """Rewrite each file without the person's rows; path -> rows removed (files changed only)."""
    parameters = {"user_ids": sorted(user_ids), "anonymous_ids": sorted(anonymous_ids),
                  "ids": sorted(user_ids | anonymous_ids), "keys": sorted(keys)}
    removed: dict[str, int] = {}
    with duckdb.connect() as con:
        con.execute("set TimeZone = 'UTC'")
        for path in paths:
            schema = pq.read_schema(path)
            condition = _condition(schema.names, identity_column)
            if condition is None:
                continue
            source = f"read_parquet({sql_literal(str(path))}, hive_partitioning = false)"
            used = {name: value for name, value in parameters.items() if f"${name}" in condition}
            [(doomed,)] = con.execute(f"select count(*) from {source} where {condition}",
                                      used).fetchall()
            if not doomed:
                continue
            kept = con.execute(
                f"select * from {source} where not coalesce({condition}, false)",
                used).to_arrow_table()
            _replace(path, kept, schema)
            removed[str(path)] = int(doomed)
    return removed


def _replace(path: Path, rows: pa.Table, schema: pa.Schema) -> None:
    partial = path.with_name(f".{path.name}.partial")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    os.close(fd)
    pq.write_table(rows.select(schema.names).cast(schema), partial, compression="zstd")
    with partial.open("rb") as handle:
        os.fsync(handle.fileno())
    with path.open("r+b") as old:
        overwrite_random(old, path.stat().st_size)
    os.replace(partial, path)


def parquet_hits(paths: Iterable[Path], needles: list[str]) -> dict[str, int]:
    """path -> rows of a Parquet file where a text column holds a needle (as a word)."""
    if needle_pattern(needles) is None:
        return {}
    plain = sql_word_regex(needles)
    hits: dict[str, int] = {}
    with duckdb.connect() as con:
        for path in paths:
            schema = pq.read_schema(path)
            text = [f.name for f in schema if str(f.type) in ("string", "large_string")]
            if not text:
                continue
            condition = " or ".join(f"regexp_matches({quote_ident(c)}, ?)" for c in text)
            [(found,)] = con.execute(
                f"select count(*) from read_parquet({sql_literal(str(path))}, "
                "hive_partitioning = false) "
                f"where {condition}", [plain] * len(text)).fetchall()
            if found:
                hits[str(path)] = int(found)
    return hits
