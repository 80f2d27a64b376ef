"""Hypothesis strategies for Segment messages: plausible ones, wrong ones, and their text mutated.

Shared by the contract's property test and the fuzz test of both intake paths. Times are drawn
around a given `now` (the intake time), away from the contract's exact 24 h bound, where the
few milliseconds between two intakes could decide. The text of a message never holds a newline
or CR (it must stay one NDJSON line) nor starts with a byte-order mark (a file's, not a
message's), and no field is named `ewh` (the collector's own notes in context).
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

from hypothesis import strategies as st

from ewh.contract.vocabulary import MESSAGE_TYPES

KEYS = st.text(alphabet="abcdefgxyz_", min_size=1, max_size=6)
_SCALARS = (st.none() | st.booleans() | st.integers(-(2**70), 2**70)
            | st.floats(allow_nan=False, allow_infinity=False) | st.text(max_size=12))
JSON_VALUES = st.recursive(
    _SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=4),
    max_leaves=12)
_DAY = 86_400


def mostly(good: st.SearchStrategy[Any], bad: st.SearchStrategy[Any],
           odds: int = 4) -> st.SearchStrategy[Any]:
    """`good` `odds` times out of `odds + 1`: most messages pass, so what they carry is tested
    past the first check."""
    return st.sampled_from([good] * odds + [bad]).flatmap(lambda strategy: strategy)


GOOD_IDS = st.text(min_size=1, max_size=16).filter(str.strip) | st.integers(-(2**70), 2**70)
BAD_IDS = (st.just("") | st.just("   ") | st.floats(allow_nan=False, allow_infinity=False)
           | st.booleans() | st.none() | st.lists(st.integers(), max_size=2))
IDS = mostly(GOOD_IDS, BAD_IDS)
_FIXED_TIMES = ["9999-12-31T23:59:59Z", "1970-01-01T00:00:00Z", "1999-12-31T23:59:59.999Z",
                "2000-01-01T00:00:00Z", "2026-02-30T00:00:00Z", "2026-10-01T12:00:00",
                "yesterday", "", "2026-10-01T12:00:00.123456789+05:30"]


def times(now: datetime) -> st.SearchStrategy[Any]:
    """Mostly an instant within 400 days before `now` or up to 23 h after it; else one in the
    far future, before the floor, malformed, or not a string. Never within 2 minutes of
    `now` +- 24 h."""
    def near(low: int, high: int) -> st.SearchStrategy[str]:
        offsets = st.integers(low, high).filter(lambda s: abs(abs(s) - _DAY) > 120)
        return st.tuples(offsets.map(lambda s: now + timedelta(seconds=s)),
                         st.sampled_from(["Z", "+00:00", "+02:00", "-05:30"])).map(
            lambda t: _iso(*t))

    odd = near(-400 * _DAY, 400 * _DAY) | st.sampled_from(_FIXED_TIMES) | st.integers()
    return mostly(near(-400 * _DAY, _DAY - 3600), odd, odds=3)


def _iso(moment: datetime, zone: str) -> str:
    shift = {"Z": 0, "+00:00": 0, "+02:00": 120, "-05:30": -330}[zone]
    return (moment + timedelta(minutes=shift)).isoformat(timespec="milliseconds") + zone


def messages(now: datetime) -> st.SearchStrategy[dict[str, Any]]:
    """A message of any type, its fields mostly right (never `receivedAt`: the collector sets
    it, so a client's is not the same message on both paths)."""
    objects = mostly(st.dictionaries(KEYS, JSON_VALUES, max_size=5), JSON_VALUES)
    names = mostly(st.text(min_size=1, max_size=12), st.just("") | st.integers() | st.none())
    message_type = mostly(st.sampled_from(MESSAGE_TYPES),
                          st.sampled_from(["click", "Track", ""]))
    message_id = mostly(st.uuids().map(str), st.just("") | st.integers() | st.none())
    return st.fixed_dictionaries(
        {"type": message_type, "messageId": message_id, "userId": IDS},
        optional={"anonymousId": IDS, "previousId": IDS, "groupId": IDS, "event": names,
                  "name": names, "properties": objects, "traits": objects, "context": objects,
                  "timestamp": times(now), "sentAt": times(now)})


_MUTATION_CHARS = list('{}[],:"\\ 0e.-+tnfu')


def to_text(message: object) -> str:
    """Compact JSON, integers of any size included (orjson stops at 64 bits)."""
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


@st.composite
def texts(draw: st.DrawFn, now: datetime) -> str:
    """A message as one line of text, often changed after it was written: a duplicate key, deep
    nesting, a number no double holds, a size near the limit, a byte changed or cut."""
    message = draw(messages(now))
    text = to_text(message)
    mutation = draw(st.sampled_from(["none", "none", "duplicate", "deep", "number", "size",
                                     "byte", "cut"]))
    if mutation == "duplicate":
        key = draw(st.sampled_from(["userId", "type", "event", "timestamp", "messageId"]))
        value = json.dumps(draw(IDS | times(now)))
        text = f'{{"{key}":{value},' + text[1:] if draw(st.booleans()) else \
            text[:-1] + f',"{key}":{value}}}'
    elif mutation == "deep":
        levels = draw(st.sampled_from([10, 62, 63, 64, 65, 200, 300, 1200]))
        text = text[:-1] + ',"properties":' + "[" * levels + "]" * levels + "}"
    elif mutation == "number":
        number = draw(st.sampled_from(["1e400", "-1E+999", "18446744073709551617",
                                       "-9223372036854775809", "9" * 40, "7.0", "1e300"]))
        key = draw(st.sampled_from(["userId", "anonymousId", "n"]))
        text = f'{{"{key}":{number},' + text[1:] if text.startswith("{") else text
    elif mutation == "size":
        target = draw(st.integers(32_700, 32_830))
        blob = '"blob":"' + "x" * max(0, target - len(text) - 10) + '"'
        text = text[:-1] + ("," if len(text) > 2 else "") + blob + "}"
    elif mutation in ("byte", "cut") and text:
        at = draw(st.integers(0, len(text) - 1))
        text = text[:at] if mutation == "cut" else (
            text[:at] + draw(st.sampled_from(_MUTATION_CHARS)) + text[at + 1:])
    return text.replace("\n", " ").replace("\r", " ").lstrip("\ufeff")
