"""A run-failure sensor that records an alert (table + log line) for every failed run."""

import time
from datetime import UTC, datetime

import dagster as dg

from ewh.ops.alerts import RunFailure, record_run_failure
from orchestration.resources import WarehouseSettings


@dg.run_failure_sensor(name="run_failure_alert", monitor_all_code_locations=False,
                       default_status=dg.DefaultSensorStatus.RUNNING)
def run_failure_alert(context: dg.RunFailureSensorContext, settings: WarehouseSettings) -> None:
    run = context.dagster_run
    message = context.failure_event.message or "run failed"
    record = context.instance.get_run_record_by_id(run.run_id)
    ended = record.end_time if record and record.end_time else time.time()
    failed_at = datetime.fromtimestamp(ended, UTC).replace(tzinfo=None)
    failure = RunFailure(run_id=run.run_id, job_name=run.job_name, failed_at=failed_at,
                         message=message)
    if record_run_failure(settings.get().ops_db, failure):
        context.log.error(f"ALERT run {run.run_id} of {run.job_name} failed: {message}")


@dg.definitions
def defs() -> dg.Definitions:
    return dg.Definitions(sensors=[run_failure_alert])
