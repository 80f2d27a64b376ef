"""What the report shows, read from the serving copy (never the warehouse, so a refresh in
progress is never in the way) and from the stored Great Expectations results."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb


@dataclass(frozen=True)
class SuiteStatus:
    suite: str
    table: str
    status: str  # pass | warn | fail
    expectations: int
    error_failures: int
    warn_failures: int
    validated_at: str


@dataclass
class ReportData:
    published_at: datetime | None
    as_of: datetime | None
    latest_session_at: datetime | None
    catalog: list[dict[str, Any]]
    sizes: list[dict[str, Any]]  # segment_sizes_daily
    transitions: list[dict[str, Any]]  # summed over the period
    overlap: list[dict[str, Any]]  # segment pairs sharing members
    campaigns: list[dict[str, Any]]
    experiments: list[dict[str, Any]]
    quality: list[SuiteStatus] = field(default_factory=list)


def _rows(con: duckdb.DuckDBPyConnection, sql: str) -> list[dict[str, Any]]:
    result = con.execute(sql)
    names = [d[0] for d in result.description]
    return [dict(zip(names, row, strict=True)) for row in result.fetchall()]


def read_report_data(serving: Path, validations_dir: Path | None = None) -> ReportData:
    if not serving.exists():
        raise FileNotFoundError(f"no serving copy at {serving}: run a refresh (make demo) first")
    with duckdb.connect(str(serving), read_only=True) as con:
        published_at = con.execute("select max(published_at) from segments.publish_log"
                                   ).fetchone()[0]
        as_of = con.execute("select max(as_of) from marts.dim_users").fetchone()[0]
        latest = con.execute("select max(ended_at) from marts.fct_sessions").fetchone()[0]
        data = ReportData(
            published_at=published_at,
            as_of=as_of,
            latest_session_at=latest,
            catalog=_rows(con, "select segment, rule, owner, refresh, is_exported, members "
                               "from segments.segment_catalog order by segment"),
            sizes=_rows(con, "select size_date, segment, members, users_entered, users_exited "
                             "from segments.segment_sizes_daily order by segment, size_date"),
            transitions=_rows(con, "select from_stage, to_stage, sum(users_moved) as users "
                                   "from segments.segment_transitions group by all"),
            overlap=_rows(con, """
                select a.segment as segment, b.segment as other, count(*) as users
                from segments.segment_memberships as a
                join segments.segment_memberships as b using (user_key)
                group by all"""),
            campaigns=_rows(con, "select * from marts.fct_campaign_engagement "
                                 "order by delivered desc, campaign_id"),
            experiments=_rows(con, "select * from marts.fct_experiment_results "
                                   "order by experiment_id, is_control desc, variant"),
        )
    if validations_dir is not None:
        data.quality = latest_suite_results(validations_dir)
    return data


def latest_suite_results(validations_dir: Path) -> list[SuiteStatus]:
    """The newest stored validation of each suite (GX's validation results store)."""
    found: list[SuiteStatus] = []
    if not validations_dir.exists():
        return found
    for suite_dir in sorted(p for p in validations_dir.iterdir() if p.is_dir()):
        runs = sorted(suite_dir.glob("__none__/*/*.json"))
        if not runs:
            continue
        result = json.loads(runs[-1].read_text())
        errors = warns = 0
        for outcome in result.get("results", []):
            if outcome.get("success"):
                continue
            severity = (outcome.get("expectation_config", {}).get("meta") or {}).get("severity")
            if severity == "warn":
                warns += 1
            else:
                errors += 1
        table = runs[-1].stem.split("-", 1)[-1]
        status = "fail" if errors else "warn" if warns else "pass"
        found.append(SuiteStatus(result.get("suite_name", suite_dir.name), table, status,
                                 int(result.get("statistics", {}).get("evaluated_expectations", 0)),
                                 errors, warns, runs[-1].parent.name))
    return found
