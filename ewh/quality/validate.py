"""Validate the warehouse with the GX suites, by SQL pushdown only.

Every metric is an aggregate or a LIMIT-ed sample computed in DuckDB; no table is loaded
into pandas. Safe to call repeatedly in one process: the engines are disposed afterwards,
so a later read-write ``duckdb.connect(path)`` in the same process works.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, cast

import sqlalchemy as sa
from great_expectations.core import ExpectationValidationResult
from great_expectations.data_context import FileDataContext
from great_expectations.data_context.types.resource_identifiers import (
    ExpectationSuiteIdentifier,
)

from ewh.common.clock import resolve_as_of
from ewh.common.settings import get_settings
from ewh.quality import project, volume
from ewh.quality.catalog import (
    SEGMENT_KIND,
    SEVERITIES,
    Severity,
    SuiteSpec,
    all_suites,
    suite_parameters,
)
from ewh.quality.docs_assets import bundle_offline
from ewh.quality.results import (
    ExpectationOutcome,
    SuiteResult,
    has_error_failures,
    message,
    missing_table_result,
    optional_column_message,
)
from ewh.quality.segment_tables import SegmentTable, segment_tables

__all__ = [
    "ExpectationOutcome",
    "SuiteResult",
    "data_docs_index",
    "gx_project_dir",
    "has_error_failures",
    "resolve_as_of",
    "validate_warehouse",
]

ROW_COUNT = "expect_table_row_count_to_be_between"
UNEXPECTED_ROWS = "unexpected_rows_expectation"


def gx_project_dir() -> Path:
    """The GX project: the EWH_GX_PROJECT_DIR setting (tests use a copy), else expectations/."""
    return get_settings().gx_project_dir or project.PROJECT_DIR


def data_docs_index() -> Path:
    return project.data_docs_index(gx_project_dir())


def validate_warehouse(
    warehouse_path: Path | str | None = None,
    suites: Iterable[str] | None = None,
    build_docs: bool = True,
    *,
    as_of: datetime | None = None,
    segments: Iterable[SegmentTable] | None = None,
    project_dir: Path | None = None,
    record_volumes: bool = True,
) -> list[SuiteResult]:
    """Run the named suites (default: all) against the DuckDB file at ``warehouse_path``
    (default: ``EWH_WAREHOUSE``, else data/warehouse.duckdb), opened read-only.

    ``segments`` default to those in the dbt manifest (target/manifest.json).
    ``as_of`` anchors the time windows (see ``resolve_as_of``). Segment sizes are recorded
    for the next run's volume check when ``record_volumes``. Data Docs are (re)built at
    ``data_docs_index()`` when ``build_docs``.
    """
    path = Path(warehouse_path) if warehouse_path is not None else get_settings().warehouse
    if not path.exists():
        raise FileNotFoundError(f"warehouse file not found: {path}")
    catalog = all_suites(segment_tables() if segments is None else segments)
    specs = _select(catalog, suites)
    instant = resolve_as_of(as_of)
    folder = project_dir or gx_project_dir()
    context = project.open_context(path, folder)
    datasource = context.data_sources.get(project.DATASOURCE)
    try:
        engine = datasource.get_engine()
        columns = _table_columns(engine)
        # Generated here, not committed: what a fresh clone lacks, or what the code changed.
        project.sync_suites(context, catalog.values(), set(columns))
        previous = volume.read_sizes(path)
        results: list[SuiteResult] = []
        run_ids: dict[str, Any] = {}
        for spec in specs:
            if spec.qualified_table not in columns:
                results.append(missing_table_result(spec.name, spec.qualified_table))
                continue
            band = volume.band(previous.get(spec.name))
            parameters: dict[str, Any] = dict(suite_parameters(instant))
            if spec.kind == SEGMENT_KIND:
                parameters.update(band.as_parameters())
            checkpoint = context.checkpoints.get(project.checkpoint_name(spec))
            run = checkpoint.run(expectation_parameters=parameters)
            for run_id, suite_result in run.run_results.items():
                run_ids[spec.name] = run_id
                outcomes = tuple(
                    _to_outcome(spec, evr, columns[spec.qualified_table], band, engine)
                    for evr in suite_result.results
                )
                results.append(SuiteResult(spec.name, spec.qualified_table,
                                           all(o.success for o in outcomes), outcomes))
        if record_volumes:
            _record_sizes(path, specs, results, instant)
        if build_docs and run_ids:
            results = _build_docs(context, folder, run_ids, results)
        return results
    finally:
        project.dispose_engines(datasource)


def _select(catalog: Mapping[str, SuiteSpec], names: Iterable[str] | None) -> list[SuiteSpec]:
    if names is None:
        return list(catalog.values())
    wanted = list(names)
    unknown = sorted(set(wanted) - set(catalog))
    if unknown:
        raise ValueError(f"unknown suites {unknown}; known: {sorted(catalog)}")
    return [catalog[name] for name in wanted]


def _table_columns(engine: sa.Engine) -> dict[str, set[str]]:
    """Every schema-qualified table (or view) in the warehouse, with its column names."""
    query = sa.text("select table_schema || '.' || table_name, column_name "
                    "from information_schema.columns")
    found: dict[str, set[str]] = {}
    with engine.connect() as connection:
        for table, column in connection.execute(query).fetchall():
            found.setdefault(table, set()).add(column)
    return found


def _record_sizes(path: Path, specs: Sequence[SuiteSpec], results: Sequence[SuiteResult],
                  as_of: datetime) -> None:
    # Only sizes from a run without error-level failures become the next baseline.
    by_name = {r.suite: r for r in results}
    sizes: dict[str, int] = {}
    for spec in specs:
        result = by_name.get(spec.name)
        if spec.kind != SEGMENT_KIND or result is None or result.errors:
            continue
        for outcome in result.expectations:
            if outcome.expectation_type == ROW_COUNT and outcome.observed_value is not None:
                sizes[spec.name] = int(outcome.observed_value)
    volume.record_sizes(path, sizes, as_of)


def _build_docs(context: FileDataContext, folder: Path, run_ids: Mapping[str, Any],
                results: list[SuiteResult]) -> list[SuiteResult]:
    project.prune_runs(folder)
    # This run's results and its suites' pages are rendered (the index links both); the
    # index lists every stored run. Then the pages are made to work offline.
    suites = [ExpectationSuiteIdentifier(name=name) for name in run_ids]
    context.build_data_docs(site_names=[project.DOCS_SITE],
                            resource_identifiers=[*run_ids.values(), *suites])
    bundle_offline(project.data_docs_dir(folder))
    linked = []
    for result in results:
        url = None
        if result.suite in run_ids:
            sites = context.get_docs_sites_urls(resource_identifier=run_ids[result.suite],
                                                site_name=project.DOCS_SITE)
            url = sites[0]["site_url"] if sites else None
        linked.append(SuiteResult(result.suite, result.table, result.success,
                                  result.expectations, url))
    return linked


def _exception(evr: ExpectationValidationResult) -> str | None:
    """The first error message, from either shape GX uses for ``exception_info``."""
    info: Mapping[str, Any] = evr.exception_info or {}
    entries = [info] if "raised_exception" in info else list(info.values())
    for entry in entries:
        if isinstance(entry, Mapping) and entry.get("raised_exception"):
            return str(entry.get("exception_message"))
    return None


def _unexpected_rows_sample(engine: sa.Engine, spec: SuiteSpec, query: str,
                            column: str | None) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """A few offending rows of a custom-SQL expectation (GX's SUMMARY reports only a count)."""
    sql = query.replace("{batch}", spec.qualified_table)
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(f"select * from ({sql}) as unexpected limit {project.SAMPLE_SIZE}")
        ).mappings().fetchall()
    values = tuple(row.get(column) for row in rows) if column else ()
    return values, tuple(row.get(spec.key_column) for row in rows)


