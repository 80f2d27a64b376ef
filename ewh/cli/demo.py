"""`ewh demo` (`make demo`): sample data through the whole pipeline, then a short summary.

It starts from an empty warehouse, landing zone and model registry each time, so it is
repeatable, and runs the `refresh_warehouse` job in the Dagster instance of DAGSTER_HOME
(`make dev` shows it afterwards), then `train_prediction_models`, and, when a model was
published, `refresh_warehouse` again so its predictions, segments and tags are filled. The
terminal gets one line per stage; everything dbt and Dagster print goes to a log file whose
path is named at the start and again on failure.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

from ewh.cli.main import Handler, command

# Stages of the refresh job, in order, and how to tell a step's stage from its key.
STAGES = (
    ("load", "load landing files into raw"),
    ("transform", "dbt build"),
    ("checks", "data-quality checks"),
    ("publish", "publish the serving copy"),
    ("exports", "export segments, write the report"),
)


def stage_of(step_key: str) -> str:
    if step_key.startswith("raw_load") or "gx_raw_events" in step_key:
        return "load"
    # both dbt steps, and the scoring between them
    if step_key.startswith("warehouse_dbt_") or "prediction_scores" in step_key:
        return "transform"
    if "gx_" in step_key:
        return "checks"
    if "serving_copy" in step_key:
        return "publish"
    return "exports"


@command("demo", "generate sample data, run the whole pipeline, print a summary")
def _demo(parser: argparse.ArgumentParser) -> Handler:
    parser.add_argument("--events", type=int, default=200_000, help="events (200000)")
    parser.add_argument("--seed", type=int, default=42, help="random seed (42)")
    return _run


def _run(args: argparse.Namespace) -> int:
    code = run_demo(args.events, args.seed, sys.stdout)
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: with GX and duckdb in one process, nanobind prints a long,
    # harmless "leaked" report there that would bury the summary.
    os._exit(code)


def _reset(paths: list[Path]) -> None:
    for path in paths:
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            path.unlink()


@contextlib.contextmanager
def _output_to(log: IO[str]) -> Iterator[None]:
    """Send this process's stdout and stderr, and its subprocesses' (dbt), to `log`."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    os.dup2(log.fileno(), 1)
    os.dup2(log.fileno(), 2)
    try:
        yield
    finally:
        sys.stdout.flush()
        sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])


def run_demo(events: int, seed: int, terminal: IO[str]) -> int:
    from rich.console import Console

    from ewh.common.settings import get_settings

    settings = get_settings()
    # The terminal keeps its own descriptor: fds 1 and 2 go to the log during the run.
    screen = os.fdopen(os.dup(terminal.fileno()), "w", buffering=1)
    console = Console(file=screen, highlight=False, soft_wrap=True)
    log_path = settings.warehouse.parent / "demo.log"
    beside = list(settings.warehouse.parent.glob(settings.warehouse.stem + ".*"))
    # The warehouse and what sits beside it (its WAL, the segment-size history of the
    # volume checks), the landing zone, the exports, the serving copy and the models.
    _reset([settings.warehouse, *beside, settings.landing_dir, settings.exports_dir,
            settings.serving, settings.report, settings.models_dir])
    log_path.parent.mkdir(parents=True, exist_ok=True)
    console.print(f"engagement_warehouse demo: {events:,} events, seed {seed}; "
                  f"dbt and Dagster logs in {log_path}")
    started = time.monotonic()
    with log_path.open("w", buffering=1) as log:
        try:
            with _output_to(log):
                result, failure = _run_stages(console, events, seed, settings)
        except Exception as exc:  # noqa: BLE001 - one clear line, the detail is in the log
            import traceback

            traceback.print_exc(file=log)
            console.print(f"[red]✗ the demo failed: {type(exc).__name__}: {exc}[/red]")
            console.print(f"  log: {log_path}")
            return 1
    if failure:
        console.print(f"[red]✗ {failure}[/red]")
        console.print(f"  log: {log_path}  (the Dagster UI, `make dev`, shows the run)")
        return 1
    console.print(render_summary(result), markup=False)
    console.print(f"\nfinished in {time.monotonic() - started:.0f} s; run {result.run_id}; "
                  f"log {log_path}")
    return 0


