"""The expectations of every suite, defined once in code.

The JSON under ``expectations/gx/expectations/`` is generated from these definitions by
``ewh.quality.project`` at each validation run (gitignored, never edited by hand). Segment
suites come from one template (``_segment_template``), instantiated per segment found in the
dbt manifest.

Every expectation carries ``meta.severity``: ``error`` blocks downstream, ``warn`` only reports.
Suite parameters (``{"$PARAMETER": ...}``) are filled at run time from the ``as_of`` instant
(``catalog.suite_parameters``) and, for segments, from the previous run's size
(``ewh.quality.volume``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
from great_expectations.expectations.metadata_types import FailureSeverity
from great_expectations.expectations.row_conditions import Column

from ewh.contract.rules import load_contract
from ewh.quality import columns as cols
from ewh.quality.catalog import (
    FRESH_SINCE,
    FRESHNESS_HOURS,
    FUTURE_LIMIT,
    SEGMENT_KIND,
    WINDOW_START,
    Severity,
    SuiteSpec,
)
from ewh.quality.segment_tables import SegmentTable
from ewh.quality.volume import VOLUME_MAX, VOLUME_MIN

# How far a client time may be ahead of receivedAt: the event contract's bound.
MAX_AHEAD_HOURS = load_contract().max_ahead_hours
# Share of staged events whose name maps to a canonical type; below it, the seed lags.
MAPPED_EVENTS_MOSTLY = 0.95


def _param(name: str) -> Any:
    return {"$PARAMETER": name}


_GX_SEVERITY = {"error": FailureSeverity.CRITICAL, "warn": FailureSeverity.WARNING}


def _tag(severity: Severity, why: str, **meta: str) -> dict[str, Any]:
    """Our severity in ``meta`` (the contract) and mirrored in GX's own field (Data Docs)."""
    return {"meta": {"severity": severity, "why": why, **meta}, "severity": _GX_SEVERITY[severity],
            # Data Docs render notes under each expectation: the severity where it is read.
            "notes": f"**severity: {severity}** ({_BLOCKS[severity]}). {why}"}


_BLOCKS = {"error": "a failure blocks what follows", "warn": "reported, blocks nothing"}


def _rows(severity: Severity, column: str, what: str, query: str) -> gxe.Expectation:
    """Rows returned by ``query`` (over CTE ``batch``) are bad. ``column`` and ``what`` word
    the message: "<table>.<column>: <count> <what>"."""
    return gxe.UnexpectedRowsExpectation(
        # GX substitutes {batch} with an aliased subquery: name it once as a CTE.
        unexpected_rows_query=f"with batch as (select * from {{batch}}) {query}",
        description=what,
        **_tag(severity, what, column=column, what=what),
    )


def _schema(columns: Iterable[str], why: str, severity: Severity = "error") -> gxe.Expectation:
    return gxe.ExpectTableColumnsToMatchSet(
        column_set=list(columns), exact_match=False, **_tag(severity, why)
    )


def _not_null(column: str, why: str, severity: Severity = "error") -> gxe.Expectation:
    return gxe.ExpectColumnValuesToNotBeNull(column=column, **_tag(severity, why))


def _unique(column: str, why: str) -> gxe.Expectation:
    return gxe.ExpectColumnValuesToBeUnique(column=column, **_tag("error", why))


def _one_id_required(why: str) -> gxe.Expectation:
    return gxe.ExpectColumnValuesToNotBeNull(
        column="anonymous_id", row_condition=Column("user_id").is_null(), **_tag("error", why)
    )


def _not_future(column: str, severity: Severity, why: str) -> gxe.Expectation:
    return gxe.ExpectColumnValuesToBeBetween(
        column=column, max_value=_param(FUTURE_LIMIT), **_tag(severity, why)
    )


def _not_ancient(column: str, why: str) -> gxe.Expectation:
    return gxe.ExpectColumnValuesToBeBetween(
        column=column, min_value=_param(WINDOW_START), **_tag("warn", why)
    )


def _at_least(column: str, minimum: float, why: str) -> gxe.Expectation:
    return gxe.ExpectColumnValuesToBeBetween(column=column, min_value=minimum, **_tag("error", why))


