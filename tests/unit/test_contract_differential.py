"""The SQL validator (loader) and the Python validator (collector) are one contract.

Both are compiled from ewh/contract/schemas/v1; on every record of a corpus of good and bad records,
covering every rejection reason, they must give the same verdict, reason, field and detail, and
the same normalized columns. A stock JSON Schema validator must agree on what is structurally
valid, which shows the schema files say what the validators enforce.
"""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import jsonschema
import pytest
import referencing

from ewh.contract.rules import (
    REJECTION_REASONS,
    ContractSchemaError,
    _compile_type,
    load_contract,
    schema_documents,
)
from ewh.contract.sql import check_query, detail_sql, verdict_query
from ewh.contract.validator import (
    DEFAULT_TIMESTAMP_FLOOR,
    AcceptedEvent,
    Rejection,
    validate_text,
)
from ewh.ingest.loader import NDJSON_LINES, load_files
from ewh.ingest.readers import _record_table, _split_lines
from ewh.privacy.keys import PrivacyKeys
from ewh.privacy.policy import Protector

RECEIVED_DEFAULT = datetime(2026, 10, 1, 12, 30)
FLOOR = DEFAULT_TIMESTAMP_FLOOR
PREFIX = "file:/landing/corpus.ndjson"
_DROP = object()

_BASE: dict[str, dict[str, Any]] = {
    "track": {"type": "track", "messageId": "t-1", "userId": "u-1", "anonymousId": "a-1",
              "event": "Product Added", "properties": {"price": 9.5},
              "context": {"consent": {"categoryPreferences": {"analytics": True}}},
              "timestamp": "2026-10-01T12:00:00.000Z", "sentAt": "2026-10-01T12:00:01Z",
              "receivedAt": "2026-10-01T12:00:02.5Z"},
    "identify": {"type": "identify", "messageId": "i-1", "userId": "u-1",
                 "traits": {"tags": ["vip"]}, "timestamp": "2026-10-01T12:00:00Z"},
    "page": {"type": "page", "messageId": "p-1", "anonymousId": "a-1", "name": "Pricing",
             "properties": {"path": "/pricing"}, "timestamp": "2026-10-01T14:00:00+02:00"},
    "screen": {"type": "screen", "messageId": "s-1", "userId": 42, "name": "Home"},
    "alias": {"type": "alias", "messageId": "al-1", "userId": "u-1", "previousId": "a-1"},
    "group": {"type": "group", "messageId": "g-1", "userId": "u-1", "groupId": "acme",
              "traits": {"plan": "pro"}},
}


def _m(message_type: str, **changes: Any) -> str:
    message = dict(_BASE[message_type])
    for key, value in changes.items():
        if value is _DROP:
            message.pop(key, None)
        else:
            message[key] = value
    return json.dumps(message, ensure_ascii=False)


def _nest(levels: int) -> Any:
    """`levels` arrays, one inside the other."""
    value: Any = []
    for _ in range(levels - 1):
        value = [value]
    return value


def _sized(total: int, **extra: Any) -> str:
    """A compact track message of exactly `total` bytes, then `extra` fields added."""
    message = {**_BASE["track"], "properties": {"blob": ""}}
    message.pop("receivedAt")
    pad = total - len(json.dumps(message, separators=(",", ":")))
    message["properties"] = {"blob": "x" * pad}
    for key, value in extra.items():
        message[key] = {**message.get(key, {}), **value} if isinstance(value, dict) else value
    return json.dumps(message, separators=(",", ":"))


