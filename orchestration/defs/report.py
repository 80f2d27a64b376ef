"""The analyst report, rewritten after every refresh from the serving copy."""

import dagster as dg

from ewh.report.locations import validations_dir
from ewh.report.page import write_report
from orchestration.defs.serving import SERVING_COPY
from orchestration.resources import WarehouseSettings

REPORT = dg.AssetKey(["serving", "report"])


@dg.asset(
    key=REPORT,
    deps=[SERVING_COPY],
    group_name="serving",
    kinds={"html"},
    owners=["team:data-platform"],
    description="data/report.html (EWH_REPORT): segment sizes over time with entries and "
    "exits, lifecycle transitions, segment overlap, campaign and experiment results, data "
    "quality and freshness. One self-contained HTML file with SVG charts; opens offline.",
)
def report(settings: WarehouseSettings) -> dg.MaterializeResult:
    where = settings.get()
    out = write_report(where.serving, where.report, validations_dir())
    return dg.MaterializeResult(metadata={
        "path": dg.MetadataValue.path(str(out)),
        "open": dg.MetadataValue.url(out.resolve().as_uri()),
        "bytes": dg.MetadataValue.int(out.stat().st_size),
    })


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(assets=[report])
