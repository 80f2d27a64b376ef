"""Segment exports against a real DuckDB file: CSV cells that a spreadsheet would run as a
formula are escaped (OWASP CSV injection); the Parquet files keep every value exact."""

from __future__ import annotations

import csv
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
