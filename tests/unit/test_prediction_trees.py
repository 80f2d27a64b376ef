"""The tree walk that scores and explains: it must be the fitted model itself.

scikit-learn's own predict_proba and decision_function are the reference."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier

from ewh.predictions.specs import MODEL_PARAMS
from ewh.predictions.trees import TreeArrays, probabilities, top_features


@pytest.fixture(scope="module")
def fitted() -> tuple[HistGradientBoostingClassifier, np.ndarray]:
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3000, 5))
    x[rng.random(x.shape) < 0.15] = np.nan  # missing values take their learned side
    signal = np.nan_to_num(x[:, 0]) - 0.7 * np.nan_to_num(x[:, 2]) + rng.normal(size=3000)
    model = HistGradientBoostingClassifier(**MODEL_PARAMS, random_state=0)
    model.fit(x, (signal > 0.8).astype(int))
    test = rng.normal(size=(500, 5))
    test[rng.random(test.shape) < 0.15] = np.nan
    return model, test


def test_the_walk_gives_predict_proba(fitted) -> None:
    model, x = fitted
    raw, _ = TreeArrays.from_model(model).explain(x)
    np.testing.assert_allclose(raw, model.decision_function(x), rtol=0, atol=1e-10)
    np.testing.assert_allclose(probabilities(raw), model.predict_proba(x)[:, 1], rtol=0,
                               atol=1e-12)


def test_contributions_add_up_to_the_score_and_follow_the_signal(fitted) -> None:
    model, x = fitted
    trees = TreeArrays.from_model(model)
    raw, contributions = trees.explain(x)
    np.testing.assert_allclose(trees.expected_raw + contributions.sum(axis=1), raw, atol=1e-10)
    # the label depended on features 0 and 2 only: they carry most of the movement
    weight = np.abs(contributions).mean(axis=0)
    assert set(np.argsort(-weight)[:2]) == {0, 2}


def test_top_features_name_only_the_ones_that_raised_the_score() -> None:
    contributions = np.array([[0.5, -1.0, 0.2, 0.0], [-0.1, -0.2, -0.3, -0.4]])
    assert top_features(contributions, ["a", "b", "c", "d"], 3) == ["a,c", None]
