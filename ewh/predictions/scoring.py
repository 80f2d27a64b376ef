"""Score the current int_user_features with the published models into raw.prediction_scores.

Runs between the dbt build of int_user_features and the models that read the scores
(marts.user_predictions, dim_users, the prediction segments). Each published model scores
the rows of its own population, with its own feature list, and only rows of the
feature_version it was trained on: when int_user_features' SQL has changed since, the model
is skipped (no scores, a clear reason) until it is retrained. The table is replaced as a
whole in one transaction, so it always holds exactly the current published models' scores:
empty when none is published.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from ewh.common.clock import utc_now
from ewh.common.duckdb_tables import has_table
from ewh.common.sql_text import quote_ident, sql_literal
from ewh.ingest.lake import publish_prediction_scores
from ewh.ingest.raw_tables import ensure_raw_tables
from ewh.predictions import registry
from ewh.predictions.specs import FEATURES_TABLE, MODELS, TOP_FEATURES, ModelSpec
from ewh.predictions.trees import TreeArrays, probabilities, top_features

SCORES_TABLE = "raw.prediction_scores"
SCORE_COLUMNS = ("user_key", "user_id", "model_name", "model_version", "score", "top_features",
                 "as_of", "feature_version", "scored_at")


@dataclass(frozen=True)
class ScoringResult:
    scored: dict[str, int] = field(default_factory=dict)  # model -> users scored
    versions: dict[str, str] = field(default_factory=dict)  # model -> version used
    skipped: dict[str, str] = field(default_factory=dict)  # model -> why it scored nobody
    as_of: datetime | None = None
    seconds: float = 0.0


def _score_one(con: duckdb.DuckDBPyConnection, loaded: registry.LoadedModel,
               scored_at: datetime, features_table: str = FEATURES_TABLE) -> pa.Table:
    columns = ", ".join(quote_ident(f) for f in loaded.features)
    found = con.execute(
        f"select user_key, user_id, as_of, feature_version, {columns} from {features_table} "
        f"where {loaded.population} order by user_key").fetchnumpy()
    users = len(found["user_key"])
    matrix = (np.column_stack([np.ma.filled(np.ma.asarray(found[f]).astype(np.float64), np.nan)
                               for f in loaded.features])
              if users else np.empty((0, len(loaded.features))))
    raw, contributions = TreeArrays.from_model(loaded.model).explain(matrix)
    return pa.table({
        "user_key": pa.array(np.asarray(found["user_key"]), pa.string()),
        "user_id": pa.array(np.ma.filled(np.ma.asarray(found["user_id"]), None), pa.string()),
        "model_name": pa.array([loaded.name] * users, pa.string()),
        "model_version": pa.array([loaded.version] * users, pa.string()),
        "score": pa.array(probabilities(raw), pa.float64()),
        "top_features": pa.array(top_features(contributions, loaded.features, TOP_FEATURES),
                                 pa.string()),
        "as_of": pa.array(np.asarray(found["as_of"]), pa.timestamp("us")),
        "feature_version": pa.array(np.asarray(found["feature_version"]), pa.string()),
        "scored_at": pa.array([scored_at] * users, pa.timestamp("us")),
    })


def score_warehouse(warehouse: Path, models_dir: Path,
                    specs: list[ModelSpec] | None = None, *, features: Path | None = None,
                    lake_dir: Path | None = None) -> ScoringResult:
    """Replace raw.prediction_scores with the published models' scores of the current
    int_user_features (see the module docstring). `features`: another DuckDB file holding
    int_user_features (with the Spark target, the views over Spark's tables,
    ewh.spark.tables); `lake_dir`: the scores are also published there for Spark
    (ewh.ingest.lake.publish_prediction_scores)."""
    started = time.perf_counter()
    scored_at = utc_now()
    result = ScoringResult()
    tables: list[pa.Table] = []
    with duckdb.connect(str(warehouse)) as con:
        ensure_raw_tables(con)
        table = FEATURES_TABLE
        if features is not None and Path(features) != Path(warehouse):
            con.execute(f"attach {sql_literal(str(features))} as features (read_only)")
            table = f"features.{FEATURES_TABLE}"
        ready = has_table(con, *FEATURES_TABLE.split("."))
        current = ([r[0] for r in con.execute(
            f"select distinct feature_version from {table}").fetchall()] if ready else [])
        as_of = (con.execute(f"select max(as_of) from {table}").fetchone()[0]
                 if ready else None)
        for spec in specs if specs is not None else list(MODELS.values()):
            version = registry.published_version(models_dir, spec.name)
            if version is None:
                result.skipped[spec.name] = "no published version"
                continue
            loaded = registry.load_version(models_dir, spec.name, version)
            if not ready:
                result.skipped[spec.name] = f"{FEATURES_TABLE} does not exist: run dbt first"
                continue
            if current and current != [loaded.feature_version]:
                result.skipped[spec.name] = (
                    f"version {version} was trained on feature_version {loaded.feature_version}"
                    f", {FEATURES_TABLE} now has {', '.join(map(str, current))}: the feature "
                    "definitions changed, retrain the model")
                continue
            scores = _score_one(con, loaded, scored_at, table)
            tables.append(scores)
            result.scored[spec.name] = scores.num_rows
            result.versions[spec.name] = version
        con.execute("begin transaction")
        con.execute(f"delete from {SCORES_TABLE}")
        for number, scores in enumerate(tables):
            name = f"new_scores_{number}"
            con.register(name, scores)
            con.execute(f"insert into {SCORES_TABLE} ({', '.join(SCORE_COLUMNS)}) "
                        f"select {', '.join(SCORE_COLUMNS)} from {name}")
            con.unregister(name)
        con.execute("commit")
        if lake_dir is not None:
            publish_prediction_scores(con, lake_dir)
    return ScoringResult(result.scored, result.versions, result.skipped, as_of,
                         round(time.perf_counter() - started, 3))
