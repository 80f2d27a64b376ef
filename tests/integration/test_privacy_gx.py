"""Erasure reaches the Great Expectations project (docs/privacy.md, Erasure).

A real validation of a small real warehouse (tests/integration/quality_warehouse.py) where
`dim_users.revenue` is negative for two users: the person to erase and someone else. The
dim_users suite samples a bad row by its `user_key` (SUMMARY format), so GX stores the
person's id in its validation result (JSON) and in the Data Docs page of that run. Then the
real `erase_user`: no file of the GX project may hold any of their ids, in any form (raw
UTF-8, JSON-escaped, HTML-escaped), the other user's sample stays, and so do the counts.

The userId has a non-ASCII letter: JSON written with ensure_ascii spells it `\\u00f6`, which a
search of the raw id alone would miss.
"""

from __future__ import annotations

import hashlib
import html
import json
import re
from pathlib import Path

import pytest
from quality_warehouse import AS_OF, SEGMENT, build_warehouse, copy_project, execute

from ewh.common.settings import Settings
from ewh.privacy.erasure import erase_user, verify
from ewh.quality.docs_assets import remote_loads
from ewh.quality.project import data_docs_dir, validations_dir
from ewh.quality.validate import validate_warehouse

PERSON = "gx-persön-41"
DEVICE = "gx-device-41"
OTHER = "gx-keep-42"
ERASED = "[erased]"


def forms(value: str) -> set[bytes]:
    """Every spelling of `value` a JSON or HTML file may hold."""
    return {value.encode(), json.dumps(value)[1:-1].encode(),
            json.dumps(value, ensure_ascii=False)[1:-1].encode(),
            html.escape(value).encode(), value.encode("ascii", "xmlcharrefreplace")}


def traces(folder: Path, values: list[str]) -> dict[str, int]:
    """Files under `folder` whose raw bytes hold any form of any value, with counts."""
    pattern = re.compile(b"|".join(re.escape(f) for v in values for f in forms(v)))
    found = {}
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        hits = len(pattern.findall(path.read_bytes()))
        if hits:
            found[str(path.relative_to(folder))] = hits
    return found


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    # The warehouse in its own folder: the GX project is not under it (as in production,
    # expectations/ is not under data/), so only a scan that names the project reaches it.
    data = tmp_path / "data"
    paths = {"EWH_WAREHOUSE": data / "warehouse.duckdb", "EWH_LANDING_DIR": data / "landing",
             "EWH_SERVING": data / "serving.duckdb", "EWH_EXPORTS_DIR": data / "exports",
             "EWH_MODELS_DIR": data / "models", "EWH_WEBHOOK_STATE": data / "webhooks.sqlite",
             "EWH_SPARK_WAREHOUSE": data / "spark-warehouse",
             "EWH_KEY_STORE": tmp_path / "keys", "EWH_ERASURE_RECEIPTS": tmp_path / "erasures",
             "EWH_GX_PROJECT_DIR": copy_project(tmp_path / "gx")}
    for name, value in paths.items():
        monkeypatch.setenv(name, str(value))
    monkeypatch.delenv("DAGSTER_HOME", raising=False)
    monkeypatch.delenv("EWH_LAKE_DIR", raising=False)
    data.mkdir()
    (data / "landing").mkdir()
    return paths


def _failing_validation(warehouse: Path, project: Path) -> None:
    """The person's event in raw; for them and for OTHER a negative revenue in dim_users (the
    result samples the rows by user_key) and two rows each in the segment (the result samples
    the duplicated user_keys, and the Data Docs page shows them)."""
    build_warehouse(warehouse)
    at = "timestamp '2026-11-01 10:00:00'"
    execute(warehouse,
            f"insert into raw.events values ('m41', 'track', 'Product Viewed', '{PERSON}', "
            f"'{DEVICE}', {at}, {at}, {at}, '{{}}', 'file:events.jsonl:41', 'sha', 'load-1', "
            f"{at})",
            *(f"insert into marts.dim_users select * replace ('{user}' as user_key, '{user}' "
              f"as user_id, -1 as revenue) from marts.dim_users where user_key = 'u0'"
              for user in (PERSON, OTHER)))
    execute(warehouse, *(f"insert into segments.seg_test values ('{user}', '{user}', 1)"
                         for user in (PERSON, PERSON, OTHER, OTHER)))
    users, members = validate_warehouse(
        warehouse, suites=["dim_users", SEGMENT.name], build_docs=True, as_of=AS_OF,
        segments=(SEGMENT,), project_dir=project)
    (revenue,) = users.errors
    assert (revenue.column, revenue.unexpected_count) == ("revenue", 2)
    assert set(revenue.sample_keys) == {PERSON, OTHER}
    (twice,) = members.errors
    assert (twice.expectation_type, twice.unexpected_count) == (
        "expect_column_values_to_be_unique", 4)
    assert sorted(twice.sample_values) == sorted([PERSON, PERSON, OTHER, OTHER])


