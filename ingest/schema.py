"""The raw landing schema, defined in the core (onramp.raw_schema) beside the dbt sources."""

from onramp.raw_schema import ensure_raw_schema

__all__ = ["ensure_raw_schema"]
