"""The collector over real HTTP on 127.0.0.1: every endpoint, and bad input of every kind."""

from __future__ import annotations

import base64
import gzip
import json
import socket
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests
from collector_process import WRITE_KEY, Collector, running_collector

from ewh.ingest.loader import load_files

AUTH = (WRITE_KEY, "")
NOW = "2026-10-01T12:00:00Z"  # a past time: never in the future


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    with running_collector(tmp_path_factory.mktemp("landing")) as running:
        yield running


@pytest.fixture(scope="module")
def http() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def _id() -> str:
    return f"m-{uuid.uuid4()}"


def _track(**fields: Any) -> dict[str, Any]:
    return {"type": "track", "messageId": _id(), "userId": "u-1", "event": "Signed Up",
            "timestamp": NOW, **fields}


def landed(landing: Path) -> dict[str, list[dict[str, Any]]]:
    """Every landed message by messageId (open files included: they are fsync'ed)."""
    by_id: dict[str, list[dict[str, Any]]] = {}
    for path in sorted(landing.glob("*.ndjson*")):
        for line in path.read_bytes().splitlines():
            message = json.loads(line)
            by_id.setdefault(message["messageId"], []).append(message)
    return by_id


def test_track_with_basic_auth_is_acknowledged_and_landed_with_the_server_received_at(
        collector: Collector, http: requests.Session) -> None:
    message = _track(receivedAt="1999-01-01T00:00:00Z")
    response = http.post(f"{collector.url}/v1/track", json=message, auth=AUTH)
    assert (response.status_code, response.json()) == (200, {"success": True})
    [stored] = landed(collector.landing)[message["messageId"]]
    assert stored["event"] == "Signed Up"
    assert stored["receivedAt"] != "1999-01-01T00:00:00Z"  # the server's clock, not the client's
    assert stored["receivedAt"].endswith("Z")


@pytest.mark.parametrize("message_type", ["identify", "page", "screen", "group", "alias"])
def test_each_single_message_endpoint_lands_a_message_of_its_type(
        collector: Collector, http: requests.Session, message_type: str) -> None:
    message = {"messageId": _id(), "userId": "u-1", "timestamp": NOW, "name": "Home",
               "groupId": "g-1", "previousId": "a-1", "traits": {"plan": "pro"}}
    response = http.post(f"{collector.url}/v1/{message_type}", json=message, auth=AUTH)
    assert response.status_code == 200, response.text
    assert landed(collector.landing)[message["messageId"]][0]["type"] == message_type


def test_batch_with_write_key_in_the_body_applies_batch_sent_at_and_context(
        collector: Collector, http: requests.Session) -> None:
    first, second = _track(), _track(context={"ip": "10.0.0.1"}, sentAt="2026-10-01T12:00:05Z")
    body = {"writeKey": WRITE_KEY, "sentAt": "2026-10-01T12:00:09Z",
            "context": {"library": {"name": "test"}}, "batch": [first, second]}
    assert http.post(f"{collector.url}/v1/batch", json=body).json() == {"success": True}
    stored = landed(collector.landing)
    a, b = stored[first["messageId"]][0], stored[second["messageId"]][0]
    assert (a["sentAt"], b["sentAt"]) == ("2026-10-01T12:00:09Z", "2026-10-01T12:00:05Z")
    assert a["context"]["library"] == {"name": "test"}
    # the IP lands cut to its /24 (docs/privacy.md)
    assert b["context"]["ip"] == "10.0.0.0" and b["context"]["library"] == {"name": "test"}
    assert "writeKey" not in a  # the credential is never landed


@pytest.mark.parametrize("auth, body_key", [(None, None), (("wrong", ""), None),
                                            (None, "wrong"), (("", ""), None)],
                         ids=["missing", "wrong_basic", "wrong_body_key", "empty_basic"])
