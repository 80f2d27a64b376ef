"""JSON text as the contract reads it, the same way on both intake paths.

DuckDB (the loader) and orjson (the collector's fast parser) disagree on three things, and the
contract settles each one here so that a message means the same on both paths:

- **Duplicate keys: the first one wins**, as in DuckDB's JSON functions (every extraction of the
  loader and of dbt). orjson keeps the last, so a text whose parse lost members is parsed again,
  keeping the first. The test is cheap: every member has one `:` outside strings and orjson never
  escapes `:`, so re-serializing the parse gives fewer colons exactly when members were dropped
  (or when the text wrote a colon as `\\u003a`, which just takes the exact path).
- **Numbers are kept as written.** orjson turns an integer beyond 64 bits into a rounded double
  and refuses one beyond the double range (1e400); DuckDB keeps the literal. The exact parse
  keeps such numbers as their literal (`Literal`, or an `orjson.Fragment` that orjson writes back
  unchanged), so nothing is rounded on the collector either.
- **Ids that are numbers** (userId, anonymousId, previousId, groupId) need their literal to be
  stored exactly: a message whose id orjson read as a double at or beyond 2^63 is parsed again.

The exact parse is Python's json module, strict the way RFC 8259, orjson and DuckDB are: UTF-8
only, no NaN or Infinity, no lone surrogates (orjson refuses to write them back). It only runs
on the rare texts that need it.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Any
from typing import Literal as Mode

import orjson

# The fields whose numbers are identities, stored as their exact decimal text.
ID_FIELDS = ("userId", "anonymousId", "previousId", "groupId")
# The exact parse reads as deep as orjson does (1,024 levels), so a message nested deeper than
# the contract allows is refused alone (too_deep), never its whole batch. Python's parser
# recurses once per level: the interpreter's limit is raised to leave room above the caller's
# own frames (the collector's are a few dozen); deeper text is refused before parsing.
EXACT_MAX_DEPTH = 1024
_RECURSION_ROOM = 1024
if sys.getrecursionlimit() < EXACT_MAX_DEPTH + _RECURSION_ROOM:
    sys.setrecursionlimit(EXACT_MAX_DEPTH + _RECURSION_ROOM)
_EXACT_INTEGER = 1 << 63  # orjson reads integer literals below this magnitude as ints


class Literal:
    """A number kept as written: an integer beyond 64 bits or a number beyond the double range."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def __repr__(self) -> str:
        return f"Literal({self.text})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Literal) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


NumberMode = Mode["literal", "fragment"]


def loads(data: bytes | str, numbers: NumberMode = "literal") -> Any:
    """Parse JSON text by the contract's rules (see the module doc). Raises ValueError.

    `numbers="fragment"` keeps exact numbers as orjson.Fragment, so the value can be written
    back with orjson.dumps (the collector); `"literal"` as Literal, whose text can be read.
    """
    raw = data.encode() if isinstance(data, str) else data
    try:
        value = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return exact_loads(raw, numbers)  # e.g. 1e400; otherwise it raises too
    if _lost_members(raw, value) or _needs_exact_ids(value):
        return exact_loads(raw, numbers)
    return value


def _lost_members(raw: bytes, value: Any) -> bool:
    if not isinstance(value, dict | list):
        return False
    try:
        written = orjson.dumps(value)
    except orjson.JSONEncodeError:  # deeper than orjson writes (254): count them exactly
        return True
    return written.count(b":") != raw.count(b":")


def _needs_exact_ids(value: Any) -> bool:
    """A message (or a batch of them) with an id orjson may have rounded."""
    if not isinstance(value, dict):
        return False
    if any(type(value.get(name)) is float and abs(value[name]) >= _EXACT_INTEGER
           for name in ID_FIELDS):
        return True
    batch = value.get("batch")
    return isinstance(batch, list) and any(_needs_exact_ids(m) for m in batch if type(m) is dict)