def _corpus() -> list[str]:
    good = [_m(t) for t in _BASE]
    good += [
        _m("track", userId=_DROP), _m("track", anonymousId=_DROP), _m("track", userId=""),
        _m("track", userId="   ", anonymousId="a-2"),
        _m("track", userId=-0), _m("track", userId=123456789012),
        # numeric ids beyond 64 bits keep their digits (json.dumps writes them exactly)
        _m("track", userId=2**64 + 1), _m("track", anonymousId=-(2**63) - 1),
        _m("alias", previousId=12345), _m("group", groupId=2**70),
        # duplicate keys: the first wins, at every depth
        '{"type":"track","messageId":"dup-1","userId":"first","userId":"second","event":"E"}',
        '{"type":"track","messageId":"dup-2","userId":"u","event":"E","event":5,'
        '"properties":{"a":1,"a":[2]}}',
        # numbers beyond the double range are kept as written
        '{"type":"track","messageId":"n-1","userId":"u","event":"E",'
        '"properties":{"big":1e400,"neg":-1E+999,"long":' + "9" * 400 + '}}',
        # the bounds of the time range, exactly: the floor, 24 h after the intake time
        # (2026-10-01 12:30), sentAt 24 h after receivedAt
        _m("track", timestamp="2000-01-01T00:00:00Z", sentAt=_DROP),
        _m("page", receivedAt="2026-10-02T12:30:00Z"),
        _m("track", sentAt="2026-10-02T12:00:02.5Z"),
        # 64 levels deep, with more brackets than that: the Python validator decides, and agrees
        _m("track", properties={"a": _nest(62), "b": [[] for _ in range(40)]}),
        # what the first-key rule drops counts for nothing: neither its depth nor its size
        '{"type":"track","messageId":"drop-1","userId":"u","event":"E","properties":{},'
        '"properties":' + "[" * 100 + "]" * 100 + "}",
        '{"type":"track","messageId":"drop-2","userId":"u","event":"E","properties":{},'
        '"properties":{"blob":"' + "x" * 40_000 + '"}}',
        # over 32 KB only with what the collector adds (receivedAt, context.ewh)
        _sized(32_768, receivedAt="2026-10-01T12:00:02.5Z",
               context={"ewh": {"consent": "unknown"}}),
        _m("track", timestamp="2026-10-01T14:00:00.123456789+05:30"),
        _m("track", timestamp="2026-10-01 12:00Z", sentAt=_DROP),
        _m("track", timestamp="2026-10-01T12:00:00+0200", sentAt="2026-10-01T10:00:01Z"),
        _m("track", sentAt=None, receivedAt=None, timestamp=None),
        _m("track", receivedAt=_DROP), _m("track", properties=None, context=None),
        _m("track", event="Ünïcödé 🎉 事件", userId="用户-1", properties={"q": "naïve \n \t"}),
        _m("track", sentAt=_DROP, timestamp="2026-10-02T12:00:02.5Z"),  # exactly 24 h ahead
        _m("page", name=None), _m("page", name=_DROP), _m("screen", userId=-5),
        _m("identify", traits={}, context={"ip": "127.0.0.1"}),
        '  {"type":"alias","messageId":"ws-1","userId":"u"}  ',
        '{"type":"group","messageId":"esc-\\u00e9","anonymousId":"a\\"b"}',
        _m("track", extra={"deep": [1, {"x": None}]}),
        # strings holding what would be lenient tokens outside a string are fine
        _m("track", properties={"s": "info, ], NaN, inf, 1e400 ,}", "e": 1e300, "big": 2**70,
                                "tiny": 1e-300, "frac": float("0." + "1" * 30)}),
        _m("track", properties={"q": 'a \\" ,] still a string'}),
    ]
    bad = [
        # oversize
        _m("track", properties={"blob": "x" * 33_000}),
        _sized(32_769, receivedAt="2026-10-01T12:00:02.5Z"),
        # 32 KB of text, but orjson writes 1e15 as 1000000000000000.0: the compact JSON is over
        '{"type":"track","messageId":"exp-1","userId":"u","event":"E","p":['
        + ",".join(["1e15"] * 6_500) + "]}",
        # too_deep
        _m("track", properties={"a": _nest(63)}),
        ('{"type":"identify","messageId":"i-deep","userId":"u","traits":{"t":'
         + "[" * 3000 + "]" * 3000 + "}}"),
        # invalid_id
        _m("track", anonymousId=7.0), _m("track", userId=1e300), _m("alias", previousId=1.5),
        '{"type":"track","messageId":"m","userId":1E3,"event":"E"}',
        '{"type":"track","messageId":"m","userId":18446744073709551617.0,"event":"E"}',
        '{"type":"group","messageId":"m","userId":"u","groupId":-1e400}',
        # the first of two keys decides
        '{"type":"track","messageId":"m","userId":"u","event":5,"event":"E"}',
        _m("group", groupId=True),
        # timestamp_before_floor
        _m("track", timestamp="1970-01-01T00:00:00Z", sentAt=_DROP),
        _m("identify", sentAt="1999-12-31T23:59:59.999Z"),
        _m("track", receivedAt="1999-12-31T23:59:59Z"),
        # invalid_json
        "{not json", '{"type": "track", "messageId": ', "", "nul", '{"a":1} trailing',
        '{"type":"track","messageId":"m","userId":"u","event":"E",}', "NaN",
        '{"type":"track","messageId":"m","userId":"u","event":"E","properties":{"a":[1,]}}',
        '{"type":"track","messageId":"m","userId":"u","event":"E","properties":{"a":NaN}}',
        '{"type":"track","messageId":"m","userId":"u","event":"E","properties":{"a":-Infinity}}',
        '{"type":"track","messageId":"m","userId":"u","event":"E","properties":{"a":inf}}',
        '{"type":"track","messageId":"m","userId":"u","event":"E" , "p":[nan , 1]}',
        '{"type":"track","messageId":"m","userId":"u","event":"E","p":{"a":[1,2] ,\n}}',
        # shaped like an object, but not JSON
        '{"type":"track","messageId":"m" "userId":"u"}', '{"type":"track",,"messageId":"m"}',
        '{"type":"track","messageId":"m","userId":"u","event":"E"}}', "{}}", "{",
        # not_an_object
        "[1, 2]", '"a string"', "42", "null", "true", "[]",
        # unknown_message_type
        _m("track", type="click"), _m("track", type="Track"), _m("track", type=_DROP),
        _m("track", type=None), _m("track", type=5), _m("track", type=["track"]),
        _m("track", type="x" * 200),
        # missing_field
        _m("track", messageId=_DROP), _m("track", messageId=None), _m("track", messageId=""),
        _m("track", userId=_DROP, anonymousId=_DROP), _m("track", userId="", anonymousId=None),
        _m("track", userId=" \t", anonymousId=_DROP), _m("track", event=_DROP),
        _m("track", event=""), _m("track", event=None),
        # wrong_type
        _m("track", messageId=123), _m("track", messageId=True), _m("track", messageId={"a": 1}),
        _m("track", userId=True), _m("track", userId={"id": 1}), _m("track", userId=[1]),
        _m("track", userId=1.5), _m("track", anonymousId=False), _m("track", event=5),
        _m("track", event=["E"]), _m("page", name=3), _m("screen", name={"n": 1}),
        _m("track", properties=["not", "an", "object"]), _m("identify", traits="vip"),
        _m("track", context=7), _m("group", traits=True),
        # invalid_timestamp
        _m("track", timestamp="2026-10-01T12:00:00"), _m("track", timestamp="yesterday"),
        _m("track", timestamp="2026-13-01T00:00:00Z"), _m("track", timestamp="2026-02-30T00:00Z"),
        _m("track", timestamp="2026-10-01"), _m("track", timestamp=1727784000),
        _m("track", timestamp=True), _m("track", timestamp={"t": 1}),
        _m("track", timestamp="2026-10-01T24:00:00Z"),
        _m("track", timestamp="2026-10-01T23:59:60Z"),
        _m("track", timestamp="20261001T120000Z"), _m("track", timestamp="2026-10-01T12:00:00z"),
        _m("track", timestamp="0999-10-01T12:00:00Z"), _m("track", sentAt="2026-10-01T12:00:00,5Z"),
        _m("track", receivedAt="2026-10-01T12:00:00Z\n"), _m("track", timestamp="é" * 120),
        _m("track", timestamp='quote " and \\ and \n newline'),
        _m("page", sentAt="2026-10-01T12:00:00.1234567890Z"),
        # future_timestamp
        _m("track", sentAt=_DROP, timestamp="2026-10-02T12:00:02.501Z"),
        _m("track", timestamp="9999-12-31T23:59:59Z", sentAt="9999-12-31T23:59:59Z"),
        _m("track", timestamp="2026-10-04T12:00:00Z", sentAt="2026-10-04T12:00:05Z"),
        _m("track", sentAt="2026-10-02T12:00:02.501Z"),
        _m("page", receivedAt="2026-10-02T12:30:00.001Z"),
        _m("track", timestamp="2026-10-02T13:00:00Z", sentAt="2026-10-01T12:00:00Z"),
        _m("identify", timestamp="2099-01-01T00:00:00Z"),
        _m("page", timestamp="2026-10-03T00:00:00Z", receivedAt=_DROP),
    ]
    return good + bad


