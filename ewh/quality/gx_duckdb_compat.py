"""Make Great Expectations' SQL datasource work on DuckDB (GX 1.24, duckdb-engine 0.17, SA 2.1).

Two things break out of the box, both only on the ``duckdb`` dialect:

1. Every metric fails with ``list index out of range``.
   ``SqlAlchemyExecutionEngine.execute_query`` executes inside ``with engine.connect()`` and
   returns the live cursor result; callers fetch rows only after the block has closed the
   connection. DuckDB drops a pending result when its connection closes, so the fetch sees no
   rows. Patch: for duckdb, buffer the rows with ``result.freeze()`` while the connection is
   still open and return a replay of them (supports ``fetchall``/``fetchmany``/``scalar``).
   Metric queries are aggregates or ``LIMIT``-ed samples, so buffering is small.

2. Column introspection (``table.columns``, used by every column expectation) fails for any
   table outside the ``main`` schema. SQLAlchemy 2.1's PostgreSQL reflection, which
   duckdb-engine reuses, queries ``pg_catalog.pg_collation`` which DuckDB lacks; GX then
   falls back to ``SELECT * FROM <table> LIMIT 1`` but drops the schema, so ``raw.events``
   becomes ``events`` and the query fails. Patch: for duckdb, read the column names and
   types from ``information_schema.columns`` (a catalog query; no table data is read).

3. A consequence of fix 1: query metrics (``UnexpectedRowsExpectation``) run the user query
   and ``fetchmany(200)`` from it; buffered, that would read *every* unexpected row into
   Python first. Patch: for duckdb, push the 200-row cap into the SQL as a ``LIMIT``, so only
   the rows GX keeps leave DuckDB. (The count GX reports is a separate ``COUNT(*)`` query.)

``apply()`` installs the patches once per process; other dialects keep GX's own code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from great_expectations.constants import MAX_RESULT_RECORDS
from great_expectations.execution_engine import SqlAlchemyExecutionEngine
from great_expectations.expectations.metrics import util as gx_metric_util
from great_expectations.expectations.metrics.query_metric_provider import QueryMetricProvider

DIALECT = "duckdb"
_MARKER = "_ewh_duckdb_compat"
_QUERY_RECORDS = "_get_sqlalchemy_records_from_substituted_batch_subquery"


def _buffered_execute_query(original: Any) -> Any:
    def execute_query(self: SqlAlchemyExecutionEngine, query: Any) -> Any:
        if self.dialect_name != DIALECT:
            return original(self, query)
        with self.get_connection() as connection:
            result = self._execute_query_with_recovery(connection, query)
            if not result.returns_rows:
                return result
            # Read the rows before the connection closes (DuckDB discards them on close);
            # calling the FrozenResult replays them as a normal Result (fetchall, scalar...).
            return result.freeze()()

    setattr(execute_query, _MARKER, True)
    execute_query.__doc__ = original.__doc__
    return execute_query


def _duckdb_column_metadata(original: Any) -> Any:
    def get_sqlalchemy_column_metadata(
        execution_engine: SqlAlchemyExecutionEngine,
        table_selectable: Any,
        schema_name: str | None = None,
    ) -> Sequence[Mapping[str, Any]] | None:
        if execution_engine.dialect_name != DIALECT or not isinstance(table_selectable, str):
            return original(execution_engine, table_selectable, schema_name)
        query = sa.text(
            "select column_name, data_type from information_schema.columns "
            "where table_schema = :schema and table_name = :table order by ordinal_position"
        )
        params = {"schema": schema_name or "main", "table": str(table_selectable)}
        with execution_engine.engine.connect() as connection:
            rows = connection.execute(query, params).fetchall()
        return [{"name": name, "type": data_type, "primary_key": False} for name, data_type in rows]

    setattr(get_sqlalchemy_column_metadata, _MARKER, True)
    return get_sqlalchemy_column_metadata


def _limited_query_records(original: Any) -> Any:
    def records(
        cls: type[QueryMetricProvider],
        substituted_batch_subquery: str,
        execution_engine: SqlAlchemyExecutionEngine,
        fetch_all: bool = False,
    ) -> list[dict]:
        if execution_engine.dialect_name == DIALECT and not fetch_all:
            substituted_batch_subquery = (
                f"select * from ({substituted_batch_subquery}) as capped "
                f"limit {MAX_RESULT_RECORDS}"
            )
        return original.__func__(cls, substituted_batch_subquery, execution_engine, fetch_all)

    setattr(records, _MARKER, True)
    return classmethod(records)


def apply() -> None:
    """Install the duckdb-only patches; calling it again is a no-op."""
    if not getattr(SqlAlchemyExecutionEngine.execute_query, _MARKER, False):
        SqlAlchemyExecutionEngine.execute_query = _buffered_execute_query(  # type: ignore[method-assign]
            SqlAlchemyExecutionEngine.execute_query
        )
    current = QueryMetricProvider.__dict__[_QUERY_RECORDS]
    if not getattr(current.__func__, _MARKER, False):
        setattr(QueryMetricProvider, _QUERY_RECORDS, _limited_query_records(current))
    # table_column_types imported the function by name, so patch it where it is looked up.
    from great_expectations.expectations.metrics.table_metrics import table_column_types

    for module in (gx_metric_util, table_column_types):
        current = module.get_sqlalchemy_column_metadata
        if not getattr(current, _MARKER, False):
            module.get_sqlalchemy_column_metadata = _duckdb_column_metadata(current)  # type: ignore[attr-defined]


def is_applied() -> bool:
    """Whether ``apply()`` has run in this process."""
    return bool(getattr(SqlAlchemyExecutionEngine.execute_query, _MARKER, False))
