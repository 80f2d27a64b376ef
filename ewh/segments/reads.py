"""Queries the segment API answers from the serving copy (never the warehouse).

Each call opens the serving file read-only and closes it: a publish renames a new file
into place, and the next call sees it while a call in flight finishes on the old one.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from ewh.common.duckdb_tables import has_table
from ewh.common.sql_text import quote_ident
from ewh.segments.catalog import UnknownSegment, resolve_segment_name

__all__ = ["MembersPage", "ServingCopyMissing", "UnknownSegment", "list_segments",
           "segment_changes", "segment_members", "user_segments"]

MAX_PAGE = 1000


class ServingCopyMissing(FileNotFoundError):
    pass


@dataclass(frozen=True)
class MembersPage:
    segment: str
    members: list[dict[str, Any]]
    next_cursor: str | None


def _connect(serving: Path) -> duckdb.DuckDBPyConnection:
    if not serving.exists():
        raise ServingCopyMissing(f"no serving copy at {serving}: run a refresh first")
    return duckdb.connect(str(serving), read_only=True)


def _json_value(value: Any) -> Any:
    return value.isoformat() if isinstance(value, datetime) else value


def _rows(con: duckdb.DuckDBPyConnection, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    result = con.execute(sql, params)
    columns = [d[0] for d in result.description]
    return [{c: _json_value(v) for c, v in zip(columns, row, strict=True)}
            for row in result.fetchall()]


def list_segments(serving: Path) -> list[dict[str, Any]]:
    with _connect(serving) as con:
        return _rows(con, "select segment as name, rule, members as size, refreshed_at, owner, "
                          "refresh, is_exported from segments.segment_catalog order by segment", [])


def _resolve_segment(con: duckdb.DuckDBPyConnection, name: str) -> str:
    """Accept `cart_abandoners` or `seg_cart_abandoners`; only catalogued segments."""
    catalog = con.execute("select segment from segments.segment_catalog").fetchall()
    return resolve_segment_name(name, (row[0] for row in catalog))


def resolve_segment(serving: Path, name: str) -> str:
    """The catalogued segment a name stands for (`x` or `seg_x`); UnknownSegment if none."""
    with _connect(serving) as con:
        return _resolve_segment(con, name)


def encode_cursor(user_key: str) -> str:
    return base64.urlsafe_b64encode(user_key.encode()).decode()


def decode_cursor(cursor: str) -> str:
    try:
        key = base64.b64decode(cursor.encode(), altchars=b"-_", validate=True).decode()
    except (ValueError, UnicodeDecodeError) as exc:
        raise ValueError(f"invalid cursor {cursor!r}: pass next_cursor back unchanged") from exc
    if not key:
        raise ValueError(f"invalid cursor {cursor!r}: pass next_cursor back unchanged")
    return key


def segment_members(serving: Path, name: str, limit: int = 100,
                    cursor: str | None = None) -> MembersPage:
    """Members ordered by user_key; the cursor is the last key of the previous page (keyset
    pagination: stable and cheap however deep the page)."""
    if not 1 <= limit <= MAX_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_PAGE}, got {limit}")
    after = decode_cursor(cursor) if cursor else None
    with _connect(serving) as con:
        segment = _resolve_segment(con, name)
        members = _rows(
            con,
            f"select * from segments.{quote_ident(segment)} where ? is null or user_key > ? "
            "order by user_key limit ?",
            [after, after, limit + 1],
        )
    more = len(members) > limit
    members = members[:limit]
    next_cursor = encode_cursor(members[-1]["user_key"]) if more else None
    return MembersPage(segment=segment, members=members, next_cursor=next_cursor)


def user_segments(serving: Path, user_id: str) -> dict[str, Any]:
    """Segments and tags of a known userId (or of a user_key, for anonymous users)."""
    with _connect(serving) as con:
        keys = [r[0] for r in con.execute(
            "select user_key from marts.dim_users where user_id = ? or user_key = ?",
            [user_id, user_id]).fetchall()]
        segments = _rows(
            con,
            "select m.segment, m.entered_at from segments.segment_memberships m "
            "where m.user_key in (select unnest(?::varchar[])) order by m.segment",
            [keys],
        ) if keys else []
        # manual tags and the predictions' (likely_buyer, churn_risk), marts.user_tags
        tags = _rows(
            con,
            "select t.tag, t.tags_source as source, t.tagged_at from marts.user_tags t "
            "where t.user_key in (select unnest(?::varchar[])) order by t.tag, t.tags_source",
            [keys],
        ) if keys and has_table(con, "marts", "user_tags") else []
    return {"user_id": user_id, "known": bool(keys), "user_keys": keys, "segments": segments,
            "tags": tags}


MAX_CHANGES_PAGE = 1000


def segment_changes(serving: Path, name: str, since: str | None,
                    limit: int = 100) -> dict[str, Any]:
    """Entries and exits of a segment after a cursor (a change_seq), oldest first. The answer's
    `next_cursor` is what to pass as `since` next time (the same cursor when nothing is new)."""
    from ewh.activation.changes import changes_after

    if not 1 <= limit <= MAX_CHANGES_PAGE:
        raise ValueError(f"limit must be between 1 and {MAX_CHANGES_PAGE}, got {limit}")
    if since is not None and not since.isdigit():
        raise ValueError(f"invalid cursor {since!r}: pass next_cursor back unchanged "
                         "(or 0 for the beginning)")
    after = int(since) if since else 0
    with _connect(serving) as con:
        segment = _resolve_segment(con, name)
        rows = changes_after(con, after, limit, segment)
    changes = []
    for row in rows:
        row = {k: _json_value(v) for k, v in row.items()}
        if isinstance(row.get("evidence"), str):
            row["evidence"] = json.loads(row["evidence"])
        row["cursor"] = str(row.pop("change_seq"))
        changes.append(row)
    next_cursor = changes[-1]["cursor"] if changes else str(after)
    return {"segment": segment, "changes": changes, "next_cursor": next_cursor,
            "more": len(changes) == limit}
