"""The segment API over real HTTP: served by `ewh collect`, read from the serving copy."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest
import requests
from collector_process import READ_KEY, WRITE_KEY, Collector, running_collector

from ewh.segments.catalog import SegmentSpec
from ewh.segments.serving import publish_serving_copy

SPEC = SegmentSpec(name="seg_demo", rule="Members of the demo.", owner="growth-team",
                   refresh="hourly", exported=True, description="", unique_id="model.x.seg_demo")
AUTH = (READ_KEY, "")  # reads need a read key


def _warehouse(path: Path, members: int) -> None:
    """dim_users u00..u(n-1); the first `members` are in seg_demo."""
    with duckdb.connect(str(path)) as con:
        con.execute("create schema if not exists marts; create schema if not exists segments")
        con.execute("create or replace table marts.dim_users as select "
                    "printf('u%02d', i) as user_key, printf('id%02d', i) as user_id "
                    "from range(30) t(i)")
        con.execute("create or replace table segments.seg_demo as select user_key, user_id, "
                    f"3 as evidence from marts.dim_users order by user_key limit {members}")
        con.execute("create or replace table segments.segment_memberships as select user_key, "
                    "'seg_demo' as segment, timestamp '2026-11-01 00:00:00' as entered_at "
                    "from segments.seg_demo")


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[tuple[Collector, Path, Path]]:
    warehouse, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving.duckdb"
    _warehouse(warehouse, members=25)
    publish_serving_copy(warehouse, serving, [SPEC])
    with running_collector(tmp_path / "landing", EWH_SERVING=str(serving)) as collector:
        yield collector, warehouse, serving


def test_requests_without_a_valid_read_key_are_refused(api) -> None:
    collector, _, _ = api
    assert requests.get(f"{collector.url}/v1/segments", timeout=5).status_code == 401
    wrong = requests.get(f"{collector.url}/v1/segments", auth=("nope", ""), timeout=5)
    assert wrong.status_code == 401
    write = requests.get(f"{collector.url}/v1/segments", auth=(WRITE_KEY, ""), timeout=5)
    assert write.status_code == 403  # the key apps embed never reads
    by_query = requests.get(f"{collector.url}/v1/segments?writeKey={READ_KEY}", timeout=5)
    assert by_query.status_code == 401  # keys are never taken from a URL


def test_segments_list_name_rule_size_and_refresh_time(api) -> None:
    collector, _, _ = api
    body = requests.get(f"{collector.url}/v1/segments", auth=AUTH, timeout=5).json()
    (segment,) = body["segments"]
    assert (segment["name"], segment["rule"], segment["size"]) == (
        "seg_demo", "Members of the demo.", 25)
    assert segment["refreshed_at"]


def test_cursor_pagination_visits_every_member_once_in_order(api) -> None:
    collector, _, _ = api
    pages, cursor = [], None
    while True:
        params = {"limit": 10, **({"cursor": cursor} if cursor else {})}
        body = requests.get(f"{collector.url}/v1/segments/demo/members", params=params,
                            auth=AUTH, timeout=5).json()
        pages.append([m["user_key"] for m in body["members"]])
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert [len(p) for p in pages] == [10, 10, 5]
    keys = [k for page in pages for k in page]
    assert keys == [f"u{i:02d}" for i in range(25)]


def test_bad_requests_name_what_is_wrong(api) -> None:
    collector, _, _ = api
    base = f"{collector.url}/v1/segments"
    unknown = requests.get(f"{base}/nope/members", auth=AUTH, timeout=5)
    assert unknown.status_code == 404 and "nope" in unknown.text
    assert requests.get(f"{base}/demo/members?limit=0", auth=AUTH, timeout=5).status_code == 400
    assert requests.get(f"{base}/demo/members?limit=x", auth=AUTH, timeout=5).status_code == 400
    bad_cursor = requests.get(f"{base}/demo/members?cursor=%%%", auth=AUTH, timeout=5)
    assert bad_cursor.status_code == 400


def test_a_user_lists_the_segments_they_are_in(api) -> None:
    collector, _, _ = api
    member = requests.get(f"{collector.url}/v1/users/id03/segments", auth=AUTH, timeout=5).json()
    assert member["known"] and member["user_keys"] == ["u03"]
    assert [s["segment"] for s in member["segments"]] == ["seg_demo"]
    outsider = requests.get(f"{collector.url}/v1/users/id27/segments", auth=AUTH,
                            timeout=5).json()
    assert outsider["known"] and outsider["segments"] == []
    stranger = requests.get(f"{collector.url}/v1/users/who/segments", auth=AUTH,
                            timeout=5).json()
    assert not stranger["known"]


def test_the_api_answers_from_each_newly_published_copy(api) -> None:
    collector, warehouse, serving = api
    _warehouse(warehouse, members=12)
    publish_serving_copy(warehouse, serving, [SPEC])
    body = requests.get(f"{collector.url}/v1/segments", auth=AUTH, timeout=5).json()
    assert body["segments"][0]["size"] == 12
    # The warehouse is locked by a writer: the API does not care, it never opens it.
    with duckdb.connect(str(warehouse)):
        again = requests.get(f"{collector.url}/v1/segments/demo/members", auth=AUTH, timeout=5)
    assert again.status_code == 200 and len(again.json()["members"]) == 12


def test_before_any_publish_the_api_says_so(tmp_path: Path) -> None:
    with running_collector(tmp_path / "landing",
                           EWH_SERVING=str(tmp_path / "absent.duckdb")) as collector:
        answer = requests.get(f"{collector.url}/v1/segments", auth=AUTH, timeout=5)
    assert answer.status_code == 503 and "not_published" in answer.text
