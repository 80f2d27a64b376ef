"""The model registry in files (EWH_MODELS_DIR, default data/models).

    <models_dir>/<model>/<version>/model.pkl       the fitted scikit-learn model (pickle)
                                  /features.json   the features in order, with their
                                                   definitions, feature_version, population
                                  /features.sql    int_user_features' SQL they were computed by
                                  /metrics.json    holdout metrics, the rule baseline's, the gate
                                  /training.json   training window, rows, seed, parameters,
                                                   library versions, data fingerprint
    <models_dir>/<model>/candidate.json            the latest trained version (the gate's input)
    <models_dir>/<model>/published.json            the version scoring uses

A version's name is the training as_of and a fingerprint of everything that determines the
model (training data, labels, parameters, seed, library versions): retraining on the same
data with the same seed gives the same name and the same bytes. Folders are written to a
temporary name and renamed, so a version is complete or absent. The pickles are this
project's own files: load them only from a registry you trust.
"""

from __future__ import annotations

import json
import os
import pickle
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CANDIDATE = "candidate"
PUBLISHED = "published"
MODEL_FILE = "model.pkl"
FEATURES_FILE = "features.json"
FEATURES_SQL_FILE = "features.sql"
METRICS_FILE = "metrics.json"
TRAINING_FILE = "training.json"
VERSION_FILES = (MODEL_FILE, FEATURES_FILE, FEATURES_SQL_FILE, METRICS_FILE, TRAINING_FILE)


def to_json(value: Any) -> bytes:
    return (json.dumps(value, indent=2, sort_keys=True, default=str) + "\n").encode()


def version_dir(root: Path, model: str, version: str) -> Path:
    return root / model / version


def write_version(root: Path, model: str, version: str, files: dict[str, bytes]) -> Path:
    """Write a version folder atomically; an existing folder of that name is kept (the name
    is a fingerprint of its content)."""
    missing = set(VERSION_FILES) - set(files)
    if missing:
        raise ValueError(f"a model version needs {sorted(missing)}")
    final = version_dir(root, model, version)
    if final.exists():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=final.parent))
    try:
        for name, content in files.items():
            (staging / name).write_bytes(content)
        os.replace(staging, final)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
        if not final.exists():
            raise
    return final


def write_pointer(root: Path, model: str, kind: str, payload: dict[str, Any]) -> Path:
    """candidate.json or published.json, replaced atomically."""
    path = root / model / f"{kind}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(to_json(payload))
    os.replace(temporary, path)
    return path


def read_pointer(root: Path, model: str, kind: str) -> dict[str, Any] | None:
    path = root / model / f"{kind}.json"
    return json.loads(path.read_text()) if path.exists() else None


def read_json(root: Path, model: str, version: str, name: str) -> dict[str, Any]:
    return json.loads((version_dir(root, model, version) / name).read_text())


def versions(root: Path, model: str) -> list[str]:
    folder = root / model
    if not folder.is_dir():
        return []
    return sorted(p.name for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


@dataclass(frozen=True)
class LoadedModel:
    name: str
    version: str
    model: Any
    features: list[str]
    feature_version: str
    population: str


def load_version(root: Path, model: str, version: str) -> LoadedModel:
    folder = version_dir(root, model, version)
    if not folder.is_dir():
        raise FileNotFoundError(f"model {model}: no version {version} in {root}")
    features = json.loads((folder / FEATURES_FILE).read_text())
    with (folder / MODEL_FILE).open("rb") as handle:
        fitted = pickle.load(handle)  # noqa: S301 - the registry's own files
    return LoadedModel(model, version, fitted, [f["name"] for f in features["features"]],
                       features["feature_version"], features["population"])


def published_version(root: Path, model: str) -> str | None:
    pointer = read_pointer(root, model, PUBLISHED)
    return pointer["version"] if pointer else None
