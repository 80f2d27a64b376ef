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
    assert _accept(_message(userId=-0)).user_id == "0"


def _text(**fields: str) -> bytes:
    """A track message as text, each given field written as the raw JSON in its value (an
    identity besides it, so the one under test decides)."""
    other = "anonymousId" if "userId" in fields else "userId"
    base = f'{{"type":"track","messageId":"m-1","event":"E","{other}":"x-1"'
    return (base + "".join(f',"{k}":{v}' for k, v in fields.items()) + "}").encode()


@pytest.mark.parametrize(("literal", "stored"), [
    ("18446744073709551617", "18446744073709551617"),  # 2^64 + 1: beyond 64 bits, kept exact
    ("18446744073709551615", "18446744073709551615"),  # 2^64 - 1
    ("-9223372036854775809", "-9223372036854775809"),  # -2^63 - 1
    ("1" + "0" * 60, "1" + "0" * 60),
])
def test_a_numeric_id_of_any_size_is_stored_as_its_exact_digits(literal: str,
                                                                 stored: str) -> None:
    event = validate_text(_text(userId=literal), SOURCE, LOAD_TIME)
    assert isinstance(event, AcceptedEvent), event
    assert event.user_id == stored


@pytest.mark.parametrize("field", ["userId", "anonymousId"])
@pytest.mark.parametrize("literal", ["1e300", "7.0", "7.5", "1E3", "-0.0", "1e400",
                                     "9.3e18", "18446744073709551617.0"])
def test_a_numeric_id_with_a_fraction_or_exponent_is_refused_never_rounded(
        field: str, literal: str) -> None:
    rejection = validate_text(_text(**{field: literal}), SOURCE, LOAD_TIME)
    assert isinstance(rejection, Rejection)
    assert (rejection.reason, rejection.field) == ("invalid_id", field)
    assert rejection.detail.endswith(f"field `{field}` is a number written with a fraction or "
                                     "an exponent, expected a string or an integer.")


def test_previous_id_and_group_id_follow_the_same_rule() -> None:
    alias = b'{"type":"alias","messageId":"m","userId":"u","previousId":1e300}'
    group = b'{"type":"group","messageId":"m","userId":"u","groupId":true}'
    assert (validate_text(alias, SOURCE, LOAD_TIME).reason,  # type: ignore[union-attr]
            validate_text(group, SOURCE, LOAD_TIME).reason) == (  # type: ignore[union-attr]
        "invalid_id", "wrong_type")
    big = b'{"type":"alias","messageId":"m","userId":"u","previousId":18446744073709551617}'
    assert isinstance(validate_text(big, SOURCE, LOAD_TIME), AcceptedEvent)


def test_duplicate_keys_keep_the_first_value_at_every_depth() -> None:
    text = (b'{"type":"track","messageId":"m","userId":"first","userId":"second","event":"E",'
            b'"properties":{"a":1,"a":2}}')
    event = validate_text(text, SOURCE, LOAD_TIME)
    assert isinstance(event, AcceptedEvent)
    assert event.user_id == "first"
    assert event.payload == text.decode()  # stored as sent
    second_wrong = b'{"type":"track","messageId":"m","userId":"u","event":"E","event":5}'
    assert isinstance(validate_text(second_wrong, SOURCE, LOAD_TIME), AcceptedEvent)
    first_wrong = b'{"type":"track","messageId":"m","userId":"u","event":5,"event":"E"}'
    assert validate_text(first_wrong, SOURCE, LOAD_TIME).reason == "wrong_type"  # type: ignore[union-attr]


def _nested(levels: int, where: str = "properties") -> bytes:
    """A valid message whose `where` object brings the nesting to `levels` (the message is 1):
    objects down to an array of arrays, so both kinds count."""
    objects = (levels - 1) // 2
    arrays = levels - 1 - objects
    inner = '{"a":' * objects + "[" * arrays + "]" * arrays + "}" * objects
    return (f'{{"type":"track","messageId":"m","userId":"u","event":"E","{where}":{inner}}}'
            ).encode()


