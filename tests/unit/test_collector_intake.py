"""The collector checks each message it parsed (ewh.contract.json_text, first key wins) with
validate_parsed / rejection_of instead of parsing its landing line again (validate_text): the
verdicts must be the same on every message of the contract corpus. And it rewrites a message
after the privacy policy only when protect() says the policy changed it."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from test_contract_differential import CORPUS

from ewh.contract import json_text
from ewh.contract.validator import (
    TIMES_KEPT,
    Rejection,
    rejection_of,
    validate_parsed,
    validate_text,
)
from ewh.privacy.keys import PrivacyKeys
from ewh.privacy.policy import Protector

RECEIVED = datetime(2026, 10, 1, 12, 30)


def test_checking_the_parsed_message_equals_checking_its_serialised_line() -> None:
    checked = 0
    for index, text in enumerate(CORPUS):
        try:
            message = json_text.loads(text)
            line = json_text.dumps(message)
        except Exception:  # noqa: BLE001 - the collector refuses such a body before intake
            continue
        source = f"request r event {index}"
        assert validate_parsed(message, line, source, RECEIVED) == validate_text(
            line, source, RECEIVED), text
        checked += 1
    assert checked > 50


def test_the_collectors_verdict_equals_validate_parsed_on_the_corpus() -> None:
    """rejection_of (the collector's path, no AcceptedEvent) refuses exactly what
    validate_parsed refuses, with the same Rejection, and passes the rest."""
    checked = 0
    for index, text in enumerate(CORPUS):
        try:
            message = json_text.loads(text)
            line = json_text.dumps(message)
        except Exception:  # noqa: BLE001 - refused before intake, as above
            continue
        source = f"request r event {index}"
        full = validate_parsed(message, line, source, RECEIVED)
        expected = full if isinstance(full, Rejection) else None
        assert rejection_of(message, line, source, RECEIVED) == expected, text
        checked += 1
    assert checked > 50


def test_remembered_times_give_the_same_verdicts_as_fresh_ones() -> None:
    """The validator remembers parsed time strings per field: a valid time seen before still
    passes, an invalid one is refused every time, and an event far ahead of receivedAt is
    refused even when its timestamp was accepted on an earlier message with another
    receivedAt."""
    def message(timestamp: str, received: str) -> dict:
        return {"type": "track", "messageId": "m", "userId": "u", "event": "e",
                "timestamp": timestamp, "receivedAt": received}

    ok = message("2026-10-01T12:00:00.000Z", "2026-10-01T12:30:00.000Z")
    bad = message("2026-02-30T12:00:00.000Z", "2026-10-01T12:30:00.000Z")
    for _ in range(3):
        assert rejection_of(ok, json_text.dumps(ok), "s", RECEIVED) is None
        refused = rejection_of(bad, json_text.dumps(bad), "s", RECEIVED)
        assert refused is not None and refused.reason == "invalid_timestamp"
        assert refused.field == "timestamp"
    # The same timestamp, now 25 h after its receivedAt (the contract allows 24).
    ahead = message("2026-10-01T12:00:00.000Z", "2026-09-30T11:00:00.000Z")
    refused = rejection_of(ahead, json_text.dumps(ahead), "s", datetime(2026, 9, 30, 11))
    assert refused is not None and (refused.reason, refused.field) == (
        "future_timestamp", "timestamp")
    # More distinct times than are remembered: each one still parsed right.
    for minute in range(TIMES_KEPT * 2 + 1):
        stamp = f"2026-10-01T{minute // 60 % 24:02d}:{minute % 60:02d}:00.000Z"
        m = message(stamp, "2026-10-01T23:59:00.000Z")
        assert rejection_of(m, json_text.dumps(m), "s", datetime(2026, 10, 2)) is None


def _protector(tmp_path: Path) -> Protector:
    return Protector(PrivacyKeys(key_store=tmp_path, hmac_key=b"k" * 32))


def test_protect_says_whether_the_message_changed(tmp_path: Path) -> None:
    """The collector lands the line it checked when protect() says nothing changed, so it
    must say True exactly when the policy rewrote something (docs/privacy.md)."""
    protector = _protector(tmp_path)
    cases = [
        # (message, changed?)
        ({"properties": {"name": "Blue mug", "price": 5}}, False),  # a product's name
        ({"properties": {"sku": "a"}, "context": {"ip": "10.1.2.0"}}, False),  # already /24
        ({"context": {"ip": "10.1.2.3"}}, True),
        ({"context": {"ip": "not an address"}}, True),  # dropped
        ({"traits": {"name": "Ada", "plan": "pro"}}, True),  # a person's name
        ({"context": {"traits": {"FirstName": "Ada"}}}, True),
        ({"properties": {"Email": "a@example.com"}}, True),
        ({"traits": {"phone": 5551234}}, True),
        ({"traits": {"plan": "pro"}, "properties": {}}, False),
        ({"userId": "u"}, False),
    ]
    for message, changed in cases:
        message = {"userId": "u1", **message}
        before = json_text.dumps(message)
        assert protector.protect(message) is changed, before
        assert (json_text.dumps(message) != before) is changed, before
    hashed = {"traits": {"name": "Ada", "plan": "pro"}, "userId": "u1"}
    protector.protect(hashed)
    assert hashed == {"traits": {"plan": "pro"}, "userId": "u1"}
