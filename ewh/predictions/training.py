"""Train a model on the earlier snapshot dates, evaluate it on the later ones, register it.

Rows are the model's population in training.feature_snapshots (users who have withdrawn
analytics consent since are left out), labelled from training.labels. The holdout holds the
latest dates only (snapshots.plan_snapshots), so the evaluation is what the model would have
scored in a period it never saw. The rule baseline is scored on the same holdout rows. The
version goes to the registry as the model's candidate; publishing it is the gate's decision
(`gate`: holdout ROC AUC at least EWH_PREDICTION_MIN_AUC_GAIN above the baseline's).
"""

from __future__ import annotations

import hashlib
import json
import pickle
import platform
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier

from ewh.common.clock import dbt_timestamp, utc_now
from ewh.common.sql_text import sql_literal
from ewh.predictions import registry
from ewh.predictions.metrics import evaluate, rates_by_bin
from ewh.predictions.snapshots import LABELS_TABLE, SNAPSHOTS_TABLE, ModelDates, TrainingSet
from ewh.predictions.specs import FEATURES_TABLE, MODEL_PARAMS, ModelSpec
from ewh.predictions.trees import TreeArrays, probabilities

MIN_POSITIVES = 20  # per side (training and holdout): fewer and a metric says nothing
WALK_TOLERANCE = 1e-9  # the tree walk must reproduce predict_proba


@dataclass(frozen=True)
class Rows:
    features: np.ndarray  # float64, NaN where the feature is null
    labels: np.ndarray  # int
    baseline: np.ndarray  # float64, the rule's score (higher = more likely)
    dates: np.ndarray  # the snapshot date of each row
    users: np.ndarray  # the user_key of each row


@dataclass(frozen=True)
class TrainingResult:
    model: str
    version: str | None  # None: not enough data to train or to judge
    path: Path | None
    metrics: dict[str, Any]
    trained_at: datetime
    note: str = ""
    timings: dict[str, float] = field(default_factory=dict)


def load_rows(con: duckdb.DuckDBPyConnection, spec: ModelSpec,
              dates: tuple[datetime, ...]) -> Rows:
    """The model's population at `dates`, in a stable order (date, user_key)."""
    if not dates:
        empty = np.empty((0, len(spec.features)))
        return Rows(empty, np.empty(0, dtype=int), np.empty(0), np.empty(0), np.empty(0))
    date_list = ", ".join(f"timestamp {sql_literal(dbt_timestamp(d))}" for d in dates)
    columns = ", ".join(spec.features)
    sql = f"""
        select {columns}, label, baseline_score, as_of, user_key from (
            select snapshots.*, labels.label_{spec.name} as label,
                {spec.baseline} as baseline_score
            from {SNAPSHOTS_TABLE} as snapshots
            join {LABELS_TABLE} as labels
                on snapshots.as_of = labels.snapshot_at and snapshots.user_key = labels.user_key
            where labels.has_consent_now and snapshots.as_of in ({date_list})
        ) as rows
        where {spec.population}
        order by as_of, user_key"""
    found = con.execute(sql).fetchnumpy()
    matrix = np.column_stack([_floats(found[c]) for c in spec.features]) if len(
        found["label"]) else np.empty((0, len(spec.features)))
    return Rows(matrix, np.asarray(found["label"], dtype=int), _floats(found["baseline_score"]),
                np.asarray(found["as_of"]), np.asarray(found["user_key"]))


def _floats(column: Any) -> np.ndarray:
    return np.ma.filled(np.ma.asarray(column).astype(np.float64), np.nan)


def _fingerprint(spec: ModelSpec, train: Rows, holdout: Rows, seed: int,
                 feature_version: str | None) -> str:
    digest = hashlib.sha256()
    for array in (train.features, train.labels, train.baseline, holdout.features,
                  holdout.labels, holdout.baseline):
        digest.update(np.ascontiguousarray(array).tobytes())
    digest.update(json.dumps({
        "model": spec.name, "features": spec.features, "population": spec.population,
        "label": spec.label, "baseline": spec.baseline, "params": MODEL_PARAMS, "seed": seed,
        "feature_version": feature_version, "sklearn": sklearn.__version__,
        "numpy": np.__version__,
    }, sort_keys=True).encode())
    return digest.hexdigest()


