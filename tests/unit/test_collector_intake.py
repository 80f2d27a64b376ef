"""The collector checks each message it parsed (ewh.contract.json_text, first key wins) with
validate_parsed instead of parsing its landing line again (validate_text): the verdicts must
be the same on every message of the contract corpus."""

from __future__ import annotations

from datetime import datetime

from test_contract_differential import CORPUS

from ewh.contract import json_text
from ewh.contract.validator import validate_parsed, validate_text

RECEIVED = datetime(2026, 10, 1, 12, 30)


def test_checking_the_parsed_message_equals_checking_its_serialised_line() -> None:
    checked = 0
    for index, text in enumerate(CORPUS):
        try:
            message = json_text.loads(text)
            line = json_text.dumps(message)
        except Exception:  # noqa: BLE001 - the collector refuses such a body before intake
            continue
        source = f"request r event {index}"
        assert validate_parsed(message, line, source, RECEIVED) == validate_text(
            line, source, RECEIVED), text
        checked += 1
    assert checked > 50
