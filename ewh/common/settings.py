"""Every path, key and policy of the warehouse, in one typed object read from the environment.

Each field is the environment variable `EWH_<FIELD>` (for example `EWH_WAREHOUSE`,
`EWH_WRITE_KEYS`). Nothing else in the code reads these variables: call `get_settings()`.
(Dagster builds its `WarehouseSettings` resource from the same variables with `dg.EnvVar`;
`ewh collect` hands the settings to its uvicorn worker processes as variables.)

They are read once per distinct environment: a test or a CLI flag that changes a variable
gets a fresh object, and everything else shares one.

Relative paths are taken from the working directory; the defaults live under the project's
`data/` folder, whatever the working directory.
"""

from __future__ import annotations

import os
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ewh.common.clock import to_naive_utc

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ENV_PREFIX = "EWH_"

ConsentPolicy = Literal["accept_and_flag", "reject"]
CONSENT_POLICIES: tuple[ConsentPolicy, ...] = ("accept_and_flag", "reject")


def _data(name: str) -> Path:
    return PROJECT_ROOT / "data" / name


class Settings(BaseSettings):
    """The warehouse's settings; the field docs are what `docs/architecture.md` lists."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, frozen=True, extra="ignore")

    # --- where things live (the public interface) ------------------------------------------
    warehouse: Path = Field(_data("warehouse.duckdb"), description="the DuckDB warehouse file")
    landing_dir: Path = Field(_data("landing"),
                              description="closed landing files wait here for the loader")
    serving: Path = Field(_data("serving.duckdb"),
                          description="the read-only copy analysts, exports and the API read")
    exports_dir: Path = Field(_data("exports"), description="segment exports")
    ops_db: Path = Field(_data("ops.duckdb"),
                         description="operational records (run-failure alerts), apart from the "
                         "warehouse's writer lock")
    gx_project_dir: Path | None = Field(
        None, description="another Great Expectations project folder (default: expectations/)")
    dbt_target_dir: Path = Field(PROJECT_ROOT / "target",
                                 description="dbt's target folder, where manifest.json is")

    # --- time --------------------------------------------------------------------------------
    as_of: datetime | None = Field(
        None, description="pins every time window (dbt var as_of, quality checks); default: now")

    # --- collector ---------------------------------------------------------------------------
    write_keys: Annotated[frozenset[str], NoDecode] = Field(
        frozenset(), description="comma-separated write keys the collector accepts")
    consent_policy: ConsentPolicy = Field(
        "accept_and_flag", description="what the collector does with a message that refuses "
        "analytics consent: accept_and_flag or reject")
    landing_max_bytes: int = Field(64 << 20, gt=0,
                                   description="rotate a landing file at this size")
    landing_max_age_seconds: float = Field(60.0, gt=0,
                                           description="...or this age, so the loader sees "
                                           "events soon")

    # --- predictions (docs/predictions.md) ---------------------------------------------------
    models_dir: Path = Field(_data("models"),
                             description="the model registry: one folder per model version")
    prediction_min_auc_gain: float = Field(
        0.03, description="a model is published only when its holdout ROC AUC beats its rule "
        "baseline's by at least this much")
    prediction_snapshot_days: int = Field(7, gt=0,
                                          description="days between training snapshot dates")
    prediction_training_snapshots: int = Field(6, gt=0,
                                               description="training snapshot dates per model")
    prediction_holdout_snapshots: int = Field(2, gt=0,
                                              description="holdout (latest) snapshot dates per "
                                              "model")
    prediction_seed: int = Field(0, description="the training seed (same data + seed = same "
                                                "model)")

    @field_validator("warehouse", "landing_dir", "serving", "exports_dir", "ops_db",
                     "gx_project_dir", "dbt_target_dir", "models_dir")
    @classmethod
    def _absolute(cls, path: Path | None) -> Path | None:
        # Absolute, so dbt subprocesses, the loader and the exports agree whatever their cwd.
        if path is None or str(path) == "":
            return None
        return path if path.is_absolute() else Path.cwd() / path

    @field_validator("write_keys", mode="before")
    @classmethod
    def _split_keys(cls, value: object) -> object:
        if isinstance(value, str):
            return frozenset(k.strip() for k in value.split(",") if k.strip())
        return value

    @field_validator("consent_policy", mode="before")
    @classmethod
    def _normalise_policy(cls, value: object) -> object:
        return value.strip().lower() if isinstance(value, str) else value

    @field_validator("as_of", mode="after")
    @classmethod
    def _naive_utc(cls, value: datetime | None) -> datetime | None:
        return to_naive_utc(value) if value is not None else None

    @property
    def manifest_path(self) -> Path:
        """dbt's manifest: the segments and the quality suites are discovered from it."""
        return self.dbt_target_dir / "manifest.json"

    def as_env(self) -> dict[str, str]:
        """These settings as `EWH_*` variables, for subprocesses (dbt, the collector)."""
        env: dict[str, str] = {}
        for name, value in self.model_dump().items():
            if value is None:
                continue
            if isinstance(value, frozenset | set):
                value = ",".join(sorted(value))
            elif isinstance(value, datetime):
                value = value.isoformat(sep=" ")
            env[ENV_PREFIX + name.upper()] = str(value)
        return env


def _environment_key() -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(ENV_PREFIX)))


@lru_cache(maxsize=8)
def _settings_for(_key: tuple[tuple[str, str], ...], _cwd: str) -> Settings:
    return Settings()


def get_settings() -> Settings:
    """The settings of the current environment, read once per distinct environment."""
    return _settings_for(_environment_key(), os.getcwd())
