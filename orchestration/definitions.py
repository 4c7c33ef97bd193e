"""The Dagster code location: assembles each area's definitions, nothing else.

`dagster dev -m orchestration.definitions` (what `onramp ui` runs) and the in-process demo load
this module. Areas: defs/ingest (raw loads, freshness check, landing sensor), defs/dbt (dbt models
and tests, daily schedule), defs/email (segment syncs, hourly schedule), defs/feedback (SendGrid
events, engagement refresh), defs/crm (HubSpot pushes), defs/report (the funnel report).
"""

from __future__ import annotations

import dagster as dg

from orchestration.defs import crm as crm_area
from orchestration.defs import dbt as dbt_area
from orchestration.defs import email as email_area
from orchestration.defs import feedback as feedback_area
from orchestration.defs import ingest as ingest_area
from orchestration.defs import report as report_area
from orchestration.lib.instance import fast_local_storage
from orchestration.lib.resources import RESOURCE_KEY, OnrampResource

fast_local_storage()

defs = dg.Definitions.merge(
    ingest_area.defs,
    dbt_area.defs,
    email_area.defs,
    feedback_area.defs,
    crm_area.defs,
    report_area.defs,
    dg.Definitions(resources={RESOURCE_KEY: OnrampResource()}),
)