def _to_outcome(spec: SuiteSpec, evr: ExpectationValidationResult, table_columns: set[str],
                band: volume.Band, engine: sa.Engine) -> ExpectationOutcome:
    config = evr.expectation_config
    assert config is not None
    kwargs: Mapping[str, Any] = config.kwargs
    meta: dict[str, Any] = dict(config.meta or {})
    severity = cast(Severity, meta.get("severity", "error"))
    if severity not in SEVERITIES:
        severity = "error"
    column = kwargs.get("column") or kwargs.get("column_A") or meta.get("column")
    result: Mapping[str, Any] = evr.result or {}
    error = _exception(evr)
    if error and column in spec.optional_columns and column not in table_columns:
        text = optional_column_message(spec.qualified_table, column, config.type)
        return ExpectationOutcome(config.type, column, "warn", False, None, (), (), text)
    count = result.get("unexpected_count")
    values = tuple(result.get("partial_unexpected_list") or ())
    keys = tuple(
        row.get(spec.key_column)
        for row in result.get("partial_unexpected_index_list") or []
        if isinstance(row, Mapping)
    )
    if config.type == UNEXPECTED_ROWS:
        count = result.get("observed_value")  # the number of bad rows
    if config.type == ROW_COUNT:
        meta["band"] = band.describe()
    if config.type == UNEXPECTED_ROWS and not evr.success and not error:
        values, keys = _unexpected_rows_sample(
            engine, spec, str(kwargs["unexpected_rows_query"]), column)
    return ExpectationOutcome(
        expectation_type=config.type,
        column=column,
        severity=severity,
        success=bool(evr.success) and not error,
        unexpected_count=int(count) if count is not None else None,
        sample_values=values,
        sample_keys=keys,
        message=message(spec.qualified_table, column, config.type, severity, kwargs, result,
                        error, meta),
        observed_value=result.get("observed_value"),
    )
