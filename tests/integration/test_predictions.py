"""Predictions on generated data: the real generator, loader, dbt, DuckDB and HTTP server.

One module-scoped build: 150,000 events over 120 days, the point-in-time training set built
by dbt at past dates (4 training and 2 holdout dates per model), both models trained into a
registry. Then the warehouse is built at as_of, scored with the published models, and the
models that read the scores are rebuilt with their tests. Expected values come from
independent computations (scipy's Mann-Whitney U for the AUC, scikit-learn's own
predict_proba for the scores, percentiles and segment rules recomputed in Python), never
from the code under test.
"""

from __future__ import annotations

import hashlib
import json
import pickle
import shutil
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import numpy as np
import pytest
import requests
from collector_process import READ_KEY, running_collector
from dbt_runner import PROJECT_DIR, run_dbt
from scipy.stats import mannwhitneyu

from ewh.common.settings import Settings
from ewh.ingest.loader import load_files
from ewh.predictions import registry
from ewh.predictions.scoring import score_warehouse
from ewh.predictions.snapshots import (
    SNAPSHOTS_TABLE,
    TrainingSet,
    build_training_set,
    copy_raw_events,
)
from ewh.predictions.specs import CHURN, FEATURES, MODELS, PURCHASE
from ewh.predictions.tags import TAGS_SOURCE, tag_messages, write_prediction_tags
from ewh.predictions.training import TrainingResult, gate, load_rows, train_model
from ewh.privacy.erasure import erase_user
from ewh.quality.segment_tables import segment_tables_from_manifest
from ewh.quality.validate import validate_warehouse
from ewh.sample.generator import generate
from ewh.segments.catalog import segments_from_manifest
from ewh.segments.serving import publish_serving_copy

AS_OF = datetime(2026, 10, 1)
AS_OF_VAR = json.dumps({"as_of": "2026-10-01 00:00:00"})
EVENTS, DAYS, SEED = 150_000, 120, 2
TRAINING, HOLDOUT = 4, 2


@dataclass
class Built:
    work: Path
    warehouse: Path
    dataset: dict
    training_set: TrainingSet
    models: Path
    results: dict[str, TrainingResult]


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    work = tmp_path_factory.mktemp("predictions")
    dataset = generate(work / "landing", events=EVENTS, seed=SEED, days=DAYS, end=AS_OF)
    warehouse = work / "warehouse.duckdb"
    load_files(sorted((work / "landing").glob("*.ndjson")), warehouse)
    _, start = copy_raw_events(warehouse, work / "training")
    training_set = build_training_set(work / "training", AS_OF, start, list(MODELS.values()),
                                      interval_days=7, training=TRAINING, holdout=HOLDOUT)
    models = work / "models"
    results = {name: train_model(spec, training_set, models, seed=0)
               for name, spec in MODELS.items()}
    return Built(work, warehouse, dataset, training_set, models, results)


# --- models -----------------------------------------------------------------------------


def test_the_purchase_model_beats_its_baseline_on_the_holdout(built: Built) -> None:
    metrics = built.results["purchase"].metrics
    assert metrics["status"] == "trained", metrics
    assert metrics["model"]["roc_auc"] >= 0.70, metrics["model"]
    assert metrics["model"]["roc_auc"] - metrics["baseline"]["roc_auc"] >= 0.03, metrics
    assert gate(metrics, Settings().prediction_min_auc_gain).passed


def test_the_holdout_auc_is_what_an_independent_count_gives(built: Built) -> None:
    """Reload the holdout rows, score them with the pickled model, count pairs with scipy."""
    version = built.results["purchase"].version
    model = pickle.loads((built.models / "purchase" / version / "model.pkl").read_bytes())
    with duckdb.connect(str(built.training_set.path), read_only=True) as con:
        rows = load_rows(con, PURCHASE, built.training_set.dates["purchase"].holdout)
    scores = model.predict_proba(rows.features)[:, 1]
    positives, negatives = scores[rows.labels == 1], scores[rows.labels == 0]
    u = mannwhitneyu(positives, negatives).statistic
    metrics = built.results["purchase"].metrics["model"]
    assert metrics["roc_auc"] == pytest.approx(u / (len(positives) * len(negatives)), abs=1e-6)
    assert (metrics["rows"], metrics["positives"]) == (len(rows.labels), int(rows.labels.sum()))