def test_a_missing_or_wrong_write_key_is_401_and_nothing_is_landed(
        collector: Collector, http: requests.Session, auth: Any, body_key: Any) -> None:
    message = _track()
    if body_key:
        message["writeKey"] = body_key
    response = http.post(f"{collector.url}/v1/track", json=message, auth=auth)
    assert response.status_code == 401
    assert response.json()["success"] is False
    assert message["messageId"] not in landed(collector.landing)


def test_a_second_configured_key_is_accepted(collector: Collector,
                                             http: requests.Session) -> None:
    response = http.post(f"{collector.url}/v1/track", json=_track(), auth=("second-key", ""))
    assert response.status_code == 200


def test_a_single_message_over_32_kb_is_413(collector: Collector,
                                            http: requests.Session) -> None:
    message = _track(properties={"blob": "x" * 33_000})
    response = http.post(f"{collector.url}/v1/track", json=message, auth=AUTH)
    assert response.status_code == 413
    assert message["messageId"] not in landed(collector.landing)


def test_a_batch_over_500_kb_is_413(collector: Collector, http: requests.Session) -> None:
    batch = [_track(properties={"blob": "x" * 20_000}) for _ in range(30)]  # ~600 KB
    response = http.post(f"{collector.url}/v1/batch", json={"batch": batch}, auth=AUTH)
    assert response.status_code == 413
    assert not set(landed(collector.landing)) & {m["messageId"] for m in batch}


def test_a_message_over_32_kb_inside_a_batch_is_refused_alone(
        collector: Collector, http: requests.Session) -> None:
    small, big = _track(), _track(properties={"blob": "x" * 40_000})
    response = http.post(f"{collector.url}/v1/batch", json={"batch": [small, big]}, auth=AUTH)
    assert response.status_code == 400
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (1, 1)
    assert [(e["index"], e["reason"]) for e in body["errors"]] == [(1, "oversize")]
    stored = landed(collector.landing)
    assert small["messageId"] in stored and big["messageId"] not in stored


def test_a_mixed_batch_lands_the_valid_events_and_lists_each_invalid_one(
        collector: Collector, http: requests.Session) -> None:
    good = [_track(), _track()]
    bad = [
        _track(messageId=42),                                 # 1: messageId not a string
        _track(userId=None),                                  # 3: missing both ids
        {**_track(), "type": "click"},                        # 4: unknown type
        _track(userId={"id": 7}),                             # 5: wrong type
        _track(timestamp="2026-10-01 12:00"),                 # 6: no timezone
        _track(timestamp="2099-01-01T00:00:00Z"),             # 7: far in the future
    ]
    batch = [good[0], bad[0], good[1], *bad[1:]]
    response = http.post(f"{collector.url}/v1/batch", json={"batch": batch}, auth=AUTH)
    assert response.status_code == 400
    body = response.json()
    assert (body["success"], body["code"], body["accepted"], body["rejected"]) == (
        False, "invalid_events", 2, 6)
    assert [(e["index"], e["reason"], e["field"]) for e in body["errors"]] == [
        (1, "wrong_type", "messageId"),
        (3, "missing_field", "userId/anonymousId"),
        (4, "unknown_message_type", "type"),
        (5, "wrong_type", "userId"),
        (6, "invalid_timestamp", "timestamp"),
        (7, "future_timestamp", "timestamp"),
    ]
    assert all(f"event {e['index']}" in e["detail"] for e in body["errors"])
    stored = landed(collector.landing)
    assert all(m["messageId"] in stored for m in good)
    assert not any(m["messageId"] in stored for m in bad[1:])


@pytest.mark.parametrize("body, code", [
    (b'{"batch": [', "invalid_json"),
    (b"[1, 2]", "invalid_request"),
    (b'{"batch": {"type": "track"}}', "invalid_request"),
    (b'{"batch": []}', "invalid_request"),
])
def test_malformed_json_or_a_batch_that_is_not_a_list_is_400(
        collector: Collector, http: requests.Session, body: bytes, code: str) -> None:
    response = http.post(f"{collector.url}/v1/batch", data=body, auth=AUTH,
                         headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()["code"]) == (400, code)


