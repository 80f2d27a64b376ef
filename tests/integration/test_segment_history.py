"""Segment history at past dates (`ewh segments backfill`), against real dbt builds.

One generated dataset (21 days), loaded and built at its end (the `backfilled` fixture,
tests/integration/conftest.py). The backfill (the real CLI)
evaluates every segment at each day's as_of. Checked:
- the last day is evaluated at the build's own as_of, so its members are exactly the seg_
  tables the build wrote (the replay runs the same compiled SQL on the same events);
- at a past day, a SECOND real `dbt build` pinned to that day's as_of (a fresh warehouse
  from the same raw events) is the oracle: every person whose identity did not change
  since (same user_key, same ids) is in the same segments;
- segment_sizes_daily then has every day, entries fall on real dates, and the history
  never overlaps itself; a rerun, and a rerun of a sub-range, give the same rows;
- the serving copy answers `segments.segment_members_at(name, date)` with either name form.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest
from dbt_runner import run_dbt
from history_warehouse import DAYS, members, run_ewh

PAST_DAY = date(2026, 6, 22)


def _history(warehouse: Path) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return con.execute("select * from segments.segment_membership_history "
                           "order by all").fetchall()


@pytest.fixture(scope="module")
def built(backfilled):
    return backfilled


def test_the_backfill_succeeds_quietly(built):
    *_, done = built
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "evaluated 22 days" in done.stdout and done.stderr.strip() == ""


def test_the_last_day_equals_the_build_at_the_same_as_of(built):
    _, warehouse, _, segments, at_build, *_ = built
    with duckdb.connect(str(warehouse), read_only=True) as con:
        current = set(con.execute(
            "select segment, user_key from segments.segment_membership_history "
            "where is_current").fetchall())
        memberships = set(con.execute(
            "select segment, user_key from segments.segment_memberships").fetchall())
    assert current == at_build == memberships
    assert len(at_build) > 100


def test_a_past_day_agrees_with_a_real_build_at_that_as_of(built):
    root, warehouse, _, segments, *_ = built
    past = root / "past.duckdb"
    shutil.copy(root / "loaded.duckdb", past)
    as_of = datetime.combine(PAST_DAY, datetime.max.time()).replace(microsecond=0)
    run_dbt(past, root / "past", "build", "--exclude-resource-type", "unit_test",
            "--exclude-resource-type", "test", "--vars", f'{{as_of: "{as_of}"}}')
    ids = ("select user_key, list(id order by id) from (select user_key, "
           "coalesce(anonymous_id, '') || '|' || coalesce(user_id, '') as id "
           "from intermediate.int_identity_map) group by user_key")
    with duckdb.connect(str(past), read_only=True) as con:
        oracle = members(con, segments)
        then = dict(con.execute(ids).fetchall())
    with duckdb.connect(str(warehouse), read_only=True) as con:
        now = dict(con.execute(ids).fetchall())
        replayed = set(con.execute(
            "select segment, user_key from segments.segment_membership_history "
            "where entered_at <= ? and (exited_at is null or exited_at > ?)",
            [as_of, as_of]).fetchall())
    stable = {key for key, members in then.items() if now.get(key) == members}
    assert len(stable) > 0.8 * len(then)
    keep = {(s, k) for s, k in oracle | replayed if k in stable}
    assert {m for m in oracle if m in keep} == {m for m in replayed if m in keep}
    assert len({m for m in oracle if m in keep}) > 50


def test_sizes_cover_every_day_and_entries_fall_on_real_dates(built):
    _, warehouse, _, segments, _, first, _ = built
    with duckdb.connect(str(warehouse), read_only=True) as con:
        days, rows = con.execute("select count(distinct size_date), count(*) "
                                 "from segments.segment_sizes_daily").fetchone()
        entry_days = con.execute("select count(distinct cast(entered_at as date)) "
                                 "from segments.segment_membership_history").fetchone()[0]
        overlapping = con.execute("""
            select count(*) from segments.segment_membership_history a
            join segments.segment_membership_history b
              on a.user_key = b.user_key and a.segment = b.segment
             and a.membership_id < b.membership_id
             and a.entered_at < coalesce(b.exited_at, timestamp '9999-12-31')
             and b.entered_at < coalesce(a.exited_at, timestamp '9999-12-31')""").fetchone()[0]
        first_size = con.execute("select min(size_date) from segments.segment_sizes_daily"
                                 ).fetchone()[0]
    assert first_size == first and days == DAYS + 1 and rows == days * len(segments)
    assert entry_days >= 15 and overlapping == 0


def test_a_rerun_and_a_sub_range_rerun_give_the_same_rows(built):
    _, warehouse, env, *_ = built
    before = _history(warehouse)
    again = run_ewh(env, "segments", "backfill")  # default range: the first event day .. as_of
    assert again.returncode == 0, again.stderr[-3000:]
    assert _history(warehouse) == before
    middle = run_ewh(env, "segments", "backfill", "--from", "2026-06-18", "--to", "2026-06-24")
    assert middle.returncode == 0, middle.stderr[-3000:]
    assert _history(warehouse) == before


def test_the_serving_copy_answers_who_was_in_a_segment_on_a_date(built):
    root, warehouse, *_ = built
    with duckdb.connect(str(warehouse), read_only=True) as con:
        expected = set(con.execute(
            "select user_key from segments.segment_membership_history "
            "where segment = 'seg_cart_abandoners' and entered_at < date '2026-06-23' "
            "and (exited_at is null or exited_at >= date '2026-06-23')").fetchall())
    with duckdb.connect(str(root / "serving.duckdb"), read_only=True) as con:
        short = set(con.execute("select user_key from segments.segment_members_at("
                                "'cart_abandoners', date '2026-06-22')").fetchall())
        full = set(con.execute("select user_key from segments.segment_members_at("
                               "'seg_cart_abandoners', '2026-06-22')").fetchall())
    assert short == full == expected and expected
