"""Time in the warehouse's one convention: naive datetimes in UTC (portable to Spark)."""

from __future__ import annotations

from datetime import UTC, datetime


def to_naive_utc(value: datetime) -> datetime:
    """A datetime as naive UTC; a naive input is taken to be UTC already."""
    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


def utc_now() -> datetime:
    """The current time as a naive UTC datetime."""
    return datetime.now(UTC).replace(tzinfo=None)


def resolve_as_of(as_of: datetime | None = None) -> datetime:
    """The instant time windows are anchored to: `as_of`, else the EWH_AS_OF setting, else
    now (naive UTC). The dbt build's `as_of` var is set from the same setting."""
    from ewh.common.settings import get_settings

    chosen = as_of if as_of is not None else get_settings().as_of
    return to_naive_utc(chosen) if chosen is not None else utc_now()


def dbt_timestamp(value: datetime) -> str:
    """A naive-UTC instant as the dbt vars take it: `2026-11-01 00:00:00[.ffffff]`."""
    return to_naive_utc(value).isoformat(sep=" ")
