"""The Dagster code location: what it contains, that it loads lazily, and that Dagster accepts it.

`definitions_snapshot.txt` lists every asset (group, owners, parents), asset check, job,
schedule and sensor, so any change to the graph shows up in review. After an intended
change, regenerate it with `UPDATE_SNAPSHOTS=1 pytest tests/integration/test_definitions.py`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

from ewh.common.settings import PROJECT_ROOT
from ewh.segments.catalog import load_segments

DAGSTER = str(Path(sys.executable).with_name("dagster"))
SNAPSHOT = Path(__file__).with_name("definitions_snapshot.txt")


def _defs():
    from orchestration.definitions import defs

    return defs()


def render_snapshot(defs) -> str:
    lines = []
    graph = defs.resolve_asset_graph()
    for key in sorted(graph.get_all_asset_keys(), key=lambda k: k.to_user_string()):
        node = graph.get(key)
        parents = ",".join(sorted(p.to_user_string() for p in node.parent_keys))
        policy = node.freshness_policy
        fresh = f" fresh=cron({policy.deadline_cron})" if policy is not None else ""
        partitioned = " partitioned" if node.partitions_def is not None else ""
        lines.append(f"asset {key.to_user_string()} group={node.group_name} "
                     f"owners={','.join(sorted(node.owners))}{fresh}{partitioned} "
                     f"parents={parents}")
    for check in sorted(graph.asset_check_keys,
                        key=lambda k: (k.asset_key.to_user_string(), k.name)):
        lines.append(f"check {check.asset_key.to_user_string()}:{check.name}")
    lines += [f"job {job.name}" for job in sorted(defs.jobs, key=lambda j: j.name)]
    lines += [f"schedule {s.name} cron={s.cron_schedule} job={s.job_name} "
              f"default={s.default_status.value}" for s in sorted(defs.schedules,
                                                                   key=lambda s: s.name)]
    lines += [f"sensor {s.name} default={s.default_status.value}"
              for s in sorted(defs.sensors, key=lambda s: s.name)]
    return "\n".join(lines) + "\n"


def test_definitions_match_the_reviewed_snapshot():
    rendered = render_snapshot(_defs())
    if os.environ.get("UPDATE_SNAPSHOTS"):
        SNAPSHOT.write_text(rendered)
    assert rendered == SNAPSHOT.read_text(), "the Definitions changed: review, then regenerate"


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


def test_a_segment_asset_shows_owner_rule_and_cadence_first():
    """What a marketer looks for on a segment's page: its team, its rule as the first line,
    its refresh cadence as a freshness policy; dagster-dbt's own metadata comes last."""
    from dagster import AssetKey

    from orchestration.project import dbt_project

    graph = _defs().resolve_asset_graph()
    for spec in load_segments(dbt_project.manifest_path):
        node = graph.get(AssetKey(["segments", spec.name]))
        assert node.owners == [f"team:{spec.owner}"]
        assert node.description.splitlines()[0] == spec.rule
        assert node.freshness_policy.deadline_cron == spec.refresh_cron
        keys = list(node.metadata)
        assert keys[:4] == ["rule", "owner", "refresh", "exported"]
        internal = [i for i, k in enumerate(keys) if k.startswith(("dagster_dbt/", "dagster-dbt/"))]
        assert internal and min(internal) > max(
            i for i, k in enumerate(keys) if not k.startswith(("dagster_dbt/", "dagster-dbt/")))
    for key in graph.get_all_asset_keys():
        if key.path[0] in ("marts", "segments") and graph.get(key).is_materializable:
            assert graph.get(key).owners, key


def test_the_landing_sensor_starts_at_the_files_present_and_then_sees_new_ones(tmp_path):
    """A fresh instance (a first `make dev`) requests no run for files already there."""
    import os
    import time

    import dagster as dg

    from orchestration.defs.ingest import landing_zone_sensor
    from orchestration.resources import WarehouseSettings

    landing = tmp_path / "landing"
    landing.mkdir()
    (landing / "events-1.ndjson").write_text("{}\n")
    settings = WarehouseSettings(warehouse=str(tmp_path / "w.duckdb"), landing_dir=str(landing),
                                 serving=str(tmp_path / "s.duckdb"), exports_dir=str(tmp_path),
                                 report=str(tmp_path / "r.html"), ops_db=str(tmp_path / "o.db"),
                                 models_dir=str(tmp_path / "models"))
    first = dg.build_sensor_context(cursor=None, resources={"settings": settings})
    assert isinstance(landing_zone_sensor(first), dg.SkipReason)
    assert first.cursor is not None
    again = dg.build_sensor_context(cursor=first.cursor, resources={"settings": settings})
    assert isinstance(landing_zone_sensor(again), dg.SkipReason)
    newer = landing / "events-2.ndjson"
    newer.write_text("{}\n")
    later = time.time() + 5
    os.utime(newer, (later, later))
    third = dg.build_sensor_context(cursor=first.cursor, resources={"settings": settings})
    assert isinstance(landing_zone_sensor(third), dg.RunRequest)


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


def test_importing_the_code_location_without_a_manifest_runs_no_dbt(tmp_path: Path):
    """In a copy of the project with no target/, importing the definitions and every area
    runs no dbt; loading the definitions then parses the project once."""
    copy = tmp_path / "project"
    for name in ("ewh", "orchestration", "models", "macros", "seeds", "tests/dbt"):
        shutil.copytree(PROJECT_ROOT / name, copy / name,
                        ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("dbt_project.yml", "profiles.yml", "pyproject.toml"):
        shutil.copy(PROJECT_ROOT / name, copy / name)
    script = textwrap.dedent("""
        import importlib, pathlib, pkgutil
        import orchestration.definitions, orchestration.defs
        for module in pkgutil.iter_modules(orchestration.defs.__path__):
            importlib.import_module("orchestration.defs." + module.name)
        target = pathlib.Path("target")
        print("imported from", orchestration.__file__, "target:", target.exists())
        orchestration.definitions.defs()
        print("loaded; manifest:", (target / "manifest.json").exists())
    """)
    env = {**os.environ, "PYTHONPATH": str(copy)}
    done = subprocess.run([sys.executable, "-c", script], cwd=copy, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert f"imported from {copy / 'orchestration'}" in done.stdout
    assert "target: False" in done.stdout
    assert "loaded; manifest: True" in done.stdout


def test_bare_dagster_definitions_validate_finds_the_code_location(tmp_path: Path):
    """No -m: `[tool.dagster]` in pyproject.toml names the module."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    done = subprocess.run([DAGSTER, "definitions", "validate"], cwd=PROJECT_ROOT, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "orchestration.definitions" in done.stdout + done.stderr
