"""How dbt resources become Dagster assets: the one translator every definition uses.

Keys are flat and match what an operator sees in the warehouse and the CLI: a model is keyed by
its name (``stg_raw__api_events``, ``seg_stopped_traffic``), a source table ``raw.<table>`` by
``raw_<table>``, the key of the raw load asset that fills it, so loads sit upstream of staging in
one graph. Models are grouped by their dbt folder (staging / intermediate / marts / segments).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import PurePosixPath
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DagsterDbtTranslatorSettings

RAW_GROUP = "raw"


def source_asset_key(source_name: str, table: str) -> dg.AssetKey:
    """``raw.api_events`` -> ``raw_api_events`` (the raw load asset's key)."""
    return dg.AssetKey(f"{source_name}_{table}")


def model_asset_key(model_name: str) -> dg.AssetKey:
    """A dbt model's asset key: its name."""
    return dg.AssetKey(model_name)


class OnrampDbtTranslator(DagsterDbtTranslator):
    """Flat asset keys, raw sources mapped onto the load assets, groups from dbt folders."""

    def __init__(self) -> None:
        super().__init__(
            settings=DagsterDbtTranslatorSettings(
                enable_asset_checks=True,
                # Source freshness/tests stay observations of the raw load assets' own checks.
                enable_source_tests_as_checks=False,
            )
        )

    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] == "source":
            return source_asset_key(dbt_resource_props["source_name"], dbt_resource_props["name"])
        return model_asset_key(dbt_resource_props["name"])

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        if dbt_resource_props["resource_type"] == "source":
            return RAW_GROUP
        if dbt_resource_props["resource_type"] == "seed":
            return "seeds"
        # `path` is relative to the model path: staging/stg_x.sql -> staging
        parts = PurePosixPath(str(dbt_resource_props.get("path") or "")).parts
        return parts[0] if len(parts) > 1 else "models"
