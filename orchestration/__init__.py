"""orchestration: the Dagster code location, the operator's view of onramp."""
