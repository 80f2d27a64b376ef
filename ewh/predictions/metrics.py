"""How good a score is on the holdout: ROC AUC, PR AUC, Brier score, calibration, lift.

`evaluate` takes probabilities. A rule baseline gives a score, not a probability: `rates_by_bin`
first turns it into one, the positive rate of its score bin on the training rows (bins are
the distinct scores, or deciles when there are more than ten), so its Brier score and
calibration table mean the same as the model's.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score

CALIBRATION_BINS = 10
TOP_SHARE = 0.1  # the top decile


def roc_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Area under the ROC curve (ties count half); None with only one class."""
    if len(set(np.asarray(labels).tolist())) < 2:
        return None
    return float(roc_auc_score(labels, scores))


def pr_auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Average precision (the step-wise area under the precision-recall curve)."""
    if not np.any(labels):
        return None
    return float(average_precision_score(labels, scores))


def brier(labels: np.ndarray, probabilities: np.ndarray) -> float:
    """Mean squared error of the probabilities against the 0/1 outcomes."""
    return float(np.mean((np.asarray(probabilities, dtype=float) - labels) ** 2))


def top_decile_lift(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """Positive rate of the highest-scoring tenth (ceil(n / 10) rows; ties at the cut are
    taken in row order) over the overall positive rate."""
    y = np.asarray(labels, dtype=float)
    if len(y) == 0 or y.mean() == 0:
        return None
    k = int(np.ceil(len(y) * TOP_SHARE))
    top = np.argsort(-np.asarray(scores, dtype=float), kind="stable")[:k]
    return float(y[top].mean() / y.mean())


def calibration_table(labels: np.ndarray, probabilities: np.ndarray,
                      bins: int = CALIBRATION_BINS) -> list[dict[str, Any]]:
    """Rows sorted by probability, cut into `bins` groups of (nearly) equal size: each
    group's mean predicted probability against its observed positive rate."""
    p = np.asarray(probabilities, dtype=float)
    y = np.asarray(labels, dtype=float)
    order = np.argsort(p, kind="stable")
    table = []
    for number, part in enumerate(np.array_split(order, bins), start=1):
        if len(part) == 0:
            continue
        table.append({"bin": number, "rows": int(len(part)),
                      "mean_predicted": round(float(p[part].mean()), 6),
                      "observed_rate": round(float(y[part].mean()), 6),
                      "min_predicted": round(float(p[part].min()), 6),
                      "max_predicted": round(float(p[part].max()), 6)})
    return table


def rates_by_bin(train_scores: np.ndarray, train_labels: np.ndarray,
                 scores: np.ndarray) -> np.ndarray:
    """A rule's score as a probability: the training positive rate of the score's bin."""
    train = np.asarray(train_scores, dtype=float)
    y = np.asarray(train_labels, dtype=float)
    overall = float(y.mean()) if len(y) else 0.0
    distinct = np.unique(train)
    if len(distinct) <= CALIBRATION_BINS:
        edges = (distinct[:-1] + distinct[1:]) / 2  # one bin per distinct score
    else:
        edges = np.unique(np.quantile(train, np.linspace(0, 1, CALIBRATION_BINS + 1)[1:-1]))
    train_bin = np.searchsorted(edges, train, side="right")
    rates = np.full(len(edges) + 1, overall)
    for b in range(len(edges) + 1):
        members = train_bin == b
        if members.any():
            rates[b] = y[members].mean()
    return rates[np.searchsorted(edges, np.asarray(scores, dtype=float), side="right")]


def evaluate(labels: np.ndarray, probabilities: np.ndarray,
             ranking: np.ndarray | None = None) -> dict[str, Any]:
    """Every metric. The ranking metrics (ROC AUC, PR AUC, lift) read `ranking` when given
    (a rule's own score), the probability metrics (Brier, calibration) `probabilities`."""
    y = np.asarray(labels, dtype=int)
    p = np.asarray(probabilities, dtype=float)
    r = p if ranking is None else np.asarray(ranking, dtype=float)
    return {
        "rows": int(len(y)),
        "positives": int(y.sum()),
        "positive_rate": round(float(y.mean()), 6) if len(y) else None,
        "roc_auc": _rounded(roc_auc(y, r)),
        "pr_auc": _rounded(pr_auc(y, r)),
        "brier": _rounded(brier(y, p)) if len(y) else None,
        "top_decile_lift": _rounded(top_decile_lift(y, r)),
        "calibration": calibration_table(y, p) if len(y) else [],
    }


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, 6)
