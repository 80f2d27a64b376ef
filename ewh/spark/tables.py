"""The Spark target's tables as DuckDB views, for everything that reads the built tables.

The serving copy, the segment sizes Dagster shows, the Great Expectations gate and the
prediction scoring read the warehouse's tables through DuckDB. With the Spark target
(EWH_DBT_TARGET=spark) those tables are Parquet folders under EWH_SPARK_WAREHOUSE
(`<schema>.db/<table>`, hive-style partition folders for the incremental models). `spark_views`
writes a DuckDB file of one view per table over its files, written afresh each time (a table
Spark added or changed is seen), without Spark's partition column, with Spark's UTC instants
as the naive UTC timestamps the project uses everywhere. `tables_for_reads` is the file those
readers open: the DuckDB warehouse, or that views file.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import duckdb
import pyarrow.parquet as pq

from ewh.common.settings import Settings
from ewh.common.sql_text import quote_ident, sql_literal

BUILT_SCHEMAS = ("staging", "intermediate", "marts", "segments")
SPARK_ONLY_COLUMNS = ("refresh_partition",)  # macros/incremental/partition_refresh.sql
VIEWS_FILE = "spark-views.duckdb"


def spark_table_folders(spark_warehouse: Path,
                        schemas: tuple[str, ...] = BUILT_SCHEMAS) -> dict[str, Path]:
    """schema.table -> its folder, for every table with at least one Parquet file."""
    found = {}
    for schema in schemas:
        root = spark_warehouse / f"{schema}.db"
        if not root.is_dir():
            continue
        for folder in sorted(p for p in root.iterdir() if p.is_dir()):
            if next(folder.rglob("*.parquet"), None) is not None:
                found[f"{schema}.{folder.name}"] = folder
    return found


def _view_sql(folder: Path) -> str:
    files = sorted(folder.rglob("*.parquet"))
    schema = pq.read_schema(files[0])
    columns = []
    for field in schema:
        if field.name in SPARK_ONLY_COLUMNS:
            continue
        name = quote_ident(field.name)
        if str(field.type).startswith("timestamp") and "tz=" in str(field.type):
            columns.append(f"timezone('UTC', {name}) as {name}")
        else:
            columns.append(name)
    pattern = sql_literal(str(folder / "**" / "*.parquet"))
    return (f"select {', '.join(columns)} from read_parquet({pattern}, "
            "hive_partitioning = false, union_by_name = true)")


def spark_views(spark_warehouse: Path, path: Path) -> Path:
    """Write `path`: a DuckDB file with one view per Spark table (see the module doc)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{uuid.uuid4().hex}.partial")
    try:
        with duckdb.connect(str(partial)) as con:
            for table, folder in spark_table_folders(spark_warehouse).items():
                schema, name = table.split(".")
                con.execute(f"create schema if not exists {quote_ident(schema)}")
                con.execute(f"create view {quote_ident(schema)}.{quote_ident(name)} as "
                            f"{_view_sql(folder)}")
            con.execute("checkpoint")
        os.replace(partial, path)
    finally:
        for leftover in (partial, partial.with_name(partial.name + ".wal")):
            leftover.unlink(missing_ok=True)
    return path


def tables_for_reads(settings: Settings) -> Path:
    """The DuckDB file holding the built tables: the warehouse, or views over Spark's."""
    if settings.dbt_target != "spark":
        return settings.warehouse
    return spark_views(settings.spark_warehouse, settings.spark_warehouse.parent / VIEWS_FILE)
