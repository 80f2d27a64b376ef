"""Shared by the tests that build small warehouses from hand-made or generated messages:
write the messages as an NDJSON file, build with the real dbt at an as_of, read rows back."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb
from dbt_runner import run_dbt


def write_messages(folder: Path, name: str, messages: list[dict[str, Any]]) -> Path:
    """`messages` as an NDJSON file `folder/name`, one message a line, ready to load."""
    path = folder / name
    path.write_text("".join(json.dumps(m) + "\n" for m in messages))
    return path


def dbt_build(warehouse: Path, work: Path, as_of: str, *extra: str) -> None:
    """`dbt build` at `as_of` (unit tests left out: they need no warehouse)."""
    run_dbt(warehouse, work, "build", "--exclude-resource-type", "unit_test",
            "--vars", json.dumps({"as_of": as_of}), *extra)


def query_rows(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute(sql).fetchall()
