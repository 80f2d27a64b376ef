"""The event contract at the real collector (HTTP on 127.0.0.1) is the loader's: the same
message gets the same verdict and the same stored values on both paths."""

from __future__ import annotations

import json
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests
from collector_process import EWH, WRITE_KEY, Collector, running_collector

from ewh.ingest.loader import load_files

AUTH = (WRITE_KEY, "")
NOW = "2026-10-01T12:00:00Z"


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    with running_collector(tmp_path_factory.mktemp("landing")) as running:
        yield running


def _id() -> str:
    return f"c-{uuid.uuid4()}"


def _track_text(message_id: str, *members: str, timestamp: str | None = NOW) -> bytes:
    """A track message as text, extra members written as given (raw JSON)."""
    fields = ['"type":"track"', f'"messageId":"{message_id}"', '"event":"Signed Up"',
              *([f'"timestamp":"{timestamp}"'] if timestamp else []), *members]
    return ("{" + ",".join(fields) + "}").encode()


def _post(collector: Collector, path: str, body: bytes) -> requests.Response:
    return requests.post(f"{collector.url}{path}", data=body, auth=AUTH, timeout=10,
                         headers={"Content-Type": "application/json"})


def _landed(landing: Path, message_id: str) -> list[bytes]:
    return [line for path in sorted(landing.glob("*.ndjson*"))
            for line in path.read_bytes().splitlines() if message_id.encode() in line]


def _load_lines(tmp_path: Path, lines: list[bytes]) -> list[tuple[Any, ...]]:
    """Load each line as a file of its own into a warehouse of its own: (user_id, reason)."""
    outcomes = []
    for line in lines:
        path = tmp_path / f"{uuid.uuid4().hex}.ndjson"
        path.write_bytes(line + b"\n")
        warehouse = path.with_suffix(".duckdb")
        load_files([path], warehouse, landing_dir=tmp_path)
        with duckdb.connect(str(warehouse), read_only=True) as con:
            accepted = con.execute("select user_id from raw.events").fetchall()
            rejected = con.execute("select reason from raw.events_rejected").fetchall()
        outcomes.append((accepted[0][0] if accepted else None,
                         rejected[0][0] if rejected else None))
    return outcomes


@pytest.mark.parametrize("size", [32_763, 32_768])
def test_a_message_up_to_32_kb_is_accepted_though_the_server_adds_to_it(
        collector: Collector, tmp_path: Path, size: int) -> None:
    message_id = _id()
    base = _track_text(message_id, '"userId":"u-1"', '"properties":{"blob":""}')
    body = base.replace(b'"blob":""', b'"blob":"' + b"x" * (size - len(base)) + b'"')
    assert len(body) == size
    response = _post(collector, "/v1/track", body)
    assert response.status_code == 200, response.text
    [line] = _landed(collector.landing, message_id)
    assert len(line) > 32_768  # receivedAt and the consent note were added
    assert _load_lines(tmp_path, [line]) == [("u-1", None)]


def test_duplicate_keys_keep_the_first_value_on_both_paths(collector: Collector,
                                                           tmp_path: Path) -> None:
    message_id = _id()
    body = _track_text(message_id, '"userId":"first"', '"userId":"second"',
                       '"properties":{"plan":"a","plan":"b"}')
    assert _post(collector, "/v1/batch", b'{"batch":[' + body + b"]}").status_code == 200
    [line] = _landed(collector.landing, message_id)
    landed = json.loads(line)
    assert (landed["userId"], landed["properties"]) == ("first", {"plan": "a"})
    # The same text from a file, and the collector's line, load alike.
    assert _load_lines(tmp_path, [body, line]) == [("first", None), ("first", None)]


def test_a_numeric_id_beyond_64_bits_is_stored_as_its_digits_on_both_paths(
        collector: Collector, tmp_path: Path) -> None:
    message_id = _id()
    body = _track_text(message_id, '"userId":18446744073709551617',
                       '"properties":{"big":1e400,"n":123456789012345678901234567890}')
    assert _post(collector, "/v1/track", body).status_code == 200
    [line] = _landed(collector.landing, message_id)
    assert b'"userId":18446744073709551617' in line  # written back as sent, never rounded
    assert b'"big":1e400,"n":123456789012345678901234567890' in line
    assert _load_lines(tmp_path, [body, line]) == [("18446744073709551617", None)] * 2


@pytest.mark.parametrize(("member", "reason", "field"), [
    ('"userId":1e300', "invalid_id", "userId"),
    ('"timestamp":"9999-12-31T23:59:59Z","sentAt":"9999-12-31T23:59:59Z","userId":"u"',
     "future_timestamp", "timestamp"),
    ('"userId":"u","sentAt":"1970-01-01T00:00:00Z"', "timestamp_before_floor", "sentAt"),
])
def test_poison_events_are_refused_at_intake_as_at_load(
        collector: Collector, tmp_path: Path, member: str, reason: str, field: str) -> None:
    message_id = _id()
    body = _track_text(message_id, member, timestamp=None)
    response = _post(collector, "/v1/batch", b'{"batch":[' + body + b"]}")
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert (error["reason"], error["field"]) == (reason, field)
    assert _landed(collector.landing, message_id) == []
    assert _load_lines(tmp_path, [body]) == [(None, reason)]


@pytest.mark.parametrize("levels", [100, 300])
def test_a_deeply_nested_event_is_refused_alone_and_its_batch_is_stored(
        collector: Collector, levels: int) -> None:
    # 300 levels is past what orjson writes (254): it used to answer 500 and lose the batch.
    good = [_id(), _id()]
    deep = _track_text(_id(), '"userId":"u"',
                       '"properties":{"a":' + "[" * (levels - 2) + "]" * (levels - 2) + "}")
    body = (b'{"batch":[' + _track_text(good[0], '"userId":"u"') + b"," + deep + b","
            + _track_text(good[1], '"userId":"u"') + b"]}")
    response = _post(collector, "/v1/batch", body)
    assert response.status_code == 400, response.text
    assert response.json()["accepted"] == 2
    [error] = response.json()["errors"]
    assert (error["index"], error["reason"], error["field"]) == (1, "too_deep", "properties")
    assert error["detail"].endswith(f"field `properties` nests {levels} levels of objects and "
                                    "arrays, expected at most 64.")
    assert all(_landed(collector.landing, m) for m in good)


def test_the_timestamp_floor_is_a_setting(tmp_path: Path) -> None:
    with running_collector(tmp_path / "landing", EWH_TIMESTAMP_FLOOR="2026-01-01") as strict:
        body = _track_text(_id(), '"userId":"u"', '"sentAt":"2025-12-31T23:59:59Z"')
        response = _post(strict, "/v1/batch", b'{"batch":[' + body + b"]}")
    assert response.json()["errors"][0]["detail"].endswith(
        'field `sentAt` is "2025-12-31T23:59:59Z", expected 2026-01-01T00:00:00Z or later '
        "(EWH_TIMESTAMP_FLOOR).")


@pytest.mark.parametrize("port", ["0", "65536", "-1", "http", "80.5"])
def test_collect_refuses_an_invalid_port_instead_of_listening_elsewhere(port: str) -> None:
    result = subprocess.run([EWH, "collect", "--port", port], capture_output=True, text=True,
                            timeout=60, env={"EWH_WRITE_KEYS": "k", "PATH": "/usr/bin:/bin",
                                             **_python_path()})
    assert result.returncode == 2
    assert "is not a port number (1-65535)" in result.stderr


def _python_path() -> dict[str, str]:
    import os

    return {k: v for k, v in os.environ.items() if k in ("PYTHONPATH", "HOME")}
