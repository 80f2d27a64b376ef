"""Running the dbt project on a local Spark session (the `spark` dbt target)."""