def _timed(console, label: str, work: Callable[[], str]) -> None:
    """Run `work` under a spinner; print one line with what it returned and the time."""
    started = time.monotonic()
    with console.status(label):
        detail = work()
    console.print(f"[green]✓[/green] {label}: {detail} ({time.monotonic() - started:.0f} s)")


def _run_stages(console, events: int, seed: int, settings) -> tuple[Any, str | None]:
    from ewh.sample.generator import generate

    def generate_events() -> str:
        summary = generate(settings.landing_dir, events=events, seed=seed)
        return f"{summary['events_written']:,} lines in {len(summary['files'])} files"

    _timed(console, "generate sample events", generate_events)
    result, failure = _refresh(console)
    if failure:
        return result, failure
    started = time.monotonic()
    with console.status("train the prediction models"):
        published, failures = _train()
    if failures:
        return result, f"train the prediction models failed: {failures[0]}"
    verdicts = "; ".join(_verdicts(settings)) or "nothing to train on"
    console.print(f"[green]✓[/green] train the prediction models: {verdicts} "
                  f"({time.monotonic() - started:.0f} s)")
    if published:
        started = time.monotonic()
        result, failure = _refresh(console, quiet=True)
        if failure:
            return result, failure
        console.print(f"[green]✓[/green] score with the published models and refresh again "
                      f"({time.monotonic() - started:.0f} s)")
    _history(console, settings)
    return result, None


