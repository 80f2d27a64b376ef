"""Which suites exist and what they validate: names, tables, kinds and run-time parameters.

No Great Expectations import here (it takes seconds): Dagster loads this to define the
checks. The expectations themselves are in ``ewh.quality.suites``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Literal

from ewh.quality import columns as cols
from ewh.quality.segment_tables import SegmentTable

if TYPE_CHECKING:
    import great_expectations as gx

Severity = Literal["error", "warn"]
SEVERITIES: tuple[Severity, ...] = ("error", "warn")

# The accepted time window is [as_of - WINDOW_DAYS, as_of + FUTURE_DAYS].
WINDOW_DAYS = 400
FUTURE_DAYS = 1
# raw.events is stale when nothing was received in the last FRESHNESS_HOURS.
FRESHNESS_HOURS = 24

# Run-time suite parameters.
WINDOW_START = "window_start"
FUTURE_LIMIT = "future_limit"
FRESH_SINCE = "fresh_since"

SEGMENT_KIND = "segment"
TABLE_KIND = "table"


def suite_parameters(as_of: datetime) -> dict[str, datetime]:
    """Values for the time placeholders at instant ``as_of`` (naive UTC)."""
    return {
        WINDOW_START: as_of - timedelta(days=WINDOW_DAYS),
        FUTURE_LIMIT: as_of + timedelta(days=FUTURE_DAYS),
        FRESH_SINCE: as_of - timedelta(hours=FRESHNESS_HOURS),
    }


@dataclass(frozen=True)
class SuiteSpec:
    """One suite over one warehouse table."""

    name: str
    schema: str
    table: str
    key_column: str  # names a bad row in samples (GX unexpected_index_column_names)
    optional_columns: tuple[str, ...] = ()
    kind: str = TABLE_KIND
    segment: SegmentTable | None = None  # the template's input, for segment suites

    @property
    def qualified_table(self) -> str:
        return f"{self.schema}.{self.table}"

    def to_gx_suite(self) -> gx.ExpectationSuite:
        from ewh.quality.suites import build_suite

        return build_suite(self)


RAW_EVENTS = SuiteSpec("raw_events", "raw", "events", "message_id")
STG_EVENTS = SuiteSpec("stg_events", "staging", "stg_events", "message_id")
FCT_SESSIONS = SuiteSpec("fct_sessions", "marts", "fct_sessions", "session_id")
DIM_USERS = SuiteSpec("dim_users", "marts", "dim_users", "user_key",
                      optional_columns=cols.DIM_USERS_OPTIONAL)
SEGMENT_MEMBERSHIP_HISTORY = SuiteSpec(
    "segment_membership_history", "segments", "segment_membership_history", "membership_id"
)

# Upstream first: the order `ewh quality` runs and prints them in.
FIXED_SUITES: dict[str, SuiteSpec] = {
    spec.name: spec
    for spec in (RAW_EVENTS, STG_EVENTS, FCT_SESSIONS, DIM_USERS, SEGMENT_MEMBERSHIP_HISTORY)
}


def segment_suite(segment: SegmentTable) -> SuiteSpec:
    return SuiteSpec(segment.name, segment.schema, segment.name, "user_key",
                     kind=SEGMENT_KIND, segment=segment)


def all_suites(segments: Iterable[SegmentTable]) -> dict[str, SuiteSpec]:
    """The fixed suites, then one suite per segment, by suite name."""
    suites = dict(FIXED_SUITES)
    for segment in segments:
        if segment.name in suites:
            raise ValueError(f"segment {segment.name} clashes with a fixed suite name")
        suites[segment.name] = segment_suite(segment)
    return suites
