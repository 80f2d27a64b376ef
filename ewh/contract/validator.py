"""The event contract in Python: validate one Segment message, accept it normalized or reject it.

The checks are not written here: they are compiled from the JSON Schemas in schemas/v1 beside it by
ewh.contract.rules, the same rules ewh.contract.sql turns into SQL for the loader. The collector
validates each message through this module; a differential test proves both agree on reason,
field and detail. Rejection details are built with the same templates on both sides.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from ewh.contract.rules import (
    TIMESTAMP_EXPECTATION,
    FieldRule,
    TypeContract,
    load_contract,
)

CONTRACT = load_contract()
MESSAGE_TYPES = frozenset(CONTRACT.message_types)
MAX_MESSAGE_BYTES = CONTRACT.max_bytes  # Segment's per-message limit
FUTURE_TOLERANCE = timedelta(hours=CONTRACT.types["track"].future.hours)
SHOWN_CHARS = 80  # values quoted in a detail are cut to this many characters
_TYPE_LIST = ", ".join(CONTRACT.message_types)
_PATTERNS: dict[str, re.Pattern[str]] = {}


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

    reason: str  # one of ewh.contract.rules.REJECTION_REASONS
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
        return Rejection("oversize", None, f"Record {source}: is {size} bytes, expected at most "
                                           f"{MAX_MESSAGE_BYTES} bytes per message.")
    try:
        value = orjson.loads(text)
    except orjson.JSONDecodeError:
        return Rejection("invalid_json", None,
                         f"Record {source}: is not valid JSON, expected one JSON object.")
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
                         f"Record {source}: is a JSON {json_kind(value)}, expected a JSON object.")
    raw_id = value.get("messageId")
    message_id = raw_id if isinstance(raw_id, str) and raw_id else None
    try:
        event = _check(value, received_at_default, payload)
    except _Refused as refused:
        label = f"Record {source}" + (f" (messageId {message_id})" if message_id else "")
        where = f"field `{refused.field}`" if refused.field else "the record"
        return Rejection(refused.reason, refused.field, f"{label}: {where} {refused.expectation}",
                         message_id)
    return event


def _check(m: dict[str, Any], received_default: datetime, payload: str | None) -> AcceptedEvent:
    message_type = m.get("type")
    compiled = _COMPILED.get(message_type) if type(message_type) is str else None
    if compiled is None:
        raise _Refused("unknown_message_type", "type",
                       f"is {show(message_type)}, expected one of {_TYPE_LIST}.")
    contract, checks = compiled
    columns: dict[str, Any] = {}
    for column, check in checks:
        value = check(m)
        if column is not None:
            columns[column] = value
    received_at = columns.get("received_at") or received_default
    _check_not_future(contract, columns.get("occurred_at"), columns.get("sent_at"), received_at)
    return AcceptedEvent(columns["message_id"], message_type, columns.get("event_name"),
                         columns.get("user_id"), columns.get("anonymous_id"),
                         columns.get("occurred_at"), columns.get("sent_at"), received_at,
                         payload if payload is not None else orjson.dumps(m).decode())


Check = Callable[[dict[str, Any]], Any]


def _compile_rule(rule: FieldRule) -> Check:
    """One rule as a small function: it runs once per rule per event on the collector's path,
    so the rule kind is decided here, once, not at every call."""
    name, kind = rule.field, rule.kind
    pattern = _pattern(rule.pattern) if rule.pattern else None

    def required_string(m: dict[str, Any]) -> Any:
        value = m.get(name)
        if type(value) is str and value:
            return value
        if value is None or value == "":
            raise _Refused("missing_field", name, "is missing, expected a non-empty string.")
        raise _Refused("wrong_type", name, f"is a {json_kind(value)}, expected a string.")

    def identity(m: dict[str, Any]) -> Any:
        return _identity(name, m.get(name), pattern)  # type: ignore[arg-type]

    def identity_group(m: dict[str, Any]) -> Any:
        if not any(_present(m.get(member), pattern) for member in rule.members):  # type: ignore[arg-type]
            members = " or ".join(rule.members)
            raise _Refused("missing_field", name,
                           f"is missing, expected at least one of {members}.")

    def optional_string(m: dict[str, Any]) -> Any:
        value = m.get(name)
        if value is not None and type(value) is not str:
            raise _Refused("wrong_type", name, f"is a {json_kind(value)}, expected a string.")
        return value

    def json_object(m: dict[str, Any]) -> Any:
        value = m.get(name)
        if value is not None and type(value) is not dict:
            raise _Refused("wrong_type", name, f"is a {json_kind(value)}, expected a JSON object.")
        return value

    def date_time(m: dict[str, Any]) -> Any:
        return _time(name, m.get(name), pattern)  # type: ignore[arg-type]

    checks: dict[str, Check] = {
        "required_string": required_string, "identity": identity,
        "identity_group": identity_group, "optional_string": optional_string,
        "object": json_object, "datetime": date_time,
    }
    return checks[kind]


def _identity(name: str, value: Any, non_blank: re.Pattern[str]) -> str | None:
    if value is None or isinstance(value, str):
        return value if value and non_blank.search(value) else None  # blank means absent
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)  # numeric ids are common in backends; stored as text
    if isinstance(value, float) and value.is_integer():
        return str(int(value))  # JSON Schema counts 7.0 as an integer
    raise _Refused("wrong_type", name, f"is a {json_kind(value)}, expected a string.")


def _present(value: Any, non_blank: re.Pattern[str]) -> bool:
    if isinstance(value, str):
        return non_blank.search(value) is not None
    return value is not None  # an integer (other types were refused before)


def _time(name: str, value: Any, pattern: re.Pattern[str]) -> datetime | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise _Refused("invalid_timestamp", name, f"is a {json_kind(value)}, "
                                                  f"{TIMESTAMP_EXPECTATION}")
    parsed = parse_timestamp(value, pattern)
    if parsed is None:
        raise _Refused("invalid_timestamp", name, f"is {show(value)}, {TIMESTAMP_EXPECTATION}")
    return parsed


def parse_timestamp(value: str, pattern: re.Pattern[str] | None = None) -> datetime | None:
    """An ISO-8601 string with a timezone as a naive UTC datetime; None when invalid or naive."""
    if pattern is None:
        pattern = _pattern(_datetime_pattern())
    if pattern.fullmatch(value) is None:
        return None
    try:
        if value[-1] == "Z":  # the common case, and the cheapest: already UTC
            return datetime.fromisoformat(value[:-1])
        parsed = datetime.fromisoformat(value)
    except ValueError:  # e.g. February 30th: the pattern checks shape, not the calendar
        return None
    offset = parsed.utcoffset()
    return None if offset is None else parsed.replace(tzinfo=None) - offset


def _check_not_future(contract: TypeContract, occurred: datetime | None, sent: datetime | None,
                      received: datetime) -> None:
    if occurred is None:
        return
    # Segment's skew correction: the device clock is trusted only for the interval it measured.
    corrected = received - (sent - occurred) if sent is not None else occurred
    rule = contract.future
    if corrected - received > timedelta(hours=rule.hours):
        ahead = (corrected - received).total_seconds() / 3600
        raise _Refused("future_timestamp", rule.field,
                       f"is {ahead:.1f} h after {rule.received_at} once corrected for clock "
                       f"skew, expected at most {rule.hours} h.")


_COMPILED: dict[str, tuple[TypeContract, tuple[tuple[str | None, Check], ...]]] = {}


def _pattern(source: str) -> re.Pattern[str]:
    compiled = _PATTERNS.get(source)
    if compiled is None:
        compiled = _PATTERNS[source] = re.compile(source)
    return compiled


def _datetime_pattern() -> str:
    rule = next(r for r in CONTRACT.types["track"].rules if r.kind == "datetime")
    return rule.pattern or ""


def json_kind(value: Any) -> str:
    """The JSON name of a parsed value's type, as rejection details say it."""
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


def show(value: Any) -> str:
    """A value as a detail quotes it: strings as JSON text cut to SHOWN_CHARS, others by kind."""
    if value is None:
        return "missing"
    if not isinstance(value, str):
        return f"a {json_kind(value)}"
    text = orjson.dumps(value).decode()
    return text if len(text) <= SHOWN_CHARS else text[: SHOWN_CHARS - 3] + "..."


_COMPILED.update({
    name: (tc, tuple((rule.column, _compile_rule(rule)) for rule in tc.rules))
    for name, tc in CONTRACT.types.items()
})
