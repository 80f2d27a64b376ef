"""The event contract: what is accepted, how it is normalized, and why records are refused."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest

from ewh.contract.validator import AcceptedEvent, Rejection, validate_message, validate_text

SOURCE = "file:/landing/events-2026-10-01.ndjson:17"
LOAD_TIME = datetime(2026, 10, 1, 12, 30)


def _message(**overrides: Any) -> dict[str, Any]:
    message: dict[str, Any] = {
        "type": "track",
        "messageId": "m-1",
        "anonymousId": "anon-1",
        "userId": "user-1",
        "event": "Product Added",
        "properties": {"product_id": "sku-1"},
        "context": {"channel": "browser"},
        "timestamp": "2026-10-01T12:00:00.000Z",
        "sentAt": "2026-10-01T12:00:01.000Z",
        "receivedAt": "2026-10-01T12:00:01.250Z",
    }
    for key, value in overrides.items():
        if value is _DROP:
            message.pop(key, None)
        else:
            message[key] = value
    return message


_DROP = object()


def _accept(message: Any) -> AcceptedEvent:
    result = validate_message(message, SOURCE, LOAD_TIME)
    assert isinstance(result, AcceptedEvent), result
    return result


def _reject(message: Any) -> Rejection:
    result = validate_message(message, SOURCE, LOAD_TIME)
    assert isinstance(result, Rejection), result
    return result


def test_a_valid_track_message_is_accepted_with_its_fields() -> None:
    event = _accept(_message())
    assert (event.message_id, event.message_type, event.event_name) == (
        "m-1", "track", "Product Added")
    assert (event.user_id, event.anonymous_id) == ("user-1", "anon-1")
    assert event.occurred_at == datetime(2026, 10, 1, 12, 0, 0)
    assert event.sent_at == datetime(2026, 10, 1, 12, 0, 1)
    assert event.received_at == datetime(2026, 10, 1, 12, 0, 1, 250_000)


def test_times_with_an_offset_are_converted_to_naive_utc() -> None:
    event = _accept(_message(timestamp="2026-10-01T14:00:00+02:00",
                             sentAt="2026-10-01T07:00:05-05:00"))
    assert event.occurred_at == datetime(2026, 10, 1, 12, 0, 0)
    assert event.sent_at == datetime(2026, 10, 1, 12, 0, 5)
    assert event.occurred_at.tzinfo is None


@pytest.mark.parametrize("message_type", ["page", "screen"])
def test_page_and_screen_take_their_event_name_from_name(message_type: str) -> None:
    event = _accept(_message(type=message_type, event=_DROP, name="Pricing"))
    assert event.event_name == "Pricing"


def test_identify_has_no_event_name_and_needs_no_event() -> None:
    event = _accept(_message(type="identify", event=_DROP, properties=_DROP, traits={"plan": "x"}))
    assert event.event_name is None


@pytest.mark.parametrize("value", [[1, 2], "a string", 42, None])
def test_anything_but_an_object_is_rejected_as_not_an_object(value: Any) -> None:
    rejection = _reject(value)
    assert rejection.reason == "not_an_object"
    assert SOURCE in rejection.detail


@pytest.mark.parametrize("message_type", ["click", "Track", None])
def test_an_unknown_or_missing_type_is_rejected(message_type: Any) -> None:
    rejection = _reject(_message(type=message_type))
    assert (rejection.reason, rejection.field) == ("unknown_message_type", "type")


@pytest.mark.parametrize("message_id", [_DROP, None, ""])
def test_a_missing_or_empty_message_id_is_a_missing_field(message_id: Any) -> None:
    rejection = _reject(_message(messageId=message_id))
    assert (rejection.reason, rejection.field) == ("missing_field", "messageId")


def test_a_non_string_message_id_is_the_wrong_type() -> None:
    rejection = _reject(_message(messageId=123))
    assert (rejection.reason, rejection.field) == ("wrong_type", "messageId")


def test_one_of_user_id_or_anonymous_id_is_required() -> None:
    rejection = _reject(_message(userId=_DROP, anonymousId=_DROP))
    assert (rejection.reason, rejection.field) == ("missing_field", "userId/anonymousId")
    assert _accept(_message(userId=_DROP)).user_id is None
    assert _accept(_message(anonymousId=_DROP)).anonymous_id is None


def test_an_empty_user_id_counts_as_absent() -> None:
    assert _accept(_message(userId="")).user_id is None
    assert _reject(_message(userId="", anonymousId=_DROP)).reason == "missing_field"


def test_a_numeric_user_id_is_coerced_to_a_string() -> None:
    assert _accept(_message(userId=123)).user_id == "123"
    assert _accept(_message(anonymousId=7.0)).anonymous_id == "7"


@pytest.mark.parametrize("value", [True, {"id": 1}, [1]])
def test_a_user_id_of_another_type_is_the_wrong_type(value: Any) -> None:
    rejection = _reject(_message(userId=value))
    assert (rejection.reason, rejection.field) == ("wrong_type", "userId")


def test_a_track_message_requires_an_event_name() -> None:
    assert (_reject(_message(event=_DROP)).reason, _reject(_message(event=_DROP)).field) == (
        "missing_field", "event")
    assert (_reject(_message(event=5)).reason, _reject(_message(event=5)).field) == (
        "wrong_type", "event")


@pytest.mark.parametrize("field", ["timestamp", "sentAt", "receivedAt"])
def test_a_time_without_a_timezone_is_an_invalid_timestamp_naming_the_field(field: str) -> None:
    rejection = _reject(_message(**{field: "2026-10-01T12:00:00"}))
    assert (rejection.reason, rejection.field) == ("invalid_timestamp", field)
    assert f"`{field}`" in rejection.detail
    assert "timezone" in rejection.detail


@pytest.mark.parametrize("value", ["yesterday", "2026-13-01T00:00:00Z", "2026-10-01", 1727784000])
def test_an_unparseable_time_is_an_invalid_timestamp(value: Any) -> None:
    rejection = _reject(_message(timestamp=value))
    assert (rejection.reason, rejection.field) == ("invalid_timestamp", "timestamp")


@pytest.mark.parametrize("field", ["properties", "traits", "context"])
def test_properties_traits_and_context_must_be_objects(field: str) -> None:
    rejection = _reject(_message(**{field: ["not", "an", "object"]}))
    assert (rejection.reason, rejection.field) == ("wrong_type", field)


def test_a_timestamp_more_than_24h_after_received_at_is_in_the_future() -> None:
    # No sentAt: the client timestamp is used as is; 24h01m ahead of receivedAt.
    rejection = _reject(_message(sentAt=_DROP, timestamp="2026-10-02T12:01:02Z",
                                 receivedAt="2026-10-01T12:00:00Z"))
    assert (rejection.reason, rejection.field) == ("future_timestamp", "timestamp")


def test_a_timestamp_exactly_24h_after_received_at_is_accepted() -> None:
    _accept(_message(sentAt=_DROP, timestamp="2026-10-02T12:00:00Z",
                     receivedAt="2026-10-01T12:00:00Z"))


def test_a_fast_device_clock_is_forgiven_when_sent_at_shows_the_skew() -> None:
    # The device is 3 days ahead, but timestamp -> sentAt is 5 s: corrected time is 5 s before
    # receivedAt, so nothing is in the future.
    event = _accept(_message(timestamp="2026-10-04T12:00:00Z", sentAt="2026-10-04T12:00:05Z",
                             receivedAt="2026-10-01T12:00:00Z"))
    assert event.occurred_at == datetime(2026, 10, 4, 12, 0, 0)  # stored as sent, not corrected


def test_skew_correction_still_reveals_a_timestamp_25h_after_sent_at() -> None:
    # corrected = receivedAt - (sentAt - timestamp) = receivedAt + 25h.
    rejection = _reject(_message(timestamp="2026-10-02T13:00:00Z", sentAt="2026-10-01T12:00:00Z",
                                 receivedAt="2026-10-01T12:00:00Z"))
    assert rejection.reason == "future_timestamp"


def test_a_missing_received_at_takes_the_supplied_load_time() -> None:
    assert _accept(_message(receivedAt=_DROP)).received_at == LOAD_TIME


def test_rejection_names_the_record_the_message_id_and_the_field() -> None:
    rejection = _reject(_message(messageId="abc-123", timestamp="2026-10-01 12:00"))
    assert rejection.message_id == "abc-123"
    assert SOURCE in rejection.detail
    assert "abc-123" in rejection.detail
    assert "`timestamp`" in rejection.detail
    assert "expected" in rejection.detail
    assert rejection.detail.endswith(".")


def test_invalid_json_text_is_rejected_as_invalid_json() -> None:
    result = validate_text(b'{"type": "track", "messageId": ', SOURCE, LOAD_TIME)
    assert isinstance(result, Rejection)
    assert (result.reason, result.field) == ("invalid_json", None)
    assert SOURCE in result.detail


def test_a_record_over_32_kib_is_rejected_as_oversize() -> None:
    text = json.dumps(_message(properties={"blob": "x" * 40_000}))
    result = validate_text(text, SOURCE, LOAD_TIME)
    assert isinstance(result, Rejection)
    assert result.reason == "oversize"


def test_the_payload_is_the_original_text_byte_for_byte() -> None:
    text = '{ "type":"track", "messageId":"m-9","userId":"u","event":"Signed Up" }'
    result = validate_text(text.encode(), SOURCE, LOAD_TIME)
    assert isinstance(result, AcceptedEvent)
    assert result.payload == text
