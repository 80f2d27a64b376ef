"""The minute-level refresh: the fast segments, their upstream, the membership tables, the
change log and the serving copy, from one micro-batch's load.

Which segments: those whose `meta.segment.refresh` is `realtime` or `hourly` (the manifest
says). dbt runs (`dbt run`: the models; their tests run in the hourly refresh, whose checks
gate the serving copy too) `+seg_<fast>` for each, plus `segment_membership_history+`; the
incremental models only take in what is new. The other segments are not rebuilt here (the
membership history evaluates every rule inline, so their entries and exits are still seen).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb

from ewh.activation.changes import Recorded, record_changes
from ewh.common.clock import dbt_timestamp
from ewh.common.settings import PROJECT_ROOT, Settings
from ewh.segments.catalog import SegmentSpec, segments_from_manifest
from ewh.segments.serving import publish_serving_copy

FAST_REFRESH = ("realtime", "hourly")
MEMBERSHIP = "segment_membership_history+"


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


def load_segments(settings: Settings) -> list[SegmentSpec]:
    return segments_from_manifest(json.loads(settings.manifest_path.read_text()))


def dbt_executable() -> str:
    candidate = Path(sys.executable).with_name("dbt")
    return str(candidate) if candidate.exists() else "dbt"


def run_dbt(settings: Settings, work_dir: Path, select: list[str]) -> None:
    """`dbt run` of `select` on the warehouse; its own target/ and logs/ under `work_dir`
    (partial parsing keeps later calls short), so it never rewrites the shared manifest."""
    args = [dbt_executable(), "run", "--quiet", "--select", *select,
            "--project-dir", str(PROJECT_ROOT), "--profiles-dir", str(PROJECT_ROOT),
            "--target-path", str(work_dir / "target"), "--log-path", str(work_dir / "logs")]
    if settings.as_of is not None:
        args += ["--vars", json.dumps({"as_of": dbt_timestamp(settings.as_of)})]
    env = {**os.environ, **settings.as_env(), "EWH_DBT_TARGET": "duckdb"}
    done = subprocess.run(args, env=env, capture_output=True, text=True, check=False,
                          cwd=PROJECT_ROOT, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        raise RefreshError(f"dbt run failed: {(done.stdout + done.stderr)[-3000:]}")


def refresh_fast_segments(settings: Settings, segments: list[SegmentSpec],
                          work_dir: Path, run_id: str | None = None) -> RefreshResult:
    """dbt run of the fast segments, record the changes, publish the serving copy."""
    import time

    started = time.monotonic()
    run_dbt(settings, work_dir, selection(segments))
    with duckdb.connect(str(settings.warehouse)) as con:
        recorded = record_changes(con)
    built = time.monotonic()
    publish_serving_copy(settings.warehouse, settings.serving, segments, run_id)
    return RefreshResult([s.name for s in fast_segments(segments)], recorded,
                         built - started, time.monotonic() - built)
