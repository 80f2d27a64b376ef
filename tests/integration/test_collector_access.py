"""Who may call what on the real collector: key scopes, the rate limit, CORS, and keys that
never show up in logs, answers or landing files."""

from __future__ import annotations

import hashlib
import hmac
import os
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from collector_process import (
    ADMIN_KEY,
    EWH,
    READ_KEY,
    WRITE_KEY,
    Collector,
    running_collector,
)

from ewh.segments.catalog import SegmentSpec
from ewh.segments.exports import export_segment
from ewh.segments.serving import publish_serving_copy

NOW = "2026-10-01T12:00:00Z"
ORIGIN = "http://shop.example.test:8000"
SPEC = SegmentSpec(name="seg_demo", rule="Members of the demo.", owner="growth-team",
                   refresh="hourly", exported=True, description="", unique_id="model.x.seg_demo")


def _track(user: str = "u-1") -> dict:
    return {"type": "track", "messageId": f"m-{uuid.uuid4()}", "userId": user,
            "event": "Signed Up", "timestamp": NOW}


def _publish(root: Path) -> Path:
    import duckdb

    warehouse, serving = root / "warehouse.duckdb", root / "serving.duckdb"
    with duckdb.connect(str(warehouse)) as con:
        con.execute("create schema marts; create schema segments")
        con.execute("create table marts.dim_users as select 'u1' as user_key, 'id1' as user_id")
        con.execute("create table segments.seg_demo as select user_key, user_id, 1 as evidence "
                    "from marts.dim_users")
        con.execute("create table segments.segment_memberships as select user_key, "
                    "'seg_demo' as segment, timestamp '2026-11-01' as entered_at "
                    "from marts.dim_users")
    publish_serving_copy(warehouse, serving, [SPEC])
    export_segment(serving, "seg_demo", root / "exports")
    return serving


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    root = tmp_path_factory.mktemp("access")
    serving = _publish(root)
    with running_collector(root / "landing", EWH_SERVING=str(serving),
                           EWH_EXPORTS_DIR=str(root / "exports"),
                           EWH_CORS_ORIGINS=f"{ORIGIN},http://other.example.test") as running:
        yield running


READS = ["/v1/segments", "/v1/segments/demo/members", "/v1/users/id1/segments",
         "/v1/segments/demo/exports/members.csv"]


@pytest.mark.parametrize("path", READS)
def test_a_write_key_never_reads(collector: Collector, path: str) -> None:
    basic = requests.get(f"{collector.url}{path}", auth=(WRITE_KEY, ""), timeout=5)
    assert (basic.status_code, basic.json()["code"]) == (403, "forbidden")
    by_query = requests.get(f"{collector.url}{path}?writeKey={WRITE_KEY}", timeout=5)
    assert (by_query.status_code, by_query.json()["code"]) == (401, "unauthorized")
    assert "id1" not in basic.text + by_query.text


@pytest.mark.parametrize("path", READS)
@pytest.mark.parametrize("key", [READ_KEY, ADMIN_KEY], ids=["read", "admin"])
def test_read_and_admin_keys_read(collector: Collector, path: str, key: str) -> None:
    response = requests.get(f"{collector.url}{path}", auth=(key, ""), timeout=5)
    assert response.status_code == 200, response.text


def test_the_export_files_are_served_to_readers_and_nothing_else(collector: Collector) -> None:
    base = f"{collector.url}/v1/segments/demo/exports"
    csv = requests.get(f"{base}/members.csv", auth=(READ_KEY, ""), timeout=5)
    # member_ref: HMAC-SHA256(pseudonym key, "member" NUL user_key) (docs/privacy.md)
    member_ref = hmac.new(os.environ["EWH_PSEUDONYM_KEY"].encode(), b"member\x00u1",
                          hashlib.sha256).hexdigest()
    assert csv.text.splitlines() == ["user_key,user_id,evidence,member_ref",
                                     f"u1,id1,1,{member_ref}"]
    parquet = requests.get(f"{base}/members.parquet", auth=(READ_KEY, ""), timeout=5)
    assert parquet.content[:4] == b"PAR1"
    for name in ("..%2Fexport.json", "warehouse.duckdb", "members.csv.partial"):
        assert requests.get(f"{base}/{name}", auth=(READ_KEY, ""), timeout=5).status_code == 404
    unknown = requests.get(f"{collector.url}/v1/segments/nope/exports/members.csv",
                           auth=(READ_KEY, ""), timeout=5)
    assert unknown.status_code == 404


@pytest.mark.parametrize("key", [READ_KEY, ADMIN_KEY], ids=["read", "admin"])
def test_only_write_keys_send_events(collector: Collector, key: str) -> None:
    message = _track()
    basic = requests.post(f"{collector.url}/v1/track", json=message, auth=(key, ""), timeout=5)
    in_body = requests.post(f"{collector.url}/v1/track", json={**message, "writeKey": key},
                            timeout=5)
    assert (basic.status_code, in_body.status_code) == (403, 403)


