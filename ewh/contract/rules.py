"""Compile the versioned JSON Schemas in schemas/<version>/ into an ordered list of checks.

The schemas are the single source of truth of the event contract. Two validators are built
from the rules compiled here: the Python one (ewh.contract.validator, used by the collector)
and the SQL one (ewh.contract.sql, used by the loader inside DuckDB). Only a small, closed
vocabulary of JSON Schema keywords is understood; anything else raises ContractSchemaError,
so a schema can never state a rule that neither validator enforces.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any, Literal

from ewh.contract.vocabulary import MESSAGE_TYPES

CONTRACT_VERSION = "v1"
SCHEMA_DIR = Path(__file__).resolve().parent / "schemas"
MESSAGE_TYPE_FILES = MESSAGE_TYPES  # one schema file per message type

# Every rejection reason either validator can give, in the order the checks run.
REJECTION_REASONS = ("oversize", "too_deep", "invalid_json", "not_an_object",
                     "unknown_message_type", "missing_field", "wrong_type", "invalid_id",
                     "invalid_timestamp", "timestamp_before_floor", "future_timestamp")

RuleKind = Literal["required_string", "identity", "optional_string", "object", "datetime",
                   "identity_group"]
# The earliest time accepted unless EWH_TIMESTAMP_FLOOR says otherwise: before it, a device
# clock was not set (1970 is the usual culprit).
DEFAULT_TIMESTAMP_FLOOR = datetime(2000, 1, 1)
TIMESTAMP_EXPECTATION = ("expected an ISO-8601 date-time with a timezone, "
                         "e.g. 2026-10-01T12:00:00Z.")

_ANNOTATIONS = {"$schema", "$id", "title", "description", "x-ewh-column"}
_FIELD_KEYWORDS = {"type", "minLength", "pattern", "format", "const", "$ref"} | _ANNOTATIONS
_ROOT_KEYWORDS = {"type", "required", "properties", "anyOf", "x-ewh-max-bytes",
                  "x-ewh-max-depth", "x-ewh-time-range"} | _ANNOTATIONS


class ContractSchemaError(ValueError):
    """A schema uses a keyword or shape the compilers do not understand."""


@dataclass(frozen=True, slots=True)
class FieldRule:
    """One check on one field, in the order the schema lists its properties."""

    kind: RuleKind
    field: str  # for identity_group: "userId/anonymousId"
    column: str | None = None  # the raw.events column the value goes to (x-ewh-column)
    pattern: str | None = None  # datetime: the shape regex; identities and group: non-blank
    members: tuple[str, ...] = ()  # identity_group: the fields of which one must be present


@dataclass(frozen=True, slots=True)
class TimeRule:
    """The range of a message's times (x-ewh-time-range).

    `received_at` may be at most `hours` after the intake time (when the message came in, or
    was loaded); `timestamp` and `sent_at` at most `hours` after `received_at`, and so may
    `timestamp` once corrected for clock skew by `sent_at`. None of the three may be before the
    floor, a setting (EWH_TIMESTAMP_FLOOR) passed to both validators at run time.
    """

    timestamp: str
    sent_at: str
    received_at: str
    hours: int


@dataclass(frozen=True, slots=True)
class TypeContract:
    message_type: str
    rules: tuple[FieldRule, ...]
    max_bytes: int
    max_depth: int
    times: TimeRule

    def column_field(self, column: str) -> str | None:
        """The field that feeds a raw.events column for this type (e.g. event_name: event)."""
        return next((r.field for r in self.rules if r.column == column), None)


@dataclass(frozen=True, slots=True)
class Contract:
    version: str
    types: dict[str, TypeContract]
    max_bytes: int
    max_depth: int
    max_ahead_hours: int

    @property
    def message_types(self) -> tuple[str, ...]:
        return tuple(self.types)


@cache
def load_contract(version: str = CONTRACT_VERSION) -> Contract:
    """The compiled contract of a schema version (cached: the files do not change at run time)."""
    folder = SCHEMA_DIR / version
    defs = _read(folder / "common.json").get("$defs", {})
    types = {name: _compile_type(_read(folder / f"{name}.json"), defs)
             for name in MESSAGE_TYPE_FILES}
    limits = {(t.max_bytes, t.max_depth, t.times.hours) for t in types.values()}
    if len(limits) != 1:
        raise ContractSchemaError("every message type must declare the same x-ewh-max-bytes, "
                                  "x-ewh-max-depth and maxAheadHours")
    max_bytes, max_depth, hours = limits.pop()
    return Contract(version, types, max_bytes, max_depth, hours)


def schema_documents(version: str = CONTRACT_VERSION) -> dict[str, dict[str, Any]]:
    """Every schema file of a version by file name (for standard JSON Schema validators)."""
    return {p.name: _read(p) for p in sorted((SCHEMA_DIR / version).glob("*.json"))}


def _read(path: Path) -> dict[str, Any]:
    return json.loads(path.read_text())


def _compile_type(schema: dict[str, Any], defs: dict[str, Any]) -> TypeContract:
    _only(schema, _ROOT_KEYWORDS, "the root")
    if schema.get("type") != "object":
        raise ContractSchemaError("a message schema must be of type object")
    properties: dict[str, Any] = schema["properties"]
    required = set(schema.get("required", []))
    message_type = properties["type"].get("const")
    if not isinstance(message_type, str) or "type" not in required:
        raise ContractSchemaError("`type` must be required and a const string")
    group = _identity_group(schema.get("anyOf", []), defs)
    last_member = max(list(properties).index(m) for m in group.members)
    rules: list[FieldRule] = []
    for position, (name, spec) in enumerate(properties.items()):
        if name != "type":
            rule = _field_rule(name, spec, defs, name in required)
            if rule.kind == "identity":  # blank ids count as absent: one definition of blank
                rule = replace(rule, pattern=group.pattern)
            rules.append(rule)
        if position == last_member:
            rules.append(group)
    times = schema["x-ewh-time-range"]
    return TypeContract(
        message_type, tuple(rules), int(schema["x-ewh-max-bytes"]), int(schema["x-ewh-max-depth"]),
        TimeRule(times["timestamp"], times["sentAt"], times["receivedAt"],
                 int(times["maxAheadHours"])),
    )


def _identity_group(any_of: list[dict[str, Any]], defs: dict[str, Any]) -> FieldRule:
    members: list[str] = []
    patterns: set[str | None] = set()
    for branch in any_of:
        [member] = branch["required"]
        present = _resolve(branch["properties"][member], defs)
        if set(_types(present)) - {"string", "integer"}:
            raise ContractSchemaError("an identity alternative must be a string or an integer")
        members.append(member)
        patterns.add(present.get("pattern"))
    if not members or len(patterns) != 1:
        raise ContractSchemaError("anyOf must list identity alternatives sharing one pattern")
    return FieldRule("identity_group", "/".join(members), pattern=patterns.pop(),
                     members=tuple(members))


def _field_rule(name: str, spec: dict[str, Any], defs: dict[str, Any],
                required: bool) -> FieldRule:
    column = spec.get("x-ewh-column")
    resolved = _resolve(spec, defs)
    _only(resolved, _FIELD_KEYWORDS, f"field {name}")
    types = set(_types(resolved))
    if resolved.get("format") == "date-time":
        if types != {"string", "null"} or "pattern" not in resolved:
            raise ContractSchemaError(f"{name}: a date-time must be a nullable string + pattern")
        return FieldRule("datetime", name, column, pattern=resolved["pattern"])
    if types == {"string"} and required and resolved.get("minLength") == 1:
        return FieldRule("required_string", name, column)
    if types == {"string", "integer", "null"} and not required:
        return FieldRule("identity", name, column)
    if types == {"string", "null"} and not required:
        return FieldRule("optional_string", name, column)
    if types == {"object", "null"} and not required:
        return FieldRule("object", name, column)
    raise ContractSchemaError(f"{name}: no check compiles from {resolved}")


def _resolve(spec: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = spec.get("$ref")
    if ref is None:
        return spec
    prefix = "common.json#/$defs/"
    if not ref.startswith(prefix) or ref[len(prefix):] not in defs:
        raise ContractSchemaError(f"unresolvable $ref {ref}")
    return defs[ref[len(prefix):]]


def _types(spec: dict[str, Any]) -> list[str]:
    value = spec.get("type")
    return [value] if isinstance(value, str) else list(value or [])


def _only(spec: dict[str, Any], allowed: set[str], where: str) -> None:
    unknown = set(spec) - allowed
    if unknown:
        raise ContractSchemaError(f"{where}: unsupported keywords {sorted(unknown)}")
