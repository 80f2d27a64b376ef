"""Fuzz: random and mutated messages go to both intake paths, the real collector (HTTP on
127.0.0.1) and the real loader (a file, a DuckDB warehouse). Asserted:

- no answer is a 5xx;
- both give the same verdict (accepted, or refused for the same reason when the collector
  refuses the event alone; a body it cannot read at all is refused whole). A message without a
  messageId (absent or null) gets one from the collector, as Segment's API does, marked
  `context.ewh.messageId = "generated"`; a file has no server to give it one, so the loader
  is given the message as the collector completes it;
- nothing accepted fails an error-level raw check: the collector's landing files and the
  loader's warehouse both pass the raw_events suite.

Each message goes as the only event of a /v1/batch (so its own `type` counts) and as the one
line of a file. `EWH_FUZZ_EXAMPLES` raises the number of examples (default 150, about a
minute); the examples are derandomized, so a run is repeatable, unless `EWH_FUZZ_RANDOM` is
set (a longer hunt: `EWH_FUZZ_RANDOM=1 EWH_FUZZ_EXAMPLES=2000`).
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
import requests
from collector_process import WRITE_KEY, Collector, running_collector
from hypothesis import HealthCheck, given, settings
from message_strategies import messages, texts, to_text
from quality_warehouse import copy_project

from ewh.common.clock import utc_now
from ewh.contract import json_text
from ewh.ingest.landing import closed_landing_files
from ewh.ingest.loader import load_files
from ewh.quality.validate import validate_warehouse

EXAMPLES = int(os.environ.get("EWH_FUZZ_EXAMPLES", "150"))
DERANDOMIZE = not os.environ.get("EWH_FUZZ_RANDOM")  # set it to draw new examples each run
AUTH = (WRITE_KEY, "")


@pytest.fixture(scope="module")
def collector(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Collector]:
    # Files close after a second, so the test can load what the collector accepted.
    with running_collector(tmp_path_factory.mktemp("landing"),
                           EWH_LANDING_MAX_AGE_SECONDS="1") as running:
        yield running


def _collector_verdict(session: requests.Session, collector: Collector,
                       text: str) -> tuple[bool, str | None]:
    """(accepted, reason) of the collector for one message, sent as a batch of one."""
    try:
        json_text.loads(text.encode())
        body = b'{"batch":[' + text.encode() + b"]}"
    except ValueError:
        body = text.encode()  # not one JSON value: sent as it is, to be refused whole
    response = session.post(f"{collector.url}/v1/batch", data=body, auth=AUTH, timeout=30,
                            headers={"Content-Type": "application/json"})
    assert response.status_code < 500, (response.status_code, response.text[:500], text[:200])
    if response.status_code == 200:
        return True, None
    answer = response.json()
    if answer.get("code") == "invalid_events":
        assert answer["accepted"] == 0, answer
        [error] = answer["errors"]
        return False, error["reason"]
    return False, None  # refused whole (invalid_json, 413, ...): no reason of the contract's


def _as_the_collector_completes_it(text: str) -> str:
    """The text with a server messageId when it has none (docs/collector.md); else as it is."""
    try:
        value = json_text.loads(text.encode(), numbers="fragment")
    except ValueError:
        return text
    if not isinstance(value, dict) or value.get("messageId") is not None:
        return text
    value["messageId"] = f"srv-{uuid.uuid4().hex}-0"
    context = value.setdefault("context", {})
    if isinstance(context, dict):
        if not isinstance(context.get("ewh"), dict):
            context["ewh"] = {}
        context["ewh"]["messageId"] = "generated"
    return json_text.dumps(value).decode()


def _loader_verdict(folder: Path, warehouse: Path, text: str,
                    seen: dict[str, tuple[bool, str | None]]) -> tuple[bool, str | None]:
    if text in seen:  # hypothesis may draw a text again: the same file is skipped
        return seen[text]
    path = folder / f"{uuid.uuid4().hex}.ndjson"
    path.write_bytes(text.encode() + b"\n")
    [result] = load_files([path], warehouse, landing_dir=folder)
    assert result.status == "loaded", result
    with duckdb.connect(str(warehouse), read_only=True) as con:
        rejected = con.execute("select reason from raw.events_rejected where load_id = ?",
                               [result.load_id]).fetchall()
    seen[text] = (False, rejected[0][0]) if rejected else (True, None)
    return seen[text]


def _errors(warehouse: Path, project: Path) -> list[str]:
    [suite] = validate_warehouse(warehouse, ["raw_events"], build_docs=False, as_of=utc_now(),
                                 project_dir=project, segments=[], record_volumes=False)
    return [e.message for e in suite.errors]


def test_both_intake_paths_agree_on_random_and_mutated_messages_and_never_answer_5xx(
        collector: Collector, tmp_path: Path) -> None:
    now = utc_now()
    folder = tmp_path / "files"
    folder.mkdir()
    warehouse = tmp_path / "loader.duckdb"
    outcomes: list[tuple[bool, Any]] = []
    seen: dict[str, tuple[bool, str | None]] = {}
    text_strategy = messages(now).map(to_text) | texts(now)
    with requests.Session() as session:

        @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=DERANDOMIZE,
                  suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
        @given(text_strategy.filter(str.strip))
        def both_paths(text: str) -> None:
            collected, reason = _collector_verdict(session, collector, text)
            loaded, loader_reason = _loader_verdict(
                folder, warehouse, _as_the_collector_completes_it(text), seen)
            assert collected == loaded, (text[:300], reason, loader_reason)
            if reason is not None:  # refused as an event: for the same reason
                assert reason == loader_reason, (text[:300], reason, loader_reason)
            outcomes.append((loaded, loader_reason))

        both_paths()
    accepted = sum(ok for ok, _ in outcomes)
    assert EXAMPLES // 5 <= accepted <= EXAMPLES - EXAMPLES // 5  # both kinds were exercised
    collector.stop()  # closes its landing files
    landed = closed_landing_files(collector.landing)
    collected_warehouse = tmp_path / "collected.duckdb"
    results = load_files(landed, collected_warehouse, landing_dir=collector.landing)
    # Every event the collector accepted loads: none is rejected, nothing is quarantined.
    assert {r.status for r in results} == {"loaded"}
    assert sum(r.rows_rejected for r in results) == 0
    assert sum(r.rows_read for r in results) == accepted
    project = copy_project(tmp_path / "gx")
    assert _errors(collected_warehouse, project) == []
    assert _errors(warehouse, project) == []
