"""The code location by area. Each module owns its assets, checks, jobs, schedules and
sensors, and returns them from its own `@dg.definitions` function, which
`orchestration.definitions` gathers with `load_defs`:

- ingest: the raw load and the landing-zone sensor
- transform: every dbt model, seed and test (dbt tests are asset checks), in two steps around
  the scoring of the prediction models
- backfill: the daily-partitioned job that rebuilds one day of event models
- history: segment history at past dates (a daily-partitioned asset, one run per range)
- quality: the Great Expectations suites as blocking asset checks
- serving: the read-only serving copy
- report: the analyst report (HTML) after each publish
- segments: one export asset, job and (stopped) schedule per segment
- predictions: weekly model training behind a blocking gate, scoring, prediction tags
- refresh: the whole-warehouse jobs and their schedules
- alerts: the run-failure sensor
- realtime: the change log, the stream micro-batch job and its sensor, one asset per webhook
  subscriber with its lag, deliveries, failures and dead letters
"""
