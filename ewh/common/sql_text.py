"""Quoting for the few SQL statements built from names and paths (DuckDB syntax)."""

from __future__ import annotations


def quote_ident(name: str) -> str:
    """A schema, table or column name as a quoted identifier."""
    return '"' + name.replace('"', '""') + '"'


def sql_literal(text: str) -> str:
    """A string (a path, a name) as a SQL string literal."""
    return "'" + text.replace("'", "''") + "'"
