"""Compact a DuckDB file: copy every object into a fresh file, then swap it in atomically.

DuckDB reuses the blocks of deleted rows but does not wipe them, so an erased id stays in the
file's bytes until they are overwritten. A fresh copy holds only live data; the old file is
overwritten with random bytes before the new one replaces it (best effort, docs/privacy.md).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import duckdb

from ewh.common.sql_text import quote_ident, sql_literal
from ewh.privacy.files import FILE_MODE, overwrite_random


def compact(path: Path, *, wipe_old: bool = True) -> tuple[int, int]:
    """Rewrite `path` as a fresh file; returns its size (bytes) before and after.

    Nothing may have the file open for writing. `wipe_old=False` for a file readers may hold
    open (the serving copy): they keep their snapshot until they close it, and its blocks are
    freed, not overwritten."""
    before = path.stat().st_size
    fresh = path.with_name(f".{path.name}.{uuid.uuid4().hex}.compact")
    name = path.stem  # views keep naming the catalog by the file's own name
    try:
        with duckdb.connect(":memory:") as con:
            con.execute(f"attach {sql_literal(str(path))} as {quote_ident(name)} (read_only)")
            con.execute(f"attach {sql_literal(str(fresh))} as ewh_compacted")
            con.execute(f"copy from database {quote_ident(name)} to ewh_compacted")
            con.execute("detach ewh_compacted")
            con.execute(f"detach {quote_ident(name)}")
        os.chmod(fresh, FILE_MODE)
        with open(path, "r+b") as old:  # held open: its blocks are wiped once it is replaced
            os.replace(fresh, path)
            # the old file's log must not be replayed onto the new one
            path.with_name(path.name + ".wal").unlink(missing_ok=True)
            overwrite_random(old, before if wipe_old else 0)
    finally:
        for leftover in (fresh, fresh.with_name(fresh.name + ".wal")):
            leftover.unlink(missing_ok=True)
    return before, path.stat().st_size
