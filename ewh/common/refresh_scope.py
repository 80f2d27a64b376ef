"""Which dbt data tests a refresh runs.

An incremental (hourly) build leaves out the tests of the layers nothing publishes: staging,
intermediate, the seeds and the singular tests. It runs those of marts and segments, which the
serving copy, exports and API publish. A data test costs dbt ~40-80 ms however few rows
changed, so tests were ~40 % of an hourly refresh's thread time at 1M events. Great Expectations
still validates every layer on every run (orchestration/defs/quality.py), and the daily full
refresh and a warehouse's first build run every test.
"""

# dbt selection: each item is one intersection (resource type and path); given to --exclude,
# which dbt unions with any other --exclude (Dagster passes its own)
UNPUBLISHED_TESTS = ("resource_type:test,path:models/staging",
                     "resource_type:test,path:models/intermediate",
                     "resource_type:test,path:seeds", "resource_type:test,path:tests")
# a warehouse holding this table (schema, name) has been built before
BUILT_MARKER = ("marts", "dim_users")
