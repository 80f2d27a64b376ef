"""Validate the warehouse with the committed GX suites, by SQL pushdown only.

Every metric is an aggregate or a LIMIT-ed sample computed in DuckDB; no table is loaded
into pandas. Safe to call repeatedly in one process: the engines are disposed afterwards,
so a later read-write ``duckdb.connect(path)`` in the same process works.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from great_expectations.core import ExpectationValidationResult
from great_expectations.data_context import FileDataContext

from ewh import paths
from ewh.quality import project
from ewh.quality.results import (
    ExpectationOutcome,
    SuiteResult,
    has_error_failures,
    message,
    missing_table_result,
)
from ewh.quality.suites import SEVERITIES, SUITES, Severity, SuiteSpec, suite_parameters

__all__ = [
    "ExpectationOutcome",
    "SuiteResult",
    "data_docs_index",
    "has_error_failures",
    "validate_warehouse",
]

data_docs_index = project.data_docs_index


def validate_warehouse(
    warehouse_path: Path | str | None = None,
    suites: Iterable[str] | None = None,
    build_docs: bool = True,
    *,
    as_of: datetime | None = None,
) -> list[SuiteResult]:
    """Run the named suites (default: all) against the DuckDB file at ``warehouse_path``
    (default: ``EWH_WAREHOUSE``, else data/warehouse.duckdb), opened read-only.

    ``as_of`` (naive UTC, default now) anchors the time-window expectations.
    Data Docs are (re)built at ``data_docs_index()`` when ``build_docs``.
    """
    path = Path(warehouse_path) if warehouse_path is not None else paths.warehouse_path()
    if not path.exists():
        raise FileNotFoundError(f"warehouse file not found: {path}")
    specs = _select(suites)
    instant = as_of or datetime.now(UTC).replace(tzinfo=None)
    context = project.open_context(path)
    datasource = context.data_sources.get(project.DATASOURCE)
    try:
        existing = _existing_tables(datasource.get_engine(), specs)
        results: list[SuiteResult] = []
        run_ids: list[Any] = []
        for spec in specs:
            if spec.qualified_table not in existing:
                results.append(missing_table_result(spec.name, spec.qualified_table))
                continue
            checkpoint = context.checkpoints.get(project.checkpoint_name(spec))
            run = checkpoint.run(expectation_parameters=dict(suite_parameters(instant)))
            for run_id, suite_result in run.run_results.items():
                run_ids.append(run_id)
                results.append(_to_suite_result(spec, suite_result.results))
        if build_docs and run_ids:
            _build_docs(context, run_ids)
        return results
    finally:
        project.dispose_engines(datasource)


def _select(names: Iterable[str] | None) -> list[SuiteSpec]:
    if names is None:
        return list(SUITES.values())
    wanted = list(names)
    unknown = sorted(set(wanted) - set(SUITES))
    if unknown:
        raise ValueError(f"unknown suites {unknown}; known: {sorted(SUITES)}")
    return [SUITES[name] for name in wanted]


def _existing_tables(engine: sa.Engine, specs: Sequence[SuiteSpec]) -> set[str]:
    """The schema-qualified tables (or views) among ``specs`` that exist in the warehouse."""
    query = sa.text("select table_schema || '.' || table_name from information_schema.tables")
    with engine.connect() as connection:
        found = {row[0] for row in connection.execute(query).fetchall()}
    return {spec.qualified_table for spec in specs if spec.qualified_table in found}


def _build_docs(context: FileDataContext, run_ids: list[Any]) -> None:
    # Only this run's results are rendered; the index lists every stored run.
    context.build_data_docs(site_names=[project.DOCS_SITE], resource_identifiers=run_ids)


def _to_suite_result(
    spec: SuiteSpec, results: Sequence[ExpectationValidationResult]
) -> SuiteResult:
    outcomes = tuple(_to_outcome(spec, r) for r in results)
    return SuiteResult(
        suite=spec.name,
        table=spec.qualified_table,
        success=all(o.success for o in outcomes),
        expectations=outcomes,
    )


def _to_outcome(spec: SuiteSpec, evr: ExpectationValidationResult) -> ExpectationOutcome:
    config = evr.expectation_config
    assert config is not None
    kwargs: Mapping[str, Any] = config.kwargs
    meta: Mapping[str, Any] = config.meta or {}
    severity = cast(Severity, meta.get("severity", "error"))
    if severity not in SEVERITIES:
        severity = "error"
    column = kwargs.get("column") or kwargs.get("column_A")
    result: Mapping[str, Any] = evr.result or {}
    info = evr.exception_info or {}
    raised = bool(info.get("raised_exception"))
    error = str(info.get("exception_message")) if raised else None
    count = result.get("unexpected_count")
    keys = tuple(
        row.get(spec.key_column)
        for row in result.get("partial_unexpected_index_list") or []
        if isinstance(row, Mapping)
    )
    return ExpectationOutcome(
        expectation_type=config.type,
        column=column,
        severity=severity,
        success=bool(evr.success) and not raised,
        unexpected_count=int(count) if count is not None else None,
        sample_values=tuple(result.get("partial_unexpected_list") or ()),
        sample_keys=keys,
        message=message(spec.qualified_table, column, config.type, severity, kwargs, result, error),
    )
