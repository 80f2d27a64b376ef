"""The file-mode GX project in ``expectations/``: open it, keep it in sync with the code.

Only ``gx/great_expectations.yml`` (the datasource, its table assets, the stores, Data Docs)
and the Data Docs CSS plugin are committed. Every suite, validation definition and
checkpoint is generated from code (``suites.py``, ``catalog.py``) into ``gx/expectations/``,
``gx/validation_definitions/`` and ``gx/checkpoints/`` (gitignored): each validation run
writes what is missing or differs from the code (``sync_suites``) and unwires the segment
suites no longer in the dbt manifest, writing only what changed. A fresh clone therefore
validates as is; ``python -m ewh.quality.project`` writes the whole project ahead of a run.

The committed ``great_expectations.yml`` holds the datasource with the connection string
``${EWH_GX_WAREHOUSE_URL}``; each run fills it through ``runtime_environment`` with the
warehouse file in use, so no path is committed. The datasource opens DuckDB read-only, with
a memory limit (``DUCKDB_CONNECT_ARGS``). GX writes ``gx/expectations/.ge_store_backend_id``
itself when it is missing, from the yml's ``data_context_id``.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb
import great_expectations as gx
from great_expectations.data_context import FileDataContext
from great_expectations.data_context.types.base import ProgressBarsConfig
from great_expectations.exceptions import DataContextError

from ewh.common.settings import PROJECT_ROOT
from ewh.quality import gx_duckdb_compat
from ewh.quality.catalog import SEGMENT_KIND, TABLE_KIND, SuiteSpec

PROJECT_DIR = PROJECT_ROOT / "expectations"
DATASOURCE = "warehouse"
URL_VARIABLE = "EWH_GX_WAREHOUSE_URL"
BATCH_DEFINITION = "whole_table"
DOCS_SITE = "local_site"
# Samples per expectation. SUMMARY keeps every row-returning query LIMIT-ed (pushdown only).
SAMPLE_SIZE = 5
# DuckDB's hash aggregates (uniqueness) otherwise take ~600 MB on 10M rows; capped, they spill.
# bench/quality.py, 10M rows: peak RSS 605 MiB at 256MB (839 MiB at 512MB, a little faster).
DUCKDB_CONNECT_ARGS = {"read_only": True, "config": {"memory_limit": "256MB"}}
# Stored validation results and their Data Docs pages kept per suite (older ones are pruned).
KEEP_RUNS = 30
# The suites this module writes carry meta.kind; any other suite in the store is left alone.
GENERATED_KINDS = (TABLE_KIND, SEGMENT_KIND)
# The folders of gx/ they are written to, with GX's .ge_store_backend_id (all gitignored).
GENERATED_DIRS = ("expectations", "validation_definitions", "checkpoints")


def warehouse_url(warehouse_path: Path) -> str:
    return f"duckdb:///{Path(warehouse_path).resolve()}"


def open_context(warehouse_path: Path, project_dir: Path = PROJECT_DIR) -> FileDataContext:
    """The file context with the datasource pointed at ``warehouse_path`` for this run only."""
    gx_duckdb_compat.apply()
    context = gx.get_context(
        mode="file",
        project_root_dir=project_dir,
        runtime_environment={URL_VARIABLE: warehouse_url(warehouse_path)},
    )
    assert isinstance(context, FileDataContext)
    return context


def asset_name(spec: SuiteSpec) -> str:
    return spec.qualified_table


def checkpoint_name(spec: SuiteSpec) -> str:
    return f"{spec.name}_checkpoint"


def validation_definition_name(spec: SuiteSpec) -> str:
    return f"{spec.name}_on_{spec.schema}_{spec.table}"


def result_format(spec: SuiteSpec) -> dict[str, object]:
    return {
        "result_format": "SUMMARY",
        "partial_unexpected_count": SAMPLE_SIZE,
        "unexpected_index_column_names": [spec.key_column],
    }


def gx_suite(spec: SuiteSpec) -> gx.ExpectationSuite:
    suite = spec.to_gx_suite()
    suite.meta = {**(suite.meta or {}), "kind": spec.kind, "table": spec.qualified_table}
    return suite


def strip_ids(value: Any) -> Any:
    """A suite's JSON without the ids GX assigns on save (to compare content only; the notes
    count: they carry the severity into Data Docs)."""
    if isinstance(value, Mapping):
        return {k: strip_ids(v) for k, v in value.items() if k != "id"}
    if isinstance(value, list):
        return [strip_ids(v) for v in value]
    return value


def _suite_json(suite: gx.ExpectationSuite) -> Any:
    return strip_ids(json.loads(json.dumps(suite.to_json_dict(), default=str)))


def _batch_definition(datasource: Any, spec: SuiteSpec) -> Any:
    """The whole-table batch definition of ``spec``'s table asset, added when missing."""
    try:
        asset = datasource.get_asset(asset_name(spec))
    except LookupError:
        asset = datasource.add_table_asset(
            name=asset_name(spec), table_name=spec.table, schema_name=spec.schema
        )
    try:
        return asset.get_batch_definition(BATCH_DEFINITION)
    except KeyError:
        return asset.add_batch_definition_whole_table(BATCH_DEFINITION)


