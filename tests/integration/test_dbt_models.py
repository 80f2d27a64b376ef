"""Real `dbt build` runs on a small hand-planted warehouse; outcomes worked out by hand.

One warehouse is built three times with a pinned `as_of` (all raw rows are written up front;
events after as_of are invisible to that build):

- build 1, as_of 2026-11-01 00:00:00
- build 2, as_of 2026-11-02 00:00:00 (the re-entering user's purchase is now visible)
- build 3, as_of 2026-11-04 00:00:00 (their next cart add is now more than 24 h old)
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pytest

from ewh.ingest.raw_tables import ensure_raw_tables

PROJECT_DIR = Path(__file__).resolve().parents[2]
AS_OF_1 = datetime(2026, 11, 1)
AS_OF_2 = datetime(2026, 11, 2)
AS_OF_3 = datetime(2026, 11, 4)
WEB_CONTEXT: dict[str, Any] = {"channel": "web", "device": {"type": "desktop"}}


@dataclass
class RawEvents:
    """Collects raw.events rows; the payload is the Segment message they came from."""

    rows: list[tuple[Any, ...]]

    def add(
        self,
        message_id: str,
        message_type: str,
        at: datetime,
        *,
        event: str | None = None,
        user_id: str | None = None,
        anonymous_id: str | None = None,
        properties: dict[str, Any] | None = None,
        context: dict[str, Any] | None = None,
        clock_skew: timedelta = timedelta(0),
        **extra: Any,
    ) -> None:
        """One message that truly happened at `at`; the client clock runs `clock_skew` fast."""
        client_at = at + clock_skew
        sent_at = client_at + timedelta(seconds=2)
        received_at = at + timedelta(seconds=2)
        message: dict[str, Any] = {
            "messageId": message_id,
            "type": message_type,
            "timestamp": client_at.isoformat() + "Z",
            "sentAt": sent_at.isoformat() + "Z",
            "receivedAt": received_at.isoformat() + "Z",
            "context": context if context is not None else WEB_CONTEXT,
            **extra,
        }
        if event is not None:
            message["event"] = event
        if user_id is not None:
            message["userId"] = user_id
        if anonymous_id is not None:
            message["anonymousId"] = anonymous_id
        if properties is not None:
            message["properties"] = properties
        self.rows.append(
            (
                message_id,
                message_type,
                event,
                user_id,
                anonymous_id,
                client_at,
                sent_at,
                received_at,
                json.dumps(message),
                f"test:{message_id}",
                None,
                "test-load",
                received_at + timedelta(minutes=1),
            )
        )


def planted_events() -> RawEvents:
    raw = RawEvents(rows=[])
    day = datetime(2026, 10, 30)

    # Abandoner: browses anonymously, adds to cart 24 h + 1 s before as_of 1, identifies
    # later. Buys at 2026-11-01 12:00 (exit at build 2), adds again 2026-11-02 06:00
    # (re-entry at build 3, 46 h later).
    raw.add(
        "ab-1",
        "page",
        day + timedelta(hours=23, minutes=50),
        anonymous_id="a-ab",
        properties={"path": "/shoes", "referrer": "https://search.example"},
    )
    raw.add(
        "ab-2",
        "track",
        datetime(2026, 10, 30, 23, 59, 59),
        event="Product Added",
        anonymous_id="a-ab",
        properties={"product_id": "p-1", "price": 80.0},
    )
    raw.add(
        "ab-3",
        "identify",
        datetime(2026, 10, 31, 9, 0),
        anonymous_id="a-ab",
        user_id="u-abandon",
        traits={"email": "abandon@example.com"},
    )
    raw.add(
        "ab-4",
        "track",
        datetime(2026, 11, 1, 12, 0),
        event="Order Completed",
        user_id="u-abandon",
        anonymous_id="a-ab",
        properties={"order_id": "o-ab", "revenue": 80.0},
    )
    raw.add(
        "ab-5",
        "track",
        datetime(2026, 11, 2, 6, 0),
        event="Product Added",
        user_id="u-abandon",
        anonymous_id="a-ab",
        properties={"product_id": "p-2", "price": 15.0},
    )

    # Cart add exactly 24 h before as_of 1: no longer in the last 24 h, so abandoned (the one
    # window rule: "in the last N" excludes something exactly N old).
    raw.add(
        "miss-1",
        "track",
        datetime(2026, 10, 31, 0, 0, 0),
        event="Product Added",
        user_id="u-miss",
        anonymous_id="a-miss",
        properties={"product_id": "p-3", "price": 9.0},
    )

    # Buys 5 minutes after adding to cart: never abandoned.
    raw.add(
        "buy-1",
        "track",
        datetime(2026, 10, 29, 10, 0),
        event="Product Added",
        user_id="u-buyer",
        anonymous_id="a-buy",
        properties={"product_id": "p-4", "price": 600.0},
    )
    raw.add(
        "buy-2",
        "track",
        datetime(2026, 10, 29, 10, 5),
        event="Order Completed",
        user_id="u-buyer",
        anonymous_id="a-buy",
        properties={"order_id": "o-buy", "revenue": 600.0},
    )

    # Adds to cart with consent, later revokes analytics consent: in no segment.
    raw.add(
        "rev-1",
        "track",
        datetime(2026, 10, 28, 10, 0),
        event="Product Added",
        user_id="u-revoke",
        anonymous_id="a-rev",
        properties={"product_id": "p-5", "price": 5.0},
        context={**WEB_CONTEXT, "consent": {"categoryPreferences": {"Analytics": True}}},
    )
    raw.add(
        "rev-2",
        "track",
        datetime(2026, 10, 29, 10, 0),
        event="Consent Updated",
        user_id="u-revoke",
        anonymous_id="a-rev",
        context={**WEB_CONTEXT, "consent": {"categoryPreferences": {"ANALYTICS": False}}},
    )

    # Client clock 2 h fast: the raw timestamp (2026-10-31 01:00) is under 24 h old, the
    # skew-corrected time (2026-10-30 23:00) is 25 h old, so the user is an abandoner.
    raw.add(
        "skew-1",
        "track",
        datetime(2026, 10, 30, 23, 0),
        event="Product Added",
        user_id="u-skew",
        anonymous_id="a-skew",
        properties={"product_id": "p-6", "price": 1.0},
        clock_skew=timedelta(hours=2),
    )

    # Sessions on device a-sess: gaps 1800 s (same), 1801 s (new), 12 h 49 min (new),
    # 20 min across midnight (same) -> 3 sessions. The server-side email is not a visit.
    t = datetime(2026, 10, 20, 10, 0, 0)
    for message_id, at in [
        ("s-1", t),
        ("s-2", t + timedelta(seconds=1800)),
        ("s-3", t + timedelta(seconds=3601)),
        ("s-4", datetime(2026, 10, 20, 23, 50)),
        ("s-5", datetime(2026, 10, 21, 0, 10)),
    ]:
        raw.add(
            message_id,
            "page",
            at,
            anonymous_id="a-sess",
            user_id="u-sess",
            properties={"path": f"/{message_id}"},
        )
    raw.add(
        "s-mail",
        "track",
        datetime(2026, 10, 20, 12, 0),
        event="Email Delivered",
        user_id="u-sess",
        context={"channel": "server"},
        properties={"campaign_id": "c-1"},
    )
    return raw


def write_raw(warehouse: Path, raw: RawEvents) -> None:
    con = duckdb.connect(str(warehouse))
    try:
        ensure_raw_tables(con)
        con.executemany(
            "insert into raw.events values (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", raw.rows
        )
    finally:
        con.close()


def dbt_executable() -> str:
    local = Path(sys.executable).with_name("dbt")
    return str(local) if local.exists() else (shutil.which("dbt") or "dbt")


def dbt_build(warehouse: Path, work_dir: Path, as_of: datetime, *, unit_tests: bool = True) -> None:
    """A real `dbt build`; unit tests (independent of the data) can be left to the first one."""
    env = {**os.environ, "EWH_WAREHOUSE": str(warehouse), "EWH_DBT_TARGET": "duckdb"}
    command = [
        dbt_executable(),
        "build",
        "--project-dir",
        str(PROJECT_DIR),
        "--profiles-dir",
        str(PROJECT_DIR),
        "--target-path",
        str(work_dir / "target"),
        "--log-path",
        str(work_dir / "logs"),
        "--vars",
        json.dumps({"as_of": as_of.strftime("%Y-%m-%d %H:%M:%S")}),
        *([] if unit_tests else ["--exclude", "test_type:unit"]),
    ]
    result = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"dbt build failed at as_of {as_of}:\n{result.stdout[-6000:]}"


def query(warehouse: Path, sql: str) -> list[tuple[Any, ...]]:
    con = duckdb.connect(str(warehouse), read_only=True)
    try:
        return con.sql(sql).fetchall()
    finally:
        con.close()


@dataclass
class Snapshot:
    """What the tables held right after one build."""

    cart_abandoners: dict[str, tuple[Any, ...]]
    high_value: set[str]
    memberships: set[tuple[str, str]]
    dim_users: dict[str, tuple[Any, ...]]


def snapshot(warehouse: Path) -> Snapshot:
    abandoners = query(
        warehouse,
        """
        select user_key, user_id, last_cart_add_at, hours_since_cart_add,
            cart_product_id, cart_value
        from segments.seg_cart_abandoners""",
    )
    high_value = query(warehouse, "select user_key from segments.seg_high_value_customers")
    memberships = query(warehouse, "select user_key, segment from segments.segment_memberships")
    users = query(
        warehouse,
        """
        select user_key, user_id, has_analytics_consent, sessions, last_cart_add_at
        from marts.dim_users""",
    )
    return Snapshot(
        cart_abandoners={row[0]: row for row in abandoners},
        high_value={row[0] for row in high_value},
        memberships=set(memberships),
        dim_users={row[0]: row for row in users},
    )


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    work_dir = tmp_path_factory.mktemp("dbt_models")
    warehouse = work_dir / "warehouse.duckdb"
    write_raw(warehouse, planted_events())
    snapshots = {}
    for as_of in (AS_OF_1, AS_OF_2, AS_OF_3):
        dbt_build(warehouse, work_dir, as_of, unit_tests=as_of == AS_OF_1)
        snapshots[as_of] = snapshot(warehouse)
    return {"warehouse": warehouse, "snapshots": snapshots}


def test_cart_add_24_hours_and_1_second_before_as_of_is_abandoned(built: dict[str, Any]) -> None:
    members = built["snapshots"][AS_OF_1].cart_abandoners
    assert "u-abandon" in members
    user_key, user_id, last_cart_add_at, hours, product_id, value = members["u-abandon"]
    assert user_id == "u-abandon"
    assert last_cart_add_at == datetime(2026, 10, 30, 23, 59, 59)
    assert hours == pytest.approx(24 + 1 / 3600)
    assert (product_id, value) == ("p-1", 80.0)


def test_cart_add_exactly_24_hours_before_as_of_is_abandoned(built: dict[str, Any]) -> None:
    members = built["snapshots"][AS_OF_1].cart_abandoners
    assert "u-miss" in members
    assert members["u-miss"][3] == pytest.approx(24.0)
    assert "u-miss" in built["snapshots"][AS_OF_2].cart_abandoners


def test_purchase_after_cart_add_keeps_user_out_of_cart_abandoners(built: dict[str, Any]) -> None:
    snap = built["snapshots"][AS_OF_1]
    assert "u-buyer" not in snap.cart_abandoners
    assert "u-buyer" in snap.high_value


def test_consent_revocation_removes_user_from_segments(built: dict[str, Any]) -> None:
    snap = built["snapshots"][AS_OF_1]
    assert snap.dim_users["u-revoke"][2] is False
    assert "u-revoke" not in snap.cart_abandoners
    assert not {m for m in snap.memberships if m[0] == "u-revoke"}


def test_skew_corrected_time_decides_abandonment(built: dict[str, Any]) -> None:
    members = built["snapshots"][AS_OF_1].cart_abandoners
    assert members["u-skew"][2] == datetime(2026, 10, 30, 23, 0)
    assert members["u-skew"][3] == pytest.approx(25.0)


def test_anonymous_events_before_identify_are_stitched_to_the_user(built: dict[str, Any]) -> None:
    rows = query(
        built["warehouse"],
        """
        select user_key, landing_page, referrer from marts.fct_sessions
        where device_id = 'a-ab' and started_at = timestamp '2026-10-30 23:50:00'""",
    )
    assert rows == [("u-abandon", "/shoes", "https://search.example")]


def test_planted_device_has_three_sessions_one_across_midnight(built: dict[str, Any]) -> None:
    rows = query(
        built["warehouse"],
        """
        select started_at, ended_at, event_count, duration_seconds
        from marts.fct_sessions where user_key = 'u-sess' order by started_at""",
    )
    assert rows == [
        (datetime(2026, 10, 20, 10, 0), datetime(2026, 10, 20, 10, 30), 2, 1800.0),
        (datetime(2026, 10, 20, 11, 0, 1), datetime(2026, 10, 20, 11, 0, 1), 1, 0.0),
        (datetime(2026, 10, 20, 23, 50), datetime(2026, 10, 21, 0, 10), 2, 1200.0),
    ]
    assert built["snapshots"][AS_OF_1].dim_users["u-sess"][3] == 3


def test_session_ids_are_stable_across_rebuilds(built: dict[str, Any]) -> None:
    rows = query(
        built["warehouse"],
        """
        select session_id from marts.fct_sessions where user_key = 'u-sess' order by started_at""",
    )
    expected = [hashlib.md5(f"a-sess|{m}".encode()).hexdigest() for m in ("s-1", "s-3", "s-4")]
    assert [r[0] for r in rows] == expected


def test_exit_and_reentry_are_two_history_rows(built: dict[str, Any]) -> None:
    snaps = built["snapshots"]
    assert ("u-abandon", "seg_cart_abandoners") in snaps[AS_OF_1].memberships
    assert ("u-abandon", "seg_cart_abandoners") not in snaps[AS_OF_2].memberships
    assert ("u-abandon", "seg_cart_abandoners") in snaps[AS_OF_3].memberships
    history = query(
        built["warehouse"],
        """
        select entered_at, exited_at, is_current from segments.segment_membership_history
        where user_key = 'u-abandon' and segment = 'seg_cart_abandoners' order by entered_at""",
    )
    assert history == [(AS_OF_1, AS_OF_2, False), (AS_OF_3, None, True)]
    current = query(
        built["warehouse"],
        """
        select entered_at from segments.segment_memberships
        where user_key = 'u-abandon' and segment = 'seg_cart_abandoners'""",
    )
    assert current == [(AS_OF_3,)]


def test_memberships_cover_every_segment_and_only_consenting_users(built: dict[str, Any]) -> None:
    warehouse = built["warehouse"]
    for (table,) in query(
        warehouse,
        """
            select table_name from information_schema.tables
            where table_schema = 'segments' and table_name like 'seg\\_%' escape '\\'""",
    ):
        members = set(query(warehouse, f"select user_key, '{table}' from segments.{table}"))
        current = {m for m in built["snapshots"][AS_OF_3].memberships if m[1] == table}
        assert members == current, table
    revoked = query(
        warehouse,
        """
        select count(*) from segments.segment_memberships as m
        join marts.dim_users as u on m.user_key = u.user_key
        where not u.has_analytics_consent""",
    )
    assert revoked == [(0,)]
