"""The Dagster code location of engagement_warehouse."""