def _history(console, settings) -> None:
    """Every segment at each day of the data (so segment_sizes_daily covers it), then the
    serving copy and the report again."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from ewh.report.locations import validations_dir
    from ewh.report.page import write_report
    from ewh.segments.history import (
        backfill_history,
        days_between,
        event_days,
        rebuild_dependents,
        warehouse_as_of,
    )
    from ewh.segments.serving import publish_serving_copy
    from orchestration.project import warehouse_project

    started = time.monotonic()
    cap = warehouse_as_of(settings.warehouse)
    first, _ = event_days(settings.warehouse)
    days = days_between(first, cap.date())
    label = "segment history"
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task(f"{label}: compiling the rules", total=len(days))

        def advance(day) -> None:
            progress.update(task, advance=1, description=f"{label}: {day}")

        result = backfill_history(settings.warehouse, first, cap.date(), cap=cap,
                                  progress=advance)
        progress.update(task, description=f"{label}: segment_sizes_daily")
        rebuild_dependents(settings.warehouse, cap)
        publish_serving_copy(settings.warehouse, settings.serving, warehouse_project().segments)
        write_report(settings.serving, settings.report, validations_dir())
    console.print(f"[green]✓[/green] {label}: every segment on each of {result.days} days "
                  f"({first} .. {cap.date()}), {result.spells_after:,} membership spells "
                  f"({time.monotonic() - started:.0f} s)")


def _train() -> tuple[list[str], list[str]]:
    """Run train_prediction_models: (the models it published, its failed steps). A model that
    does not beat its rule baseline fails the gate check and stays unpublished: not an error
    for the demo; any other failed step is."""
    import dagster as dg

    from orchestration.definitions import defs
    from orchestration.defs.predictions import GATE_CHECK, TRAINING_JOB
    from orchestration.instance import ensure_dagster_home

    with dg.DagsterInstance.from_config(str(ensure_dagster_home())) as instance:
        run = defs().resolve_job_def(TRAINING_JOB).execute_in_process(
            instance=instance, raise_on_error=False)
    published = [event.asset_key.path[-1].removesuffix("_model")
                 for event in run.get_asset_materialization_events()
                 if event.asset_key.path[-1].endswith("_model")]
    failures = [f"step {event.step_key}: {event.message}"
                for event in run.all_events
                if event.event_type_value == "STEP_FAILURE" and GATE_CHECK not in event.step_key]
    return published, failures


def _verdicts(settings) -> list[str]:
    from ewh.predictions import registry
    from ewh.predictions.specs import MODELS
    from ewh.predictions.training import gate

    out = []
    for name in MODELS:
        candidate = registry.read_pointer(settings.models_dir, name, registry.CANDIDATE)
        if candidate is None:
            continue
        if candidate.get("version") is None:
            out.append(f"{name} not published ({candidate.get('reason')})")
            continue
        metrics = registry.read_json(settings.models_dir, name, candidate["version"],
                                     registry.METRICS_FILE)
        verdict = gate(metrics, settings.prediction_min_auc_gain)
        model, rule = metrics["model"]["roc_auc"], metrics["baseline"]["roc_auc"]
        out.append(f"{name} {'published' if verdict.passed else 'not published'} "
                   f"(ROC AUC {model:.3f} vs rule {rule:.3f})")
    return out


def _refresh(console, quiet: bool = False) -> tuple[Any, str | None]:
    """Run the refresh job in a thread; show its stages from the instance's event log."""
    import dagster as dg
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn

    from orchestration.definitions import defs
    from orchestration.instance import ensure_dagster_home

    home = ensure_dagster_home()
    run_id = str(uuid.uuid4())
    outcome: dict[str, Any] = {}
    with dg.DagsterInstance.from_config(str(home)) as instance:
        job = defs().resolve_job_def("refresh_warehouse")

        def execute() -> None:
            try:
                outcome["result"] = job.execute_in_process(
                    instance=instance, raise_on_error=False, run_id=run_id,
                    run_config={"loggers": {"console": {"config": {"log_level": "INFO"}}}})
            except BaseException as exc:  # noqa: BLE001 - reported by the main thread
                outcome["error"] = exc

        worker = threading.Thread(target=execute, name="refresh", daemon=True)
        columns = (SpinnerColumn(), TextColumn("{task.description}"), BarColumn(),
                   MofNCompleteColumn(), TextColumn("{task.fields[detail]}"))
        with Progress(*columns, console=console, transient=True) as progress:
            task = progress.add_task("refresh_warehouse", total=None, detail="")
            worker.start()
            watcher = _StageWatcher(console, progress, task, quiet)
            cursor = None
            while True:
                alive = worker.is_alive()
                page = instance.get_records_for_run(run_id, cursor=cursor, limit=1000)
                cursor = page.cursor
                watcher.update([record.event_log_entry for record in page.records])
                if not alive and not page.has_more:
                    break
                if not page.has_more:
                    worker.join(timeout=0.5)
            watcher.finish()
    if "error" in outcome:
        raise outcome["error"]
    result = outcome["result"]
    return result, None if result.success else watcher.failure_line()


