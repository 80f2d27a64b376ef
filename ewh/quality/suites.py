"""The expectation suites, defined once in code.

The JSON under ``expectations/gx/expectations/`` is what ``ewh.quality.project.write_project``
writes from these definitions; a test checks the two have not drifted.

Every expectation carries ``meta.severity``: ``error`` blocks downstream, ``warn`` only reports.
Suite parameters (``{"$PARAMETER": ...}``) are filled at run time from the ``as_of`` instant.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.expectations.metadata_types import FailureSeverity
from great_expectations.expectations.row_conditions import Column

Severity = Literal["error", "warn"]
SEVERITIES: tuple[Severity, ...] = ("error", "warn")

SEGMENT_MESSAGE_TYPES = ("track", "identify", "page", "screen", "alias", "group")

RAW_EVENTS_COLUMNS = (
    "message_id", "message_type", "event_name", "user_id", "anonymous_id", "occurred_at",
    "sent_at", "received_at", "payload", "source", "file_checksum", "load_id", "loaded_at",
)  # fmt: skip

FCT_SESSIONS_COLUMNS = (
    "session_id", "user_key", "user_id", "device_id", "started_at", "ended_at",
    "duration_seconds", "event_count", "page_views", "landing_page", "exit_page", "referrer",
    "utm_source", "utm_medium", "utm_campaign", "channel", "device_type", "is_bounce",
    "has_add_to_cart", "has_purchase", "revenue",
)  # fmt: skip

# Run-time suite parameters: names and how they derive from the validation instant.
RECEIVED_AT_MIN = "received_at_min"  # as_of - 400 days
FUTURE_LIMIT = "future_limit"  # as_of + 1 day


def suite_parameters(as_of: datetime) -> dict[str, datetime]:
    """Values for the suites' ``$PARAMETER`` placeholders at instant ``as_of`` (naive UTC)."""
    return {
        RECEIVED_AT_MIN: as_of - timedelta(days=400),
        FUTURE_LIMIT: as_of + timedelta(days=1),
    }


def _param(name: str) -> Any:
    return {"$PARAMETER": name}


@dataclass(frozen=True)
class SuiteSpec:
    """One suite over one warehouse table."""

    name: str
    schema: str
    table: str
    key_column: str  # names a bad row in samples (GX unexpected_index_column_names)
    build: Callable[[], Sequence[gxe.Expectation]]

    @property
    def qualified_table(self) -> str:
        return f"{self.schema}.{self.table}"

    def to_gx_suite(self) -> gx.ExpectationSuite:
        return gx.ExpectationSuite(name=self.name, expectations=list(self.build()))


_GX_SEVERITY = {"error": FailureSeverity.CRITICAL, "warn": FailureSeverity.WARNING}


def _tag(severity: Severity, why: str) -> dict[str, Any]:
    """Our severity in ``meta`` (the contract) and mirrored in GX's own field (Data Docs)."""
    return {"meta": {"severity": severity, "why": why}, "severity": _GX_SEVERITY[severity]}


def _raw_events() -> list[gxe.Expectation]:
    return [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=list(RAW_EVENTS_COLUMNS),
            exact_match=False,
            **_tag("error", "schema drift: staging reads these columns"),
        ),
        *(
            gxe.ExpectColumnValuesToNotBeNull(
                column=column, **_tag("error", f"{column} is required by the contract")
            )
            for column in ("message_id", "message_type", "received_at")
        ),
        gxe.ExpectColumnValuesToBeUnique(
            column="message_id", **_tag("error", "message_id is the idempotency key")
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="message_type",
            value_set=list(SEGMENT_MESSAGE_TYPES),
            **_tag("error", "only the six Segment message types are accepted"),
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="anonymous_id",
            row_condition=Column("user_id").is_null(),
            **_tag("error", "one of userId or anonymousId is required"),
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="received_at",
            max_value=_param(FUTURE_LIMIT),
            **_tag("error", "received_at is the collector clock; the future is impossible"),
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="received_at",
            min_value=_param(RECEIVED_AT_MIN),
            **_tag("warn", "events older than 400 days: a stale backfill or a bad clock"),
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="occurred_at",
            max_value=_param(FUTURE_LIMIT),
            **_tag("warn", "client clock skew; staging corrects it from sent_at"),
        ),
    ]


def _fct_sessions() -> list[gxe.Expectation]:
    return [
        gxe.ExpectTableColumnsToMatchSet(
            column_set=list(FCT_SESSIONS_COLUMNS),
            exact_match=False,
            **_tag("error", "schema drift: segments and exports read these columns"),
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="session_id", **_tag("error", "one row per session")
        ),
        gxe.ExpectColumnValuesToBeUnique(
            column="session_id", **_tag("error", "one row per session")
        ),
        gxe.ExpectColumnValuesToNotBeNull(
            column="user_key", **_tag("error", "every session is attributed to a user")
        ),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="ended_at",
            column_B="started_at",
            or_equal=True,
            **_tag("error", "a session cannot end before it starts"),
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="duration_seconds", min_value=0, **_tag("error", "durations are >= 0")
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="event_count", min_value=1, **_tag("error", "a session has an event")
        ),
        gxe.ExpectColumnValuesToBeBetween(
            column="revenue", min_value=0, **_tag("error", "revenue is >= 0 when present")
        ),
    ]


RAW_EVENTS = SuiteSpec("raw_events", "raw", "events", "message_id", _raw_events)
FCT_SESSIONS = SuiteSpec("fct_sessions", "marts", "fct_sessions", "session_id", _fct_sessions)

SUITES: dict[str, SuiteSpec] = {spec.name: spec for spec in (RAW_EVENTS, FCT_SESSIONS)}
