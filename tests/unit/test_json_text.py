"""JSON text read by the contract's rules: what DuckDB reads, the collector reads alike."""

from __future__ import annotations

import sys

import duckdb
import orjson
import pytest

from ewh.contract import json_text
from ewh.contract.json_text import Literal


def test_the_first_of_duplicate_keys_wins_at_every_depth_as_in_duckdb() -> None:
    text = b'{"a":1,"b":{"c":"x","c":"y"},"a":2,"d":[{"e":true,"e":false}]}'
    value = json_text.loads(text)
    assert value == {"a": 1, "b": {"c": "x"}, "d": [{"e": True}]}
    with duckdb.connect() as con:
        assert con.execute("select json_extract(?, '$.a')::int, ? ->> '$.b.c', "
                           "json_extract(?, '$.d[0].e')::bool",
                           [text.decode()] * 3).fetchone() == (1, "x", True)


def test_a_colon_written_as_an_escape_is_no_duplicate() -> None:
    # Fewer raw colons than members: the exact parse decides, and finds nothing dropped.
    assert json_text.loads(b'{"a\\u003a":1,"b":"\\u003A"}') == {"a:": 1, "b": ":"}


@pytest.mark.parametrize("text", ["18446744073709551617", "-9223372036854775809", "9" * 5000,
                                  "1e400", "-1E+999"])
def test_numbers_orjson_cannot_hold_are_kept_as_written(text: str) -> None:
    body = f'{{"n":{text},"userId":{text}}}'.encode()
    assert json_text.loads(body) == {"n": Literal(text), "userId": Literal(text)}
    fragments = json_text.loads(body, numbers="fragment")
    assert orjson.dumps(fragments) == body  # written back byte for byte


def test_an_id_orjson_rounds_is_read_again_exactly_in_a_batch_too() -> None:
    body = b'{"batch":[{"userId":18446744073709551617},{"userId":5}]}'
    assert json_text.loads(body) == {"batch": [{"userId": Literal("18446744073709551617")},
                                               {"userId": 5}]}


@pytest.mark.parametrize("text", [
    '{"a":"\\ud800"}', '{"a":"x","a":"\\udc00"}', '{"\\udfff":1}', '{"a":"\\ude00\\ud83d"}',
    '{"a":"\\ud800x\\udc00"}', '{"a":NaN}', '{"a":Infinity}', '{"a":1,}', '\ufeff{"a":1}',
    '{"a":1} x', '',
])
def test_what_duckdb_and_orjson_refuse_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        json_text.loads(text.encode())
    with duckdb.connect() as con:
        valid = con.execute("select json_valid(?)", [text]).fetchone()[0]
    assert not valid or text in ('{"a":1,}', '{"a":NaN}', '{"a":Infinity}')  # lenient DuckDB


def test_a_surrogate_pair_and_an_escaped_backslash_are_fine() -> None:
    assert json_text.loads(b'{"a":"\\ud83d\\ude00","b":"\\\\ud800"}') == {"a": "\U0001F600",
                                                                         "b": "\\ud800"}


def test_text_that_is_not_utf8_is_refused() -> None:
    with pytest.raises(ValueError):
        json_text.loads(b'{"a":"\xff"}')
    with pytest.raises(ValueError):
        json_text.loads('{"a":1}'.encode("utf-16"))


def test_nesting_past_what_orjson_writes_still_parses_exactly() -> None:
    deep = b'{"a":' + b"[" * 300 + b"]" * 300 + b',"a":1}'
    value = json_text.loads(deep)
    assert isinstance(value["a"], list)  # the first "a"
    with pytest.raises(ValueError, match="too deep to parse"):
        json_text.loads(b"[" * 5000 + b"]" * 5000)


def test_how_deep_the_exact_parse_goes_does_not_depend_on_the_recursion_limit() -> None:
    # Found by the fuzz test: under a raised recursion limit (as a test runner may set) a
    # 1,200-level duplicate member parsed in-process, while the collector refused the body.
    text = b'{"a":{},"a":' + b"[" * 1200 + b"]" * 1200 + b"}"
    limit = sys.getrecursionlimit()
    try:
        for setting in (1000, 20_000):
            sys.setrecursionlimit(setting)
            with pytest.raises(ValueError, match="too deep to parse"):
                json_text.loads(text)
    finally:
        sys.setrecursionlimit(limit)
    assert json_text.loads(b'{"a":{},"a":' + b"[" * 500 + b"]" * 500 + b"}") == {"a": {}}
    # as deep as orjson reads (1,024 levels): a message too deep for the contract is then
    # refused alone, not the batch that holds it
    assert json_text.loads(b'{"a":{},"a":' + b"[" * 1022 + b"]" * 1022 + b"}") == {"a": {}}
