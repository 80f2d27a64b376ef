"""Plain result types for a validation run, and the one-line messages that name the problem."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from ewh.quality.catalog import Severity

TABLE_EXISTS = "table_exists"  # pseudo expectation type for a table that is not built yet


@dataclass(frozen=True)
class ExpectationOutcome:
    expectation_type: str
    column: str | None
    severity: Severity
    success: bool
    unexpected_count: int | None
    sample_values: tuple[Any, ...]  # a few offending values (None for nulls)
    sample_keys: tuple[Any, ...]  # the key column (message_id, session_id) of those rows
    message: str
    observed_value: Any = None  # GX's observed value, e.g. the row count of a volume check


def shown_samples(outcome: ExpectationOutcome) -> tuple[Any, ...]:
    """The offending values; for nulls (nothing to show), the keys of their rows."""
    values = tuple(v for v in outcome.sample_values if v is not None)
    return values or outcome.sample_keys


@dataclass(frozen=True)
class SuiteResult:
    suite: str
    table: str  # schema-qualified, e.g. raw.events
    success: bool
    expectations: tuple[ExpectationOutcome, ...]
    docs_url: str | None = None  # this run's Data Docs page, when built

    @property
    def failures(self) -> tuple[ExpectationOutcome, ...]:
        return tuple(e for e in self.expectations if not e.success)

    @property
    def errors(self) -> tuple[ExpectationOutcome, ...]:
        return tuple(e for e in self.failures if e.severity == "error")

    @property
    def warnings(self) -> tuple[ExpectationOutcome, ...]:
        return tuple(e for e in self.failures if e.severity == "warn")


def has_error_failures(results: Iterable[SuiteResult]) -> bool:
    """True when any error-severity expectation failed: downstream must not run."""
    return any(r.errors for r in results)


def missing_table_result(suite: str, table: str) -> SuiteResult:
    """A table that does not exist yet is a failed error, not a crash."""
    message = f"{table}: table does not exist, so nothing was validated ({TABLE_EXISTS}, error)"
    outcome = ExpectationOutcome(TABLE_EXISTS, None, "error", False, None, (), (), message)
    return SuiteResult(suite=suite, table=table, success=False, expectations=(outcome,))


def optional_column_message(table: str, column: str, expectation_type: str) -> str:
    return (f"{table}.{column}: optional column not built yet, so not validated "
            f"({expectation_type}, warn)")


def _num(value: Any) -> Any:
    """1.0 -> 1: GX stores numeric bounds as floats; whole numbers read better bare."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _what(expectation_type: str, kwargs: Mapping[str, Any], count: int) -> str:
    """The noun phrase for ``count`` bad values of one expectation type."""
    if expectation_type == "expect_column_values_to_not_be_null":
        return f"{count} null values"
    if expectation_type == "expect_column_values_to_be_unique":
        return f"{count} rows with a duplicated value"
    if expectation_type == "expect_column_values_to_be_in_set":
        what = f"{count} values not in {sorted(kwargs.get('value_set') or [])}"
        mostly = kwargs.get("mostly")
        return f"{what} (more than {1 - mostly:.0%} allowed)" if mostly else what
    if expectation_type == "expect_column_values_to_be_between":
        low, high = _num(kwargs.get("min_value")), _num(kwargs.get("max_value"))
        if low is not None and high is not None:
            return f"{count} values outside [{low}, {high}]"
        return f"{count} values below {low}" if low is not None else f"{count} values above {high}"
    if expectation_type == "expect_column_pair_values_a_to_be_greater_than_b":
        op = "<" if kwargs.get("or_equal") else "<="
        return f"{count} rows where {kwargs['column_A']} {op} {kwargs['column_B']}"
    return f"{count} unexpected values"


def _condition_text(condition: Any) -> str:
    # Conditions are stored as dicts; GX's Condition repr reads like SQL ("user_id IS NULL").
    from great_expectations.expectations.row_conditions import deserialize_row_condition

    try:
        return repr(deserialize_row_condition(condition))
    except (TypeError, ValueError):
        return str(condition)


def _table_level(expectation_type: str, kwargs: Mapping[str, Any], meta: Mapping[str, Any],
                 result: Mapping[str, Any]) -> str | None:
    """Messages for expectations that are not a per-value count."""
    observed = result.get("observed_value")
    if expectation_type == "expect_table_columns_to_match_set":
        mismatched = (result.get("details") or {}).get("mismatched") or {}
        missing = mismatched.get("missing") or []
        return f"{len(missing)} missing columns {missing}" if missing else "0 missing columns"
    if expectation_type == "unexpected_rows_expectation":
        return f"{observed} {meta.get('what', 'unexpected rows')}"
    if expectation_type == "expect_table_row_count_to_be_between":
        low, high = kwargs.get("min_value"), kwargs.get("max_value")
        band = f"[{low}, {'no limit' if high is None else high}]"
        return f"{observed} rows, outside the accepted {band} ({meta.get('band', '')})"
    if expectation_type == "expect_column_max_to_be_between":
        return f"latest value {observed} is older than {kwargs.get('min_value')}"
    return None


def message(
    table: str,
    column: str | None,
    expectation_type: str,
    severity: Severity,
    kwargs: Mapping[str, Any],
    result: Mapping[str, Any],
    error: str | None,
    meta: Mapping[str, Any] | None = None,
) -> str:
    """One line naming table.column, the count and the rule, e.g.
    ``raw.events.message_id: 3 null values (expect_column_values_to_not_be_null, error)``."""
    where = f"{table}.{column}" if column else table
    tail = f"({expectation_type}, {severity})"
    if error:
        return f"{where}: could not be evaluated: {error.strip().splitlines()[0]} {tail}"
    what = _table_level(expectation_type, kwargs, meta or {}, result)
    if what is None:
        what = _what(expectation_type, kwargs, int(result.get("unexpected_count") or 0))
    if kwargs.get("row_condition"):
        what += f" where {_condition_text(kwargs['row_condition'])}"
    return f"{where}: {what} {tail}"
