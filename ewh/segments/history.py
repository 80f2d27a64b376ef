"""Segment history at past dates: every segment evaluated at each day's as_of.

A regular build evaluates the segments once, at its own as_of. A backfill replays the rules
for days in the past, from the events already in the warehouse:

1. ``compile_replay`` compiles (``dbt compile --full-refresh``) every model between the event
   models and the segments (the per-user features, ``dim_users``, each ``seg_`` model) at a
   sentinel as_of. The compiled SQL is the models' own: no rule is written twice.
2. ``evaluate_days`` runs that SQL in DuckDB once per day, with the sentinel replaced by the
   day's as_of and the event models read as they were then (``occurred_at <= as_of``), into
   temporary tables, and keeps (as_of, user_key, segment) of every member.
3. ``merge_history`` rewrites ``segments.segment_membership_history`` inside the backfilled
   range from those evaluations: spells before the range are kept (and continue into it when
   the user is still a member on its first day), spells after it are kept and the state of
   the range's last day lasts until the next recorded evaluation. Re-running a backfill gives
   the same rows.

Identity is the warehouse's current one (merges apply retroactively, rule 3), so history rows
carry today's user_key. A day's as_of is its last second (``23:59:59`` UTC), capped at the
warehouse's own as_of, so `entered_at`/`exited_at` fall on the day the rule first (no longer)
held and ``segment_sizes_daily`` counts them on that day.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any

import duckdb

from ewh.common.build_inputs import forget_key
from ewh.common.settings import PROJECT_ROOT
from ewh.common.sql_text import quote_ident, sql_literal

# The as_of the replay SQL is compiled at; each day's as_of replaces it.
SENTINEL = "2999-12-31 23:59:58"
# Event-level models read as they were at a day's as_of (their rows up to it).
EVENT_MODELS = ("stg_events", "int_events_stitched", "int_sessionized_events")
# The model the segments read; it and every model between it and the event models replay.
USERS_MODEL = "dim_users"
HISTORY = "segments.segment_membership_history"
DAY_END = time(23, 59, 59)

Progress = Callable[[date], None]


class ReplayError(RuntimeError):
    """The models cannot be replayed (compilation failed, or a model uses as_of in a way a
    literal cannot stand for)."""


@dataclass(frozen=True)
class ReplayModel:
    name: str
    relation: str  # as the compiled SQL names it, e.g. "warehouse"."marts"."dim_users"
    sql: str


@dataclass
class ReplayPlan:
    """What to run per day: the feature models in dependency order, then the segments."""

    models: list[ReplayModel]
    segments: list[ReplayModel]
    event_relations: dict[str, str] = field(default_factory=dict)  # relation -> model name


def day_as_of(day: date, cap: datetime) -> datetime:
    """The instant a day is evaluated at: its last second, or `cap` when that is earlier."""
    return min(datetime.combine(day, DAY_END), cap)


def days_between(start: date, end: date) -> list[date]:
    if end < start:
        raise ValueError(f"--to {end} is before --from {start}")
    return [start + timedelta(days=n) for n in range((end - start).days + 1)]


def _dbt_executable() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def _replayed_names(manifest: dict[str, Any]) -> tuple[list[str], list[str]]:
    """(feature models in dependency order, segment models): every model upstream of a
    segment and downstream of an event model, except the event models themselves."""
    nodes = {uid: n for uid, n in manifest["nodes"].items() if n["resource_type"] == "model"}
    by_name = {n["name"]: uid for uid, n in nodes.items()}
    segments = sorted(n["name"] for n in nodes.values()
                      if ((n.get("config", {}).get("meta") or {}).get("segment")))
    parents = {uid: [p for p in n["depends_on"]["nodes"] if p in nodes]
               for uid, n in nodes.items()}

    def ancestors(uid: str, seen: set[str]) -> set[str]:
        for parent in parents[uid]:
            if parent not in seen:
                seen.add(parent)
                ancestors(parent, seen)
        return seen

    upstream: set[str] = set()
    for name in segments:
        ancestors(by_name[name], upstream)
    events = {by_name[name] for name in EVENT_MODELS if name in by_name}
    # Identity is today's (merges apply retroactively): what the event models read is used
    # as it is now. A model replays when it reads an event model, directly or through
    # another model.
    current = set().union(*(ancestors(uid, set()) for uid in events))
    replayed = {uid for uid in upstream
                if uid not in events | current and ancestors(uid, set()) & events}
    order: list[str] = []

    def visit(uid: str) -> None:
        if uid in order:
            return
        for parent in parents[uid]:
            if parent in replayed:
                visit(parent)
        order.append(uid)

    for uid in sorted(replayed):
        visit(uid)
    return [nodes[uid]["name"] for uid in order], segments


def compile_replay(warehouse: Path, vars_: dict[str, Any] | None = None) -> ReplayPlan:
    """Compile the replayed models and the segments at the sentinel as_of (one dbt call)."""
    with tempfile.TemporaryDirectory(prefix="ewh-replay-") as tmp:
        target = Path(tmp) / "target"
        variables = {**(vars_ or {}), "as_of": SENTINEL}
        # Everything dim_users reads, and the segments (more than is replayed: cheap).
        _run_dbt(warehouse, target, ["compile", "--quiet", "--full-refresh", "--select",
                                     f"+{USERS_MODEL}", "path:models/segments",
                                     "--vars", json.dumps(variables)])
        manifest = json.loads((target / "manifest.json").read_text())
    features, segments = _replayed_names(manifest)
    compiled = manifest["nodes"]
    by_name = {n["name"]: n for n in compiled.values() if n["resource_type"] == "model"}

    def model(name: str) -> ReplayModel:
        node = by_name[name]
        sql = node.get("compiled_code")
        if not sql:
            raise ReplayError(f"dbt did not compile {name}")
        return ReplayModel(name, node["relation_name"], sql)

    plan = ReplayPlan([model(n) for n in features], [model(n) for n in segments],
                      {by_name[n]["relation_name"]: n for n in EVENT_MODELS if n in by_name})
    for item in [*plan.models, *plan.segments]:
        leftover = item.sql.replace(f"'{SENTINEL}'", "")
        if SENTINEL[:10] in leftover:
            raise ReplayError(f"{item.name} uses as_of other than as a timestamp literal: "
                              "it cannot be replayed at past dates")
    return plan


def _run_dbt(warehouse: Path, target: Path, args: list[str]) -> None:
    import os

    env = {**os.environ, "EWH_WAREHOUSE": str(warehouse), "EWH_DBT_TARGET": "duckdb"}
    command = [_dbt_executable(), *args, "--project-dir", str(PROJECT_ROOT),
               "--profiles-dir", str(PROJECT_ROOT), "--target-path", str(target),
               "--log-path", str(target / "logs")]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False,
                          cwd=PROJECT_ROOT)
    if done.returncode != 0:
        raise ReplayError(f"dbt {args[0]} failed: {(done.stdout + done.stderr)[-2000:]}")


def _temp_name(model: str) -> str:
    return quote_ident(f"replay_{model}")


def _day_sql(sql: str, as_of: datetime, relations: dict[str, str]) -> str:
    text = sql.replace(f"'{SENTINEL}'", sql_literal(as_of.isoformat(sep=" ")))
    # Longest first: no relation name is a prefix of another's quoted form, but be safe.
    for relation in sorted(relations, key=len, reverse=True):
        text = text.replace(relation, relations[relation])
    return text


def _event_relation(relation: str, columns: set[str], stamp: str) -> str:
    """An event model as it was at `stamp`: its rows up to then. Identity is today's, but a
    person not identified yet then has no user_id yet (their later userId would make them
    identified before they were)."""
    replace = ""
    if {"user_id", "user_key", "is_identified"} <= columns:
        replace = (" replace (case when bool_or(is_identified) over (partition by user_key) "
                   "then user_id end as user_id)")
    return (f"(select *{replace} from {relation} "
            f"where occurred_at <= cast({stamp} as timestamp))")


def _relations(plan: ReplayPlan, as_of: datetime,
               columns: dict[str, set[str]]) -> dict[str, str]:
    stamp = sql_literal(as_of.isoformat(sep=" "))
    relations = {relation: _event_relation(relation, columns.get(relation, set()), stamp)
                 for relation in plan.event_relations}
    relations.update({m.relation: _temp_name(m.name) for m in plan.models})
    return relations


def _columns(con: duckdb.DuckDBPyConnection, relations: Iterable[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for relation in relations:
        result = con.execute(f"select * from {relation} limit 0")
        found[relation] = {d[0] for d in result.description}
    return found


def evaluate_days(con: duckdb.DuckDBPyConnection, plan: ReplayPlan, instants: Iterable[datetime],
                  progress: Progress | None = None) -> int:
    """Evaluate every segment at each instant into the temporary table `replay_members`
    (as_of, user_key, segment); returns the rows written."""
    con.execute("create or replace temp table replay_members "
                "(as_of timestamp, user_key varchar, segment varchar)")
    columns = _columns(con, plan.event_relations)
    for as_of in instants:
        relations = _relations(plan, as_of, columns)
        for model in plan.models:
            con.execute(f"create or replace temp table {_temp_name(model.name)} as "
                        + _day_sql(model.sql, as_of, relations))
        stamp = sql_literal(as_of.isoformat(sep=" "))
        union = "\nunion all\n".join(
            f"select distinct cast({stamp} as timestamp), member.user_key, "
            f"{sql_literal(segment.name)} from ({_day_sql(segment.sql, as_of, relations)}) "
            "as member"
            for segment in plan.segments)
        con.execute(f"insert into replay_members {union}")
        if progress is not None:
            progress(as_of.date())
    for model in plan.models:
        con.execute(f"drop table if exists {_temp_name(model.name)}")
    return int(con.execute("select count(*) from replay_members").fetchone()[0])


# The history rewritten around the range [first, last] of evaluated instants:
# - kept: spells before the range (one still open at `first` closes there, or continues when
#   the user is a member on the first day);
# - the range: runs of consecutive evaluations with the user in the segment;
# - after it: the state of the last day lasts until the next recorded evaluation (`resume`),
#   when the recorded spells take over again.
MERGE_SQL = """
create or replace temp table replay_history as
with
old as (select * from {history}),
instants as (select distinct as_of from replay_members union select as_of from replay_days),
ranked as (
    select as_of, row_number() over (order by as_of) as position from instants
),
members as (
    select m.user_key, m.segment, r.position, m.as_of
    from replay_members m join ranked r using (as_of)
),
runs as (
    -- gaps and islands: consecutive evaluated days in the segment form one spell
    select user_key, segment, min(as_of) as entered_at, max(position) as last_position
    from (select *, position - row_number() over (partition by user_key, segment
                                                  order by position) as island
          from members)
    group by user_key, segment, island
),
range_spells as (
    select runs.user_key, runs.segment, runs.entered_at,
           next_day.as_of as exited_at
    from runs left join ranked as next_day on next_day.position = runs.last_position + 1
),
before as (
    -- spells that began before the range, cut at its first day
    select user_key, segment, entered_at,
           case when exited_at is null or exited_at > {first} then {first} else exited_at end
               as exited_at
    from old where entered_at < {first}
),
after as (
    select user_key, segment, greatest(entered_at, {resume}) as entered_at, exited_at
    from old
    where {resume} is not null and (exited_at is null or exited_at > {resume})
),
pieces as (
    select * from before
    union all select * from range_spells
    union all select * from after
),
-- a range spell still open at the last day lasts until the resume instant, where it joins the
-- recorded spell that continues (or ends there)
stitched as (
    select user_key, segment, entered_at,
           case when exited_at is null and {resume} is not null
                and entered_at < {resume} then {resume} else exited_at end as exited_at
    from pieces
),
merged as (
    -- adjacent pieces (one ends where the next begins) are one spell
    select user_key, segment, min(entered_at) as entered_at,
           case when bool_or(exited_at is null) then null else max(exited_at) end as exited_at
    from (
        select *, sum(starts) over (partition by user_key, segment order by entered_at
                                    rows unbounded preceding) as spell
        from (select *, case when lag(exited_at) over w = entered_at then 0 else 1 end as starts
              from stitched
              window w as (partition by user_key, segment order by entered_at))
    )
    group by user_key, segment, spell
)
select
    md5(user_key || '|' || segment || '|' || cast(entered_at as varchar)) as membership_id,
    user_key, segment, entered_at, exited_at, exited_at is null as is_current
