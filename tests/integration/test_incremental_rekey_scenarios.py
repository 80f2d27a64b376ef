"""int_events_stitched keys again only the earlier rows its new events can re-key (rekey_ids):
hand-made identity cases whose new events reach earlier rows only through the identity map.

Warehouse A loads two arrival batches and builds incrementally: batch 1 at T1, batch 2 at T2,
then (no new load) at T3, which reveals an event of batch 2 that occurred after T2, then at
T_LOW, an as_of moved back (the event models' pre-hook removes the rows after it; the segment
membership history undoes what the later builds recorded, and its data tests gate the build).
Warehouse B loads both batches and runs full refreshes at T3 and T_LOW. A copy of each file is
taken at T3, so both points are compared: int_events_stitched (every column but the load and stitch
times), int_sessionized_events, int_identity_map and every marts table, EXCEPT ALL both ways.

The cases (ids carry the case's prefix; worked out by hand below):
- ch: an alias chain over two batches, ch_a -> ch_b (ch_a only a previousId), then
  ch_c -> ch_a: ch_a becomes a message userId, so the person's key moves from ch_b to ch_a;
  the new events carry neither ch_b nor the device a-ch1 of the earlier rows;
- pv: pv_a only an alias previousId in batch 1, a message userId in batch 2 (after T_LOW);
- sh: a late identify (sh_three) inside a shared device's period of sh_one;
- sm: a shared device whose two persons a later alias merges (one person again: every
  anonymous event's user_id becomes the device's first linked user);
- li: a late identify that occurred before the device's earlier anonymous events;
- ns: a never-identified anonymous id 'ns_user' that batch 2 (after T_LOW) makes a userId too:
  its anonymous events are keyed 'anonymous:ns_user' from then on;
- rv: an identify that occurred after T2, revealed at T3 without any new load;
- cd: a consent-denied identify (not stitched, yet a link) that identifies earlier events;
- om: a merge of the old person om_z, whose devices' events carry no user id, into om_a;
- kc: a shared device's second person changes key (kc_c, an alias previousId, becomes a
  message userId) while nothing new happens on the device;
- lw: an alias after T_LOW merging lw_b into lw_a.
At T_LOW the events after it (pv's and ns's userId events, rv's identify, lw's alias) are
gone again: a full refresh keys the earlier rows as before them.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import duckdb
import pytest
from dbt_runner import warehouse_in
from incremental_builds import dbt_build, query_rows, write_messages

from ewh.ingest.loader import load_files

T1, T2, T3 = "2026-10-02 00:00:00", "2026-10-03 00:00:00", "2026-10-04 00:00:00"
T_LOW = "2026-10-02 12:00:00"
COMPARED_INTERMEDIATE = [
    "intermediate.int_events_stitched",
    "intermediate.int_sessionized_events",
    "intermediate.int_identity_map",
]
IGNORED_COLUMNS = ("loaded_at", "load_id", "stitched_at")


def _event(message_id: str, kind: str, at: str, anonymous_id: str | None = None,
           user_id: str | None = None, *, received: str | None = None,
           previous_id: str | None = None, analytics: bool | None = None) -> dict[str, Any]:
    """A message that occurred at `at` (2026-MM-DDTHH:MM) and was sent and received at
    `received` (default: at once)."""
    sent = f"{received or at}:00.000Z"
    context: dict[str, Any] = {"channel": "server"} if kind == "alias" else {
        "channel": "browser", "device": {"type": "desktop"}}
    if analytics is not None:
        context["consent"] = {"categoryPreferences": {"analytics": analytics}}
    message: dict[str, Any] = {"type": kind, "messageId": message_id, "context": context,
                               "timestamp": f"{at}:00.000Z", "sentAt": sent, "receivedAt": sent}
    for field, value in (("anonymousId", anonymous_id), ("userId", user_id),
                         ("previousId", previous_id)):
        if value is not None:
            message[field] = value
    if kind == "page":
        message["properties"] = {"path": "/home"}
    return message


D1, D2, D3 = "2026-10-01T", "2026-10-02T", "2026-10-03T"
BATCH_1 = [
    _event("ch-1", "identify", D1 + "08:00", "a-ch1", "ch_b"),
    _event("ch-2", "page", D1 + "08:05", "a-ch1"),
    _event("ch-3", "alias", D1 + "08:10", user_id="ch_b", previous_id="ch_a"),
    _event("pv-1", "identify", D1 + "09:00", "a-pv1", "pv_b"),
    _event("pv-2", "page", D1 + "09:01", "a-pv1"),
    _event("pv-3", "alias", D1 + "09:02", user_id="pv_b", previous_id="pv_a"),
    _event("sh-1", "identify", D1 + "10:00", "a-sh", "sh_one"),
    _event("sh-2", "page", D1 + "10:05", "a-sh"),
    _event("sh-3", "page", D1 + "10:30", "a-sh"),
    _event("sh-4", "identify", D1 + "11:00", "a-sh", "sh_two"),
    _event("sh-5", "page", D1 + "11:05", "a-sh"),
    _event("sm-1", "identify", D1 + "12:00", "a-sm", "sm_q"),
    _event("sm-2", "page", D1 + "12:01", "a-sm"),
    _event("sm-3", "identify", D1 + "12:10", "a-sm", "sm_p"),
    _event("sm-4", "page", D1 + "12:11", "a-sm"),
    _event("li-1", "page", D1 + "14:00", "a-li"),
    _event("li-2", "page", D1 + "14:10", "a-li"),
    _event("li-3", "identify", D1 + "14:20", "a-li", "li_u"),
    _event("li-4", "page", D1 + "14:30", "a-li"),
    _event("ns-1", "page", D1 + "15:00", "ns_user"),
    _event("ns-2", "page", D1 + "15:05", "ns_user"),
    _event("rv-1", "page", D1 + "16:00", "a-rv"),
    _event("rv-2", "page", D1 + "16:05", "a-rv"),
    _event("cd-1", "page", D1 + "17:00", "a-cd"),
    _event("cd-2", "page", D1 + "17:05", "a-cd"),
    _event("om-1", "identify", D1 + "18:00", "a-om1", "om_z"),
    _event("om-2", "page", D1 + "18:01", "a-om1"),
    _event("om-3", "page", D1 + "18:02", "a-om1"),
    _event("om-4", "identify", D1 + "18:10", "a-om2", "om_z"),
    _event("om-5", "page", D1 + "18:11", "a-om2"),
    _event("om-6", "identify", D1 + "18:20", "a-on1", "om_a"),
    _event("om-7", "page", D1 + "18:21", "a-on1"),
    _event("kc-1", "identify", D1 + "20:00", "a-kc", "kc_m"),
    _event("kc-2", "page", D1 + "20:01", "a-kc"),
    _event("kc-3", "identify", D1 + "20:10", "a-kc", "kc_n"),
    _event("kc-4", "page", D1 + "20:11", "a-kc"),
    _event("kc-5", "alias", D1 + "20:20", user_id="kc_n", previous_id="kc_c"),
    _event("lw-1", "identify", D1 + "19:00", "a-lw1", "lw_b"),
    _event("lw-2", "page", D1 + "19:01", "a-lw1"),
    _event("lw-3", "identify", D1 + "19:10", "a-lw2", "lw_a"),
    _event("lw-4", "page", D1 + "19:11", "a-lw2"),
]
BATCH_2 = [
    _event("ch-4", "alias", D2 + "08:00", user_id="ch_a", previous_id="ch_c"),
    _event("ch-5", "page", D2 + "08:05", "a-ch2", "ch_c"),
    _event("ch-6", "page", D2 + "08:06", "a-ch2"),
    _event("pv-4", "page", D2 + "13:00", "a-pv2", "pv_a"),
    # late: occurred on day 1, received on day 2
    _event("sh-6", "identify", D1 + "10:20", "a-sh", "sh_three", received=D2 + "09:00"),
    _event("sm-5", "alias", D2 + "09:00", user_id="sm_p", previous_id="sm_q"),
    _event("li-5", "identify", D1 + "14:05", "a-li", "li_v", received=D2 + "09:00"),
    _event("ns-3", "page", D2 + "14:00", "a-ns2", "ns_user"),
    # occurred after T2: revealed by the build at T3
    _event("rv-3", "identify", D3 + "10:00", "a-rv", "rv_u"),
    _event("cd-3", "identify", D2 + "10:00", "a-cd", "cd_u", analytics=False),
    _event("om-8", "alias", D2 + "10:00", user_id="om_a", previous_id="om_z"),
    _event("kc-6", "page", D2 + "09:00", "a-kc2", "kc_c"),
    _event("lw-5", "alias", D2 + "14:00", user_id="lw_a", previous_id="lw_b"),
]

# (message_id, user_key, user_id) of every event, worked out by hand from the stitching rules
AT_T3 = {
    "ch-1": ("ch_a", "ch_b"), "ch-2": ("ch_a", "ch_b"), "ch-3": ("ch_a", "ch_b"),
    "ch-4": ("ch_a", "ch_a"), "ch-5": ("ch_a", "ch_c"), "ch-6": ("ch_a", "ch_c"),
    "pv-1": ("pv_a", "pv_b"), "pv-2": ("pv_a", "pv_b"), "pv-3": ("pv_a", "pv_b"),
    "pv-4": ("pv_a", "pv_a"),
    # periods of a-sh: sh_one until 10:20, sh_three until 11:00, then sh_two
    "sh-1": ("sh_one", "sh_one"), "sh-2": ("sh_one", "sh_one"),
    "sh-3": ("sh_three", "sh_three"), "sh-4": ("sh_two", "sh_two"),
    "sh-5": ("sh_two", "sh_two"), "sh-6": ("sh_three", "sh_three"),
    # one person again: the whole device is sm_p's, its user_id the first link's (sm_q)
    "sm-1": ("sm_p", "sm_q"), "sm-2": ("sm_p", "sm_q"), "sm-3": ("sm_p", "sm_p"),
    "sm-4": ("sm_p", "sm_q"), "sm-5": ("sm_p", "sm_p"),
    # li_v identified first (14:05): its period holds the events before it
    "li-1": ("li_v", "li_v"), "li-2": ("li_v", "li_v"), "li-3": ("li_u", "li_u"),
    "li-4": ("li_u", "li_u"), "li-5": ("li_v", "li_v"),
    "ns-1": ("anonymous:ns_user", None), "ns-2": ("anonymous:ns_user", None),
    "ns-3": ("ns_user", "ns_user"),
    "rv-1": ("rv_u", "rv_u"), "rv-2": ("rv_u", "rv_u"), "rv-3": ("rv_u", "rv_u"),
    # cd-3 denies analytics: not stitched, but it links the device
    "cd-1": ("cd_u", "cd_u"), "cd-2": ("cd_u", "cd_u"),
    "om-1": ("om_a", "om_z"), "om-2": ("om_a", "om_z"), "om-3": ("om_a", "om_z"),
    "om-4": ("om_a", "om_z"), "om-5": ("om_a", "om_z"), "om-6": ("om_a", "om_a"),
    "om-7": ("om_a", "om_a"), "om-8": ("om_a", "om_a"),
    "kc-1": ("kc_m", "kc_m"), "kc-2": ("kc_m", "kc_m"), "kc-3": ("kc_c", "kc_n"),
    "kc-4": ("kc_c", "kc_n"), "kc-5": ("kc_c", "kc_n"), "kc-6": ("kc_c", "kc_c"),
    "lw-1": ("lw_a", "lw_b"), "lw-2": ("lw_a", "lw_b"), "lw-3": ("lw_a", "lw_a"),
    "lw-4": ("lw_a", "lw_a"), "lw-5": ("lw_a", "lw_a"),
}
# at T_LOW the events after it are gone: pv_a, ns_user as a userId, rv's identify, lw's alias
AT_T_LOW = {
    **{k: v for k, v in AT_T3.items() if k not in ("pv-4", "ns-3", "rv-3", "lw-5")},
    "pv-1": ("pv_b", "pv_b"), "pv-2": ("pv_b", "pv_b"), "pv-3": ("pv_b", "pv_b"),
    "ns-1": ("ns_user", None), "ns-2": ("ns_user", None),
    "rv-1": ("a-rv", None), "rv-2": ("a-rv", None),
    "lw-1": ("lw_b", "lw_b"), "lw-2": ("lw_b", "lw_b"),
}


@pytest.fixture(scope="module")
def warehouses(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("rekey-scenarios")
    first = write_messages(root, "batch-1.ndjson", BATCH_1)
    second = write_messages(root, "batch-2.ndjson", BATCH_2)
    # one file name, two folders: a full build reuses dbt's parse of the incremental build at
    # the same as_of (dbt_parse_cache.py)
    inc, full = warehouse_in(root / "inc"), warehouse_in(root / "full")
    load_files([first], inc)
    dbt_build(inc, root / "inc", T1)
    load_files([second], inc)
    dbt_build(inc, root / "inc", T2)
    dbt_build(inc, root / "inc", T3)
    shutil.copy(inc, root / "inc-t3.duckdb")
    dbt_build(inc, root / "inc", T_LOW)
    load_files([first, second], full)
    dbt_build(full, root / "full", T3, "--full-refresh")
    shutil.copy(full, root / "full-t3.duckdb")
    dbt_build(full, root / "full", T_LOW, "--full-refresh")
    return {"inc-t3": root / "inc-t3.duckdb", "full-t3": root / "full-t3.duckdb",
            "inc-low": inc, "full-low": full}


def _keys(warehouse: Path) -> dict[str, tuple[str, str | None]]:
    return {message_id: (user_key, user_id) for message_id, user_key, user_id in query_rows(
        warehouse, "select message_id, user_key, user_id from intermediate.int_events_stitched")}


def _differences(incremental: Path, full: Path) -> dict[str, tuple[int, int]]:
    """Per compared table: (rows only incremental, rows only in the full refresh), doubles to
    6 decimal places (parallel float sums are not bit-identical)."""
    differences = {}
    with duckdb.connect(":memory:") as con:
        con.execute(f"attach '{incremental}' as inc (read_only)")
        con.execute(f"attach '{full}' as full_db (read_only)")
        marts = [name for (name,) in con.execute(
            "select 'marts.' || table_name from information_schema.tables where table_catalog"
            " = 'full_db' and table_schema = 'marts' and table_type = 'BASE TABLE' order by 1"
        ).fetchall()]
        assert "marts.dim_users" in marts and "marts.fct_sessions" in marts
        for table in COMPARED_INTERMEDIATE + marts:
            columns = ", ".join(
                f'round("{name}", 6)' if kind in ("DOUBLE", "FLOAT") else f'"{name}"'
                for name, kind in con.execute(
                    "select column_name, data_type from information_schema.columns"
                    " where table_catalog = 'full_db' and table_schema = ? and table_name = ?"
                    f" and column_name not in {IGNORED_COLUMNS} order by ordinal_position",
                    table.split("."),
                ).fetchall()
            )
            a, b = f"inc.{table}", f"full_db.{table}"
            only_inc = con.execute(f"select count(*) from (select {columns} from {a} "
                                   f"except all select {columns} from {b})").fetchone()[0]
            only_full = con.execute(f"select count(*) from (select {columns} from {b} "
                                    f"except all select {columns} from {a})").fetchone()[0]
            if only_inc or only_full:
                differences[table] = (only_inc, only_full)
    return differences


def test_the_full_refresh_stitches_every_case_as_worked_out(warehouses: dict[str, Path]) -> None:
    assert _keys(warehouses["full-t3"]) == AT_T3
    assert _keys(warehouses["full-low"]) == AT_T_LOW


def test_incremental_equals_the_full_refresh_as_of_moving_forward(
    warehouses: dict[str, Path],
) -> None:
    assert _keys(warehouses["inc-t3"]) == AT_T3
    assert _differences(warehouses["inc-t3"], warehouses["full-t3"]) == {}


def test_incremental_equals_the_full_refresh_after_as_of_moved_back(
    warehouses: dict[str, Path],
) -> None:
    """The events after T_LOW leave the identity map: persons split, a key moves back, a
    device is anonymous again. No new event carries the ids of the earlier rows concerned."""
    assert _keys(warehouses["inc-low"]) == AT_T_LOW
    assert _differences(warehouses["inc-low"], warehouses["full-low"]) == {}