def _wire(context: FileDataContext, datasource: Any, spec: SuiteSpec) -> None:
    """Asset, batch definition, suite, validation definition and checkpoint for ``spec``."""
    batch_definition = _batch_definition(datasource, spec)
    suite = context.suites.add_or_update(gx_suite(spec))
    definition = context.validation_definitions.add_or_update(
        gx.ValidationDefinition(
            name=validation_definition_name(spec), data=batch_definition, suite=suite
        )
    )
    context.checkpoints.add_or_update(
        gx.Checkpoint(
            name=checkpoint_name(spec),
            validation_definitions=[definition],
            result_format=result_format(spec),
        )
    )


def _unwire(context: FileDataContext, datasource: Any, suite_name: str, table: str) -> None:
    for store, name in (
        (context.checkpoints, f"{suite_name}_checkpoint"),
        (context.validation_definitions, f"{suite_name}_on_{table.replace('.', '_')}"),
        (context.suites, suite_name),
    ):
        with contextlib.suppress(DataContextError):  # already gone
            store.delete(name)
    with contextlib.suppress(LookupError):
        datasource.delete_asset(table)


def _is_current(context: FileDataContext, spec: SuiteSpec) -> bool:
    """Whether ``spec``'s suite, validation definition and checkpoint are all stored, the
    suite as the code defines it."""
    try:
        stored = context.suites.get(spec.name)
        context.validation_definitions.get(validation_definition_name(spec))
        context.checkpoints.get(checkpoint_name(spec))
    except DataContextError:  # not generated yet (a fresh clone), or deleted
        return False
    return _suite_json(stored) == _suite_json(gx_suite(spec))


def sync_suites(
    context: FileDataContext, specs: Iterable[SuiteSpec], existing_tables: set[str]
) -> list[str]:
    """Generate what is missing or stale: wire every suite of ``specs`` (fixed or segment)
    whose files are absent or differ from the code, and unwire every generated suite not in
    ``specs`` (a segment no longer in the manifest). Returns the names written. A suite
    whose table is not built yet is left alone: GX refuses an asset on a missing table, and
    the run reports it as an error."""
    datasource = context.data_sources.get(DATASOURCE)
    wanted = {s.name: s for s in specs}
    changed: list[str] = []
    for spec in wanted.values():
        if spec.qualified_table in existing_tables and not _is_current(context, spec):
            _wire(context, datasource, spec)
            changed.append(spec.name)
    for suite in context.suites.all():
        meta = suite.meta or {}
        if meta.get("kind") in GENERATED_KINDS and suite.name not in wanted:
            _unwire(context, datasource, suite.name, str(meta.get("table")))
            changed.append(suite.name)
    return changed


def _scratch_warehouse(path: Path, specs: Iterable[SuiteSpec]) -> None:
    """GX tests that each table asset exists when it is added: give it empty look-alikes."""
    con = duckdb.connect(str(path))
    try:
        for spec in specs:
            con.execute(f'create schema if not exists "{spec.schema}"')
            con.execute(f'create table if not exists "{spec.schema}"."{spec.table}" (x int)')
    finally:
        con.close()


