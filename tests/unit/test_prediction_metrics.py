"""The holdout metrics and the training-date plan, against values worked out by hand."""

from __future__ import annotations

from datetime import datetime

import numpy as np
import pytest

from ewh.predictions.metrics import (
    brier,
    calibration_table,
    evaluate,
    pr_auc,
    rates_by_bin,
    roc_auc,
    top_decile_lift,
)
from ewh.predictions.snapshots import plan_snapshots
from ewh.predictions.specs import CHURN, PURCHASE


def test_roc_auc_counts_pairs_and_ties_count_half() -> None:
    # positives 0.35, 0.8 against negatives 0.1, 0.4: 3 of 4 pairs ranked right
    assert roc_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8])) == 0.75
    assert roc_auc(np.array([0, 1]), np.array([0.5, 0.5])) == 0.5
    assert roc_auc(np.array([1, 1]), np.array([0.2, 0.3])) is None  # one class: undefined


def test_pr_auc_is_average_precision() -> None:
    # by score: 0.8 (+) precision 1 at recall 1/2; 0.4 (-); 0.35 (+) precision 2/3 at recall 1
    value = pr_auc(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]))
    assert value == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_brier_is_the_mean_squared_error() -> None:
    assert brier(np.array([0, 1]), np.array([0.2, 0.8])) == pytest.approx(0.04)


def test_top_decile_lift() -> None:
    # 20 rows, 4 positives (rate 0.2); the top tenth is the 2 highest scores, both positive
    labels = np.array([1, 1] + [0] * 16 + [1, 1])
    scores = np.array([0.9, 0.8] + [0.5] * 16 + [0.1, 0.2])
    assert top_decile_lift(labels, scores) == pytest.approx(1.0 / 0.2)
    assert top_decile_lift(np.zeros(5), np.arange(5.0)) is None


def test_calibration_table_bins_rows_by_probability() -> None:
    table = calibration_table(np.array([0, 1, 0, 1]), np.array([0.9, 0.8, 0.1, 0.2]), bins=2)
    assert [(r["rows"], r["mean_predicted"], r["observed_rate"]) for r in table] == [
        (2, 0.15, 0.5), (2, 0.85, 0.5)]


def test_a_rule_score_becomes_the_training_rate_of_its_bin() -> None:
    # training: score 0 -> 1 of 2 positive (0.5), score 5 -> 2 of 2 (1.0); the edge is 2.5
    rates = rates_by_bin(np.array([0, 0, 5, 5]), np.array([0, 1, 1, 1]), np.array([0, 5, 3, 1]))
    assert rates.tolist() == [0.5, 1.0, 1.0, 0.5]


def test_evaluate_ranks_a_rule_by_its_own_score() -> None:
    labels = np.array([0, 0, 1, 1])
    result = evaluate(labels, np.array([0.5, 0.5, 0.5, 0.5]), ranking=np.array([1, 2, 3, 4]))
    assert (result["roc_auc"], result["brier"], result["positives"]) == (1.0, 0.25, 2)


def test_snapshot_dates_hold_out_the_latest_and_leave_a_gap_before_them() -> None:
    plans = plan_snapshots(datetime(2026, 10, 1), datetime(2026, 7, 3), [PURCHASE, CHURN],
                           interval_days=7, training=6, holdout=2)

    def days(dates):
        return [d.strftime("%m-%d") for d in dates]

    # purchase (14 days): 09-24 + 14 is after as_of, so the holdout is 09-10 and 09-17; its
    # training dates end by 09-10 - 14 = 08-27; 07-16 is within 14 days of the first event
    assert days(plans["purchase"].holdout) == ["09-10", "09-17"]
    assert days(plans["purchase"].train) == ["07-23", "07-30", "08-06", "08-13", "08-20",
                                             "08-27"]
    # churn (28 days): holdout 08-27 and 09-03; training ends by 08-27 - 28 = 07-30
    assert days(plans["churn"].holdout) == ["08-27", "09-03"]
    assert days(plans["churn"].train) == ["07-23", "07-30"]


def test_without_enough_history_a_model_has_no_dates() -> None:
    plans = plan_snapshots(datetime(2026, 10, 1), datetime(2026, 9, 20), [CHURN],
                           interval_days=7, training=6, holdout=2)
    assert not plans["churn"].usable
