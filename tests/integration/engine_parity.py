"""Compare the tables Spark built with DuckDB's, read from Spark's own Parquet files.

Spark's tables are Parquet folders under its warehouse (`<schema>.db/<table>`, hive-style
partition folders for the incremental models); DuckDB reads them directly, so the comparison
needs no second JVM. The rule (issue: cross-engine parity): exact for keys, integers, strings,
booleans, dates and timestamps (to the microsecond); floats (and any decimal Spark produced)
equal within a relative tolerance of 1e-9. Rows are paired as multisets: the exact rows first
(EXCEPT ALL both ways), then what is left is paired by its exact columns and compared float by
float.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import duckdb

from ewh.spark.tables import SPARK_ONLY_COLUMNS

REL_TOLERANCE = 1e-9
ABS_TOLERANCE = 1e-12  # a float that should be 0 may be a rounding residue on either engine
INEXACT_TYPES = ("DOUBLE", "FLOAT", "REAL", "DECIMAL")


@dataclass
class TableDifference:
    table: str
    problem: str
    only_duckdb: list[tuple] = field(default_factory=list)
    only_spark: list[tuple] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"{self.table}: {self.problem}; only DuckDB {self.only_duckdb[:3]} "
                f"only Spark {self.only_spark[:3]}")


def spark_table_path(spark_warehouse: Path, table: str) -> Path:
    schema, name = table.split(".")
    return spark_warehouse / f"{schema}.db" / name


def duckdb_tables(warehouse: Path, schemas: tuple[str, ...]) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        quoted = ", ".join(f"'{s}'" for s in schemas)
        return [r[0] for r in con.sql(
            "select table_schema || '.' || table_name from information_schema.tables "
            f"where table_schema in ({quoted}) and table_type = 'BASE TABLE' order by 1"
        ).fetchall()]


def _close(x: object, y: object) -> bool:
    if x is None or y is None:
        return x is None and y is None
    if isinstance(x, (float, Decimal)) or isinstance(y, (float, Decimal)):
        a, b = float(x), float(y)
        return math.isclose(a, b, rel_tol=REL_TOLERANCE, abs_tol=ABS_TOLERANCE) or (
            math.isnan(a) and math.isnan(b))
    return x == y


def compare_table(con: duckdb.DuckDBPyConnection, table: str, spark_warehouse: Path,
                  ignored: frozenset[str] = frozenset()) -> TableDifference | None:
    """None when `duck.<table>` and Spark's table hold the same rows (see the module doc)."""
    folder = spark_table_path(spark_warehouse, table)
    files = sorted(folder.rglob("*.parquet"))
    duck_columns = con.sql(
        "select column_name, data_type from information_schema.columns "
        f"where table_catalog = 'duck' and table_schema = '{table.split('.')[0]}' "
        f"and table_name = '{table.split('.')[1]}' "
        "order by ordinal_position").fetchall()
    if not files:
        [(rows,)] = con.sql(f"select count(*) from duck.{table}").fetchall()
        return None if rows == 0 else TableDifference(table, f"no Spark files, DuckDB {rows} rows")
    spark = con.sql(f"select * from read_parquet({[str(f) for f in files]!r}, "
                    "hive_partitioning = true, union_by_name = true)")
    spark_columns = dict(zip(spark.columns, spark.types, strict=True))
    compared = [(c, t) for c, t in duck_columns if c not in ignored]
    missing = [c for c, _ in compared if c not in spark_columns]
    extra = sorted(set(spark_columns) - {c for c, _ in duck_columns} - set(SPARK_ONLY_COLUMNS))
    if missing or extra:
        return TableDifference(table, f"columns missing on Spark {missing}, extra {extra}")
    con.register("spark_rows", spark)

    def select(source: str, *, spark_side: bool) -> str:
        parts = []
        for name, duck_type in compared:
            column = f'"{name}"'
            if spark_side and str(spark_columns[name]).startswith("TIMESTAMP WITH TIME ZONE"):
                column = f"cast({column} as timestamp)"  # Spark's instants, naive UTC
            if spark_side and not str(spark_columns[name]).startswith(INEXACT_TYPES):
                column = f"cast({column} as {duck_type})"
            parts.append(f"{column} as \"{name}\"")
        return f"select {', '.join(parts)} from {source}"

    duck_sql, spark_sql = select(f"duck.{table}", spark_side=False), select("spark_rows",
                                                                           spark_side=True)
    only_duck = con.sql(f"{duck_sql} except all {spark_sql}").fetchall()
    only_spark = con.sql(f"{spark_sql} except all {duck_sql}").fetchall()
    con.unregister("spark_rows")
    if not only_duck and not only_spark:
        return None
    inexact = [i for i, (name, duck_type) in enumerate(compared)
               if duck_type.startswith(INEXACT_TYPES)
               or str(spark_columns[name]).startswith(INEXACT_TYPES)]
    exact = [i for i in range(len(compared)) if i not in inexact]
    # pair what is left by its exact columns, then float by float
    waiting: dict[tuple, list[tuple]] = defaultdict(list)
    for row in only_spark:
        waiting[tuple(row[i] for i in exact)].append(row)
    unpaired = []
    for row in only_duck:
        candidates = waiting.get(tuple(row[i] for i in exact), [])
        match = next((k for k, other in enumerate(candidates)
                      if all(_close(row[i], other[i]) for i in inexact)), None)
        if match is None:
            unpaired.append(row)
        else:
            candidates.pop(match)
    left_spark = [row for rows in waiting.values() for row in rows]
    if not unpaired and not left_spark:
        return None
    return TableDifference(table, f"{len(unpaired)} DuckDB rows and {len(left_spark)} Spark "
                           f"rows unpaired (columns {[c for c, _ in compared]})",
                           unpaired, left_spark)


def compare_engines(warehouse: Path, spark_warehouse: Path,
                    schemas: tuple[str, ...] = ("marts", "segments"),
                    ignored: frozenset[str] = frozenset()) -> tuple[list[str],
                                                                    list[TableDifference]]:
    """Every table of `schemas` in the DuckDB warehouse against Spark's: (tables, differences)."""
    tables = duckdb_tables(warehouse, schemas)
    differences = []
    with duckdb.connect(":memory:") as con:
        con.execute("set TimeZone = 'UTC'")
        con.execute(f"attach '{warehouse}' as duck (read_only)")
        for table in tables:
            difference = compare_table(con, table, spark_warehouse, ignored)
            if difference is not None:
                differences.append(difference)
    return tables, differences


# ---- running the engines (the parity test files) -------------------------------------------

def dbt_vars(as_of: str) -> str:
    return json.dumps({"as_of": as_of})


def stamp(at: datetime) -> str:
    return at.strftime("%Y-%m-%d %H:%M:%S")


def spark_target_args(work: Path) -> tuple[str, ...]:
    """Spark's dbt target and log folders under `work` (never the project's target/)."""
    return ("--target-path", str(work / "spark-target"), "--log-path", str(work / "spark-logs"))


def spark_run_results(work: Path) -> list[dict[str, Any]]:
    return json.loads((work / "spark-target" / "run_results.json").read_text())["results"]
