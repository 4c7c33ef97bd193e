"""What the Dagster definitions share: run resource, dbt translator, freshness, instance."""
