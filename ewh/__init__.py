"""engagement_warehouse: ingestion, the collector and the `ewh` command line."""
