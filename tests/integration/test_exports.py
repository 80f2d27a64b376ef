"""Segment exports against a real DuckDB file: CSV cells that a spreadsheet would run as a
formula are escaped (OWASP CSV injection); the Parquet files keep every value exact."""

from __future__ import annotations

import csv
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb

from ewh.segments.exports import export_segment

# (user_key, user_id as stored, as the CSV must show it): worked out from OWASP's rule,
# a leading ' before a cell starting with =, +, -, @, tab or carriage return.
USERS = [
    ("k1", '=HYPERLINK("http://evil.example","click")', '\'=HYPERLINK("http://evil.example","click")'),
    ("k2", "+1+2", "'+1+2"),
    ("k3", "-2+3+cmd|' /C calc'!A0", "'-2+3+cmd|' /C calc'!A0"),
    ("k4", "@SUM(1+1)", "'@SUM(1+1)"),
    ("k5", "\tTAB", "'\tTAB"),
    ("k6", "\rCR", "'\rCR"),
    ("k7", "plain-user=1", "plain-user=1"),
    ("k8", " =leading space", " =leading space"),
]


def _serving(path: Path) -> None:
    with duckdb.connect(str(path)) as con:
        con.execute("create schema segments")
        con.execute("create table segments.seg_demo (user_key varchar, user_id varchar, "
                    "net_revenue double, last_product varchar)")
        con.executemany("insert into segments.seg_demo values (?, ?, ?, ?)",
                        [(key, stored, -5.5, "-Widget") for key, stored, _ in USERS])


def _csv_rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_csv_exports_escape_formula_cells_and_parquet_keeps_the_values(tmp_path: Path) -> None:
    serving = tmp_path / "serving.duckdb"
    _serving(serving)
    result = export_segment(serving, "seg_demo", tmp_path / "exports")
    folder = tmp_path / "exports" / "seg_demo"
    expected = {key: shown for key, _, shown in USERS}
    for stem in ("members", "entered"):  # the first export: everyone entered
        rows = _csv_rows(folder / f"{stem}.csv")
        assert {r["user_key"]: r["user_id"] for r in rows} == expected
        assert {r["last_product"] for r in rows} == {"'-Widget"}
        assert {r["net_revenue"] for r in rows} == {"-5.5"}  # numbers stay numbers
    with duckdb.connect() as con:
        exact = dict(con.execute("select user_key, user_id from read_parquet(?)",
                                 [str(result.parquet_path)]).fetchall())
    assert exact == {key: stored for key, stored, _ in USERS}


def test_exited_members_are_escaped_too(tmp_path: Path) -> None:
    serving = tmp_path / "serving.duckdb"
    _serving(serving)
    export_segment(serving, "seg_demo", tmp_path / "exports")
    with duckdb.connect(str(serving)) as con:
        con.execute("delete from segments.seg_demo where user_key = 'k1'")
    export_segment(serving, "seg_demo", tmp_path / "exports")
    [row] = _csv_rows(tmp_path / "exports" / "seg_demo" / "exited.csv")
    assert row["user_id"] == USERS[0][2]


def test_members_carry_send_time_and_recommendations_for_email_content(tmp_path: Path) -> None:
    """k1 has a send time from history and two recommendations (ranked b, then a); k2 only
    the population send time; k3 nothing at all (columns empty, the member still exported)."""
    serving = tmp_path / "serving.duckdb"
    with duckdb.connect(str(serving)) as con:
        con.execute("create schema segments; create schema marts")
        con.execute("create table segments.seg_demo as select * from (values ('k1', 'id1'), "
                    "('k2', 'id2'), ('k3', 'id3')) t(user_key, user_id)")
        con.execute("create table marts.user_send_times as select * from (values "
                    "('k1', 'id1', 18, 3, 'history'), ('k2', 'id2', 10, 2, 'population')) "
                    "t(user_key, user_id, send_hour_utc, send_weekday, send_time_source)")
        con.execute("create table marts.user_recommendations as select * from (values "
                    "('k1', 'id1', 2, 'sku-a', 'because you viewed sku-z'), "
                    "('k1', 'id1', 1, 'sku-b', 'because you viewed sku-y')) "
                    "t(user_key, user_id, recommendation_rank, product_id, evidence)")
    export_segment(serving, "seg_demo", tmp_path / "exports")
    rows = {r["user_key"]: r for r in _csv_rows(tmp_path / "exports" / "seg_demo" / "members.csv")}
    assert (rows["k1"]["send_hour_utc"], rows["k1"]["send_weekday"],
            rows["k1"]["send_time_source"]) == ("18", "3", "history")
    assert rows["k1"]["recommended_products"] == "sku-b|sku-a"
    assert rows["k1"]["recommendation_evidence"] == "because you viewed sku-y"
    assert (rows["k2"]["send_time_source"], rows["k2"]["recommended_products"]) == (
        "population", "")
    assert rows["k3"]["send_hour_utc"] == "" and rows["k3"]["user_id"] == "id3"


def test_exports_of_one_segment_at_once_take_turns_and_the_second_is_a_delta_of_the_first(
        tmp_path: Path) -> None:
    """Two refresh runs may export a segment at once: both succeed, one after the other, and
    whichever is second finds everyone already exported (nobody entered or exited)."""
    serving = tmp_path / "serving.duckdb"
    _serving(serving)
    out = tmp_path / "exports"
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda _: export_segment(serving, "seg_demo", out), range(4)))
    assert sorted(r.entered for r in results) == [0, 0, 0, len(USERS)]
    assert all(r.rows == len(USERS) and r.exited == 0 for r in results)
    assert len(_csv_rows(out / "seg_demo" / "members.csv")) == len(USERS)
    assert not list((out / "seg_demo").glob("*.partial"))
