"""The event contract in Python: validate one Segment message, accept it normalized or reject it.

The checks are not written here: they are compiled from the JSON Schemas in schemas/v1 beside it by
ewh.contract.rules, the same rules ewh.contract.sql turns into SQL for the loader. The collector
validates each message through this module; a differential test proves both agree on reason,
field and detail. Rejection details are built with the same templates on both sides.

Besides the schemas: text is read by ewh.contract.json_text (first key wins, numbers as
written); the size (compact JSON without the collector's additions) and the depth are those of
the message as parsed, which this module alone computes: the loader's SQL hands it the records
whose text does not settle them. The time range's floor is a setting, passed in by the callers.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson

from ewh.contract import json_text
from ewh.contract.rules import (
    DEFAULT_TIMESTAMP_FLOOR,
    TIMESTAMP_EXPECTATION,
    FieldRule,
    TimeRule,
    TypeContract,
    load_contract,
)

CONTRACT = load_contract()
MESSAGE_TYPES = frozenset(CONTRACT.message_types)
MAX_MESSAGE_BYTES = CONTRACT.max_bytes  # Segment's per-message limit
MAX_DEPTH = CONTRACT.max_depth  # levels of objects and arrays, the message itself being 1
TIME_TOLERANCE = timedelta(hours=CONTRACT.max_ahead_hours)
SHOWN_CHARS = 80  # values quoted in a detail are cut to this many characters
_TYPE_LIST = ", ".join(CONTRACT.message_types)
_PATTERNS: dict[str, re.Pattern[str]] = {}
_INTEGER_LITERAL = re.compile(r"-?[1-9][0-9]*")
TIMES_KEPT = 256  # parsed time strings remembered per datetime field (see _compile_rule)


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
    detail: str  # "Record <source> (messageId <id>): <tail>"
    message_id: str | None = None
    tail: str = ""  # the detail after its "Record ...: " label (the loader adds its own)


ValidationResult = AcceptedEvent | Rejection


class _Refused(Exception):
    """Internal short-circuit: the first failed check ends validation."""

    def __init__(self, reason: str, field: str | None, expectation: str) -> None:
        super().__init__(expectation)
        self.reason, self.field, self.expectation = reason, field, expectation


def validate_text(text: str | bytes, source: str, received_at_default: datetime, *,
                  floor: datetime = DEFAULT_TIMESTAMP_FLOOR) -> ValidationResult:
    """Parse one JSON record and validate it. `payload` keeps the text exactly as given.

    Size and depth are those of the message as parsed (the first of duplicate keys wins): its
    compact JSON without the collector's additions (see message_size), and its nesting. So the
    collector, which lands the compact JSON of what it parsed, and the loader, which reads the
    text, measure the same message alike. Text that does not parse is measured as text.
    """
    raw = text.encode() if isinstance(text, str) else text
    value = _parse(raw)
    if value is _INVALID:
        if len(raw) > MAX_MESSAGE_BYTES:
            return _oversize(source, len(raw))
        brackets = raw.count(b"{") + raw.count(b"[")  # a bound on the depth, and cheap
        depth, field = json_text.text_depth(raw) if brackets > MAX_DEPTH else (0, None)
        if depth > MAX_DEPTH:
            return _too_deep(source, depth, field)
        return _whole("invalid_json", source, "is not valid JSON, expected one JSON object.")
    return validate_parsed(value, raw, source, received_at_default, floor=floor)


def validate_parsed(value: Any, raw: bytes, source: str, received_at_default: datetime, *,
                    floor: datetime = DEFAULT_TIMESTAMP_FLOOR) -> ValidationResult:
    """Validate a message already parsed by ewh.contract.json_text.loads, whose text is `raw`:
    what validate_text does after parsing. The collector calls it with the message it parsed
    and the compact JSON it lands (json_text.dumps), and saves a second parse."""
    refused = _size_or_depth(value, raw, source)
    if refused is not None:
        return refused
    return validate_message(value, source, received_at_default, raw.decode(), floor=floor)


def rejection_of(value: Any, raw: bytes, source: str, received_at_default: datetime, *,
                 floor: datetime = DEFAULT_TIMESTAMP_FLOOR) -> Rejection | None:
    """validate_parsed's verdict without the AcceptedEvent: its Rejection, or None when the
    message passes. The collector's path (it lands the message, not the event's columns):
    the same checks, minus building a record per event that nobody reads."""
    refused = _size_or_depth(value, raw, source)
    if refused is not None:
        return refused
    if not isinstance(value, dict):
        return _not_an_object(source, value)
    try:
        _columns(value, received_at_default, floor)
    except _Refused as refused_check:
        return _rejection(value, source, refused_check)
    return None


def _size_or_depth(value: Any, raw: bytes, source: str) -> Rejection | None:
    if len(raw) > MAX_MESSAGE_BYTES // GROWTH:
        size = message_size(value, raw)
        if size > MAX_MESSAGE_BYTES:
            return _oversize(source, size)
    if raw.count(b"{") + raw.count(b"[") > MAX_DEPTH:  # a bound on the depth, and cheap
        depth, field = value_depth(value)
        if depth > MAX_DEPTH:
            return _too_deep(source, depth, field)
    return None


def _oversize(source: str, size: int) -> Rejection:
    return _whole("oversize", source,
                  f"is {size} bytes, expected at most {MAX_MESSAGE_BYTES} bytes per message.")


def _too_deep(source: str, depth: int, field: str | None) -> Rejection:
    where = f"field `{field}`" if field else "the record"
    return _whole("too_deep", source, f"{where} nests {depth} levels of objects and arrays, "
                                      f"expected at most {MAX_DEPTH}.", field)


# Compact JSON is never longer than the text it was read from, but for numbers written with an
# exponent, which orjson may write out in full: 1e15 (4 bytes) is 1000000000000000.0 (18).
# Text shorter than the limit / GROWTH cannot be over it once compact.
GROWTH = 5
_EXPONENT = re.compile(rb"[0-9][eE]")


def message_size(value: Any, raw: bytes) -> int:
    """The size the limit applies to: the compact JSON of the parsed message, less what the
    collector adds (server_bytes). Skips the writing when the text bounds it already."""
    if len(raw) <= MAX_MESSAGE_BYTES and not _EXPONENT.search(raw):
        return len(raw)  # the compact JSON is no longer: under the limit either way
    try:
        return len(json_text.dumps(value)) - server_bytes(value)
    except orjson.JSONEncodeError:  # nested past what orjson writes: too deep anyway
        return len(raw)


def _whole(reason: str, source: str, tail: str, field: str | None = None) -> Rejection:
    """A rejection of the record as a whole: its messageId is not read."""
    return Rejection(reason, field, f"Record {source}: {tail}", None, tail)


_UNPARSED, _INVALID = object(), object()


def _parse(raw: bytes) -> Any:
    try:
        return json_text.loads(raw)
    except ValueError:  # orjson.JSONDecodeError is one
        return _INVALID


# What the collector adds to a message: `receivedAt`, its notes under `context.ewh` (e.g. the
# consent flag) and a messageId it generated, marked `context.ewh.messageId = "generated"`.
# They are not counted in its size, on either path, so a message of 32 KB stays acceptable
# once they are added. Each is only discounted while it is as small as the server writes it.
_SERVER_STRING_CHARS = 64
_SERVER_NOTES_BYTES = 128


def server_bytes(value: Any) -> int:
    """How many bytes of the compact JSON of `value` the collector's additions account for."""
    if not isinstance(value, dict):
        return 0
    stripped = dict(value)
    context = value.get("context")
    notes = context.get("ewh") if isinstance(context, dict) else None
    if isinstance(notes, dict) and len(json_text.dumps(notes)) <= _SERVER_NOTES_BYTES:
        rest = {k: v for k, v in context.items() if k != "ewh"}  # type: ignore[union-attr]
        if rest:
            stripped["context"] = rest
        else:
            del stripped["context"]  # the collector made the context to hold its notes
        if notes.get("messageId") == "generated" and _short_string(value.get("messageId")):
            del stripped["messageId"]
    if _short_string(value.get("receivedAt")):
        del stripped["receivedAt"]
    if len(stripped) == len(value) and stripped.get("context") is context:
        return 0
    return len(json_text.dumps(value)) - len(json_text.dumps(stripped))