def _stored_result(project: Path, suite: str) -> dict:
    (path,) = (validations_dir(project) / suite).rglob("*.json")
    return json.loads(path.read_text())


def _result_of(stored: dict, expectation: str, column: str) -> dict:
    (found,) = [r["result"] for r in stored["results"]
                if r["expectation_config"]["type"] == expectation
                and r["expectation_config"]["kwargs"].get("column") == column]
    return found


def _digests(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def test_erasure_scrubs_validation_results_and_data_docs(env: dict[str, Path]) -> None:
    project = env["EWH_GX_PROJECT_DIR"]
    _failing_validation(env["EWH_WAREHOUSE"], project)
    site = data_docs_dir(project)
    (segment_page,) = (site / "validations" / SEGMENT.name).rglob("*.html")
    results = "gx/uncommitted/validations/"
    # Stored in both results (dim_users: by user_key; the segment: the duplicated values);
    # the segment run's page shows its sample values (dim_users' page shows revenue only).
    assert set(traces(project, [PERSON])) == {
        *(str(p.relative_to(project)) for p in validations_dir(project).rglob("*.json")),
        str(segment_page.relative_to(project))}
    assert sum(1 for p in traces(project, [PERSON]) if p.startswith(results)) == 2
    pages_before = sorted(p.relative_to(site) for p in site.rglob("*.html"))

    result = erase_user(PERSON)

    assert result.clean, result.receipt["verification"]
    assert traces(project, [PERSON, DEVICE]) == {}
    assert result.receipt["files"]["gx"] == {"results_rewritten": 2, "results_removed": 0,
                                             "pages_rebuilt": 1, "pages_removed": 0}
    # The results stay useful: the same failures, their counts, the other user's samples.
    users = _stored_result(project, "dim_users")
    assert users["success"] is False
    revenue = _result_of(users, "expect_column_values_to_be_between", "revenue")
    assert revenue["unexpected_count"] == 2
    assert sorted(row["user_key"] for row in revenue["partial_unexpected_index_list"]) == [
        ERASED, OTHER]
    members = _stored_result(project, SEGMENT.name)
    twice = _result_of(members, "expect_column_values_to_be_unique", "user_key")
    assert twice["unexpected_count"] == 4
    assert sorted(twice["partial_unexpected_list"]) == [ERASED, ERASED, OTHER, OTHER]
    assert sorted((c["value"], c["count"]) for c in twice["partial_unexpected_counts"]) == [
        (ERASED, 2), (OTHER, 2)]
    # Rendered again from the scrubbed result: every page is still there, the segment run's
    # shows the other user and `[erased]`, and it still loads nothing remote.
    assert sorted(p.relative_to(site) for p in site.rglob("*.html")) == pages_before
    page = segment_page.read_text()
    assert OTHER in page and ERASED in page
    assert remote_loads(segment_page) == []

    # A short id (u1, device a1: quality_warehouse's) whose bytes turn up by chance in GX's
    # images and fonts (static/): no sample holds it, nothing is touched, the scan is clean.
    static = _digests(site / "static")
    assert traces(site / "static", ["u1", "a1"])  # the chance hits (substrings here)
    short = erase_user("u1")
    assert short.clean, short.receipt["verification"]
    assert short.receipt["files"]["gx"] == {"results_rewritten": 0, "results_removed": 0,
                                            "pages_rebuilt": 0, "pages_removed": 0}
    assert _digests(site / "static") == static


def test_a_page_without_its_result_is_removed_and_the_scan_covers_gx(
        env: dict[str, Path]) -> None:
    """A page whose stored result is gone cannot be rendered again: it is removed. Then a
    trace left in the GX project (here JSON-escaped only) makes the receipt's scan fail."""
    project = env["EWH_GX_PROJECT_DIR"]
    _failing_validation(env["EWH_WAREHOUSE"], project)
    (segment_result,) = (validations_dir(project) / SEGMENT.name).rglob("*.json")
    segment_result.unlink()
    (segment_page,) = (data_docs_dir(project) / "validations" / SEGMENT.name).rglob("*.html")

    result = erase_user(PERSON)

    assert result.clean, result.receipt["verification"]
    assert result.receipt["files"]["gx"] == {"results_rewritten": 1, "results_removed": 0,
                                             "pages_rebuilt": 0, "pages_removed": 1}
    assert not segment_page.exists()
    assert traces(project, [PERSON, DEVICE]) == {}
    stray = validations_dir(project) / "stray.json"
    stray.write_text(json.dumps({"user_key": PERSON}))  # ensure_ascii: gx-pers\u00f6n-41
    assert PERSON.encode() not in stray.read_bytes()
    found = verify(result.identity, Settings(), None)
    assert found["clean"] is False
    assert found["file_hits"] == {str(stray): 1}
