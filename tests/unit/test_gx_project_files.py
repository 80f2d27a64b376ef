"""The GX project's generated files stay out of git: only great_expectations.yml, the Data
Docs plugin, the README and the .gitignore are committed (expectations/README.md)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

import ewh
from ewh.quality.project import GENERATED_DIRS

ROOT = Path(ewh.__file__).resolve().parents[1]  # the checkout this ewh is imported from


def _git(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True,
                          check=False)


@pytest.fixture(scope="module")
def committed() -> list[str]:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    top = _git("rev-parse", "--show-toplevel")
    if top.returncode != 0 or Path(top.stdout.strip()).resolve() != ROOT:
        pytest.skip(f"{ROOT} is not a git checkout")
    return _git("ls-files", "expectations").stdout.splitlines()


def test_no_generated_gx_file_is_committed(committed: list[str]) -> None:
    assert "expectations/gx/great_expectations.yml" in committed
    generated = [f for f in committed
                 if any(f.startswith(f"expectations/gx/{d}/") for d in GENERATED_DIRS)]
    assert generated == [], "generated at run time: `git rm --cached` them"
    per_segment = [f for f in committed if Path(f).name.startswith("seg_")]
    assert per_segment == []


def test_generated_gx_files_are_ignored(committed: list[str]) -> None:
    examples = [f"expectations/gx/{folder}/seg_example.json" for folder in GENERATED_DIRS]
    examples.append("expectations/gx/expectations/.ge_store_backend_id")
    ignored = _git("check-ignore", "--no-index", *examples).stdout.splitlines()
    assert ignored == examples