def _raw_events() -> list[gxe.Expectation]:
    return [
        _schema(cols.RAW_EVENTS_COLUMNS, "schema drift: staging reads these columns"),
        *(_not_null(c, f"{c} is required by the contract")
          for c in ("message_id", "message_type", "received_at")),
        _unique("message_id", "message_id is the idempotency key; the loader dedupes on it"),
        gxe.ExpectColumnValuesToBeInSet(
            column="message_type", value_set=list(cols.SEGMENT_MESSAGE_TYPES),
            **_tag("error", "only the six Segment message types are accepted"),
        ),
        _one_id_required("one of userId or anonymousId is required"),
        _not_future("received_at", "error", "received_at is the collector clock: never future"),
        _not_ancient("received_at", "a stale backfill or a bad collector clock"),
        # The contract refuses a client time more than MAX_AHEAD_HOURS after receivedAt: such a
        # row was planted or loaded around the contract, and would sit in every time window.
        *(_rows("error", column, f"rows with {column} more than {MAX_AHEAD_HOURS} h after "
                                 "received_at",
                f"select * from batch where {column} > received_at "
                f"+ interval {MAX_AHEAD_HOURS} hour")
          for column in ("occurred_at", "sent_at")),
        _not_future("occurred_at", "warn", "client clock skew; staging corrects it from sent_at"),
        _not_ancient("occurred_at", "a client clock far in the past"),
        gxe.ExpectColumnMaxToBeBetween(
            column="received_at", min_value=_param(FRESH_SINCE),
            **_tag("warn", f"freshness: nothing received in the last {FRESHNESS_HOURS} hours"),
        ),
    ]  # fmt: skip


def _stg_events() -> list[gxe.Expectation]:
    canonical = list(cols.CANONICAL_EVENT_TYPES)
    return [
        _schema(cols.STG_EVENTS_COLUMNS, "schema drift: intermediate models read these"),
        _not_null("message_id", "one row per message"),
        _unique("message_id", "a messageId still duplicated after dedupe counts twice"),
        _one_id_required("every event needs an identity to be stitched"),
        _not_null("event_type", "every event is typed (unmapped names become 'other')"),
        gxe.ExpectColumnValuesToBeInSet(
            column="event_type", value_set=[*canonical, cols.OTHER_EVENT_TYPE],
            **_tag("error", "unknown event type: the mapping produced a non-canonical value"),
        ),
        gxe.ExpectColumnValuesToBeInSet(
            column="event_type", value_set=canonical, mostly=MAPPED_EVENTS_MOSTLY,
            **_tag("warn", f"over {1 - MAPPED_EVENTS_MOSTLY:.0%} of events have unmapped names "
                           "(event_type 'other'): the event_type_map seed lags the trackers"),
        ),
        _not_null("occurred_at", "sessions and windows need a time"),
        _not_future("occurred_at", "error", "future events would sit in every time window"),
        _not_ancient("occurred_at", "events older than the window: a stale backfill"),
        _at_least("revenue", 0, "negative revenue corrupts value segments"),
        gxe.ExpectColumnValuesToBeBetween(
            column="price", min_value=0, **_tag("warn", "a negative price is a tracking bug"),
        ),
    ]  # fmt: skip


def _fct_sessions() -> list[gxe.Expectation]:
    return [
        _schema(cols.FCT_SESSIONS_COLUMNS, "schema drift: segments and exports read these"),
        _not_null("session_id", "one row per session"),
        _unique("session_id", "one row per session"),
        _not_null("user_key", "every session is attributed to a user"),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="ended_at", column_B="started_at", or_equal=True,
            **_tag("error", "a session cannot end before it starts"),
        ),
        _not_future("started_at", "error", "a session cannot start in the future"),
        _at_least("duration_seconds", 0, "durations are >= 0"),
        _at_least("event_count", 1, "a session has an event"),
        _at_least("revenue", 0, "revenue is >= 0 when present"),
    ]  # fmt: skip


