"""Great Expectations suites as blocking asset checks on the tables they validate.

An error-level failure blocks everything downstream of the checked asset; warn-level
failures are reported with severity WARN and block nothing.
"""

from __future__ import annotations

import dagster as dg

from ewh.paths import warehouse_path
from ewh.quality.suites import SUITES, SuiteSpec

MAX_MESSAGES = 20


def check_result_from_suite(result, docs_index) -> dg.AssetCheckResult:
    """Translate a SuiteResult into what the Dagster UI shows."""
    failures = result.failures
    errors = [f for f in failures if f.severity == "error"]
    metadata: dict[str, object] = {
        "table": result.table,
        "expectations": len(result.expectations),
        "failed_expectations": len(failures),
        "failing_rows": sum(f.unexpected_count or 0 for f in failures),
        "failures": dg.MetadataValue.md(
            "\n".join(f"- {f.message}" for f in failures[:MAX_MESSAGES]) or "none"
        ),
    }
    samples = {f"{f.column or f.expectation_type}": list(map(str, f.sample_values))
               for f in failures if f.sample_values}
    if samples:
        metadata["sample_values"] = dg.MetadataValue.json(samples)
    if docs_index and docs_index.exists():
        metadata["data_docs"] = dg.MetadataValue.url(docs_index.as_uri())
    return dg.AssetCheckResult(
        passed=not failures,
        severity=dg.AssetCheckSeverity.ERROR if errors else dg.AssetCheckSeverity.WARN,
        metadata=metadata,
        description="; ".join(f.message for f in failures[:3]) or None,
    )


def build_suite_check(spec: SuiteSpec) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey([spec.schema, spec.table]),
        name=f"gx_{spec.name}",
        blocking=True,
        description=f"Great Expectations suite `{spec.name}` on {spec.qualified_table}, "
        "validated by SQL pushdown.",
    )
    def _check() -> dg.AssetCheckResult:
        # Imported here: great_expectations takes seconds to import, and the
        # definitions must load fast for the UI and the sensors.
        from ewh.quality.validate import data_docs_index, validate_warehouse

        (result,) = validate_warehouse(warehouse_path(), suites=[spec.name])
        return check_result_from_suite(result, data_docs_index())

    return _check


quality_checks = [build_suite_check(spec) for spec in SUITES.values()]
