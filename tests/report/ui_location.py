"""A Dagster code location with only the report asset, for the headless-browser UI test."""

import dagster as dg

from orchestration.defs import report as report_area
from orchestration.lib.resources import RESOURCE_KEY, OnrampResource

defs = dg.Definitions.merge(
    report_area.defs, dg.Definitions(resources={RESOURCE_KEY: OnrampResource()})
)
