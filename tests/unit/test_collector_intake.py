"""The collector checks each parsed message with validate_message instead of parsing its
landing line again (validate_text): the verdicts must be the same on every message."""

from __future__ import annotations

from datetime import datetime

import orjson
from test_contract_differential import CORPUS

from ewh.contract.validator import MAX_MESSAGE_BYTES, validate_message, validate_text

RECEIVED = datetime(2026, 10, 1, 12, 30)


def test_checking_the_parsed_message_equals_checking_its_serialised_line() -> None:
    checked = 0
    for index, text in enumerate(CORPUS):
        try:
            message = orjson.loads(text)
        except orjson.JSONDecodeError:
            continue  # the collector refuses a body that is not JSON before intake
        line = orjson.dumps(message)
        if len(line) > MAX_MESSAGE_BYTES:
            continue  # intake sends those to validate_text itself
        source = f"request r event {index}"
        assert validate_message(message, source, RECEIVED, line.decode()) == validate_text(
            line, source, RECEIVED), text
        checked += 1
    assert checked > 50