def test_nesting_is_limited_to_64_levels_naming_the_field() -> None:
    assert isinstance(validate_text(_nested(64), SOURCE, LOAD_TIME), AcceptedEvent)
    deep = validate_text(_nested(65), SOURCE, LOAD_TIME)
    assert isinstance(deep, Rejection)
    assert (deep.reason, deep.field) == ("too_deep", "properties")
    assert deep.detail == (f"Record {SOURCE}: field `properties` nests 65 levels of objects and "
                           "arrays, expected at most 64.")
    # far deeper than any parser takes: still too_deep, not a crash
    assert validate_text(_nested(5000, "context"), SOURCE, LOAD_TIME).reason == "too_deep"  # type: ignore[union-attr]


def test_brackets_inside_strings_do_not_count_as_nesting() -> None:
    text = (b'{"type":"track","messageId":"m","userId":"u","event":"E","properties":{"s":"'
            + b"[{" * 500 + b'"}}')
    assert isinstance(validate_text(text, SOURCE, LOAD_TIME), AcceptedEvent)


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


def test_a_device_clock_a_few_hours_fast_is_forgiven() -> None:
    # 5 h ahead: timestamp and sentAt both, well within the 24 h a clock may be ahead.
    event = _accept(_message(timestamp="2026-10-01T17:00:00Z", sentAt="2026-10-01T17:00:05Z",
                             receivedAt="2026-10-01T12:00:00Z"))
    assert event.occurred_at == datetime(2026, 10, 1, 17, 0, 0)  # stored as sent, not corrected


def test_a_device_clock_days_fast_is_refused_even_when_sent_at_shows_the_skew() -> None:
    # 3 days ahead: staging could correct it, but raw.occurred_at would sit in the future and
    # fail the raw check; the contract refuses what a check would refuse.
    rejection = _reject(_message(timestamp="2026-10-04T12:00:00Z", sentAt="2026-10-04T12:00:05Z",
                                 receivedAt="2026-10-01T12:00:00Z"))
    assert (rejection.reason, rejection.field) == ("future_timestamp", "timestamp")
    assert rejection.tail == "field `timestamp` is 72.0 h after receivedAt, expected at most 24 h."


def test_the_year_9999_is_refused_even_with_a_matching_sent_at() -> None:
    rejection = _reject(_message(timestamp="9999-12-31T23:59:59Z", sentAt="9999-12-31T23:59:59Z",
                                 receivedAt=_DROP))
    assert (rejection.reason, rejection.field) == ("future_timestamp", "timestamp")


def test_sent_at_more_than_24h_after_received_at_is_refused() -> None:
    rejection = _reject(_message(timestamp="2026-10-01T12:00:00Z", sentAt="2026-10-03T12:00:00Z",
                                 receivedAt="2026-10-01T12:00:00Z"))
    assert (rejection.reason, rejection.field) == ("future_timestamp", "sentAt")


def test_received_at_more_than_24h_after_the_intake_time_is_refused() -> None:
    # LOAD_TIME is 2026-10-01 12:30: a receivedAt a day and a minute later cannot be real.
    late = _reject(_message(timestamp="2026-10-02T12:31:00Z", sentAt=_DROP,
                            receivedAt="2026-10-02T12:31:00Z"))
    assert (late.reason, late.field) == ("future_timestamp", "receivedAt")
    assert late.tail == ("field `receivedAt` is 24.0 h after the time it was taken in, "
                         "expected at most 24 h.")
    assert _accept(_message(timestamp="2026-10-02T12:30:00Z", sentAt=_DROP,
                            receivedAt="2026-10-02T12:30:00Z"))


