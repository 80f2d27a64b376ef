"""The golden dataset: hand-written events, hand-computed sessions and segment members.

`events.ndjson` is loaded through the real loader
(ewh.ingest.loader.load_files) and built with a real
`dbt build` at a pinned as_of. `expected_sessions.csv` and `expected_segments.json` were worked out
by hand from the events (the "why" entries of the JSON say how); nothing here is copied from output.
"""

from __future__ import annotations

import csv
import hashlib
import json
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt_runner import run_dbt

from ewh.ingest.loader import load_files

HERE = Path(__file__).resolve().parent
EXPECTED_SEGMENTS = json.loads((HERE / "expected_segments.json").read_text())
AS_OF = EXPECTED_SEGMENTS["as_of"]


_dbt = run_dbt  # the real dbt CLI: tests/dbt_runner.py


@pytest.fixture(scope="module")
def golden(tmp_path_factory: pytest.TempPathFactory) -> duckdb.DuckDBPyConnection:
    work_dir = tmp_path_factory.mktemp("golden")
    warehouse = work_dir / "warehouse.duckdb"
    results = load_files([HERE / "events.ndjson"], warehouse)
    assert sum(r.rows_rejected for r in results) == 0
    _dbt(warehouse, work_dir, "build", "--vars", json.dumps({"as_of": AS_OF}))
    con = duckdb.connect(str(warehouse), read_only=True)
    yield con
    con.close()


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[tuple[Any, ...]]:
    return con.sql(sql).fetchall()


def _expected_sessions() -> list[tuple[Any, ...]]:
    rows = []
    with (HERE / "expected_sessions.csv").open() as handle:
        for r in csv.DictReader(handle):
            session_id = hashlib.md5(
                f"{r['device_id']}|{r['first_message_id']}".encode()
            ).hexdigest()
            rows.append((
                session_id, r["user_key"], r["device_id"],
                datetime.fromisoformat(r["started_at"]), datetime.fromisoformat(r["ended_at"]),
                int(r["event_count"]), int(r["page_views"]), r["landing_page"] or None,
                r["is_bounce"] == "true", r["has_add_to_cart"] == "true",
                r["has_purchase"] == "true", float(r["revenue"]),
            ))  # fmt: skip
    return sorted(rows)


def test_golden_sessions_match_the_hand_computed_sessions(
    golden: duckdb.DuckDBPyConnection,
) -> None:
    actual = _rows(
        golden,
        """
        select session_id, user_key, device_id, started_at, ended_at, event_count, page_views,
            landing_page, is_bounce, has_add_to_cart, has_purchase, revenue
        from marts.fct_sessions order by 1""",
    )
    assert actual == _expected_sessions()


@pytest.mark.parametrize("segment", sorted(EXPECTED_SEGMENTS["members"]))
def test_golden_segment_members_match_the_hand_computed_members(
    golden: duckdb.DuckDBPyConnection, segment: str
) -> None:
    members = sorted(r[0] for r in _rows(golden, f"select user_key from segments.{segment}"))
    assert members == sorted(EXPECTED_SEGMENTS["members"][segment]), EXPECTED_SEGMENTS["why"][
        segment
    ]


def test_golden_covers_every_declared_segment(golden: duckdb.DuckDBPyConnection) -> None:
    tables = {
        r[0]
        for r in _rows(
            golden,
            """select table_name from information_schema.tables
            where table_schema = 'segments' and table_name like 'seg\\_%' escape '\\'""",
        )
    }
    assert tables == set(EXPECTED_SEGMENTS["members"])


def test_golden_memberships_are_the_segment_members(golden: duckdb.DuckDBPyConnection) -> None:
    current = set(_rows(golden, "select segment, user_key from segments.segment_memberships"))
    expected = {(s, u) for s, members in EXPECTED_SEGMENTS["members"].items() for u in members}
    assert current == expected


def test_golden_lifecycle_stages(golden: duckdb.DuckDBPyConnection) -> None:
    stages = dict(_rows(golden, "select user_key, lifecycle_stage from marts.dim_users"))
    assert stages == EXPECTED_SEGMENTS["lifecycle_stage"]
    # the replayed history ends in the same stage
    current = dict(
        _rows(
            golden,
            "select user_key, lifecycle_stage from intermediate.int_user_lifecycle_history "
            "where is_current",
        )
    )
    assert current == stages


def test_golden_rfm_scores_and_ties(golden: duckdb.DuckDBPyConnection) -> None:
    scores = {
        r[0]: list(r[1:])
        for r in _rows(
            golden,
            """select user_key, recency_score, frequency_score, monetary_score
            from marts.dim_users where recency_score is not null""",
        )
    }
    assert scores == EXPECTED_SEGMENTS["rfm"]


def test_golden_shared_device_conflict_is_counted_with_its_first_person(
    golden: duckdb.DuckDBPyConnection,
) -> None:
    conflicts = _rows(
        golden,
        """select anonymous_id, user_id, is_resolved_link
        from intermediate.int_identity_conflicts order by 1, 2""",
    )
    assert [list(r) for r in conflicts] == EXPECTED_SEGMENTS["identity_conflicts"]


def test_golden_consent_revoked_and_denied_users_are_in_no_segment(
    golden: duckdb.DuckDBPyConnection,
) -> None:
    assert _rows(
        golden, "select has_analytics_consent from marts.dim_users where user_key = 'u-rev'"
    ) == [(False,)]
    assert _rows(golden, "select count(*) from marts.dim_users where user_key = 'a-denied'") == [
        (0,)
    ]
    assert _rows(
        golden,
        "select count(*) from segments.segment_memberships where user_key in ('u-rev', 'a-denied')",
    ) == [(0,)]


def test_golden_experiment_results(golden: duckdb.DuckDBPyConnection) -> None:
    columns = [
        "exposed_users", "converted_users", "conversion_rate", "lift", "z_score", "p_value",
        "difference_ci_lower", "difference_ci_upper",
    ]  # fmt: skip
    rows = _rows(
        golden,
        f"select variant, {', '.join(columns)} from marts.fct_experiment_results "
        "where experiment_id = 'checkout'",
    )
    actual = {r[0]: dict(zip(columns, r[1:], strict=True)) for r in rows}
    for variant, expected in EXPECTED_SEGMENTS["experiment"].items():
        for column, value in expected.items():
            assert actual[variant][column] == pytest.approx(value, abs=1e-6), (variant, column)
    assert actual["control"]["lift"] is None