CORPUS = _corpus()


def _sql_results(lines: list[str], *, read_as: str = "records",
                 tmp_path: Path | None = None) -> list[tuple[Any, ...]]:
    """The SQL verdicts, on records as the loader reads them: one by one (suspect unknown),
    split from an NDJSON block by ewh.ingest.readers (suspect computed), or read from an NDJSON
    file by DuckDB (suspect found in SQL). None of the three may change any verdict."""
    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    params = {"source_prefix": PREFIX, "received_default": RECEIVED_DEFAULT,
              "timestamp_floor": FLOOR}
    if read_as == "duckdb":
        assert tmp_path is not None
        path = tmp_path / "corpus.ndjson"
        path.write_bytes(b"".join(line.encode() + b"\n" for line in lines))
        verdicts = verdict_query(NDJSON_LINES, ("blank",))
        source = f"'{PREFIX}:' || n"
        rows = con.execute(
            f"select n, {source}, raw_text, reason, field, {detail_sql(source)}, "
            "rejected_message_id, message_id, message_type, event_name, user_id, anonymous_id, "
            "occurred_at, sent_at, received_at, payload, needs_python "
            f"from (select row_number() over () as n, * from ({verdicts})) where not blank",
            {"path": str(path), "received_default": RECEIVED_DEFAULT,
             "timestamp_floor": FLOOR}).fetchall()
        con.close()
        return rows
    if read_as == "ndjson_block":
        block = b"".join(line.encode() + b"\n" for line in lines)
        chunk, _ = _split_lines(block, 0)
        assert chunk.num_rows == len(lines)  # no corpus line is blank
    else:
        chunk = _record_table(list(range(1, len(lines) + 1)), [line.encode() for line in lines])
    con.register("chunk", chunk)
    rows = con.execute(check_query("chunk") + " order by record_number", params).fetchall()
    con.close()
    return rows


