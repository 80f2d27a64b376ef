"""The event contract: validate one Segment-spec message, accept it normalized or reject it.

One code path for every way events arrive (file loader, HTTP collector). Hand-written checks
because this runs once per event; a schema library would be an order of magnitude slower.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

try:  # orjson is much faster; the standard library is the fallback
    import orjson

    _loads: Any = orjson.loads
    _dumps: Any = lambda value: orjson.dumps(value).decode()  # noqa: E731
    _DecodeError: type[Exception] = orjson.JSONDecodeError
except ImportError:  # pragma: no cover - orjson is a dependency
    import json

    _loads = json.loads
    _dumps = json.dumps
    _DecodeError = ValueError

MESSAGE_TYPES = frozenset({"track", "identify", "page", "screen", "alias", "group"})
MAX_MESSAGE_BYTES = 32 * 1024  # Segment's per-message limit
FUTURE_TOLERANCE = timedelta(hours=24)
_OBJECT_FIELDS = ("properties", "traits", "context")
_TIME_FIELDS = ("timestamp", "sentAt", "receivedAt")


@dataclass(frozen=True, slots=True)
class AcceptedEvent:
    """A message that passed the contract; times are naive UTC."""

    message_id: str
    message_type: str
    event_name: str | None  # track: event; page/screen: name; else None
    user_id: str | None
    anonymous_id: str | None
    occurred_at: datetime | None  # the client timestamp as sent (None when absent)
    sent_at: datetime | None
    received_at: datetime
    payload: str  # the original JSON text


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a record was refused: a reason code, the offending field and a readable sentence."""

    reason: str  # invalid_json | not_an_object | missing_field | wrong_type | invalid_timestamp
    #              | unknown_message_type | future_timestamp | oversize
    field: str | None
    detail: str
    message_id: str | None = None


ValidationResult = AcceptedEvent | Rejection


class _Refused(Exception):
    """Internal short-circuit: the first failed check ends validation."""

    def __init__(self, reason: str, field: str | None, expectation: str) -> None:
        super().__init__(expectation)
        self.reason, self.field, self.expectation = reason, field, expectation


def validate_text(text: str | bytes, source: str,
                  received_at_default: datetime) -> ValidationResult:
    """Parse one JSON record and validate it. `payload` keeps the text exactly as given."""
    size = len(text.encode() if isinstance(text, str) else text)
    if size > MAX_MESSAGE_BYTES:
        return Rejection("oversize", None, f"Record {source}: is {size:,} bytes, expected at most "
                                           f"{MAX_MESSAGE_BYTES:,} bytes per message.")
    try:
        value = _loads(text)
    except (_DecodeError, UnicodeDecodeError) as exc:
        return Rejection("invalid_json", None,
                         f"Record {source}: is not valid JSON ({_short(str(exc))}), "
                         "expected one JSON object per line.")
    payload = text if isinstance(text, str) else text.decode()
    return validate_message(value, source, received_at_default, payload)


def validate_message(value: Any, source: str, received_at_default: datetime,
                     payload: str | None = None) -> ValidationResult:
    """Validate a parsed message against the contract.

    `received_at_default` (naive UTC) stands in when the message has no `receivedAt`; the loader
    passes its load time, the collector the request time. `payload` defaults to re-serialized JSON.
    """
    if not isinstance(value, dict):
        return Rejection("not_an_object", None,
                         f"Record {source}: is a JSON {_json_kind(value)}, expected a JSON object.")
    raw_id = value.get("messageId")
    message_id = raw_id if isinstance(raw_id, str) and raw_id else None
    try:
        event = _check(value, message_id, received_at_default, payload)
    except _Refused as refused:
        label = f"Record {source}" + (f" (messageId {message_id})" if message_id else "")
        where = f"field `{refused.field}`" if refused.field else "the record"
        return Rejection(refused.reason, refused.field, f"{label}: {where} {refused.expectation}",
                         message_id)
    return event


