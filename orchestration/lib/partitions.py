"""The one daily partitioning every onramp asset shares: a partition is an as-of day.

Raw loads, dbt models and segment syncs all use `DAILY`, so a backfill, the latest built day and
a failed day show in the Dagster UI per day with no code of ours. The partition key is the dbt var
`as_of_date` (onramp.as_of converts both ways); the last partition is the last complete UTC day.
"""

from __future__ import annotations

import datetime as dt

import dagster as dg

from onramp.as_of import from_partition_key, partitions_start

DAILY = dg.DailyPartitionsDefinition(start_date=partitions_start().isoformat(), timezone="UTC")

# One run per day of a backfill: the dbt var takes one as-of day, and a failed day shows as itself.
ONE_DAY_PER_RUN = dg.BackfillPolicy.multi_run(max_partitions_per_run=1)


def run_as_of(context: dg.AssetExecutionContext) -> dt.date:
    """The as-of day of the partition this asset runs for."""
    return from_partition_key(context.partition_key)