def write_project(specs: Iterable[SuiteSpec], project_dir: Path = PROJECT_DIR) -> None:
    """(Re)write datasource, assets, suites, validation definitions and checkpoints from code,
    without a warehouse (against empty look-alike tables)."""
    specs = list(specs)
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / "scratch.duckdb"
        _scratch_warehouse(scratch, specs)
        context = open_context(scratch, project_dir)
        # Quiet, offline runs: no tqdm bars in Dagster logs, no usage analytics calls.
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        context.variables.analytics_enabled = False
        context.variables.save()
        try:
            datasource = context.data_sources.get(DATASOURCE)
        except KeyError:
            datasource = context.data_sources.add_sql(
                name=DATASOURCE,
                connection_string="${" + URL_VARIABLE + "}",
                kwargs={"connect_args": DUCKDB_CONNECT_ARGS},
            )
        try:
            for spec in specs:  # the yml's table assets, added when missing
                _batch_definition(datasource, spec)
            # Only what changed is rewritten: GX assigns fresh ids on every save.
            sync_suites(context, specs, {s.qualified_table for s in specs})
        finally:
            dispose_engines(datasource)


def dispose_engines(datasource: object) -> None:
    """Close both SQLAlchemy engines GX keeps, so the DuckDB file is released in-process.

    Also forget the dialect's result-type memos: SQLAlchemy keys them by the DB-API column
    types of every result, here duckdb's DuckDBPyType objects, and keeps them as long as the
    engine lives (GX caches it until the interpreter exits), so nothing of DuckDB's outlives
    the validation through them (see ewh/cli/quality.py for the teardown report)."""
    get_engine = getattr(datasource, "get_engine", None)
    get_execution_engine = getattr(datasource, "get_execution_engine", None)
    engines = []
    if get_execution_engine is not None:
        engines.append(get_execution_engine().engine)
    if get_engine is not None:
        engines.append(get_engine())
    for engine in engines:
        engine.dispose()
        memos = getattr(engine.dialect, "_type_memos", None)
        if memos is not None:
            memos.clear()


def data_docs_dir(project_dir: Path = PROJECT_DIR) -> Path:
    """Where Data Docs are built (gitignored: gx/uncommitted/)."""
    return project_dir / "gx" / "uncommitted" / "data_docs" / DOCS_SITE


def validations_dir(project_dir: Path = PROJECT_DIR) -> Path:
    """GX's stored validation results (gx/uncommitted/validations/<suite>/...)."""
    return project_dir / "gx" / "uncommitted" / "validations"


def data_docs_index(project_dir: Path = PROJECT_DIR) -> Path:
    return data_docs_dir(project_dir) / "index.html"


def prune_runs(project_dir: Path = PROJECT_DIR, keep: int = KEEP_RUNS) -> None:
    """Keep the newest ``keep`` stored results (and their pages) per suite: hourly runs
    would otherwise grow the store, and the Data Docs index, without bound."""
    uncommitted = project_dir / "gx" / "uncommitted"
    for root in (uncommitted / "validations", data_docs_dir(project_dir) / "validations"):
        for runs in root.glob("*/__none__"):
            stamped = sorted(p for p in runs.iterdir() if p.is_dir())  # names are UTC stamps
            for old in stamped[:-keep] if keep else stamped:
                shutil.rmtree(old, ignore_errors=True)


def rebuild_result_pages(results: Iterable[Path], project_dir: Path = PROJECT_DIR) -> None:
    """Render again the Data Docs pages of these stored validation results (files under
    ``validations_dir``, rewritten since: an erasure), and the index; offline, as after a
    run. Building docs reads only the stores: the datasource is never opened (its URL points
    at no file)."""
    from ewh.quality.docs_assets import bundle_offline

    root = validations_dir(project_dir)
    wanted = {p.relative_to(root).with_suffix("").parts for p in results}
    if not wanted:
        return
    context = open_context(project_dir / "no-warehouse.duckdb", project_dir)
    keys = [key for key in context.validation_results_store.list_keys()
            if tuple(key.to_tuple()) in wanted]
    context.build_data_docs(site_names=[DOCS_SITE], resource_identifiers=keys)
    bundle_offline(data_docs_dir(project_dir))


if __name__ == "__main__":
    from ewh.quality.catalog import all_suites
    from ewh.quality.segment_tables import segment_tables

    write_project(all_suites(segment_tables()).values())
    print(f"wrote the GX project under {PROJECT_DIR / 'gx'}")