def _short_string(value: Any) -> bool:
    return isinstance(value, str) and len(value) <= _SERVER_STRING_CHARS


def value_depth(value: Any) -> tuple[int, str | None]:
    """The deepest nesting of objects and arrays in a parsed value (the value itself is level 1)
    and the top-level field holding it, the first in document order; read without recursion."""
    deepest, field = 0, None
    stack: list[tuple[Any, int, str | None]] = [(value, 1, None)]
    while stack:
        item, depth, top = stack.pop()
        if isinstance(item, dict | list):
            if depth > deepest:
                deepest, field = depth, top
            children = list(item.items()) if isinstance(item, dict) else [(top, v) for v in item]
            for key, child in reversed(children):  # popped in document order, as text_depth
                stack.append((child, depth + 1, key if depth == 1 else top))
    return deepest, field


def unwritable(value: Any, source: str) -> Rejection:
    """The rejection of a parsed message a JSON writer refused (orjson stops at 254 levels):
    too_deep, with its depth and field."""
    return _too_deep(source, *value_depth(value))


def validate_message(value: Any, source: str, received_at_default: datetime,
                     payload: str | None = None, *,
                     floor: datetime = DEFAULT_TIMESTAMP_FLOOR) -> ValidationResult:
    """Validate a parsed message against the contract.

    `received_at_default` (naive UTC) is the intake time: it stands in when the message has no
    `receivedAt`, and bounds the one it has; the loader passes its load time, the collector the
    request time. `floor` is the earliest time accepted (EWH_TIMESTAMP_FLOOR). `payload`
    defaults to re-serialized JSON. Size and depth are checked on text, by validate_text.
    """
    if not isinstance(value, dict):
        return _not_an_object(source, value)
    try:
        message_type, columns, received_at = _columns(value, received_at_default, floor)
    except _Refused as refused:
        return _rejection(value, source, refused)
    return AcceptedEvent(columns["message_id"], message_type, columns.get("event_name"),
                         columns.get("user_id"), columns.get("anonymous_id"),
                         columns.get("occurred_at"), columns.get("sent_at"), received_at,
                         payload if payload is not None else json_text.dumps(value).decode())