def test_every_metric_is_reported_for_the_model_and_its_baseline(built: Built) -> None:
    for name, result in built.results.items():
        metrics = result.metrics
        assert metrics["status"] == "trained", (name, metrics)
        for side in ("model", "baseline"):
            values = metrics[side]
            for key in ("roc_auc", "pr_auc", "brier", "top_decile_lift"):
                assert values[key] is not None, (name, side, key)
            table = values["calibration"]
            assert len(table) == 10 and sum(r["rows"] for r in table) == values["rows"]
        assert metrics["roc_auc_gain"] == pytest.approx(
            metrics["model"]["roc_auc"] - metrics["baseline"]["roc_auc"], abs=1e-6)


def test_shuffled_labels_score_near_chance(built: Built, tmp_path: Path) -> None:
    """With the labels permuted nothing is learnable: an AUC far from 0.5 would mean the
    pipeline itself leaks (rows misaligned, the holdout in training...)."""
    for name in ("purchase", "churn"):
        shuffled = train_model(MODELS[name], built.training_set, tmp_path / "models", seed=0,
                               label_shuffle_seed=11)
        assert 0.45 <= shuffled.metrics["model"]["roc_auc"] <= 0.55, (name, shuffled.metrics)


def test_training_is_reproducible(built: Built, tmp_path: Path) -> None:
    again = train_model(PURCHASE, built.training_set, tmp_path / "models", seed=0)
    first = built.results["purchase"]
    assert again.version == first.version
    for name in registry.VERSION_FILES:
        assert (again.path / name).read_bytes() == (first.path / name).read_bytes(), name


def test_a_version_folder_holds_model_features_metrics_window_and_seed(built: Built) -> None:
    folder = built.results["purchase"].path
    assert sorted(p.name for p in folder.iterdir()) == sorted(registry.VERSION_FILES)
    features = json.loads((folder / "features.json").read_text())
    assert [f["name"] for f in features["features"]] == list(FEATURES)
    assert all(f["definition"] for f in features["features"])
    # the feature version is the md5 of the features model's SQL as dbt reads the file
    # (without its final newline)
    source = (PROJECT_DIR / "models" / "intermediate" / "int_user_features.sql").read_text()
    assert features["feature_version"] == hashlib.md5(source.rstrip("\n").encode()).hexdigest()
    assert (folder / "features.sql").read_text() == source.rstrip("\n")
    training = json.loads((folder / "training.json").read_text())
    dates = built.training_set.dates["purchase"]
    assert training["seed"] == 0 and training["window"]["horizon_days"] == 14
    assert training["window"]["train_dates"] == [f"{d:%Y-%m-%d %H:%M:%S}" for d in dates.train]
    assert len(dates.train) == TRAINING and len(dates.holdout) == HOLDOUT
    assert max(dates.train) + timedelta(days=14) <= min(dates.holdout)  # no overlap
    assert hashlib.sha256((folder / "model.pkl").read_bytes()).hexdigest() == training[
        "model_sha256"]


def test_users_without_analytics_consent_are_not_trained_on(built: Built) -> None:
    consent = built.dataset["consent"]
    withheld = set(consent["denied_from_start"]) | set(consent["revoked_later"])
    assert withheld
    with duckdb.connect(str(built.training_set.path), read_only=True) as con:
        for name, spec in MODELS.items():
            dates = built.training_set.dates[name]
            users = {*load_rows(con, spec, dates.train).users,
                     *load_rows(con, spec, dates.holdout).users}
            assert users and not users & withheld, name


