"""Predictions: purchase-propensity and churn models trained on point-in-time features.

- `specs`: what each model predicts, for whom, from which features, against which baseline.
- `snapshots`: the training dates, and the point-in-time training set (int_user_features
  built by dbt at each past date in a scratch warehouse, labels from the days after).
- `metrics`: ROC AUC, PR AUC, Brier score, calibration table, top-decile lift.
- `trees`: the fitted trees as arrays: scores and per-feature contributions.
- `training`: fit on earlier dates, evaluate on later ones, write a registry version.
- `registry`: the model registry in files (one folder per version, a published pointer).
- `scoring`: score the current int_user_features into raw.prediction_scores.
- `tags`: write segment members back as user tags, the way PUT /api/users/{id}/tags does.

docs/predictions.md describes the whole flow.
"""
