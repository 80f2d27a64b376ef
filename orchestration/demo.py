"""`make demo`: generate sample data, run the whole pipeline through Dagster, print a summary.

It starts from an empty warehouse and landing zone each time, so it is repeatable.
Runs go to the Dagster instance in DAGSTER_HOME, so `make dev` shows them afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import time

import duckdb


def _reset(paths: list) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args(argv)

    from ewh.generator import generate
    from ewh.paths import exports_dir, landing_dir, serving_path, warehouse_path

    os.environ["EWH_WAREHOUSE"] = str(warehouse_path())
    # The warehouse and what sits beside it (its WAL, the segment-size history of the
    # volume checks), the landing zone, the exports and the serving copy.
    beside = list(warehouse_path().parent.glob(warehouse_path().stem + ".*"))
    _reset([warehouse_path(), *beside, landing_dir(), exports_dir(), serving_path()])
    started = time.monotonic()
    print(f"1/3 generating {args.events:,} events (seed {args.seed}) into {landing_dir()}")
    generate(landing_dir(), events=args.events, seed=args.seed)

    print("2/3 running the refresh_warehouse job: load -> dbt build -> checks -> exports")
    import dagster as dg

    from orchestration.definitions import defs
    from orchestration.instance import ensure_dagster_home

    ensure_dagster_home()
    with dg.DagsterInstance.get() as instance:
        job = defs.resolve_job_def("refresh_warehouse")
        result = job.execute_in_process(
            instance=instance, raise_on_error=False,
            # Step-by-step debug lines drown the summary; the UI keeps the full log.
            run_config={"loggers": {"console": {"config": {"log_level": "WARNING"}}}},
        )

    print("3/3 summary\n")
    print(render_summary(result))
    print(f"\nfinished in {time.monotonic() - started:.0f} s; run {result.run_id}")
    return 0 if result.success else 1


def _short(text: str, width: int = 90) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def render_summary(result) -> str:
    from ewh.paths import exports_dir, warehouse_path
    from ewh.segment_report import format_table, segment_sizes
    from orchestration.project import SEGMENTS

    with duckdb.connect(str(warehouse_path()), read_only=True) as con:
        read, loaded, dup, rejected = con.execute(
            "select sum(rows_read), sum(rows_loaded), sum(rows_duplicate), sum(rows_rejected) "
            "from raw.load_manifest"
        ).fetchone()
        sessions, users = con.execute(
            "select (select count(*) from marts.fct_sessions), "
            "(select count(*) from marts.dim_users)"
        ).fetchone()
    lines = [
        f"load: read {read:,} = loaded {loaded:,} + duplicates {dup:,} + rejected {rejected:,}"
        f" ({'reconciled' if read == loaded + dup + rejected else 'DOES NOT RECONCILE'})",
        f"marts: {sessions:,} sessions, {users:,} users",
        "",
        format_table(
            ["segment", "members", "owner", "export", "rule"],
            [[s.segment, f"{s.members:,}", s.owner, "yes" if s.exported else "-", _short(s.rule)]
             for s in segment_sizes(warehouse_path(), SEGMENTS)],
        ),
        "",
    ]
    evaluations = result.get_asset_check_evaluations()
    failed = [e for e in evaluations if not e.passed]
    gx = [e for e in evaluations if e.check_name.startswith("gx_")]
    lines.append(f"data quality: {len(evaluations) - len(failed)}/{len(evaluations)} checks "
                 f"passed ({len(gx)} Great Expectations suites, "
                 f"{len(evaluations) - len(gx)} dbt tests)")
    for e in sorted(failed, key=lambda e: e.check_name):
        lines.append(f"  FAIL ({e.severity.value}) {e.asset_key.to_user_string()} "
                     f"{e.check_name}: {e.description or ''}")
    from ewh.quality.validate import data_docs_index

    lines.append(f"exports: {exports_dir()}/<segment>/members.parquet|csv (+ entered, exited)")
    lines.append(f"Data Docs: {data_docs_index()}")
    if not result.success:
        lines.append("\nthe run FAILED: see the Dagster UI (make dev) for the failing step")
    return "\n".join(lines)


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: with GX and duckdb in one process, nanobind prints a long,
    # harmless "leaked" report there (STACK-NOTES) that would bury the summary.
    os._exit(code)