def _dim_users() -> list[gxe.Expectation]:
    return [
        _schema(cols.DIM_USERS_COLUMNS, "schema drift: segment rules read these features"),
        _not_null("user_key", "one row per stitched user"),
        _unique("user_key", "one row per stitched user"),
        _not_null("has_analytics_consent", "segments filter on consent; null would leak"),
        _at_least("revenue", 0, "negative revenue corrupts value segments"),
        _at_least("revenue_365d", 0, "negative revenue corrupts value segments"),
        _at_least("orders", 0, "counts are >= 0"),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="last_seen_at", column_B="first_seen_at", or_equal=True,
            **_tag("error", "last seen cannot precede first seen"),
        ),
        *(gxe.ExpectColumnValuesToBeBetween(
            column=score, min_value=cols.RFM_MIN, max_value=cols.RFM_MAX,
            **_tag("error", f"RFM scores are quintiles {cols.RFM_MIN}-{cols.RFM_MAX}"),
        ) for score in cols.DIM_USERS_RFM_SCORES),
    ]  # fmt: skip


def _segment_membership_history() -> list[gxe.Expectation]:
    return [
        _schema(cols.HISTORY_COLUMNS, "schema drift: exports and memberships read these"),
        *(_not_null(c, "every spell is identified and dated")
          for c in ("membership_id", "user_key", "segment", "entered_at", "is_current")),
        _unique("membership_id", "one row per spell"),
        gxe.ExpectColumnPairValuesAToBeGreaterThanB(
            column_A="exited_at", column_B="entered_at", or_equal=True,
            ignore_row_if="either_value_is_missing",
            **_tag("error", "a spell cannot end before it starts"),
        ),
        _rows("error", "is_current", "rows where is_current disagrees with exited_at is null",
              "select * from batch where is_current <> (exited_at is null)"),
        # A spell overlaps when it starts before an earlier spell of the same user and segment
        # has ended (open spells end at infinity). Adjacent spells (exit = next entry) are fine.
        _rows("error", "entered_at", "spells that overlap an earlier spell of the same user "
              "and segment",
              "select * from (select *, max(coalesce(exited_at, timestamp '9999-12-31')) over ("
              "partition by user_key, segment order by entered_at, membership_id "
              "rows between unbounded preceding and 1 preceding) as earlier_spells_end "
              "from batch) as spells where earlier_spells_end > entered_at"),
    ]  # fmt: skip


def _segment_template(segment: SegmentTable) -> list[gxe.Expectation]:
    """The one template every seg_ table shares: identity, lineage, consent, schema, volume."""
    documented = [c for c in segment.declared_columns if c not in cols.SEGMENT_COLUMNS]
    expectations = [
        _schema(cols.SEGMENT_COLUMNS, "schema drift: exports read user_key and user_id"),
        _not_null("user_key", "every member is a stitched user"),
        _unique("user_key", "one row per member"),
        _rows("error", "user_key", "members missing from marts.dim_users",
              "select * from batch where not exists (select 1 from marts.dim_users as users"
              " where users.user_key = batch.user_key)"),
        _rows("error", "user_key", "members without analytics consent in marts.dim_users",
              "select batch.* from batch join marts.dim_users as users"
              " on users.user_key = batch.user_key where not users.has_analytics_consent"),
        gxe.ExpectTableRowCountToBeBetween(
            min_value=_param(VOLUME_MIN), max_value=_param(VOLUME_MAX),
            **_tag("warn", "volume anomaly: size moved beyond the tolerance since the "
                           "last run (ewh/quality/volume.py)"),
        ),
    ]
    if documented:
        expectations.append(_schema(
            documented, "the evidence columns documented in the model's yml", "warn"))
    return expectations


_BUILDERS: dict[str, Callable[[], list[gxe.Expectation]]] = {
    "raw_events": _raw_events,
    "stg_events": _stg_events,
    "fct_sessions": _fct_sessions,
    "dim_users": _dim_users,
    "segment_membership_history": _segment_membership_history,
}


def build_suite(spec: SuiteSpec) -> gx.ExpectationSuite:
    """The GX suite for ``spec``: a fixed suite by name, or the segment template."""
    if spec.kind == SEGMENT_KIND:
        assert spec.segment is not None
        expectations = _segment_template(spec.segment)
    else:
        expectations = _BUILDERS[spec.name]()
    return gx.ExpectationSuite(name=spec.name, expectations=expectations)
