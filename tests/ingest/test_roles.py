"""The role list lives once in onramp/roles.py; dbt staging's `developer_roles` var must agree."""

from __future__ import annotations

from pathlib import Path

import yaml

from ingest.reference_rows import TABLE_SPECS
from onramp.roles import ROLES

REPO = Path(__file__).resolve().parents[2]


def test_dbt_var_lists_the_same_roles() -> None:
    project = yaml.safe_load((REPO / "dbt_project.yml").read_text())
    assert sorted(project["vars"]["developer_roles"]) == sorted(ROLES)


def test_loader_keeps_roles_as_given_in_a_normal_spelling() -> None:
    role = dict(TABLE_SPECS["developers"])["role"]
    assert role(" Customer-Success ") == "customer_success"
    assert role("Chief Vibes Officer") == "chief_vibes_officer"  # kept: staging maps it to unknown
    assert role("") == "unknown"
