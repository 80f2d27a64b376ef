"""Predictions: weekly training behind a blocking gate, scoring and tags in every refresh.

Training (group model_training, job train_prediction_models, weekly schedule):
    training_events      copy raw.events into the run's scratch warehouse
                         (<models_dir>/.work/<run id>; the only read of the warehouse)
    <model>_candidate    int_user_features at past dates in the scratch warehouse, labels,
                         fit on earlier dates, evaluate on later ones, write the version to
                         the registry as the candidate (both models in one step)
    beats_rule_baseline  blocking check on each candidate: holdout ROC AUC at least
                         EWH_PREDICTION_MIN_AUC_GAIN above the rule baseline's
    <model>_model        publish the candidate (registry published.json); does not run when
                         the check failed, so the last good model stays

Refresh (group predictions, in refresh_warehouse):
    raw/prediction_scores  after int_user_features, before the models that read predictions
                           (transform.py builds those in a second dbt step)
    prediction_tags        after the serving copy: tag changes into the landing zone
"""

import contextlib
import shutil

import dagster as dg

from ewh.common.clock import dbt_timestamp, resolve_as_of, utc_now
from ewh.predictions import registry
from ewh.predictions.scoring import score_warehouse
from ewh.predictions.snapshots import (
    build_training_set,
    copy_raw_events,
    first_event_at,
    training_work_dir,
)
from ewh.predictions.specs import MODELS
from ewh.predictions.tags import write_prediction_tags
from ewh.predictions.training import gate, train_model
from ewh.spark.tables import tables_for_reads
from orchestration.defs.serving import SERVING_COPY
from orchestration.pools import WAREHOUSE_POOL
from orchestration.resources import WarehouseSettings
from orchestration.translator import asset_key_for

TRAINING_GROUP = "model_training"
PREDICTIONS_GROUP = "predictions"
TRAINING_JOB = "train_prediction_models"

RAW_EVENTS = dg.AssetKey(["raw", "events"])
PREDICTION_SCORES = asset_key_for("raw", "prediction_scores")
FEATURES = asset_key_for("intermediate", "int_user_features")
TRAINING_EVENTS = dg.AssetKey([TRAINING_GROUP, "training_events"])
GATE_CHECK = "beats_rule_baseline"


def candidate_key(model: str) -> dg.AssetKey:
    return dg.AssetKey([TRAINING_GROUP, f"{model}_candidate"])


def published_key(model: str) -> dg.AssetKey:
    return dg.AssetKey([TRAINING_GROUP, f"{model}_model"])


@dg.asset(key=TRAINING_EVENTS, deps=[RAW_EVENTS], group_name=TRAINING_GROUP, kinds={"duckdb"},
          pool=WAREHOUSE_POOL,
          description="raw.events copied into the training run's scratch warehouse "
          "(<models_dir>/.work/<run id>), the only read of the warehouse during training.")
def training_events(context: dg.AssetExecutionContext,
                    settings: WarehouseSettings) -> dg.MaterializeResult:
    where = settings.get()
    copied, start = copy_raw_events(where.warehouse,
                                    training_work_dir(where.models_dir, context.run_id))
    context.log.info(f"copied {copied} events (from {start}) for training")
    return dg.MaterializeResult(metadata={"events": copied,
                                          "first_event_at": str(start) if start else None})


@dg.multi_asset(
    specs=[dg.AssetSpec(candidate_key(name), deps=[TRAINING_EVENTS], group_name=TRAINING_GROUP,
                        kinds={"scikit-learn"},
                        description=f"A trained {name} model version, not yet published: "
                        f"{spec.description}")
           for name, spec in MODELS.items()],
    name="prediction_candidates",
)
def prediction_candidates(context: dg.AssetExecutionContext, settings: WarehouseSettings):
    """Point-in-time training set at past dates, then one candidate version per model."""
    where = settings.get()
    work = training_work_dir(where.models_dir, context.run_id)
    as_of = resolve_as_of(where.as_of)
    try:
        training_set = build_training_set(
            work, as_of, first_event_at(work), list(MODELS.values()),
            where.prediction_snapshot_days,
            where.prediction_training_snapshots, where.prediction_holdout_snapshots)
        context.log.info(f"training set at {dbt_timestamp(as_of)}: {training_set.rows} rows, "
                         f"dbt seconds by date {training_set.seconds_by_date}")
        for name, spec in MODELS.items():
            result = train_model(spec, training_set, where.models_dir, where.prediction_seed)
            verdict = gate(result.metrics, where.prediction_min_auc_gain)
            context.log.info(f"{name}: version {result.version}; {verdict.reason}")
            yield dg.MaterializeResult(asset_key=candidate_key(name), metadata={
                "version": result.version,
                "status": result.metrics["status"],
                "roc_auc": _metric(result.metrics, "model", "roc_auc"),
                "baseline_roc_auc": _metric(result.metrics, "baseline", "roc_auc"),
                "roc_auc_gain": result.metrics.get("roc_auc_gain"),
                "pr_auc": _metric(result.metrics, "model", "pr_auc"),
                "brier": _metric(result.metrics, "model", "brier"),
                "top_decile_lift": _metric(result.metrics, "model", "top_decile_lift"),
                "metrics": dg.MetadataValue.json(result.metrics),
                "path": dg.MetadataValue.path(str(result.path)) if result.path else None,
            })
    finally:
        shutil.rmtree(work, ignore_errors=True)  # personal data: only for the run
        with contextlib.suppress(OSError):
            work.parent.rmdir()  # .work itself, when no other training runs


def _metric(metrics: dict, side: str, name: str) -> float | None:
    return metrics.get(side, {}).get(name) if isinstance(metrics.get(side), dict) else None


