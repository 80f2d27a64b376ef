"""`ewh predictions list | train`: the model registry, and a training run on demand."""

from __future__ import annotations

import argparse
from typing import Any

from ewh.cli.main import Handler, OperationalError, command


@command("predictions", "list the prediction models (published and candidate versions, "
                        "holdout metrics), or train them now")
def _predictions(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("action", choices=["list", "train"],
                        help="list: the registry; train: run the train_prediction_models job "
                             "(published when a model beats its rule baseline)")
    return _run


def _summary(metrics: dict[str, Any] | None) -> str:
    if not metrics or metrics.get("status") != "trained":
        return (metrics or {}).get("reason", "-")
    model, base = metrics["model"], metrics["baseline"]
    return (f"ROC AUC {model['roc_auc']:.3f} (baseline {base['roc_auc']:.3f}), PR AUC "
            f"{model['pr_auc']:.3f}, Brier {model['brier']:.4f}, top-decile lift "
            f"{model['top_decile_lift']:.2f}")


def _list() -> int:
    from ewh.common.settings import get_settings
    from ewh.predictions import registry
    from ewh.predictions.specs import MODELS
    from ewh.predictions.training import gate
    from ewh.segments.report import format_table

    settings = get_settings()
    root = settings.models_dir
    rows = []
    for name in MODELS:
        for kind in (registry.PUBLISHED, registry.CANDIDATE):
            pointer = registry.read_pointer(root, name, kind)
            version = pointer.get("version") if pointer else None
            metrics = (registry.read_json(root, name, version, registry.METRICS_FILE)
                       if version else pointer)
            verdict = gate(metrics, settings.prediction_min_auc_gain) if metrics else None
            rows.append([name, kind, version or "-",
                         "-" if verdict is None else ("passes" if verdict.passed else "fails"),
                         _summary(metrics)])
    print(format_table(["model", "pointer", "version", "gate", "holdout"], rows))
    print(f"registry: {root}; gate: ROC AUC gain >= {settings.prediction_min_auc_gain}")
    return 0


def _train() -> int:
    import dagster as dg

    from orchestration.definitions import defs
    from orchestration.defs.predictions import TRAINING_JOB
    from orchestration.instance import ensure_dagster_home

    home = ensure_dagster_home()
    with dg.DagsterInstance.from_config(str(home)) as instance:
        result = defs().resolve_job_def(TRAINING_JOB).execute_in_process(
            instance=instance, raise_on_error=False)
    for evaluation in result.get_asset_check_evaluations():
        print(f"{'PASS' if evaluation.passed else 'FAIL'} {evaluation.description}")
    code = _list()
    if not result.success:
        raise OperationalError(f"run {result.run_id} of {TRAINING_JOB} did not publish every "
                               "model (a model that does not beat its baseline stays "
                               "unpublished); see the Dagster UI (make dev)")
    return code


def _run(args: argparse.Namespace) -> int:
    return _list() if args.action == "list" else _train()