from merged
where exited_at is null or exited_at > entered_at
"""


def _literal(value: datetime | None) -> str:
    if value is None:
        return "cast(null as timestamp)"
    return f"cast({sql_literal(value.isoformat(sep=' '))} as timestamp)"


def merge_history(con: duckdb.DuckDBPyConnection, instants: list[datetime],
                  resume: datetime | None) -> dict[str, int]:
    """Rewrite the history table from `replay_members` (see MERGE_SQL); returns counts."""
    first = min(instants)
    con.execute("create or replace temp table replay_days (as_of timestamp)")
    con.executemany("insert into replay_days values (?)", [[i] for i in instants])
    con.execute(MERGE_SQL.format(history=HISTORY, first=_literal(first), resume=_literal(resume)))
    before = con.execute(f"select count(*) from {HISTORY}").fetchone()[0]
    con.execute("begin transaction")
    try:
        con.execute(f"delete from {HISTORY}")
        con.execute(f"insert into {HISTORY} by name select * from replay_history")
        forget_key(con)  # a dbt table rewritten outside dbt: the next `ewh build` runs
        con.execute("commit")
    except Exception:
        con.execute("rollback")
        raise
    after = con.execute(f"select count(*) from {HISTORY}").fetchone()[0]
    return {"spells_before": int(before), "spells_after": int(after)}


@dataclass(frozen=True)
class BackfillResult:
    days: int
    first_as_of: datetime
    last_as_of: datetime
    evaluations: int  # (day, member) rows
    spells_before: int
    spells_after: int
    sizes: dict[date, dict[str, int]]  # day -> segment -> members


def _resume_instant(con: duckdb.DuckDBPyConnection, last: datetime) -> datetime | None:
    """The first recorded evaluation after the range: the earliest spell boundary after it,
    or the as_of of the current build (dim_users.as_of) when later than the range."""
    row = con.execute(
        f"select min(t) from (select entered_at as t from {HISTORY} union all "
        f"select exited_at from {HISTORY} union all select max(as_of) from marts.dim_users) "
        "where t > ?", [last]).fetchone()
    return row[0] if row else None


def warehouse_as_of(warehouse: Path) -> datetime:
    """The as_of of the warehouse's last build (dim_users.as_of)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        value = con.execute("select max(as_of) from marts.dim_users").fetchone()[0]
    if value is None:
        raise ReplayError(f"{warehouse} has no built dim_users: run a refresh first")
    return value