def build_gate_check(model: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(asset=candidate_key(model), name=GATE_CHECK, blocking=True,
                    description=f"The {model} candidate may be published only when its holdout "
                    "ROC AUC beats its rule baseline's by EWH_PREDICTION_MIN_AUC_GAIN; "
                    "otherwise the published model stays.")
    def _gate(settings: WarehouseSettings) -> dg.AssetCheckResult:
        where = settings.get()
        candidate = registry.read_pointer(where.models_dir, model, registry.CANDIDATE)
        if candidate is None or candidate.get("version") is None:
            reason = (candidate or {}).get("reason", "no candidate trained")
            return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR,
                                       description=f"{model}: {reason}")
        metrics = registry.read_json(where.models_dir, model, candidate["version"],
                                     registry.METRICS_FILE)
        verdict = gate(metrics, where.prediction_min_auc_gain)
        return dg.AssetCheckResult(
            passed=verdict.passed, severity=dg.AssetCheckSeverity.ERROR,
            description=f"{model} {candidate['version']}: {verdict.reason}",
            metadata={"version": candidate["version"], "roc_auc_gain": verdict.gain,
                      "required_gain": where.prediction_min_auc_gain})

    return _gate


def build_publish_asset(model: str) -> dg.AssetsDefinition:
    @dg.asset(key=published_key(model), deps=[candidate_key(model)], group_name=TRAINING_GROUP,
              description=f"The published {model} model (registry published.json): the "
              "candidate, once it passed the gate. Scoring uses it from the next refresh.")
    def _publish(context: dg.AssetExecutionContext,
                 settings: WarehouseSettings) -> dg.MaterializeResult:
        where = settings.get()
        candidate = registry.read_pointer(where.models_dir, model, registry.CANDIDATE)
        if candidate is None or candidate.get("version") is None:
            raise dg.Failure(f"{model}: no trained candidate to publish")
        pointer = {"version": candidate["version"], "published_at": dbt_timestamp(utc_now()),
                   "roc_auc": candidate.get("roc_auc"),
            "baseline_roc_auc": candidate.get("baseline_roc_auc"),
            "roc_auc_gain": candidate.get("roc_auc_gain"), "run_id": context.run_id}
        registry.write_pointer(where.models_dir, model, registry.PUBLISHED, pointer)
        context.log.info(f"published {model} {candidate['version']}")
        return dg.MaterializeResult(metadata={"version": candidate["version"],
                                              "roc_auc": candidate.get("roc_auc")})

    return _publish


@dg.asset(key=PREDICTION_SCORES, deps=[FEATURES], group_name=PREDICTIONS_GROUP,
          kinds={"duckdb"}, pool=WAREHOUSE_POOL,
          description="The published models' scores of the current int_user_features "
          "(raw.prediction_scores, replaced as a whole; empty without a published model).")
def prediction_scores(context: dg.AssetExecutionContext,
                      settings: WarehouseSettings) -> dg.MaterializeResult:
    where = settings.get()
    # with the Spark target: Spark's int_user_features in, the scores also to the lake
    result = score_warehouse(where.warehouse, where.models_dir,
                             features=tables_for_reads(where), lake_dir=where.lake_dir)
    for model, reason in result.skipped.items():
        log = context.log.info if reason == "no published version" else context.log.error
        log(f"{model}: not scored: {reason}")
    context.log.info(f"scored {result.scored} with {result.versions} in {result.seconds} s")
    return dg.MaterializeResult(metadata={
        "scored": dg.MetadataValue.json(result.scored),
        "versions": dg.MetadataValue.json(result.versions),
        "skipped": dg.MetadataValue.json(result.skipped),
        "as_of": str(result.as_of) if result.as_of else None,
        "seconds": result.seconds,
    })


@dg.asset(key=dg.AssetKey([PREDICTIONS_GROUP, "prediction_tags"]),
          deps=[*(asset_key_for("segments", s.segment) for s in MODELS.values()), SERVING_COPY],
          group_name=PREDICTIONS_GROUP, kinds={"ndjson"},
          description="Prediction segment members as user tags (likely_buyer, churn_risk): "
          "identify messages for the users whose tags change, landed the way PUT "
          "/api/users/{userId}/tags lands them; the next refresh loads them.")
def prediction_tags(context: dg.AssetExecutionContext,
                    settings: WarehouseSettings) -> dg.MaterializeResult:
    result = write_prediction_tags(settings.get())
    for error in result.rejected:
        context.log.error(f"tag message refused: {error['detail']}")
    context.log.info(f"tags: {result.users_tagged} users tagged, {result.users_cleared} "
                     f"cleared -> {[str(p) for p in result.landing_files]}")
    return dg.MaterializeResult(metadata={
        "users_tagged": result.users_tagged, "users_cleared": result.users_cleared,
        "rejected": len(result.rejected),
        "files": dg.MetadataValue.json([str(p) for p in result.landing_files]),
    })


training_job = dg.define_asset_job(
    TRAINING_JOB, selection=dg.AssetSelection.groups(TRAINING_GROUP),
    description="Train the prediction models on point-in-time features; publish each one "
    "that beats its rule baseline (blocking check beats_rule_baseline).")


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(
        assets=[training_events, prediction_candidates, prediction_scores, prediction_tags,
                *(build_publish_asset(m) for m in MODELS)],
        asset_checks=[build_gate_check(m) for m in MODELS],
        jobs=[training_job],
        schedules=[dg.ScheduleDefinition(
            name="weekly_model_training", job=training_job, cron_schedule="0 4 * * 1",
            execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING)],
    )
