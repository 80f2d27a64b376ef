"""The plain-text summary of a validation run, for the terminal and logs."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ewh.quality.results import ExpectationOutcome, SuiteResult, shown_samples
from ewh.segments.report import format_table

MAX_SAMPLES = 3


def _status(result: SuiteResult) -> str:
    if result.errors:
        return "FAIL"
    return "warn" if result.warnings else "pass"


def _samples(outcome: ExpectationOutcome) -> str:
    shown = shown_samples(outcome)
    if not shown:
        return ""
    return " e.g. " + ", ".join(str(v) for v in shown[:MAX_SAMPLES])


def render(results: Sequence[SuiteResult], docs_index: Path | None) -> str:
    """A table of suites, then one line per failed expectation, then the verdict."""
    rows = [[r.suite, r.table, str(len(r.expectations)), str(len(r.errors)),
             str(len(r.warnings)), _status(r)] for r in results]
    lines = [format_table(["suite", "table", "expectations", "errors", "warnings", "result"],
                          rows)]
    failed = [o for r in results for o in r.errors + r.warnings]
    if failed:
        lines.append("")
    for outcome in failed:
        label = "ERROR" if outcome.severity == "error" else "WARN "
        lines.append(f"{label} {outcome.message}{_samples(outcome)}")
    if docs_index is not None:
        lines += ["", f"Data Docs: {docs_index.as_uri()}"]
    errors = sum(len(r.errors) for r in results)
    warnings = sum(len(r.warnings) for r in results)
    failing = sum(1 for r in results if r.errors)
    verdict = (f"FAILED: {errors} error-level failures in {failing} of {len(results)} suites"
               if errors else f"passed: {len(results)} suites")
    lines += ["", f"quality gate {verdict}, {warnings} warnings"]
    return "\n".join(lines)