# --- point in time ----------------------------------------------------------------------


@pytest.mark.parametrize("which", ["earliest", "latest"])
def test_a_feature_row_at_t_is_unchanged_when_every_later_event_is_deleted(
        built: Built, tmp_path: Path, which: str) -> None:
    dates = sorted({d for p in built.training_set.dates.values() for d in (*p.train, *p.holdout)})
    t = dates[0] if which == "earliest" else dates[-1]
    truncated = tmp_path / "truncated.duckdb"
    shutil.copy(built.warehouse, truncated)
    scratch = built.training_set.path
    with duckdb.connect(str(truncated)) as con:
        con.execute(f"attach '{scratch}' as scratch (read_only)")
        # every event that occurred after t, by the staged (skew-corrected) time
        deleted = con.execute(
            "delete from raw.events where message_id in (select message_id from "
            "scratch.staging.stg_events where occurred_at > ?)", [t]).fetchone()[0]
        left = con.execute("select count(*) from raw.events").fetchone()[0]
    assert deleted > 0 and left > 0
    run_dbt(truncated, tmp_path, "seed")
    run_dbt(truncated, tmp_path, "run", "--select", "+int_user_features", "--vars",
            json.dumps({"as_of": f"{t:%Y-%m-%d %H:%M:%S}"}))
    with duckdb.connect(str(truncated)) as con:
        con.execute(f"attach '{scratch}' as scratch (read_only)")
        con.execute(f"create temp table training_rows as select * from scratch.{SNAPSHOTS_TABLE}"
                    " where as_of = ?", [t])
        rows = con.execute("select count(*) from training_rows").fetchone()[0]
        rebuilt = con.execute("select count(*) from intermediate.int_user_features").fetchone()[0]
        only_training = con.execute("select count(*) from (select * from training_rows except "
                                    "all select * from intermediate.int_user_features)"
                                    ).fetchone()[0]
        only_rebuilt = con.execute("select count(*) from (select * from "
                                   "intermediate.int_user_features except all select * from "
                                   "training_rows)").fetchone()[0]
    assert rows > 100 and rows == rebuilt
    assert (only_training, only_rebuilt) == (0, 0)


# --- scores, segments, tags -------------------------------------------------------------


@dataclass
class Scored:
    warehouse: Path
    work: Path
    manifest: dict
    scored: dict[str, int]


@pytest.fixture(scope="module")
def scored(built: Built, tmp_path_factory: pytest.TempPathFactory) -> Scored:
    work = tmp_path_factory.mktemp("scored")
    warehouse = work / "warehouse.duckdb"
    shutil.copy(built.warehouse, warehouse)
    run_dbt(warehouse, work, "build", "--exclude-resource-type", "unit_test", "--vars", AS_OF_VAR)
    for name, result in built.results.items():
        assert gate(result.metrics, Settings().prediction_min_auc_gain).passed, name
        registry.write_pointer(built.models, name, registry.PUBLISHED, {"version": result.version})
    result = score_warehouse(warehouse, built.models)
    assert result.skipped == {}
    # the models that read the scores, rebuilt with their data tests (run_dbt fails on any)
    run_dbt(warehouse, work, "build", "--select", "source:raw.prediction_scores+",
            "--exclude-resource-type", "unit_test", "--vars", AS_OF_VAR)
    manifest = json.loads((work / "target" / "manifest.json").read_text())
    return Scored(warehouse, work, manifest, result.scored)


def _query(path: Path, sql: str, params: list | None = None) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as con:
        return con.execute(sql, params or []).fetchall()


