"""Predictions back as user tags: members of seg_likely_buyers are tagged likely_buyer, of
seg_predicted_churn churn_risk, through the path PUT /api/users/{userId}/tags takes.

Each message is built by the engagement API's own `tags_message` (an identify with
traits.tags and traits.tags_source = predictions), checked and stamped by the collector's
`Intake` (contract, consent policy, receivedAt) and appended durably to the landing zone by
a `LandingWriter`; the next refresh loads it, and marts.user_tags (hence the segment API's
user view) shows it. Only users whose prediction tags change get a message: the full set of
their prediction tags, [] when they left both segments. The predictions source never touches
a user's manual tags. Users without analytics consent get no message (their prediction tags
are hidden by marts.user_tags anyway). The message time (and receivedAt) is the build's
as_of, so the tags are what the predictions said at that instant.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb

from ewh.collector.engagement_routes import tags_message
from ewh.collector.intake import Intake, iso_utc
from ewh.collector.settings import CollectorSettings
from ewh.common.clock import utc_now
from ewh.common.settings import Settings
from ewh.common.sql_text import quote_ident
from ewh.ingest.landing import LandingWriter
from ewh.predictions.specs import MODELS, ModelSpec

TAGS_SOURCE = "predictions"


@dataclass(frozen=True)
class TagResult:
    users_tagged: int = 0  # messages that set at least one tag
    users_cleared: int = 0  # messages that clear the prediction tags ([])
    rejected: list[dict[str, Any]] = field(default_factory=list)  # the intake's errors
    landing_files: list[Path] = field(default_factory=list)
    as_of: datetime | None = None


def _desired(con: duckdb.DuckDBPyConnection, specs: Iterable[ModelSpec]
             ) -> tuple[dict[str, set[str]], dict[str, str]]:
    """user_key -> the prediction tags it should have; user_key -> its userId."""
    tags: dict[str, set[str]] = defaultdict(set)
    ids: dict[str, str] = {}
    for spec in specs:
        for user_key, user_id in con.execute(
                f"select user_key, user_id from segments.{quote_ident(spec.segment)} "
                "where user_id is not null").fetchall():
            tags[user_key].add(spec.tag)
            ids[user_key] = user_id
    return tags, ids


def _current(con: duckdb.DuckDBPyConnection) -> tuple[dict[str, set[str]], dict[str, str]]:
    tags: dict[str, set[str]] = defaultdict(set)
    ids: dict[str, str] = {}
    for user_key, user_id, tag in con.execute(
            "select user_key, user_id, tag from marts.user_tags where tags_source = ? "
            "and user_id is not null", [TAGS_SOURCE]).fetchall():
        tags[user_key].add(tag)
        ids[user_key] = user_id
    return tags, ids


def tag_messages(serving: Path, specs: Iterable[ModelSpec] | None = None
                 ) -> tuple[list[dict[str, Any]], datetime | None, int, int]:
    """The identify messages that bring the prediction tags up to date with the segments of
    the serving copy: (messages, as_of, users tagged, users cleared)."""
    with duckdb.connect(str(serving), read_only=True) as con:
        desired, desired_ids = _desired(con, specs if specs is not None else MODELS.values())
        current, current_ids = _current(con)
        consenting = {r[0] for r in con.execute(
            "select user_key from marts.dim_users where has_analytics_consent").fetchall()}
        as_of = con.execute("select max(as_of) from marts.dim_users").fetchone()[0]
    messages, tagged, cleared = [], 0, 0
    for user_key in sorted(set(desired) | set(current)):
        wanted, held = desired.get(user_key, set()), current.get(user_key, set())
        if wanted == held or user_key not in consenting or as_of is None:
            continue
        user_id = desired_ids.get(user_key) or current_ids[user_key]
        body = {"tags": sorted(wanted), "source": TAGS_SOURCE, "timestamp": iso_utc(as_of)}
        messages.append(tags_message(user_id, body))
        tagged, cleared = tagged + bool(wanted), cleared + (not wanted)
    return messages, as_of, tagged, cleared


async def _land(intake: Intake, writer: LandingWriter, lines: list[bytes]) -> None:
    await writer.start()
    try:
        await intake.land(lines)
    finally:
        await writer.close()


def write_prediction_tags(settings: Settings, specs: Iterable[ModelSpec] | None = None
                          ) -> TagResult:
    """Check and land the tag messages (see the module docstring)."""
    messages, as_of, tagged, cleared = tag_messages(settings.serving, specs)
    if not messages:
        return TagResult(as_of=as_of)
    collector = CollectorSettings.from_settings(settings)
    writer = LandingWriter(collector.landing_dir, collector.max_file_bytes,
                           collector.max_file_age_seconds, instance=f"tags-{uuid.uuid4().hex[:6]}")
    intake = Intake(collector, writer)
    # stamped as received at the build's as_of (never later than now): under a pinned as_of the
    # tags belong to that instant, and a receivedAt past it would fail the raw checks
    received = min(utc_now(), as_of) if as_of is not None else utc_now()
    lines, checked = intake.check(messages, received, f"prediction-tags-{uuid.uuid4().hex[:8]}")
    if lines:
        asyncio.run(_land(intake, writer, lines))
    return TagResult(tagged, cleared, checked.errors, list(writer.stats.closed), as_of)