def test_status_is_for_admin_keys_only(collector: Collector) -> None:
    url = f"{collector.url}/v1/admin/status"
    for key in (WRITE_KEY, READ_KEY):
        assert requests.get(url, auth=(key, ""), timeout=5).status_code == 403
    assert requests.get(url, timeout=5).status_code == 401
    status = requests.get(url, auth=(ADMIN_KEY, ""), timeout=5).json()
    assert status["landing_dir"] == str(collector.landing)
    assert status["keys"] == {"write": 2, "read": 1, "admin": 1}


def test_cors_preflight_and_answers_for_a_configured_origin(collector: Collector) -> None:
    preflight = requests.options(f"{collector.url}/v1/t", timeout=5, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "POST",
        "Access-Control-Request-Headers": "authorization,content-type"})
    assert preflight.status_code == 200
    assert preflight.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    assert "authorization" in preflight.headers["Access-Control-Allow-Headers"].lower()
    sent = requests.post(f"{collector.url}/v1/t", data=b'{"userId": "u", "event": "e"}',
                         auth=(WRITE_KEY, ""), timeout=5,
                         headers={"Origin": ORIGIN, "Content-Type": "text/plain"})
    assert sent.status_code == 200
    assert sent.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert "Retry-After" in sent.headers["Access-Control-Expose-Headers"]


def test_cors_refuses_other_origins_and_the_read_api(collector: Collector) -> None:
    stranger = requests.options(f"{collector.url}/v1/batch", timeout=5, headers={
        "Origin": "http://evil.example.test", "Access-Control-Request-Method": "POST"})
    assert stranger.status_code == 400
    assert "Access-Control-Allow-Origin" not in stranger.headers
    read = requests.options(f"{collector.url}/v1/segments", timeout=5, headers={
        "Origin": ORIGIN, "Access-Control-Request-Method": "GET"})
    assert "Access-Control-Allow-Origin" not in read.headers
    answer = requests.get(f"{collector.url}/v1/segments", auth=(READ_KEY, ""), timeout=5,
                          headers={"Origin": ORIGIN})
    assert "Access-Control-Allow-Origin" not in answer.headers


def test_the_rate_limit_answers_429_with_retry_after_per_key(tmp_path: Path) -> None:
    with running_collector(tmp_path / "landing", EWH_RATE_LIMIT="3/minute") as limited:
        codes = [requests.post(f"{limited.url}/v1/track", json=_track(),
                               auth=(WRITE_KEY, ""), timeout=5) for _ in range(4)]
        other_key = requests.post(f"{limited.url}/v1/track", json=_track(),
                                  auth=("second-key", ""), timeout=5)
        body_key = requests.post(f"{limited.url}/v1/track",
                                 json={**_track(), "writeKey": WRITE_KEY}, timeout=5)
    assert [c.status_code for c in codes] == [200, 200, 200, 429]
    assert codes[3].json()["code"] == "rate_limited"
    assert 1 <= int(codes[3].headers["Retry-After"]) <= 60
    assert other_key.status_code == 200
    assert body_key.status_code == 429  # the same key, sent in the body


def test_keys_are_never_logged_answered_or_landed(tmp_path: Path) -> None:
    secret_wrong = f"wrong-{uuid.uuid4()}"
    with running_collector(tmp_path / "landing") as collector:
        url = collector.url
        requests.post(f"{url}/v1/track", json=_track(), auth=(WRITE_KEY, ""), timeout=5)
        requests.post(f"{url}/v1/batch", json={"writeKey": WRITE_KEY, "batch": [_track()]},
                      timeout=5)
        answers = [
            requests.post(f"{url}/v1/track", json=_track(), auth=(secret_wrong, ""), timeout=5),
            requests.post(f"{url}/v1/track", json={**_track(), "writeKey": secret_wrong},
                          timeout=5),
            requests.get(f"{url}/v1/segments", auth=(WRITE_KEY, ""), timeout=5),
            requests.get(f"{url}/v1/admin/status", auth=(ADMIN_KEY, ""), timeout=5),
        ]
        collector.stop()
        log = collector.log.read_text()
    landed = b"".join(p.read_bytes() for p in (tmp_path / "landing").glob("*.ndjson*"))
    assert landed.count(b'"messageId"') == 2
    for key in (WRITE_KEY, READ_KEY, ADMIN_KEY, secret_wrong):
        assert key not in log
        assert key.encode() not in landed
        assert all(key not in a.text for a in answers)


def test_a_key_in_two_scopes_stops_the_collector_without_printing_it(tmp_path: Path) -> None:
    env = {**os.environ, "EWH_WRITE_KEYS": "shared-secret-key",
           "EWH_READ_KEYS": "shared-secret-key"}
    done = subprocess.run([EWH, "collect", "--port", "1", "--landing-dir", str(tmp_path)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 1
    assert "EWH_WRITE_KEYS and EWH_READ_KEYS" in done.stderr
    assert "shared-secret-key" not in done.stdout + done.stderr
