"""No input makes the real collector answer 5xx: random and mutated bodies (hypothesis) on
every intake endpoint, including values nested past what orjson writes."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
import requests
from collector_process import WRITE_KEY, Collector, running_collector
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

# Each endpoint with a body valid enough to pass its own checks, so that a deep or odd
# value put into it reaches the contract and the serializer.
TRACK = {"type": "track", "messageId": "m-1", "userId": "u-1", "event": "Signed Up",
         "timestamp": "2026-10-01T12:00:00Z"}
ENGAGEMENT = {"userId": "u-1", "campaignId": "c-1", "elementId": "e-1", "eventType": "click",
              "timestamp": "2026-10-01T12:00:00Z"}
ENDPOINTS = {("POST", "/v1/t"): TRACK, ("POST", "/v1/batch"): TRACK,
             ("POST", "/api/engagement/click"): ENGAGEMENT,
             ("POST", "/api/engagement/events"): ENGAGEMENT,
             ("PUT", "/api/users/u-1/tags"): {"tags": ["vip"]}}
CLIENT_ERRORS = {200, 400, 401, 403, 413, 415}

scalars = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
           | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=20))
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)
FIELDS = ["type", "messageId", "userId", "anonymousId", "event", "timestamp", "sentAt",
          "properties", "context", "traits", "eventType", "campaignId", "elementId", "tags",
          "events", "batch", "writeKey"]
messages = st.dictionaries(st.sampled_from(FIELDS), values, max_size=8)
DEEP = b'"DEEP"'


def _body(value: Any, depth: int) -> bytes:
    text = json.dumps({"batch": value, "events": value} if isinstance(value, list) else value)
    # Any string "DEEP" becomes `depth` nested arrays: past orjson's 254, under its 1,024.
    return text.encode().replace(DEEP, b"[" * depth + b"0" + b"]" * depth)


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    with running_collector(tmp_path_factory.mktemp("landing"), EWH_RATE_LIMIT="") as running:
        yield running


def _mutated(base: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """`base` with random fields added and one of its fields (or an object field) set to a
    random or a deep value."""
    fields = sorted({*base, "properties", "context", "traits", "messageId", "writeKey"})
    return st.builds(lambda extra, field, value: {**extra, **base, field: value},
                     st.dictionaries(st.sampled_from(FIELDS), values, max_size=3),
                     st.sampled_from(fields), st.just("DEEP") | values)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), depth=st.sampled_from([260, 1000]))
def test_no_body_gets_a_5xx(collector: Collector, data: st.DataObject, depth: int) -> None:
    method, path = data.draw(st.sampled_from(sorted(ENDPOINTS)))
    mutated = _mutated(ENDPOINTS[(method, path)])
    body = data.draw(st.one_of(mutated, st.lists(mutated, min_size=1, max_size=4), values,
                               messages))
    response = requests.request(method, f"{collector.url}{path}", data=_body(body, depth),
                                auth=(WRITE_KEY, ""), timeout=10)
    assert response.status_code in CLIENT_ERRORS, (response.status_code, response.text[:300])
