"""The Dagster code location: what it contains, and that Dagster itself accepts it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from ewh.paths import PROJECT_ROOT
from ewh.segment_catalog import load_segments

DAGSTER = str(Path(sys.executable).with_name("dagster"))


def _defs():
    from orchestration.definitions import defs

    return defs


def test_every_declared_segment_is_an_asset_and_every_exported_one_has_an_export_asset():
    from orchestration.project import dbt_project

    keys = {k.to_user_string() for k in _defs().resolve_all_asset_keys()}
    segments = load_segments(dbt_project.manifest_path)
    assert {"seg_cart_abandoners", "seg_high_value_customers", "seg_highly_engaged"} <= {
        s.name for s in segments
    }
    for spec in segments:
        assert f"segments/{spec.name}" in keys
        assert (f"exports/{spec.name}" in keys) == spec.exported


def test_the_graph_has_the_raw_load_upstream_of_staging():
    graph = _defs().resolve_asset_graph()
    from dagster import AssetKey

    parents = graph.get(AssetKey(["staging", "stg_events"])).parent_keys
    assert AssetKey(["raw", "events"]) in parents


def test_definitions_have_the_refresh_job_schedule_sensor_and_gx_checks():
    defs = _defs()
    assert defs.resolve_job_def("refresh_warehouse") is not None
    assert {s.name for s in defs.schedules} >= {"hourly_refresh"}
    assert {s.name for s in defs.sensors} >= {"landing_zone_sensor"}
    check_names = {k.name for k in defs.resolve_asset_graph().asset_check_keys}
    assert {"gx_raw_events", "gx_fct_sessions"} <= check_names


def test_dagster_definitions_validate_passes():
    env = {**os.environ, "DAGSTER_HOME": str(PROJECT_ROOT / ".dagster_home")}
    Path(env["DAGSTER_HOME"]).mkdir(exist_ok=True)
    (Path(env["DAGSTER_HOME"]) / "dagster.yaml").touch()
    done = subprocess.run(
        [DAGSTER, "definitions", "validate", "-m", "orchestration.definitions"],
        cwd=PROJECT_ROOT, env=env, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stdout + done.stderr
