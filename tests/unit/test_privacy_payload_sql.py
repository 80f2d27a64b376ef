"""The loader's SQL fast path of the personal-data policy (ewh_protect_payload) against the
policy itself (Protector.payload), on generated messages: every output must be the same.

The generator aims at the boundaries of the fast path: IPs with leading zeros, octets over
255, digits outside ASCII, odd spacing, an upper-case key, two "ip" keys, IPv6, text that only
mentions a marker, and fields the policy must hash or drop. (No email field: its encryption is
random, so two runs of the policy itself differ.)"""

from __future__ import annotations

import dataclasses
import json

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ewh.privacy.keys import PrivacyKeys
from ewh.privacy.policy import Protector
from ewh.privacy.udf import register_privacy_functions

IPS = ["1.2.3.4", "10.0.0.255", "010.001.002.003", "255.255.255.255", "256.1.1.1",
       "1.2.3.256", "1.2.3", "1.2.3.4.5", "١.٢.٣.٤", "1.2.3.4 ", " 1.2.3.4", "::1",
       "2001:db8::1", "", "a.b.c.d", "999.999.999.999", "0.0.0.0", "1.2.3.04",
       "01.2.3.4", "1.02.3.4", "1.2.00.4", "199.249.250.1"]
KEYS = ["ip", "IP", "Ip", "page", "path", "note", "phone", "name", "traits", "email_hint",
        "Loyalty_Card"]
VALUES = st.one_of(st.sampled_from(IPS), st.sampled_from(["email", "ip", '"ip"', "x", ""]),
                   st.integers(-5, 300), st.booleans(), st.none())


def _objects(depth: int) -> st.SearchStrategy:
    leaf = st.dictionaries(st.sampled_from(KEYS), VALUES, max_size=3)
    if depth == 0:
        return leaf
    return st.dictionaries(st.sampled_from(KEYS + ["context", "properties"]),
                           st.one_of(VALUES, _objects(depth - 1)), max_size=3)


# Most real messages carry only a context.ip that is personal; some carry more.
PLAIN = st.fixed_dictionaries(
    {"type": st.just("track"), "messageId": st.text(min_size=1, max_size=8),
     "context": st.fixed_dictionaries({"ip": st.sampled_from(IPS)},
                                      optional={"page": _objects(0)})})
MIXED = st.fixed_dictionaries(
    {"type": st.just("track"), "messageId": st.text(min_size=1, max_size=8),
     "context": st.one_of(
         st.fixed_dictionaries({"ip": st.sampled_from(IPS)},
                               optional={"IP": VALUES, "page": _objects(0),
                                         "traits": _objects(0)}),
         _objects(1))},
    optional={"properties": _objects(1), "traits": _objects(0)})
MESSAGES = st.one_of(PLAIN, MIXED)
# How the text is laid out around ':' and ',' (the fast path must not depend on it).
SEPARATORS = st.sampled_from([(",", ":"), (", ", ": "), (",", " : "), (",\t", ":\t"),
                              (",", ":\n ")])


class Policy:
    """A DuckDB connection with the loader's functions, and the Protector they use."""

    def __init__(self, personal_traits: tuple[str, ...] = ()) -> None:
        keys = PrivacyKeys.from_settings()
        self.protector = Protector(dataclasses.replace(keys, personal_traits=personal_traits))
        self.con = duckdb.connect(":memory:")
        register_privacy_functions(self.con, self.protector)

    def sql(self, text: str | None) -> str | None:
        [(value,)] = self.con.execute("select ewh_protect_payload(?)", [text]).fetchall()
        return value


@pytest.fixture(scope="module", params=[(), ("loyalty_card",)], ids=["default", "traits"])
def policy(request) -> Policy:
    """The default policy, and one with a personal trait (EWH_PERSONAL_TRAITS)."""
    return Policy(request.param)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(message=MESSAGES, separators=SEPARATORS)
def test_the_sql_fast_path_gives_the_policy_s_answer(policy, message, separators) -> None:
    text = json.dumps(message, separators=separators, ensure_ascii=False)
    assert policy.sql(text) == policy.protector.payload(text), text


@pytest.mark.parametrize(("text", "expected"), [
    # worked out by hand from the policy's words: context.ip truncated to its /24
    ('{"context":{"ip":"203.0.113.77"}}', '{"context":{"ip":"203.0.113.0"}}'),
    ('{"context":{"ip" : "010.001.002.003"}}', '{"context":{"ip":"10.1.2.0"}}'),
    ('{"a":1}', '{"a":1}'),
    (None, None),
])
def test_known_answers(policy, text, expected) -> None:
    assert policy.sql(text) == expected


def test_the_common_message_never_reaches_python(policy) -> None:
    """The point of the fast path: a message with only an IPv4 context.ip is settled in SQL."""
    calls = []
    protector = policy.protector
    original = protector.payload
    protector.payload = lambda t: calls.append(t) or original(t)
    try:
        policy.con.execute("select ewh_protect_payload('{\"context\":{\"ip\":\"1.2.3.4\"}}' || i) "
                    "from range(1000) as r(i)").fetchall()
    finally:
        protector.payload = original
    assert calls == []