def test_scores_are_the_published_models_on_the_current_features(built: Built,
                                                                  scored: Scored) -> None:
    for name, spec in MODELS.items():
        version = built.results[name].version
        model = pickle.loads((built.models / name / version / "model.pkl").read_bytes())
        rows = _query(scored.warehouse,
                      f"select user_key, {', '.join(FEATURES)} from "
                      f"intermediate.int_user_features where {spec.population} order by user_key")
        features = np.array([[np.nan if v is None else v for v in r[1:]] for r in rows],
                            dtype=float)
        expected = dict(zip([r[0] for r in rows], model.predict_proba(features)[:, 1],
                            strict=True))
        written = dict(_query(scored.warehouse, "select user_key, score from "
                              "raw.prediction_scores where model_name = ?", [name]))
        assert written.keys() == expected.keys() and len(written) == scored.scored[name]
        assert max(abs(written[k] - expected[k]) for k in expected) < 1e-12
        versions = _query(scored.warehouse, "select distinct model_version, as_of from "
                          "marts.user_predictions where model_name = ?", [name])
        assert versions == [(version, AS_OF)]


def test_every_score_names_the_features_that_raised_it(scored: Scored) -> None:
    named = _query(scored.warehouse, "select top_features from raw.prediction_scores "
                   "where top_features is not null")
    assert named
    for (text,) in named:
        parts = text.split(",")
        assert 1 <= len(parts) <= 3 and set(parts) <= set(FEATURES)


def test_percentiles_are_the_share_of_scored_users_at_or_below(scored: Scored) -> None:
    for name in MODELS:
        rows = _query(scored.warehouse, "select user_key, score, percentile from "
                      "marts.user_predictions where model_name = ?", [name])
        scores = np.array([r[1] for r in rows])
        for _, score, percentile in rows[:200]:
            assert percentile == pytest.approx(100 * np.mean(scores <= score), abs=1e-9)


def test_seg_likely_buyers_is_exactly_its_rule(scored: Scored) -> None:
    scores = _query(scored.warehouse, "select s.user_key, s.score from raw.prediction_scores s "
                    "join marts.dim_users u on s.user_key = u.user_key "
                    "where s.model_name = 'purchase' and u.has_analytics_consent")
    values = np.array([s for _, s in scores])
    top = {k for k, s in scores if 100 * np.mean(values <= s) > 90}
    recent = {r[0] for r in _query(scored.warehouse, "select user_key from "
              "intermediate.int_orders where not is_cancelled and ordered_at > ?",
                                   [AS_OF - timedelta(days=30)])}
    members = {r[0] for r in _query(scored.warehouse,
                                    "select user_key from segments.seg_likely_buyers")}
    assert members and members == top - recent


def test_seg_predicted_churn_is_exactly_its_rule(scored: Scored) -> None:
    customers = _query(scored.warehouse, "select s.user_key, s.score from raw.prediction_scores s"
                       " join marts.dim_users u on s.user_key = u.user_key where s.model_name ="
                       " 'churn' and u.has_analytics_consent and u.lifecycle_stage in "
                       "('customer', 'repeat_customer')")
    values = np.array([s for _, s in customers])
    expected = {k for k, s in customers if 100 * np.mean(values <= s) > 90}
    members = {r[0] for r in _query(scored.warehouse,
                                    "select user_key from segments.seg_predicted_churn")}
    assert members and members == expected


def test_the_prediction_segments_pass_their_quality_suites(scored: Scored,
                                                           tmp_path: Path) -> None:
    from quality_warehouse import copy_project

    tables = [t for t in segment_tables_from_manifest(scored.manifest)
              if t.name in ("seg_likely_buyers", "seg_predicted_churn")]
    results = validate_warehouse(scored.warehouse, suites=["dim_users", *(t.name for t in tables)],
                                 build_docs=False, as_of=AS_OF, segments=tables,
                                 project_dir=copy_project(tmp_path), record_volumes=False)
    assert len(results) == 3
    for result in results:
        assert [f.message for f in result.failures] == [], result.suite