def train_model(spec: ModelSpec, training_set: TrainingSet, root: Path, seed: int,
                label_shuffle_seed: int | None = None) -> TrainingResult:
    """Fit, evaluate against the baseline, write the version and make it the candidate.

    label_shuffle_seed (tests only) permutes the labels of all rows first: a pipeline that
    leaks nothing then scores a holdout ROC AUC near 0.5."""
    dates: ModelDates = training_set.dates[spec.name]
    trained_at = utc_now()
    with duckdb.connect(str(training_set.path), read_only=True) as con:
        train = load_rows(con, spec, dates.train)
        holdout = load_rows(con, spec, dates.holdout)
    if label_shuffle_seed is not None:
        train, holdout = _shuffled(train, holdout, label_shuffle_seed)
    window = {"as_of": dbt_timestamp(training_set.as_of),
              "train_dates": [dbt_timestamp(d) for d in dates.train],
              "holdout_dates": [dbt_timestamp(d) for d in dates.holdout],
              "horizon_days": spec.horizon_days}
    problem = _too_little(train, holdout)
    if problem:
        metrics = {"status": "insufficient_data", "reason": problem, "window": window}
        registry.write_pointer(root, spec.name, registry.CANDIDATE, {
            "version": None, "trained_at": trained_at, "status": "insufficient_data",
            "reason": problem})
        return TrainingResult(spec.name, None, None, metrics, trained_at, problem)

    fitted = HistGradientBoostingClassifier(**MODEL_PARAMS, random_state=seed)
    fitted.fit(train.features, train.labels)
    predicted = fitted.predict_proba(holdout.features)[:, 1]
    walked, _ = TreeArrays.from_model(fitted).explain(holdout.features)
    drift = float(np.max(np.abs(probabilities(walked) - predicted))) if len(predicted) else 0.0
    if drift > WALK_TOLERANCE:
        raise RuntimeError(f"model {spec.name}: the tree walk differs from predict_proba by "
                           f"{drift:.3g}; scikit-learn's tree layout is not the pinned one")
    baseline_probability = rates_by_bin(train.baseline, train.labels, holdout.baseline)
    model_metrics = evaluate(holdout.labels, predicted)
    baseline_metrics = evaluate(holdout.labels, baseline_probability, ranking=holdout.baseline)
    gain = (None if model_metrics["roc_auc"] is None or baseline_metrics["roc_auc"] is None
            else round(model_metrics["roc_auc"] - baseline_metrics["roc_auc"], 6))
    metrics = {
        "status": "trained",
        "model": model_metrics,
        "baseline": {"rule": spec.baseline_description, "sql": spec.baseline,
                     **baseline_metrics},
        "roc_auc_gain": gain,
        "train": {"rows": int(len(train.labels)), "positives": int(train.labels.sum())},
        "window": window,
        "label_shuffled": label_shuffle_seed is not None,
    }
    fingerprint = _fingerprint(spec, train, holdout, seed, training_set.feature_version)
    version = f"{training_set.as_of:%Y%m%dT%H%M%S}-{fingerprint[:10]}"
    files = _version_files(spec, training_set, fitted, metrics, window, seed, fingerprint,
                           train, holdout)
    path = registry.write_version(root, spec.name, version, files)
    registry.write_pointer(root, spec.name, registry.CANDIDATE, {
        "version": version, "trained_at": trained_at, "status": "trained",
        "roc_auc": model_metrics["roc_auc"], "baseline_roc_auc": baseline_metrics["roc_auc"],
        "roc_auc_gain": gain})
    return TrainingResult(spec.name, version, path, metrics, trained_at)


