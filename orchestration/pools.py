"""Concurrency pools. DuckDB allows one writer per file: every step that writes or reads
the warehouse file runs in this pool, and the instance gives it one slot."""

WAREHOUSE_POOL = "duckdb_writer"
