"""Definitions by area: ingest, transform, segments, quality, schedules."""
