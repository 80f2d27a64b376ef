"""The read-only serving copy: `marts` and `segments`, published atomically.

Analysts, exports and the segment API read `data/serving.duckdb`, never the warehouse, so
they neither meet the writer's lock nor see a half-finished refresh. Publishing builds a
complete new file beside the old one and renames it into place: a reader that already has
the old file open keeps a consistent snapshot, and the next open sees the new one.
"""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

from ewh.common.clock import utc_now
from ewh.common.sql_text import quote_ident, sql_literal
from ewh.segments.catalog import SegmentSpec

PUBLISHED_SCHEMAS = ("marts", "segments")

# Who was in a segment at the end of a UTC day (named with or without seg_): entered by
# then and not exited by then. `select * from segments.segment_members_at('cart_abandoners',
# date '2026-11-01')`; analyses/segment_members_at.sql is the same query for the warehouse.
MEMBERS_AT_MACRO = """
create or replace macro segments.segment_members_at(segment_name, on_date) as table
select history.user_key, users.user_id, history.segment, history.entered_at, history.exited_at
from segments.segment_membership_history as history
left join marts.dim_users as users on history.user_key = users.user_key
where history.segment in (segment_name, 'seg_' || segment_name)
  and history.entered_at < cast(on_date as date) + interval 1 day
  and (history.exited_at is null
       or history.exited_at >= cast(on_date as date) + interval 1 day)
"""


@dataclass(frozen=True)
class PublishResult:
    path: Path
    tables: dict[str, int]  # schema.table -> rows
    published_at: datetime


def _tables(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str]]:
    schemas = ", ".join(sql_literal(s) for s in PUBLISHED_SCHEMAS)
    return con.execute(
        "select table_schema, table_name from information_schema.tables "
        f"where table_catalog = 'warehouse' and table_schema in ({schemas}) "
        "order by 1, 2"
    ).fetchall()


def publish_serving_copy(
    warehouse: Path, serving: Path, segments: list[SegmentSpec], run_id: str | None = None
) -> PublishResult:
    """Copy marts and segments from the warehouse into a new file, then rename it over `serving`."""
    serving.parent.mkdir(parents=True, exist_ok=True)
    staging = serving.with_name(f".{serving.name}.{uuid.uuid4().hex}.partial")
    published_at = utc_now()
    counts: dict[str, int] = {}
    try:
        with duckdb.connect(str(staging)) as con:
            con.execute(f"attach {sql_literal(str(warehouse))} as warehouse (read_only)")
            for schema in PUBLISHED_SCHEMAS:
                con.execute(f"create schema if not exists {quote_ident(schema)}")
            for schema, table in _tables(con):
                target = f"{quote_ident(schema)}.{quote_ident(table)}"
                con.execute(f"create table {target} as select * from warehouse.{target}")
                counts[f"{schema}.{table}"] = con.execute(
                    f"select count(*) from {target}").fetchone()[0]
            _write_catalog(con, segments, counts, published_at, run_id)
            if "segments.segment_membership_history" in counts:
                con.execute(MEMBERS_AT_MACRO)
            con.execute("detach warehouse")
            con.execute("checkpoint")
        os.replace(staging, serving)
    finally:
        for leftover in (staging, staging.with_name(staging.name + ".wal")):
            leftover.unlink(missing_ok=True)
    return PublishResult(path=serving, tables=counts, published_at=published_at)


def _write_catalog(con: duckdb.DuckDBPyConnection, segments: list[SegmentSpec],
                   counts: dict[str, int], published_at: datetime, run_id: str | None) -> None:
    """What the API needs beside the data: each segment's rule, size and publish time."""
    con.execute(
        "create table segments.segment_catalog (segment varchar, rule varchar, "
        "owner varchar, refresh varchar, is_exported boolean, members bigint, "
        "refreshed_at timestamp)"
    )
    con.executemany(
        "insert into segments.segment_catalog values (?, ?, ?, ?, ?, ?, ?)",
        [[s.name, s.rule, s.owner, s.refresh, s.exported,
          counts.get(f"segments.{s.name}", 0), published_at] for s in segments],
    )
    con.execute("create table segments.publish_log (published_at timestamp, run_id varchar)")
    con.execute("insert into segments.publish_log values (?, ?)", [published_at, run_id])
