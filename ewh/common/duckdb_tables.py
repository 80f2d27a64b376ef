"""Questions about a DuckDB file's catalog that several readers ask."""

from __future__ import annotations

import duckdb


def has_table(con: duckdb.DuckDBPyConnection, schema: str, table: str) -> bool:
    """Whether schema.table exists: a serving copy published (or a warehouse built) before a
    table existed lacks it until the next publish or build."""
    return bool(con.execute(
        "select count(*) from information_schema.tables where table_schema = ? "
        "and table_name = ?", [schema, table]).fetchone()[0])
