"""The email rules on a real dbt build of hand-made events, incremental and full.

usr-1 got email e1 of campaign spring (Email Delivered with email_id e1) on 2026-07-01 10:00
and opened it an hour later; the open carries only email_id (no campaign). A day later usr-1
opened spring again without email_id (it falls back to the campaign's send, e1). On
2026-07-03 usr-1 clicked an email of campaign summer with neither a delivery nor an open
event: a click implies an open, and an opened email was delivered. usr-2 got e2 of spring and
never opened it; an open naming neither email_id nor campaign_id is no email.

Warehouse A builds incrementally at as_of 2026-09-28 10:00 (89 days after the first open)
and again at 2026-09-29 11:00, when e1's opens are 90 days and 89 days old: e1's latest open
(the fallback one, 2026-07-02 11:00) is 89 days old, still inside. At 2026-09-30 11:00 it is
exactly 90 days old: outside (the window excludes something exactly N old). Warehouse B
builds the last as_of as a full refresh; int_user_email_fatigue must be equal.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt_runner import run_dbt, warehouse_in

from ewh.ingest.raw_tables import ensure_raw_tables

DAY = timedelta(days=1)
AS_OFS = ["2026-09-28 10:00:00", "2026-09-29 11:00:00", "2026-09-30 11:00:00"]
# the two models and their parents, with the data tests whose parents are all selected
SELECT = [
    "--select", "+int_user_email_fatigue", "+fct_campaign_engagement",
    "--indirect-selection", "cautious",
]  # fmt: skip
FATIGUE = (
    "select user_key, emails_delivered, emails_opened, emails_clicked, emails_opened_open_window,"
    " recent_deliveries, recent_deliveries_opened from intermediate.int_user_email_fatigue"
)


def _rows() -> list[tuple[Any, ...]]:
    rows = []
    events = [
        ("d1", "usr-1", "Email Delivered", "2026-07-01 10:00:00",
         {"email_id": "e1", "campaign_id": "spring", "campaign_name": "Spring"}),
        ("o1", "usr-1", "Email Opened", "2026-07-01 11:00:00", {"email_id": "e1"}),
        ("o2", "usr-1", "Email Opened", "2026-07-02 11:00:00", {"campaign_id": "spring"}),
        ("k1", "usr-1", "Email Link Clicked", "2026-07-03 11:00:00", {"campaign_id": "summer"}),
        ("d2", "usr-2", "Email Delivered", "2026-07-01 10:00:00",
         {"email_id": "e2", "campaign_id": "spring", "campaign_name": "Spring"}),
        ("o3", "usr-2", "Email Opened", "2026-07-01 12:00:00", {}),
    ]  # fmt: skip
    for message_id, user_id, event, at_text, properties in events:
        at = datetime.fromisoformat(at_text)
        stamp = at.isoformat() + "Z"
        message = {
            "messageId": message_id, "type": "track", "event": event, "userId": user_id,
            "timestamp": stamp, "receivedAt": stamp, "channel": "server",
            "context": {"library": {"name": "email-service"}}, "properties": properties,
        }  # fmt: skip
        rows.append((
            message_id, "track", event, user_id, None, at, None, at, json.dumps(message),
            f"test:{message_id}", None, "test-load", at + timedelta(minutes=1),
        ))  # fmt: skip
    return rows


def _warehouse(path: Path) -> Path:
    con = duckdb.connect(str(path))
    try:
        ensure_raw_tables(con)
        con.executemany(
            "insert into raw.events values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", _rows()
        )
    finally:
        con.close()
    return path


def _build(warehouse: Path, work_dir: Path, as_of: str, *extra: str) -> None:
    run_dbt(
        warehouse, work_dir, "build", *SELECT, "--exclude", "test_type:unit",
        "--vars", json.dumps({"as_of": as_of}), *extra,
    )  # fmt: skip


def _query(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        return sorted(con.sql(sql).fetchall())


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work = tmp_path_factory.mktemp("email_rules")
    # one file name, two folders: the full build reuses dbt's parse of the last incremental one
    inc = _warehouse(warehouse_in(work / "inc"))
    fatigue = {}
    for as_of in AS_OFS:
        _build(inc, work / "inc", as_of)
        fatigue[as_of] = _query(inc, FATIGUE)
    full = _warehouse(warehouse_in(work / "full"))
    _build(full, work / "full", AS_OFS[-1], "--full-refresh")
    return {"inc": inc, "full": full, "fatigue": fatigue}


def test_emails_are_identified_by_email_id_then_campaign_and_a_click_is_an_open(
    built: dict[str, Any],
) -> None:
    emails = _query(
        built["inc"],
        "select user_key, email_key, campaign_id, has_delivery_event, first_opened_at,"
        " last_opened_at, click_events from intermediate.int_user_emails",
    )
    jul = datetime(2026, 7, 1, 11)
    assert emails == [
        ("usr-1", "campaign:summer", "summer", False, jul + 2 * DAY, jul + 2 * DAY, 1),
        ("usr-1", "email_id:e1", "spring", True, jul, jul + DAY, 0),
        ("usr-2", "email_id:e2", "spring", True, None, None, 0),
    ]


def test_open_window_moves_with_as_of_and_excludes_exactly_90_days(built: dict[str, Any]) -> None:
    fatigue = built["fatigue"]
    # (user, delivered, opened, clicked, opened in the window, recent deliveries, of them opened)
    assert fatigue[AS_OFS[0]] == [("usr-1", 2, 2, 1, 2, 2, 2), ("usr-2", 1, 0, 0, 0, 1, 0)]
    assert fatigue[AS_OFS[1]] == [("usr-1", 2, 2, 1, 2, 2, 2), ("usr-2", 1, 0, 0, 0, 1, 0)]
    assert fatigue[AS_OFS[2]] == [("usr-1", 2, 2, 1, 1, 2, 2), ("usr-2", 1, 0, 0, 0, 1, 0)]


def test_incremental_email_features_equal_a_full_refresh(built: dict[str, Any]) -> None:
    assert _query(built["inc"], FATIGUE) == _query(built["full"], FATIGUE)


def test_campaign_click_to_open_rate_never_exceeds_1(built: dict[str, Any]) -> None:
    campaigns = _query(
        built["full"],
        "select campaign_id, delivered, unique_opens, unique_clicks, click_to_open_rate"
        " from marts.fct_campaign_engagement where channel = 'email'",
    )
    assert campaigns == [("spring", 2, 1, 0, 0.0), ("summer", 1, 1, 1, 1.0)]
