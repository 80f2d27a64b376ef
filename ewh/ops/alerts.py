"""Run-failure alerts: a row in `alerts.run_failures` (data/ops.duckdb) per failed run.

They live in their own small DuckDB file, not in the warehouse, so recording a failure
never waits for (or blocks) the warehouse's single writer.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import duckdb

DDL = """
create schema if not exists alerts;
create table if not exists alerts.run_failures (
    run_id      varchar primary key,
    job_name    varchar not null,
    failed_at   timestamp not null,
    message     varchar not null,
    recorded_at timestamp not null default current_timestamp
);
"""


@dataclass(frozen=True)
class RunFailure:
    run_id: str
    job_name: str
    failed_at: datetime
    message: str


def record_run_failure(db: Path, failure: RunFailure) -> bool:
    """Insert the alert once per run; returns False when it was already recorded."""
    db.parent.mkdir(parents=True, exist_ok=True)
    with duckdb.connect(str(db)) as con:
        con.execute(DDL)
        inserted = con.execute(
            "insert into alerts.run_failures (run_id, job_name, failed_at, message) "
            "values (?, ?, ?, ?) on conflict do nothing returning run_id",
            [failure.run_id, failure.job_name, failure.failed_at, failure.message],
        ).fetchall()
    return bool(inserted)


def recent_failures(db: Path, limit: int = 20) -> list[RunFailure]:
    if not db.exists():
        return []
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute(
            "select run_id, job_name, failed_at, message from alerts.run_failures "
            "order by failed_at desc limit ?", [limit]).fetchall()
    return [RunFailure(*row) for row in rows]