def backfill_history(warehouse: Path, start: date, end: date, cap: datetime | None = None,
                     plan: ReplayPlan | None = None,
                     progress: Progress | None = None) -> BackfillResult:
    """Evaluate every segment at each day's as_of from `start` to `end` (inclusive) and
    rewrite the history in that range. `cap` (default: the warehouse's as_of) bounds each
    day's as_of: no day is evaluated after the data's own as_of."""
    cap = cap or warehouse_as_of(warehouse)
    days = [d for d in days_between(start, end) if datetime.combine(d, time()) <= cap]
    if not days:
        raise ReplayError(f"nothing to backfill: {start}..{end} is after the as_of {cap}")
    instants = sorted({day_as_of(d, cap) for d in days})
    plan = plan or compile_replay(warehouse)
    with duckdb.connect(str(warehouse)) as con:
        rows = evaluate_days(con, plan, instants, progress)
        resume = _resume_instant(con, instants[-1])
        counts = merge_history(con, instants, resume)
        sizes: dict[date, dict[str, int]] = {}
        for as_of, segment, members in con.execute(
                "select as_of, segment, count(*) from replay_members group by all").fetchall():
            sizes.setdefault(as_of.date(), {})[segment] = int(members)
        con.execute("drop table replay_members")
    for instant in instants:
        for segment in plan.segments:
            sizes.setdefault(instant.date(), {}).setdefault(segment.name, 0)
    return BackfillResult(len(instants), instants[0], instants[-1], rows,
                          counts["spells_before"], counts["spells_after"], sizes)


def rebuild_dependents(warehouse: Path, as_of: datetime) -> None:
    """Rebuild what reads the history (segment_memberships, segment_sizes_daily) at the
    warehouse's own as_of."""
    with tempfile.TemporaryDirectory(prefix="ewh-backfill-") as tmp:
        _run_dbt(warehouse, Path(tmp) / "target",
                 ["run", "--quiet", "--select", "segment_memberships", "segment_sizes_daily",
                  "--vars", json.dumps({"as_of": as_of.isoformat(sep=" ")})])


def event_days(warehouse: Path) -> tuple[date, date]:
    """The first and last day with events in the warehouse (the default backfill range)."""
    with duckdb.connect(str(warehouse), read_only=True) as con:
        first, last = con.execute(
            "select min(occurred_at), max(occurred_at) "
            "from intermediate.int_events_stitched").fetchone()
    if first is None:
        raise ReplayError(f"{warehouse} has no events: load and build first")
    return first.date(), last.date()


_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def parse_day(text: str) -> date:
    if not _DATE.match(text):
        raise ValueError(f"not a date (YYYY-MM-DD): {text!r}")
    return date.fromisoformat(text)
