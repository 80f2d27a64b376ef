"""A fitted HistGradientBoostingClassifier as plain arrays: scores and feature contributions.

Scoring walks every tree for all users at once with numpy (no per-user Python loop) and
records, at each split on the way down, how much the expected score moved and on which
feature (path attribution, "Saabas"): the expected score of a node is the training-weighted
mean of the leaves below it. Per user, the contributions plus the model's expected score add
up exactly to the model's own raw score (decision_function), so the score and the reasons
come from one walk. `TreeArrays.from_model` reads scikit-learn's fitted predictors
(`_predictors`, `_baseline_prediction`; scikit-learn is pinned, and tests compare the walk
with predict_proba).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TreeArrays:
    """Every tree's nodes in one set of arrays; a tree is the nodes from its root index on."""

    roots: np.ndarray  # int64, the root node of each tree
    feature: np.ndarray  # int64, split feature of each node (leaves: unused)
    threshold: np.ndarray  # float64, go left when x <= threshold
    missing_left: np.ndarray  # bool, where a missing value (NaN) goes
    left: np.ndarray  # int64, children (leaves point to themselves)
    right: np.ndarray
    is_leaf: np.ndarray  # bool
    expected: np.ndarray  # float64, expected raw score of the node over the training rows
    baseline: float  # the model's constant raw score (log-odds of the training rate)

    @classmethod
    def from_model(cls, model: object) -> TreeArrays:
        predictors = model._predictors  # type: ignore[attr-defined]
        if any(len(trees) != 1 for trees in predictors):
            raise ValueError("only binary classifiers (one tree per iteration) are supported")
        trees = [trees[0].nodes for trees in predictors]
        sizes = np.array([len(t) for t in trees], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        nodes = np.concatenate(trees)
        if np.any(nodes["is_categorical"]):
            raise ValueError("categorical splits are not supported")
        shift = np.repeat(offsets, sizes)
        is_leaf = nodes["is_leaf"].astype(bool)
        index = np.arange(len(nodes), dtype=np.int64)
        left = np.where(is_leaf, index, nodes["left"].astype(np.int64) + shift)
        right = np.where(is_leaf, index, nodes["right"].astype(np.int64) + shift)
        counts = nodes["count"].astype(np.float64)
        expected = np.where(is_leaf, nodes["value"].astype(np.float64), 0.0)
        # children come after their parent (pre-order), so one backward pass fills parents
        for i in range(len(nodes) - 1, -1, -1):
            if not is_leaf[i]:
                lc, rc = left[i], right[i]
                expected[i] = (counts[lc] * expected[lc] + counts[rc] * expected[rc]) / (
                    counts[lc] + counts[rc])
        return cls(
            roots=offsets,
            feature=nodes["feature_idx"].astype(np.int64),
            threshold=nodes["num_threshold"].astype(np.float64),
            missing_left=nodes["missing_go_to_left"].astype(bool),
            left=left,
            right=right,
            is_leaf=is_leaf,
            expected=expected,
            baseline=float(np.ravel(model._baseline_prediction)[0]),  # type: ignore[attr-defined]
        )

    @property
    def expected_raw(self) -> float:
        """The raw score of a user whose features tell nothing: baseline + every root."""
        return self.baseline + float(self.expected[self.roots].sum())

    def explain(self, features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(raw scores, contributions): contributions[i, j] is how much feature j moved user
        i's raw score (log-odds); raw = expected_raw + contributions.sum(axis=1)."""
        x = np.asarray(features, dtype=np.float64)
        n, width = x.shape
        contributions = np.zeros((n, width), dtype=np.float64)
        flat = contributions.reshape(-1)
        rows = np.arange(n, dtype=np.int64)
        for root in self.roots:
            node = np.full(n, root, dtype=np.int64)
            active = rows
            while active.size:
                at = node[active]
                column = self.feature[at]
                value = x[active, column]
                go_left = np.where(np.isnan(value), self.missing_left[at],
                                   value <= self.threshold[at])
                child = np.where(go_left, self.left[at], self.right[at])
                # one split per active row: the flat indices are distinct, so += is exact
                flat[active * width + column] += self.expected[child] - self.expected[at]
                node[active] = child
                active = active[~self.is_leaf[child]]
        raw = self.expected_raw + contributions.sum(axis=1)
        return raw, contributions


def probabilities(raw: np.ndarray) -> np.ndarray:
    """Log-odds to probabilities (the binary log loss's link)."""
    return 1.0 / (1.0 + np.exp(-raw))


def top_features(contributions: np.ndarray, names: list[str] | tuple[str, ...],
                 count: int) -> list[str | None]:
    """Per row, the `count` features that raised the score most (positive contributions
    only, most first), comma-separated; None when no feature raised it."""
    order = np.argsort(-contributions, axis=1, kind="stable")[:, :count]
    out: list[str | None] = []
    for row, picked in zip(contributions, order, strict=True):
        named = [names[j] for j in picked if row[j] > 0]
        out.append(",".join(named) if named else None)
    return out
