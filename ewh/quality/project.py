"""The file-mode GX project in ``expectations/``: open it, (re)write it from code.

The committed ``great_expectations.yml`` holds the datasource with the connection string
``${EWH_GX_WAREHOUSE_URL}``; each run fills it through ``runtime_environment`` with the
warehouse file in use, so no path is committed and nothing is written back at run time.
The datasource opens DuckDB read-only, with a memory limit (``DUCKDB_CONNECT_ARGS``).

Regenerate the committed project after editing ``suites.py``:
``python -m ewh.quality.project``.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import duckdb
import great_expectations as gx
from great_expectations.data_context import FileDataContext
from great_expectations.data_context.types.base import ProgressBarsConfig

from ewh.paths import PROJECT_ROOT
from ewh.quality import gx_duckdb_compat
from ewh.quality.suites import SUITES, SuiteSpec

PROJECT_DIR = PROJECT_ROOT / "expectations"
DATASOURCE = "warehouse"
URL_VARIABLE = "EWH_GX_WAREHOUSE_URL"
BATCH_DEFINITION = "whole_table"
DOCS_SITE = "local_site"
# Samples per expectation. SUMMARY keeps every row-returning query LIMIT-ed (pushdown only).
SAMPLE_SIZE = 5
# DuckDB's hash aggregates (uniqueness) otherwise take ~600 MB on 10M rows; capped, they spill.
DUCKDB_CONNECT_ARGS = {"read_only": True, "config": {"memory_limit": "512MB"}}


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


def _empty_warehouse(path: Path) -> None:
    """GX tests that each table asset exists when it is added: give it empty look-alikes."""
    from ewh.quality.suites import FCT_SESSIONS_COLUMNS
    from ewh.raw_schema import ensure_raw_tables

    con = duckdb.connect(str(path))
    try:
        ensure_raw_tables(con)
        columns = ", ".join(f"{name} varchar" for name in FCT_SESSIONS_COLUMNS)
        con.execute("create schema if not exists marts")
        con.execute(f"create table marts.fct_sessions ({columns})")
    finally:
        con.close()


def write_project(project_dir: Path = PROJECT_DIR) -> None:
    """(Re)write datasource, assets, suites, validation definitions and checkpoints from code."""
    with tempfile.TemporaryDirectory() as tmp:
        scratch = Path(tmp) / "scratch.duckdb"
        _empty_warehouse(scratch)
        context = open_context(scratch, project_dir)
        # Quiet, offline runs: no tqdm bars in Dagster logs, no usage analytics calls.
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        context.variables.analytics_enabled = False
        context.variables.save()
        datasource = context.data_sources.add_or_update_sql(
            name=DATASOURCE,
            connection_string="${" + URL_VARIABLE + "}",
            kwargs={"connect_args": DUCKDB_CONNECT_ARGS},
        )
        try:
            for spec in SUITES.values():
                asset = datasource.add_table_asset(
                    name=asset_name(spec), table_name=spec.table, schema_name=spec.schema
                )
                batch_definition = asset.add_batch_definition_whole_table(BATCH_DEFINITION)
                suite = context.suites.add_or_update(spec.to_gx_suite())
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
        finally:
            dispose_engines(datasource)


def dispose_engines(datasource: object) -> None:
    """Close both SQLAlchemy engines GX keeps, so the DuckDB file is released in-process."""
    get_engine = getattr(datasource, "get_engine", None)
    get_execution_engine = getattr(datasource, "get_execution_engine", None)
    if get_execution_engine is not None:
        get_execution_engine().engine.dispose()
    if get_engine is not None:
        get_engine().dispose()


def data_docs_index(project_dir: Path = PROJECT_DIR) -> Path:
    """Where Data Docs' index.html is built (gitignored: gx/uncommitted/)."""
    return project_dir / "gx" / "uncommitted" / "data_docs" / DOCS_SITE / "index.html"


if __name__ == "__main__":
    write_project()
    print(f"wrote the GX project under {PROJECT_DIR / 'gx'}")
