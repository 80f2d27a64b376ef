"""The real pipeline, end to end: generated data plus planted users, through Dagster.

A small generated dataset is landed with a file of hand-written messages whose outcomes are
worked out by hand. The `refresh_warehouse` job then runs for real (loader, dbt build, Great
Expectations checks, exports) against a DuckDB file in a temporary folder, at a pinned as_of.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ewh.sample.generator import generate

AS_OF = datetime(2026, 11, 1, 0, 0, 0)
CONSENT = {"consent": {"categoryPreferences": {"Analytics": True}}}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _message(message_id: str, user_id: str, anonymous_id: str, at: datetime,
             message_type: str = "track", event: str | None = None,
             properties: dict | None = None) -> dict:
    message = {
        "type": message_type, "messageId": message_id, "userId": user_id,
        "anonymousId": anonymous_id, "timestamp": _iso(at), "sentAt": _iso(at),
        # receivedAt = sentAt: skew correction (receivedAt - (sentAt - timestamp)) keeps `at`.
        "receivedAt": _iso(at), "context": CONSENT,
    }
    if event:
        message["event"] = event
    if properties:
        message["properties"] = properties
    return message


def _cart_add(message_id: str, user: str, at: datetime) -> dict:
    return _message(message_id, user, f"anon-{user}", at, event="Product Added",
                    properties={"product_id": "sku-planted", "price": 40.0, "category": "shoes"})


def planted_lines() -> list[str]:
    """Hand-written messages; the expected outcome of each is stated beside it."""
    day = timedelta(hours=24)
    messages = [
        # Added to cart 24 h + 1 s before as_of, never bought: a cart abandoner.
        _cart_add("planted-1", "planted-abandoner", AS_OF - day - timedelta(seconds=1)),
        # Added to cart 24 h - 1 s before as_of: still in the last 24 hours, misses the rule by
        # one second (exactly 24 h old would be abandoned: "in the last N" excludes exactly N).
        _cart_add("planted-2", "planted-near-miss", AS_OF - day + timedelta(seconds=1)),
        # Added to cart two days ago and bought 600 an hour later: a high-value customer
        # and, having bought, no cart abandoner.
        _cart_add("planted-3", "planted-buyer", AS_OF - 2 * day),
        _message("planted-4", "planted-buyer", "anon-planted-buyer",
                 AS_OF - 2 * day + timedelta(hours=1), event="Order Completed",
                 properties={"order_id": "o-planted", "revenue": 600.0, "currency": "USD"}),
    ]
    lines = [json.dumps(m) for m in messages]
    # Refused records, each for one stated reason.
    no_id = _message("x", "planted-bad", "anon-bad", AS_OF - day, event="Product Viewed")
    del no_id["messageId"]
    bad_time = _message("planted-bad-time", "planted-bad", "anon-bad", AS_OF - day,
                        event="Product Viewed")
    bad_time["timestamp"] = "2026-10-30 10:00:00"  # no timezone
    lines += [json.dumps(no_id), json.dumps(bad_time), '{"type": "track", "messageId": ']
    return lines


@pytest.fixture(scope="module")
def pipeline(tmp_path_factory: pytest.TempPathFactory) -> dict:
    root = tmp_path_factory.mktemp("e2e")
    landing = root / "landing"
    mp = pytest.MonkeyPatch()
    mp.setenv("EWH_WAREHOUSE", str(root / "warehouse.duckdb"))
    mp.setenv("EWH_LANDING_DIR", str(landing))
    mp.setenv("EWH_EXPORTS_DIR", str(root / "exports"))
    mp.setenv("EWH_SERVING", str(root / "serving.duckdb"))
    mp.setenv("EWH_MODELS_DIR", str(root / "models"))
    mp.setenv("EWH_AS_OF", str(AS_OF))  # dbt and the data-quality windows alike
    generate(landing, events=5_000, seed=7, end=AS_OF)
    (landing / "planted.ndjson").write_text("\n".join(planted_lines()) + "\n")

    from orchestration.definitions import defs

    job = defs().resolve_job_def("refresh_warehouse")
    result = job.execute_in_process(
        instance=dg.DagsterInstance.ephemeral(),
        raise_on_error=False,
    )
    yield {"root": root, "landing": landing, "result": result,
           "con": duckdb.connect(str(root / "warehouse.duckdb"), read_only=True)}
    mp.undo()


def _members(con: duckdb.DuckDBPyConnection, segment: str) -> set[str]:
    rows = con.execute(f"select user_id from segments.{segment}").fetchall()
    return {r[0] for r in rows}


def test_the_refresh_job_succeeds(pipeline: dict) -> None:
    assert pipeline["result"].success


def test_counts_reconcile_read_equals_loaded_plus_duplicates_plus_rejected(pipeline: dict):
    con = pipeline["con"]
    lines = sum(
        1 for f in pipeline["landing"].glob("*.ndjson")
        for line in f.read_text().splitlines() if line.strip()
    )
    read, loaded, dup, rejected = con.execute(
        "select sum(rows_read), sum(rows_loaded), sum(rows_duplicate), sum(rows_rejected) "
        "from raw.load_manifest"
    ).fetchone()
    assert read == lines
    assert read == loaded + dup + rejected
    assert con.execute("select count(*) from raw.events").fetchone()[0] == loaded
    assert con.execute("select count(*) from raw.events_rejected").fetchone()[0] == rejected
    assert dup > 0  # the generator plants retries


def test_each_rejected_record_carries_its_reason_and_field(pipeline: dict) -> None:
    con = pipeline["con"]
    assert con.execute(
        "select count(*) from raw.events_rejected where reason is null or detail is null"
    ).fetchone()[0] == 0
    planted = con.execute(
        "select reason, field from raw.events_rejected where source like '%planted.ndjson%' "
        "order by line_number"
    ).fetchall()
    assert planted == [
        ("missing_field", "messageId"),
        ("invalid_timestamp", "timestamp"),
        ("invalid_json", None),
    ]


def test_planted_abandoner_is_a_member_and_the_one_second_near_miss_is_not(pipeline: dict):
    members = _members(pipeline["con"], "seg_cart_abandoners")
    assert "planted-abandoner" in members
    assert "planted-near-miss" not in members
    assert "planted-buyer" not in members


def test_planted_buyer_is_a_high_value_customer(pipeline: dict) -> None:
    assert "planted-buyer" in _members(pipeline["con"], "seg_high_value_customers")


def test_every_segment_is_exported_with_all_its_members(pipeline: dict) -> None:
    con = pipeline["con"]
    for segment in ("seg_cart_abandoners", "seg_high_value_customers"):
        rows = con.execute(f"select count(*) from segments.{segment}").fetchone()[0]
        parquet = Path(pipeline["root"], "exports", segment, "members.parquet")
        csv = parquet.with_name("members.csv")
        exported = con.execute(f"select count(*) from '{parquet}'").fetchone()[0]
        assert rows > 0 and exported == rows
        assert len(csv.read_text().splitlines()) == rows + 1  # header


def test_great_expectations_suites_ran_as_asset_checks_and_passed(pipeline: dict) -> None:
    evaluations = {e.check_name: e for e in pipeline["result"].get_asset_check_evaluations()}
    assert evaluations["gx_raw_events"].passed, evaluations["gx_raw_events"].metadata
    assert evaluations["gx_fct_sessions"].passed, evaluations["gx_fct_sessions"].metadata


def test_memberships_list_the_current_members_of_every_segment(pipeline: dict) -> None:
    con = pipeline["con"]
    for segment in ("seg_cart_abandoners", "seg_high_value_customers", "seg_highly_engaged"):
        in_table = con.execute(f"select count(*) from segments.{segment}").fetchone()[0]
        listed = con.execute(
            "select count(*) from segments.segment_memberships where segment = ?",
            [segment.removeprefix("seg_")],
        ).fetchone()[0]
        listed_full = con.execute(
            "select count(*) from segments.segment_memberships where segment = ?", [segment]
        ).fetchone()[0]
        assert in_table == max(listed, listed_full)


def test_serving_copy_holds_the_same_segments_as_the_warehouse(pipeline: dict) -> None:
    serving = duckdb.connect(str(pipeline["root"] / "serving.duckdb"), read_only=True)
    for segment in ("seg_cart_abandoners", "seg_high_value_customers", "seg_highly_engaged"):
        published = serving.execute(f"select count(*) from segments.{segment}").fetchone()[0]
        built = pipeline["con"].execute(f"select count(*) from segments.{segment}").fetchone()[0]
        listed = serving.execute(
            "select members from segments.segment_catalog where segment = ?", [segment]
        ).fetchone()[0]
        assert published == built == listed
    serving.close()


def test_first_export_lists_every_member_as_entered_and_nobody_exited(pipeline: dict) -> None:
    folder = Path(pipeline["root"], "exports", "seg_cart_abandoners")
    con = pipeline["con"]
    members = con.execute(f"select count(*) from '{folder / 'members.parquet'}'").fetchone()[0]
    entered = con.execute(f"select count(*) from '{folder / 'entered.parquet'}'").fetchone()[0]
    exited = con.execute(f"select count(*) from '{folder / 'exited.parquet'}'").fetchone()[0]
    assert (members, exited) == (entered, 0)


def test_segment_assets_record_their_size_for_the_ui(pipeline: dict) -> None:
    sizes = {}
    for event in pipeline["result"].get_asset_materialization_events():
        materialization = event.step_materialization_data.materialization
        key = materialization.asset_key.to_user_string()
        if key.startswith("segments/seg_"):
            sizes[key] = materialization.metadata["dagster/row_count"].value
    expected = pipeline["con"].execute(
        "select count(*) from segments.seg_cart_abandoners").fetchone()[0]
    assert sizes["segments/seg_cart_abandoners"] == expected
    assert len(sizes) >= 3


def test_erasing_a_user_removes_them_from_every_layer(pipeline: dict, tmp_path: Path) -> None:
    import hashlib
    import hmac
    import os
    import shutil

    from ewh.common.settings import Settings
    from ewh.privacy.erasure import erase_user

    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(pipeline["root"] / "warehouse.duckdb", copy)
    # A copy of the warehouse alone: the module's landing zone and exports stay as they are.
    settings = Settings(warehouse=copy, landing_dir=tmp_path / "landing",
                        serving=tmp_path / "serving.duckdb", exports_dir=tmp_path / "exports",
                        erasure_receipts=tmp_path / "erasures")
    result = erase_user("planted-buyer", settings, dagster_home=tmp_path / "no-dagster")
    assert result.identity.anonymous_ids == {"anon-planted-buyer"}
    assert result.receipt["tables"]["warehouse"]["raw.events"] == 2  # the cart add, the order
    assert result.receipt["verification"]["clean"]
    with duckdb.connect(str(copy), read_only=True) as con:
        leftovers = []
        for schema, table, column in con.execute(
            "select table_schema, table_name, column_name from information_schema.columns "
            "where column_name in ('user_key', 'user_id', 'anonymous_id', 'device_id')"
        ).fetchall():
            hits = con.execute(
                f'select count(*) from "{schema}"."{table}" where "{column}"::varchar in '
                "('planted-buyer', 'anon-planted-buyer')").fetchone()[0]
            if hits:
                leftovers.append((schema, table, column, hits))
        recorded = con.execute("select subject_hash, ids_erased from raw.erasures").fetchall()
    assert leftovers == []
    # Only a keyed hash (HMAC-SHA256 under the settings' key, purpose "suppressed").
    keyed = hmac.new(os.environ["EWH_PSEUDONYM_KEY"].encode(), b"suppressed\x00planted-buyer",
                     hashlib.sha256).hexdigest()
    assert recorded == [(keyed, 2)]
    assert keyed != hashlib.sha256(b"planted-buyer").hexdigest()


def test_segments_command_lists_and_exports_from_the_serving_copy(pipeline: dict,
                                                                  tmp_path: Path) -> None:
    import os
    import subprocess
    import sys

    ewh = str(Path(sys.executable).with_name("ewh"))
    env = {**os.environ, "EWH_SERVING": str(pipeline["root"] / "serving.duckdb")}
    listed = subprocess.run([ewh, "segments", "list"], env=env, capture_output=True, text=True,
                            check=True).stdout
    members = pipeline["con"].execute(
        "select count(*) from segments.seg_cart_abandoners").fetchone()[0]
    line = next(x for x in listed.splitlines() if x.startswith("seg_cart_abandoners "))
    assert line.split()[1] == f"{members:,}"
    subprocess.run([ewh, "segments", "export", "seg_cart_abandoners", "--out", str(tmp_path)],
                   env=env, check=True, capture_output=True)
    exported = pipeline["con"].execute(
        f"select count(*) from '{tmp_path / 'seg_cart_abandoners' / 'members.parquet'}'"
    ).fetchone()[0]
    assert exported == members