@pytest.mark.parametrize("field", ["timestamp", "sentAt", "receivedAt"])
def test_a_time_before_the_floor_is_refused_naming_the_setting(field: str) -> None:
    message = _message(**{field: "1970-01-01T00:00:00Z"})
    rejection = validate_message(message, SOURCE, LOAD_TIME)
    assert isinstance(rejection, Rejection)
    assert (rejection.reason, rejection.field) == ("timestamp_before_floor", field)
    assert rejection.tail == (f'field `{field}` is "1970-01-01T00:00:00Z", expected '
                              "2000-01-01T00:00:00Z or later (EWH_TIMESTAMP_FLOOR).")
    # the floor is a setting: a later one refuses what the default accepts
    floor = datetime(2026, 10, 1, 12, 0, 0, 500_000)
    assert _accept(_message(**{field: "2026-10-01T12:00:00.5Z"}))
    later = validate_message(_message(**{field: "2026-10-01T12:00:00.4Z"}), SOURCE, LOAD_TIME,
                             floor=floor)
    assert getattr(later, "reason", None) == "timestamp_before_floor"
    assert isinstance(validate_message(_message(), SOURCE, LOAD_TIME, floor=datetime(2026, 10, 1)),
                      AcceptedEvent)


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


def _sized(total: int, **extra: Any) -> dict[str, Any]:
    """A message whose compact JSON is exactly `total` bytes before `extra` is added."""
    message = _message(receivedAt=_DROP, properties={"blob": ""})
    pad = total - len(json.dumps(message, separators=(",", ":")))
    message["properties"]["blob"] = "x" * pad
    assert len(json.dumps(message, separators=(",", ":"))) == total
    return {**message, **extra}


def _compact(message: dict[str, Any]) -> bytes:
    return json.dumps(message, separators=(",", ":")).encode()


@pytest.mark.parametrize("size", [32_763, 32_768])
def test_the_size_limit_does_not_count_what_the_collector_adds(size: int) -> None:
    # The collector stamps receivedAt and notes context.ewh.consent: the line it lands is
    # longer than the client's message, and both validators still accept it.
    message = _sized(size)
    message["receivedAt"] = "2026-10-01T12:00:01.250Z"
    message["context"] = {**message["context"], "ewh": {"consent": "unknown"}}
    landed = _compact(message)
    assert len(landed) > 32_768
    assert isinstance(validate_text(landed, SOURCE, LOAD_TIME), AcceptedEvent)


def test_a_generated_message_id_is_not_counted_either() -> None:
    message = _sized(32_768)
    del message["messageId"]
    message = {"messageId": "0" * 36, **message, "receivedAt": "2026-10-01T12:00:01.250Z",
               "context": {**message["context"], "ewh": {"messageId": "generated"}}}
    assert isinstance(validate_text(_compact(message), SOURCE, LOAD_TIME), AcceptedEvent)


def test_one_byte_over_the_limit_is_oversize_with_or_without_additions() -> None:
    plain = validate_text(_compact(_sized(32_769)), SOURCE, LOAD_TIME)
    stamped = validate_text(_compact(_sized(32_769, receivedAt="2026-10-01T12:00:01.250Z")),
                            SOURCE, LOAD_TIME)
    for result in (plain, stamped):
        assert isinstance(result, Rejection)
        assert (result.reason, result.tail) == (
            "oversize", "is 32769 bytes, expected at most 32768 bytes per message.")
    # a long receivedAt is not one the server wrote: it counts
    odd = _sized(32_700, receivedAt="x" * 100)
    assert validate_text(_compact(odd), SOURCE, LOAD_TIME).reason == "oversize"  # type: ignore[union-attr]


def test_the_payload_is_the_original_text_byte_for_byte() -> None:
    text = '{ "type":"track", "messageId":"m-9","userId":"u","event":"Signed Up" }'
    result = validate_text(text.encode(), SOURCE, LOAD_TIME)
    assert isinstance(result, AcceptedEvent)
    assert result.payload == text