def _python_view(result: AcceptedEvent | Rejection) -> tuple[Any, ...]:
    if isinstance(result, Rejection):
        return ("rejected", result.reason, result.field, result.detail, result.message_id)
    return ("accepted", result.message_id, result.message_type, result.event_name,
            result.user_id, result.anonymous_id, result.occurred_at, result.sent_at,
            result.received_at, result.payload)


def _sql_view(row: tuple[Any, ...]) -> tuple[Any, ...]:
    (_, _, _, reason, field, detail, rejected_id, message_id, message_type, event_name, user_id,
     anonymous_id, occurred_at, sent_at, received_at, payload, needs_python) = row
    if needs_python:
        return ("python",)  # the loader asks the Python validator (tested apart)
    if reason is not None:
        return ("rejected", reason, field, detail, rejected_id)
    return ("accepted", message_id, message_type, event_name, user_id, anonymous_id,
            occurred_at, sent_at, received_at, payload)


@pytest.mark.parametrize("read_as", ["records", "ndjson_block", "duckdb"])
def test_sql_and_python_validators_agree_on_every_record_of_the_corpus(
        read_as: str, tmp_path: Path) -> None:
    # An NDJSON file cannot hold a blank record or one with a raw newline.
    lines = [x for x in CORPUS if x.strip() and "\n" not in x] if read_as != "records" else CORPUS
    rows = _sql_results(lines, read_as=read_as, tmp_path=tmp_path)
    disagreements = []
    for number, (line, row) in enumerate(zip(lines, rows, strict=True), start=1):
        python = _python_view(validate_text(line.encode(), f"{PREFIX}:{number}", RECEIVED_DEFAULT))
        if python != _sql_view(row) and _sql_view(row) != ("python",):
            disagreements.append((number, line[:100], python, _sql_view(row)))
    assert disagreements == []