def test_a_model_whose_feature_definitions_changed_scores_nobody(built: Built, scored: Scored,
                                                                  tmp_path: Path) -> None:
    warehouse = tmp_path / "changed.duckdb"
    shutil.copy(scored.warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as con:
        con.execute("update intermediate.int_user_features set feature_version = 'edited'")
    result = score_warehouse(warehouse, built.models)
    assert result.scored == {}
    assert set(result.skipped) == {"purchase", "churn"}
    assert all("retrain" in reason for reason in result.skipped.values())
    assert _query(warehouse, "select count(*) from raw.prediction_scores") == [(0,)]


def test_without_a_published_model_the_scores_are_emptied(scored: Scored, tmp_path: Path) -> None:
    """(A build over empty scores gives empty predictions and segments: the golden test and
    the first refresh of tests/e2e/test_predictions_flow.py show it.)"""
    warehouse = tmp_path / "unpublished.duckdb"
    shutil.copy(scored.warehouse, warehouse)
    result = score_warehouse(warehouse, tmp_path / "empty-registry")
    assert result.scored == {} and set(result.skipped.values()) == {"no published version"}
    assert _query(warehouse, "select count(*) from raw.prediction_scores") == [(0,)]


def test_erasure_removes_a_users_scores(scored: Scored, tmp_path: Path) -> None:
    warehouse = tmp_path / "erase.duckdb"
    shutil.copy(scored.warehouse, warehouse)
    (user_key, user_id), = _query(warehouse, "select user_key, user_id from "
                                  "segments.seg_likely_buyers order by user_key limit 1")
    settings = Settings(warehouse=warehouse, serving=tmp_path / "serving.duckdb",
                        landing_dir=tmp_path / "landing", exports_dir=tmp_path / "exports",
                        erasure_receipts=tmp_path / "erasures", models_dir=tmp_path / "models",
                        # its own key store: the erased ids go on this suppression list, not
                        # the session's (later tests load events of the same users)
                        key_store=tmp_path / "keystore")
    result = erase_user(user_id, settings, warehouse=warehouse)
    assert result.receipt["tables"]["warehouse"]["raw.prediction_scores"] >= 1
    assert result.receipt["verification"]["clean"], result.receipt["verification"]
    for table in ("raw.prediction_scores", "marts.user_predictions",
                  "segments.seg_likely_buyers"):
        assert _query(warehouse, f"select count(*) from {table} where user_key = ?",
                      [user_key]) == [(0,)], table


def test_tags_and_consent_through_the_landing_zone_and_the_user_view(scored: Scored,
                                                                      tmp_path: Path) -> None:
    """Members become tagged the way PUT /api/users/{id}/tags tags them; the next build shows
    the tags in the user view; a user who revokes consent loses prediction, segment and tag."""
    warehouse, serving = tmp_path / "warehouse.duckdb", tmp_path / "serving.duckdb"
    shutil.copy(scored.warehouse, warehouse)
    segments = segments_from_manifest(scored.manifest)
    publish_serving_copy(warehouse, serving, segments)
    buyers = dict(_query(serving, "select user_key, user_id from segments.seg_likely_buyers "
                         "where user_id is not null"))
    churners = dict(_query(serving, "select user_key, user_id from "
                           "segments.seg_predicted_churn where user_id is not null"))
    settings = Settings(serving=serving, landing_dir=tmp_path / "landing",
                        warehouse=warehouse, write_keys=frozenset({"k"}))
    written = write_prediction_tags(settings)
    assert written.rejected == [] and len(written.landing_files) == 1
    assert written.users_tagged == len(buyers.keys() | churners.keys())
    # a user revokes analytics consent (through the collector's contract, like any event)
    revoker_key, revoker_id = sorted(buyers.items())[0]
    revocation = {"type": "track", "event": "Consent Updated", "userId": revoker_id,
                  "messageId": "revoke-1", "timestamp": "2026-09-30T23:00:00.000Z",
                  "receivedAt": "2026-09-30T23:00:01.000Z", "properties": {},
                  "context": {"consent": {"categoryPreferences": {"analytics": False}}}}
    extra = tmp_path / "revocation.ndjson"
    extra.write_text(json.dumps(revocation) + "\n")
    loads = load_files([*written.landing_files, extra], warehouse)
    assert sum(r.rows_rejected for r in loads) == 0
    run_dbt(warehouse, tmp_path, "build", "--exclude-resource-type", "unit_test", "--vars",
            AS_OF_VAR)
    tags = _query(warehouse, "select user_key, tag from marts.user_tags where tags_source = ?",
                  [TAGS_SOURCE])
    expected = {(k, "likely_buyer") for k in buyers if k != revoker_key} | {
        (k, "churn_risk") for k in churners if k != revoker_key}
    assert set(tags) == expected
    assert _query(warehouse, "select (select count(*) from marts.user_predictions where "
                  "user_key = ?), (select count(*) from segments.seg_likely_buyers where "
                  "user_key = ?)", [revoker_key, revoker_key]) == [(0, 0)]
    publish_serving_copy(warehouse, serving, segments)
    # Without the revoker the percentiles moved a little: the next messages are exactly the
    # users whose segments now differ from their loaded tags, and none is about the revoker.
    wanted: dict[str, set[str]] = {}
    for segment, tag in (("seg_likely_buyers", "likely_buyer"),
                         ("seg_predicted_churn", "churn_risk")):
        for (key,) in _query(serving, f"select user_key from segments.{segment}"):
            wanted.setdefault(key, set()).add(tag)
    held: dict[str, set[str]] = {}
    for key, tag in expected:
        held.setdefault(key, set()).add(tag)
    changed = {key for key in wanted.keys() | held.keys()
               if wanted.get(key, set()) != held.get(key, set())}
    ids = dict(_query(serving, "select user_key, user_id from marts.dim_users"))
    assert {m["userId"] for m in tag_messages(serving)[0]} == {ids[k] for k in changed}
    assert revoker_key not in changed
    tagged_key, tagged_id = sorted(buyers.items())[1]
    with running_collector(tmp_path / "collector-landing", EWH_SERVING=str(serving)) as collector:
        # the segment API reads with a read key (a write key, embedded in apps, never reads)
        view = requests.get(f"{collector.url}/v1/users/{tagged_id}/segments",
                            auth=(READ_KEY, ""), timeout=10).json()
        revoked = requests.get(f"{collector.url}/v1/users/{revoker_id}/segments",
                               auth=(READ_KEY, ""), timeout=10).json()
    assert view["user_keys"] == [tagged_key]
    assert {"tag": "likely_buyer", "source": TAGS_SOURCE} in [
        {"tag": t["tag"], "source": t["source"]} for t in view["tags"]]
    assert "seg_likely_buyers" in [s["segment"] for s in view["segments"]]
    assert revoked["tags"] == [] and revoked["segments"] == []


def test_the_churn_model_population_is_active_users(scored: Scored) -> None:
    inactive = _query(scored.warehouse, "select count(*) from raw.prediction_scores s join "
                      "intermediate.int_user_features f on s.user_key = f.user_key "
                      f"where s.model_name = '{CHURN.name}' and f.active_days_28d = 0")
    assert inactive == [(0,)]


def test_ewh_predictions_list_shows_published_and_candidate_versions(built: Built,
                                                                     scored: Scored) -> None:
    import os
    import subprocess
    import sys

    ewh = str(Path(sys.executable).with_name("ewh"))
    done = subprocess.run([ewh, "predictions", "list"], capture_output=True, text=True,
                          env={**os.environ, "EWH_MODELS_DIR": str(built.models)}, timeout=120)
    assert done.returncode == 0, done.stderr
    for name, result in built.results.items():
        rows = [line.split() for line in done.stdout.splitlines()
                if line.split()[:1] == [name]]
        assert [r[1:4] for r in rows] == [["published", result.version, "passes"],
                                          ["candidate", result.version, "passes"]]
