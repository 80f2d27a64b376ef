"""Experiments as code: one `experiments/<key>.yml` per experiment, validated at load.

A file that does not validate raises ExperimentConfigError naming the file and each bad
field (`experiments/banner.yml: variants.1.weight: Input should be greater than 0`), so
`ewh experiments check` and a starting collector both refuse it in words.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from ewh.common.clock import to_naive_utc

# What fct_experiment_results measures for every experiment; a file picks its primary metric
# and its guardrails from these (docs/promotion.md#metrics).
Metric = Literal["purchase", "revenue_per_user", "cancelled_order_rate"]
KEY_PATTERN = r"^[a-z0-9][a-z0-9_\-]{0,63}$"


class ExperimentConfigError(ValueError):
    """An experiments/*.yml file that cannot be used; the message names the file and fields."""


class Variant(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    weight: float = Field(gt=0)
    content: dict[str, Any] = Field(default_factory=dict)


class Targeting(BaseModel):
    """Segments (names with or without seg_) read from the serving copy: a user must be in at
    least one `include_segments` (when any are listed) and in none of `exclude_segments`."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    include_segments: tuple[str, ...] = ()
    exclude_segments: tuple[str, ...] = ()

    @field_validator("include_segments", "exclude_segments")
    @classmethod
    def _canonical(cls, names: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(n if n.startswith("seg_") else f"seg_{n}" for n in names)


class Metrics(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    primary: Metric
    guardrails: tuple[Metric, ...] = ()


class Experiment(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    key: str = Field(pattern=KEY_PATTERN)
    salt: str | None = None  # default: the key; change it to reshuffle users
    placement: str = Field(min_length=1, max_length=64)
    control: str = "control"
    variants: tuple[Variant, ...] = Field(min_length=2)
    targeting: Targeting = Targeting()
    start: datetime
    end: datetime
    metrics: Metrics

    @field_validator("start", "end")
    @classmethod
    def _utc(cls, moment: datetime) -> datetime:
        return to_naive_utc(moment)

    @model_validator(mode="after")
    def _consistent(self) -> Experiment:
        names = [v.name for v in self.variants]
        if len(set(names)) != len(names):
            raise ValueError(f"variants: names must be unique, got {names}")
        if self.control not in names:
            raise ValueError(f"control: {self.control!r} is not one of the variants {names}")
        if self.end <= self.start:
            raise ValueError("end: must be after start")
        if self.metrics.primary in self.metrics.guardrails:
            raise ValueError("metrics.guardrails: must not repeat the primary metric")
        return self

    @property
    def hash_salt(self) -> str:
        return self.salt or self.key

    def running(self, now: datetime) -> bool:
        return self.start <= now < self.end

    def variant(self, name: str) -> Variant | None:
        return next((v for v in self.variants if v.name == name), None)


def load_experiment(path: Path) -> Experiment:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ExperimentConfigError(f"{path}: cannot be read as YAML: {exc}") from exc
    if not isinstance(data, dict):
        raise ExperimentConfigError(f"{path}: must be a mapping of fields, got "
                                    f"{type(data).__name__}")
    try:
        experiment = Experiment.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc']) or '(file)'}: {error['msg']}"
            for error in exc.errors())
        raise ExperimentConfigError(f"{path}: {problems}") from exc
    if experiment.key != path.stem:
        raise ExperimentConfigError(f"{path}: key: {experiment.key!r} must equal the file "
                                    f"name {path.stem!r}")
    return experiment


def load_experiments(folder: Path) -> dict[str, Experiment]:
    """Every experiments/*.yml, by key; a missing folder means no experiments. All files are
    checked and every error is reported together."""
    if not folder.is_dir():
        return {}
    experiments: dict[str, Experiment] = {}
    errors: list[str] = []
    for path in sorted(folder.glob("*.yml")):
        try:
            experiment = load_experiment(path)
        except ExperimentConfigError as exc:
            errors.append(str(exc))
            continue
        experiments[experiment.key] = experiment
    if errors:
        raise ExperimentConfigError("\n".join(errors))
    return experiments
