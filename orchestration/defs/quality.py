"""Great Expectations suites as blocking asset checks on the tables they validate.

One check per suite, ``gx_<suite>``, on asset key ``[schema, table]``; segment suites come
from the segments in the dbt manifest. An error-level failure yields severity ERROR, which
Dagster's ``blocking=True`` turns into a failed check step; every step that consumes the
checked asset then does not run. Warn-level failures yield WARN and block nothing.

Dagster only gates the assets that *directly* depend on a checked key. The dbt models are
one multi-asset, so a check on raw/events holds back the whole dbt build, but a check on a
dbt model (staging, marts, segments) runs after that build and can only hold back assets
outside it. Those depend on ``gated_asset_keys()`` (the serving copy does, and the exports
depend on the serving copy), so any failed error-level suite keeps the last good serving
copy and exports in place.
"""

from collections.abc import Sequence
from pathlib import Path

import dagster as dg

from ewh.quality.catalog import SuiteSpec, all_suites
from ewh.quality.results import ExpectationOutcome, SuiteResult, shown_samples
from orchestration.pools import WAREHOUSE_POOL
from orchestration.project import warehouse_project
from orchestration.resources import WarehouseSettings

MAX_MESSAGES = 20


def suites() -> dict[str, SuiteSpec]:
    """Every suite: the fixed ones and one per segment in the manifest."""
    return all_suites(warehouse_project().segment_tables)


def check_name(spec: SuiteSpec) -> str:
    return f"gx_{spec.name}"


def suite_asset_key(spec: SuiteSpec) -> dg.AssetKey:
    return dg.AssetKey([spec.schema, spec.table])


def gated_asset_keys(specs: Sequence[SuiteSpec]) -> list[dg.AssetKey]:
    """The dbt-built assets with a suite: an asset that must not run after a failed
    error-level suite declares these as deps (raw/events needs no entry: its check holds
    back the dbt build, and everything after it)."""
    return sorted({suite_asset_key(s) for s in specs if s.schema != "raw"},
                  key=lambda k: k.to_user_string())


def check_result_from_suite(result: SuiteResult, docs_index: Path | None,
                            spec: SuiteSpec | None = None) -> dg.AssetCheckResult:
    """Translate a SuiteResult into what the Dagster UI shows; `spec` names the check when
    one step reports several."""
    failures = result.failures
    metadata: dict[str, object] = {
        "table": result.table,
        "expectations": len(result.expectations),
        "failed_expectations": len(failures),
        "error_failures": len(result.errors),
        "warn_failures": len(result.warnings),
        "failing_rows": sum(f.unexpected_count or 0 for f in failures),
        "failures": dg.MetadataValue.md(
            "\n".join(f"- {f.message}" for f in failures[:MAX_MESSAGES]) or "none"
        ),
    }
    counts = {_label(f): f.unexpected_count for f in failures if f.unexpected_count is not None}
    if counts:
        metadata["failing_counts"] = dg.MetadataValue.json(counts)
    # Offending values, or for nulls the keys (message_id, user_key...) of their rows.
    samples = {_label(f): [str(v) for v in shown_samples(f)] for f in failures
               if shown_samples(f)}
    if samples:
        metadata["sample_values"] = dg.MetadataValue.json(samples)
    if result.docs_url:
        metadata["data_docs"] = dg.MetadataValue.url(result.docs_url)
    if docs_index is not None and docs_index.exists():
        metadata["data_docs_index"] = dg.MetadataValue.url(docs_index.as_uri())
    named = {"asset_key": suite_asset_key(spec), "check_name": check_name(spec)} if spec else {}
    return dg.AssetCheckResult(
        **named,
        passed=not failures,
        severity=dg.AssetCheckSeverity.ERROR if result.errors else dg.AssetCheckSeverity.WARN,
        metadata=metadata,
        description="; ".join(f.message for f in failures[:3]) or None,
    )


def _label(outcome: ExpectationOutcome) -> str:
    return f"{outcome.column or '(table)'} {outcome.expectation_type}"


def build_suite_check(spec: SuiteSpec) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=suite_asset_key(spec),
        name=check_name(spec),
        blocking=True,
        # Reads the warehouse file: it must not overlap a writer of another run.
        pool=WAREHOUSE_POOL,
        description=f"Great Expectations suite `{spec.name}` on {spec.qualified_table}, "
        "validated by SQL pushdown. Error-level failures block downstream assets.",
    )
    def _check(settings: WarehouseSettings) -> dg.AssetCheckResult:
        # Imported here: great_expectations takes seconds to import, and the
        # definitions must load fast for the UI and the sensors.
        from ewh.quality.validate import data_docs_index, validate_warehouse

        (result,) = validate_warehouse(
            settings.get().warehouse, suites=[spec.name],
            segments=warehouse_project().segment_tables,
        )
        return check_result_from_suite(result, data_docs_index())

    return _check


def build_warehouse_checks(specs: Sequence[SuiteSpec]) -> dg.AssetChecksDefinition:
    """Every suite on a dbt-built table, as one step after the dbt build.

    One GX context and one Data Docs build serve all of them (a step per suite costs about a
    second each in start-up alone); each suite is still its own blocking check in the UI.
    """
    by_name = {check_name(spec): spec for spec in specs}

    @dg.multi_asset_check(
        name="gx_warehouse_suites",
        specs=[
            dg.AssetCheckSpec(
                name=name, asset=suite_asset_key(spec), blocking=True,
                description=f"Great Expectations suite `{spec.name}` on "
                f"{spec.qualified_table}, validated by SQL pushdown. Error-level failures "
                "block the serving copy and the exports.",
            )
            for name, spec in by_name.items()
        ],
        can_subset=True,
        # Reads the warehouse file: it must not overlap a writer of another run.
        pool=WAREHOUSE_POOL,
    )
    def _checks(context: dg.AssetCheckExecutionContext, settings: WarehouseSettings):
        from ewh.quality.validate import data_docs_index, validate_warehouse
        from ewh.spark.tables import tables_for_reads

        selected = [by_name[key.name] for key in context.selected_asset_check_keys]
        # the dbt-built tables: the warehouse's, or Spark's through DuckDB views
        results = validate_warehouse(
            tables_for_reads(settings.get()), suites=[spec.name for spec in selected],
            segments=warehouse_project().segment_tables,
        )
        docs = data_docs_index()
        by_suite = {result.suite: result for result in results}
        for spec in selected:
            yield check_result_from_suite(by_suite[spec.name], docs, spec)

    return _checks


def build_quality_checks(specs: Sequence[SuiteSpec]) -> list[dg.AssetChecksDefinition]:
    raw = [spec for spec in specs if spec.schema == "raw"]
    built = [spec for spec in specs if spec.schema != "raw"]
    # The raw suite stays its own step: it must pass before the dbt build starts.
    return [*(build_suite_check(spec) for spec in raw), build_warehouse_checks(built)]


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(asset_checks=build_quality_checks(list(suites().values())))