def _not_an_object(source: str, value: Any) -> Rejection:
    return _whole("not_an_object", source, f"is a JSON {json_kind(value)}, expected a JSON object.")


def _rejection(value: dict[str, Any], source: str, refused: _Refused) -> Rejection:
    raw_id = value.get("messageId")
    message_id = raw_id if isinstance(raw_id, str) and raw_id else None
    label = f"Record {source}" + (f" (messageId {message_id})" if message_id else "")
    where = f"field `{refused.field}`" if refused.field else "the record"
    tail = f"{where} {refused.expectation}"
    return Rejection(refused.reason, refused.field, f"{label}: {tail}", message_id, tail)


def _columns(m: dict[str, Any], received_default: datetime,
             floor: datetime) -> tuple[str, dict[str, Any], datetime]:
    """Every check of the message's type in order (the first failure raises _Refused); the
    type, the values of the checked columns and the receivedAt in force."""
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
    _check_times(contract.times, m, columns, received_at, received_default, floor)
    return message_type, columns, received_at


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
        for member in rule.members:
            if _present(m.get(member), pattern):  # type: ignore[arg-type]
                return None
        members = " or ".join(rule.members)
        raise _Refused("missing_field", name, f"is missing, expected at least one of {members}.")

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

    # The times a field held lately, parsed: a request's receivedAt is the same on each of its
    # events, and so is a batch's sentAt. Only valid times are kept; bounded, so a stream of
    # distinct times costs a lookup and no memory.
    parsed_times: dict[str, datetime] = {}

    def date_time(m: dict[str, Any]) -> Any:
        value = m.get(name)
        if type(value) is str:
            parsed = parsed_times.get(value)
            if parsed is not None:
                return parsed
            parsed = _time(name, value, pattern)  # type: ignore[arg-type]
            if len(parsed_times) >= TIMES_KEPT:
                parsed_times.clear()
            parsed_times[value] = parsed  # type: ignore[assignment]
            return parsed
        return _time(name, value, pattern)  # type: ignore[arg-type]

    checks: dict[str, Check] = {
        "required_string": required_string, "identity": identity,
        "identity_group": identity_group, "optional_string": optional_string,
        "object": json_object, "datetime": date_time,
    }
    return checks[kind]