def _loader_verdicts(lines: list[str]) -> list[tuple[str | None, str | None]]:
    """(reason, message_type) of each line as the loader settles it: the SQL verdict, or the
    Python validator's for the rows the SQL flags (ewh.ingest.record_checks does the same)."""
    verdicts = []
    for number, (line, row) in enumerate(zip(lines, _sql_results(lines), strict=True), 1):
        if row[-1]:  # needs_python
            result = validate_text(line.encode(), f"{PREFIX}:{number}", RECEIVED_DEFAULT)
            verdicts.append((getattr(result, "reason", None),
                             getattr(result, "message_type", None)))
        else:
            verdicts.append((row[3], row[8]))
    return verdicts


def test_the_corpus_covers_every_rejection_reason_and_accepts_every_message_type() -> None:
    verdicts = _loader_verdicts(CORPUS)
    assert {reason for reason, _ in verdicts if reason} == set(REJECTION_REASONS)
    accepted = [message_type for reason, message_type in verdicts if reason is None]
    assert set(accepted) == set(load_contract().message_types)
    assert len(accepted) == 43  # the good list: 6 bases + 37 variants


def test_only_the_rare_records_are_left_to_python() -> None:
    rows = _sql_results(CORPUS)
    flagged = [line for line, row in zip(CORPUS, rows, strict=True) if row[-1]]
    # over 32,768 bytes: three, one of them only with the additions, and one whose size is a
    # dropped duplicate; deep: three, and one whose depth is a dropped duplicate; one that
    # grows past the limit when written compact
    assert len(flagged) == 9
    assert all(len(line) > 32_768 // 5 or line.count("[") + line.count("{") > 64
               for line in flagged)


def test_a_non_utf8_record_is_invalid_json_in_both_and_keeps_its_bytes_visible() -> None:
    line = b'{"type":"track","messageId":"\xff"}'
    python = validate_text(line, f"{PREFIX}:1", RECEIVED_DEFAULT)
    con = duckdb.connect()
    con.register("chunk", _record_table([1], [line]))
    [row] = con.execute(check_query("chunk"), {"source_prefix": PREFIX,
                                               "received_default": RECEIVED_DEFAULT,
                                               "timestamp_floor": FLOOR}).fetchall()
    assert isinstance(python, Rejection)
    assert (python.reason, row[3]) == ("invalid_json", "invalid_json")
    assert python.detail == row[5]
    assert "\\xFF" in row[2]  # raw_text shows the undecodable byte


def test_a_number_beyond_the_double_range_is_accepted_by_both_and_kept_as_written() -> None:
    # DuckDB keeps the literal; orjson refuses it, so the Python side parses such text again,
    # exactly (ewh.contract.json_text). Once the gap of this contract, now closed.
    line = '{"type":"track","messageId":"m","userId":"u","event":"E","p":1e400}'
    [row] = _sql_results([line])
    python = validate_text(line.encode(), f"{PREFIX}:1", RECEIVED_DEFAULT)
    assert isinstance(python, AcceptedEvent)
    assert (row[3], row[15], python.payload) == (None, line, line)


def _has_duplicate_keys(line: str) -> bool:
    found = False

    def pairs(items: list[tuple[str, Any]]) -> dict[str, Any]:
        nonlocal found
        found = found or len({k for k, _ in items}) < len(items)
        return dict(items)

    json.loads(line, object_pairs_hook=pairs)
    return found


