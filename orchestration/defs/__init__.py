"""Dagster definitions by area: ingest (raw loads), dbt (models, tests), email (segment syncs)."""