def _too_little(train: Rows, holdout: Rows) -> str:
    if len(train.labels) == 0 or len(holdout.labels) == 0:
        return "no training or holdout rows (too little history before as_of)"
    for side, rows in (("training", train), ("holdout", holdout)):
        positives = int(rows.labels.sum())
        negatives = len(rows.labels) - positives
        if min(positives, negatives) < MIN_POSITIVES:
            return (f"{side} rows have {positives} positive and {negatives} negative labels; "
                    f"at least {MIN_POSITIVES} of each are needed")
    return ""


def _shuffled(train: Rows, holdout: Rows, seed: int) -> tuple[Rows, Rows]:
    labels = np.concatenate([train.labels, holdout.labels])
    labels = np.random.default_rng(seed).permutation(labels)
    cut = len(train.labels)
    return (Rows(train.features, labels[:cut], train.baseline, train.dates, train.users),
            Rows(holdout.features, labels[cut:], holdout.baseline, holdout.dates, holdout.users))


def _version_files(spec: ModelSpec, training_set: TrainingSet, fitted: Any,
                   metrics: dict[str, Any], window: dict[str, Any], seed: int,
                   fingerprint: str, train: Rows, holdout: Rows) -> dict[str, bytes]:
    model_bytes = pickle.dumps(fitted, protocol=5)
    features = {
        "source": FEATURES_TABLE,
        "feature_version": training_set.feature_version,
        "population": spec.population,
        "features": [
            {"position": i, "name": name,
             "definition": training_set.feature_docs.get(name, ""),
             "training_missing_share": round(float(np.isnan(train.features[:, i]).mean()), 6),
             "training_mean": _mean(train.features[:, i])}
            for i, name in enumerate(spec.features)
        ],
    }
    training = {
        "model": spec.name,
        "description": spec.description,
        "label": spec.label,
        "population": spec.population,
        "window": window,
        "rows": {"train": int(len(train.labels)), "holdout": int(len(holdout.labels))},
        "positives": {"train": int(train.labels.sum()), "holdout": int(holdout.labels.sum())},
        "seed": seed,
        "estimator": "sklearn.ensemble.HistGradientBoostingClassifier",
        "params": MODEL_PARAMS,
        "libraries": {"scikit-learn": sklearn.__version__, "numpy": np.__version__,
                      "python": platform.python_version()},
        "data_fingerprint": fingerprint,
        "model_sha256": hashlib.sha256(model_bytes).hexdigest(),
    }
    return {
        registry.MODEL_FILE: model_bytes,
        registry.FEATURES_FILE: registry.to_json(features),
        registry.FEATURES_SQL_FILE: training_set.features_sql.encode(),
        registry.METRICS_FILE: registry.to_json(metrics),
        registry.TRAINING_FILE: registry.to_json(training),
    }


def _mean(column: np.ndarray) -> float | None:
    present = column[~np.isnan(column)]
    return round(float(present.mean()), 6) if len(present) else None


@dataclass(frozen=True)
class Verdict:
    passed: bool
    reason: str
    gain: float | None


def gate(metrics: dict[str, Any], margin: float) -> Verdict:
    """May this candidate be published? Its holdout ROC AUC must beat the baseline's by
    `margin` (EWH_PREDICTION_MIN_AUC_GAIN)."""
    if metrics.get("status") != "trained":
        return Verdict(False, f"not trained: {metrics.get('reason', metrics.get('status'))}",
                       None)
    gain = metrics.get("roc_auc_gain")
    model_auc, base_auc = metrics["model"]["roc_auc"], metrics["baseline"]["roc_auc"]
    if gain is None:
        return Verdict(False, "the holdout has one class only: ROC AUC is undefined", None)
    words = (f"holdout ROC AUC {model_auc:.4f} vs the baseline's {base_auc:.4f} "
             f"({metrics['baseline']['rule']}): gain {gain:+.4f}, required {margin:+.4f}")
    return Verdict(gain >= margin, words, gain)
