"""Data quality: Great Expectations suites over the DuckDB warehouse, validated by SQL pushdown.

Importing this package is cheap; Great Expectations (about 3 s to import) loads only when
``ewh.quality.validate`` or ``ewh.quality.project`` is imported.
"""