ID_NUMBER_EXPECTATION = ("is a number written with a fraction or an exponent, expected a "
                         "string or an integer.")


def _identity(name: str, value: Any, non_blank: re.Pattern[str]) -> str | None:
    if value is None or isinstance(value, str):
        return value if value and non_blank.search(value) else None  # blank means absent
    if type(value) is int:
        return str(value)  # numeric ids are common in backends; stored as their digits
    if isinstance(value, json_text.Literal) and _INTEGER_LITERAL.fullmatch(value.text):
        return value.text  # beyond 64 bits: the digits as written, never rounded
    if isinstance(value, float | json_text.Literal):
        raise _Refused("invalid_id", name, ID_NUMBER_EXPECTATION)
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


def _check_times(rule: TimeRule, m: dict[str, Any], columns: dict[str, Any],
                 received: datetime, intake: datetime, floor: datetime) -> None:
    """The range of the message's times (ewh.contract.rules.TimeRule), in a fixed order: the
    floor of each, then how far ahead each may be."""
    occurred, sent = columns.get("occurred_at"), columns.get("sent_at")
    for field, moment in ((rule.timestamp, occurred), (rule.sent_at, sent),
                          (rule.received_at, columns.get("received_at"))):
        if moment is not None and moment < floor:
            raise _Refused("timestamp_before_floor", field,
                           f"is {show(m.get(field))}, {floor_expectation(floor)}")
    limit = _ahead_limit(rule.hours)
    if received - intake > limit:
        raise _Refused("future_timestamp", rule.received_at,
                       f"is {_hours(received - intake)} h after the time it was taken in, "
                       f"{_ahead(rule)}")
    if occurred is not None:
        if occurred - received > limit:
            raise _Refused("future_timestamp", rule.timestamp,
                           f"is {_hours(occurred - received)} h after {rule.received_at}, "
                           f"{_ahead(rule)}")
        # Segment's skew correction, receivedAt - (sentAt - timestamp), may not move it later
        # than that either: the device clock is trusted only for the interval it measured.
        if sent is not None and occurred - sent > limit:
            raise _Refused("future_timestamp", rule.timestamp,
                           f"is {_hours(occurred - sent)} h after {rule.received_at} once "
                           f"corrected for clock skew, {_ahead(rule)}")
    if sent is not None and sent - received > limit:
        raise _Refused("future_timestamp", rule.sent_at,
                       f"is {_hours(sent - received)} h after {rule.received_at}, {_ahead(rule)}")


@functools.cache
def _ahead_limit(hours: int) -> timedelta:
    return timedelta(hours=hours)


def _ahead(rule: TimeRule) -> str:
    return f"expected at most {rule.hours} h."


def floor_expectation(floor: datetime) -> str:
    return f"expected {floor:%Y-%m-%dT%H:%M:%SZ} or later (EWH_TIMESTAMP_FLOOR)."


def _hours(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 3600:.1f}"


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
    if isinstance(value, int | float | json_text.Literal | orjson.Fragment):
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