class _StageWatcher:
    """Turns Dagster step events into one printed line per finished stage.

    The steps of a stage need not be contiguous (the dbt seeds may run before the load, the
    checks of the first dbt step before the second step), so the lines are printed once the
    run is over, in the order of STAGES, each with the time its steps took."""

    def __init__(self, console, progress, task, quiet: bool = False) -> None:
        self.console, self.progress, self.task = console, progress, task
        self.quiet = quiet  # no line per stage (a second refresh is one line)
        self.current: str | None = None
        self.started: dict[str, float] = {}  # step key -> start
        self.seconds: dict[str, float] = {}  # stage -> seconds its steps took
        self.failed_stages: set[str] = set()
        self.models_done = 0
        self.failures: list[str] = []
        self.steps_done = 0

    def update(self, entries) -> None:
        for entry in entries:
            event = entry.dagster_event
            if event is None or not event.step_key:
                continue
            stage = stage_of(event.step_key)
            kind = event.event_type_value
            if kind == "STEP_START":
                self.current = stage
                self.started[event.step_key] = time.monotonic()
            elif kind == "ASSET_MATERIALIZATION" and stage == "transform":
                self.models_done += 1
            elif kind in ("STEP_SUCCESS", "STEP_FAILURE"):
                began = self.started.pop(event.step_key, time.monotonic())
                self.seconds[stage] = self.seconds.get(stage, 0.0) + time.monotonic() - began
                self.steps_done += kind == "STEP_SUCCESS"
            if kind == "STEP_FAILURE":
                self.failed_stages.add(stage)
                error = getattr(event.event_specific_data, "error", None)
                while error is not None and error.cause is not None:  # the root cause
                    error = error.cause
                reason = (error.message.strip().splitlines() or [""])[-1] if error else ""
                self.failures.append(f"step {event.step_key}: {reason or event.message}")
                self.current = stage
        label = dict(STAGES).get(self.current or "", "starting")
        detail = f"{self.models_done} dbt nodes" if self.current == "transform" else ""
        self.progress.update(self.task, description=label, completed=self.steps_done,
                             detail=detail)

    def finish(self) -> None:
        """A line for every stage whose steps all succeeded, in the order of STAGES."""
        if self.quiet:
            return
        for stage, label in STAGES:
            if stage not in self.seconds or stage in self.failed_stages:
                continue
            extra = f": {self.models_done} dbt nodes" if stage == "transform" else ""
            self.progress.console.print(
                f"[green]✓[/green] {label}{extra} ({self.seconds[stage]:.0f} s)")

    def failure_line(self) -> str:
        if self.failures:
            stage = next(s for s, _ in STAGES if s in self.failed_stages)
            return f"{dict(STAGES)[stage]} failed: {self.failures[0]}"
        return "the refresh_warehouse run failed (a blocking check or a step)"


def _short(text: str, width: int = 90) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def render_summary(result) -> str:
    import duckdb

    from ewh.common.settings import get_settings
    from ewh.quality.validate import data_docs_index
    from ewh.segments.report import format_table, segment_sizes
    from orchestration.project import warehouse_project

    settings = get_settings()
    with duckdb.connect(str(settings.warehouse), read_only=True) as con:
        read, loaded, dup, rejected, suppressed = con.execute(
            "select sum(rows_read), sum(rows_loaded), sum(rows_duplicate), sum(rows_rejected), "
            "coalesce(sum(rows_suppressed), 0) from raw.load_manifest"
        ).fetchone()
        sessions, users = con.execute(
            "select (select count(*) from marts.fct_sessions), "
            "(select count(*) from marts.dim_users)"
        ).fetchone()
        scored = dict(con.execute(
            "select model_name, count(*) from marts.user_predictions group by 1").fetchall())
    lines = [
        f"load: read {read:,} = loaded {loaded:,} + duplicates {dup:,} + rejected {rejected:,}"
        + (f" + suppressed {suppressed:,}" if suppressed else "")
        + (" (reconciled)" if read == loaded + dup + rejected + suppressed
           else " (DOES NOT RECONCILE)"),
        f"marts: {sessions:,} sessions, {users:,} users",
        "predictions: " + (", ".join(f"{m} scores {n:,} users" for m, n in sorted(scored.items()))
                           or "none (no model published)")
        + f"; models in {settings.models_dir} (ewh predictions list)",
        "",
        format_table(
            ["segment", "members", "owner", "export", "rule"],
            [[s.segment, f"{s.members:,}", s.owner, "yes" if s.exported else "-", _short(s.rule)]
             for s in segment_sizes(settings.warehouse, warehouse_project().segments)],
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
    lines.append(f"exports: {settings.exports_dir}/<segment>/members.parquet|csv "
                 "(+ entered, exited)")
    lines.append(f"report: {settings.report.resolve().as_uri()}")
    lines.append(f"Data Docs: {data_docs_index()}")
    return "\n".join(lines)
