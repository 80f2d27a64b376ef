"""Where things live. Every path is part of the public interface (PRODUCT.md)."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _from_env(var: str, default: str) -> Path:
    value = os.environ.get(var)
    path = Path(value) if value else PROJECT_ROOT / default
    return path if path.is_absolute() else (Path.cwd() / path)


def warehouse_path() -> Path:
    """The DuckDB warehouse file: EWH_WAREHOUSE, else data/warehouse.duckdb."""
    return _from_env("EWH_WAREHOUSE", "data/warehouse.duckdb")


def landing_dir() -> Path:
    """Closed landing files wait here for the loader: EWH_LANDING_DIR, else data/landing."""
    return _from_env("EWH_LANDING_DIR", "data/landing")


def serving_path() -> Path:
    """The read-only copy analysts and the API read: EWH_SERVING, else data/serving.duckdb."""
    return _from_env("EWH_SERVING", "data/serving.duckdb")


def exports_dir() -> Path:
    """Segment exports: EWH_EXPORTS_DIR, else data/exports."""
    return _from_env("EWH_EXPORTS_DIR", "data/exports")


def ops_db_path() -> Path:
    """Operational records (run-failure alerts), apart from the warehouse's writer lock:
    EWH_OPS_DB, else data/ops.duckdb."""
    return _from_env("EWH_OPS_DB", "data/ops.duckdb")