def exact_loads(raw: bytes, numbers: NumberMode = "literal") -> Any:
    """The exact, first-key-wins parse. Raises ValueError on anything orjson would refuse."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"not UTF-8: {exc}") from exc
    def keep(s: str) -> Any:
        return orjson.Fragment(s.encode()) if numbers == "fragment" else Literal(s)

    def integer(s: str) -> Any:
        if len(s) <= 20:  # int() of longer text is slow, and refused past 4300 digits
            number = int(s)
            if -_EXACT_INTEGER <= number < 1 << 64:
                return number
        return keep(s)

    def real(s: str) -> Any:
        number = float(s)
        return number if math.isfinite(number) else keep(s)

    # Python's parser recurses: a cap of its own, so the answer does not depend on the
    # interpreter's recursion limit (a test runner may raise it; the collector does not).
    if raw.count(b"[") + raw.count(b"{") > EXACT_MAX_DEPTH \
            and text_depth(raw)[0] > EXACT_MAX_DEPTH:
        raise ValueError(f"nested deeper than {EXACT_MAX_DEPTH} levels: too deep to parse")
    try:
        value = json.loads(text, object_pairs_hook=_first_wins, parse_int=integer,
                           parse_float=real, parse_constant=_refuse_constant)
    except RecursionError as exc:  # only with a recursion limit set below the cap
        raise ValueError("nested too deeply to parse") from exc
    if _SURROGATE_ESCAPE.search(text) and _has_lone_surrogate(text):
        raise ValueError("a lone surrogate escape is not a character")
    return value


# A \uD800-\uDFFF escape: a valid pair is fine, a lone one (which Python's json takes and
# orjson and DuckDB refuse) is not, even in a member the first-key rule drops.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_ESCAPE = re.compile(r"\\(?:u([0-9a-fA-F]{4})|.)")


def _has_lone_surrogate(text: str) -> bool:
    for string in _STRING.finditer(text):
        # each escape's code unit (0 for \" \\ \n ...) and where it starts and ends
        units = [(int(m[1] or "0", 16), m.start(), m.end())
                 for m in _ESCAPE.finditer(string[0])]
        i = 0
        while i < len(units):
            unit, _, end = units[i]
            if 0xD800 <= unit <= 0xDBFF and i + 1 < len(units) \
                    and 0xDC00 <= units[i + 1][0] <= 0xDFFF and units[i + 1][1] == end:
                i += 2  # a pair, written back to back
                continue
            if 0xD800 <= unit <= 0xDFFF:
                return True
            i += 1
    return False


_TOKENS = re.compile(rb'"(?:[^"\\]|\\.)*"|[\[\]{}:]')


def text_depth(raw: bytes) -> tuple[int, str | None]:
    """The deepest nesting of objects and arrays in JSON text (the record itself is level 1),
    and the top-level field holding it (None when that is not a member of a top-level object).

    Read from the text, skipping strings: a text too deep for a parser still has a depth. On
    text that is not JSON the answer is whatever its brackets say.
    """
    depth = deepest = 0
    key: bytes | None = None
    last_string: bytes | None = None
    field: bytes | None = None
    for token in _TOKENS.findall(raw):
        first = token[:1]
        if first == b'"':
            last_string = token
        elif first == b":":
            if depth == 1:
                key = last_string
        elif first in b"[{":
            depth += 1
            if depth > deepest:
                deepest, field = depth, key if depth > 1 else None
        else:
            depth -= 1
            if depth == 1:
                key = None
    if field is None:
        return deepest, None
    try:
        name = loads(field)
    except ValueError:
        name = None
    return deepest, name if isinstance(name, str) else None


def _first_wins(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        result.setdefault(key, value)
    return result


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not JSON")


def _literal_text(value: Any) -> Any:
    if isinstance(value, Literal):
        return orjson.Fragment(value.text.encode())
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def dumps(value: Any) -> bytes:
    """Compact JSON of a parsed value, literals written back as they were read. Raises
    orjson.JSONEncodeError past 254 levels of nesting (orjson's limit)."""
    return orjson.dumps(value, default=_literal_text)
