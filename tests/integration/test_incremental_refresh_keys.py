"""Refresh by changed keys: the per-user and per-device models find every key that changed.

Hand-made events in two arrival batches, built incrementally in warehouse A and as one full
refresh in warehouse B, at the same as_of. Batch 2 holds late events whose effect reaches
keys that none of the new events carries:
- a page view by usr_one at 10:10 on a device shared with usr_two, between usr_two's page
  views at 10:00 and 10:20: another person on the device starts a session, so usr_two's event
  at 10:20 becomes a visit start (int_user_send_time must refresh usr_two through the
  re-sessionized device);
- an identify of the shared device a-shared-2 by usr_four at 12:07, between usr_three's
  identify (12:00) and the device's anonymous page views at 12:05 and 12:10: events belong to
  the person who last identified before them, so the page view at 12:10 moves from usr_three
  to usr_four (int_user_activity must refresh usr_three, the former key);
- identity: an alias usr_six -> usr_five (two existing users, no anonymousId) merges them
  retroactively: usr_six's events and device move to the person usr_five and the key usr_six
  disappears from every table.
The incremental tables must equal the full refresh, EXCEPT ALL both ways.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt_runner import warehouse_in
from incremental_builds import dbt_build, query_rows, write_messages

from ewh.ingest.loader import load_files

AS_OF = "2026-10-02 00:00:00"
COMPARED = [
    "intermediate.int_events_stitched",
    "intermediate.int_sessionized_events",
    "intermediate.int_identity_map",
    "intermediate.int_user_send_time",
    "intermediate.int_user_activity",
    "intermediate.int_user_consent",
    "intermediate.int_identity_links",
    "marts.fct_sessions",
    "marts.dim_users",
]


def _message(message_id: str, kind: str, at: str, anonymous_id: str,
             user_id: str | None = None) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": kind, "messageId": message_id, "anonymousId": anonymous_id,
        "context": {"channel": "browser", "device": {"type": "desktop"}},
        "timestamp": f"2026-10-01T{at}:00.000Z", "sentAt": f"2026-10-01T{at}:00.000Z",
        "receivedAt": f"2026-10-01T{at}:00.000Z",
    }
    if user_id:
        message["userId"] = user_id
    if kind == "page":
        message["properties"] = {"path": "/home"}
    return message


def _alias(message_id: str, at: str, previous_id: str, user_id: str) -> dict[str, Any]:
    """A server-side alias between two userIds (no anonymousId)."""
    return {
        "type": "alias", "messageId": message_id, "previousId": previous_id, "userId": user_id,
        "context": {"channel": "server"},
        "timestamp": f"2026-10-01T{at}:00.000Z", "sentAt": f"2026-10-01T{at}:00.000Z",
        "receivedAt": f"2026-10-01T{at}:00.000Z",
    }


BATCH_1 = [
    _message("s-1", "page", "10:00", "a-shared-1", "usr_two"),
    _message("s-2", "page", "10:20", "a-shared-1", "usr_two"),
    _message("s-3", "identify", "12:00", "a-shared-2", "usr_three"),
    _message("s-4", "page", "12:05", "a-shared-2"),
    _message("s-5", "page", "12:10", "a-shared-2"),
    # identity: two users, later merged by an alias
    _message("m-1", "identify", "13:00", "a-five", "usr_five"),
    _message("m-2", "page", "13:01", "a-five"),
    _message("m-3", "identify", "14:00", "a-six", "usr_six"),
    _message("m-4", "page", "14:01", "a-six"),
]
BATCH_2 = [
    _message("s-6", "page", "10:10", "a-shared-1", "usr_one"),
    _message("s-7", "identify", "12:07", "a-shared-2", "usr_four"),
    _alias("m-5", "15:00", "usr_six", "usr_five"),
]


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("refresh-keys")
    first = write_messages(root, "batch-1.ndjson", BATCH_1)
    second = write_messages(root, "batch-2.ndjson", BATCH_2)
    # one file name, two folders: the full build reuses dbt's parse of the incremental one
    incremental, full = warehouse_in(root / "inc"), warehouse_in(root / "full")
    load_files([first], incremental)
    dbt_build(incremental, root / "inc", AS_OF)
    load_files([second], incremental)
    dbt_build(incremental, root / "inc", AS_OF)
    load_files([first, second], full)
    dbt_build(full, root / "full", AS_OF, "--full-refresh")
    return {"incremental": incremental, "full": full}


def test_the_late_events_changed_keys_they_do_not_carry(warehouses: dict[str, Path]) -> None:
    full = warehouses["full"]
    # usr_two's page view at 10:20 now starts a session (usr_one's came in between)
    assert query_rows(full, "select message_id from intermediate.int_sessionized_events "
                            "where user_key = 'usr_two' and is_session_start order by 1") == [
        ("s-1",), ("s-2",)]
    # a-shared-2: usr_three keeps its identify and the page view at 12:05; usr_four gets its
    # identify and the page view at 12:10
    assert query_rows(full, "select user_key, events from intermediate.int_user_activity "
                            "where user_key in ('usr_three', 'usr_four') order by 1") == [
        ("usr_four", 2), ("usr_three", 2)]


def test_a_late_alias_merges_two_existing_users_retroactively(
    warehouses: dict[str, Path],
) -> None:
    for warehouse in warehouses.values():
        # one person, keyed by the smaller userId; usr_six is gone everywhere
        assert query_rows(warehouse, "select message_id, user_key "
                                     "from intermediate.int_events_stitched "
                                     "where message_id like 'm-%' order by 1") == [
            ("m-1", "usr_five"), ("m-2", "usr_five"), ("m-3", "usr_five"), ("m-4", "usr_five"),
            ("m-5", "usr_five")]
        assert query_rows(warehouse, "select user_key, sessions, devices from marts.dim_users "
                                     "where user_key in ('usr_five', 'usr_six')") == [
            ("usr_five", 2, 2)]


@pytest.mark.parametrize("table", COMPARED)
def test_incremental_table_equals_the_full_refresh(warehouses: dict[str, Path],
                                                   table: str) -> None:
    with duckdb.connect(":memory:") as con:
        con.execute(f"attach '{warehouses['incremental']}' as inc (read_only)")
        con.execute(f"attach '{warehouses['full']}' as full_db (read_only)")
        columns = ", ".join(
            f'"{name}"' for (name,) in con.execute(
                "select column_name from information_schema.columns where table_catalog = 'inc'"
                " and table_schema = ? and table_name = ? and column_name not in"
                " ('loaded_at', 'load_id', 'stitched_at') order by ordinal_position",
                table.split("."),
            ).fetchall()
        )
        a, b = f"inc.{table}", f"full_db.{table}"
        only_inc = con.execute(f"select count(*) from (select {columns} from {a} "
                               f"except all select {columns} from {b})").fetchone()[0]
        only_full = con.execute(f"select count(*) from (select {columns} from {b} "
                                f"except all select {columns} from {a})").fetchone()[0]
    assert (only_inc, only_full) == (0, 0), f"{table}: {only_inc} rows only incremental, " \
                                            f"{only_full} only in the full refresh"
