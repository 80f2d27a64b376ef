"""DAGSTER_HOME with this project's instance settings (the one-writer pool limit)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ewh.common.settings import PROJECT_ROOT

TEMPLATE = Path(__file__).with_name("dagster.yaml")


def dagster_home() -> Path:
    """DAGSTER_HOME, else `.dagster_home` in the repository (what the Makefile exports)."""
    return Path(os.environ.get("DAGSTER_HOME") or PROJECT_ROOT / ".dagster_home").resolve()


def ensure_dagster_home(home: Path | None = None) -> Path:
    """Create the instance folder, install our dagster.yaml in it, set the pool limit."""
    home = home or dagster_home()
    home.mkdir(parents=True, exist_ok=True)
    config = home / "dagster.yaml"
    if not config.exists() or config.read_text().strip() == "":
        shutil.copyfile(TEMPLATE, config)
    set_pool_limits(home)
    return home


def set_pool_limits(home: Path) -> None:
    """Create the writer pool with one slot now, not lazily at the first claim.

    Dagster creates a pool from `default_limit` when a step first claims it; two runs
    that start together can both claim before it exists and then write at once.
    """
    import dagster as dg

    from orchestration.pools import WAREHOUSE_POOL

    with dg.DagsterInstance.from_config(str(home)) as instance:
        storage = instance.event_log_storage
        if storage.supports_global_concurrency_limits:
            storage.set_concurrency_slots(WAREHOUSE_POOL, 1)
