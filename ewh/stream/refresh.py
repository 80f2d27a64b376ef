"""The minute-level refresh: the fast segments, their upstream, the membership tables, the
change log and the serving copy, from one micro-batch's load.

Which segments: those whose `meta.segment.refresh` is `realtime` or `hourly` (the manifest
says). dbt runs (`dbt run`: the models; their tests run in the hourly refresh, whose checks
gate the serving copy too; here only the fast segments' and the membership tables' own data
tests gate the publish) `+seg_<fast>` for each, plus `segment_membership_history+`; the
incremental models only take in what is new. The other segments are not rebuilt here (the
membership history evaluates every rule inline, so their entries and exits are still seen).
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb

from ewh.activation.changes import Recorded, record_changes
from ewh.common.clock import dbt_timestamp
from ewh.common.settings import PROJECT_ROOT, Settings
from ewh.segments.catalog import SegmentSpec, segments_from_manifest
from ewh.segments.serving import publish_serving_copy

FAST_REFRESH = ("realtime", "hourly")
MEMBERSHIP = "segment_membership_history+"
MEMBERSHIP_MODELS = ("segment_membership_history", "segment_memberships")


class RefreshError(RuntimeError):
    pass


@dataclass(frozen=True)
class RefreshResult:
    segments: list[str]
    recorded: Recorded
    dbt_seconds: float
    publish_seconds: float


def fast_segments(segments: list[SegmentSpec]) -> list[SegmentSpec]:
    return [s for s in segments if s.refresh in FAST_REFRESH]


def selection(segments: list[SegmentSpec]) -> list[str]:
    return [*(f"+{s.name}" for s in fast_segments(segments)), MEMBERSHIP]


def gated(segments: list[SegmentSpec]) -> list[str]:
    return [*(s.name for s in fast_segments(segments)), *MEMBERSHIP_MODELS]


def load_segments(settings: Settings) -> list[SegmentSpec]:
    return segments_from_manifest(json.loads(settings.manifest_path.read_text()))


class DbtSession:
    """dbt run in this process, on a manifest parsed once: a long-running consumer skips
    dbt's start-up and parse on every micro-batch (about 10 s of a 14 s subprocess call on
    this machine, measured). Its target/ and logs/ are under `work_dir`, so it never
    rewrites the shared manifest. Run-time vars (as_of) apply to a cached manifest."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self._manifest: Any = None

    def _common(self) -> list[str]:
        return ["--quiet", "--project-dir", str(PROJECT_ROOT), "--profiles-dir",
                str(PROJECT_ROOT), "--target-path", str(self.work_dir / "target"),
                "--log-path", str(self.work_dir / "logs")]

    def run(self, settings: Settings, select: list[str], command: str = "run") -> None:
        from dbt.cli.main import dbtRunner

        # profiles.yml reads these: the warehouse this consumer was given, on DuckDB.
        os.environ["EWH_WAREHOUSE"] = str(settings.warehouse)
        os.environ["EWH_DBT_TARGET"] = "duckdb"
        if self._manifest is None:
            parsed = dbtRunner().invoke(["parse", *self._common()])
            if not parsed.success:
                raise RefreshError(f"dbt parse failed: {parsed.exception}")
            self._manifest = parsed.result
        args = [command, "--select", *select, *self._common()]
        if command == "test":
            args += ["--exclude-resource-type", "unit_test"]
        if settings.as_of is not None:
            args += ["--vars", json.dumps({"as_of": dbt_timestamp(settings.as_of)})]
        try:
            done = dbtRunner(manifest=self._manifest).invoke(args)
        finally:
            _release_duckdb()
        if not done.success:
            failed = [f"{r.node.name}: {r.message}" for r in getattr(done.result, "results", [])
                      if str(r.status) in ("error", "fail")]
            raise RefreshError(f"dbt {command} failed: {'; '.join(failed) or done.exception}")


def _release_duckdb() -> None:
    """Close the DuckDB database dbt-duckdb keeps open in this process after a run: it would
    hold the warehouse's one-writer lock past the micro-batch (and stop this process from
    opening the file itself). dbt-duckdb has no public call for it; its connection manager
    keeps the database in `_ENV` and closes it the same way when the credentials change."""
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    with DuckDBConnectionManager._LOCK:
        environment, DuckDBConnectionManager._ENV = DuckDBConnectionManager._ENV, None
    if environment is not None:
        environment.close()


def refresh_fast_segments(settings: Settings, segments: list[SegmentSpec], dbt: DbtSession,
                          run_id: str | None = None) -> RefreshResult:
    """dbt run of the fast segments, record the changes, publish the serving copy."""
    started = time.monotonic()
    dbt.run(settings, selection(segments))
    if settings.stream_refresh_tests:
        # The gate of what this cycle publishes: the fast segments' and the membership
        # tables' own data tests (a failure keeps the last good serving copy, as the hourly
        # refresh's blocking checks do).
        dbt.run(settings, gated(segments), command="test")
    with duckdb.connect(str(settings.warehouse)) as con:
        recorded = record_changes(con)
    built = time.monotonic()
    publish_serving_copy(settings.warehouse, settings.serving, segments, run_id)
    return RefreshResult([s.name for s in fast_segments(segments)], recorded,
                         built - started, time.monotonic() - built)
