"""segment_membership_history when as_of moves back: the later builds are undone.

The history records membership as each build's as_of evaluated it, and is kept across runs
(full_refresh=false). A build at an as_of earlier than builds already recorded undoes what
they recorded (spells entered after it removed, exits after it reopened), then evaluates the
segments at its own as_of: the history is what it would be had the later builds never run.

One generated dataset (21 days up to END), loaded once, in three warehouses:
- A (incremental): builds at D1 < D2 < D3, then at LOW (D1 < LOW < D2), then forward at D4
  (LOW < D4 < D3, inside the undone range);
- A' (the full-refresh path): a copy of A at D3, built at LOW with --full-refresh (the history
  is kept, so it takes the same path);
- the reference R: builds at D1, LOW and D4 only, the sequence without the builds undone.
Each history must equal R's at the same point, row for row (EXCEPT ALL both ways). A and A'
run `dbt build`, so the history's own data tests (exited_at >= entered_at among them) gate
every step. Only the models the history reads are built (+segment_membership_history).
"""

from __future__ import annotations

import shutil
from datetime import datetime
from pathlib import Path

import duckdb
import pytest
from incremental_builds import dbt_build, query_rows

from ewh.ingest.loader import load_files
from ewh.sample.generator import generate

END = datetime(2026, 6, 30, 12, 0, 0)
D1, D2, D3 = "2026-06-20 00:00:00", "2026-06-24 00:00:00", "2026-06-28 00:00:00"
LOW = "2026-06-22 00:00:00"
D4 = "2026-06-26 00:00:00"
HISTORY = "segments.segment_membership_history"
COLUMNS = "membership_id, user_key, segment, entered_at, exited_at, is_current"
# the history and what it reads; the tests of the segment models (relationships to
# dim_users) are left out with them (cautious: only tests of selected models)
SELECTED = ("--select", "+segment_membership_history", "--indirect-selection", "cautious")


def _build(warehouse: Path, work: Path, as_of: str, *extra: str) -> None:
    dbt_build(warehouse, work, as_of, *SELECTED, *extra)


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("history-as-of-back")
    generate(root / "landing", events=3000, seed=5, days=21, end=END)
    loaded = root / "loaded.duckdb"
    load_files(sorted((root / "landing").glob("*.ndjson")), loaded)
    inc, reference = root / "inc.duckdb", root / "reference.duckdb"
    shutil.copy(loaded, inc)
    shutil.copy(loaded, reference)
    for as_of in (D1, D2, D3):
        _build(inc, root / "inc", as_of)
    shutil.copy(inc, root / "inc-d3.duckdb")
    shutil.copy(inc, root / "full-low.duckdb")
    _build(inc, root / "inc", LOW)
    shutil.copy(inc, root / "inc-low.duckdb")
    _build(inc, root / "inc", D4)
    _build(root / "full-low.duckdb", root / "full", LOW, "--full-refresh")
    for as_of, name in ((D1, None), (LOW, "reference-low"), (D4, None)):
        _build(reference, root / "reference", as_of)
        if name:
            shutil.copy(reference, root / f"{name}.duckdb")
    return {"inc-d3": root / "inc-d3.duckdb", "inc-low": root / "inc-low.duckdb",
            "full-low": root / "full-low.duckdb", "inc-d4": inc,
            "reference-low": root / "reference-low.duckdb", "reference-d4": reference}


def _differences(warehouse: Path, reference: Path) -> tuple[int, int]:
    """(history rows only in `warehouse`, rows only in `reference`)."""
    with duckdb.connect(":memory:") as con:
        con.execute(f"attach '{warehouse}' as a (read_only)")
        con.execute(f"attach '{reference}' as r (read_only)")
        a, r = f"select {COLUMNS} from a.{HISTORY}", f"select {COLUMNS} from r.{HISTORY}"
        only_a = con.execute(f"select count(*) from ({a} except all {r})").fetchone()[0]
        only_r = con.execute(f"select count(*) from ({r} except all {a})").fetchone()[0]
    return only_a, only_r


def test_the_later_builds_recorded_what_moving_back_must_undo(
    warehouses: dict[str, Path],
) -> None:
    """The scenario exercises both undo cases: spells entered after LOW, and spells entered
    before LOW that exited after it."""
    entered_after, exited_after = query_rows(warehouses["inc-d3"], f"""
        select count(*) filter (where entered_at > timestamp '{LOW}'),
               count(*) filter (where entered_at <= timestamp '{LOW}'
                                and exited_at > timestamp '{LOW}')
        from {HISTORY}""")[0]
    assert entered_after > 0 and exited_after > 0


def test_no_spell_begins_or_ends_after_the_lowered_as_of(warehouses: dict[str, Path]) -> None:
    for name in ("inc-low", "full-low"):
        assert query_rows(warehouses[name], f"""
            select count(*) from {HISTORY}
            where entered_at > timestamp '{LOW}' or exited_at > timestamp '{LOW}'
               or exited_at < entered_at""") == [(0,)], name


def test_moving_back_gives_the_history_of_the_sequence_without_the_later_builds(
    warehouses: dict[str, Path],
) -> None:
    assert query_rows(warehouses["reference-low"], f"select count(*) from {HISTORY}")[0][0] > 0
    assert _differences(warehouses["inc-low"], warehouses["reference-low"]) == (0, 0)


def test_the_full_refresh_path_moves_back_the_same_way(warehouses: dict[str, Path]) -> None:
    assert _differences(warehouses["full-low"], warehouses["reference-low"]) == (0, 0)


def test_builds_after_moving_back_continue_as_the_reference(warehouses: dict[str, Path]) -> None:
    """D4 lies inside the undone range: its entries and exits are evaluated afresh."""
    assert query_rows(warehouses["reference-d4"], f"""
        select count(*) from {HISTORY}
        where entered_at = timestamp '{D4}' or exited_at = timestamp '{D4}'""")[0][0] > 0
    assert _differences(warehouses["inc-d4"], warehouses["reference-d4"]) == (0, 0)