def _standard_validator() -> jsonschema.protocols.Validator:
    documents = schema_documents()
    registry = referencing.Registry().with_resources(
        (doc["$id"], referencing.Resource.from_contents(doc)) for doc in documents.values())
    return jsonschema.Draft202012Validator(documents["message.json"], registry=registry)


def test_a_stock_json_schema_validator_agrees_on_structural_validity() -> None:
    validator = _standard_validator()
    # Rules that are not JSON Schema structure: size, parse errors, the calendar, the future.
    # Also skipped: a value ending in a newline, which Python's `$` (used by the stock
    # validator for `pattern`) lets through, unlike ECMA-262, RE2 and our fullmatch.
    # Nor are the depth, an id written 7.0 (JSON Schema counts it an integer), the floor, and
    # which of two equal keys counts (json.loads keeps the last; the contract, the first).
    outside = {"oversize", "invalid_json", "future_timestamp", "too_deep", "invalid_id",
               "timestamp_before_floor"}
    checked = 0
    for number, line in enumerate(CORPUS, start=1):
        result = validate_text(line.encode(), f"{PREFIX}:{number}", RECEIVED_DEFAULT)
        if isinstance(result, Rejection) and (
                result.reason in outside or "2026-02-30" in line or '\\n"' in line):
            continue
        if _has_duplicate_keys(line) or len(line) > 30_000:
            continue
        assert validator.is_valid(json.loads(line)) == isinstance(result, AcceptedEvent), line
        checked += 1
    assert checked >= 80  # most of the corpus is structural


def test_a_schema_keyword_no_validator_enforces_is_refused() -> None:
    track = schema_documents()["track.json"]
    defs = schema_documents()["common.json"]["$defs"]
    changed = {**track, "properties": {**track["properties"],
                                       "event": {"type": "string", "maxLength": 10}}}
    with pytest.raises(ContractSchemaError, match="maxLength"):
        _compile_type(changed, defs)


@pytest.mark.parametrize("sql_reader", [True, False])
def test_the_loader_gives_every_record_of_the_corpus_the_python_verdict(
        sql_reader: bool, tmp_path: Path) -> None:
    """The real loader (a DuckDB file, the flagged records settled by the Python validator)
    against the Python validator, record by record, with the load's own intake time."""
    lines = [x for x in CORPUS if x.strip() and "\n" not in x]
    protector = Protector(PrivacyKeys.from_settings())
    path = tmp_path / "corpus.ndjson"
    path.write_bytes(b"".join(line.encode() + b"\n" for line in lines))
    warehouse = tmp_path / "w.duckdb"
    [result] = load_files([path], warehouse, sql_reader=sql_reader, landing_dir=tmp_path)
    assert result.reader == ("duckdb" if sql_reader else "records")
    with duckdb.connect(str(warehouse), read_only=True) as con:
        [(loaded_at,)] = con.execute("select started_at from raw.load_manifest").fetchall()
        rejected = {n: (reason, field, detail) for n, reason, field, detail in con.execute(
            "select line_number, reason, field, detail from raw.events_rejected").fetchall()}
        events = {source: row for source, *row in con.execute(
            "select source, message_id, message_type, event_name, user_id, anonymous_id, "
            "occurred_at, sent_at, received_at, payload from raw.events").fetchall()}
    disagreements = []
    for number, line in enumerate(lines, start=1):
        source = f"file:{path}:{number}"
        python = validate_text(line.encode(), source, loaded_at)
        if isinstance(python, Rejection):
            outcome: Any = (python.reason, python.field, python.detail)
            loader: Any = rejected.get(number)
        else:
            outcome = None
            loader = rejected.get(number)  # loaded, or a duplicate of an earlier messageId
            row = events.get(source)
            # raw holds the payload as the personal-data policy leaves it (docs/privacy.md)
            expected = [*_python_view(python)[1:-1], protector.payload(python.payload)]
            if row is not None and list(row) != expected:
                loader = ("different columns", row)
        if outcome != loader:
            disagreements.append((number, line[:80], outcome, loader))
    assert disagreements == []
    assert result.rows_read == len(lines)
