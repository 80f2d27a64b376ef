"""The change log: every entry and exit a build's evaluation made, numbered for cursors.

`segments.segment_membership_history` (dbt) opens a spell at the as_of a user enters a
segment and closes it at the as_of they leave. After each build, `record_changes` appends to
`segments.segment_changes` one row per spell opened (entered) or closed (exited) after the
last recorded as_of and up to this build's, with:

- change_seq: a number that only grows (the cursor of the pull API and of every subscriber);
- change_id: `<membership_id>:<entered|exited>`, stable (the webhooks' idempotency key and
  the broker's message id);
- the user (user_key, user_id), the segment, the time (changed_at = the as_of) and the
  evidence: the segment table's own columns for an entry (why they are in), the entry's
  evidence and when it began for an exit.

Spells a backfill rewrites in the past are history, not news: they are before the watermark
(`segments.segment_change_marks`, one row per recording) and are never announced. The first
recording on a warehouse announces only the changes at the current as_of.
The table lives in the `segments` schema, so the serving copy carries it to the pull API, and
erasure removes a person's rows with the rest (it finds every user_key/user_id column).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import duckdb

from ewh.common.clock import utc_now
from ewh.common.duckdb_tables import has_table
from ewh.common.sql_text import quote_ident, sql_literal
from ewh.privacy.erasure import IDENTITY_COLUMN

CHANGES = "segments.segment_changes"
MARKS = "segments.segment_change_marks"
HISTORY = "segments.segment_membership_history"

_CREATE = f"""
create table if not exists {CHANGES} (
    change_seq bigint not null,
    change_id varchar not null,
    segment varchar not null,
    user_key varchar not null,
    user_id varchar,
    change varchar not null,
    changed_at timestamp not null,
    entered_at timestamp,
    evidence json,
    recorded_at timestamp not null
);
create table if not exists {MARKS} (
    as_of timestamp not null,
    recorded_at timestamp not null,
    changes bigint not null
);
"""


@dataclass(frozen=True)
class Recorded:
    as_of: datetime | None
    changes: int
    first_seq: int | None
    last_seq: int | None


def ensure_change_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists segments")
    con.execute(_CREATE)


def _evidence_sql(con: duckdb.DuckDBPyConnection, segment: str) -> str | None:
    """`select user_key, to_json(...) as evidence from segments.<segment>`: every column but
    the identity ones (those are the change's own columns)."""
    if not has_table(con, "segments", segment):
        return None
    columns = [r[0] for r in con.execute(
        "select column_name from information_schema.columns where table_schema = 'segments' "
        "and table_name = ? order by ordinal_position", [segment]).fetchall()]
    shown = [c for c in columns if not IDENTITY_COLUMN.match(c)]
    fields = ", ".join(f"{quote_ident(c)} := {quote_ident(c)}" for c in shown)
    evidence = f"to_json(struct_pack({fields}))" if fields else "cast(null as json)"
    return (f"select user_key, {evidence} as evidence "
            f"from segments.{quote_ident(segment)}")


def record_changes(con: duckdb.DuckDBPyConnection) -> Recorded:
    """Append this build's entries and exits to the change log (in the caller's connection,
    which writes the warehouse); a second call for the same as_of adds nothing."""
    ensure_change_tables(con)
    if not has_table(con, "segments", "segment_membership_history") or not has_table(
            con, "marts", "dim_users"):
        return Recorded(None, 0, None, None)
    as_of = con.execute("select max(as_of) from marts.dim_users").fetchone()[0]
    if as_of is None:
        return Recorded(None, 0, None, None)
    mark = con.execute(f"select max(as_of) from {MARKS}").fetchone()[0]
    # First recording: only this as_of's changes; afterwards everything after the last mark.
    lower, inclusive = (as_of, True) if mark is None else (mark, False)
    if mark is not None and mark >= as_of:
        return Recorded(as_of, 0, None, None)
    cmp = ">=" if inclusive else ">"
    con.execute("begin")
    try:
        con.execute(f"""
            create or replace temp table new_changes as
            with spells as (
                select membership_id, user_key, segment, entered_at, exited_at
                from {HISTORY}
            ),
            candidates as (
                select membership_id || ':entered' as change_id, user_key, segment,
                       'entered' as change, entered_at as changed_at, entered_at
                from spells where entered_at {cmp} $lower and entered_at <= $as_of
                union all
                select membership_id || ':exited', user_key, segment, 'exited', exited_at,
                       entered_at
                from spells where exited_at {cmp} $lower and exited_at <= $as_of
            )
            select candidates.* from candidates
            anti join {CHANGES} as known using (change_id)
        """, {"lower": lower, "as_of": as_of})
        segments = [r[0] for r in con.execute(
            "select distinct segment from new_changes order by 1").fetchall()]
        parts = [f"select {sql_literal(s)} as segment, * from ({sql})" for s in segments
                 if (sql := _evidence_sql(con, s)) is not None]
        evidence = " union all ".join(parts) if parts else (
            "select null::varchar as segment, null::varchar as user_key, null::json as evidence "
            "where false")
        start = con.execute(f"select coalesce(max(change_seq), 0) from {CHANGES}").fetchone()[0]
        now = utc_now()
        con.execute(f"""
            insert into {CHANGES}
            with evidence as ({evidence}),
            entered_evidence as (
                select change_id, evidence from {CHANGES} where change = 'entered'
            )
            select
                $start + row_number() over (
                    order by c.changed_at, c.change desc, c.segment, c.user_key),
                c.change_id, c.segment, c.user_key, users.user_id, c.change, c.changed_at,
                c.entered_at,
                case when c.change = 'entered' then e.evidence
                     else json_object('at_entry', before.evidence) end,
                $now
            from new_changes as c
            left join evidence as e
                on c.change = 'entered' and e.segment = c.segment and e.user_key = c.user_key
            left join entered_evidence as before
                on c.change = 'exited'
                and before.change_id = replace(c.change_id, ':exited', ':entered')
            left join marts.dim_users as users on users.user_key = c.user_key
        """, {"start": start, "now": now})
        added = con.execute("select count(*) from new_changes").fetchone()[0]
        con.execute(f"insert into {MARKS} values (?, ?, ?)", [as_of, now, added])
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    return Recorded(as_of, int(added), start + 1 if added else None,
                    start + added if added else None)


def changes_after(con: duckdb.DuckDBPyConnection, after: int, limit: int,
                  segment: str | None = None) -> list[dict[str, Any]]:
    """Changes with change_seq > `after`, oldest first (of one segment, when given)."""
    if not has_table(con, "segments", "segment_changes"):
        return []
    result = con.execute(
        f"select change_seq, change_id, segment, user_key, user_id, change, changed_at, "
        f"entered_at, evidence, recorded_at from {CHANGES} "
        "where change_seq > ? and (? is null or segment = ?) order by change_seq limit ?",
        [after, segment, segment, limit])
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]
