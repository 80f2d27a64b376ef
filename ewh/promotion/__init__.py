"""The promotion API: per-user decisions (experiment variant, recommended products, best send
time) answered from an in-memory snapshot of the serving copy (docs/promotion.md)."""
