"""Property: anything the event contract accepts passes every error-level raw check, so no
accepted event can halt a refresh.

Hypothesis draws messages of every kind, right and wrong (tests/integration/message_strategies.py),
with and without a `receivedAt`, at an intake time; each one the contract accepts is checked at
once against the conditions the error-level expectations of the raw_events suite test (so a
counterexample shrinks), and all of them are then loaded into a real DuckDB warehouse by the
loader and validated by the real Great Expectations suite, which must find no error.
"""

from __future__ import annotations

import os
from datetime import datetime, timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from message_strategies import messages, texts, times, to_text
from quality_warehouse import copy_project

from ewh.common.clock import utc_now
from ewh.contract.validator import AcceptedEvent, validate_text
from ewh.ingest.loader import load_files
from ewh.quality.validate import validate_warehouse

EXAMPLES = int(os.environ.get("EWH_PROPERTY_EXAMPLES", "300"))
DAY = timedelta(days=1)


def _raw_errors(event: AcceptedEvent, as_of: datetime) -> list[str]:
    """What the error-level expectations of raw_events would say about this one row."""
    problems = []
    if not event.message_id or not event.message_type or event.received_at is None:
        problems.append("a required column is null")
    if event.message_type not in ("track", "identify", "page", "screen", "alias", "group"):
        problems.append("unknown message_type")
    if event.user_id is None and event.anonymous_id is None:
        problems.append("no identity")
    if event.received_at > as_of + DAY:
        problems.append("received_at in the future")
    for name, value in (("occurred_at", event.occurred_at), ("sent_at", event.sent_at)):
        if value is not None and value > event.received_at + DAY:
            problems.append(f"{name} more than 24 h after received_at")
    return problems


def test_anything_the_contract_accepts_passes_every_error_level_raw_check(
        tmp_path: Path) -> None:
    intake = utc_now()
    accepted: list[bytes] = []
    # receivedAt as a file may carry it (the collector's own, or another source's)
    with_received = messages(intake).flatmap(
        lambda m: st.just(m) | times(intake).map(lambda t: {**m, "receivedAt": t}))
    lines = (with_received | texts(intake)).map(lambda m: (m if isinstance(m, str)
                                                          else to_text(m)).encode())

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(st.lists(lines, min_size=1, max_size=4))
    def check(batch: list[bytes]) -> None:
        for line in batch:
            result = validate_text(line, "property", intake)
            if isinstance(result, AcceptedEvent):
                # as_of is never before the load: the intake time is the earliest refresh
                assert _raw_errors(result, intake) == [], line
                accepted.append(line)

    check()
    assert len(accepted) >= EXAMPLES // 10  # enough was accepted for the suite to mean much
    path = tmp_path / "accepted.ndjson"
    path.write_bytes(b"".join(line + b"\n" for line in accepted))
    warehouse = tmp_path / "w.duckdb"
    [result] = load_files([path], warehouse, landing_dir=tmp_path)
    # The loader takes every line the collector's validator took (its intake is later).
    assert (result.rows_read, result.rows_rejected) == (len(accepted), 0)
    [suite] = validate_warehouse(warehouse, ["raw_events"], build_docs=False,
                                 as_of=utc_now(), project_dir=copy_project(tmp_path / "gx"),
                                 segments=[], record_volumes=False)
    assert [e.message for e in suite.errors] == []
