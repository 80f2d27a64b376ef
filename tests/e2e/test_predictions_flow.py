"""The prediction jobs as Dagster runs them: the gate blocks publishing, a published model is
scored by the next refresh, and its segment members are tagged through the landing zone."""

from __future__ import annotations

import json
import shutil
from datetime import datetime
from pathlib import Path

import dagster as dg
import duckdb
import pytest

from ewh.quality.project import PROJECT_DIR
from ewh.sample.generator import generate

AS_OF = datetime(2026, 10, 1)
QUIET = {"loggers": {"console": {"config": {"log_level": "ERROR"}}}}


def _run(job: str, selection: dg.AssetSelection | None = None) -> dg.ExecuteInProcessResult:
    from orchestration.definitions import defs

    definitions = defs()
    if selection is not None:
        definitions = dg.Definitions.merge(definitions, dg.Definitions(
            jobs=[dg.define_asset_job(job, selection=selection)]))
    return definitions.resolve_job_def(job).execute_in_process(
        instance=dg.DagsterInstance.ephemeral(), raise_on_error=False, run_config=QUIET)


def _count(path: Path, sql: str) -> int:
    with duckdb.connect(str(path), read_only=True) as con:
        return int(con.execute(sql).fetchone()[0])


@pytest.mark.e2e
def test_train_gate_publish_score_and_tag(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from orchestration.defs.predictions import GATE_CHECK, candidate_key, published_key

    for name, value in {
        "EWH_WAREHOUSE": tmp_path / "warehouse.duckdb", "EWH_LANDING_DIR": tmp_path / "landing",
        "EWH_EXPORTS_DIR": tmp_path / "exports", "EWH_SERVING": tmp_path / "serving.duckdb",
        "EWH_MODELS_DIR": tmp_path / "models", "EWH_GX_PROJECT_DIR": tmp_path / "gx_project",
        "EWH_AS_OF": str(AS_OF), "EWH_REPORT": tmp_path / "report.html",
        # each snapshot date is a dbt run; the flow needs trained candidates, not good ones
        # (test_predictions.py judges the models, on 4 training and 2 holdout dates)
        "EWH_PREDICTION_TRAINING_SNAPSHOTS": 2, "EWH_PREDICTION_HOLDOUT_SNAPSHOTS": 1,
    }.items():
        monkeypatch.setenv(name, str(value))
    # the suites write into their project: a private copy, as a fresh clone has it
    shutil.copytree(PROJECT_DIR / "gx", tmp_path / "gx_project" / "gx",
                    ignore=shutil.ignore_patterns("uncommitted"))
    generate(tmp_path / "landing", events=60_000, seed=5, end=AS_OF)
    models, serving = tmp_path / "models", tmp_path / "serving.duckdb"

    # 1. no model yet: the refresh works and the predictions are empty
    assert _run("refresh_warehouse").success
    assert _count(serving, "select count(*) from marts.user_predictions") == 0
    assert _count(serving, "select count(*) from segments.seg_likely_buyers") == 0

    # 2. a gate no model can pass: the check fails, the run fails, nothing is published
    monkeypatch.setenv("EWH_PREDICTION_MIN_AUC_GAIN", "1.0")
    training = _run("train_prediction_models")
    assert not training.success
    verdicts = {e.asset_key.path[-1]: e for e in training.get_asset_check_evaluations()}
    assert set(verdicts) == {"purchase_candidate", "churn_candidate"}
    assert not any(e.passed for e in verdicts.values())
    assert "required +1.0000" in verdicts["purchase_candidate"].description
    materialized = {e.asset_key for e in training.get_asset_materialization_events()}
    assert candidate_key("purchase") in materialized
    assert published_key("purchase") not in materialized
    candidate = json.loads((models / "purchase" / "candidate.json").read_text())
    assert candidate["version"] and not (models / "purchase" / "published.json").exists()
    assert not (models / ".work").exists()  # the scratch copy of the events is gone

    # 3. the same candidates against a gate they pass: the check, then publish
    monkeypatch.setenv("EWH_PREDICTION_MIN_AUC_GAIN", "-1.0")
    checks = [dg.AssetCheckKey(candidate_key(m), GATE_CHECK) for m in ("purchase", "churn")]
    publish = _run("gate_and_publish", dg.AssetSelection.checks(*checks)
                   | dg.AssetSelection.assets(published_key("purchase"), published_key("churn")))
    assert publish.success
    published = json.loads((models / "purchase" / "published.json").read_text())
    assert published["version"] == candidate["version"]

    # 4. the next refresh scores with it, rebuilds the segments and lands the tags
    refresh = _run("refresh_warehouse")
    assert refresh.success
    scored = _count(serving, "select count(*) from marts.user_predictions "
                             "where model_name = 'purchase'")
    assert scored == _count(tmp_path / "warehouse.duckdb", "select count(*) from "
                            "intermediate.int_user_features where has_analytics_consent")
    members = _count(serving, "select count(*) from segments.seg_likely_buyers")
    assert members > 0
    tags = [json.loads(line) for path in (tmp_path / "landing").glob("*tags*.ndjson")
            for line in path.read_text().splitlines()]
    assert tags and all(m["type"] == "identify" and m["traits"]["tags_source"] == "predictions"
                        for m in tags)
    assert sum("likely_buyer" in m["traits"]["tags"] for m in tags) == members
