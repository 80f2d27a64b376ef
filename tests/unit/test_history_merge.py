"""How a backfill's daily evaluations merge into recorded segment history, on hand-made
spells whose expected result is worked out below (ewh.segments.history.merge_history)."""

from __future__ import annotations

from datetime import datetime

import duckdb

from ewh.segments.history import _resume_instant, merge_history

S = "seg_x"
JAN1, JAN2 = datetime(2026, 1, 1, 12), datetime(2026, 1, 2, 12)
JAN4_6AM, JAN8, JAN12 = datetime(2026, 1, 4, 6), datetime(2026, 1, 8, 12), datetime(2026, 1, 12)
BUILD = datetime(2026, 1, 20, 12)  # the warehouse's own as_of (dim_users.as_of)
T3, T4, T5 = (datetime(2026, 1, d, 23, 59, 59) for d in (3, 4, 5))  # the backfilled days


def _warehouse(spells: list[tuple]) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create schema segments; create schema marts")
    con.execute("create table marts.dim_users as select ?::timestamp as as_of", [BUILD])
    con.execute("create table segments.segment_membership_history (membership_id varchar, "
                "user_key varchar, segment varchar, entered_at timestamp, "
                "exited_at timestamp, is_current boolean)")
    for user, entered, exited in spells:
        con.execute("insert into segments.segment_membership_history values "
                    "(md5(?), ?, ?, ?, ?, ?)", [f"{user}{entered}", user, S, entered, exited,
                                                exited is None])
    return con


def _evaluate(con: duckdb.DuckDBPyConnection, members: dict[datetime, list[str]]) -> None:
    con.execute("create temp table replay_members "
                "(as_of timestamp, user_key varchar, segment varchar)")
    for as_of, users in members.items():
        for user in users:
            con.execute("insert into replay_members values (?, ?, ?)", [as_of, user, S])


def _spells(con: duckdb.DuckDBPyConnection) -> set[tuple]:
    return set(con.execute("select user_key, entered_at, exited_at, is_current "
                           "from segments.segment_membership_history").fetchall())


def test_a_range_is_rewritten_and_joins_what_was_recorded_before_and_after_it():
    con = _warehouse([
        ("u", JAN1, None),        # in since a build on Jan 1, still in
        ("w", JAN2, JAN4_6AM),    # in from Jan 2 to a build at Jan 4 06:00
        ("x", JAN12, None),       # entered after the range
        ("y", JAN1, JAN8),        # left at a build on Jan 8
    ])
    # The backfill's answers: u in, out, in; v in on the 4th only; y in on the 5th; w never.
    _evaluate(con, {T3: ["u"], T4: ["v"], T5: ["u", "y"]})
    resume = _resume_instant(con, T5)
    assert resume == JAN8  # the first recorded evaluation after the range
    merge_history(con, [T3, T4, T5], resume)
    assert _spells(con) == {
        # before the range Jan 1..T3, in on T3, out on T4 (one spell: adjacent pieces join)
        ("u", JAN1, T4, False),
        # in again on T5, and recorded as in from Jan 8 on: one open spell
        ("u", T5, None, True),
        ("v", T4, T5, False),
        # the recorded spell is cut where the range begins: the range says w was out
        ("w", JAN2, T3, False),
        ("x", JAN12, None, True),
        # cut at T3 (out on T3 and T4), in on T5 until its recorded exit on Jan 8
        ("y", JAN1, T3, False),
        ("y", T5, JAN8, False),
    }


def test_the_same_range_again_gives_the_same_rows():
    con = _warehouse([("u", JAN1, None), ("y", JAN1, JAN8)])
    _evaluate(con, {T3: ["u"], T4: [], T5: ["u", "y"]})
    merge_history(con, [T3, T4, T5], _resume_instant(con, T5))
    first = _spells(con)
    merge_history(con, [T3, T4, T5], _resume_instant(con, T5))
    assert _spells(con) == first
    assert ("u", JAN1, T4, False) in first and ("u", T5, None, True) in first


def test_a_range_up_to_the_build_leaves_its_last_state_open():
    con = _warehouse([("u", BUILD, None)])  # the build saw u
    _evaluate(con, {T3: ["u"], BUILD: ["u"]})
    merge_history(con, [T3, BUILD], _resume_instant(con, BUILD))
    assert _spells(con) == {("u", T3, None, True)}