def test_a_gzip_body_is_accepted_and_a_broken_one_is_400(
        collector: Collector, http: requests.Session) -> None:
    message = _track()
    body = gzip.compress(json.dumps({"batch": [message]}).encode())
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    response = http.post(f"{collector.url}/v1/batch", data=body, auth=AUTH, headers=headers)
    assert response.status_code == 200
    assert message["messageId"] in landed(collector.landing)
    broken = http.post(f"{collector.url}/v1/batch", data=body[:20], auth=AUTH, headers=headers)
    assert (broken.status_code, broken.json()["code"]) == (400, "invalid_gzip")


def test_a_gzip_body_that_inflates_past_the_limit_is_413(
        collector: Collector, http: requests.Session) -> None:
    bomb = gzip.compress(json.dumps({"batch": [_track(p="y" * 600_000)]}).encode())
    assert len(bomb) < 10_000
    response = http.post(f"{collector.url}/v1/batch", data=bomb, auth=AUTH,
                         headers={"Content-Encoding": "gzip"})
    assert response.status_code == 413


def test_unicode_is_landed_unchanged(collector: Collector, http: requests.Session) -> None:
    message = _track(event="Ünïcödé 🎉 事件", userId="用户-1",
                     properties={"q": "naïve café — \u2028 \\ \" end"})
    response = http.post(f"{collector.url}/v1/track", data=json.dumps(message).encode(),
                         auth=AUTH, headers={"Content-Type": "application/json; charset=utf-8"})
    assert response.status_code == 200
    [stored] = landed(collector.landing)[message["messageId"]]
    assert (stored["event"], stored["userId"], stored["properties"]) == (
        message["event"], message["userId"], message["properties"])