def _check(m: dict[str, Any], message_id: str | None, received_default: datetime,
           payload: str | None) -> AcceptedEvent:
    message_type = m.get("type")
    if message_type not in MESSAGE_TYPES:
        raise _Refused("unknown_message_type", "type",
                       f"is {_show(message_type)}, expected one of "
                       "track, identify, page, screen, alias, group.")
    if message_id is None:
        raw_id = m.get("messageId")
        if raw_id is None or raw_id == "":
            raise _Refused("missing_field", "messageId", "is missing, expected a non-empty string.")
        raise _Refused("wrong_type", "messageId",
                       f"is a {_json_kind(raw_id)}, expected a non-empty string.")
    user_id = _identity(m, "userId")
    anonymous_id = _identity(m, "anonymousId")
    if user_id is None and anonymous_id is None:
        raise _Refused("missing_field", "userId/anonymousId",
                       "is missing, expected at least one of userId or anonymousId.")
    event_name = _event_name(m, message_type)
    for name in _OBJECT_FIELDS:
        field_value = m.get(name)
        if field_value is not None and not isinstance(field_value, dict):
            raise _Refused("wrong_type", name,
                           f"is a {_json_kind(field_value)}, expected a JSON object.")
    occurred_at = _time(m, "timestamp")
    sent_at = _time(m, "sentAt")
    received_at = _time(m, "receivedAt") or received_default
    _check_not_future(occurred_at, sent_at, received_at)
    return AcceptedEvent(message_id, message_type, event_name, user_id, anonymous_id, occurred_at,
                         sent_at, received_at, payload if payload is not None else _dumps(m))


def _identity(m: dict[str, Any], name: str) -> str | None:
    value = m.get(name)
    if value is None:
        return None
    if isinstance(value, str):
        return value if value.strip() else None  # "" means absent, as in Segment
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # numeric ids are common in backends; stored as text
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    raise _Refused("wrong_type", name, f"is a {_json_kind(value)}, expected a string.")


def _event_name(m: dict[str, Any], message_type: str) -> str | None:
    if message_type == "track":
        event = m.get("event")
        if event is None or event == "":
            raise _Refused("missing_field", "event",
                           "is missing, expected the event name (a string) on a track message.")
        if not isinstance(event, str):
            raise _Refused("wrong_type", "event", f"is a {_json_kind(event)}, expected a string.")
        return event
    if message_type in ("page", "screen"):
        name = m.get("name")
        if name is not None and not isinstance(name, str):
            raise _Refused("wrong_type", "name", f"is a {_json_kind(name)}, expected a string.")
        return name
    return None


def _time(m: dict[str, Any], name: str) -> datetime | None:
    value = m.get(name)
    if value is None:
        return None
    expectation = "expected an ISO-8601 date-time with a timezone, e.g. 2026-10-01T12:00:00Z."
    if not isinstance(value, str):
        raise _Refused("invalid_timestamp", name, f"is a {_json_kind(value)}, {expectation}")
    parsed = parse_timestamp(value)
    if parsed is None:
        raise _Refused("invalid_timestamp", name, f"is {_show(value)}, {expectation}")
    return parsed


def parse_timestamp(value: str) -> datetime | None:
    """An ISO-8601 string with a timezone as a naive UTC datetime; None when invalid or naive."""
    if len(value) < 16 or len(value) > 40:
        return None
    try:
        if value[-1] == "Z":  # the common case, and the cheapest: already UTC
            parsed = datetime.fromisoformat(value[:-1])
            return parsed if parsed.tzinfo is None else None
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    offset = parsed.utcoffset()
    if offset is None:
        return None
    return parsed.replace(tzinfo=None) - offset


def _check_not_future(occurred: datetime | None, sent: datetime | None, received: datetime) -> None:
    if occurred is None:
        return
    # Segment's skew correction: the device clock is trusted only for the interval it measured.
    corrected = received - (sent - occurred) if sent is not None else occurred
    if corrected - received > FUTURE_TOLERANCE:
        ahead = (corrected - received).total_seconds() / 3600
        raise _Refused("future_timestamp", "timestamp",
                       f"is {ahead:.1f} h after receivedAt once corrected for clock skew, "
                       "expected at most 24 h.")


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "array"
    return "object"


def _show(value: Any) -> str:
    return "missing" if value is None else _short(repr(value) if isinstance(value, str) else
                                                   f"a {_json_kind(value)}")


def _short(text: str, limit: int = 80) -> str:
    return text if len(text) <= limit else text[: limit - 3] + "..."


def utc_now() -> datetime:
    """The current time as a naive UTC datetime (the raw layer's convention)."""
    return datetime.now(UTC).replace(tzinfo=None)