def test_a_duplicate_message_is_acknowledged_twice_and_loaded_once(
        collector: Collector, http: requests.Session, tmp_path: Path) -> None:
    message = _track()
    for _ in range(2):
        assert http.post(f"{collector.url}/v1/track", json=message, auth=AUTH).ok
    assert len(landed(collector.landing)[message["messageId"]]) == 2
    warehouse = tmp_path / "w.duckdb"
    snapshot = tmp_path / "snapshot.ndjson"  # the open file too, without waiting for rotation
    snapshot.write_bytes(b"".join(p.read_bytes() for p in collector.landing.glob("*.ndjson*")))
    load_files([snapshot], warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as con:
        assert con.execute("select count(*) from raw.events where message_id = ?",
                           [message["messageId"]]).fetchone() == (1,)


def test_health_answers_ok_and_reveals_nothing_else(collector: Collector,
                                                    http: requests.Session) -> None:
    response = http.get(f"{collector.url}/health")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert str(collector.landing) not in response.text


def test_events_without_analytics_consent_are_accepted_and_flagged(
        collector: Collector, http: requests.Session) -> None:
    granted = _track(context={"consent": {"categoryPreferences": {"Analytics": True}}})
    denied = _track(context={"consent": {"categoryPreferences": {"analytics": False}}})
    unknown = _track()
    response = http.post(f"{collector.url}/v1/batch", auth=AUTH,
                         json={"batch": [granted, denied, unknown]})
    assert response.status_code == 200
    stored = landed(collector.landing)
    assert "ewh" not in stored[granted["messageId"]][0]["context"]
    assert stored[denied["messageId"]][0]["context"]["ewh"] == {"consent": "denied"}
    assert stored[unknown["messageId"]][0]["context"]["ewh"] == {"consent": "unknown"}


def test_the_reject_policy_refuses_events_without_analytics_consent(
        tmp_path: Path, http: requests.Session) -> None:
    granted = _track(context={"consent": {"categoryPreferences": {"ANALYTICS": True}}})
    denied = _track(context={"consent": {"categoryPreferences": {"analytics": False}}})
    unknown = _track()
    with running_collector(tmp_path, EWH_CONSENT_POLICY="reject") as strict:
        response = http.post(f"{strict.url}/v1/batch", auth=AUTH,
                             json={"batch": [granted, denied, unknown]})
        stored = landed(strict.landing)
    assert response.status_code == 400
    assert [(e["index"], e["reason"], e["field"]) for e in response.json()["errors"]] == [
        (1, "consent_required", "context.consent.categoryPreferences.analytics"),
        (2, "consent_required", "context.consent.categoryPreferences.analytics")]
    assert set(stored) == {granted["messageId"]}


# --- the engagement API ------------------------------------------------------------------------

def _engagement(**fields: Any) -> dict[str, Any]:
    return {"userId": "u-9", "campaignId": "spring-sale", "elementId": "hero-cta",
            "timestamp": NOW, "deviceType": "mobile", **fields}


def _by_event(landing: Path, user_id: str) -> list[dict[str, Any]]:
    return [m for ms in landed(landing).values() for m in ms if m.get("userId") == user_id]


def test_an_engagement_click_becomes_a_track_element_clicked(
        collector: Collector, http: requests.Session) -> None:
    response = http.post(f"{collector.url}/api/engagement/click", auth=AUTH,
                         json=_engagement(userId="u-click", variant="B"))
    assert (response.status_code, response.json()) == (200, {"success": True})
    [message] = _by_event(collector.landing, "u-click")
    assert (message["type"], message["event"]) == ("track", "Element Clicked")
    assert message["properties"] == {"campaign_id": "spring-sale", "element_id": "hero-cta",
                                     "engagement_type": "click", "variant": "B"}
    assert message["context"]["device"] == {"type": "mobile"}
    assert message["context"]["campaign"] == {"id": "spring-sale"}
    assert message["messageId"].startswith("eng-")


def test_a_retried_engagement_event_keeps_its_message_id(
        collector: Collector, http: requests.Session) -> None:
    event = _engagement(userId="u-retry")
    for _ in range(2):
        assert http.post(f"{collector.url}/api/engagement/video-play", json=event,
                         auth=AUTH).ok
    first, second = _by_event(collector.landing, "u-retry")
    assert first["event"] == "Video Playback Started"
    assert first["messageId"] == second["messageId"]


def test_an_engagement_batch_lands_valid_events_and_names_the_bad_fields(
        collector: Collector, http: requests.Session) -> None:
    events = [
        {**_engagement(userId="u-batch"), "eventType": "click"},
        {**_engagement(userId="u-batch", campaignId=None), "eventType": "click"},
        {**_engagement(userId="u-batch"), "eventType": "teleport"},
        {**_engagement(userId="u-batch", timestamp="yesterday"), "eventType": "signup"},
        {**_engagement(userId="u-batch", elementId=None), "eventType": "video-play"},
    ]
    response = http.post(f"{collector.url}/api/engagement/events", json={"events": events},
                         auth=AUTH)
    assert response.status_code == 400
    body = response.json()
    assert body["accepted"] == 2
    assert [(e["index"], e["reason"], e["field"]) for e in body["errors"]] == [
        (1, "missing_field", "campaignId"), (2, "unknown_event_type", "eventType"),
        (3, "invalid_timestamp", "timestamp")]
    assert sorted(m["event"] for m in _by_event(collector.landing, "u-batch")) == [
        "Element Clicked", "Video Playback Started"]


def test_an_engagement_batch_of_more_than_100_events_is_413(
        collector: Collector, http: requests.Session) -> None:
    events = [{**_engagement(userId="u-many"), "eventType": "click"}] * 101
    response = http.post(f"{collector.url}/api/engagement/events", json=events, auth=AUTH)
    assert response.status_code == 413
    assert _by_event(collector.landing, "u-many") == []


def test_putting_tags_lands_an_identify_with_traits_tags(
        collector: Collector, http: requests.Session) -> None:
    response = http.put(f"{collector.url}/api/users/u-tags/tags", auth=AUTH,
                        json={"tags": ["highly engaged", "vip"], "timestamp": NOW})
    assert response.status_code == 200
    [message] = _by_event(collector.landing, "u-tags")
    assert (message["type"], message["traits"]) == (
        "identify", {"tags": ["highly engaged", "vip"], "tags_source": "manual"})
    bad = http.put(f"{collector.url}/api/users/u-tags/tags", auth=AUTH, json={"tags": "vip"})
    assert (bad.status_code, bad.json()["errors"][0]["field"]) == (400, "tags")


# --- bad input is never a 5xx; answers stay small ------------------------------------------------

def _with_nested(body: Any, levels: int) -> bytes:
    """`body` as JSON with its "DEEP" string replaced by `levels` nested arrays (the json
    module itself cannot write that deep)."""
    return json.dumps(body).encode().replace(b'"DEEP"', b"[" * levels + b"1" + b"]" * levels)


@pytest.mark.parametrize("levels", [253, 600, 1019])
def test_a_deeply_nested_event_is_refused_alone_and_the_valid_ones_are_stored(
        collector: Collector, http: requests.Session, levels: int) -> None:
    # The message, its properties and `levels` arrays: 2 + levels containers, more than the
    # 254 orjson writes; the body, 2 more, stays within the 1,024 levels it parses.
    good = [_track() for _ in range(99)]
    deep = _track(properties={"tree": "DEEP"})
    body = _with_nested({"batch": [*good[:40], deep, *good[40:]]}, levels)
    response = http.post(f"{collector.url}/v1/batch", data=body, auth=AUTH)
    assert response.status_code == 400
    body = response.json()
    assert (body["accepted"], body["rejected"]) == (99, 1)
    [error] = body["errors"]
    # a record refused as a whole (too deep, too big) is refused before its fields are read:
    # the index names it, as the loader's line number does
    assert (error["index"], error["messageId"], error["reason"]) == (40, None, "too_deep")
    assert "event 40" in error["detail"] and f"nests {levels + 2} levels" in error["detail"]
    stored = landed(collector.landing)
    assert all(m["messageId"] in stored for m in good)
    assert deep["messageId"] not in stored


def test_a_body_nested_beyond_what_the_parser_reads_is_a_400_not_a_500(
        collector: Collector, http: requests.Session) -> None:
    body = _with_nested(_track(properties={"tree": "DEEP"}), 1100)
    response = http.post(f"{collector.url}/v1/track", data=body, auth=AUTH)
    assert (response.status_code, response.json()["code"]) == (400, "invalid_json")


def test_an_error_answer_lists_the_first_100_errors_and_counts_the_rest(
        collector: Collector, http: requests.Session) -> None:
    # 170,660 empty objects: a 500 KB batch that gzips to about 550 bytes.
    body = gzip.compress(b'{"batch":[' + b",".join([b"{}"] * 170_660) + b"]}", 9)
    assert len(body) < 1_000
    response = http.post(f"{collector.url}/v1/batch", data=body, auth=AUTH,
                         headers={"Content-Encoding": "gzip"})
    assert response.status_code == 400
    assert len(response.content) < 64_000
    answer = response.json()
    assert (answer["accepted"], answer["rejected"], answer["errors_not_listed"]) == (
        0, 170_660, 170_560)
    assert answer["rejected_by_reason"] == {"unknown_message_type": 170_660}
    assert [e["index"] for e in answer["errors"]] == list(range(100))


def test_other_clients_are_served_while_a_huge_bad_batch_is_checked(
        collector: Collector, http: requests.Session) -> None:
    body = gzip.compress(b'{"batch":[' + b",".join([b"{}"] * 170_660) + b"]}", 9)
    with ThreadPoolExecutor(1) as pool:
        flood = pool.submit(requests.post, f"{collector.url}/v1/batch", data=body, auth=AUTH,
                            headers={"Content-Encoding": "gzip"}, timeout=60)
        slowest = 0.0
        while not flood.done():
            started = time.perf_counter()
            assert http.get(f"{collector.url}/health", timeout=10).ok
            slowest = max(slowest, time.perf_counter() - started)
        assert flood.result().status_code == 400
    # Checking 170,660 events takes seconds of CPU; the loop still answers between slices.
    assert slowest < 1.0  # checked at once, it held the loop for 2 s on an idle machine


def test_a_message_without_message_id_gets_one_from_the_server_and_loses_idempotency(
        collector: Collector, http: requests.Session) -> None:
    message = {"type": "track", "userId": "u-no-id", "event": "Signed Up", "timestamp": NOW}
    for _ in range(2):
        response = http.post(f"{collector.url}/v1/track", json=message, auth=AUTH)
        assert (response.status_code, response.json()) == (200, {"success": True})
    stored = [m for ms in landed(collector.landing).values() for m in ms
              if m.get("userId") == "u-no-id"]
    ids = sorted(m["messageId"] for m in stored)
    assert len(ids) == 2 and ids[0] != ids[1]  # the same event sent twice is two events
    assert all(i.startswith("srv-") for i in ids)


def test_the_key_is_checked_before_the_body_is_read(collector: Collector) -> None:
    # Headers promise a 400 KB body that never comes: the wrong key is answered at once.
    auth = base64.b64encode(b"wrong-key:").decode()
    with socket.create_connection(("127.0.0.1", collector.port), timeout=5) as sock:
        sock.sendall(f"POST /v1/batch HTTP/1.1\r\nHost: x\r\nAuthorization: Basic {auth}\r\n"
                     "Content-Type: application/json\r\nContent-Length: 400000\r\n\r\n"
                     '{"batch": ['.encode())
        answer = sock.recv(4096)
    assert answer.startswith(b"HTTP/1.1 401")


def test_a_body_without_any_key_is_refused_before_it_is_parsed(
        collector: Collector, http: requests.Session) -> None:
    response = http.post(f"{collector.url}/v1/batch", data=b'{"batch": [not json',
                         headers={"Content-Type": "application/json"})
    assert (response.status_code, response.json()["code"]) == (401, "unauthorized")


@pytest.mark.parametrize("path, message_type", [
    ("t", "track"), ("p", "page"), ("i", "identify"), ("s", "screen"), ("g", "group"),
    ("a", "alias")])
def test_analytics_js_short_paths_land_their_message_type(
        collector: Collector, http: requests.Session, path: str, message_type: str) -> None:
    message = {"messageId": _id(), "userId": "u-short", "timestamp": NOW, "event": "Signed Up",
               "groupId": "g-1", "previousId": "a-1", "writeKey": WRITE_KEY}
    response = http.post(f"{collector.url}/v1/{path}", data=json.dumps(message),
                         headers={"Content-Type": "text/plain"})  # as analytics.js sends it
    assert (response.status_code, response.json()) == (200, {"success": True})
    [stored] = landed(collector.landing)[message["messageId"]]
    assert stored["type"] == message_type and "writeKey" not in stored


def test_the_short_batch_path_lands_every_message(collector: Collector,
                                                  http: requests.Session) -> None:
    batch = [_track(), _track()]
    response = http.post(f"{collector.url}/v1/b", json={"batch": batch, "writeKey": WRITE_KEY})
    assert response.status_code == 200
    assert {m["messageId"] for m in batch} <= set(landed(collector.landing))


def test_a_deeply_nested_engagement_event_is_refused_alone(
        collector: Collector, http: requests.Session) -> None:
    events = [{**_engagement(userId="u-deep"), "eventType": "click"},
              {**_engagement(userId="u-deep", properties={"tree": "DEEP"}), "eventType": "click"},
              {**_engagement(userId="u-deep", campaignId="DEEP"), "eventType": "click"}]
    body = _with_nested({"events": events}, 300)
    response = http.post(f"{collector.url}/api/engagement/events", data=body, auth=AUTH)
    assert response.status_code == 400
    answer = response.json()
    assert answer["accepted"] == 1
    assert [(e["index"], e["reason"], e["field"]) for e in answer["errors"]] == [
        (1, "too_deep", None), (2, "wrong_type", "campaignId")]
    assert "event 1: the event is nested deeper than 254 levels" in answer["errors"][0]["detail"]
    assert len(_by_event(collector.landing, "u-deep")) == 1
